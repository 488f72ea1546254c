"""Bulk "model klopt" on the review queue: POST /review/bevestigen saves, for every ticked row,
one review with the model's labels (CSRF-protected like every form of the app)."""
from __future__ import annotations

import sqlite3

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for

from pipeline.app.context import get_db, get_taxonomy
from pipeline.app.review_views import _abort_dutch, store_unavailable_text, strict_int
from pipeline.catalogue import readmodel
from pipeline.catalogue.queue import QueueFilters
from pipeline.catalogue.reviews import (
    blind_for,
    labels_of,
    reviews_of,
    save_review,
    second_opinion_sampled,
    validate_labels,
)
from pipeline.core.errors import ReviewError

blueprint = Blueprint("bulk", __name__, url_prefix="/review")


@blueprint.route("/bevestigen", methods=["POST"])
def confirm_many():
    """Bulk "model klopt": for every selected queue row one review with the model's labels.

    A row that cannot be confirmed so (reviewed by this reviewer already, showing a reviewer's
    labels, a newer text version, the model's labels incomplete) is named in the message; the
    other rows are saved.
    """
    conn = get_db()
    share = current_app.config["SETTINGS"].review.second_opinion_share
    saved, conflicts, problems = 0, 0, []
    for raw in request.form.getlist("pk"):
        try:
            pk = strict_int(raw)
        except ValueError:
            abort(400)
        row = conn.execute("SELECT id, is_current FROM initiatives WHERE pk = ?", (pk,)).fetchone()
        if row is None:
            problems.append(f"intern nummer {pk}: bestaat niet")
            continue
        if not row["is_current"]:
            problems.append(f"{row['id']}: er is een nieuwe versie van de tekst; open die")
            continue
        reviews = reviews_of(conn, [pk])[pk]
        blind = blind_for(reviews, g.reviewer, sampled=second_opinion_sampled(row["id"], share))
        if any(r["reviewer"] == g.reviewer for r in reviews) or (reviews and not blind):
            problems.append(f"{row['id']}: al beoordeeld; open het initiatief om het te wijzigen")
            continue
        prediction = readmodel.latest_predictions(conn, [pk]).get(pk) or {}
        try:
            labels = validate_labels(labels_of(prediction), get_taxonomy())
        except ReviewError as exc:
            problems.append(f"{row['id']}: het model gaf geen volledige labels ({exc}); open het")
            continue
        try:
            based_on = request.form.get(f"based_on_{pk}") or None
            result = save_review(conn, initiative_pk=pk, reviewer=g.reviewer, labels=labels,
                                 based_on=strict_int(based_on) if based_on else None,
                                 note=None, blind=blind)
        except ValueError:
            abort(400)
        except ReviewError as exc:  # the account was deactivated meanwhile
            _abort_dutch(409, f"Niet opgeslagen: {exc}.")
        except sqlite3.DatabaseError as exc:
            flash(store_unavailable_text(exc) + f" ({saved} opgeslagen vóór de fout).", "conflict")
            break
        saved += 1
        conflicts += result.conflict
    if saved:
        text = f"Model klopt: {saved} {'initiatief' if saved == 1 else 'initiatieven'} opgeslagen."
        if conflicts:
            text += (f" {conflicts} daarvan intussen door een ander opgeslagen: als conflict "
                     "bewaard, het initiatief staat als betwist.")
        flash(text, "success")
    elif not problems:
        flash("Niets geselecteerd: vink de initiatieven aan waarvan de labels kloppen.", "conflict")
    if problems:
        flash("Niet opgeslagen: " + "; ".join(problems) + ".", "conflict")
    return redirect(url_for("review.queue", **QueueFilters.from_args(request.args).args()))
