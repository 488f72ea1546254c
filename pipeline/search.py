"""Search the catalogue: a Dutch free-text query ranked by meaning and by words together.

Two channels score every published row for a query:

- dense: cosine similarity of e5 embeddings (query with the "query: " prefix; documents with the
  prefix in `[search] doc_prefix`, measured in bench/bench_search.py), through the cached encoder;
- keyword: TF-IDF over Dutch lookup lemmas (`pipeline.text.lemma_texts`), so "maaltijden" finds
  "maaltijd", and a name or a place typed literally is found even where meaning is vague.

Each channel is min-max scaled over the rows for that query (their raw ranges differ: e5 cosines
bunch between 0.7 and 0.9, TF-IDF cosines spread from 0) and mixed as
`dense_weight * dense + (1 - dense_weight) * keyword`; `dense_weight` comes from configs, chosen by
mean reciprocal rank in bench/bench_search.py. Filters (theme, target group, municipality, kind,
minimum replicability) then keep the matching rows in ranked order.

The pure core works on plain dict *records*, one per published initiative:

    {"id", "gemeente", "gemeenten": [every place of the row], "naam", "omschrijving",
     "themes": [...], "doelgroepen": [...], "kind",
     "replicability": int | None, "reasons": [{"reden", "richting", "bewijs"}, ...],
     "group_id", "group_gemeenten": [other places with the same idea],
     and reviewer-only keys: "label_scores", "model_id", "review_notes", "review_status"}

A joint submission has one long `gemeente` string ("Amersfoort, Almere, ... en ...") and its
places in `gemeenten`; `places(record)` is what counts, lists and filters by municipality (search
and report alike), falling back to `[gemeente]` for a row without that list.

Published rows are the current version of every initiative in the catalogue: rows that failed
validation live in `rejected_rows` and are never published; a row's labels are the reviewer's where
one confirmed or corrected it, else the model's (`pipeline.store.catalogue`).
`catalogue_records(conn)` builds the records from the SQLite catalogue (pipeline/store.py). The web
page (/zoeken) and `pipeline search` are thin layers over `SearchIndex.search()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from .errors import PipelineError
from .store import KIND_NAMES, LABELS_FROM
from .text import lemma_texts, normalise

# Keys of a record that only logged-in reviewers see (model internals and review notes).
REVIEWER_ONLY_FIELDS = ("label_scores", "model_id", "review_notes", "review_status")
KINDS = tuple(KIND_NAMES)

# What users may type for a kind: the Dutch word the pages show, or the id.
KIND_WORDS = {**{kind: kind for kind in KINDS},
              **{name.casefold(): kind for kind, name in KIND_NAMES.items()}}


def places(record: dict) -> list[str]:
    """The municipalities of a record: its `gemeenten` list (a joint submission names several),
    else its one `gemeente`; [] when it has neither."""
    listed = [g for g in record.get("gemeenten") or () if g and g.strip()]
    if listed:
        return listed
    return [record["gemeente"]] if record.get("gemeente") else []


class SearchError(PipelineError, ValueError):
    """A search request that cannot be answered as asked (unknown label id, bad score)."""


def resolve_label(taxonomy, field_name: str, value: str) -> str:
    """The taxonomy id for `value`, given as an id or as its Dutch name (any case).

    Raises SearchError naming the value and the valid ids.
    """
    wanted = value.strip().casefold()
    for label in getattr(taxonomy, field_name):
        if wanted in (label.id.casefold(), label.naam.casefold()):
            return label.id
    valid = ", ".join(taxonomy.ids(field_name))
    what = "onbekend thema" if field_name == "themes" else "onbekende doelgroep"
    raise SearchError(f"{what} {value!r} / unknown {field_name} label; kies uit: {valid}")


def resolve_kind(value: str | None) -> str | None:
    """"initiatief"/"signaal" (or the ids) -> the kind id; None stays None. Raises SearchError."""
    if value is None or not value.strip():
        return None
    try:
        return KIND_WORDS[value.strip().casefold()]
    except KeyError:
        raise SearchError(
            f"onbekende soort {value!r} / unknown kind; kies "
            f"{' of '.join(name.lower() for name in KIND_NAMES.values())}"
        ) from None


def record_text(record: dict) -> str:
    """The text both channels read for a record: name and description, normalised for models.

    Mirrors `pipeline.text.model_text`, so corpus rows hit the warm embedding cache.
    """
    naam = normalise(record.get("naam") or "")
    body = normalise(record.get("omschrijving") or "")
    if naam and not body.lower().startswith(naam.lower()):
        return f"{naam}. {body}"
    return body


def excerpt(text: str | None, limit: int) -> str:
    """`text` on one line, cut at a word to at most `limit` characters (with "…" when cut)."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _minmax(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a channel that cannot tell rows apart (all equal) contributes 0."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low <= 0:
        return np.zeros_like(values)
    return (values - low) / (high - low)


class HybridRanker(BaseEstimator):
    """Rank documents for a query by dense similarity and lemma TF-IDF together.

    Parameters (keyword-only, stored as given):
        query_encoder: encoder for queries (`.embed(texts)`, e5 with "query: ").
        doc_encoder: encoder for documents; None means the query encoder.
        dense_weight: weight of the dense channel in [0, 1]; 0 is keyword-only, 1 dense-only.
        lemmatize: run the keyword channel over lemmas (True) or plain lower-cased words.

    `fit(texts)` embeds and indexes the documents and returns self; `channel_scores(query)` gives
    both scaled channels; `score(query)` their mix, one float per document.
    """

    def __init__(self, *, query_encoder=None, doc_encoder=None, dense_weight: float = 0.5,
                 lemmatize: bool = True):
        self.query_encoder = query_encoder
        self.doc_encoder = doc_encoder
        self.dense_weight = dense_weight
        self.lemmatize = lemmatize

    def _keyword_texts(self, texts: Sequence[str]) -> list[str]:
        texts = [normalise(t) for t in texts]
        return lemma_texts(texts) if self.lemmatize else [t.lower() for t in texts]

    def fit(self, texts: Sequence[str], y=None):
        """Index `texts` (already the model text of each record). Raises ValueError on a bad weight."""
        if not 0.0 <= float(self.dense_weight) <= 1.0:
            raise ValueError(f"dense_weight must lie in [0, 1], got {self.dense_weight!r}")
        if self.query_encoder is None and float(self.dense_weight) > 0:
            raise ValueError("dense_weight > 0 needs a query_encoder")
        texts = list(texts)
        self.n_documents_ = len(texts)
        doc_encoder = self.doc_encoder or self.query_encoder
        if doc_encoder is not None and texts:
            self.doc_vectors_ = np.asarray(doc_encoder.embed(texts), dtype=np.float32)
        else:
            self.doc_vectors_ = None
        keyword_docs = self._keyword_texts(texts)
        # sublinear tf: a word repeated in a long OCR text should not outweigh a short exact match.
        self.vectorizer_ = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b")
        if any(doc.strip() for doc in keyword_docs):
            self.keyword_matrix_ = self.vectorizer_.fit_transform(keyword_docs)
        else:
            self.vectorizer_ = None
            self.keyword_matrix_ = None
        return self

    def channel_scores(self, query: str) -> dict[str, np.ndarray]:
        """Both channels for `query`, each scaled to [0, 1] over the documents.

        Returns {"dense": array, "keyword": array} (length n_documents_; a channel that is off
        or has nothing to match is all zeros).
        """
        check_is_fitted(self, "n_documents_")
        n = self.n_documents_
        dense = np.zeros(n)
        if self.doc_vectors_ is not None and self.query_encoder is not None and float(self.dense_weight) > 0:
            query_vector = np.asarray(self.query_encoder.embed([normalise(query)]), dtype=np.float32)[0]
            dense = _minmax(self.doc_vectors_ @ query_vector)
        keyword = np.zeros(n)
        if self.vectorizer_ is not None:
            query_vector = self.vectorizer_.transform(self._keyword_texts([query]))
            keyword = _minmax((self.keyword_matrix_ @ query_vector.T).toarray().ravel())
        return {"dense": dense, "keyword": keyword}

    def score(self, query: str, dense_weight: float | None = None) -> np.ndarray:
        """The mixed score per document for `query` (higher is better), in [0, 1]."""
        weight = float(self.dense_weight if dense_weight is None else dense_weight)
        channels = self.channel_scores(query)
        return weight * channels["dense"] + (1.0 - weight) * channels["keyword"]


@dataclass(frozen=True)
class SearchFilters:
    """What a hit must carry. Empty tuples and None mean "no filter on this field".

    A record matches a list filter when it carries any of the listed values (theme OR theme);
    different fields combine with AND.
    """

    themes: tuple[str, ...] = ()
    doelgroepen: tuple[str, ...] = ()
    gemeenten: tuple[str, ...] = ()
    kind: str | None = None
    min_replicability: int | None = None

    def validate(self, taxonomy) -> "SearchFilters":
        """Check label ids and the minimum score against the taxonomy; return self.

        Raises SearchError naming the value."""
        for field_name, values in (("themes", self.themes), ("doelgroepen", self.doelgroepen)):
            valid = taxonomy.ids(field_name)
            for value in values:
                if value not in valid:
                    raise SearchError(
                        f"onbekend label {value!r} / unknown {field_name} id; kies uit: {', '.join(valid)}"
                    )
        if self.kind is not None and self.kind not in KINDS:
            raise SearchError(f"onbekende soort {self.kind!r} / unknown kind; kies uit: {', '.join(KINDS)}")
        if self.min_replicability is not None and self.min_replicability not in taxonomy.replicability:
            scale = _scale_text(taxonomy)
            raise SearchError(
                f"minimale overdraagbaarheid moet {scale} zijn / minimum replicability must be "
                f"{scale}, got {self.min_replicability!r}"
            )
        return self

    def matches(self, record: dict) -> bool:
        if self.themes and not set(self.themes) & set(record.get("themes") or ()):
            return False
        if self.doelgroepen and not set(self.doelgroepen) & set(record.get("doelgroepen") or ()):
            return False
        if self.gemeenten:
            wanted = {g.casefold() for g in self.gemeenten}
            if not wanted & {g.casefold() for g in places(record)}:
                return False
        if self.kind is not None and record.get("kind") != self.kind:
            return False
        if self.min_replicability is not None:
            score = record.get("replicability")
            if score is None or score < self.min_replicability:
                return False
        return True


def _scale_text(taxonomy) -> str:
    """The replicability scale as "1-5" for messages, from the taxonomy."""
    return f"{min(taxonomy.replicability)}-{max(taxonomy.replicability)}"


@dataclass
class Hit:
    """One search result: the record, its mixed score and the two channel scores behind it."""

    record: dict
    score: float
    dense: float = 0.0
    keyword: float = 0.0

    def to_dict(self, *, reviewer: bool = False, taxonomy=None, reasons_shown: int | None = None) -> dict:
        """A JSON-ready dict: id, score, the record's public fields; reviewer-only fields only
        when `reviewer` is true. With a taxonomy, Dutch label names are added."""
        out = {"id": self.record["id"], "score": round(float(self.score), 4),
               "dense": round(float(self.dense), 4), "keyword": round(float(self.keyword), 4)}
        for key, value in self.record.items():
            if key == "id" or (key in REVIEWER_ONLY_FIELDS and not reviewer):
                continue
            out[key] = value
        if reasons_shown is not None and out.get("reasons"):
            out["reasons"] = list(out["reasons"])[:reasons_shown]
        if taxonomy is not None:
            out["thema_namen"] = [taxonomy.name("themes", t) for t in self.record.get("themes") or ()]
            out["doelgroep_namen"] = [
                taxonomy.name("doelgroepen", d) for d in self.record.get("doelgroepen") or ()
            ]
        return out


@dataclass
class SearchIndex:
    """Published records and a fitted ranker over their texts, built once and queried often."""

    records: list[dict]
    ranker: HybridRanker
    signature: object = field(default=None, compare=False)

    @classmethod
    def build(cls, records: Iterable[dict], *, query_encoder, doc_encoder=None,
              dense_weight: float = 0.5, lemmatize: bool = True, signature=None) -> "SearchIndex":
        records = list(records)
        ranker = HybridRanker(query_encoder=query_encoder, doc_encoder=doc_encoder,
                              dense_weight=dense_weight, lemmatize=lemmatize)
        ranker.fit([record_text(r) for r in records])
        return cls(records=records, ranker=ranker, signature=signature)

    def search(self, query: str, filters: SearchFilters | None = None,
               limit: int | None = None) -> list[Hit]:
        """Records matching `filters`, best first for `query`, at most `limit`.

        An empty query lists the matching records by replicability (highest first), then name,
        with score 0: browsing by filters alone is a normal use of the page.
        """
        filters = filters or SearchFilters()
        query = (query or "").strip()
        keep = [i for i, r in enumerate(self.records) if filters.matches(r)]
        if query:
            channels = self.ranker.channel_scores(query)
            weight = float(self.ranker.dense_weight)
            mixed = weight * channels["dense"] + (1.0 - weight) * channels["keyword"]
            # Ties (e.g. keyword-only with no matching word) keep catalogue order: stable sort.
            keep.sort(key=lambda i: -mixed[i])
            hits = [Hit(self.records[i], float(mixed[i]), float(channels["dense"][i]),
                        float(channels["keyword"][i])) for i in keep]
        else:
            keep.sort(key=lambda i: (-(self.records[i].get("replicability") or 0),
                                     (self.records[i].get("naam") or self.records[i]["id"]).casefold()))
            hits = [Hit(self.records[i], 0.0) for i in keep]
        return hits if limit is None else hits[:limit]


def _reasons(raw) -> list[dict]:
    """Reasons as dicts {"reden", "richting", "bewijs"} (`store.reason_parts`); empty ones left out."""
    from .store import reason_parts

    return [parts for parts in map(reason_parts, raw or ()) if parts["reden"].strip()]


def catalogue_records(conn) -> list[dict]:
    """The published rows of the catalogue as search/report records (see module docstring)."""
    from . import store

    rows = store.catalogue(conn)
    # Places of a group come from its published members, not from what the grouper stored:
    # a member replaced or withdrawn since the last regroup must not be advertised.
    places_of = {row["id"]: places(row) for row in rows}
    out = []
    for row in rows:
        group = row.get("group") or {}
        own = {g.casefold() for g in places_of[row["id"]]}
        others = sorted({g for m in group.get("members") or () for g in places_of.get(m, ())
                         if g.casefold() not in own}, key=str.casefold)
        prediction = row.get("prediction") or {}
        review = row.get("review") or {}
        out.append({
            "id": row["id"],
            "gemeente": row.get("gemeente"),
            "gemeenten": places_of[row["id"]],
            "naam": row.get("naam"),
            "omschrijving": row.get("omschrijving") or "",
            "themes": list(row.get("themes") or ()),
            "doelgroepen": list(row.get("doelgroepen") or ()),
            "kind": row.get("kind"),
            "replicability": row.get("replicability"),
            "reasons": _reasons(row.get("replicability_reasons")),
            "group_id": group.get("group_id"),
            "group_gemeenten": others,
            "label_scores": prediction.get("scores"),
            "model_id": row.get("model_id"),
            "review_notes": review.get("note"),
            "review_status": row.get("labels_from"),
        })
    return out


def catalogue_groups(conn) -> list[dict]:
    """The same-idea groups of the catalogue: {"id", "label", "members"} for the report."""
    from . import store

    return [{"id": g["group_id"], "label": g.get("naam"), "members": list(g["members"])}
            for g in store.groups(conn)]


def records_from_rows(rows: Iterable[dict]) -> list[dict]:
    """Records from labelled JSONL rows (the seed format: themes, doelgroepen, kind,
    replicability, reason), without groups. Used by the benchmark and tests to search the
    labelled corpus without a catalogue."""
    out = []
    for row in rows:
        out.append({
            "id": row["id"],
            "gemeente": row.get("gemeente"),
            "gemeenten": places(row),
            "naam": row.get("naam"),
            "omschrijving": row.get("omschrijving") or "",
            "themes": list(row.get("themes") or ()),
            "doelgroepen": list(row.get("doelgroepen") or ()),
            "kind": row.get("kind"),
            "replicability": row.get("replicability"),
            "reasons": _reasons([row["reason"]] if row.get("reason") else []),
            "group_id": None,
            "group_gemeenten": [],
        })
    return out


def search_index_from_settings(records: list[dict], settings, *, signature=None) -> SearchIndex:
    """A SearchIndex over `records` with the encoders and weight from configs."""
    import dataclasses

    from .embed import encoder_from_config

    if settings.embed.encoder == "e5":
        # e5 was trained with asymmetric prefixes: queries always "query: ", documents as measured.
        query_encoder = encoder_from_config(dataclasses.replace(settings.embed, prefix="query: "))
        doc_prefix = settings.search.doc_prefix
        doc_encoder = (
            query_encoder if doc_prefix == "query: "
            else encoder_from_config(dataclasses.replace(settings.embed, prefix=doc_prefix))
        )
    else:
        # Other encoders keep the one prefix of [embed] for both sides.
        query_encoder = doc_encoder = encoder_from_config(settings.embed)
    return SearchIndex.build(records, query_encoder=query_encoder, doc_encoder=doc_encoder,
                             dense_weight=settings.search.dense_weight,
                             lemmatize=settings.text.lemmatize, signature=signature)


def text_signature(records: Sequence[dict]) -> str:
    """Identifies the texts a ranker was fitted on: labels may change, the index need not."""
    import hashlib

    digest = hashlib.sha256()
    for record in records:
        for part in (record["id"], record.get("naam") or "", record.get("omschrijving") or ""):
            digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def search_catalogue(settings, query: str, filters: SearchFilters | None = None, *,
                     limit: int | None = None, db_path=None) -> list[Hit]:
    """Search the published rows of the catalogue at `db_path` (default: [store] path).

    Returns hits best first. Raises SearchError for bad filters, StoreError for a bad file.
    """
    from . import store
    from .config import load_taxonomy

    taxonomy = load_taxonomy(settings.paths.taxonomy)
    filters = (filters or SearchFilters()).validate(taxonomy)
    db_path = db_path or settings.store.path
    if not Path(db_path).exists():
        raise SearchError(f"catalogus niet gevonden / catalogue not found: {db_path}; "
                          f"vul hem met `pipeline run --inbox DIR` of geef --db PATH")
    conn = store.connect_from_config(settings.store, db_path)
    try:
        records = catalogue_records(conn)
    finally:
        conn.close()
    index = search_index_from_settings(records, settings)
    return index.search(query, filters, limit=limit if limit is not None else settings.search.limit)


# --- web page /zoeken (registered by pipeline/web.py) -----------------------------------------

from flask import Blueprint, current_app, g, render_template, request  # noqa: E402

blueprint = Blueprint("search", __name__)

# Query-string names of the filters on /zoeken (Dutch: they show in the address bar).
PARAM_QUERY, PARAM_THEME, PARAM_GROUP, PARAM_PLACE, PARAM_KIND, PARAM_MIN = (
    "q", "thema", "doelgroep", "gemeente", "soort", "min_score")


@dataclass(frozen=True)
class CatalogueSnapshot:
    """The published records and groups of a catalogue as of `signature`
    (`store.catalogue_signature`). Shared between requests and pages: read, never modify."""

    signature: tuple
    records: list[dict]
    groups: list[dict]


def app_catalogue(conn) -> CatalogueSnapshot:
    """The records and groups of the app's catalogue, reread only when
    `store.catalogue_signature(conn)` (one cheap query) changed since the last request.

    The one cache of catalogue records of a web app: /zoeken and /rapport both read through it.
    """
    import threading

    from . import store

    cache = current_app.extensions.setdefault("pipeline.catalogue", {"lock": threading.Lock()})
    signature = store.catalogue_signature(conn)
    with cache["lock"]:
        snapshot = cache.get("snapshot")
        if snapshot is None or snapshot.signature != signature:
            snapshot = CatalogueSnapshot(signature, catalogue_records(conn), catalogue_groups(conn))
            cache["snapshot"] = snapshot
        return snapshot


def _app_cache() -> dict:
    """Per-app state of the search page: the taxonomy and the last fitted ranker."""
    import threading

    cache = current_app.extensions.setdefault("pipeline.search", {"lock": threading.Lock()})
    if "taxonomy" not in cache:
        from .config import load_taxonomy

        cache["taxonomy"] = load_taxonomy(current_app.config["SETTINGS"].paths.taxonomy)
    return cache


def current_index(snapshot: CatalogueSnapshot) -> SearchIndex:
    """A SearchIndex over the snapshot's records. The ranker is refitted only when the texts
    changed (new or changed initiatives), not when labels or reviews changed; the texts are
    compared only when the catalogue signature moved."""
    cache = _app_cache()
    with cache["lock"]:
        index = cache.get("index")
        if cache.get("catalogue_signature") != snapshot.signature:
            texts = text_signature(snapshot.records)
            if index is None or index.signature != texts:
                index = search_index_from_settings(snapshot.records,
                                                   current_app.config["SETTINGS"], signature=texts)
            cache.update(index=index, catalogue_signature=snapshot.signature)
    return SearchIndex(records=snapshot.records, ranker=index.ranker, signature=index.signature)


def filters_from_args(args, taxonomy) -> SearchFilters:
    """SearchFilters from the query string of /zoeken. Raises SearchError for a bad value."""
    def many(name):
        return tuple(v for v in args.getlist(name) if v.strip())

    minimum = args.get(PARAM_MIN, "").strip()
    if minimum and not minimum.isdigit():
        raise SearchError(
            f"minimale overdraagbaarheid moet {_scale_text(taxonomy)} zijn, niet {minimum!r}")
    return SearchFilters(
        themes=tuple(resolve_label(taxonomy, "themes", t) for t in many(PARAM_THEME)),
        doelgroepen=tuple(resolve_label(taxonomy, "doelgroepen", d) for d in many(PARAM_GROUP)),
        gemeenten=many(PARAM_PLACE),
        kind=resolve_kind(args.get(PARAM_KIND)),
        min_replicability=int(minimum) if minimum else None,
    ).validate(taxonomy)


@blueprint.get("/zoeken")
def page():
    """The public search page: published rows; model scores and review notes for reviewers only."""
    from .web import get_db

    settings = current_app.config["SETTINGS"]
    taxonomy = _app_cache()["taxonomy"]
    snapshot = app_catalogue(get_db())
    records = snapshot.records
    query = request.args.get(PARAM_QUERY, "").strip()
    error, hits, total = None, [], 0
    try:
        filters = filters_from_args(request.args, taxonomy)
    except SearchError as exc:
        error, filters = str(exc), SearchFilters()
    if error is None:
        all_hits = current_index(snapshot).search(query, filters)
        total, hits = len(all_hits), all_hits[: settings.search.limit]
    place_list = sorted({g for r in records for g in places(r)}, key=str.casefold)
    status = 400 if error else 200
    return render_template(
        "search_page.html", query=query, hits=hits, total=total, error=error, filters=filters,
        taxonomy=taxonomy, place_options=place_list, n_records=len(records), searched=bool(request.args),
        reasons_shown=settings.search.reasons_shown, is_reviewer=bool(g.get("reviewer")),
        title_chars=settings.search.title_chars, description_chars=settings.search.description_chars,
        kind_names={kind: name.lower() for kind, name in KIND_NAMES.items()},
        labels_from=LABELS_FROM, places=places, excerpt=excerpt,
    ), status
