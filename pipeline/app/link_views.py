"""Same-idea marks by reviewers: "zelfde idee" / "ander idee" on a pair of initiatives.

The buttons stand beside every similar initiative on the review page and every other member of
the same-idea group on the initiative page (template macro in `_idea_links.html`); one POST
(with the CSRF token like every form) stores the mark with who and when
(`pipeline.catalogue.idea_links`). The next `pipeline run` regroups with the marks in force as
must-link / cannot-link.
"""
from __future__ import annotations

import sqlite3

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from pipeline.app.auth import is_local_path
from pipeline.app.context import get_db
from pipeline.catalogue import idea_links
from pipeline.core.errors import ReviewError

blueprint = Blueprint("links", __name__, url_prefix="/review")

VERDICTS = {"zelfde": True, "ander": False}


def idea_marks(initiative_id: str) -> dict[str, dict]:
    """Other id -> the mark in force on the pair, for templates (reviewers only; {} otherwise)."""
    if not g.get("reviewer"):
        return {}
    return idea_links.marks_of(get_db(), initiative_id)


def pending_marks(marks: dict[str, dict], members) -> list[tuple[str, dict]]:
    """The marks the stored group does not show yet: a "zelfde idee" with a row outside the
    group, an "ander idee" with a row inside it (the next regroup applies them), by id."""
    members = set(members or ())
    return [(other, mark) for other, mark in sorted(marks.items())
            if mark["same"] != (other in members)]


@blueprint.app_context_processor
def _marks():
    return {"idea_marks": idea_marks, "pending_marks": pending_marks}


@blueprint.post("/zelfde-idee")
def mark():
    """Store the logged-in reviewer's mark on (initiative_id, other_id) and go back."""
    form = request.form
    first, other, verdict = form.get("initiative_id"), form.get("other_id"), form.get("oordeel")
    if not first or not other or verdict not in VERDICTS:
        abort(400)
    back = form.get("next")
    if not is_local_path(back):
        back = url_for("review.item", initiative_id=first)
    try:
        idea_links.save_link(get_db(), first, other, same=VERDICTS[verdict], reviewer=g.reviewer)
    except ReviewError as exc:
        flash(f"Niet opgeslagen: {exc}.", "error")
        return redirect(back)
    except sqlite3.DatabaseError as exc:  # disk full, read-only catalogue, locked too long
        flash(f"Niet opgeslagen: de catalogus kan nu niet worden geschreven ({type(exc).__name__}); "
              "probeer het over een paar minuten opnieuw of waarschuw de beheerder.", "error")
        return redirect(back)
    flash(f"Opgeslagen: {verdict} idee. De groepen worden bij de volgende verwerking "
          "(pipeline run) bijgewerkt.", "success")
    return redirect(back)
