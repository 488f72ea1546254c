"""The learning stages `pipeline train` fits and cross-validates: themes, doelgroepen, kind and
replicability, each a `Stage` (how to build its estimator from the settings, its targets, its
metrics and its lines in the model card), plus the plain baselines scored in the same run.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from pipeline.core.config import Settings, Taxonomy, section_from_dict
from pipeline.core.errors import ConfigError
from pipeline.models import classify
from pipeline.models.embed import EmbeddingVectorizer
from pipeline.models.ordinal import SCORES
from pipeline.models.score import UNLABELLED, build_scorer, ordinal_metrics
from pipeline.training.data import label_matrix

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


_TERM_SPLIT = re.compile(r"[,;:]|\bof\b|\ben\b")


def _terms(text: str) -> list[str]:
    terms = [" ".join(t.strip(" .'").split()) for t in _TERM_SPLIT.split(re.sub(r"\(.*?\)", " ", text))]
    return [t for t in terms if len(t) > 2]


def prior_texts(label, split_terms: bool) -> list[str]:
    """Pseudo-examples for one taxonomy label: "naam. omschrijving", and with `split_terms` also
    each comma-separated term of the description ("Voedselbanken", "maaltijden", ...), so every
    term the annotators' guide names is a positive example of the label on its own."""
    texts = [f"{label.naam}. {label.omschrijving}"]
    if split_terms:
        texts += [t for t in _terms(label.omschrijving) if t.lower() != label.naam.lower()]
    return texts


def label_terms(label) -> list[str]:
    """The terms of a label's name and of its description, split as `prior_texts` splits them
    ("Kinderen en leerlingen" -> "Kinderen", "leerlingen"), for `LabelTerms`; whatever
    `[classify] prior_terms` says about the description examples."""
    return list(dict.fromkeys(_terms(label.naam) + _terms(label.omschrijving)))


def _label_stage(field_name: str) -> Stage:
    def make(settings: Settings, taxonomy: Taxonomy, seed: int):
        config = field_config(settings.classify, field_name)
        return classify.classifier_from_config(
            config, settings.embed, labels=taxonomy.ids(field_name),
            label_texts=[prior_texts(label, config.prior_terms)
                         for label in getattr(taxonomy, field_name)],
            label_terms=[label_terms(label) for label in getattr(taxonomy, field_name)],
            min_labels=1, threshold_metric=config.threshold_metric, random_state=seed)

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


FIELDS = ("themes", "doelgroepen", "kind")


def field_config(classify_config, field: str):
    """[classify] with the keys of [classify.<field>] replaced. Raises ConfigError for unknown keys."""

    overrides = dict(getattr(classify_config, field))
    valid = {f.name for f in dataclasses.fields(classify_config)} - set(FIELDS)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"[classify.{field}] has unknown key(s) {unknown}; valid keys are {sorted(valid)}")

    merged = {f.name: getattr(classify_config, f.name) for f in dataclasses.fields(classify_config)}
    # Through the same checks as the file itself, so a wrong type names [classify.<field>].
    return section_from_dict(type(classify_config), {**merged, **overrides}, where=f"[classify.{field}]")


def _kind_make(settings: Settings, taxonomy: Taxonomy, seed: int):
    config = field_config(settings.classify, "kind")
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

    return build_scorer(settings)


def _replicability_targets(rows, taxonomy):

    # A row without a score (a label-only review) is skipped by the scorer, not guessed.
    return np.array([r["replicability"] if r.get("replicability") in SCORES else UNLABELLED
                     for r in rows], dtype=int)


def _replicability_evaluate(y, p, taxonomy):

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
            "classifier; bench/bench_score.py measures it end to end, with the baselines.", "",
            *_reason_kinds_card(settings)]


def _reason_kinds_card(settings) -> list[str]:
    """Which kinds of reason users see: the hand marks in [score] reason_audits per kind."""
    from pipeline.models.reason_reliability import ReasonReliability, read_audits

    config = settings.score
    marks = read_audits(config.reason_audits)
    if not marks:
        return ["No hand-marked reasons: every reason is shown.", ""]
    reliability = ReasonReliability(prior_weight=config.reason_prior_weight).fit(marks)
    lines = [f"Reasons shown: kinds right at least {config.min_reason_precision:.2f} of the time in "
             f"{len(marks)} hand marks (`{Path(config.reason_audits).name}/`, smoothed with "
             f"{config.reason_prior_weight:g} marks at the overall {reliability.overall_:.3f}).", "",
             "| direction | reason | marked | right | smoothed | shown |", "|---|---|---|---|---|---|"]
    for kind in reliability.kinds(config.min_reason_precision):
        lines.append(f"| {kind['richting']} | {kind['reden']} | {kind['marked']} | {kind['right']} | "
                     f"{kind['share']:.2f} | {'yes' if kind['shown'] else 'no'} |")
    return lines + [""]



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


    def make_for(name):
        min_labels = 0 if name == "kind" else 1

        def make(settings: Settings, taxonomy: Taxonomy, seed: int):
            e = settings.embed
            if design == "word-tfidf-lr":
                return classify.PerLabelLR(vectorizer=TfidfVectorizer(sublinear_tf=True, min_df=2),
                                           class_weight="balanced", min_labels=min_labels)
            if design == "e5-lr":
                vectorizer = EmbeddingVectorizer.from_config(e)
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
