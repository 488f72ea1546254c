"""Fuzz the scheduled job (issue 17): generated files of good and hostile rows under hostile names
go through `run_inbox` with the released model; counts what must be zero.

    .venv/bin/python bench/bench_fuzz.py [--files 300] [--rows 10] [--seconds 240] [--seed 17]

Good rows reuse corpus texts under new ids (their embeddings are cached, so the run is quick);
hostile rows carry deep nesting, numbers of 5,000 digits, lone surrogates, control characters,
line separators, "$...$", ids with slashes. File names hold non-UTF-8 bytes, newlines, escape
codes and 250 bytes. Prints: files, rows, tracebacks (exceptions out of the run plus logged
ones), files left FAILED, rows neither stored nor listed as rejected, seconds. Files are run in
batches until --seconds have passed, so the run is bounded in time. Runs on any checkout with
the same `run_inbox` (compare before/after a change by running it in both).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.catalogue import schema  # noqa: E402
from pipeline.core.config import load_settings  # noqa: E402
from pipeline.jobs.inbox import FAILED, REJECTED, run_inbox  # noqa: E402
from pipeline.models.predict import Predictor  # noqa: E402

CORPUS = ROOT / "data" / "corpus" / "initiatives.jsonl"
HOSTILE_TEXT = ["\u0007", "\u001b[31m", "\u2028", "\u2029", "\u0085", "$\\frac{a$", "\u202e", "=1+1",
                "\u0000"]
HOSTILE_IDS = ["x/overslaan", "..", ".", "../../x", "//evil.example", "a\nb", "a\\b"]


def hostile_line(rng: random.Random, n: int) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        depth = rng.choice([50, 2000, 50_000])
        return '{"id": "diep%d", "gemeente": "Ede", "omschrijving": "x", "e": %s%s}' % (n, "[" * depth, "]" * depth)
    if kind == 1:
        return '{"id": %s, "gemeente": "Ede", "omschrijving": "tekst"}' % ("9" * rng.choice([30, 5000]))
    if kind == 2:
        return '{"id": "s%d", "gemeente": "Ede", "omschrijving": "kapot \\ud800 teken"}' % n
    if kind == 3:
        return json.dumps({"id": f"c{n}", "gemeente": "Ede" + rng.choice(HOSTILE_TEXT),
                           "omschrijving": "Tekst " + rng.choice(HOSTILE_TEXT)}, ensure_ascii=False)
    if kind == 4:
        return json.dumps({"id": rng.choice(HOSTILE_IDS) + str(n), "gemeente": "Ede",
                           "omschrijving": "Buurtbewoners koken samen"})
    if kind == 5:
        return json.dumps({"id": f"l{n}", "gemeente": "$x$", "omschrijving": "Een\u2028twee\u2029drie"},
                          ensure_ascii=False)
    if kind == 6:
        return "{kapot" + rng.choice(HOSTILE_TEXT)
    return json.dumps({"id": 1e400 if rng.random() < 0.5 else [1, 2], "gemeente": None,
                       "omschrijving": {"a": [1]}})


def hostile_name(rng: random.Random, n: int) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return b"gemeente-\xff\xfe%d.jsonl" % n
    if kind == 1:
        return b"regel\nINFO vals %d.jsonl" % n
    if kind == 2:
        return b"kleur\x1b[31m%d.jsonl" % n
    if kind == 3:
        return (b"x" * 240 + b"%05d" % n)[:249] + b".jsonl"
    return b"bestand-%d.jsonl" % n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rows", type=int, default=10, help="rows per file")
    parser.add_argument("--batch", type=int, default=25, help="files per run of the job")
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()

    settings = load_settings()
    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(args.seed)
    predictor = Predictor.load(None, settings)
    logged = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.exc_info:
                logged.append(record.getMessage())

    logging.getLogger("pipeline").addHandler(Count())
    start = time.perf_counter()
    totals = dict(files=0, rows=0, tracebacks=0, failed=0, unaccounted=0, rejected_files=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inbox, db = tmp / "inbox", tmp / "catalogue.sqlite"
        inbox.mkdir()
        conn = schema.connect(db)
        made = 0
        while made < args.files and time.perf_counter() - start < args.seconds:
            expected: dict[bytes, int] = {}
            for _ in range(min(args.batch, args.files - made)):
                lines = []
                for r in range(args.rows):
                    if rng.random() < 0.5:
                        row = dict(rng.choice(corpus), id=f"f{made}-r{r}")
                        lines.append(json.dumps(row, ensure_ascii=False))
                    else:
                        lines.append(hostile_line(rng, made * 100 + r))
                name = hostile_name(rng, made)
                with open(os.path.join(os.fsencode(inbox), name), "wb") as handle:
                    handle.write("\n".join(lines).encode("utf-8", "backslashreplace") + b"\n")
                expected[name] = len(lines)
                made += 1
            for entry in os.listdir(os.fsencode(inbox)):
                path = os.path.join(os.fsencode(inbox), entry)
                if os.path.isfile(path):
                    os.utime(path, (time.time() - 3600, time.time() - 3600))
            before = {row[0] for row in conn.execute("SELECT id FROM submissions")}
            try:
                report = run_inbox(inbox, conn, predictor_factory=lambda: predictor,
                                   limits=settings.ingest)
            except Exception as exc:  # noqa: BLE001 - counted, the bench goes on
                totals["tracebacks"] += 1
                print(f"run raised {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
                for entry in list(expected):
                    os.unlink(os.path.join(os.fsencode(inbox), entry)) if os.path.lexists(
                        os.path.join(os.fsencode(inbox), entry)) else None
                totals["files"] += len(expected)
                totals["failed"] += len(expected)
                totals["unaccounted"] += sum(expected.values())
                continue
            totals["files"] += len(expected)
            totals["rows"] += sum(expected.values())
            totals["failed"] += report.count(FAILED)
            totals["rejected_files"] += report.count(REJECTED)
            new = conn.execute("SELECT id, status, rows_in FROM submissions").fetchall()
            stored_rows = sum(r["rows_in"] for r in new if r["id"] not in before and r["status"] == "stored")
            whole_files = sum(1 for r in new if r["id"] not in before and r["status"] != "stored")
            # A file refused whole is listed with its reason; its rows count as listed.
            totals["unaccounted"] += max(0, sum(expected.values()) - stored_rows - whole_files * args.rows)
            # Left in the inbox (FAILED): clear them so the next batch starts clean.
            for entry in os.listdir(os.fsencode(inbox)):
                path = os.path.join(os.fsencode(inbox), entry)
                if os.path.isfile(path) and not entry.startswith(b"."):
                    os.unlink(path)
        try:
            conn.close()
        except sqlite3.Error:
            pass
    totals["tracebacks"] += len(logged)
    totals["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
