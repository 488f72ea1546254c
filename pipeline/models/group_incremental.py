"""Same-idea groups that grow with the catalogue: a sparse full grouping and incremental updates.

`GraphGrouper.fit(rows)` groups like `Grouper` (same channels, standardisation, hub correction,
floor and average linkage at `threshold`) but from each row's `graph_neighbours` candidate
neighbours instead of n x n matrices (see `pipeline.models.group_graph`), and keeps what a later
run needs in `state_` (a `GroupingState`: the fitted space, each row's e5 vector, lexical sketch
and best scores, and the groups with their ids).

`GraphGrouper.update(state, rows)` takes the current rows: rows that are gone or whose text
changed leave their groups (a group left with one row ends), new rows join the stored group they
are closest to on average or form new groups among themselves and rows that were alone, by
average linkage that never merges two stored groups and never regroups rows that were already
settled. A stored group keeps its id as it grows; a new group's id comes from its members.
`needs_full(state, rows)` says when a full fit is due instead: other settings or encoder, or the
catalogue grown `refit_growth` times since the last full fit (the scale and idf then drift).
A full fit keeps the id of each stored group it mostly continues (`stable_ids`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClusterMixin

from pipeline.core.records import Initiative, as_initiative
from pipeline.models.group import LINKAGES, Grouper, group_text
from pipeline.models.group_describe import Group
from pipeline.models.group_graph import (DescribeView, LexicalRows, PlainSimilarity, best_scores,
                                         cluster_component, component_scores, components,
                                         constrained_average, describe, hub_radius,
                                         reference_ids, stable_ids, top_candidates,
                                         unique_pairs, with_places)
from pipeline.models.constraints import apply_links, resolve_links
from pipeline.models.group_space import Encoded, MixedSpace, take
from pipeline.models.group_describe import _gemeenten

STATE_VERSION = 2


@dataclasses.dataclass
class GroupingState:
    """What the next run needs: the fitted `space`, per row (in `ids` order) the text hash, the
    unit e5 vector, the lexical sketch and the best mixed scores (`best`, NaN-padded), all
    groups, the rows of the last full fit (`n_fitted`) and the settings `fingerprint`."""

    fingerprint: str
    space: MixedSpace
    ids: list[str]
    text_hashes: list[str]
    dense: np.ndarray
    sketch: np.ndarray
    best: np.ndarray
    groups: list[Group]
    n_fitted: int
    lexical: sparse.csr_matrix | None = None  # the rows' TF-IDF: exact scores without rehashing
    described: dict = dataclasses.field(default_factory=dict)  # group id -> size when named
    token: str = ""  # matched with the catalogue's, so a state from an interrupted run is not used

    def save(self, path: Path) -> Path:
        """Write to `path` (a .npz file; written beside and renamed, so never half written)."""
        path = Path(path)
        meta = {"version": STATE_VERSION, "fingerprint": self.fingerprint, "ids": self.ids,
                "text_hashes": self.text_hashes, "n_fitted": self.n_fitted, "token": self.token,
                "described": self.described,
                "groups": [dataclasses.asdict(g) for g in self.groups],
                "space": {**self.space.get_params(), "n_fitted_": self.space.n_fitted_,
                          "dense_moments_": self.space.dense_moments_,
                          "lexical_moments_": self.space.lexical_moments_}}
        tmp = path.with_name(path.name + ".tmp.npz")
        lexical = self.lexical.tocsr()
        np.savez(tmp, meta=np.array(json.dumps(meta)), idf=self.space.idf_, dense=self.dense,
                 sketch=self.sketch, best=self.best, lexical_data=lexical.data,
                 lexical_indices=lexical.indices, lexical_indptr=lexical.indptr)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "GroupingState | None":
        """The state in `path`, or None when there is none or it is of another version."""
        path = Path(path)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("version") != STATE_VERSION:
                return None
            params = meta["space"]
            space = MixedSpace(**{k: v for k, v in params.items() if not k.endswith("_")})
            space.idf_ = data["idf"]
            space.n_fitted_ = params["n_fitted_"]
            space.dense_moments_ = tuple(params["dense_moments_"])
            space.lexical_moments_ = tuple(params["lexical_moments_"])
            groups = [Group(g["group_id"], tuple(g["members"]), tuple(g["gemeenten"]), g["naam"],
                            tuple(g["kernwoorden"]), g["cohesie"]) for g in meta["groups"]]
            lexical = sparse.csr_matrix(
                (data["lexical_data"], data["lexical_indices"], data["lexical_indptr"]),
                shape=(len(meta["ids"]), len(space.idf_)))
            return cls(meta["fingerprint"], space, meta["ids"], meta["text_hashes"],
                       data["dense"], data["sketch"], data["best"], groups, meta["n_fitted"],
                       lexical, meta.get("described", {}), meta.get("token", ""))


def text_hash(row: Initiative) -> str:
    """A hash of the fields the grouping reads (cheap: no text normalisation)."""
    return hashlib.sha1(f"{row.naam or ''}\0{row.omschrijving}".encode("utf-8")).hexdigest()


class GraphGrouper(ClusterMixin, BaseEstimator):
    """Same-idea groups from a sparse graph of candidate neighbours; see the module docstring.

    Parameters mirror `[group]` in configs/pipeline.toml. `fit(X, vectors=None, previous=None)`
    sets `groups_` (largest first), `labels_` (input order), `state_`; `update(state, X)` sets
    `groups_`, `state_` and `changed_` (ids of groups that are new or changed).
    """

    def __init__(self, *, encoder=None, text: str = "naam+omschrijving", dense_weight: float = 0.5,
                 char_ngram_min: int = 3, char_ngram_max: int = 5, hub_neighbours: int = 10,
                 linkage: str = "average", threshold: float = -0.2, min_similarity: float = 0.46,
                 min_size: int = 2, keywords: int = 5, name_max_words: int = 8,
                 sketch_dims: int = 512, graph_neighbours: int = 30, max_component: int = 3000,
                 describe_members: int = 50, describe_reference: int = 1000,
                 refit_growth: float = 2.0):
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
        self.sketch_dims = sketch_dims
        self.graph_neighbours = graph_neighbours
        self.max_component = max_component
        self.describe_members = describe_members
        self.describe_reference = describe_reference
        self.refit_growth = refit_growth

    @classmethod
    def from_config(cls, config, encoder=None) -> "GraphGrouper":
        """A GraphGrouper with the settings of `[group]` (a `GroupConfig`)."""
        names = [n for n in cls._get_param_names() if n != "encoder"]
        return cls(encoder=encoder, **{name: getattr(config, name) for name in names})

    def fingerprint(self) -> str:
        """Settings and encoder: a state made with another fingerprint needs a full fit."""
        params = {k: v for k, v in self.get_params().items() if k != "encoder"}
        params["encoder"] = getattr(self.encoder, "encoder_id", None)
        return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()

    def _validate(self) -> None:
        if self.linkage not in LINKAGES:
            raise ValueError(f"linkage must be one of {LINKAGES}, got {self.linkage!r}")
        if self.min_size < 2:
            raise ValueError(f"min_size must be at least 2, got {self.min_size!r}")
        if self.graph_neighbours < max(self.hub_neighbours, 1):
            raise ValueError(f"graph_neighbours must be at least hub_neighbours "
                             f"({self.hub_neighbours}), got {self.graph_neighbours!r}")
        if self.refit_growth < 1.0:
            raise ValueError(f"refit_growth must be at least 1, got {self.refit_growth!r}")

    def _space(self) -> MixedSpace:
        return MixedSpace(dense_weight=self.dense_weight, char_ngram_min=self.char_ngram_min,
                          char_ngram_max=self.char_ngram_max, sketch_dims=self.sketch_dims)

    def _embed(self, texts: list[str], vectors) -> np.ndarray:
        if vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise ValueError(f"vectors must have shape ({len(texts)}, d), got {vectors.shape}")
            return vectors
        if self.encoder is None:
            raise ValueError("pass `vectors` or give the grouper an `encoder`")
        return np.asarray(self.encoder.embed(texts), dtype=np.float32)

    @staticmethod
    def _rows(X) -> list[Initiative]:
        rows = [as_initiative(row) for row in X]
        ids = [row.id for row in rows]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"ids must be unique; repeated: {dupes[:5]}")
        return rows

    def _describe(self, member_lists, space, rows_by_id, position, dense, lexical: LexicalRows,
                  ids) -> list[Group]:
        places = {i: _gemeenten(rows_by_id[i]) for g in member_lists for i in g}

        def view_of(some):
            where = [position[i] for i in some]
            encoded = Encoded(dense[where], lexical.rows(where), np.zeros((len(some), 0)))
            return DescribeView([rows_by_id[i] for i in some],
                                [lexical.text_of(p) for p in where], list(some),
                                PlainSimilarity(space, encoded))

        groups = describe(view_of, member_lists, reference_ids(ids, self.describe_reference),
                          describe_members=self.describe_members, keywords=self.keywords,
                          name_max_words=self.name_max_words)
        return [with_places(g, places) for g in groups]

    # --- a full grouping -----------------------------------------------------------------------

    def fit(self, X, y=None, *, vectors=None, previous: list[Group] | None = None, links=()):
        """`links`: reviewers' marks `(a, b, same)`, oldest first: a "zelfde idee" pair is joined
        into one component and must-linked inside it, an "ander idee" pair never shares a group
        (`pipeline.models.constraints`); `links_report_` says how many were applied."""
        self._validate()
        rows = self._rows(X)
        order = np.argsort(np.array([r.id for r in rows], dtype=object), kind="stable")
        sorted_rows = [rows[i] for i in order]
        ids = [r.id for r in sorted_rows]
        joined, _, self.links_report_ = resolve_links(ids, links)
        texts = [group_text(r, self.text) for r in sorted_rows]
        if vectors is not None:
            vectors = self._embed(texts, np.asarray(vectors, dtype=np.float32)[order])
        dense = self._embed(texts, vectors) if len(rows) else np.zeros((0, 0), np.float32)
        n = len(rows)
        if n == 0:
            self.groups_, self.labels_, self.state_ = [], np.arange(0), None
            return self
        space = self._space()
        encoded = space.fit_encode(texts, vectors=dense)
        if n < 2:
            self.groups_, self.labels_ = [], np.arange(n)
            self.state_ = self._state(space, sorted_rows, encoded,
                                      np.full((n, self.hub_neighbours), np.nan), [])
            return self
        candidates = top_candidates(space, encoded, encoded, self.graph_neighbours,
                                    query_positions=np.arange(n))
        i, j = unique_pairs(np.repeat(np.arange(n), candidates.shape[1]), candidates.ravel(), n)
        mixed, plain = space.pair_scores(encoded, i, encoded, j)
        best = best_scores(n, i, j, mixed, self.hub_neighbours)
        radius = hub_radius(best)
        above = (mixed - (radius[i] + radius[j]) / 2 > self.threshold) & (plain >= self.min_similarity)
        # Rows a reviewer joined share a component: their pairs are edges whatever they score.
        first = np.unique(joined, return_index=True)[1]
        must_i, must_j = np.arange(n), first[joined]
        keep = must_i != must_j
        clusters = []
        for part in components(n, np.concatenate([i[above], must_i[keep]]),
                               np.concatenate([j[above], must_j[keep]])):
            score = component_scores(space, take(encoded, part), radius[part], self.min_similarity)
            if len(links):
                score, _ = apply_links(score, [ids[p] for p in part], links)
            clusters += [part[c] for c in cluster_component(score, self.threshold, self.linkage,
                                                            self.max_component)]
        member_lists = [tuple(ids[p] for p in c) for c in clusters if len(c) >= self.min_size]
        rows_by_id = dict(zip(ids, sorted_rows))
        position = {row_id: k for k, row_id in enumerate(ids)}
        lexical = LexicalRows(space, texts.__getitem__, prefilled=encoded.lexical)
        groups = self._describe(member_lists, space, rows_by_id, position, encoded.dense, lexical,
                                ids)
        new_ids = stable_ids([g.members for g in groups], previous or [])
        groups = sorted((dataclasses.replace(g, group_id=k) for g, k in zip(groups, new_ids)),
                        key=lambda g: (-len(g.members), g.members))
        self.groups_ = groups
        label_of = {m: k for k, g in enumerate(groups) for m in g.members}
        labels, extra = [], len(groups)
        for row in rows:
            if row.id in label_of:
                labels.append(label_of[row.id])
            else:
                labels.append(extra)
                extra += 1
        self.labels_ = np.array(labels, dtype=int)
        self.state_ = self._state(space, sorted_rows, encoded, best, groups)
        return self

    def fit_predict(self, X, y=None, *, vectors=None, links=()):
        return self.fit(X, vectors=vectors, links=links).labels_

    def _state(self, space, rows, encoded, best, groups) -> GroupingState:
        return GroupingState(self.fingerprint(), space, [r.id for r in rows],
                             [text_hash(r) for r in rows], encoded.dense, encoded.sketch,
                             best.astype(np.float32), list(groups), len(rows), encoded.lexical,
                             {g.group_id: len(g.members) for g in groups})

    # --- an incremental update -----------------------------------------------------------------

    def needs_full(self, state: GroupingState | None, X) -> str | None:
        """Why `update` cannot be used (a full fit is due), or None."""
        if state is None:
            return "no stored grouping"
        if state.fingerprint != self.fingerprint():
            return "settings or encoder changed"
        if len(X) > self.refit_growth * max(state.n_fitted, 1):
            return f"catalogue grew from {state.n_fitted} to {len(X)} rows since the last full grouping"
        return None

    def update(self, state: GroupingState, X, *, vectors=None):
        """Bring `state` up to the rows `X` (all current rows); `vectors`: e5 vectors of the
        rows of `X` that are new (in their order in `X`), when not embedded by the encoder."""
        self._validate()
        rows = self._rows(X)
        rows_by_id = {r.id: r for r in rows}
        hashes = {r.id: text_hash(r) for r in rows}
        kept = [k for k, i in enumerate(state.ids) if hashes.get(i) == state.text_hashes[k]]
        kept_ids = [state.ids[k] for k in kept]
        kept_set = set(kept_ids)
        new_rows = [r for r in rows if r.id not in kept_set]
        new_texts = [group_text(r, self.text) for r in new_rows]
        new_vectors = self._embed(new_texts, vectors) if new_rows else None
        order = np.argsort(np.array([r.id for r in new_rows], dtype=object), kind="stable")
        new_rows = [new_rows[i] for i in order]
        new_texts = [new_texts[i] for i in order]
        space = state.space
        new = space.encode(new_texts, new_vectors[order]) if new_rows else None
        n_old, n_new = len(kept), len(new_rows)
        ids = kept_ids + [r.id for r in new_rows]
        n = len(ids)
        texts = {n_old + k: t for k, t in enumerate(new_texts)}

        def text_of(p):
            if p not in texts:
                texts[p] = group_text(rows_by_id[ids[p]], self.text)
            return texts[p]

        # Usually every stored row is kept: then the stored arrays are used as they are, not
        # copied by an index first (at 100,000 rows the lexical rows alone are about 1 GB).
        if len(kept) == len(state.ids):
            def stored(array):
                return array
        else:
            def stored(array):
                return array[kept]
        lexical = LexicalRows(space, text_of, prefilled=sparse.vstack(
            [stored(state.lexical)] + ([new.lexical] if new_rows else []), format="csr"))
        dense = np.vstack([stored(state.dense)] + ([new.dense] if new_rows else []))
        sketch = np.vstack([stored(state.sketch)] + ([new.sketch] if new_rows else []))
        old_best = stored(state.best)
        # Groups lose rows that are gone; a group left with fewer than min_size rows ends.
        changed, groups = set(), []
        for group in state.groups:
            members = tuple(m for m in group.members if m in kept_set)
            if len(members) >= self.min_size:
                groups.append(dataclasses.replace(group, members=members))
                if len(members) != len(group.members):
                    changed.add(group.group_id)
        if n_new == 0 or n < 2:
            return self._finish(state, space, ids, rows_by_id, dense, sketch, old_best, groups,
                                changed, lexical)
        everything = Encoded(dense, None, sketch)
        new_positions = np.arange(n_old, n)
        candidates = top_candidates(space, new, everything, self.graph_neighbours,
                                    query_positions=new_positions)
        i, j = unique_pairs(np.repeat(new_positions, candidates.shape[1]), candidates.ravel(), n)
        lexical_rows = np.unique(np.concatenate([i, j]))
        local = {int(p): k for k, p in enumerate(lexical_rows)}
        encoded = Encoded(dense[lexical_rows], lexical.rows(lexical_rows), sketch[lexical_rows])
        li, lj = np.array([local[p] for p in i]), np.array([local[p] for p in j])
        mixed, plain = space.pair_scores(encoded, li, encoded, lj)
        best = best_scores(n, i, j, mixed, self.hub_neighbours,
                           previous=np.vstack([old_best, np.full((n_new, old_best.shape[1]), np.nan)]))
        radius = hub_radius(best)
        above = (mixed - (radius[i] + radius[j]) / 2 > self.threshold) & (plain >= self.min_similarity)
        group_of = {m: g for g, group in enumerate(groups) for m in group.members}
        position = {row_id: k for k, row_id in enumerate(ids)}
        # Members of one stored group are tied together, so a component holds whole groups.
        tie_i, tie_j = [], []
        for group in groups:
            first = position[group.members[0]]
            for m in group.members[1:]:
                tie_i.append(first)
                tie_j.append(position[m])
        edge_i = np.concatenate([i[above], np.array(tie_i, dtype=np.int64)])
        edge_j = np.concatenate([j[above], np.array(tie_j, dtype=np.int64)])
        grown: dict[int, list[str]] = {}
        fresh: list[tuple[str, ...]] = []
        touched = [part for part in components(n, edge_i, edge_j) if part[-1] >= n_old]
        lexical.rows(np.concatenate(touched) if touched else [])  # one batch for all of them
        for part in touched:
            units: dict[object, list[int]] = {}
            for k, p in enumerate(part):
                key = group_of.get(ids[p], ("row", int(p)))
                units.setdefault(key, []).append(k)
            keys = list(units)
            rows_here = Encoded(dense[part], lexical.rows(part), sketch[part])
            score = component_scores(space, rows_here, radius[part], self.min_similarity)
            clusters = constrained_average(
                score, [units[key] for key in keys], [not isinstance(key, tuple) for key in keys],
                [isinstance(key, tuple) and key[1] >= n_old for key in keys], self.threshold)
            for cluster in clusters:
                members = [ids[part[c]] for c in cluster]
                stored = {group_of[m] for m in members if m in group_of}
                if stored:
                    g = stored.pop()
                    if len(members) > len(groups[g].members):
                        grown[g] = members
                elif len(members) >= self.min_size:
                    fresh.append(tuple(sorted(members)))
        for g, members in grown.items():
            groups[g] = dataclasses.replace(groups[g], members=tuple(sorted(members)))
            changed.add(groups[g].group_id)
        taken = {g.group_id for g in groups}
        for members in fresh:
            group_id = stable_ids([members], [])[0]
            while group_id in taken:
                group_id = stable_ids([(*members, group_id)], [])[0]
            taken.add(group_id)
            groups.append(Group(group_id, members, (), "", (), 0.0))
            changed.add(group_id)
        return self._finish(state, space, ids, rows_by_id, dense, sketch, best, groups, changed,
                            lexical)

    def _finish(self, state, space, ids, rows_by_id, dense, sketch, best, groups, changed,
                lexical):
        position = {row_id: k for k, row_id in enumerate(ids)}
        before = {g.group_id: g for g in state.groups}
        todo = []
        for k, group in enumerate(groups):
            if group.group_id not in changed:
                continue
            old = before.get(group.group_id)
            named_at = state.described.get(group.group_id, 0)
            if old is not None and (self._sample(old) == self._sample(group)
                                    or len(group.members) < 2 * named_at):
                # Named from (nearly) the same members: keep name and keywords until the group
                # has doubled since; its places always follow its members.
                places = {m: _gemeenten(rows_by_id[m]) for m in group.members}
                groups[k] = with_places(dataclasses.replace(old, members=group.members), places)
            else:
                todo.append(k)
        described = self._describe([list(groups[k].members) for k in todo], space, rows_by_id,
                                   position, dense, lexical, ids)
        named = dict(state.described)
        for k, group in zip(todo, described):
            groups[k] = dataclasses.replace(group, group_id=groups[k].group_id)
            named[groups[k].group_id] = len(group.members)
        groups.sort(key=lambda g: (-len(g.members), g.members))
        self.groups_ = groups
        self.changed_ = sorted(changed)
        live = {g.group_id for g in groups}
        rows = lexical.matrix
        if rows.shape[0] != len(ids):  # a row slice copies the whole matrix: only when needed
            rows = rows[:len(ids)]
        self.state_ = GroupingState(state.fingerprint, space, ids,
                                    [text_hash(rows_by_id[i]) for i in ids], dense, sketch,
                                    best.astype(np.float32), groups, state.n_fitted, rows,
                                    {k: v for k, v in named.items() if k in live})
        return self

    def _sample(self, group: Group) -> tuple[str, ...]:
        """The members a group's name and keywords are read from."""
        return tuple(sorted(group.members)[:self.describe_members])


def grouper_from_config(config, encoder=None):
    """The grouper `[group] method` names: a `GraphGrouper` ("graph") or `Grouper` ("dense")."""
    if config.method == "dense":
        return Grouper.from_config(config, encoder=encoder)
    return GraphGrouper.from_config(config, encoder=encoder)
