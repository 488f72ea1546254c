"""Group initiatives that carry the same idea, and find an initiative's nearest neighbours.

Two channels measure how alike two initiatives are:

- dense: cosine of the e5 sentence embeddings (`pipeline.embed`), which sees paraphrases;
- lexical: cosine of character 3-5-gram TF-IDF vectors of the normalised text, which sees shared
  rare words and names (idf weighting makes boilerplate such as "corona" or "inwoners" count
  little).

`SimilarityIndex` puts both channels on one scale (standard deviations above the average pair of
this corpus), mixes them with `dense_weight`, and corrects for hubs: a pair's score is its mixed
similarity minus the mean of both rows' `hub_neighbours` best similarities (CSLS, Conneau et al.
2018), so a generic text that is close to everything does not pull unrelated rows together.

`Grouper` cuts that score with average-linkage agglomerative clustering at `threshold`: a group is
a set of rows whose mean pairwise score is above it and in which no pair's plain similarity is
below `min_similarity` (the scores are relative, so without that floor a small input of unrelated
rows would still pair up). Reviewers' "zelfde idee" / "ander idee" marks, given to `fit(links=...)`,
join or keep apart their rows (`pipeline.models.constraints`). Rows are sorted by id first, so the result does not depend on input
order, and a group's id is derived from its sorted member ids.

`nearest(rows, query_id, k)` / `SimilarityIndex.nearest(query_id, k)` give the k most similar rows
for the `similar` command, the review page and the search page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from pipeline.core.errors import UnknownIdError
from pipeline.core.records import Initiative, as_initiative
from pipeline.core.text import model_text, normalise
from pipeline.models.constraints import apply_links
from pipeline.models.group_describe import describe_groups

TEXT_FIELDS = ("naam+omschrijving", "omschrijving")
LINKAGES = ("average", "complete", "single")
# Score given to a pair below `min_similarity`: low enough that no average can lift a group that
# contains it over any threshold, so the pair acts as a cannot-link.
CANNOT_LINK = -1e6


@dataclass(frozen=True)
class Neighbour:
    """One nearest neighbour: its id, the hub-corrected `score` it is ranked by, and the plain
    `similarity` (mixed cosine, about 0-1) that reads like a percentage."""

    id: str
    score: float
    similarity: float

    def to_dict(self) -> dict:
        return {"id": self.id, "score": round(self.score, 4),
                "similarity": round(self.similarity, 4)}


def group_text(initiative: Initiative, text: str) -> str:
    """The text the channels read: `model_text` (naam + omschrijving) or the description only."""
    if text == "naam+omschrijving":
        return model_text(initiative)
    return normalise(initiative.omschrijving)


def _standardise(similarity: np.ndarray) -> np.ndarray:
    """Similarity in standard deviations above the mean off-diagonal pair (the channel's scale)."""
    n = len(similarity)
    if n < 3:
        return similarity.copy()
    off = similarity[~np.eye(n, dtype=bool)]
    spread = off.std()
    return (similarity - off.mean()) / (spread if spread > 0 else 1.0)


def hub_corrected(similarity: np.ndarray, k: int) -> np.ndarray:
    """CSLS: `s_ij - (r_i + r_j) / 2` with `r_i` the mean of row i's k best similarities to others.

    A text near to everything (a generic description) gets a high `r` and so lower scores; `k=0`
    returns the similarity unchanged. The result is symmetric when the input is.
    """
    n = len(similarity)
    k = min(k, n - 1)
    if k <= 0:
        return similarity.copy()
    others = similarity.copy()
    np.fill_diagonal(others, -np.inf)
    top = np.partition(others, n - k, axis=1)[:, n - k :]  # the k largest; the diagonal is -inf
    r = top.mean(axis=1)
    return similarity - (r[:, None] + r[None, :]) / 2


class SimilarityIndex(BaseEstimator):
    """Pairwise similarity of a set of initiatives from the dense and lexical channels.

    Parameters mirror `[group]` in configs/pipeline.toml. `fit(X, vectors=None)` takes a sequence of
    `Initiative` (or mappings, see `as_initiative`) and their embeddings (n, d); without `vectors`
    it embeds the texts with `encoder` (`pipeline.embed.encoder_from_config(settings.embed)`).

    Learned: `ids_` (sorted), `similarity_` (mixed cosine, about 0-1, for reading), `score_`
    (standardised, mixed and hub-corrected, what grouping and ranking use), `initiatives_`.
    """

    def __init__(self, *, encoder=None, text: str = "naam+omschrijving", dense_weight: float = 0.5,
                 char_ngram_min: int = 3, char_ngram_max: int = 5, hub_neighbours: int = 10):
        self.encoder = encoder
        self.text = text
        self.dense_weight = dense_weight
        self.char_ngram_min = char_ngram_min
        self.char_ngram_max = char_ngram_max
        self.hub_neighbours = hub_neighbours

    def _validate(self) -> None:
        if self.text not in TEXT_FIELDS:
            raise ValueError(f"text must be one of {TEXT_FIELDS}, got {self.text!r}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be between 0 and 1, got {self.dense_weight!r}")
        if not 1 <= self.char_ngram_min <= self.char_ngram_max:
            raise ValueError(
                f"char n-gram range must satisfy 1 <= min <= max, got "
                f"({self.char_ngram_min!r}, {self.char_ngram_max!r})"
            )
        if self.hub_neighbours < 0:
            raise ValueError(f"hub_neighbours must be >= 0, got {self.hub_neighbours!r}")

    def fit(self, X, y=None, *, vectors=None):
        self._validate()
        rows = [as_initiative(row) for row in X]
        ids = [row.id for row in rows]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"ids must be unique; repeated: {dupes[:5]}")
        # Sorting by id makes everything downstream independent of the input order.
        order = np.argsort(np.array(ids, dtype=object), kind="stable")
        rows = [rows[i] for i in order]
        texts = [group_text(row, self.text) for row in rows]
        if vectors is None:
            if self.encoder is None:
                raise ValueError("pass `vectors` or give the index an `encoder`")
            dense = np.asarray(self.encoder.embed(texts), dtype=np.float32)
        else:
            dense = np.asarray(vectors, dtype=np.float32)
            if dense.ndim != 2 or len(dense) != len(rows):
                raise ValueError(f"vectors must have shape ({len(rows)}, d), got {dense.shape}")
            dense = dense[order]
        self.initiatives_ = rows
        self.ids_ = [row.id for row in rows]
        self.position_ = {row_id: i for i, row_id in enumerate(self.ids_)}
        self.texts_ = texts
        n = len(rows)
        if n == 0:
            self.similarity_ = self.score_ = np.zeros((0, 0))
            return self
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        dense = dense / np.where(norms == 0, 1.0, norms)
        dense_sim = (dense @ dense.T).astype(np.float64)
        lexical_sim = self._lexical(texts)
        w = self.dense_weight
        self.similarity_ = w * dense_sim + (1 - w) * lexical_sim
        mixed = w * _standardise(dense_sim) + (1 - w) * _standardise(lexical_sim)
        self.score_ = hub_corrected(mixed, self.hub_neighbours)
        return self

    def _lexical(self, texts: list[str]) -> np.ndarray:
        vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(self.char_ngram_min, self.char_ngram_max),
            sublinear_tf=True,
            lowercase=True,
        )
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:  # every text empty after cleaning: no lexical evidence at all
            return np.zeros((len(texts), len(texts)))
        return (matrix @ matrix.T).toarray()

    def nearest(self, query_id: str, k: int = 5) -> list[Neighbour]:
        """The `k` rows most similar to `query_id`, best first (ties broken by id).

        Raises `UnknownIdError` when `query_id` is not in the index."""
        check_is_fitted(self, "score_")
        if query_id not in self.position_:
            raise UnknownIdError(
                f"id {query_id!r} komt niet voor in de invoer / unknown id "
                f"({len(self.ids_)} rijen; bijvoorbeeld {', '.join(self.ids_[:3])})"
            )
        i = self.position_[query_id]
        scores = self.score_[i].copy()
        scores[i] = -np.inf
        # lexsort: last key is primary; ids ascend for equal scores so the order is reproducible.
        ranked = np.lexsort((np.arange(len(scores)), -scores))
        ranked = [j for j in ranked if j != i][: max(k, 0)]
        return [Neighbour(self.ids_[j], float(self.score_[i, j]), float(self.similarity_[i, j]))
                for j in ranked]


def nearest(rows, query_id: str, k: int = 5, *, config=None, encoder=None,
            vectors=None) -> list[Neighbour]:
    """The `k` initiatives most like `query_id` among `rows` (Initiatives or catalogue mappings).

    `config` is a `GroupConfig` (settings.group; defaults when None); give `vectors` (one per row,
    in the order of `rows`) or an `encoder`. Raises `UnknownIdError` for an id not in `rows`.

    >>> nearest(rows, "halsema-013", k=3, config=settings.group, encoder=encoder)  # doctest: +SKIP
    [Neighbour(id='halsema-033', score=..., similarity=0.71), ...]
    """
    index = SimilarityIndex(encoder=encoder, **index_params(config))
    return index.fit(rows, vectors=vectors).nearest(query_id, k)


# The SimilarityIndex settings that `[group]` and a Grouper carry; taken from its signature so a
# new index setting reaches both without a second list to keep in step.
INDEX_PARAMS = tuple(name for name in SimilarityIndex._get_param_names() if name != "encoder")


def index_params(config) -> dict:
    """The SimilarityIndex keyword arguments held by `config` (a `GroupConfig` or a `Grouper`)."""
    if config is None:
        return {}
    return {name: getattr(config, name) for name in INDEX_PARAMS}


class Grouper(ClusterMixin, BaseEstimator):
    """Cut a `SimilarityIndex` into same-idea groups by average-linkage clustering.

    `fit(X, vectors=None)` on a sequence of Initiatives (or mappings) sets `index_` (the fitted
    SimilarityIndex), `labels_` (one cluster number per input row, in input order), `groups_`
    (list of `Group` of at least `min_size` rows, largest first, then by id).
    """

    def __init__(self, *, encoder=None, text: str = "naam+omschrijving", dense_weight: float = 0.5,
                 char_ngram_min: int = 3, char_ngram_max: int = 5, hub_neighbours: int = 10,
                 linkage: str = "average", threshold: float = -0.2, min_similarity: float = 0.46,
                 min_size: int = 2, keywords: int = 5, name_max_words: int = 8):
        self.encoder = encoder
        self.text = text
        self.dense_weight = dense_weight
        self.char_ngram_min = char_ngram_min
        self.char_ngram_max = char_ngram_max
        self.hub_neighbours = hub_neighbours
        self.linkage = linkage
        self.threshold = threshold
        self.min_similarity = min_similarity
        self.min_size = min_size
        self.keywords = keywords
        self.name_max_words = name_max_words

    @classmethod
    def from_config(cls, config, encoder=None) -> "Grouper":
        """A Grouper with the settings of `[group]` (a `GroupConfig`)."""
        return cls(encoder=encoder, linkage=config.linkage, threshold=config.threshold,
                   min_similarity=config.min_similarity, min_size=config.min_size,
                   keywords=config.keywords, name_max_words=config.name_max_words,
                   **index_params(config))

    def fit(self, X, y=None, *, vectors=None, links=None):
        """`links`: reviewers' marks `(a, b, same)`, oldest first, applied as must-link /
        cannot-link (`pipeline.models.constraints.apply_links`); `links_report_` says how many."""
        if self.linkage not in LINKAGES:
            raise ValueError(f"linkage must be one of {LINKAGES}, got {self.linkage!r}")
        if self.min_size < 2:
            raise ValueError(f"min_size must be at least 2, got {self.min_size!r}")
        rows = [as_initiative(row) for row in X]
        index = SimilarityIndex(encoder=self.encoder, **index_params(self)).fit(rows, vectors=vectors)
        self.index_ = index
        # The scores are relative to this input; the floor on the plain similarity keeps a few
        # unrelated rows (a small input) from grouping just because nothing closer exists.
        score = np.where(index.similarity_ >= self.min_similarity, index.score_, CANNOT_LINK)
        score, self.links_report_ = apply_links(score, index.ids_, links or ())
        sorted_labels = cut(score, self.threshold, linkage=self.linkage)
        by_id = dict(zip(index.ids_, sorted_labels))
        self.labels_ = np.array([by_id[row.id] for row in rows], dtype=int)
        clusters: dict[int, list[int]] = {}
        for position, label in enumerate(sorted_labels):
            clusters.setdefault(int(label), []).append(position)
        member_lists = [m for m in clusters.values() if len(m) >= self.min_size]
        self.groups_ = describe_groups(index, member_lists, keywords=self.keywords,
                                       name_max_words=self.name_max_words)
        return self

    def fit_predict(self, X, y=None, *, vectors=None, links=None):
        return self.fit(X, vectors=vectors, links=links).labels_


def cut(score: np.ndarray, threshold: float, *, linkage: str = "average") -> np.ndarray:
    """Cluster labels from a symmetric score matrix: merge while the linkage score > threshold.

    Labels are renumbered by first appearance so the same matrix gives the same labels."""
    n = len(score)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.zeros(1, dtype=int)
    off = score[~np.eye(n, dtype=bool)]
    if threshold >= off.max():
        return np.arange(n)
    # Agglomerative clustering wants distances >= 0: shift the scores so the best pair is at 0.
    # The shift does not change which merges happen, since linkage is a mean/min/max of pairs.
    top = float(off.max())
    distance = np.clip(top - score, 0.0, None)
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    raw = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage=linkage, distance_threshold=top - threshold
    ).fit(distance).labels_
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(label), len(remap)) for label in raw], dtype=int)
