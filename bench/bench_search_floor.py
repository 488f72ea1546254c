"""Search on text it was not tuned on: the channel mix chosen on half the queries and scored on the
other half, and the relevance floor that lets search say "geen passende initiatieven".

    .venv/bin/python bench/bench_search_floor.py [--splits 30]

Three query sets, none copied from the text of its relevant rows:
  guide:       the policy-officer queries of bench_search.py (relevant: rows with that label);
  same-idea:   a row's naam as the query, relevant: the *other* rows of its same-idea group
               (data/corpus/same_idea_groups.jsonl): the same idea in another municipality's words;
  paraphrase:  a row's naam as the query over documents *without* their naam (only the
               omschrijving), relevant: that row: the naam is a short paraphrase of its text.
Off-topic queries (nonsense strings and everyday Dutch searches that no initiative is about) must
get no hits.

Protocol: for each of --splits random halvings of every query set, the mix (min-max or z-score
scaling, dense share 0..1) is chosen on one half by mean MRR over the sets and scored on the other;
dense-only and the configured mix are scored on the same halves. The floor (a hit is kept when its
raw e5 cosine >= dense floor or its lemma TF-IDF cosine >= keyword floor) is chosen on half of
the on-topic and half of the off-topic queries, by balanced accuracy (share of off-topic queries
left empty plus share of on-topic queries that keep a relevant row on the first page); then scored
on the other halves
(share of off-topic queries with no hits; share of on-topic queries that keep a relevant hit), for
two uses of the floor: "hit" drops every row below it, "gate" only decides whether the query has
an answer (configs use the gate: it measured better on both shares).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import QUERIES, labelled_rows, metrics  # noqa: E402

from pipeline.catalogue.records import records_from_rows  # noqa: E402
from pipeline.core.config import load_settings  # noqa: E402
from pipeline.core.text import model_text, normalise  # noqa: E402
from pipeline.models.embed import encoder_from_config  # noqa: E402
from pipeline.models.ranking import HybridRanker  # noqa: E402
from pipeline.training.cv import read_groups  # noqa: E402

OFF_TOPIC = [
    "xyzzy qwerty", "asdf jkl", "blablabla", "lorem ipsum dolor sit amet", "qqq", "zxcv bnm",
    "kjdshf sdkjfh", "aaaaaaaa", "1234 5678", "foo bar baz", "hello world", "test test test",
    "pizza quattro stagioni", "voetbaluitslagen eredivisie", "weerbericht morgen", "bitcoin koers",
    "recept appeltaart", "tweedehands auto kopen", "vakantie naar spanje", "formule 1 grand prix",
    "beste smartphone 2020", "aandelen beleggen tips", "tuinmeubelen in de aanbieding",
    "concertkaartjes bestellen", "hypotheekrente vergelijken", "schaakopening siciliaans",
    "vliegtickets goedkoop", "film recensie", "kapsalon openingstijden", "sterrenkunde planeten",
]
SCALINGS = ("minmax", "z")
WEIGHTS = [round(w, 1) for w in np.linspace(0, 1, 11)]
PAGE = 20


def _scale(x, how):
    if how == "minmax":
        low, high = x.min(), x.max()
        return np.zeros_like(x) if high <= low else (x - low) / (high - low)
    sd = x.std()
    return np.zeros_like(x) if sd == 0 else (x - x.mean()) / sd


def _mix(ch, how, w):
    return w * _scale(ch["dense_raw"], how) + (1 - w) * _scale(ch["keyword_raw"], how)


def query_sets(settings, records, encoder):
    ids = [r["id"] for r in records]
    where = {i: k for k, i in enumerate(ids)}
    full = HybridRanker(query_encoder=encoder, lemmatize=settings.text.lemmatize).fit(
        [model_text(r) for r in records])
    bodies = HybridRanker(query_encoder=encoder, lemmatize=settings.text.lemmatize).fit(
        [normalise(r.get("omschrijving") or "") for r in records])
    sets = {"guide": [(full.channel_scores(q), np.array([label in r[f] for r in records], float), None)
                      for f, label, q in QUERIES]}
    same = []
    for group in read_groups(settings.paths.same_idea_groups):
        for member in group:
            if member in where and records[where[member]].get("naam"):
                relevant = np.array([i in group and i != member for i in ids], float)
                same.append((full.channel_scores(records[where[member]]["naam"]), relevant, where[member]))
    sets["same-idea"] = same
    sets["paraphrase"] = [(bodies.channel_scores(r["naam"]), np.eye(len(records))[k], None)
                          for k, r in enumerate(records) if r.get("naam") and len(r["naam"]) > 8]
    off = [full.channel_scores(q) for q in OFF_TOPIC]
    return sets, off


def reciprocal_ranks(items, how, w):
    out = []
    for ch, relevant, itself in items:
        scores = _mix(ch, how, w)
        if itself is not None:
            scores = scores.copy()
            scores[itself] = -np.inf
        out.append(metrics(scores, relevant)[0])
    return np.array(out)


def kept(ch, dense_floor, keyword_floor):
    return (ch["dense_raw"] >= dense_floor) | (ch["keyword_raw"] >= keyword_floor)


def on_page_relevant(ch, relevant, itself, how, w, dense_floor, keyword_floor, mode="hit"):
    """Is a relevant row on the first page once the floor applies?

    mode "hit": every row below the floor is dropped; mode "gate": the floor only decides whether
    the query has any answer at all (when one row passes, every row is ranked as without a floor).
    """
    scores = _mix(ch, how, w)
    keep = kept(ch, dense_floor, keyword_floor)
    if itself is not None:
        keep = keep.copy()
        keep[itself] = False
    if mode == "gate":
        keep = np.full(len(keep), bool(keep.any()))
        if itself is not None:
            keep[itself] = False
    order = [i for i in np.argsort(-scores, kind="stable") if keep[i]][:PAGE]
    return bool(relevant[order].sum() > 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=30)
    args = parser.parse_args(argv)
    settings = load_settings()
    records = records_from_rows(labelled_rows(settings))
    encoder = encoder_from_config(settings.embed)
    sets, off = query_sets(settings, records, encoder)
    print(f"{len(records)} rows; queries: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items())
          + f", off-topic {len(off)}")
    rr = {(how, w): {name: reciprocal_ranks(items, how, w) for name, items in sets.items()}
          for how in SCALINGS for w in WEIGHTS}
    configured = ("minmax", round(settings.search.dense_weight, 1))
    print("\nMRR on all queries (hindsight)")
    print(f"  {'mix':14s} " + " ".join(f"{name:>10s}" for name in sets))
    for key in [("minmax", 1.0), ("minmax", 0.0), configured, ("z", 0.8), ("z", 0.7)]:
        print(f"  {key[0] + ' w=' + str(key[1]):14s} " + " ".join(f"{rr[key][n].mean():10.3f}" for n in sets))
    rng = np.random.default_rng(0)
    chosen, dense_only, released, picks = [], [], [], []
    for _ in range(args.splits):
        halves = {n: rng.random(len(v)) < 0.5 for n, v in sets.items()}

        def score(key, half):
            return float(np.mean([rr[key][n][halves[n] == half].mean() for n in sets]))

        pick = max(rr, key=lambda key: score(key, True))
        picks.append(pick)
        chosen.append(score(pick, False))
        dense_only.append(score(("minmax", 1.0), False))
        released.append(score(configured, False))
    print(f"\nhonest MRR (mean over sets, chosen on one half, scored on the other, {args.splits} splits):")
    print(f"  dense only {np.mean(dense_only):.3f}   configured {configured} {np.mean(released):.3f}   "
          f"chosen per split {np.mean(chosen):.3f}")
    counts = {p: picks.count(p) for p in set(picks)}
    print("  choices:", sorted(counts.items(), key=lambda kv: -kv[1])[:4])

    how, w = configured
    on_topic = [item for items in sets.values() for item in items]
    best_dense = np.array([ch["dense_raw"].max() for ch, _, _ in on_topic])
    print(f"\nraw e5 cosine of the best row: on-topic min {best_dense.min():.3f} / median "
          f"{np.median(best_dense):.3f}; off-topic max {max(ch['dense_raw'].max() for ch in off):.3f} / "
          f"median {np.median([ch['dense_raw'].max() for ch in off]):.3f}")
    dense_grid = np.round(np.arange(0.78, 0.871, 0.0025), 4)
    keyword_grid = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1.01)
    for mode in ("hit", "gate"):
        held = {"off_empty": [], "on_kept": [], "floors": []}
        split_rng = np.random.default_rng(1)  # the same splits for both modes
        for _ in range(args.splits):
            on_half = split_rng.random(len(on_topic)) < 0.5
            off_half = split_rng.random(len(off)) < 0.5

            def on_rate(floors, half):
                chosen_items = [it for it, h in zip(on_topic, on_half) if h == half]
                return np.mean([on_page_relevant(ch, rel, itself, how, w, *floors, mode=mode)
                                for ch, rel, itself in chosen_items])

            def off_rate(floors, half):
                return np.mean([not kept(ch, *floors).any() for ch, h in zip(off, off_half) if h == half])

            candidates = [(d, k) for d in dense_grid for k in keyword_grid]
            base = on_rate((0.0, 0.0), True)
            # Balanced: an off-topic query left empty counts as much as an on-topic one kept.
            best = max(candidates, key=lambda f: (off_rate(f, True) + on_rate(f, True) / base, -f[0]))
            held["floors"].append(best)
            held["off_empty"].append(off_rate(best, False))
            held["on_kept"].append(on_rate(best, False) / max(on_rate((0.0, 0.0), False), 1e-9))
        floors = np.array(held["floors"])
        print(f"\nrelevance floor, mode {mode!r}, chosen on half the queries, scored on the other half "
              f"({args.splits} splits):")
        print(f"  dense floor median {np.median(floors[:, 0]):.4f} (range {floors[:, 0].min():.4f}-"
              f"{floors[:, 0].max():.4f}), keyword floor median {np.median(floors[:, 1]):.2f}")
        print(f"  off-topic queries with no hits: {np.mean(held['off_empty']):.1%} (without a floor: 0%)")
        print(f"  on-topic queries that keep a relevant row on the first page, relative to no floor: "
              f"{np.mean(held['on_kept']):.1%}")
    cfg = (settings.search.min_dense_similarity, settings.search.min_keyword_similarity) \
        if hasattr(settings.search, "min_dense_similarity") else None
    if cfg:
        print(f"  configured floors {cfg}: off-topic empty {np.mean([not kept(ch, *cfg).any() for ch in off]):.1%}, "
              f"on-topic with a relevant row on page 1: "
              f"{np.mean([on_page_relevant(ch, r, i, how, w, *cfg, mode='gate') for ch, r, i in on_topic]):.1%}"
              " (gate)")


if __name__ == "__main__":
    main()
