"""How well free-text municipality values resolve, and where the fuzzy cut-off lies.

    .venv/bin/python bench/bench_municipalities.py [--judged FILE] [--corpus FILE]

The judged file (`data/reference/judged_mentions.jsonl`) holds the corpus's mentions (every
`gemeente` and `gemeenten` value, places named in the descriptions) and hand-made ones of the
kinds senders type (typos, old names, villages, provinces, regions, groups, joint values), each
with the CBS codes a person gives it ([] = not a municipality). Scored per code: precision =
right codes / codes given, recall = right codes / codes expected.

The mentions are split in two halves by a hash of their text; the cut-off with the best F1 on one
half (ties: the higher cut-off) is scored on the other half, both ways round. Then the corpus is
resolved with the configured cut-off and counted by how each value resolved.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.config import load_settings
from pipeline.core.municipalities import HOW, reference_from_settings

CUTOFFS = list(range(60, 101))


def scores(reference, mentions, cutoff):
    tp = fp = fn = 0
    for m in mentions:
        got = {p.code for p in reference.resolve(m["text"], fuzzy_cutoff=cutoff) if p.code}
        want = set(m["expected"])
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, fp, fn


def choose(reference, mentions):
    results = {c: scores(reference, mentions, c) for c in CUTOFFS}
    best = max(CUTOFFS, key=lambda c: (round(results[c][2], 6), c))
    return best, results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", default="data/reference/judged_mentions.jsonl")
    parser.add_argument("--corpus", default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    reference = reference_from_settings(settings)
    mentions = [json.loads(line) for line in Path(args.judged).read_text(encoding="utf-8").splitlines() if line.strip()]
    halves = ([], [])
    for m in mentions:
        halves[int(hashlib.sha256(m["text"].encode()).hexdigest(), 16) % 2].append(m)
    print(f"{len(mentions)} judged mentions: halves of {len(halves[0])} and {len(halves[1])}")
    for name, (tune, test) in (("A->B", halves), ("B->A", halves[::-1])):
        best, results = choose(reference, tune)
        p, r, f, fp, fn = scores(reference, test, best)
        tp_, tr_, tf_ = results[best][:3]
        print(f"{name}: cut-off {best} (tuning half P {tp_:.3f} R {tr_:.3f} F1 {tf_:.3f}); "
              f"held-out P {p:.3f} R {r:.3f} F1 {f:.3f} ({fp} wrong codes, {fn} missed)")
    print("\ncut-off curve on all mentions (P / R / F1):")
    for c in (60, 70, 75, 80, 82, 84, 85, 86, 88, 90, 92, 95, 100):
        p, r, f, fp, fn = scores(reference, mentions, c)
        print(f"  {c:3d}: {p:.3f} / {r:.3f} / {f:.3f}  wrong {fp:2d}  missed {fn:2d}")
    configured = reference.fuzzy_cutoff
    print(f"\nconfigured cut-off {configured:g}: errors on all mentions")
    for m in mentions:
        places = reference.resolve(m["text"])
        got = [p.code for p in places if p.code]
        if set(got) != set(m["expected"]):
            print(f"  {m['text']!r}: expected {m['expected']}, got {got} "
                  f"({', '.join(p.how + (f' {p.score}' if p.score else '') for p in places)})")
    corpus = Path(args.corpus or settings.paths.corpus)
    values = Counter()
    per_row = Counter()
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        placement = reference.resolve_row(row["gemeente"], row.get("gemeenten") or (), row["omschrijving"])
        values.update(p.how for p in placement.places if p.field != "omschrijving")
        per_row["named in the description"] += sum(p.field == "omschrijving" for p in placement.places)
        per_row["rows"] += 1
        per_row["with a municipality"] += bool(placement.codes)
    print(f"\ncorpus {corpus.name}: {per_row['rows']} rows, {per_row['with a municipality']} with at least one "
          f"municipality; parts of values by how they resolved:")
    print("  " + ", ".join(f"{how} {values[how]}" for how in HOW))
    print(f"  + {per_row['named in the description']} municipalities taken from the descriptions of rows "
          f"whose fields name none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
