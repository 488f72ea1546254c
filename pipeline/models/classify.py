"""Multi-label text classifiers for themes, doelgroepen and kind (scikit-learn estimators).

Two pieces, both plain estimators:

- `make_features(...)`: a `FeatureUnion` of the dense e5 embedding (`EmbeddingVectorizer`) and a
  lexical channel (character n-gram TF-IDF, optionally word TF-IDF over Dutch lookup lemmas).
- `ThresholdedTextClassifier`: fits the features, then one binary classifier per label. Each label
  gets its own decision threshold, chosen on out-of-fold probabilities from an inner, iteratively
  stratified cross-validation. Label descriptions from the taxonomy can be added as extra,
  down-weighted training examples: free prior knowledge for labels with only a handful of rows.
  `min_labels=1` guarantees at least one label per row (the most probable one when none passes).

Inputs are model texts (`pipeline.core.text.model_text`); targets a 0/1 indicator matrix whose columns
are `labels`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from pipeline.core.text import lemma_texts
from pipeline.models.embed import EmbeddingVectorizer, encoder_from_config
from pipeline.models.label_features import LabelSimilarity, LabelTerms, as_lists


def lemmatise(texts) -> list[str]:
    """Module-level (picklable) wrapper: texts -> lemma strings for the word channel."""
    return lemma_texts(list(texts))


def make_features(*, embed_config=None, embedding_weight: float = 1.0, char_weight: float = 1.0,
                  char_ngram_range: tuple[int, int] = (3, 5), lemma_weight: float = 0.0,
                  min_df: int = 2, similarity_weight: float = 0.0, term_weight: float = 0.0,
                  label_texts: Sequence | None = None,
                  label_terms: Sequence | None = None) -> FeatureUnion:
    """The feature union: e5 embedding + char n-gram TF-IDF (+ lemma word TF-IDF when weighted).

    `embed_config` is an `EmbedConfig`; None leaves the embedding channel out (lexical only).
    A channel with weight 0 is left out. Every channel yields L2-normalised rows, so the weights
    say directly how much each channel counts. `similarity_weight` > 0 adds `LabelSimilarity` to
    `label_texts` (needs the embedding); `term_weight` > 0 adds `LabelTerms` over `label_terms`
    (per label its name and terms: whether the text names them).
    """
    channels, weights = [], {}
    if term_weight > 0 and label_terms:
        channels.append(("label_terms", LabelTerms(label_terms=list(label_terms))))
        weights["label_terms"] = term_weight
    if embed_config is not None and similarity_weight > 0 and label_texts:
        channels.append(("label_similarity", LabelSimilarity(embedding=EmbeddingVectorizer.from_config(embed_config),
                                                             label_texts=list(label_texts))))
        weights["label_similarity"] = similarity_weight
    if embed_config is not None and embedding_weight > 0:
        channels.append(("embedding", EmbeddingVectorizer.from_config(embed_config)))
        weights["embedding"] = embedding_weight
    if char_weight > 0:
        channels.append(("chars", TfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(char_ngram_range), min_df=min_df,
            sublinear_tf=True, lowercase=True)))
        weights["chars"] = char_weight
    if lemma_weight > 0:
        channels.append(("lemmas", make_pipeline(
            FunctionTransformer(lemmatise),
            TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True))))
        weights["lemmas"] = lemma_weight
    if not channels:
        raise ValueError("make_features needs at least one channel with a weight above 0")
    return FeatureUnion(channels, transformer_weights=weights)


# liblinear visits coordinates in a random order; a fixed seed makes a retrain on the same data
# give the same probabilities (unseeded, they differed by up to 4e-6: enough to flip a label that
# sits exactly on its threshold).
LIBLINEAR_SEED = 0


def logistic_regression(*, C: float, class_weight: str | None) -> LogisticRegression:
    """L2 logistic regression solved in the dual (liblinear): with ~100 rows and ~10^4 sparse
    features the dual is about 100x faster than lbfgs (measured: 0.2 s against 26 s for 14 labels)."""
    return LogisticRegression(C=C, class_weight=class_weight, solver="liblinear", dual=True,
                              max_iter=5000, random_state=LIBLINEAR_SEED)


THRESHOLD_METRICS = ("f1", "accuracy")


def best_threshold(y_true: np.ndarray, proba: np.ndarray, grid: Sequence[float],
                   metric: str = "f1") -> tuple[float, float]:
    """The threshold from `grid` with the highest `metric` ("f1" or "accuracy") of `proba >= t`
    against `y_true`, and that score.

    Ties go to the threshold nearest the middle of the grid's best run, which is steadier on the
    few positives of rare labels than the first or last maximum.
    """
    y_true = np.asarray(y_true).astype(bool)
    scores = []
    for t in grid:
        pred = proba >= t
        if metric == "accuracy":
            scores.append(float(np.mean(pred == y_true)))
            continue
        tp = np.sum(pred & y_true)
        denom = pred.sum() + y_true.sum()
        scores.append(2 * tp / denom if denom else 0.0)
    scores = np.asarray(scores)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    pick = best[len(best) // 2]
    return float(grid[pick]), float(scores[pick])


class ThresholdedTextClassifier(ClassifierMixin, BaseEstimator):
    """Texts -> label indicator matrix, one binary classifier and one tuned threshold per label.

    Parameters (stored as given; validated in `fit`):
    - features: transformer texts -> feature matrix (e.g. `make_features()`); cloned in fit.
    - estimator: binary classifier with `predict_proba` (default: balanced logistic regression).
    - labels: column names of Y, in order.
    - label_texts: optional description(s) per label (a str or a list of str); each text becomes
      one extra training row with only that label, weighted `prior_weight`.
    - threshold_grid: candidate thresholds; threshold_folds: inner CV folds for them (< 2: use
      `default_threshold` for every label).
    - threshold_shrinkage: a label with n positives gets threshold
      (n * own_best + k * field_best) / (n + k), so rare labels lean on the field-wide threshold.
    - threshold_metric: "f1" (per label) or "accuracy" (for a single rare class such as kind,
      where F1 of the rare class trades too many false alarms for recall).
    - min_labels: 1 = every row gets at least its most probable label; 0 = rows may get none.
    - max_labels: keep at most this many labels per row, those furthest past their thresholds
      (0 = no cap).
    - random_state: seed of the inner folds.

    Learned: features_, estimators_ (None for a label with no positives), thresholds_,
    oof_proba_ (inner out-of-fold probabilities), labels_.
    """

    def __init__(self, *, features=None, estimator=None, labels: Sequence[str] = (),
                 label_texts: Sequence[str] | None = None, prior_weight: float = 2.0,
                 threshold_grid: Sequence[float] = tuple(np.round(np.arange(0.05, 0.951, 0.025), 3)),
                 threshold_folds: int = 5, threshold_shrinkage: float = 5.0,
                 default_threshold: float = 0.5, threshold_metric: str = "f1", min_labels: int = 1,
                 max_labels: int = 0, random_state: int = 0):
        self.features = features
        self.estimator = estimator
        self.labels = labels
        self.label_texts = label_texts
        self.prior_weight = prior_weight
        self.threshold_grid = threshold_grid
        self.threshold_folds = threshold_folds
        self.threshold_shrinkage = threshold_shrinkage
        self.default_threshold = default_threshold
        self.threshold_metric = threshold_metric
        self.min_labels = min_labels
        self.max_labels = max_labels
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------

    def _base(self):
        if self.estimator is not None:
            return self.estimator
        return logistic_regression(C=10.0, class_weight="balanced")

    def _prior_rows(self, n_labels: int):
        if not self.label_texts:
            return [], np.zeros((0, n_labels), dtype=int)
        if len(self.label_texts) != n_labels:
            raise ValueError(
                f"label_texts has {len(self.label_texts)} entries but there are {n_labels} labels")
        texts, rows = [], []
        for j, entry in enumerate(as_lists(self.label_texts)):
            for text in entry:
                texts.append(str(text))
                rows.append(j)
        Y = np.zeros((len(texts), n_labels), dtype=int)
        Y[np.arange(len(texts)), rows] = 1
        return texts, Y

    def _fit_columns(self, Z, Y, weights):
        """One fitted classifier per column of Y (None where the column has no positives)."""
        out = []
        for j in range(Y.shape[1]):
            y = Y[:, j]
            if y.min() == y.max():
                out.append(None if y.max() == 0 else "always")
                continue
            out.append(clone(self._base()).fit(Z, y, sample_weight=weights))
        return out

    @staticmethod
    def _column_proba(models, Z) -> np.ndarray:
        proba = np.zeros((Z.shape[0], len(models)))
        for j, model in enumerate(models):
            if model is None:
                continue
            proba[:, j] = 1.0 if model == "always" else model.predict_proba(Z)[:, 1]
        return proba

    def fit(self, X, Y):
        """Fit on texts `X` (sequence of str) and indicator matrix `Y` (n_rows, n_labels).

        Returns self. Raises ValueError when shapes or labels do not match.
        """
        texts = [str(t) for t in X]
        Y = np.asarray(Y, dtype=int)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if Y.shape[0] != len(texts):
            raise ValueError(f"X has {len(texts)} texts but Y has {Y.shape[0]} rows")
        labels = list(self.labels) or [str(j) for j in range(Y.shape[1])]
        if len(labels) != Y.shape[1]:
            raise ValueError(f"labels names {len(labels)} columns but Y has {Y.shape[1]}")
        prior_texts, prior_Y = self._prior_rows(Y.shape[1])
        features = clone(self.features) if self.features is not None else make_features()
        # The unsupervised vocabulary/IDF sees the descriptions too, so their words count.
        Z_all = features.fit_transform(texts + prior_texts)
        self.features_ = features
        Z, Z_prior = Z_all[: len(texts)], Z_all[len(texts):]
        self.labels_ = labels
        self.oof_proba_ = self._inner_oof(Z, Y, Z_prior, prior_Y)
        self.thresholds_ = self._choose_thresholds(Y, self.oof_proba_)
        Z_fit, Y_fit, w_fit = self._with_priors(Z, Y, Z_prior, prior_Y)
        self.estimators_ = self._fit_columns(Z_fit, Y_fit, w_fit)
        return self

    def _with_priors(self, Z, Y, Z_prior, prior_Y):
        weights = np.ones(Z.shape[0])
        if Z_prior.shape[0] == 0 or self.prior_weight <= 0:
            return Z, Y, weights
        stack = sparse.vstack if sparse.issparse(Z) else np.vstack
        return (stack([Z, Z_prior]), np.vstack([Y, prior_Y]),
                np.concatenate([weights, np.full(Z_prior.shape[0], self.prior_weight)]))

    def _inner_oof(self, Z, Y, Z_prior, prior_Y) -> np.ndarray | None:
        if self.threshold_folds < 2:
            return None
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
        from sklearn.model_selection import StratifiedKFold

        folds = min(self.threshold_folds, Y.shape[0])
        if Y.shape[1] == 1:
            # One column (kind): plain stratified folds; iterstrat wants two or more columns.
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            target = Y[:, 0]
        else:
            splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True,
                                                 random_state=self.random_state)
            target = Y
        oof = np.zeros(Y.shape, dtype=float)
        for train, test in splitter.split(np.zeros((Y.shape[0], 1)), target):
            Zt, Yt, wt = self._with_priors(Z[train], Y[train], Z_prior, prior_Y)
            oof[test] = self._column_proba(self._fit_columns(Zt, Yt, wt), Z[test])
        return oof

    def _choose_thresholds(self, Y, oof) -> np.ndarray:
        n_labels = Y.shape[1]
        if oof is None:
            return np.full(n_labels, self.default_threshold)
        if self.threshold_metric not in THRESHOLD_METRICS:
            raise ValueError(f"threshold_metric must be one of {THRESHOLD_METRICS}, "
                             f"got {self.threshold_metric!r}")
        grid = np.asarray(self.threshold_grid, dtype=float)
        metric = self.threshold_metric
        # Field-wide threshold: best micro score of one threshold for every label.
        field_best, _ = best_threshold(Y.ravel(), oof.ravel(), grid, metric)
        thresholds = np.empty(n_labels)
        for j in range(n_labels):
            n_pos = int(Y[:, j].sum())
            if n_pos == 0:
                thresholds[j] = field_best
                continue
            own, _ = best_threshold(Y[:, j], oof[:, j], grid, metric)
            k = self.threshold_shrinkage
            thresholds[j] = (n_pos * own + k * field_best) / (n_pos + k)
        return thresholds

    # -- prediction -------------------------------------------------------------------------

    def predict_proba(self, X) -> np.ndarray:
        """Probability per text and label: array (n_texts, n_labels)."""
        check_is_fitted(self, "estimators_")
        Z = self.features_.transform([str(t) for t in X])
        return self._column_proba(self.estimators_, Z)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Indicator matrix from probabilities: thresholds, then the `min_labels` guarantee."""
        check_is_fitted(self, "thresholds_")
        pred = (proba >= self.thresholds_).astype(int)
        # Compare against the threshold, not raw probability: the label nearest to passing.
        margin = proba / np.maximum(self.thresholds_, 1e-9)
        if self.min_labels > 0 and pred.shape[1]:
            for i in np.flatnonzero(pred.sum(axis=1) < self.min_labels):
                top = np.argsort(-margin[i])[: self.min_labels]
                pred[i, top] = 1
        max_labels = getattr(self, "max_labels", 0)  # models saved before the cap existed
        if max_labels > 0:
            for i in np.flatnonzero(pred.sum(axis=1) > max_labels):
                drop = np.argsort(-margin[i])[max_labels:]
                pred[i, drop] = 0
        return pred

    def predict(self, X) -> np.ndarray:
        """Indicator matrix (n_texts, n_labels)."""
        return self.decide(self.predict_proba(X))


def embedding_vectorizers(model, _depth: int = 0) -> list[EmbeddingVectorizer]:
    """Every `EmbeddingVectorizer` inside a fitted model (its attributes, feature unions, pipelines,
    lists), so a loaded model can be pointed at this checkout's embedding cache."""
    if isinstance(model, EmbeddingVectorizer):
        return [model]
    if _depth > 6:
        return []
    if isinstance(model, (list, tuple)):
        children = list(model)
    elif isinstance(model, dict):
        children = list(model.values())
    elif isinstance(model, BaseEstimator):
        children = list(vars(model).values())
    else:
        return []
    found = []
    for child in children:
        for vectorizer in embedding_vectorizers(child, _depth + 1):
            if not any(vectorizer is seen for seen in found):
                found.append(vectorizer)
    return found


def classifier_from_config(classify_config, embed_config, *, labels: Sequence[str],
                           label_texts: Sequence | None = None,
                           label_terms: Sequence | None = None, min_labels: int = 1,
                           threshold_metric: str = "f1", random_state: int = 0
                           ) -> ThresholdedTextClassifier:
    """The classifier described by `[classify]` (ClassifyConfig) and `[embed]` (EmbedConfig)."""
    c = classify_config
    features = make_features(
        embed_config=embed_config, embedding_weight=c.embedding_weight, char_weight=c.char_weight,
        char_ngram_range=(c.char_ngram_min, c.char_ngram_max), lemma_weight=c.lemma_weight,
        min_df=c.min_df, similarity_weight=c.similarity_weight, term_weight=c.term_weight,
        label_texts=label_texts, label_terms=label_terms)
    estimator = logistic_regression(C=c.C, class_weight=c.class_weight or None)
    grid = tuple(np.round(np.arange(c.threshold_min, c.threshold_max + c.threshold_step / 2,
                                    c.threshold_step), 4))
    return ThresholdedTextClassifier(
        features=features, estimator=estimator, labels=list(labels),
        label_texts=list(label_texts) if label_texts else None, prior_weight=c.prior_weight,
        threshold_grid=grid, threshold_folds=c.threshold_folds,
        threshold_shrinkage=c.threshold_shrinkage, threshold_metric=threshold_metric,
        min_labels=min_labels, max_labels=c.max_labels, random_state=random_state)


# --- baselines -------------------------------------------------------------------------------
# The simple designs our model is compared with, on the same folds, in every training run (the
# model card) and in bench/bench_classify.py.


def _top1(proba: np.ndarray, pred: np.ndarray, min_labels: int) -> np.ndarray:
    if min_labels:
        for i in np.flatnonzero(pred.sum(axis=1) == 0):
            pred[i, np.argmax(proba[i])] = 1
    return pred


class PerLabelLR(ClassifierMixin, BaseEstimator):
    """Baseline: features from `vectorizer` (texts -> X), one logistic regression per label, one
    fixed threshold, the most probable label when none passes (min_labels=1)."""

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
        self.models_ = [logistic_regression(C=self.C, class_weight=self.class_weight).fit(Z, Y[:, j])
                        if 0 < Y[:, j].sum() < len(Y) else float(Y[0, j]) for j in range(Y.shape[1])]
        return self

    def predict(self, X):
        Z = self.vectorizer_.transform(list(X))
        proba = np.column_stack([m.predict_proba(Z)[:, 1] if hasattr(m, "predict_proba")
                                 else np.full(Z.shape[0], m) for m in self.models_])
        return _top1(proba, (proba >= self.threshold).astype(int), self.min_labels)


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
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
        """Choose the rule on (X, Y); returns self."""
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
