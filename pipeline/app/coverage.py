"""Counts behind the report: `Count` (a figure with the ids of the rows behind it) and the
coverage of the country, `coverage_of(records, reference)`: which of the reference list's
municipalities and provinces the catalogue hears from. Pure: no I/O, no charts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from pipeline.core.municipalities import PROVINCE_ORDER, Reference


@dataclass
class Count:
    """One figure of the report: a label, how many rows, and which."""

    key: str
    label: str
    ids: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass
class ProvinceCoverage:
    """One province: how many of its municipalities the catalogue hears from, and which."""

    provincie: str
    total: int                      # its municipalities in the reference list
    gemeenten: list[Count]          # the municipalities with rows, most rows first
    rows: Count                     # every row from the province

    @property
    def n_heard(self) -> int:
        return len(self.gemeenten)


@dataclass
class Coverage:
    """How much of the country the catalogue hears from (municipalities resolved to CBS codes)."""

    n_municipalities: int           # in the reference list (342 in 2025)
    provinces: list[ProvinceCoverage]   # in the CBS order, north to south
    unplaced: Count                 # rows that name no municipality (a region, "Diverse gemeenten")
    not_municipalities: list[Count]     # those values as sent, with their rows
    reference_year: str = ""
    # The reference list has no inhabitants: the report cannot say which sizes of municipality
    # it hears from. None until a reference with inhabitants exists.
    size_classes: list[Count] | None = None

    @property
    def n_heard(self) -> int:
        return sum(p.n_heard for p in self.provinces)

    @property
    def n_provinces(self) -> int:
        return len(self.provinces)

    @property
    def n_provinces_heard(self) -> int:
        return sum(1 for p in self.provinces if p.n_heard)


def coverage_of(records: list[dict], reference: Reference) -> Coverage:
    """Which of the reference's municipalities and provinces the `records` come from. Only
    resolved municipalities count; a region or "Diverse gemeenten" is listed apart."""
    rows_of: dict[str, list[str]] = defaultdict(list)
    unplaced, not_places = [], defaultdict(list)
    for r in records:
        for code in r["gemeente_codes"]:
            rows_of[code].append(r["id"])
        if not r["gemeente_codes"]:
            unplaced.append(r["id"])
            for part in r.get("plaatsen") or ():
                not_places[part["text"]].append(r["id"])
    per_province: dict[str, list[Count]] = defaultdict(list)
    totals = Counter(m.provincie for m in reference.municipalities.values())
    for code, ids in rows_of.items():
        m = reference.municipality(code)
        per_province[m.provincie].append(Count(key=m.naam, label=m.naam, ids=ids))
    order = [p for p in PROVINCE_ORDER if p in totals] + sorted(set(totals) - set(PROVINCE_ORDER))
    provinces = []
    for provincie in order:
        heard = sorted(per_province.get(provincie, []), key=lambda c: (-c.n, c.label.casefold()))
        ids = sorted({i for c in heard for i in c.ids})
        provinces.append(ProvinceCoverage(provincie, totals[provincie], heard,
                                          Count(key=provincie, label=provincie, ids=ids)))
    return Coverage(
        n_municipalities=len(reference.municipalities),
        provinces=provinces,
        unplaced=Count(key="unplaced", label="Zonder herleidbare gemeente", ids=unplaced),
        not_municipalities=sorted((Count(key=t, label=t, ids=v) for t, v in not_places.items()),
                                  key=lambda c: (-c.n, c.label.casefold())),
        reference_year="".join(ch for ch in reference.source.rsplit("/", 1)[-1] if ch.isdigit()),
    )
