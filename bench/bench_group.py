"""Same-idea grouping: quality against the hand-made groups, and speed against row count.

    .venv/bin/python bench/bench_group.py [--groups data/corpus/same_idea_groups.jsonl] [--png F]

Protocol. All 133 corpus rows are clustered together; the gold groups are a partial gold standard
(rows outside every group may still share ideas nobody wrote down), so only pairs of rows that
appear in at least one gold group are scored. Gold groups overlap (a row can be in two), so the
gold pairs are the union of within-group pairs; for B-cubed a row's gold cluster is the union of
the groups it is in. The share of all rows put in some group is printed as a sanity column,
because over-grouping the rows outside the gold groups is not penalised by the scores; "strict"
precision and F1 count every predicted pair over all rows as if the gold were complete (a lower
bound).

Compared in one run, each at its best threshold in hindsight and at the configured threshold:
- baseline: average-linkage clustering of plain cosines (char TF-IDF; 50/50 mix of cosines);
- char TF-IDF only, e5 only, and the configured mix, all standardised and hub-corrected (CSLS).
A split-half check tunes the threshold on half of the groups and tests it on the other half; a
size check clusters random 60% and 80% subsets of the rows to see whether the best threshold
moves with corpus size.
Speed: grouping 250-2,000 rows built from the corpus with varied texts and perturbed cached
vectors (embedding is timed separately: it is the cost that dominates when nothing is cached).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.config import load_settings
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import CANNOT_LINK, Grouper, SimilarityIndex, cut, group_text, index_params
from pipeline.ingest.reader import read_initiatives

STANDARD_GRID = np.round(np.arange(-2.0, 2.0001, 0.1), 2)   # hub-corrected scores, in SDs
COSINE_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)       # plain cosines
SPLITS = 20
SIZE_FRACTIONS = (0.5, 0.6, 0.8)
SIZE_REPEATS = 8
WEIGHT_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)
SPEED_SIZES = (250, 500, 1000, 2000)
UNCACHED_ROWS_PER_SECOND = 15.0  # measured e5 throughput on this 2-core machine (common brief)


# --- scores -------------------------------------------------------------------------------------


def gold_from(groups: list[dict]) -> tuple[set, dict]:
    pairs, cluster = set(), {}
    for group in groups:
        members = sorted(set(group["members"]))
        pairs.update(itertools.combinations(members, 2))
        for m in members:
            cluster.setdefault(m, set()).update(members)
    return pairs, cluster


def evaluate(labels: dict[str, int], groups: list[dict]) -> dict:
    """Pairwise P/R/F1 and B-cubed P/R/F1 over the rows that appear in `groups`."""
    gold_pairs, gold_cluster = gold_from(groups)
    rows = sorted(gold_cluster)
    predicted = {(a, b) for a, b in itertools.combinations(rows, 2) if labels[a] == labels[b]}
    tp = len(predicted & gold_pairs)
    p = tp / len(predicted) if predicted else 0.0
    r = tp / len(gold_pairs) if gold_pairs else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    bp, br = [], []
    for a in rows:
        mine = {b for b in rows if labels[b] == labels[a]}
        overlap = len(mine & gold_cluster[a])
        bp.append(overlap / len(mine))
        br.append(overlap / len(gold_cluster[a]))
    bp, br = float(np.mean(bp)), float(np.mean(br))
    bf = 2 * bp * br / (bp + br) if bp + br else 0.0
    # Strict: as if the gold were complete, every predicted pair over all rows counts (a lower
    # bound on precision, since rows outside the gold groups may share ideas nobody wrote down).
    every = {(a, b) for a, b in itertools.combinations(sorted(labels), 2) if labels[a] == labels[b]}
    sp = len(every & gold_pairs) / len(every) if every else 0.0
    sf = 2 * sp * r / (sp + r) if sp + r else 0.0
    return {"p": p, "r": r, "f1": f, "b3_p": bp, "b3_r": br, "b3_f1": bf, "strict_p": sp,
            "strict_f1": sf}


def labels_at(index: SimilarityIndex, matrix: np.ndarray, threshold: float) -> dict[str, int]:
    return dict(zip(index.ids_, cut(matrix, float(threshold), linkage="average")))


def curve(index, matrix, grid, groups) -> list[dict]:
    out = []
    for threshold in grid:
        labels = labels_at(index, matrix, threshold)
        sizes = np.bincount(list(labels.values()))
        grouped = float(np.sum(sizes[sizes >= 2]) / len(labels))
        out.append({"threshold": float(threshold), "grouped": grouped, **evaluate(labels, groups)})
    return out


def best(points: list[dict]) -> dict:
    # Ties go to the higher threshold (fewer, tighter groups).
    return max(points, key=lambda p: (round(p["f1"], 6), p["threshold"]))


def at(points: list[dict], threshold: float) -> dict:
    return min(points, key=lambda p: abs(p["threshold"] - threshold))


def fmt(point: dict) -> str:
    return (f"thr {point['threshold']:+.2f}  P {point['p']:.3f}  R {point['r']:.3f}  "
            f"F1 {point['f1']:.3f}  B3-F1 {point['b3_f1']:.3f}  grouped {point['grouped']:.0%}  "
            f"strict P {point['strict_p']:.3f} F1 {point['strict_f1']:.3f}")


# --- quality ------------------------------------------------------------------------------------


def variants(settings, rows, encoder):
    """(name, fitted index, matrix to cut, threshold grid) for each compared variant."""
    config = settings.group
    params = index_params(config)
    vectors = encoder.embed([group_text(r, config.text) for r in rows])

    def fit(**changes):
        return SimilarityIndex(**{**params, **changes}).fit(rows, vectors=vectors)

    char_plain = fit(dense_weight=0.0, hub_neighbours=0)
    mix_plain = fit(hub_neighbours=0)
    char = fit(dense_weight=0.0)
    dense = fit(dense_weight=1.0)
    mix = fit()
    other_text = "omschrijving" if config.text != "omschrijving" else "naam+omschrijving"
    other_vectors = encoder.embed([group_text(r, other_text) for r in rows])
    mix_other = SimilarityIndex(**{**params, "text": other_text}).fit(rows, vectors=other_vectors)
    return [
        ("baseline: char cosine", char_plain, char_plain.similarity_, COSINE_GRID),
        ("baseline: 50/50 cosine mix", mix_plain, mix_plain.similarity_, COSINE_GRID),
        ("char TF-IDF only (std+CSLS)", char, char.score_, STANDARD_GRID),
        ("e5 only (std+CSLS)", dense, dense.score_, STANDARD_GRID),
        (f"mix on {other_text} (std+CSLS)", mix_other, mix_other.score_, STANDARD_GRID),
        (f"mix w={config.dense_weight} (std+CSLS), no floor", mix, mix.score_, STANDARD_GRID),
        (f"CHOSEN mix w={config.dense_weight} (std+CSLS+floor)", mix,
         np.where(mix.similarity_ >= config.min_similarity, mix.score_, CANNOT_LINK), STANDARD_GRID),
    ]


def split_half(index, matrix, groups, configured: float, seed: int = 0) -> dict:
    rng = random.Random(seed)
    tuned, tested, fixed = [], [], []
    for _ in range(SPLITS):
        order = groups[:]
        rng.shuffle(order)
        half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
        points_a = curve(index, matrix, STANDARD_GRID, half_a)
        choice = best(points_a)
        points_b = curve(index, matrix, STANDARD_GRID, half_b)
        tuned.append(choice["f1"])
        tested.append(at(points_b, choice["threshold"])["f1"])
        fixed.append(at(points_b, configured)["f1"])
    return {"tune_f1": np.mean(tuned), "test_f1": np.mean(tested), "test_f1_sd": np.std(tested),
            "configured_test_f1": np.mean(fixed)}


def quality(settings, rows, groups, encoder, png: Path | None) -> None:
    configured = settings.group.threshold
    print(f"{len(rows)} rows, {len(groups)} gold groups over "
          f"{len(gold_from(groups)[1])} rows, {len(gold_from(groups)[0])} gold pairs\n")
    print(f"{'variant':40s} best threshold in hindsight")
    results = []
    for name, index, matrix, grid in variants(settings, rows, encoder):
        points = curve(index, matrix, grid, groups)
        results.append((name, index, matrix, grid, points))
        print(f"{name:40s} {fmt(best(points))}")
    print(f"\nat the configured threshold {configured:+.2f}:")
    for name, _, _, grid, points in results:
        if grid is STANDARD_GRID:
            print(f"{name:40s} {fmt(at(points, configured))}")
    base = best(results[1][4])["f1"]
    chosen = results[-1]
    print(f"\nchosen / cosine-mix baseline pairwise F1 (best thresholds): "
          f"{best(chosen[4])['f1'] / base:.2f}x")
    print("\nthreshold curve of the chosen mix:")
    print("  thr     P      R      F1     B3-F1  grouped  strict-P strict-F1")
    for point in chosen[4]:
        print(f"  {point['threshold']:+.1f}  {point['p']:.3f}  {point['r']:.3f}  {point['f1']:.3f}  "
              f"{point['b3_f1']:.3f}  {point['grouped']:>6.0%}  {point['strict_p']:.3f}    "
              f"{point['strict_f1']:.3f}")
    print("\ndense_weight sweep (std+CSLS, best threshold each):")
    vectors = encoder.embed([group_text(r, settings.group.text) for r in rows])
    for weight in WEIGHT_GRID:
        params = {**index_params(settings.group), "dense_weight": float(weight)}
        index = SimilarityIndex(**params).fit(rows, vectors=vectors)
        print(f"  w={weight:.1f}  {fmt(best(curve(index, index.score_, STANDARD_GRID, groups)))}")
    print(f"\nsplit-half check ({SPLITS} random halves of the groups; threshold tuned on one half, "
          f"tested on the other):")
    for name, index, matrix, grid, _ in results[2:]:
        check = split_half(index, matrix, groups, configured)
        print(f"{name:40s} tune F1 {check['tune_f1']:.3f}  test F1 {check['test_f1']:.3f} "
              f"(sd {check['test_f1_sd']:.3f})  test F1 at configured {check['configured_test_f1']:.3f}")
    print("\nsize check (chosen mix on random subsets of the rows; gold restricted to them):")
    vectors = encoder.embed([group_text(r, settings.group.text) for r in rows])
    rng = np.random.default_rng(0)
    floor = settings.group.min_similarity
    for fraction in SIZE_FRACTIONS + (1.0,):
        found = []
        for _ in range(SIZE_REPEATS if fraction < 1 else 1):
            keep = np.sort(rng.choice(len(rows), int(round(fraction * len(rows))), replace=False))
            subset = [rows[i] for i in keep]
            ids = {r.id for r in subset}
            sub_groups = [{"members": [m for m in g["members"] if m in ids]} for g in groups]
            sub_groups = [g for g in sub_groups if len(g["members"]) >= 2]
            index = SimilarityIndex(**index_params(settings.group)).fit(subset, vectors=vectors[keep])
            matrix = np.where(index.similarity_ >= floor, index.score_, CANNOT_LINK)
            points = curve(index, matrix, STANDARD_GRID, sub_groups)
            found.append((best(points)["threshold"], best(points)["f1"], at(points, configured)["f1"],
                          at(points, configured)["p"]))
        thr, f1, f1_cfg, p_cfg = np.mean(found, axis=0)
        print(f"  {fraction:.0%} of rows: best threshold {thr:+.2f} (F1 {f1:.3f}); at configured: "
              f"P {p_cfg:.3f} F1 {f1_cfg:.3f}")
    if png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for name, _, _, grid, points in results[2:]:
            ax.plot([p["threshold"] for p in points], [p["f1"] for p in points], label=name)
        ax.axvline(configured, color="grey", linestyle=":")
        ax.set_xlabel("threshold (hub-corrected score, SD)")
        ax.set_ylabel("pairwise F1")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(png, dpi=110)
        print(f"\ncurve written to {png}")


# --- speed --------------------------------------------------------------------------------------


def synthetic(rows, vectors, n: int, seed: int = 0):
    """`n` rows from the corpus with varied texts (sentences shuffled, words dropped) and their
    cached vectors perturbed, so no row is an exact duplicate and nothing needs embedding."""
    rng = np.random.default_rng(seed)
    out_rows, out_vectors = [], []
    for i in range(n):
        source = i % len(rows)
        row = rows[source]
        words = row.omschrijving.split()
        if i >= len(rows):
            keep = rng.random(len(words)) > 0.15
            words = [w for w, k in zip(words, keep) if k] or words
            rng.shuffle(words[: len(words) // 2])
        out_rows.append(dataclasses.replace(row, id=f"syn-{i:05d}", omschrijving=" ".join(words)))
        noise = rng.normal(0, 0.02, vectors.shape[1]) if i >= len(rows) else 0
        out_vectors.append(vectors[source] + noise)
    return out_rows, np.asarray(out_vectors, dtype=np.float32)


def speed(settings, rows, encoder) -> None:
    config = settings.group
    vectors = encoder.embed([group_text(r, config.text) for r in rows])
    Grouper.from_config(config).fit(rows[:20], vectors=vectors[:20])  # load spaCy once
    print("\nspeed (grouping only, vectors given):")
    print("  (similarity and cut timed alone; total = Grouper.fit: similarity, cut, keywords, names)")
    print(f"  {'rows':>5}  {'similarity s':>12}  {'cut s':>6}  {'total s':>7}  "
          f"{'groups':>6}  embedding uncached ~s")
    previous = None
    for n in SPEED_SIZES:
        syn_rows, syn_vectors = synthetic(rows, vectors, n)
        grouper = Grouper.from_config(config)
        start = time.perf_counter()
        index = SimilarityIndex(**index_params(config)).fit(syn_rows, vectors=syn_vectors)
        t_index = time.perf_counter() - start
        start = time.perf_counter()
        cut(index.score_, config.threshold, linkage=config.linkage)
        t_cut = time.perf_counter() - start
        start = time.perf_counter()
        grouper.fit(syn_rows, vectors=syn_vectors)
        t_total = time.perf_counter() - start
        growth = f"  x{t_total / previous:.1f} for x2 rows" if previous else ""
        print(f"  {n:>5}  {t_index:>12.2f}  {t_cut:>6.2f}  {t_total:>7.2f}  "
              f"{len(grouper.groups_):>6}  {n / UNCACHED_ROWS_PER_SECOND:>8.0f}{growth}")
        previous = t_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=Path, default=ROOT / "data/corpus/same_idea_groups.jsonl")
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None, help="write the F1 curve here")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    rows = read_initiatives(args.corpus or settings.paths.corpus).accepted
    groups = [json.loads(line) for line in args.groups.read_text(encoding="utf-8").splitlines()
              if line.strip()]
    encoder = encoder_from_config(settings.embed)
    quality(settings, rows, groups, encoder, args.png)
    if not args.no_speed:
        speed(settings, rows, encoder)


if __name__ == "__main__":
    main()
