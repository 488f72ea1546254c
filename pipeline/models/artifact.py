"""The files of a trained model folder (models/<id>/) and how to find the released one (LATEST)."""
from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import ModelNotFoundError

LATEST_FILE = "LATEST"
BUNDLE_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"


def latest_model_dir(models_dir: Path) -> Path:
    """The folder named by `models_dir/LATEST`. Raises ModelNotFoundError when there is none."""

    marker = Path(models_dir) / LATEST_FILE
    if not marker.is_file():
        raise ModelNotFoundError(
            f"{marker} not found: no trained model yet. Run `make train` (or `pipeline train`).")
    model_id = marker.read_text(encoding="utf-8").strip()
    folder = Path(models_dir) / model_id
    if not (folder / BUNDLE_FILE).is_file():
        raise ModelNotFoundError(f"{marker} names {model_id!r} but {folder / BUNDLE_FILE} is missing; "
                                 f"run `make train` again.")
    return folder
