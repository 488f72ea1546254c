"""How often each kind of replicability reason is right, from reasons marked by hand.

A reviewer marks a reason right (1) when the text supports it in that sense, wrong (0) when not
(`bench/bench_reasons.py` writes the rounds to mark into `data/reason_audits/`). Reasons of one
kind (the same `reden` and direction: "Noemt geen doel", "+ Gebruikt een eenvoudig middel") are
right about equally often, and some kinds far less often than others. `ReasonReliability` learns
per kind the share marked right, pulled towards the share over all kinds by `prior_weight`
pseudo-marks (a kind marked twice is not trusted as 0% or 100%); a kind nobody marked gets the
overall share. The scorer shows only reasons whose kind reaches `[score] min_reason_precision`:
for a policy officer a wrong reason costs more trust than a missing one.

    marks = read_audits("data/reason_audits")         # [Mark("+", "Noemt het doel.", True), ...]
    reliability = ReasonReliability(prior_weight=2).fit(marks)
    reliability.precision("Noemt het doel.", "+")      # about 0.84
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pipeline.core.errors import ConfigError

# A reason found only in the name carries "(in de naam: '...')": the same kind of reason.
_IN_NAME = re.compile(r"\s*\(in de naam: .*\)$")
AUDIT_GLOB = "round*.tsv"


@dataclass(frozen=True)
class Mark:
    richting: str
    reden: str
    right: bool


def reason_kind(reden: str, richting: str) -> tuple[str, str]:
    """The kind of a reason: its direction and its text without the name's words."""
    return richting, _IN_NAME.sub("", reden)


def read_audits(folder: str | Path) -> list[Mark]:
    """Every marked reason in `folder`/round*.tsv (`read_audit_file`); a missing folder gives no
    marks. A reason marked in several rounds counts in each."""
    return [mark for path in sorted(Path(folder).glob(AUDIT_GLOB)) for mark in read_audit_file(path)]


def read_audit_file(path: str | Path) -> list[Mark]:
    """The marked reasons of one audit file (columns richting, reden, right; rows with `right`
    empty are not marked yet and skipped). A `right` other than 0, 1 or empty is a ConfigError
    naming file and line."""
    marks = []
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {"richting", "reden", "right"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{path}: no column(s) {sorted(missing)} in the header")
        for line, row in enumerate(reader, start=2):
            value = (row["right"] or "").strip()
            if value == "":
                continue
            if value not in ("0", "1"):
                raise ConfigError(f"{path} line {line}: right must be 0, 1 or empty, got {value!r}")
            marks.append(Mark(row["richting"], row["reden"], value == "1"))
    return marks


class ReasonReliability:
    """Share of marks right per reason kind, smoothed towards the share over all marks.

    Learned: `overall_` (share right over all marks; 1.0 without marks, so nothing is hidden),
    `counts_` ({kind: (right, marked)}).
    """

    def __init__(self, *, prior_weight: float = 2.0):
        self.prior_weight = prior_weight

    def fit(self, marks: Iterable[Mark]) -> "ReasonReliability":
        counts: dict[tuple[str, str], list[int]] = {}
        for mark in marks:
            entry = counts.setdefault(reason_kind(mark.reden, mark.richting), [0, 0])
            entry[0] += int(mark.right)
            entry[1] += 1
        total = sum(n for _, n in counts.values())
        self.overall_ = sum(r for r, _ in counts.values()) / total if total else 1.0
        self.counts_ = {kind: (r, n) for kind, (r, n) in counts.items()}
        return self

    def precision(self, reden: str, richting: str) -> float:
        right, marked = self.counts_.get(reason_kind(reden, richting), (0, 0))
        return (right + self.prior_weight * self.overall_) / (marked + self.prior_weight)

    def shows(self, reden: str, richting: str, min_precision: float) -> bool:
        """Whether a reason of this kind is shown at the cut `min_precision`."""
        return self.precision(reden, richting) >= min_precision

    def kinds(self, min_precision: float) -> list[dict]:
        """Every marked kind, most often right first: direction, reason, marks, right, smoothed
        share and whether it is shown at `min_precision` (the model card's table)."""
        rows = [{"richting": richting, "reden": reden, "marked": marked, "right": right,
                 "share": self.precision(reden, richting),
                 "shown": self.shows(reden, richting, min_precision)}
                for (richting, reden), (right, marked) in self.counts_.items()]
        return sorted(rows, key=lambda row: -row["share"])
