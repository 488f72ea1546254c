
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable



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


def write_jsonl(records: Iterable[dict], path: str | Path) -> Path:
    """Write one JSON object per line to `path` (UTF-8, Dutch text unescaped); make its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_rejected(rejected: list[RejectedRow], path: str | Path) -> Path:
    """Write rejected rows as JSONL (message and the raw row) to `path`."""
    return write_jsonl((item.to_dict() for item in rejected), path)


def errors_path_for(output: str | Path) -> Path:
    """Where the rejected rows of a run that writes `output` go: beside it, `NAME.errors.jsonl`."""
    output = Path(output)
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.errors.jsonl")
