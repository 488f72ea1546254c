"""The labelling guide in the app, /review/gids: every label's Dutch name and description, the
kinds and the replicability scale, all from configs/taxonomy.toml (the one source; the item page
shows the same texts next to its checkboxes), with the rules of the labelling guide in Dutch.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from pipeline.app.context import get_taxonomy
from pipeline.catalogue.reviews import score_scale

blueprint = Blueprint("guide", __name__, url_prefix="/review")


@blueprint.route("/gids")
def page():
    taxonomy = get_taxonomy()
    return render_template("review_guide.html", taxonomy=taxonomy, scale=score_scale(taxonomy),
                           share=current_app.config["SETTINGS"].review.second_opinion_share)
