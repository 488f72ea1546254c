"""Reviewers' same-idea marks as must-link / cannot-link constraints on a pair-score matrix.

`apply_links(score, ids, links)` takes the symmetric score matrix grouping cuts (rows in the
order of `ids`) and marks `(a, b, same)`, oldest first, and returns a new matrix in which

- must-linked rows ("zelfde idee", joined transitively) act as one row: their scores to every
  other row are replaced by the mean over the joined rows (what average linkage gives a cluster
  of them), and their scores to each other by `MUST_LINK`, so they always merge first;
- cannot-linked rows ("ander idee") score `CANNOT_LINK` against each other, as do the rows
  joined to them, so no average can lift a group holding both over any threshold.

A mark that contradicts the marks before it (a "zelfde idee" that would join two rows already
marked "ander idee", directly or through joined rows, or an "ander idee" between rows already
joined) is left out and counted in the report: the reviewers disagree and grouping does not
pick a side silently. Marks on ids not in `ids` are ignored (counted too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

# Low enough that no average can lift a group holding such a pair over any threshold (the same
# value pipeline.models.group uses for pairs below min_similarity); the must-link mirrors it.
CANNOT_LINK = -1e6
MUST_LINK = 1e6


@dataclass(frozen=True)
class LinkReport:
    """How many marks were applied, left out as contradicting earlier ones, or about absent ids."""

    must: int = 0
    cannot: int = 0
    conflicts: int = 0
    absent: int = 0

    def summary(self) -> str:
        return (f"{self.must} zelfde-idee and {self.cannot} ander-idee mark(s) applied"
                + (f", {self.conflicts} contradicting mark(s) left out" if self.conflicts else "")
                + (f", {self.absent} about rows not in this input" if self.absent else ""))


class _Components:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def root(self, k: int) -> int:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def join(self, a: int, b: int) -> None:
        self.parent[self.root(b)] = self.root(a)


def resolve_links(ids: Sequence[str], links: Iterable[tuple[str, str, bool]]
                  ) -> tuple[np.ndarray, list[tuple[int, int]], LinkReport]:
    """(component number per row, cannot-linked row pairs, report) from marks, oldest first."""
    where = {str(i): k for k, i in enumerate(ids)}
    parts = _Components(len(ids))
    cannot: list[tuple[int, int]] = []
    must = absent = conflicts = 0
    for a, b, same in links:
        if str(a) not in where or str(b) not in where or a == b:
            absent += 1
            continue
        i, j = where[str(a)], where[str(b)]
        ri, rj = parts.root(i), parts.root(j)
        if same:
            apart = any({parts.root(x), parts.root(y)} == {ri, rj} for x, y in cannot)
            if apart:
                conflicts += 1
                continue
            parts.join(i, j)
            must += 1
        else:
            if ri == rj:
                conflicts += 1
                continue
            cannot.append((i, j))
    roots = [parts.root(k) for k in range(len(ids))]
    numbers = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    report = LinkReport(must=must, cannot=len(cannot), conflicts=conflicts, absent=absent)
    return np.array([numbers[r] for r in roots], dtype=int), cannot, report


def apply_links(score: np.ndarray, ids: Sequence[str], links: Iterable[tuple[str, str, bool]]
                ) -> tuple[np.ndarray, LinkReport]:
    """`score` (symmetric, rows in the order of `ids`) with the marks applied; see the module
    docstring. Returns (new matrix, report); the input is not changed."""
    score = np.asarray(score, dtype=np.float64)
    n = len(ids)
    if score.shape != (n, n):
        raise ValueError(f"score must have shape ({n}, {n}) for {n} ids, got {score.shape}")
    component, cannot, report = resolve_links(ids, links)
    out = score.copy()
    if n == 0:
        return out, report
    count = int(component.max()) + 1
    if count < n:  # some rows are joined: average their scores block by block
        member = np.zeros((n, count))
        member[np.arange(n), component] = 1.0
        mean_of = member / member.sum(axis=0, keepdims=True)
        blocks = mean_of.T @ score @ mean_of
        out = blocks[component][:, component]
        same = component[:, None] == component[None, :]
        out[same] = MUST_LINK
        np.fill_diagonal(out, np.diag(score))
    for i, j in cannot:
        rows_i = component == component[i]
        rows_j = component == component[j]
        out[np.ix_(rows_i, rows_j)] = CANNOT_LINK
        out[np.ix_(rows_j, rows_i)] = CANNOT_LINK
    return out, report
