"""Published catalogue records for search and the report: one plain dict per current initiative
(labels in force, replicability, group and the places of the same idea), built from the read model.
"""
from __future__ import annotations

from typing import Iterable

from pipeline.catalogue import readmodel
from pipeline.catalogue.readmodel import reason_parts
from pipeline.core.municipalities import Place, Reference, default_reference


def resolved_places(row: dict, reference: Reference | None = None) -> list[Place]:
    """The municipalities of a stored or labelled row as resolved at ingest (`row["places"]`),
    or resolved now for a row stored before that (or made in code) with `reference` (None: the
    configured one)."""
    stored = row.get("places")
    if stored is not None:
        return [p if isinstance(p, Place) else Place.from_dict(p) for p in stored]
    reference = reference or default_reference()
    listed = [g for g in row.get("gemeenten") or () if g and g.strip()]
    return list(reference.resolve_row(row.get("gemeente") or "", listed, row.get("omschrijving")).places)


def place_fields(places: Iterable[Place]) -> dict:
    """What a published record says about where it comes from: `gemeenten` (CBS names of the
    resolved municipalities, once each), `gemeente_codes`, `provincies`, and `plaatsen` (every
    part as sent with how it resolved, regions and "diverse gemeenten" included)."""
    places = list(places)
    by_code = {p.code: p for p in places if p.code}
    return {
        "gemeenten": [p.naam for p in by_code.values()],
        "gemeente_codes": list(by_code),
        "provincies": list(dict.fromkeys(p.provincie for p in by_code.values())),
        "plaatsen": [p.to_dict() for p in places],
    }


def with_places(record: dict, reference: Reference | None = None) -> dict:
    """`record` with `place_fields` (a copy; the record itself when it has them already)."""
    if "gemeente_codes" in record:
        return record
    return {**record, **place_fields(resolved_places(record, reference))}


def places(record: dict) -> list[str]:
    """The municipalities of a record (CBS names), resolved from `gemeente` and `gemeenten`: a
    joint submission names several; a region or "Diverse gemeenten" names none. What search and
    the report count, list and filter by."""
    return list(with_places(record)["gemeenten"])


def excerpt(text: str | None, limit: int) -> str:
    """`text` on one line, cut at a word to at most `limit` characters (with "…" when cut)."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _reasons(raw) -> list[dict]:
    """Reasons as dicts {"reden", "richting", "bewijs"} (`readmodel.reason_parts`); empty ones left out."""

    return [parts for parts in map(reason_parts, raw or ()) if parts["reden"].strip()]


def catalogue_records(conn, reference: Reference | None = None, ids: Iterable[str] | None = None) -> list[dict]:
    """The published rows of the catalogue (or of `ids`, looked up in SQL) as search/report
    records (see module docstring), ordered by id.

    Municipalities are those resolved at ingest; rows stored before are resolved with
    `reference` (None: the configured one)."""

    rows = readmodel.catalogue(conn, ids)
    if ids is not None:
        # The places of a group come from its members, also those not asked for.
        wanted = {row["id"] for row in rows}
        members = {m for row in rows for m in (row.get("group") or {}).get("members") or ()} - wanted
        place_rows = rows + readmodel.current_initiatives(conn, sorted(members))
    else:
        place_rows = rows
    if reference is None and any(row.get("places") is None for row in place_rows):
        reference = default_reference()  # once, not per row
    where = {row["id"]: place_fields(resolved_places(row, reference)) for row in place_rows}
    # Places of a group come from its published members, not from what the grouper stored:
    # a member replaced or withdrawn since the last regroup must not be advertised.
    places_of = {row_id: fields["gemeenten"] for row_id, fields in where.items()}
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
            **where[row["id"]],
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
    reference = default_reference()
    for row in rows:
        out.append({
            "id": row["id"],
            "gemeente": row.get("gemeente"),
            **place_fields(resolved_places(row, reference)),
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


