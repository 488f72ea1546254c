"""Reason audit: every replicability reason next to its evidence, for a reviewer to mark.

    .venv/bin/python bench/bench_reasons.py --label before   # the released model (models/LATEST)
    .venv/bin/python bench/bench_reasons.py --label after    # this checkout's code and cue file

`--held-out` audits 15 other rows (3 per score, none of the 40) into
bench/out/reason_audit_heldout_<label>.tsv: the fixes made from the first audit are scored there.

`before` scores the corpus with the released bundle as a user gets it. `after` fits the scorer of
this checkout ([score] in configs/pipeline.toml, cue file included) on the labelled rows and puts
it in place of the bundle's scorer (the kind stage stays the released one), without saving it:
the released model is retrained by the lead, not here.

Writes bench/out/reason_audit_<label>.tsv (`before`) or bench/out/reason_audit.tsv (`after`) for
40 corpus rows: id, score, direction, reason, evidence, 60 characters of text either side and a
`right` column (1 = the text supports the reason in that sense, 0 = not). Marks already in the
file, or in the `before` file for the same id, reason and evidence, are kept, so only new reasons
need marking. The 40 rows are drawn with a fixed seed, 8 per annotator score 1-5 (all rows of a
score when it has fewer), so the selection does not depend on the model.

Prints, on the whole corpus: rows with two reasons of opposite direction on overlapping evidence,
evidence not verbatim in the text, rows scored 4-5 whose first reason is negative (and 1-2 whose
first is positive), and the share marked right in the file.
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
FIELDS = ["id", "score", "richting", "reden", "bewijs", "links", "rechts", "right"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", choices=("before", "after"), required=True)
    parser.add_argument("--held-out", type=int, nargs="?", const=1, default=0, metavar="ROUND",
                        help="audit 15 other rows (3 per score, seed 13 + ROUND, none of the 40 nor of "
                             "earlier rounds), so fixes made from earlier audits are scored on rows "
                             "they were not made on")
    args = parser.parse_args()

    settings = load_settings()
    corpus = read_jsonl(settings.paths.corpus)
    labelled = {r["id"]: r for r in read_jsonl(settings.paths.labelled / "seed.jsonl")}
    X = [Initiative(id=r["id"], gemeente=r["gemeente"], naam=r.get("naam"), omschrijving=r["omschrijving"],
                    gemeenten=tuple(r.get("gemeenten") or ()), urls=tuple(r.get("urls") or ())) for r in corpus]
    predictor = Predictor.load(None, settings)
    if args.label == "after":
        train = [x for x in X if labelled.get(x.id, {}).get("replicability") is not None]
        y = np.array([int(labelled[x.id]["replicability"]) for x in train])
        predictor.stages["replicability"] = build_scorer(settings).fit(train, y)
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
    print(f"corpus: {len(records)} rows, {n_reasons} reasons; scores "
          f"{dict(sorted(zip(*np.unique([r['replicability'] for r in records], return_counts=True))))}")
    print(f"rows with opposite-direction reasons on overlapping evidence: {len(overlap)}")
    print(f"evidence spans not verbatim in the text: {len(not_verbatim)}")
    print(f"rows scored 4-5 whose first reason is negative: {len(high_neg)}")
    print(f"rows scored 1-2 whose first reason is positive: {len(low_pos)}")

    path = OUT / ("reason_audit_before.tsv" if args.label == "before" else "reason_audit.tsv")
    rows = select(list(labelled.values()))
    seen: frozenset = frozenset()
    for round_ in range(1, args.held_out + 1):
        seen |= frozenset(rows)
        rows = select(list(labelled.values()), seed=SEED + round_, per_score=3, leave_out=seen)
        path = OUT / f"reason_audit_heldout{'' if round_ == 1 else round_}_{args.label}.tsv"
    marks = load_marks(OUT / "reason_audit_before.tsv")
    for earlier in (OUT / "reason_audit_heldout_before.tsv", path):
        marks.update(load_marks(earlier))
    by_id = {r["id"]: r for r in records}
    out_rows = []
    for row_id in rows:
        record, text = by_id[row_id], texts[row_id]
        for reason in record["replicability_reasons"]:
            bewijs = reason.get("bewijs") or ""
            start = text.find(bewijs) if bewijs else -1
            left = text[max(0, start - CONTEXT):start] if start >= 0 else ""
            right = text[start + len(bewijs):start + len(bewijs) + CONTEXT] if start >= 0 else ""
            key = (row_id, reason["richting"], reason["reden"], bewijs)
            out_rows.append({"id": row_id, "score": record["replicability"], "richting": reason["richting"],
                             "reden": reason["reden"], "bewijs": bewijs,
                             "links": " ".join(left.split()), "rechts": " ".join(right.split()),
                             "right": marks.get(key, "")})
    OUT.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(out_rows)
    marked = [r["right"] for r in out_rows if r["right"] != ""]
    share = sum(m == "1" for m in marked) / len(marked) if marked else float("nan")
    print(f"{path.relative_to(ROOT)}: {len(out_rows)} reasons on {len(set(r['id'] for r in out_rows))} rows; "
          f"{len(marked)} marked, share right {share:.1%}")


if __name__ == "__main__":
    main()
