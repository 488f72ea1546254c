"""Quality benchmark: cross-validated micro/macro F1 per field for baselines and our model, one run.

    .venv/bin/python bench/bench_classify.py [--repeats 3] [--ablations]

Every design is scored on the same iteratively stratified outer folds (train.outer_folds, the
[train] seed), each fold fitted from scratch on the training part only:

  (a) word TF-IDF + logistic regression (balanced), threshold 0.5, top label if none passes
  (b) zero-shot: cosine between each row's e5 embedding and each label's taxonomy description;
      the rule (top-k or a cosine threshold) is chosen on the training folds by micro-F1
  (c) e5 embedding + logistic regression (balanced, C=10), threshold 0.5 (the issue's reference)
  (d) our model: configs/pipeline.toml [classify] as released
--ablations adds the designs tried while choosing (d).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import train  # noqa: E402
from pipeline.config import load_settings, load_taxonomy  # noqa: E402
from pipeline.embed import encoder_from_config  # noqa: E402
from pipeline.train import Stage  # noqa: E402


def _top1(proba: np.ndarray, pred: np.ndarray, min_labels: int) -> np.ndarray:
    if min_labels:
        for i in np.flatnonzero(pred.sum(axis=1) == 0):
            pred[i, np.argmax(proba[i])] = 1
    return pred


class PerLabelLR(ClassifierMixin, BaseEstimator):
    """Baseline: features from `vectorizer` (texts -> X), one LR per label, fixed threshold."""

    def __init__(self, *, vectorizer=None, C=1.0, class_weight=None, threshold=0.5, min_labels=1):
        self.vectorizer = vectorizer
        self.C = C
        self.class_weight = class_weight
        self.threshold = threshold
        self.min_labels = min_labels

    def fit(self, X, Y):
        from sklearn.base import clone

        Y = np.asarray(Y).reshape(len(X), -1)
        self.vectorizer_ = clone(self.vectorizer).fit(list(X))
        Z = self.vectorizer_.transform(list(X))
        self.models_ = [LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000).fit(Z, Y[:, j])
                        if 0 < Y[:, j].sum() < len(Y) else float(Y[0, j]) for j in range(Y.shape[1])]
        return self

    def predict(self, X):
        Z = self.vectorizer_.transform(list(X))
        proba = np.column_stack([m.predict_proba(Z)[:, 1] if hasattr(m, "predict_proba")
                                 else np.full(Z.shape[0], m) for m in self.models_])
        return _top1(proba, (proba >= self.threshold).astype(int), self.min_labels)


class Embedder(BaseEstimator):
    """texts -> e5 embeddings through the project's cached encoder (a 'vectorizer' for PerLabelLR)."""

    def __init__(self, *, embed_config=None):
        self.embed_config = embed_config

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return encoder_from_config(self.embed_config).embed(list(X))


class ZeroShot(ClassifierMixin, BaseEstimator):
    """Cosine between row and label description; rule chosen on the training rows by micro-F1
    (multi-label: top-1..3 or a cosine threshold, always >= 1 label; kind: margin threshold of
    signal over initiative by accuracy)."""

    def __init__(self, *, embed_config=None, label_texts=(), mode="multi"):
        self.embed_config = embed_config
        self.label_texts = label_texts
        self.mode = mode

    def _sims(self, X):
        enc = encoder_from_config(self.embed_config)
        rows = enc.embed(list(X))
        return rows @ enc.embed(list(self.label_texts)).T

    def _apply(self, sims, rule):
        kind, value = rule
        if kind == "margin":
            return ((sims[:, 0] - sims[:, 1]) >= value).astype(int).reshape(-1, 1)
        if kind == "top":
            pred = np.zeros_like(sims, dtype=int)
            for i, order in enumerate(np.argsort(-sims, axis=1)):
                pred[i, order[:value]] = 1
            return pred
        return _top1(sims, (sims >= value).astype(int), 1)

    def fit(self, X, Y):
        from sklearn.metrics import accuracy_score, f1_score

        Y = np.asarray(Y).reshape(len(X), -1)
        sims = self._sims(X)
        if self.mode == "kind":
            margins = sims[:, 0] - sims[:, 1]
            rules = [("margin", t) for t in np.quantile(margins, np.linspace(0, 1, 41))]
            score = lambda r: accuracy_score(Y.ravel(), self._apply(sims, r).ravel())  # noqa: E731
        else:
            rules = [("top", k) for k in (1, 2, 3)]
            rules += [("cos", t) for t in np.quantile(sims, np.linspace(0.5, 0.99, 50))]
            score = lambda r: f1_score(Y, self._apply(sims, r), average="micro", zero_division=0)  # noqa: E731
        self.rule_ = max(rules, key=score)
        return self

    def predict(self, X):
        return self._apply(self._sims(X), self.rule_)


def _stage_like(stage: Stage, make) -> Stage:
    return dataclasses.replace(stage, make=make)


def baseline_stages(settings, taxonomy, design: str) -> list[Stage]:
    by_name = {s.name: s for s in train.STAGES}
    out = []
    for name in ("themes", "doelgroepen", "kind"):
        stage = by_name[name]
        min_labels = 0 if name == "kind" else 1
        if design == "word-tfidf-lr":
            make = lambda s, t, seed, m=min_labels: PerLabelLR(  # noqa: E731
                vectorizer=TfidfVectorizer(sublinear_tf=True, min_df=2), class_weight="balanced", min_labels=m)
        elif design == "e5-lr-0.5":
            make = lambda s, t, seed, m=min_labels: PerLabelLR(  # noqa: E731
                vectorizer=Embedder(embed_config=s.embed), C=10.0, class_weight="balanced", min_labels=m)
        elif design == "zero-shot":
            if name == "kind":
                texts = [taxonomy.kinds["signal"], taxonomy.kinds["initiative"]]
            else:
                texts = [f"{l.naam}. {l.omschrijving}" for l in getattr(taxonomy, name)]
            make = lambda s, t, seed, x=texts, k=name: ZeroShot(  # noqa: E731
                embed_config=s.embed, label_texts=x, mode="kind" if k == "kind" else "multi")
        else:
            raise ValueError(design)
        out.append(_stage_like(stage, make))
    return out


ABLATIONS = {
    "ours: no label priors": {"prior_weight": 0.0},
    "ours: priors, no split terms": {"prior_terms": False},
    "ours: embedding weight 1": {"embedding_weight": 1.0},
    "ours: embedding only": {"char_weight": 0.0},
    "ours: char TF-IDF only": {"embedding_weight": 0.0},
    "ours: + lemma word TF-IDF": {"lemma_weight": 1.0},
    "ours: C=1": {"C": 1.0},
    "ours: no threshold shrinkage": {"threshold_shrinkage": 0.0},
    "ours: kind threshold by accuracy": {"kind_threshold_metric": "accuracy"},
    "ours: kind embedding weight 2": {"kind_embedding_weight": 2.0},
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--ablations", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    settings = load_settings()
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    data = train.load_labelled(settings.paths.labelled, taxonomy)
    texts = data.texts
    folds = args.folds or settings.train.folds
    designs = {name: (settings, baseline_stages(settings, taxonomy, key)) for name, key in
               [("(a) word TF-IDF + LR", "word-tfidf-lr"), ("(b) zero-shot cosine", "zero-shot"),
                ("(c) e5 + LR, threshold 0.5", "e5-lr-0.5")]}
    designs["(d) ours (released config)"] = (settings, train.STAGES)
    if args.ablations:
        for name, over in ABLATIONS.items():
            changed = dataclasses.replace(settings, classify=dataclasses.replace(settings.classify, **over))
            designs[name] = (changed, train.STAGES)
    print(f"{len(texts)} labelled rows, {folds}-fold iteratively stratified CV x {args.repeats} repeats "
          f"(seed {settings.train.seed}); mean over repeats\n")
    header = f"{'design':32s} {'themes micro':>12s} {'macro':>6s} {'doelgr micro':>12s} {'macro':>6s} " \
             f"{'kind acc':>8s} {'signal F1':>9s} {'secs':>5s}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, (st, stages) in designs.items():
        start = time.time()
        cv = train.cross_validate(stages, texts, data.rows, st, taxonomy, folds=folds, repeats=args.repeats,
                                  seed=settings.train.seed)
        results[name] = cv
        print(f"{name:32s} {cv['themes']['micro']['f1']:12.3f} {cv['themes']['macro']['f1']:6.3f} "
              f"{cv['doelgroepen']['micro']['f1']:12.3f} {cv['doelgroepen']['macro']['f1']:6.3f} "
              f"{cv['kind']['accuracy']:8.3f} {cv['kind']['signal']['f1']:9.3f} {time.time() - start:5.0f}",
              flush=True)
    ours = results["(d) ours (released config)"]
    print("\nmargin of (d) over each baseline (micro-F1 themes / doelgroepen):")
    for name in list(designs)[:3]:
        base = results[name]
        print(f"  vs {name}: {ours['themes']['micro']['f1'] - base['themes']['micro']['f1']:+.3f} / "
              f"{ours['doelgroepen']['micro']['f1'] - base['doelgroepen']['micro']['f1']:+.3f}")


if __name__ == "__main__":
    main()
