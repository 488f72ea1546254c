"""Repeated, iteratively stratified outer folds and the out-of-fold cross-validation of every stage.

Folds can keep *blocks* of rows together (`split_blocks`: the rows of one same-idea group, with
overlapping groups joined): a near-duplicate from another municipality then never sits in the
training part while its twin is scored, which is what the model meets on rows it has never seen.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from pipeline.core.config import Settings, Taxonomy
from pipeline.core.errors import ConfigError
from pipeline.training.stages import Stage


def read_groups(path: str | Path) -> list[list[str]]:
    """Member ids of each same-idea group in a JSONL file (`{"members": [...]}` per line)."""
    groups = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                groups.append([str(m) for m in json.loads(line)["members"]])
    return groups


def split_blocks(ids: Sequence[str], groups: Iterable[Sequence[str]]) -> np.ndarray:
    """One block number per id: ids sharing a group (directly or through overlapping groups)
    share a block; every other id is a block of its own. Ids of groups not in `ids` are ignored."""
    parent = list(range(len(ids)))
    where = {str(i): k for k, i in enumerate(ids)}

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for group in groups:
        members = [where[m] for m in group if m in where]
        for other in members[1:]:
            parent[root(other)] = root(members[0])
    roots = [root(k) for k in range(len(ids))]
    numbers = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    return np.array([numbers[r] for r in roots])


def blocks_from_settings(settings: Settings, ids: Sequence[str]) -> np.ndarray | None:
    """The folds' blocks as [train] split asks: same-idea groups joined, or None (row by row).

    Raises ConfigError when split is "same_idea" and the groups file is missing.
    """
    if settings.train.split == "stratified":
        return None
    path = Path(settings.paths.same_idea_groups)
    if not path.is_file():
        raise ConfigError(f"[train] split = \"same_idea\" needs the same-idea groups file "
                          f"[paths] same_idea_groups = {str(path)!r}, which does not exist; "
                          f"give the file or set split = \"stratified\"")
    return split_blocks(ids, read_groups(path))


def outer_folds(targets: list[np.ndarray], folds: int, repeats: int, seed: int,
                blocks: np.ndarray | None = None):
    """(repeat, train_idx, test_idx) from iteratively stratified k-fold over all stratified targets.

    With `blocks`, whole blocks are assigned to folds (stratified on each block's labels, a label
    counting once per block that has it), so the rows of a block are always on one side.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    Y = np.hstack([t.reshape(len(t), -1) for t in targets])
    if Y.shape[1] == 1:
        # iterstrat wants two or more columns; the complement keeps both classes balanced.
        Y = np.hstack([Y, 1 - Y])
    if blocks is None:
        blocks = np.arange(Y.shape[0])
    blocks = np.asarray(blocks)
    block_ids = np.unique(blocks)
    if len(block_ids) < folds:
        raise ValueError(f"{len(block_ids)} blocks cannot fill {folds} folds")
    Y_blocks = np.vstack([Y[blocks == b].max(axis=0) for b in block_ids])
    for repeat in range(repeats):
        splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        for train_b, test_b in splitter.split(np.zeros((len(block_ids), 1)), Y_blocks):
            train = np.flatnonzero(np.isin(blocks, block_ids[train_b]))
            test = np.flatnonzero(np.isin(blocks, block_ids[test_b]))
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
                   initiatives: Sequence | None = None, blocks: np.ndarray | None = None,
                   log: Callable[[str], None] = lambda message: None) -> dict:
    """Out-of-fold predictions for every stage, scored per repeat and averaged over repeats.

    Stages with `reads_initiatives` get `initiatives` (required then); the others get `texts`.
    `blocks` (see `split_blocks`) keeps rows of one block in one fold.
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
    for step, (repeat, train, test) in enumerate(outer_folds(stratify, folds, repeats, seed, blocks), 1):
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
