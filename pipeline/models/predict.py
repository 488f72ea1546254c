"""Load a trained model folder and predict for initiatives: the contract other stages code against.

    predictor = Predictor.load(None, settings)        # None -> the model named by models/LATEST
    records = predictor.predict(initiatives)          # one dict per initiative, input order

Each record: {"id", "gemeente", "themes": [...], "doelgroepen": [...], "kind",
"replicability": 1-5, "replicability_score": expected value, "replicability_reasons":
[{"reden", "richting", "bewijs"}], "scores": {"themes": {label: p}, "doelgroepen": {label: p},
"kind": p_signal}, "model_id"}.

The bundle (`model.joblib`) holds named stages; `OUTPUTS` maps a stage name to a function that
turns that stage's estimator and the batch into one partial record per row. Records are the merge
of all partial records (nested "scores" dicts merged key by key), so a new stage adds its fields
by adding one entry to `OUTPUTS`. A stage in the bundle without an entry is ignored (older code,
newer model); an entry without a stage in the bundle is skipped (older model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import joblib
import numpy as np

from pipeline.core.config import Settings, Taxonomy, load_taxonomy
from pipeline.core.errors import ModelNotFoundError, PipelineError
from pipeline.core.records import Initiative, errors_path_for, write_jsonl, write_rejected
from pipeline.core.text import model_text
from pipeline.ingest.reader import read_initiatives
from pipeline.models.artifact import BUNDLE_FILE, latest_model_dir
from pipeline.models.classify import embedding_vectorizers

# Probabilities are rounded in the output: more digits would suggest precision the model lacks.
SCORE_DIGITS = 4


@dataclass
class Batch:
    """What every stage's output function sees: the initiatives and their model texts."""

    initiatives: Sequence[Initiative]
    texts: list[str]
    taxonomy: Taxonomy | None
    records: list[dict] = field(default_factory=list)  # the partial records built so far


def _label_output(field_name: str) -> Callable[[Any, Batch], list[dict]]:
    def output(model, batch: Batch) -> list[dict]:
        proba = model.predict_proba(batch.texts)
        chosen = model.decide(proba)
        labels = list(model.labels_)
        out = []
        for i in range(len(batch.texts)):
            # Chosen labels ordered by probability, most likely first.
            picked = sorted(np.flatnonzero(chosen[i]), key=lambda j: -proba[i, j])
            out.append({
                field_name: [labels[j] for j in picked],
                "scores": {field_name: {labels[j]: round(float(proba[i, j]), SCORE_DIGITS)
                                        for j in range(len(labels))}},
            })
        return out

    return output


def _kind_output(model, batch: Batch) -> list[dict]:
    proba = model.predict_proba(batch.texts)[:, 0]
    chosen = model.decide(proba.reshape(-1, 1))[:, 0]
    return [{"kind": "signal" if chosen[i] else "initiative",
             "scores": {"kind": round(float(proba[i]), SCORE_DIGITS)}} for i in range(len(proba))]


def _replicability_output(model, batch: Batch) -> list[dict]:
    # Runs after "kind" (dict order), so a row the model calls a signal gets score 1 and the
    # signal reason; the scorer reads the raw text so every `bewijs` is a substring of it.
    kinds = [record.get("kind", "initiative") for record in batch.records]
    return model.score_rows(batch.initiatives, kinds)


OUTPUTS: dict[str, Callable[[Any, Batch], list[dict]]] = {
    "themes": _label_output("themes"),
    "doelgroepen": _label_output("doelgroepen"),
    "kind": _kind_output,
    "replicability": _replicability_output,
}


def _merge(record: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key].update(value)
        else:
            record[key] = value


class Predictor:
    """A loaded model bundle. `model_id` and `model_dir` say exactly which model predicted."""

    def __init__(self, bundle: dict, model_dir: Path, taxonomy: Taxonomy | None = None):
        self.bundle = bundle
        self.model_dir = Path(model_dir)
        self.model_id: str = bundle["model_id"]
        self.stages: dict[str, Any] = bundle["stages"]
        self.taxonomy = taxonomy

    @classmethod
    def load(cls, model_dir: Path | None, settings: Settings) -> "Predictor":
        """Load `model_dir` (None: the folder named by `models/LATEST`).

        Raises ModelNotFoundError when the folder or its model.joblib is missing.
        """
        folder = latest_model_dir(settings.paths.models) if model_dir is None else Path(model_dir)
        path = folder / BUNDLE_FILE
        if not path.is_file():
            raise ModelNotFoundError(f"{path} not found: not a model folder. Run `make train` or "
                                     f"pass a folder under {settings.paths.models}.")
        bundle = joblib.load(path)

        for model in bundle.get("stages", {}).values():
            for vectorizer in embedding_vectorizers(model):
                # The cache belongs to this checkout, not to the machine the model was trained on.
                vectorizer.cache_path = str(settings.embed.cache_path) if settings.embed.cache_path else None
                vectorizer.batch_size = settings.embed.batch_size
                vectorizer.encoders_dir = str(settings.embed.encoders_dir)
                vectorizer.__dict__.pop("_encoder", None)
        if bundle.get("model_id") != folder.name:
            # A copied or renamed folder: the id inside the bundle is the truth, say so.
            import logging

            logging.getLogger(__name__).warning(
                "model folder %s holds model %s", folder, bundle.get("model_id"))
        try:
            taxonomy = load_taxonomy(settings.paths.taxonomy)
        except PipelineError:  # predictions do not need it; a stage that does checks for None
            taxonomy = None
        return cls(bundle, folder, taxonomy)

    def predict(self, initiatives: Sequence[Initiative]) -> list[dict]:
        """One record per initiative, in input order (see the module docstring for the fields)."""
        initiatives = list(initiatives)
        records = [{"id": i.id, "gemeente": i.gemeente} for i in initiatives]
        if not initiatives:
            return records
        batch = Batch(initiatives, [model_text(i) for i in initiatives], self.taxonomy, records)
        for name, output in OUTPUTS.items():
            model = self.stages.get(name)
            if model is None:
                continue
            for record, part in zip(records, output(model, batch)):
                _merge(record, part)
        for record in records:
            # Fixed order for readers of the JSONL: labels first, then scores, then the model.
            record["scores"] = record.pop("scores", {})
            record["model_id"] = self.model_id
        return records


def write_predictions(settings: Settings, input_path: Path, out_path: Path, predictor: Predictor, *,
                      warn: Callable[[str], None] = lambda message: None,
                      chunk_size: int | None = None) -> str:
    """Read `input_path` (JSONL/CSV), predict, write one JSON line per accepted row to `out_path`.

    Rejected rows go to `errors_path_for(out_path)` and each one is passed to `warn`. Returns the
    summary line. Raises InputFileError when the input cannot be read at all.
    """
    import sys


    result = read_initiatives(input_path, limits=settings.ingest)
    for rejected in result.rejected:
        warn(rejected.message(str(input_path)))
    errors_path = errors_path_for(out_path)
    if result.rejected:
        write_rejected(result.rejected, errors_path)
    elif errors_path.exists():
        errors_path.unlink()  # a stale errors file from an earlier run would mislead
    rows = result.accepted
    # Chunks keep memory flat and let the bar move; the encoder batches within a chunk.
    size = chunk_size or max(settings.embed.batch_size * 8, 1)
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    if len(chunks) > 1 and sys.stderr.isatty():
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="classificeren", unit="blok", file=sys.stderr)
    write_jsonl((record for chunk in chunks for record in predictor.predict(chunk)), out_path)
    where = f"; errors in {errors_path}" if result.rejected else ""
    return (f"{result.rows_in} rows in, {len(rows)} classified, {len(result.rejected)} rejected"
            f"{where}; predictions in {out_path} (model {predictor.model_id})")
