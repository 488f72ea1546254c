"""Label gain: does the review queue's order teach the model faster than random order?

    .venv/bin/python bench/bench_label_gain.py [--seeds 10] [--batch 10] [--seed-rows 10]

A simulation on the 133 labelled rows (data/labelled/): per seed, a fixed held-out set of about
30% of the rows is kept apart, whole same-idea groups at a time (pipeline.training.cv.split_blocks
over data/corpus/same_idea_groups.jsonl: a near-twin of a held-out row never gets reviewed). The
rest is the pool. Every order starts from the same random seed set (`--seed-rows`), then
"reviews" `--batch` rows at a time (their labels revealed), retrains, and picks the next batch
with the retrained model, until 80 rows are reviewed. Micro- and macro-F1 for themes and
doelgroepen are scored on the held-out rows after 10, 20, 40 and 80 reviewed rows.

Orders compared (the same seed set, the same held-out rows, the same retraining):

  random      the baseline: pool rows in a random order;
  queue       the review queue's own order: `pipeline.catalogue.queue.certainty` on the model's
              predictions and `least_certain_first` (imported, not copied), least certain first;
  diversity   farthest-first on the e5 embeddings: the row least like anything reviewed so far;
  unc+div     the 3 x batch least certain rows, of which farthest-first picks the batch;
  labels-only the queue's certainty without the kind's margin (themes and doelgroepen only);
  coverage    rows whose predicted labels are rarest among the reviewed rows' labels (greedy,
              counts updated per pick): aims at macro-F1.

The model is the released classifier design (pipeline.training.stages, themes / doelgroepen /
kind) with a fast configuration: no lemma channel, 3 inner threshold folds (the lemma channel
costs seconds per fit and moved F1 by 2-3 points at 133 rows; the question here is the order).

Honest protocol: an order is chosen on the "choose" seeds (the first half) and its advantage is
then measured on the "confirm" seeds (the second half: other held-out splits and seed sets),
never on the rows it was chosen on. Results go to bench/out/label_gain.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from sklearn.metrics import f1_score

from pipeline.catalogue.queue import certainty, least_certain_first
from pipeline.core.config import load_settings, load_taxonomy
from pipeline.models.embed import EmbeddingVectorizer
from pipeline.training.cv import read_groups, split_blocks
from pipeline.training.data import load_labelled
from pipeline.training.stages import STAGES

OUT = Path(__file__).resolve().parent / "out"
CHECKPOINTS = (10, 20, 40, 80)
FIELDS = ("themes", "doelgroepen")
ORDERS = ("random", "queue", "labels-only", "coverage", "diversity", "unc+div")


def fast_settings(settings):
    classify = dataclasses.replace(settings.classify, lemma_weight=0.0, threshold_folds=3)
    return dataclasses.replace(settings, classify=classify)


def held_out_split(blocks: np.ndarray, rng, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) row indices: whole blocks go to the test side until `share` of the rows."""
    order = rng.permutation(np.unique(blocks))
    test, target = [], share * len(blocks)
    for block in order:
        if len(test) >= target:
            break
        test.extend(np.flatnonzero(blocks == block).tolist())
    test = np.array(sorted(test))
    pool = np.setdiff1d(np.arange(len(blocks)), test)
    return pool, test


class Model:
    """The three classification stages fitted on some rows; predictions as the catalogue keeps
    them (chosen labels and scores per field, P(signal))."""

    def __init__(self, settings, taxonomy, texts, targets, seed):
        self.settings, self.taxonomy, self.texts, self.targets, self.seed = (
            settings, taxonomy, texts, targets, seed)

    def fit(self, rows: np.ndarray) -> "Model":
        self.fitted_ = {}
        for stage in STAGES:
            if stage.name not in self.targets:
                continue
            estimator = stage.make(self.settings, self.taxonomy, self.seed)
            self.fitted_[stage.name] = estimator.fit([self.texts[i] for i in rows],
                                                     self.targets[stage.name][rows])
        return self

    def predict(self, rows: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        texts = [self.texts[i] for i in rows]
        out = {}
        for name, estimator in self.fitted_.items():
            proba = estimator.predict_proba(texts)
            out[name] = (proba, estimator.decide(proba))
        return out

    def queue_items(self, rows: np.ndarray, ids: list[str], kind_threshold: float,
                    with_kind: bool = True) -> list[dict]:
        """The pool rows as queue items: the model's labels, scores and `certainty`."""
        predicted = self.predict(rows)
        items = []
        for position, i in enumerate(rows):
            prediction = {"scores": {}}
            for field in FIELDS:
                proba, chosen = predicted[field]
                labels = self.taxonomy.ids(field)
                prediction[field] = [labels[j] for j in np.flatnonzero(chosen[position])]
                prediction["scores"][field] = {labels[j]: float(proba[position, j])
                                               for j in range(len(labels))}
            if with_kind:
                prediction["scores"]["kind"] = float(predicted["kind"][0][position, 0])
            chosen_labels = [(field, int(j)) for field in FIELDS
                             for j in np.flatnonzero(predicted[field][1][position])]
            items.append({"id": ids[i], "row": int(i), "chosen": chosen_labels,
                          "certainty": certainty(prediction, kind_threshold)})
        return items

    def scores(self, rows: np.ndarray) -> dict[str, float]:
        predicted = self.predict(rows)
        out = {}
        for field in FIELDS:
            truth = self.targets[field][rows]
            out[f"{field}_micro"] = float(f1_score(truth, predicted[field][1], average="micro",
                                                   zero_division=0))
            out[f"{field}_macro"] = float(f1_score(truth, predicted[field][1], average="macro",
                                                   zero_division=0))
        return out


def farthest_first(candidates: list[int], chosen: list[int], vectors: np.ndarray, k: int) -> list[int]:
    """k of `candidates`, each the one whose highest cosine to everything chosen so far is lowest."""
    picks: list[int] = []
    pool = list(candidates)
    chosen = list(chosen)
    best = (vectors[pool] @ vectors[chosen].T).max(axis=1) if chosen else np.full(len(pool), -1.0)
    while pool and len(picks) < k:
        j = int(np.argmin(best))
        picks.append(pool[j])
        new = vectors[pool[j]]
        pool.pop(j)
        best = np.delete(best, j)
        if pool:
            best = np.maximum(best, vectors[pool] @ new)
    return picks


def coverage_batch(items: list[dict], targets: dict, reviewed: list[int], k: int) -> list[int]:
    """k rows whose predicted labels have the fewest reviewed examples (1 / (1 + count) summed
    over a row's predicted labels, counts raised after each pick as if it were right)."""
    counts = {field: targets[field][reviewed].sum(axis=0).astype(float) for field in FIELDS}
    left, picks = list(items), []
    while left and len(picks) < k:
        value = [sum(1.0 / (1.0 + counts[f][j]) for f, j in item["chosen"]) for item in left]
        best = int(np.argmax(value))
        item = left.pop(best)
        for f, j in item["chosen"]:
            counts[f][j] += 1
        picks.append(item["row"])
    return picks


def next_batch(order: str, model: Model, reviewed: list[int], pool: np.ndarray, k: int, rng,
               ids: list[str], vectors: np.ndarray, kind_threshold: float) -> list[int]:
    left = np.array([i for i in pool if i not in set(reviewed)])
    if order == "random":
        return [int(i) for i in rng.permutation(left)[:k]]
    if order == "diversity":
        return farthest_first([int(i) for i in left], reviewed, vectors, k)
    if order == "coverage":
        return coverage_batch(model.queue_items(left, ids, kind_threshold), model.targets, reviewed, k)
    items = model.queue_items(left, ids, kind_threshold, with_kind=order != "labels-only")
    ranked = [item["row"] for item in least_certain_first(items)]
    if order == "labels-only":
        return ranked[:k]
    if order == "queue":
        return ranked[:k]
    if order == "unc+div":
        return farthest_first(ranked[: 3 * k], reviewed, vectors, k)
    raise ValueError(f"unknown order {order!r}; choose from {ORDERS}")


def curve(order, model, pool, test, seed_rows, batch, rng, ids, vectors, kind_threshold):
    reviewed = list(seed_rows)
    out = {}
    while True:
        model.fit(np.array(reviewed))
        if len(reviewed) in CHECKPOINTS:
            out[len(reviewed)] = model.scores(test)
        if len(reviewed) >= max(CHECKPOINTS):
            return out
        reviewed += next_batch(order, model, reviewed, pool, batch, rng, ids, vectors, kind_threshold)


def mean_table(results: list[dict], seeds: list[int]) -> dict:
    """order -> checkpoint -> metric -> mean over `seeds`."""
    table = {}
    for order in ORDERS:
        table[order] = {}
        for n in CHECKPOINTS:
            rows = [r["curves"][order][n] for r in results if r["seed"] in seeds]
            table[order][n] = {m: round(float(np.mean([row[m] for row in rows])), 4) for m in rows[0]}
    return table


def gain(table: dict, order: str, versus: str = "random") -> float:
    """Mean over 20, 40, 80 reviewed rows and the four F1s of `order` minus `versus` (10 rows is
    the shared seed set, equal for every order)."""
    diffs = [table[order][n][m] - table[versus][n][m] for n in CHECKPOINTS[1:] for m in table[order][n]]
    return round(float(np.mean(diffs)), 4)


def markdown(table: dict, title: str) -> list[str]:
    lines = [f"### {title}", "", "| order | reviewed | themes micro | themes macro | doelgroepen micro | "
             "doelgroepen macro |", "|---|---|---|---|---|---|"]
    for order in ORDERS:
        for n in CHECKPOINTS:
            m = table[order][n]
            lines.append(f"| {order} | {n} | {m['themes_micro']:.3f} | {m['themes_macro']:.3f} | "
                         f"{m['doelgroepen_micro']:.3f} | {m['doelgroepen_macro']:.3f} |")
    lines += ["", "Mean F1 gain over random (20/40/80 rows, four F1s): "
              + ", ".join(f"{o} {gain(table, o):+.4f}" for o in ORDERS if o != "random"), ""]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="Seeds in all (half choose, half confirm).")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--seed-rows", type=int, default=10)
    parser.add_argument("--test-share", type=float, default=0.3)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    settings = load_settings()
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    data = load_labelled(Path(settings.paths.labelled), taxonomy, limits=settings.ingest)
    ids = [i.id for i in data.initiatives]
    texts = data.texts
    targets = {stage.name: stage.targets(data.rows, taxonomy) for stage in STAGES
               if stage.name in (*FIELDS, "kind")}
    blocks = split_blocks(ids, read_groups(settings.paths.same_idea_groups))
    vectors = np.asarray(EmbeddingVectorizer.from_config(settings.embed).fit(texts).transform(texts))
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    fast = fast_settings(settings)
    kind_threshold = settings.review.kind_threshold
    results, start = [], time.perf_counter()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        pool, test = held_out_split(blocks, rng, args.test_share)
        seed_rows = [int(i) for i in rng.choice(pool, size=args.seed_rows, replace=False)]
        model = Model(fast, taxonomy, texts, targets, seed)
        curves = {}
        for order in ORDERS:
            order_rng = np.random.default_rng(1000 + seed)  # the random order's own draws
            curves[order] = curve(order, model, pool, test, seed_rows, args.batch, order_rng, ids,
                                  vectors, kind_threshold)
        results.append({"seed": seed, "pool": len(pool), "test": len(test), "curves": curves})
        OUT.mkdir(exist_ok=True)
        (OUT / "label_gain_partial.json").write_text(json.dumps(results, default=str), encoding="utf-8")
        print(f"seed {seed}: pool {len(pool)}, held out {len(test)}; "
              + "; ".join(f"{o} @80 themes {curves[o][80]['themes_micro']:.3f}" for o in ORDERS)
              + f" ({time.perf_counter() - start:.0f}s)", flush=True)
    half = args.seeds // 2
    choose, confirm = list(range(half)), list(range(half, args.seeds))
    tables = {"choose": mean_table(results, choose), "confirm": mean_table(results, confirm),
              "all": mean_table(results, choose + confirm)}
    chosen = max((o for o in ORDERS if o != "random"), key=lambda o: gain(tables["choose"], o))
    verdict = {
        "chosen_on_choose_seeds": chosen,
        "gain_on_choose_seeds": gain(tables["choose"], chosen),
        "gain_on_confirm_seeds": gain(tables["confirm"], chosen),
        "queue_gain_on_confirm_seeds": gain(tables["confirm"], "queue"),
        "beats_random_on_confirm_seeds": gain(tables["confirm"], chosen) > 0,
    }
    OUT.mkdir(exist_ok=True)
    payload = {"args": vars(args), "checkpoints": CHECKPOINTS, "orders": ORDERS, "verdict": verdict,
               "tables": tables, "per_seed": results, "seconds": round(time.perf_counter() - start, 1)}
    (OUT / "label_gain.json").write_text(json.dumps(payload, indent=1, default=str) + "\n",
                                         encoding="utf-8")
    lines = ["# Label gain: review order vs random (bench/bench_label_gain.py)", "",
             f"{len(ids)} labelled rows; per seed ~{args.test_share:.0%} held out by same-idea group; "
             f"seed set {args.seed_rows}, batch {args.batch}; seeds {choose} choose, {confirm} confirm.",
             ""]
    lines += markdown(tables["choose"], f"Choose seeds {choose}")
    lines += markdown(tables["confirm"], f"Confirm seeds {confirm}")
    lines += markdown(tables["all"], "All seeds")
    lines += [f"Chosen on the choose seeds: **{chosen}** (gain {verdict['gain_on_choose_seeds']:+.4f}); "
              f"on the confirm seeds {verdict['gain_on_confirm_seeds']:+.4f} "
              f"(queue order: {verdict['queue_gain_on_confirm_seeds']:+.4f})."]
    (OUT / "label_gain.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / "label_gain_partial.json").unlink(missing_ok=True)  # kept only while a run is going
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
