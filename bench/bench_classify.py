"""Quality benchmark: cross-validated micro/macro F1 per field for baselines and our model, one run.

    .venv/bin/python bench/bench_classify.py [--repeats 3] [--ablations]

Every design is scored on the same iteratively stratified outer folds (pipeline.training.cv.outer_folds, the
[train] seed), each fold fitted from scratch on the training part only. The baselines are
pipeline.train.baseline_stages (also cross-validated by every `pipeline train` for the card):

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.training.cv import cross_validate
from pipeline.training.data import load_labelled
from pipeline.training.stages import STAGES, baseline_stages
from pipeline.core.config import load_settings, load_taxonomy


ABLATIONS = {
    "ours: no label priors": {"prior_weight": 0.0},
    "ours: priors, no split terms": {"prior_terms": False},
    "ours: embedding weight 1": {"embedding_weight": 1.0},
    "ours: embedding only": {"char_weight": 0.0},
    "ours: char TF-IDF only": {"embedding_weight": 0.0},
    "ours: no lemma word TF-IDF": {"lemma_weight": 0.0},
    "ours: C=1": {"C": 1.0},
    "ours: no threshold shrinkage": {"threshold_shrinkage": 0.0},
    "ours: kind as themes (chars, priors, tuned F1 threshold)": {"kind": {}},
    "ours: kind, accuracy-tuned threshold": {"kind": {"char_weight": 0.0, "prior_weight": 0.0,
                                                      "threshold_metric": "accuracy"}},
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
    data = load_labelled(settings.paths.labelled, taxonomy)
    texts = data.texts
    folds = args.folds or settings.train.folds
    designs = {name: (settings, baseline_stages(key)) for name, key in
               [("(a) word TF-IDF + LR", "word-tfidf-lr"), ("(b) zero-shot cosine", "zero-shot"),
                ("(c) e5 + LR, threshold 0.5", "e5-lr")]}
    ours = [s for s in STAGES if s.name in ("themes", "doelgroepen", "kind")]
    designs["(d) ours (released config)"] = (settings, ours)
    if args.ablations:
        for name, over in ABLATIONS.items():
            changed = dataclasses.replace(settings, classify=dataclasses.replace(settings.classify, **over))
            designs[name] = (changed, ours)
    print(f"{len(texts)} labelled rows, {folds}-fold iteratively stratified CV x {args.repeats} repeats "
          f"(seed {settings.train.seed}); mean over repeats\n")
    width = max(len(name) for name in designs)
    header = f"{'design':{width}s} {'themes micro':>12s} {'macro':>6s} {'doelgr micro':>12s} {'macro':>6s} " \
             f"{'kind acc':>8s} {'signal F1':>9s} {'secs':>5s}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, (st, stages) in designs.items():
        start = time.time()
        cv = cross_validate(stages, texts, data.rows, st, taxonomy, folds=folds, repeats=args.repeats,
                                  seed=settings.train.seed)
        results[name] = cv
        print(f"{name:{width}s} {cv['themes']['micro']['f1']:12.3f} {cv['themes']['macro']['f1']:6.3f} "
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
