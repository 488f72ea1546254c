"""Repeated, iteratively stratified outer folds and the out-of-fold cross-validation of every stage."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pipeline.core.config import Settings, Taxonomy
from pipeline.training.stages import Stage


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
