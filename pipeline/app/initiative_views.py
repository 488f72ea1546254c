"""The public page per initiative, /initiatief/<id>: what was sent, what the catalogue makes of it
(fact sheet, themes, target groups, replicability with its evidence marked in the text), where the
same idea runs too, and whether a reviewer checked the labels.

Ids come from the municipalities' files and may hold any character (spaces, "/", "?", "#", "%",
a leading "."): `InitiativeIdConverter` turns an id into one URL path segment and back, so
`url_for("initiative.page", initiative_id=...)` is the only way pages link here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from flask import Blueprint, g, render_template
from markupsafe import Markup, escape
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from pipeline.app.context import get_db, get_taxonomy
from pipeline.catalogue import readmodel
from pipeline.catalogue.readmodel import KIND_NAMES, LABELS_FROM, reason_parts
from pipeline.catalogue.records import excerpt, places
from pipeline.models.facts import ELEMENTS, NOT_NAMED, fact_sheet

blueprint = Blueprint("initiative", __name__)

# "~" escapes the characters that cannot stand in one path segment as themselves: "/" (a segment
# separator), "~" itself, and a leading "." (browsers resolve "." and ".." segments away).
_ESCAPE = "~"
_ESCAPED = re.compile(r"~([0-9A-F]{2})")


def id_to_segment(initiative_id: str) -> str:
    """`initiative_id` as one URL path segment (not yet percent-encoded): "/" -> "~2F",
    "~" -> "~7E", a leading "." -> "~2E". Inverse: `segment_to_id`.

    >>> id_to_segment("a/b ~c")
    'a~2Fb ~7Ec'
    """
    out = []
    for position, char in enumerate(initiative_id):
        if char in "/~" or (position == 0 and char == "."):
            out.append(f"{_ESCAPE}{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


def segment_to_id(segment: str) -> str:
    """The id behind a path segment made by `id_to_segment`."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), segment)


class InitiativeIdConverter(BaseConverter):
    """URL converter `<initiatief:...>`: any id as one path segment (see `id_to_segment`)."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return segment_to_id(value)

    def to_url(self, value) -> str:
        return quote(id_to_segment(str(value)), safe="~-._")


@blueprint.record_once
def _register_converter(state) -> None:
    state.app.url_map.converters["initiatief"] = InitiativeIdConverter


@dataclass(frozen=True)
class Mark:
    """One stretch of the text to mark: [start, end), its CSS class, and the anchor id given to
    its first piece (so a reason can link to its words)."""

    start: int
    end: int
    css: str
    anchor: str | None = None
    title: str = ""


def mark_text(text: str, marks: list[Mark]) -> Markup:
    """`text` HTML-escaped, with every mark's stretch wrapped in <mark>.

    Overlapping marks are cut at every boundary, so each piece of text is escaped once and
    appears once (the text content stays exactly `text`); a piece covered by several marks gets
    all their classes and titles. A mark outside the text or empty is ignored.
    """
    marks = [m for m in marks if 0 <= m.start < m.end <= len(text)]
    cuts = sorted({0, len(text), *(m.start for m in marks), *(m.end for m in marks)})
    out, anchored = [], set()
    for start, end in zip(cuts, cuts[1:]):
        piece = escape(text[start:end])
        covering = [m for m in marks if m.start <= start and end <= m.end]
        if not covering:
            out.append(piece)
            continue
        css = " ".join(dict.fromkeys(m.css for m in covering))
        title = "; ".join(dict.fromkeys(m.title for m in covering if m.title))
        anchors = [m.anchor for m in covering if m.anchor and m.anchor not in anchored]
        anchored.update(anchors)
        attributes = Markup(' class="{}"').format(css)
        if anchors:
            attributes += Markup(' id="{}"').format(anchors[0])
            # A second reason that starts on the same piece still gets a target of its own.
            piece = Markup("").join(Markup('<span id="{}"></span>').format(a) for a in anchors[1:]) + piece
        if title:
            attributes += Markup(' title="{}"').format(title)
        out.append(Markup("<mark{}>{}</mark>").format(attributes, piece))
    return Markup("").join(out)


def evidence_span(text: str, reason: dict) -> tuple[int, int] | None:
    """Where a reason's evidence stands in `text`: its own offsets when the scorer gave them
    ("start"/"end" that match the words), else the first occurrence; None when not found."""
    bewijs = reason.get("bewijs")
    if not bewijs:
        return None
    start, end = reason.get("start"), reason.get("end")
    if isinstance(start, int) and isinstance(end, int) and text[start:end] == bewijs:
        return start, end
    found = text.find(bewijs)
    return (found, found + len(bewijs)) if found >= 0 else None


def _not_found(initiative_id: str):
    exc = NotFound(f"Er is geen initiatief met nummer “{initiative_id}” in de catalogus. "
                   "Misschien is het nummer verkeerd overgenomen, of is het initiatief ingetrokken.")
    exc.dutch = True
    raise exc


def page_context(record: dict, same_idea: list[dict], taxonomy) -> dict:
    """What initiative_page.html shows for one `readmodel.catalogue` record and the other
    current members of its same-idea group."""
    text = record.get("omschrijving") or ""
    reasons, marks = [], []
    for raw in record.get("replicability_reasons") or ():
        parts = {**reason_parts(raw), **({k: raw.get(k) for k in ("start", "end")} if isinstance(raw, dict) else {})}
        if not parts["reden"].strip():
            continue
        span = evidence_span(text, parts)
        anchor = f"bewijs-{len(reasons) + 1}" if span else None
        if span:
            css = {"+": "bewijs plus", "-": "bewijs min"}.get(parts["richting"], "bewijs")
            marks.append(Mark(span[0], span[1], css, anchor, parts["reden"]))
        reasons.append({**parts, "anchor": anchor, "found": span is not None})
    review = record.get("review")
    prediction = record.get("prediction") or {}
    # A reviewer who gave another score than the model replaced the model's reasons by a note.
    note_only = bool(review) and review.get("replicability") is not None \
        and review.get("replicability") != prediction.get("replicability")
    own = {p.casefold() for p in places(record)}
    elsewhere = []
    for other in same_idea:
        where = [p for p in places(other) if p.casefold() not in own] or places(other)
        elsewhere.append({"id": other["id"], "places": where,
                          "title": other.get("naam") or excerpt(other.get("omschrijving"), 80)})
    elsewhere.sort(key=lambda o: (", ".join(o["places"]).casefold(), o["id"]))
    sheet = fact_sheet(text)
    return {
        "record": record,
        "facts": [(field, label, [span.text for span in getattr(sheet, field)])
                  for field, label in ELEMENTS.items()],
        "not_named": NOT_NAMED,
        "places": places(record),
        "partners": [p for p in places(record) if p.casefold() != (record.get("gemeente") or "").casefold()],
        "text_html": mark_text(text, marks),
        "reasons": reasons,
        "note_only": note_only,
        "elsewhere": elsewhere,
        "taxonomy": taxonomy,
        "score_max": max(taxonomy.replicability),
        "kind_names": {kind: name.lower() for kind, name in KIND_NAMES.items()},
        "labels_from": LABELS_FROM,
    }


@blueprint.get("/initiatief/<initiatief:initiative_id>")
# A hand-typed address with a raw "/" in the id ("/initiatief/buurt 7/b") still finds it; the
# pages themselves always link through the converter.
@blueprint.get("/initiatief/<path:initiative_id>", endpoint="page_typed")
def page(initiative_id: str):
    """One initiative, public. Reviewers also see who checked it and a link to review it."""
    conn = get_db()
    rows = readmodel.catalogue(conn, [initiative_id])
    if not rows:
        _not_found(initiative_id)
    record = rows[0]
    members = [m for m in (record.get("group") or {}).get("members") or () if m != record["id"]]
    same_idea = readmodel.current_initiatives(conn, members) if members else []
    context = page_context(record, same_idea, get_taxonomy())
    return render_template("initiative_page.html", is_reviewer=bool(g.get("reviewer")), **context)


__all__ = ["blueprint", "id_to_segment", "segment_to_id", "mark_text", "page_context"]
