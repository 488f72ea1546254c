"""Training: labelled rows -> cross-validated metrics -> a traceable model folder.

`train_model(settings)` reads every `data/labelled/*.jsonl` (`load_labelled`), cross-validates
each stage with iteratively stratified k-fold (repeated), fits every stage on all rows, and writes
`models/<model-id>/` with `model.joblib`, `metrics.json` and `MODEL_CARD.md`; `models/LATEST`
then names the new id.

A *stage* (`Stage`) is one thing the bundle learns: the three classification stages are `themes`,
`doelgroepen` and `kind`. Another stage (e.g. a replicability scorer) is added by appending a
`Stage` to `STAGES`: it says how to build its estimator, what its targets are, how to score its
cross-validated predictions and what it writes in the model card. Every stage sees the same
texts and the same outer folds.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import joblib

from pipeline.core.config import Settings, load_taxonomy
from pipeline.models.embed import encoder_from_config
from pipeline.training.stages import BASELINES, Stage, baseline_stages
from pipeline.models.artifact import BUNDLE_FILE, CARD_FILE, LATEST_FILE, METRICS_FILE
from pipeline.training.data import LabelledData, load_labelled
from pipeline.training.card import _card, config_fingerprint, learning_code_sha256, make_model_id, summary_lines
from pipeline.training.cv import blocks_from_settings, cross_validate
from pipeline.training.stages import STAGES




@dataclass
class TrainResult:
    model_id: str
    model_dir: Path
    metrics: dict
    data: LabelledData = field(repr=False)


def train_model(settings: Settings, *, labelled_dir: Path | None = None, models_dir: Path | None = None,
                folds: int | None = None, repeats: int | None = None, stages: list[Stage] | None = None,
                log: Callable[[str], None] = lambda message: None, today: dt.date | None = None,
                force: bool = False) -> TrainResult:
    """Cross-validate and fit every stage; write `models/<id>/` and point `models/LATEST` at it.

    Returns the `TrainResult`. Raises TrainingDataError when there is nothing to train on.
    `folds < 2` skips cross-validation (metrics then hold only the training data summary).
    When a model folder with the same data, taxonomy, settings, encoder and learning code already
    exists (whatever its date), nothing is trained again unless `force`: `models/LATEST` is pointed
    at it, so `make train` on a fresh clone leaves the checkout as it was.
    """
    stages = STAGES if stages is None else stages
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    labelled_dir = Path(labelled_dir or settings.paths.labelled)
    models_dir = Path(models_dir or settings.paths.models)
    folds = settings.train.folds if folds is None else folds
    repeats = settings.train.repeats if repeats is None else repeats
    data = load_labelled(labelled_dir, taxonomy, limits=settings.ingest)
    for problem in data.problems:
        log(f"skipped: {problem}")
    log(f"{len(data.rows)} labelled rows ({data.from_review} from reviews) from "
        f"{len(data.files)} file(s)")
    fingerprint = {**config_fingerprint(settings),
                   "encoder_id": encoder_from_config(settings.embed).encoder_id,
                   "code_sha256": learning_code_sha256()}
    today = today or dt.date.today()
    model_id = make_model_id(data.sha256, taxonomy.sha256, fingerprint, today)
    existing = None if force else existing_model(models_dir, model_id)
    if existing is not None:
        latest = models_dir / LATEST_FILE
        if not latest.exists() or latest.read_text(encoding="utf-8").strip() != existing.name:
            latest.write_text(existing.name + "\n", encoding="utf-8")
        log(f"model {existing.name} is up to date (same data, taxonomy, settings and code); "
            "nothing trained (use --force to train again)")
        metrics = json.loads((existing / METRICS_FILE).read_text(encoding="utf-8"))
        return TrainResult(existing.name, existing, metrics, data)
    texts = data.texts
    cv = {}
    blocks = blocks_from_settings(settings, [i.id for i in data.initiatives]) if folds >= 2 else None
    if blocks is not None:
        log(f"folds keep same-idea groups together: {len(data.rows)} rows in {len(set(blocks))} blocks")
    if folds >= 2:
        cv = cross_validate(stages, texts, data.rows, settings, taxonomy, folds=folds, repeats=repeats,
                            seed=settings.train.seed, initiatives=data.initiatives, blocks=blocks, log=log)
    baselines = {}
    if folds >= 2 and settings.train.baselines:
        for design in BASELINES:
            scores = cross_validate(baseline_stages(design), texts, data.rows, settings, taxonomy,
                                    folds=folds, repeats=repeats, seed=settings.train.seed, blocks=blocks)
            baselines[design] = {name: {k: v for k, v in m.items() if k in ("micro", "macro", "accuracy")}
                                 for name, m in scores.items()}
            log(f"baseline {design}: " + ", ".join(summary_lines({"stages": baselines[design]})))
    fitted = {}
    for stage in stages:
        fitted[stage.name] = stage.make(settings, taxonomy, settings.train.seed).fit(
            data.initiatives if stage.reads_initiatives else texts, stage.targets(data.rows, taxonomy))
        log(f"fitted {stage.name} on all rows")
    encoder_id = _encoder_id(fitted)
    if encoder_id not in ("none", fingerprint["encoder_id"]):
        fingerprint["encoder_id"] = encoder_id
        model_id = make_model_id(data.sha256, taxonomy.sha256, fingerprint, today)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    model_dir = models_dir / model_id
    model_dir.mkdir(parents=True, exist_ok=True)
    bundle = {"model_id": model_id, "created": created, "encoder_id": encoder_id,
              "taxonomy_sha256": taxonomy.sha256, "data_sha256": data.sha256,
              "stages": fitted}
    joblib.dump(bundle, model_dir / BUNDLE_FILE, compress=3)
    metrics = {"model_id": model_id, "created": created, "training_rows": len(data.rows),
               "rows_from_review": data.from_review, "skipped_rows": len(data.problems),
               "data_sha256": data.sha256, "taxonomy_sha256": taxonomy.sha256, "encoder_id": encoder_id,
               "cv": {"folds": folds, "repeats": repeats, "seed": settings.train.seed,
                      "split": settings.train.split,
                      "blocks": None if blocks is None else len(set(blocks))},
               "config": fingerprint, "stages": cv, "baselines": baselines}
    (model_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, ensure_ascii=False, default=str)
                                          + "\n", encoding="utf-8")
    if cv:
        card = _card(model_id, data, taxonomy, settings, encoder_id, cv, stages, created, baselines)
    else:
        card = f"# Model {model_id}\n\nTrained {created} on {len(data.rows)} rows without cross-validation.\n"
    (model_dir / CARD_FILE).write_text(card, encoding="utf-8")
    (models_dir / LATEST_FILE).write_text(model_id + "\n", encoding="utf-8")
    log(f"wrote {model_dir} and {models_dir / LATEST_FILE}")
    return TrainResult(model_id, model_dir, metrics, data)


def existing_model(models_dir: Path, model_id: str) -> Path | None:
    """A complete model folder whose id has the same hash as `model_id` (any date), or None."""
    suffix = model_id.split("-", 1)[1]
    for folder in sorted(Path(models_dir).glob(f"*-{suffix}")):
        if all((folder / name).is_file() for name in (BUNDLE_FILE, METRICS_FILE, CARD_FILE)):
            return folder
    return None


def _encoder_id(fitted: dict) -> str:
    for model in fitted.values():
        features = getattr(model, "features_", None)
        for _, transformer in getattr(features, "transformer_list", []):
            if hasattr(transformer, "encoder_id_"):
                return transformer.encoder_id_
    return "none"
