"""Kill `pipeline run` with SIGKILL at random moments, again and again; then check that the
catalogue has every row exactly once and every file was moved.

The tests kill the job at the checkpoints that matter (tests/test_inbox.py, through
tests/run_paused.py); this script kills it wherever it happens to be: loading the model,
reading, predicting, inside a transaction, moving, regrouping.

    .venv/bin/python bench/bench_crash.py [--kills 12] [--copies 3] [--file-rows 7] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = Path(sys.executable).parent / "pipeline"
CORPUS = ROOT / "data" / "corpus" / "initiatives.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--file-rows", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--copies", type=int, default=3, help="corpus copies (new ids) to process")
    parser.add_argument("--min-delay", type=float, default=0.5, help="seconds before a kill, at least")
    parser.add_argument("--max-delay", type=float, default=3.0, help="seconds before a kill, at most")
    args = parser.parse_args()

    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    # Copies get new ids but keep their texts (embedding cache), so the job is quick and the
    # kills land all over it.
    rows = [dict(row, id=f"{row['id']}~{copy}") for copy in range(args.copies) for row in corpus]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        inbox, db, log = Path(tmp) / "inbox", Path(tmp) / "catalogue.sqlite", Path(tmp) / "run.log"
        inbox.mkdir()
        files = 0
        for start in range(0, len(rows), args.file_rows):
            with open(inbox / f"f{files:04d}.jsonl", "w", encoding="utf-8") as handle:
                for row in rows[start : start + args.file_rows]:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            files += 1
        # Written "long ago": the job leaves files newer than [run] settle_seconds for later.
        for path in inbox.iterdir():
            os.utime(path, (time.time() - 3600, time.time() - 3600))
        command = [str(PIPELINE), "run", "--inbox", str(inbox), "--db", str(db), "--log", str(log)]
        kills = 0
        for _ in range(args.kills):
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            delay = rng.uniform(args.min_delay, args.max_delay)
            try:
                out, _ = process.communicate(timeout=delay)
                print(f"run finished before the kill at {delay:.1f}s: {out.decode().strip()}")
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                kills += 1
                stored = _count(db, "initiatives")
                waiting = sum(1 for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
                print(f"killed after {delay:4.1f}s: {stored:4d} initiatives stored, {waiting:3d} files waiting")
        start = time.perf_counter()
        final = subprocess.run(command, capture_output=True, text=True)
        print(f"final run ({time.perf_counter() - start:.1f}s): {final.stdout.strip()}")

        initiatives, distinct = _count(db, "initiatives"), _count(db, "initiatives", "count(DISTINCT id)")
        submissions, predictions = _count(db, "submissions"), _count(db, "predictions")
        processed = len(list((inbox / "processed").iterdir()))
        grouped = _state(db, "grouped_max_pk")
        print()
        print(f"{kills} SIGKILLs; {files} files of {len(rows)} rows")
        print(f"initiatives {initiatives} (distinct ids {distinct}), predictions {predictions}, "
              f"submissions {submissions}, files in processed/ {processed}, groups built from pk {grouped}")
        ok = (initiatives == distinct == predictions == len(rows) and submissions == processed == files
              and grouped == str(initiatives))
        print("OK: nothing lost, nothing doubled" if ok else "MISMATCH: see the numbers above")
        sys.exit(0 if ok else 1)


def _count(db: Path, table: str, what: str = "count(*)") -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT {what} FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # killed before the schema was created
        return 0
    finally:
        conn.close()


def _state(db: Path, key: str) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT value FROM catalogue_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


if __name__ == "__main__":
    main()
