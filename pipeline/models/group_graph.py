"""The pieces of sparse same-idea grouping: candidate neighbours, hub radii, the graph of pairs
above the threshold, clustering within its components, group descriptions and stable ids.

Memory is O(n k) for n rows and k candidate neighbours: no n x n matrix is ever made. Average
linkage only merges two clusters whose mean score is above the threshold, which needs at least one
pair above it, so every cluster lies inside one connected component of the graph of such pairs;
clustering each component on its exact (small) score matrix gives what average linkage over the
full matrix gives, as long as the candidates hold every pair above the threshold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from pipeline.models.group import CANNOT_LINK, cut
from pipeline.models.group_describe import Group, describe_groups, group_id
from pipeline.models.group_space import Encoded, MixedSpace, take

log = logging.getLogger("pipeline.group")

# Query rows per matrix product in `top_candidates` (a block x n float32 score matrix).
SEARCH_BLOCK = 1024
# How much the threshold rises per step when a component is too large to cluster whole.
GUARD_STEP = 0.1


def top_candidates(space: MixedSpace, queries: Encoded, base: Encoded, k: int,
                   query_positions: np.ndarray | None = None) -> np.ndarray:
    """For each query row, the positions in `base` of its `k` best rows by the estimated mixed
    score (e5 + lexical sketch), best first; a query's own position (`query_positions`, when the
    queries are rows of `base`) is left out. Exact search in blocks: O(block x n) memory."""
    n = len(base)
    k = min(k, n - (1 if query_positions is not None else 0))
    if k <= 0 or not len(queries):
        return np.zeros((len(queries), 0), dtype=np.int64)
    a, b, _ = space.search_weights()
    # The base rows are used where they lie (no scaled copy of n rows): the weights go on the
    # query block, and the sketch product is added into the dense one in place.
    base_dense = torch.from_numpy(np.ascontiguousarray(base.dense, dtype=np.float32))
    base_sketch = torch.from_numpy(np.ascontiguousarray(base.sketch, dtype=np.float32))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), SEARCH_BLOCK):
        stop = min(start + SEARCH_BLOCK, len(queries))
        scores = torch.from_numpy(queries.dense[start:stop] * np.float32(a)) @ base_dense.T
        scores.addmm_(torch.from_numpy(queries.sketch[start:stop] * np.float32(b)), base_sketch.T)
        if query_positions is not None:
            rows = torch.arange(stop - start)
            scores[rows, torch.from_numpy(np.asarray(query_positions[start:stop]))] = -torch.inf
        out[start:stop] = torch.topk(scores, k, dim=1).indices.numpy()
    return out


def unique_pairs(left: np.ndarray, right: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) from two position arrays, each pair once, in a fixed order."""
    low, high = np.minimum(left, right), np.maximum(left, right)
    keep = low != high
    codes = np.unique(low[keep].astype(np.int64) * n + high[keep])
    return codes // n, codes % n


def best_scores(n: int, i: np.ndarray, j: np.ndarray, scores: np.ndarray, top: int,
                previous: np.ndarray | None = None) -> np.ndarray:
    """(n, top) best scores per row among the pairs (i, j) (both ends count), merged with
    `previous` rows; missing entries are NaN. Descending."""
    rows = np.concatenate([i, j])
    values = np.concatenate([scores, scores])
    if previous is not None and previous.size:
        held = np.repeat(np.arange(len(previous)), previous.shape[1])
        rows, values = np.concatenate([rows, held]), np.concatenate([values, previous.ravel()])
        finite = ~np.isnan(values)
        rows, values = rows[finite], values[finite]
    out = np.full((n, top), np.nan)
    if top == 0 or not len(rows):
        return out
    order = np.lexsort((-values, rows))
    rows, values = rows[order], values[order]
    starts = np.searchsorted(rows, np.arange(n))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < top
    out[rows[keep], rank[keep]] = values[keep]
    return out


def hub_radius(best: np.ndarray) -> np.ndarray:
    """CSLS radius per row: the mean of its best scores (0 for a row without neighbours)."""
    if best.shape[1] == 0:
        return np.zeros(len(best))
    counts = (~np.isnan(best)).sum(axis=1)
    sums = np.nansum(best, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def components(n: int, i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """Connected components (position arrays, ascending) of the graph with edges (i, j), two or
    more rows each, in order of their smallest position."""
    graph = sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    parts = [p for p in np.split(order, bounds) if len(p) >= 2]
    return sorted(parts, key=lambda p: int(p[0]))


def component_scores(space: MixedSpace, rows: Encoded, radius: np.ndarray,
                     floor: float) -> np.ndarray:
    """The hub-corrected score matrix of a component's rows, CANNOT_LINK below the floor."""
    mixed, plain = space.block_scores(rows, rows)
    score = mixed - (radius[:, None] + radius[None, :]) / 2
    return np.where(plain >= floor, score, CANNOT_LINK)


def cluster_component(score: np.ndarray, threshold: float, linkage: str,
                      max_rows: int) -> list[np.ndarray]:
    """Clusters (local positions) of one component. A component over `max_rows` (a chain of
    pairs, each just above the threshold) is first split by raising the threshold on its pairs
    until every part fits, so memory stays bounded; that is logged."""
    if len(score) <= max_rows:
        labels = cut(score, threshold, linkage=linkage)
        return [np.flatnonzero(labels == label) for label in np.unique(labels)]
    raised = threshold
    while True:
        raised += GUARD_STEP
        i, j = np.nonzero(np.triu(score > raised, 1))
        parts = components(len(score), i, j)
        if all(len(p) <= max_rows for p in parts):
            break
    log.warning("a component of %d rows was split at threshold %.2f (max_component %d)",
                len(score), raised, max_rows)
    out = []
    for part in parts:
        out += [part[c] for c in cluster_component(score[np.ix_(part, part)], threshold,
                                                   linkage, max_rows)]
    return out


def constrained_average(score: np.ndarray, clusters: list[list[int]], fixed: list[bool],
                        new: list[bool], threshold: float) -> list[list[int]]:
    """Average linkage that starts from `clusters` (lists of local positions): repeatedly merge
    the two clusters with the highest mean pair score above `threshold`, never two clusters that
    both hold a `fixed` (stored) group and never two clusters without a `new` row, so a run only
    grows groups and forms new ones. Ties go to the first pair in cluster order."""
    k = len(clusters)
    member = np.zeros((len(score), k))
    for c, rows in enumerate(clusters):
        member[rows, c] = 1.0
    sums = member.T @ score @ member
    sizes = member.sum(axis=0)
    fixed_, new_ = np.array(fixed, bool), np.array(new, bool)
    alive = np.ones(k, bool)
    clusters = [list(c) for c in clusters]
    while True:
        mean = sums / np.outer(sizes, sizes)
        allowed = (alive[:, None] & alive[None, :] & ~np.eye(k, dtype=bool)
                   & ~(fixed_[:, None] & fixed_[None, :]) & (new_[:, None] | new_[None, :]))
        mean = np.where(allowed, mean, -np.inf)
        best = int(np.argmax(mean))
        a, b = divmod(best, k)
        if not mean[a, b] > threshold:
            break
        a, b = min(a, b), max(a, b)
        sums[a, :] += sums[b, :]
        sums[:, a] += sums[:, b]
        sizes[a] += sizes[b]
        fixed_[a] |= fixed_[b]
        new_[a] |= new_[b]
        clusters[a] += clusters[b]
        alive[b] = False
        sums[b, :] = sums[:, b] = 0.0
        sizes[b] = 1.0
    return [sorted(clusters[c]) for c in range(k) if alive[c]]


class PlainSimilarity:
    """`index.similarity_` for `describe_groups` without an n x n matrix: indexing with
    `np.ix_(rows, cols)` computes that block of plain similarities."""

    def __init__(self, space: MixedSpace, rows: Encoded):
        self.space, self.rows = space, rows

    def __getitem__(self, key):
        left, right = (np.asarray(k).ravel() for k in key)
        return self.space.block_scores(take(self.rows, left), take(self.rows, right))[1]


@dataclasses.dataclass
class DescribeView:
    """What `describe_groups` reads from an index: rows, their texts and plain similarities."""

    initiatives_: list
    texts_: list
    ids_: list
    similarity_: PlainSimilarity


def reference_ids(ids, count: int) -> list[str]:
    """A fixed spread of `count` ids (by hash, so it changes little as rows come and go): the
    rows whose words set how common a word is when naming groups."""
    return sorted(ids, key=lambda i: hashlib.sha1(i.encode("utf-8")).hexdigest())[:count]


def describe(view_of, groups: list[list[str]], reference: list[str], *, describe_members: int,
             keywords: int, name_max_words: int) -> list[Group]:
    """Groups (member id lists) with name, keywords and cohesion from at most `describe_members`
    members each (the first by id), counted against the `reference` rows; the places come from
    all members. `view_of(ids)` returns a DescribeView over those ids, in that order."""
    if not groups:
        return []
    shown = [sorted(g)[:describe_members] for g in groups]
    view_ids = list(dict.fromkeys([i for g in shown for i in g] + list(reference)))
    view = view_of(view_ids)
    where = {row_id: k for k, row_id in enumerate(view_ids)}
    described = describe_groups(view, [[where[i] for i in g] for g in shown], keywords=keywords,
                                name_max_words=name_max_words)
    by_members = {g.members: g for g in described}
    out = []
    for members, sample in zip(groups, shown):
        group = by_members[tuple(sample)]
        out.append(dataclasses.replace(group, members=tuple(sorted(members))))
    return out


def with_places(group: Group, places: dict[str, tuple[str, ...]]) -> Group:
    """`group` with the municipalities of all its members."""
    return dataclasses.replace(group, gemeenten=tuple(sorted(
        {g for m in group.members for g in places.get(m, ())})))


def stable_ids(member_lists: list[tuple[str, ...]], previous: list[Group]) -> list[str]:
    """An id per new group: the id of the stored group it mostly continues (sharing at least half
    of the members of both; the largest overlap first), else one derived from its members."""
    old_of = {m: g.group_id for g in previous for m in g.members}
    old_size = {g.group_id: len(g.members) for g in previous}
    claims = []
    for k, members in enumerate(member_lists):
        overlap: dict[str, int] = {}
        for m in members:
            if m in old_of:
                overlap[old_of[m]] = overlap.get(old_of[m], 0) + 1
        for old, count in overlap.items():
            if 2 * count >= len(members) and 2 * count >= old_size[old]:
                claims.append((-count, k, old))
    ids: list[str | None] = [None] * len(member_lists)
    taken = set()
    for _, k, old in sorted(claims):
        if ids[k] is None and old not in taken:
            ids[k] = old
            taken.add(old)
    for k, members in enumerate(member_lists):
        if ids[k] is None:
            fresh = group_id(members)
            while fresh in taken:  # only when a stored id came from these very members
                fresh = group_id([*members, fresh])
            ids[k] = fresh
            taken.add(fresh)
    return ids


class LexicalRows:
    """The lexical (sparse TF-IDF) rows of a run, each computed once from its text when first
    asked for: `rows(positions)` returns them in that order. `text_of(position)` gives a text."""

    def __init__(self, space: MixedSpace, text_of, prefilled=None):
        self.space, self.text_of = space, text_of
        self.matrix = prefilled if prefilled is not None else space.lexical([])
        self.where = {p: p for p in range(self.matrix.shape[0])} if prefilled is not None else {}

    def rows(self, positions) -> sparse.csr_matrix:
        positions = [int(p) for p in positions]
        missing = [p for p in dict.fromkeys(positions) if p not in self.where]
        if missing:
            block = self.space.lexical([self.text_of(p) for p in missing])
            start = self.matrix.shape[0]
            self.matrix = sparse.vstack([self.matrix, block], format="csr")
            self.where.update({p: start + k for k, p in enumerate(missing)})
        return self.matrix[[self.where[p] for p in positions]]
