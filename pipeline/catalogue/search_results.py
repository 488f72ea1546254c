"""Search results: a `Hit` per matching record, hits collapsed into same-idea `IdeaResult`s, the
facet counts of the filter menus, and `idea_page`: one page of ideas from the ranked rows of a
large catalogue, in numpy (no Python loop over every hit).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pipeline.catalogue.records import places, with_places

# Keys of a record that only logged-in reviewers see (model internals and review notes).
REVIEWER_ONLY_FIELDS = ("label_scores", "model_id", "review_notes", "review_status")


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
class IdeaResult:
    """One idea on a results page: its best-ranked hit and the other hits of its same-idea group
    in ranked order, so one idea sent from ten places takes one place on the page."""

    hit: Hit
    others: list[Hit]

    @property
    def places(self) -> list[str]:
        """The other places of this idea among the hits (the group's other members' places),
        without the best hit's own, in ranked order."""
        own = {p.casefold() for p in places(self.hit.record)}
        seen, out = set(own), []
        for other in self.others:
            for place in places(other.record):
                if place.casefold() not in seen:
                    seen.add(place.casefold())
                    out.append(place)
        return out


def collapse_ideas(hits: Sequence[Hit]) -> list[IdeaResult]:
    """Hits grouped by same-idea group, each group at the rank of its best hit; a hit without a
    group is an idea of its own. Order of `hits` (best first) is kept."""
    results: list[IdeaResult] = []
    by_group: dict[object, IdeaResult] = {}
    for hit in hits:
        group = hit.record.get("group_id")
        if group is not None and group in by_group:
            by_group[group].others.append(hit)
            continue
        result = IdeaResult(hit, [])
        results.append(result)
        if group is not None:
            by_group[group] = result
    return results


FACET_FIELDS = ("themes", "doelgroepen", "gemeenten", "kind")


def facet_counts(records: Sequence[dict], filters) -> dict[str, dict[str, int]]:
    """Per filter field, how many records each option would give: every other filter applied,
    the field's own filter left out (so the counts say what choosing another option yields).

    Returns {"themes": {id: n}, "doelgroepen": {id: n}, "gemeenten": {place: n}, "kind": {id: n}}.
    """
    cleared = {"themes": (), "doelgroepen": (), "gemeenten": (), "kind": None}
    out: dict[str, dict[str, int]] = {}
    for field_name in FACET_FIELDS:
        others = dataclasses.replace(filters, **{field_name: cleared[field_name]})
        counts: dict[str, int] = {}
        for record in records:
            if not others.matches(record):
                continue
            if field_name == "gemeenten":
                values = places(record)
            elif field_name == "kind":
                values = [record["kind"]] if record.get("kind") else []
            else:
                values = record.get(field_name) or ()
            for value in dict.fromkeys(values):
                counts[value] = counts.get(value, 0) + 1
        out[field_name] = counts
    return out


def group_keys(records: Sequence[dict]) -> np.ndarray:
    """One int per record: records of one same-idea group share it; a record without a group
    has one of its own."""
    codes: dict = {}
    n = len(records)
    return np.fromiter((codes.setdefault(g, len(codes)) if (g := r.get("group_id")) is not None
                        else n + i for i, r in enumerate(records)), dtype=np.int64, count=n)


def idea_page(rows: np.ndarray, keys: np.ndarray, hit_at: Callable[[int], Hit], *, start: int,
              count: int) -> tuple[list[IdeaResult], int]:
    """Ideas `start` .. `start + count` of the ranked record positions `rows` (best first), as
    `collapse_ideas` would give them, and how many ideas there are in all. `keys` is
    `group_keys(records)`; `hit_at(i)` makes the Hit of record i. Only the hits shown are made.
    """
    ranked_keys = keys[rows]
    _, first = np.unique(ranked_keys, return_index=True)
    firsts = np.sort(first)[start:start + count]
    members: dict[int, list[int]] = {}
    for position in np.flatnonzero(np.isin(ranked_keys, ranked_keys[firsts])):
        members.setdefault(int(ranked_keys[position]), []).append(int(position))
    ideas = []
    for position in firsts:
        best, *others = members[int(ranked_keys[position])]
        ideas.append(IdeaResult(hit_at(int(rows[best])), [hit_at(int(rows[p])) for p in others]))
    return ideas, len(first)


class FilterMasks:
    """`SearchFilters.matches` over every record at once: one boolean array per label, place
    and kind, built once per catalogue state, combined per request in numpy."""

    def __init__(self, records: Sequence[dict]):
        n = len(records)
        self.n = n
        self.values: dict[str, dict[str, np.ndarray]] = {}
        for name, values_of in (
                ("themes", lambda r: r.get("themes") or ()),
                ("doelgroepen", lambda r: r.get("doelgroepen") or ()),
                ("gemeenten", lambda r: with_places(r)["gemeente_codes"]),
                # A municipality filter given as a name (not a code) matches the CBS names.
                ("gemeente_namen", lambda r: [g.casefold() for g in with_places(r)["gemeenten"]]),
                ("provincies", lambda r: with_places(r)["provincies"]),
                ("plaatsen", lambda r: with_places(r)["gemeenten"]),  # what facets count
                ("kind", lambda r: [r["kind"]] if r.get("kind") else [])):
            rows: dict[str, list[int]] = {}
            for i, record in enumerate(records):
                for value in dict.fromkeys(values_of(record)):
                    rows.setdefault(value, []).append(i)
            self.values[name] = {v: self._mask(ix) for v, ix in rows.items()}
        self.replicability = np.array([r.get("replicability") if r.get("replicability") is not None
                                       else -1 for r in records], dtype=np.int64).reshape(n)

    def _mask(self, rows: list[int]) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[rows] = True
        return mask

    def _any(self, name: str, wanted) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        for value in wanted:
            found = self.values[name].get(value)
            if found is not None:
                mask |= found
        return mask

    # facet field -> the masks its counts are taken over
    FACETS = {"themes": "themes", "doelgroepen": "doelgroepen", "gemeenten": "plaatsen", "kind": "kind"}

    def facet_counts(self, filters) -> dict[str, dict[str, int]]:
        """`facet_counts(records, filters)`, from the masks."""
        cleared = {"themes": (), "doelgroepen": (), "gemeenten": (), "kind": None}
        out = {}
        for field_name in FACET_FIELDS:
            keep = self.mask(dataclasses.replace(filters, **{field_name: cleared[field_name]}))
            counts = {value: int(np.count_nonzero(keep & mask))
                      for value, mask in self.values[self.FACETS[field_name]].items()}
            out[field_name] = {value: n for value, n in counts.items() if n}
        return out

    def mask(self, filters) -> np.ndarray:
        """Which records match `filters` (a `SearchFilters`), as `filters.matches` says."""
        keep = np.ones(self.n, dtype=bool)
        if filters.themes:
            keep &= self._any("themes", filters.themes)
        if filters.doelgroepen:
            keep &= self._any("doelgroepen", filters.doelgroepen)
        if filters.gemeenten:
            keep &= self._any("gemeenten", filters.gemeenten) | self._any(
                "gemeente_namen", [g.casefold() for g in filters.gemeenten])
        if filters.provincies:
            keep &= self._any("provincies", filters.provincies)
        if filters.kind is not None:
            keep &= self._any("kind", [filters.kind])
        if filters.min_replicability is not None:
            keep &= self.replicability >= filters.min_replicability
        return keep
