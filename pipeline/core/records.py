"""The records that flow between rooms: `Initiative` (a row as sent), `RejectedRow` with its
`Problem`s (row, field, message, the raw row), and their JSONL files (written atomically).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from pipeline.core.municipalities import Place


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


@dataclass(frozen=True)
class Initiative:
    """One submitted initiative. `omschrijving` and `naam` are kept exactly as given."""

    id: str
    gemeente: str
    omschrijving: str
    naam: str | None = None
    gemeenten: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)
    row: int = 0
    # `gemeente` and `gemeenten` resolved to CBS codes at ingest (`core.municipalities.Place`s);
    # None when not resolved (an Initiative made in code): readers resolve it then.
    places: tuple | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        """The row as it can be written back to JSONL (extra fields included)."""
        out = {
            "id": self.id,
            "gemeente": self.gemeente,
            "gemeenten": list(self.gemeenten),
            "naam": self.naam,
            "omschrijving": self.omschrijving,
            "urls": list(self.urls),
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


def as_initiative(row) -> Initiative:
    """An `Initiative` from an `Initiative` or a mapping (catalogue record, `sqlite3.Row`, JSON
    object) with at least id and omschrijving; urls, extra and source_row are kept when present.

    Raises `ValueError` naming the missing field.
    """
    if isinstance(row, Initiative):
        return row
    if not isinstance(row, Mapping) and hasattr(row, "keys"):  # sqlite3.Row
        row = {key: row[key] for key in row.keys()}
    if not isinstance(row, Mapping):
        raise ValueError(f"expected an Initiative or a mapping, got {type(row).__name__}")
    # Only absent or blank values are missing: id 0 is a real id.
    missing = [key for key in ("id", "omschrijving")
               if row.get(key) is None or (isinstance(row.get(key), str) and not row.get(key).strip())]
    if missing:
        raise ValueError(f"row {row.get('id')!r} has no {missing[0]!r}")

    def listed(key):
        value = row.get(key) or ()
        if isinstance(value, str):
            return tuple(json.loads(value)) if value.startswith("[") else (value,)
        return tuple(value)

    places = row.get("places")
    if isinstance(places, str):
        places = json.loads(places)
    if places is not None:
        places = tuple(p if isinstance(p, Place) else Place.from_dict(p) for p in places)
    return Initiative(
        id=str(row["id"]),
        gemeente=str(row.get("gemeente") or ""),
        omschrijving=str(row["omschrijving"]),
        naam=row.get("naam") or None,
        gemeenten=listed("gemeenten"),
        urls=listed("urls"),
        extra=dict(row.get("extra") or {}),
        row=row.get("source_row") or row.get("row") or 0,
        places=places,
    )


@dataclass(frozen=True)
class RejectedRow:
    """A row that could not be accepted, with everything the user sent."""

    row: int
    id: str | None
    problems: tuple[Problem, ...]
    raw: str | dict

    @property
    def field(self) -> str:
        return ", ".join(p.field for p in self.problems)

    def message(self, source: str | None = None) -> str:
        where = f"{source}: " if source else ""
        ident = f" (id {self.id})" if self.id else ""
        details = "; ".join(f"veld '{p.field}': {p.message}" for p in self.problems)
        return f"{where}rij {self.row}{ident}: {details}"

    def to_dict(self) -> dict:
        return {
            "row": self.row,
            "id": self.id,
            "field": self.field,
            "problems": [{"field": p.field, "message": p.message} for p in self.problems],
            "message": self.message(),
            "raw": self.raw,
        }


def write_jsonl(records: Iterable[Mapping], path: str | Path) -> Path:
    """Write one JSON object per line to `path` (UTF-8, Dutch text unescaped); make its folder.

    The lines go to a temporary file beside `path` that replaces it only when every record was
    written: a reader (training, the next job) never sees half a file, and a failure mid-way
    leaves the previous file as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_rejected(rejected: list[RejectedRow], path: str | Path) -> Path:
    """Write rejected rows as JSONL (message and the raw row) to `path`."""
    return write_jsonl((item.to_dict() for item in rejected), path)


def errors_path_for(output: str | Path) -> Path:
    """Where the rejected rows of a run that writes `output` go: beside it, `NAME.errors.jsonl`."""
    output = Path(output)
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.errors.jsonl")
