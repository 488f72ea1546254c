"""Quality benchmark: cross-validated micro/macro F1 per field for baselines and our model, one run.

    .venv/bin/python bench/bench_classify.py [--repeats 3] [--ablations] [--nested] [--protocol both]

Every design is scored on the same outer folds (pipeline.training.cv.outer_folds, the [train] seed),
each fold fitted from scratch on the training part only, under two protocols side by side:

  dev:    rows split freely (iteratively stratified): near-twins of a test row from another
          municipality can sit in training, so this overstates;
  honest: the rows of each same-idea group (data/corpus/same_idea_groups.jsonl, overlapping groups
          joined) stay in one fold, closer to rows the model has never seen.

--nested chooses the classifier settings among CANDIDATES, for each field on its own, inside each
honest training part only (inner same-idea folds), fits the choice on that part and scores it on the
held-out fold: the
figure for "every setting chosen by the protocol", next to the released settings (chosen by
looking at all rows) and the candidate that is best in hindsight.

The baselines are pipeline.training.stages.baseline_stages (also cross-validated by every
`pipeline train` for the card):

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

import numpy as np

from pipeline.training.cv import cross_validate, outer_folds, read_groups, split_blocks
from pipeline.training.data import load_labelled
from pipeline.training.stages import FIELDS, STAGES, baseline_stages
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


# Settings the nested protocol chooses among (each a [classify] override; {} = as released).
CANDIDATES = {
    "released": {},
    "no label priors": {"prior_weight": 0.0},
    "embedding weight 1": {"embedding_weight": 1.0},
    "C=1": {"C": 1.0},
    "no label terms": {"term_weight": 0.0},
    "label terms 0.5": {"term_weight": 0.5},
    "label terms 1": {"term_weight": 1.0},
}


def _fields(cv):
    return (cv["themes"]["micro"]["f1"], cv["themes"]["macro"]["f1"],
            cv["doelgroepen"]["micro"]["f1"], cv["doelgroepen"]["macro"]["f1"])


def _with(settings, over):
    """[classify] with `over`, for themes and doelgroepen also over their own [classify.<field>] keys."""
    fields = {f: {k: v for k, v in getattr(settings.classify, f).items() if k not in over}
              for f in FIELDS if f != "kind"}
    return dataclasses.replace(settings, classify=dataclasses.replace(settings.classify, **over, **fields))


def nested(settings, taxonomy, data, stages, blocks, folds: int, repeats: int, inner_folds: int = 3):
    """Out-of-fold scores when each field's candidate is chosen on each training part only.

    Each field (themes, doelgroepen) is its own classifier, so each gets its own choice: the
    candidate with the best mean of micro- and macro-F1 for that field on inner same-idea folds.
    """
    texts = np.array(data.texts, dtype=object)
    rows = data.rows
    targets = {s.name: s.targets(rows, taxonomy) for s in stages}
    predictions = {s.name: [np.zeros_like(targets[s.name]) for _ in range(repeats)] for s in stages}
    chosen = []
    stratify = [targets[s.name] for s in stages if s.stratify]
    for repeat, train, test in outer_folds(stratify, folds, repeats, settings.train.seed, blocks):
        inner = {s.name: {} for s in stages}
        for name, over in CANDIDATES.items():
            cv = cross_validate(stages, list(texts[train]), [rows[i] for i in train], _with(settings, over),
                                taxonomy, folds=inner_folds, repeats=1, seed=settings.train.seed + 7,
                                blocks=blocks[train])
            for s in stages:
                inner[s.name][name] = (cv[s.name]["micro"]["f1"] + cv[s.name]["macro"]["f1"]) / 2
        best = {s.name: max(inner[s.name], key=inner[s.name].get) for s in stages}
        chosen.append(best)
        for stage in stages:
            model = stage.make(_with(settings, CANDIDATES[best[stage.name]]), taxonomy, settings.train.seed)
            model.fit(list(texts[train]), targets[stage.name][train])
            predictions[stage.name][repeat][test] = np.asarray(model.predict(list(texts[test])))
        print("  nested fold: chose " + ", ".join(f"{k} {v!r} ({inner[k][v]:.3f})" for k, v in best.items()),
              flush=True)
    out = {}
    for stage in stages:
        per_repeat = [stage.evaluate(targets[stage.name], p, taxonomy) for p in predictions[stage.name]]
        out[stage.name] = {"micro": {"f1": float(np.mean([m["micro"]["f1"] for m in per_repeat]))},
                           "macro": {"f1": float(np.mean([m["macro"]["f1"] for m in per_repeat]))}}
    return out, chosen


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--nested", action="store_true")
    parser.add_argument("--protocol", choices=("both", "honest", "dev"), default="both")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    settings = load_settings()
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    data = load_labelled(settings.paths.labelled, taxonomy)
    texts = data.texts
    folds = args.folds or settings.train.folds
    blocks = split_blocks([i.id for i in data.initiatives], read_groups(settings.paths.same_idea_groups))
    protocols = {"dev": None, "honest": blocks}
    if args.protocol != "both":
        protocols = {args.protocol: protocols[args.protocol]}
    designs = {name: (settings, baseline_stages(key)) for name, key in
               [("(a) word TF-IDF + LR", "word-tfidf-lr"), ("(b) zero-shot cosine", "zero-shot"),
                ("(c) e5 + LR, threshold 0.5", "e5-lr")]}
    ours = [s for s in STAGES if s.name in ("themes", "doelgroepen", "kind")]
    designs["(d) ours (released config)"] = (settings, ours)
    if args.ablations:
        for name, over in ABLATIONS.items():
            designs[name] = (_with(settings, over), ours)
    print(f"{len(texts)} labelled rows ({len(set(blocks))} same-idea blocks), {folds}-fold CV x "
          f"{args.repeats} repeats (seed {settings.train.seed}); mean over repeats\n")
    width = max(len(name) for name in designs) + 9
    header = f"{'design':{width}s} {'themes micro':>12s} {'macro':>6s} {'doelgr micro':>12s} {'macro':>6s} " \
             f"{'kind acc':>8s} {'signal F1':>9s} {'secs':>5s}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, (st, stages) in designs.items():
        for protocol, protocol_blocks in protocols.items():
            start = time.time()
            cv = cross_validate(stages, texts, data.rows, st, taxonomy, folds=folds, repeats=args.repeats,
                                seed=settings.train.seed, blocks=protocol_blocks)
            results[name, protocol] = cv
            label = f"{name} [{protocol}]"
            print(f"{label:{width}s} {cv['themes']['micro']['f1']:12.3f} {cv['themes']['macro']['f1']:6.3f} "
                  f"{cv['doelgroepen']['micro']['f1']:12.3f} {cv['doelgroepen']['macro']['f1']:6.3f} "
                  f"{cv['kind']['accuracy']:8.3f} {cv['kind']['signal']['f1']:9.3f} {time.time() - start:5.0f}",
                  flush=True)
    for protocol in protocols:
        ours_cv = results["(d) ours (released config)", protocol]
        print(f"\nmargin of (d) over each baseline [{protocol}] (micro-F1 themes / doelgroepen):")
        for name in list(designs)[:3]:
            base = results[name, protocol]
            print(f"  vs {name}: {ours_cv['themes']['micro']['f1'] - base['themes']['micro']['f1']:+.3f} / "
                  f"{ours_cv['doelgroepen']['micro']['f1'] - base['doelgroepen']['micro']['f1']:+.3f}")
    if args.nested:
        label_stages = [s for s in STAGES if s.name in ("themes", "doelgroepen")]
        print(f"\nnested selection among {list(CANDIDATES)} on honest folds:")
        start = time.time()
        scores, chosen = nested(settings, taxonomy, data, label_stages, blocks, folds, args.repeats)
        print(f"{'chosen inside each training part':{width}s} {scores['themes']['micro']['f1']:12.3f} "
              f"{scores['themes']['macro']['f1']:6.3f} {scores['doelgroepen']['micro']['f1']:12.3f} "
              f"{scores['doelgroepen']['macro']['f1']:6.3f} {'':8s} {'':9s} {time.time() - start:5.0f}")
        for name, over in CANDIDATES.items():
            cv = cross_validate(label_stages, texts, data.rows, _with(settings, over), taxonomy, folds=folds,
                                repeats=args.repeats, seed=settings.train.seed, blocks=blocks)
            print(f"{'  candidate ' + name + ' (hindsight)':{width}s} " +
                  " ".join(f"{v:{w}.3f}" for v, w in zip(_fields(cv), (12, 6, 12, 6))), flush=True)
        print(f"  chosen per fold: {chosen}")


if __name__ == "__main__":
    main()
