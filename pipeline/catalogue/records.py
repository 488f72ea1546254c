"""Published catalogue records for search and the report: one plain dict per current initiative
(labels in force, replicability, group and the places of the same idea), built from the read model.
"""
from __future__ import annotations

from typing import Iterable

from pipeline.catalogue import readmodel
from pipeline.catalogue.readmodel import reason_parts


def places(record: dict) -> list[str]:
    """The municipalities of a record: its `gemeenten` list (a joint submission names several),
    else its one `gemeente`; [] when it has neither."""
    listed = [g for g in record.get("gemeenten") or () if g and g.strip()]
    if listed:
        return listed
    return [record["gemeente"]] if record.get("gemeente") else []


def excerpt(text: str | None, limit: int) -> str:
    """`text` on one line, cut at a word to at most `limit` characters (with "…" when cut)."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _reasons(raw) -> list[dict]:
    """Reasons as dicts {"reden", "richting", "bewijs"} (`readmodel.reason_parts`); empty ones left out."""

    return [parts for parts in map(reason_parts, raw or ()) if parts["reden"].strip()]


def catalogue_records(conn) -> list[dict]:
    """The published rows of the catalogue as search/report records (see module docstring)."""

    rows = readmodel.catalogue(conn)
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

    return [{"id": g["group_id"], "label": g.get("naam"), "members": list(g["members"])}
            for g in readmodel.groups(conn)]


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


