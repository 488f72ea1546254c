"""Reason audit: every replicability reason next to its evidence, for a reviewer to mark.

    .venv/bin/python bench/bench_reasons.py --label after [--round N]   # this checkout's scorer
    .venv/bin/python bench/bench_reasons.py --label before [--round N]  # the released model
    .venv/bin/python bench/bench_reasons.py --reliability               # the filter, round left out

Round 0 is 40 corpus rows (8 per annotator score 1-5, seed 13); round N >= 1 is 3 rows per score
(seed 13 + N) none of the earlier rounds holds, so corrections made from earlier rounds are scored
on rows they were not made on. `after` fits the scorer of this checkout ([score], cue file
included) on the labelled rows, with the hand marks of every round *but N* deciding which kinds of
reason are shown, and writes data/reason_audits/roundN.tsv: id, score, direction, reason,
evidence, 60 characters either side, `shown` (1 = shown to users, 0 = hidden by [score]
min_reason_precision) and `right` (1 = the text supports the reason in that sense, 0 = not; see
data/reason_audits/README.md). Every reason is listed, hidden ones too, so a hidden kind can earn
its place back. Marks already given for the same id, reason and evidence are kept. `before`
scores with the released bundle as a user gets it into bench/out/reason_audit_roundN_before.tsv.

`--reliability` scores the filter by leaving one round out: the shares right per kind come from
the other rounds, and every cut-off is scored on the left-out round's marks (fixed cut-offs, and a
cut-off chosen inside the other rounds the same way: the lowest whose right share reaches 90%).

Prints, on the whole corpus: rows with two reasons of opposite direction on overlapping evidence,
evidence not verbatim in the text, rows scored 4-5 whose first reason is negative (and 1-2 whose
first is positive), and the share marked right in the file, among shown and among all reasons.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.config import load_settings  # noqa: E402
from pipeline.core.records import Initiative  # noqa: E402
from pipeline.models.predict import Predictor  # noqa: E402
from pipeline.models.score import build_scorer  # noqa: E402

OUT = ROOT / "bench" / "out"
FIELDS = ["id", "score", "richting", "reden", "bewijs", "links", "rechts", "shown", "right"]
PER_SCORE = 8
SEED = 13
CONTEXT = 60


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def occurrences(text: str, part: str) -> list[tuple[int, int]]:
    out, start = [], text.find(part)
    while start >= 0:
        out.append((start, start + len(part)))
        start = text.find(part, start + 1)
    return out


def opposite_overlap(text: str, reasons: list[dict]) -> bool:
    """Two reasons of opposite direction whose evidence overlaps somewhere in the text (any
    occurrence of each evidence string counts, so this errs towards reporting an overlap)."""
    spans = [(r["richting"], occurrences(text, r["bewijs"])) for r in reasons if r.get("bewijs")]
    for i, (d1, s1) in enumerate(spans):
        for d2, s2 in spans[i + 1:]:
            if d1 != d2 and any(a < d and c < b for a, b in s1 for c, d in s2):
                return True
    return False


def select(rows: list[dict], *, seed: int = SEED, per_score: int = PER_SCORE,
           leave_out: frozenset = frozenset()) -> list[str]:
    rng = random.Random(seed)
    chosen = []
    for score in range(1, 6):
        ids = sorted(r["id"] for r in rows if r.get("replicability") == score and r["id"] not in leave_out)
        rng.shuffle(ids)
        chosen += sorted(ids[:per_score])
    return chosen


def load_marks(path: Path) -> dict[tuple, str]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {(r["id"], r["richting"], r["reden"], r["bewijs"]): r["right"]
                for r in csv.DictReader(handle, delimiter="\t") if r.get("right", "") != ""}


ROUNDS = ROOT / "data" / "reason_audits"
CUTS = (0.0, 0.7, 0.75, 0.8, 0.85, 0.9)
AIM = 0.9


def round_rows(labelled: list[dict], round_: int) -> list[str]:
    rows, seen = select(labelled), frozenset()
    for k in range(1, round_ + 1):
        seen |= frozenset(rows)
        rows = select(labelled, seed=SEED + k, per_score=3, leave_out=seen)
    return rows


def round_marks() -> dict[int, list]:
    """{round: [Mark]} of the audit files in data/reason_audits/."""
    from pipeline.models.reason_reliability import read_audit_file

    return {int(path.stem.removeprefix("round")): read_audit_file(path)
            for path in sorted(ROUNDS.glob("round*.tsv"))}


def reliability_report(marks: dict[int, list], prior_weight: float) -> None:
    from pipeline.models.reason_reliability import ReasonReliability

    def scored(train_rounds, test_round, cut):
        fitted = ReasonReliability(prior_weight=prior_weight).fit(
            [m for k in train_rounds for m in marks[k]])
        kept = [m for m in marks[test_round] if fitted.shows(m.reden, m.richting, cut)]
        return np.array([sum(m.right for m in kept), len(kept), len(marks[test_round])])

    rounds = sorted(marks)
    print(f"\nreason filter, one audit round left out ({len(rounds)} rounds, "
          f"{sum(len(m) for m in marks.values())} marks, prior weight {prior_weight}):")
    for cut in CUTS:
        total = sum(scored([k for k in rounds if k != h], h, cut) for h in rounds)
        print(f"  kinds >= {cut:.2f}: {total[0] / max(total[1], 1):.1%} right, {total[1] / total[2]:.0%} of reasons shown")
    total = np.zeros(3, int)
    for held in rounds:
        others = [k for k in rounds if k != held]
        inner = {cut: sum(scored([k for k in others if k != g], g, cut) for g in others) for cut in CUTS}
        cut = next((c for c in CUTS if inner[c][0] / max(inner[c][1], 1) >= AIM), CUTS[-1])
        result = scored(others, held, cut)
        total += result
        print(f"  round {held} left out: cut {cut:.2f} chosen on the others; {result[0]} of {result[1]} "
              f"shown reasons right ({result[2]} reasons in all)")
    print(f"  nested: {total[0] / max(total[1], 1):.1%} right, {total[1] / total[2]:.0%} of reasons shown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", choices=("before", "after"))
    parser.add_argument("--round", type=int, default=0, metavar="N",
                        help="0: the 40 rows; N >= 1: 15 other rows (3 per score, seed 13 + N, none of "
                             "the earlier rounds)")
    parser.add_argument("--reliability", action="store_true",
                        help="score the reason filter with one audit round left out, then stop")
    args = parser.parse_args()
    settings = load_settings()
    if args.reliability:
        reliability_report(round_marks(), settings.score.reason_prior_weight)
        return
    if args.label is None:
        parser.error("--label before|after is needed (or --reliability)")

    corpus = read_jsonl(settings.paths.corpus)
    labelled = {r["id"]: r for r in read_jsonl(settings.paths.labelled / "seed.jsonl")}
    X = [Initiative(id=r["id"], gemeente=r["gemeente"], naam=r.get("naam"), omschrijving=r["omschrijving"],
                    gemeenten=tuple(r.get("gemeenten") or ()), urls=tuple(r.get("urls") or ())) for r in corpus]
    predictor = Predictor.load(None, settings)
    if args.label == "after":
        train = [x for x in X if labelled.get(x.id, {}).get("replicability") is not None]
        y = np.array([int(labelled[x.id]["replicability"]) for x in train])
        others = tuple(m for k, marks in round_marks().items() if k != args.round for m in marks)
        predictor.stages["replicability"] = build_scorer(settings).set_params(reason_marks=others).fit(train, y)
    scorer = predictor.stages["replicability"]
    cut = getattr(scorer, "min_reason_precision", 0.0)
    records = predictor.predict(X)
    texts = {x.id: x.omschrijving for x in X}

    overlap = [r["id"] for r in records if opposite_overlap(texts[r["id"]], r["replicability_reasons"])]
    not_verbatim = [(r["id"], x["bewijs"]) for r in records for x in r["replicability_reasons"]
                    if x.get("bewijs") and x["bewijs"] not in texts[r["id"]]]
    high_neg = [r["id"] for r in records if r["replicability"] >= 4
                and r["replicability_reasons"][0]["richting"] == "-"]
    low_pos = [r["id"] for r in records if r["replicability"] <= 2
               and r["replicability_reasons"][0]["richting"] == "+"]
    n_reasons = sum(len(r["replicability_reasons"]) for r in records)
    print(f"corpus: {len(records)} rows, {n_reasons} reasons shown; scores "
          f"{dict(sorted(zip(*np.unique([r['replicability'] for r in records], return_counts=True))))}")
    print(f"rows with opposite-direction reasons on overlapping evidence: {len(overlap)}")
    print(f"evidence spans not verbatim in the text: {len(not_verbatim)}")
    print(f"rows scored 4-5 whose first reason is negative: {len(high_neg)}")
    print(f"rows scored 1-2 whose first reason is positive: {len(low_pos)}")

    shown = {r["id"]: r for r in records}
    # The same rows again with every reason, hidden ones and those beyond max_reasons included:
    # only the scorer again, with the kinds the predictor gave.
    limit = scorer.max_reasons
    scorer.set_params(min_reason_precision=0.0, max_reasons=10_000)
    every = dict(zip([x.id for x in X], scorer.score_rows(X, [r["kind"] for r in records])))
    scorer.set_params(min_reason_precision=cut, max_reasons=limit)
    rows = round_rows(list(labelled.values()), args.round)
    if args.label == "after":
        path = ROUNDS / f"round{args.round}.tsv"
    else:
        path = OUT / f"reason_audit_round{args.round}_before.tsv"
    marks = {}
    for earlier in (OUT / f"reason_audit_round{args.round}_before.tsv", ROUNDS / f"round{args.round}.tsv"):
        marks.update(load_marks(earlier))
    out_rows = []
    for row_id in rows:
        text = texts[row_id]
        key = lambda reason: (reason["richting"], reason["reden"], reason.get("bewijs") or "")  # noqa: E731
        visible = [key(x) for x in shown[row_id]["replicability_reasons"]]
        listed = [key(x) for x in every[row_id]["replicability_reasons"]]
        # Every reason, then any shown only with the filter on (the fallback when all are hidden).
        for richting, reden, bewijs in listed + [k for k in visible if k not in listed]:
            start = text.find(bewijs) if bewijs else -1
            left = text[max(0, start - CONTEXT):start] if start >= 0 else ""
            right = text[start + len(bewijs):start + len(bewijs) + CONTEXT] if start >= 0 else ""
            out_rows.append({"id": row_id, "score": shown[row_id]["replicability"], "richting": richting,
                             "reden": reden, "bewijs": bewijs,
                             "links": " ".join(left.split()), "rechts": " ".join(right.split()),
                             "shown": int((richting, reden, bewijs) in visible),
                             "right": marks.get((row_id, richting, reden, bewijs), "")})
    # Marked reasons this code no longer gives stay in the file (shown = "gone"): the marks are
    # data the reason filter learns from.
    produced = {(r["id"], r["richting"], r["reden"], r["bewijs"]) for r in out_rows}
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for old in csv.DictReader(handle, delimiter="\t"):
                key = (old["id"], old["richting"], old["reden"], old["bewijs"])
                if old.get("right", "") != "" and key not in produced:
                    out_rows.append({**{f: old.get(f, "") for f in FIELDS}, "shown": "gone"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(out_rows)

    def share(items):
        marked = [r["right"] for r in items if r["right"] != ""]
        return f"{sum(m == '1' for m in marked)} of {len(marked)} marked right" if marked else "none marked"

    print(f"{path.relative_to(ROOT)}: {sum(r['shown'] != 'gone' for r in out_rows)} reasons on {len(rows)} rows, "
          f"{sum(r['shown'] == 1 for r in out_rows)} shown; shown: {share([r for r in out_rows if r['shown'] == 1])}; "
          f"all given now: {share([r for r in out_rows if r['shown'] != 'gone'])}")


if __name__ == "__main__":
    main()
