"""The agreement page /review/overeenstemming: how far reviewers agree when they judge the same
initiative independently (blind reviews only; pipeline.catalogue.agreement), per field, per label
and per pair of reviewers, and the disputed initiatives with what differs and who decided.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from pipeline.app.context import get_db, get_taxonomy
from pipeline.catalogue import agreement
from pipeline.catalogue.reviews import STATUS_NAMES

blueprint = Blueprint("agreement", __name__, url_prefix="/review")


@blueprint.route("/overeenstemming")
def page():
    conn = get_db()
    taxonomy = get_taxonomy()
    ratings = [rating for _, rating in agreement.ratings_of(conn)]
    labels = agreement.label_agreement(ratings, taxonomy)
    # Labels nobody chose agree 100% with an undefined kappa: listed in one line, not as rows.
    chosen = [row for row in labels if row.field not in ("themes", "doelgroepen") or row.positives]
    never = [row.naam for row in labels if row.field in ("themes", "doelgroepen") and not row.positives]
    share = current_app.config["SETTINGS"].review.second_opinion_share
    return render_template(
        "review_agreement.html",
        n_items=len(ratings),
        reviewers=sorted({name for rating in ratings for name in rating}),
        fields=agreement.field_agreement(ratings, taxonomy),
        rows=chosen,
        never=never,
        pairs=agreement.pairwise(ratings, taxonomy),
        field_names=agreement.FIELD_NAMES,
        disputes=agreement.disputes(conn, taxonomy, share=share),
        status_names=STATUS_NAMES,
        share=share,
    )
