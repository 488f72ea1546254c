"""Labelled rows for training: every *.jsonl in data/labelled/, validated per row like ingest,
with reviewers' rows (source review) winning over seed rows of the same id.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.config import IngestConfig, Taxonomy
from pipeline.core.errors import TrainingDataError
from pipeline.core.records import Initiative
from pipeline.ingest.reader import validate_records
from pipeline.core.text import model_text
SOURCE_PRIORITY = {"seed": 0, "review": 1}
LABEL_FIELDS = ("themes", "doelgroepen")


# --- labelled data ---------------------------------------------------------------------------


@dataclass
class LabelledData:
    """The training rows after precedence and validation.

    rows: the labelled dicts as read (labels and any extra fields, e.g. replicability), in order of
    first appearance; initiatives: the same rows as `Initiative`; problems: one message per
    skipped row (file, row, field); files: the files read; sha256: hash of their bytes.
    """

    rows: list[dict]
    initiatives: list[Initiative]
    problems: list[str]
    files: list[Path]
    sha256: str
    from_review: int

    @property
    def texts(self) -> list[str]:
        return [model_text(i) for i in self.initiatives]


def _label_problems(row: dict, taxonomy: Taxonomy) -> list[tuple[str, str]]:
    problems = []
    for name in LABEL_FIELDS:
        value = row.get(name)
        valid = taxonomy.ids(name)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            problems.append((name, f"moet een niet-lege lijst van labels zijn, kreeg {value!r}"))
            continue
        unknown = [v for v in value if v not in valid]
        if unknown:
            problems.append((name, f"onbekend label {unknown}; geldig: {valid}"))
    if row.get("kind") not in taxonomy.kinds:
        problems.append(("kind", f"onbekend {row.get('kind')!r}; geldig: {sorted(taxonomy.kinds)}"))
    score = row.get("replicability")
    if score is not None and (isinstance(score, bool) or score not in taxonomy.replicability):
        problems.append(("replicability", f"moet een van {sorted(taxonomy.replicability)} zijn "
                                          f"(of ontbreken), kreeg {score!r}"))
    source = row.get("source", "seed")
    if source not in SOURCE_PRIORITY:
        problems.append(("source", f"onbekend {source!r}; geldig: {sorted(SOURCE_PRIORITY)}"))
    return problems


def load_labelled(folder: Path, taxonomy: Taxonomy, *,
                  limits: IngestConfig | None = None) -> LabelledData:
    """Read every `*.jsonl` in `folder` (sorted by name) into `LabelledData`.

    Precedence per id: a `source: review` row beats a `seed` row; among rows of equal rank the
    later one (later file, later line) wins. Rows with unknown labels, missing text fields or broken
    JSON are skipped with a message naming file, row and field. Raises `TrainingDataError` when the
    folder has no files or no usable row.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        raise TrainingDataError(f"{folder}: geen *.jsonl-bestanden met labels / no labelled files")
    digest = hashlib.sha256()
    chosen: dict[str, tuple[int, dict]] = {}
    order: list[str] = []
    problems: list[str] = []
    for path in files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        try:
            lines = data.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            problems.append(f"{path.name}: geen UTF-8 (byte {exc.start}); bestand overgeslagen / "
                            f"not UTF-8, file skipped")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}: rij {number}: geen geldige JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path.name}: rij {number}: geen JSON-object")
                continue
            result = validate_records([(number, row, line, None)], limits=limits)
            bad = [(p.field, p.message) for r in result.rejected for p in r.problems]
            bad += _label_problems(row, taxonomy)
            if bad:
                ident = f" (id {row.get('id')})" if row.get("id") else ""
                for name, message in bad:
                    problems.append(f"{path.name}: rij {number}{ident}: veld '{name}': {message}")
                continue
            initiative = result.accepted[0]
            rank = SOURCE_PRIORITY[row.get("source", "seed")]
            if initiative.id not in chosen:
                order.append(initiative.id)
            if initiative.id not in chosen or rank >= chosen[initiative.id][0]:
                chosen[initiative.id] = (rank, {**row, "_initiative": initiative})
    if not chosen:
        raise TrainingDataError(
            f"{folder}: geen bruikbare gelabelde rijen / no usable labelled rows:\n" + "\n".join(problems))
    rows, initiatives = [], []
    for ident in order:
        row = dict(chosen[ident][1])
        initiatives.append(row.pop("_initiative"))
        rows.append(row)
    from_review = sum(1 for ident in order if chosen[ident][0] == SOURCE_PRIORITY["review"])
    return LabelledData(rows, initiatives, problems, files, digest.hexdigest(), from_review)


def label_matrix(rows: list[dict], field_name: str, labels: list[str]) -> np.ndarray:
    """0/1 matrix (rows, labels) from each row's list in `field_name`."""
    index = {label: j for j, label in enumerate(labels)}
    Y = np.zeros((len(rows), len(labels)), dtype=int)
    for i, row in enumerate(rows):
        for label in row[field_name]:
            Y[i, index[label]] = 1
    return Y
