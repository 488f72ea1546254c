"""Ordinal models for the 1-5 replicability scale: `FrankHall` (one monotone P(score > k) logistic
model per cut) and helpers to turn its cut probabilities into score probabilities.
"""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted



# --------------------------------------------------------------------------------------------
# Ordinal models
# --------------------------------------------------------------------------------------------


SCORES = (1, 2, 3, 4, 5)


class FrankHall(ClassifierMixin, BaseEstimator):
    """Frank & Hall (2001): one binary logistic model P(y > k) per threshold, made monotone.

    `class_weight="balanced"` balances each binary problem (the rare ends 1 and 5 then count as
    much as the middle, so the model dares to predict them)."""

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, class_weight: str | None = None):
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        self.classes_ = np.array(sorted(SCORES))
        self.n_features_in_ = X.shape[1]
        self.models_ = []
        for k in self.classes_[:-1]:
            target = (y > k).astype(int)
            if target.min() == target.max():
                # A fold without one side of this threshold: a constant, not a failed fit.
                self.models_.append(float(target[0]))
            else:
                self.models_.append(LogisticRegression(
                    C=self.C, max_iter=self.max_iter, class_weight=self.class_weight).fit(X, target))
        return self

    def cumulative_gt(self, X) -> np.ndarray:
        check_is_fitted(self, "models_")
        X = np.asarray(X, dtype=float)
        columns = [
            np.full(len(X), m) if isinstance(m, float) else m.predict_proba(X)[:, 1]
            for m in self.models_
        ]
        # P(y > k) cannot grow with k; the separate models do not know that.
        return np.minimum.accumulate(np.column_stack(columns), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        return _proba_from_gt(self.cumulative_gt(X))

    def predict(self, X) -> np.ndarray:
        return _median(self.predict_proba(X))

    def effects(self) -> np.ndarray:
        """How much one unit of each feature raises P(y > k), summed over the thresholds."""
        fitted = [m.coef_[0] for m in self.models_ if not isinstance(m, float)]
        if not fitted:
            # Every training row had the same score: every threshold is a constant, so no
            # feature moves the score.
            return np.zeros(self.n_features_in_)
        return np.sum(fitted, axis=0)


ORDINAL_MODELS = {"frank_hall": FrankHall}


def _row_weights(index: np.ndarray, n_classes: int, class_weight: str | None) -> np.ndarray:
    if class_weight is None:
        return np.ones(len(index))
    if class_weight != "balanced":
        raise ValueError(f'class_weight must be None or "balanced", got {class_weight!r}')
    counts = np.bincount(index, minlength=n_classes).astype(float)
    present = counts > 0
    per_class = np.zeros(n_classes)
    per_class[present] = len(index) / (present.sum() * counts[present])
    return per_class[index]


def _proba_from_gt(gt: np.ndarray) -> np.ndarray:
    ones = np.ones((len(gt), 1))
    zeros = np.zeros((len(gt), 1))
    upper = np.hstack([ones, gt])
    lower = np.hstack([gt, zeros])
    return np.clip(upper - lower, 0.0, 1.0)


def _median(proba: np.ndarray) -> np.ndarray:
    """The median class: the score that minimises expected absolute error (the metric is MAE)."""
    cumulative = np.cumsum(proba, axis=1)
    return np.array(SCORES)[np.argmax(cumulative >= 0.5 - 1e-9, axis=1)]


def expected_value(proba: np.ndarray) -> np.ndarray:
    return proba @ np.array(SCORES, dtype=float)
