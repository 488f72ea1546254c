""""Er is een nieuwer model beschikbaar": told to reviewers when `models/LATEST` names a model
trained after the one whose predictions are in force (the newest prediction in the catalogue).

Reviewing on old predictions still counts (reviews are labels, whatever model suggested them),
but the queue's order and the suggestions come from the old model until `pipeline reclassify`
(or `pipeline retrain`) runs. Read per request from two small files and one indexed query, kept
per app while neither changes.
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, g

from pipeline.app.context import get_db
from pipeline.catalogue.readmodel import newest_prediction_model
from pipeline.models.artifact import LATEST_FILE, METRICS_FILE

blueprint = Blueprint("model_notice", __name__)


def model_created(models_dir: Path, model_id: str) -> str | None:
    """The `created` time in models/<id>/metrics.json, or None when the folder is not there."""
    try:
        metrics = json.loads((Path(models_dir) / model_id / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    created = metrics.get("created") if isinstance(metrics, dict) else None
    return str(created) if created else None


def newer_model(models_dir: Path, in_force: dict | None) -> dict | None:
    """{latest, latest_created, in_force} when models/LATEST is newer than `in_force` (a
    `newest_prediction_model` record), else None. A model folder that is gone counts as older;
    without a LATEST or without predictions there is nothing to say."""
    try:
        latest = (Path(models_dir) / LATEST_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not latest or in_force is None or in_force["model_id"] == latest:
        return None
    latest_created = model_created(models_dir, latest)
    if latest_created is None:  # LATEST names a folder that is not (yet) complete
        return None
    old_created = model_created(models_dir, in_force["model_id"])
    if old_created is not None and old_created >= latest_created:
        return None
    return {"latest": latest, "latest_created": latest_created, "in_force": in_force["model_id"]}


def _notice() -> dict | None:
    if not g.get("reviewer"):
        return None
    models_dir = Path(current_app.config["SETTINGS"].paths.models)
    in_force = newest_prediction_model(get_db())
    try:
        stamp = (models_dir / LATEST_FILE).stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (stamp, in_force["model_id"] if in_force else None)
    cache = current_app.extensions.setdefault("pipeline.model_notice", {})
    if cache.get("key") != key:
        cache.update(key=key, notice=newer_model(models_dir, in_force))
    return cache["notice"]


@blueprint.app_context_processor
def _model_notice():
    return {"newer_model": _notice}
