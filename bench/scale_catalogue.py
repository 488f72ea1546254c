"""Large catalogues for bench/bench_scale.py: the corpus run once through the scheduled job, then
its stored rows repeated under new ids ("<id>~<copy>") with the same texts, predictions and
same-idea groups (one group per copy), so no text is embedded or classified again.

    .venv/bin/python bench/scale_catalogue.py --rows 10000 --out /tmp/scale/10000.sqlite
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.catalogue import readmodel, schema, writes  # noqa: E402
from pipeline.core.config import load_settings  # noqa: E402
from pipeline.core.municipalities import Place  # noqa: E402
from pipeline.core.records import Initiative  # noqa: E402

CHUNK = 5000  # rows per stored "file": one transaction each


def corpus_catalogue(db: Path, config: Path) -> Path:
    """`pipeline run` over data/corpus/initiatives.jsonl into `db` (once; reused when present)."""
    if db.exists():
        return db
    settings = load_settings(config)
    inbox = db.parent / "corpus-inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(settings.paths.corpus, inbox / "initiatives.jsonl")
    subprocess.run([sys.executable, "-m", "pipeline", "--config", str(config), "run", "--inbox",
                    str(inbox), "--db", str(db), "--settle-seconds", "0"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return db


def _copies(rows, predictions, n: int):
    """(Initiative, prediction) pairs: `rows` repeated under new ids until there are `n`."""
    k = 0
    while True:
        for row in rows:
            if k >= n:
                return
            copy = k // len(rows)
            places = tuple(Place.from_dict(p) for p in row["places"]) if row.get("places") else None
            initiative = Initiative(
                id=row["id"] if copy == 0 else f"{row['id']}~{copy}", gemeente=row["gemeente"],
                omschrijving=row["omschrijving"], naam=row.get("naam"),
                gemeenten=tuple(row.get("gemeenten") or ()), urls=tuple(row.get("urls") or ()),
                extra=row.get("extra") or {}, places=places)
            yield initiative, predictions[row["pk"]]
            k += 1


def scaled_catalogue(base: Path, out: Path, n: int) -> float:
    """Write a catalogue of `n` rows at `out` from the corpus catalogue `base`; returns seconds."""
    start = time.perf_counter()
    source = schema.connect(base)
    rows = readmodel.current_initiatives(source)
    predictions = readmodel.latest_predictions(source)
    groups = readmodel.groups(source)
    source.close()
    out.unlink(missing_ok=True)
    conn = schema.connect(out)
    pairs = list(_copies(rows, predictions, n))
    for i in range(0, len(pairs), CHUNK):
        chunk = pairs[i:i + CHUNK]
        writes.store_submission(conn, file_name=f"schaal-{i}.jsonl", sha256=f"schaal-{n}-{i}",
                               accepted=[a for a, _ in chunk], rejected=[],
                               predictions=[p for _, p in chunk])
    copies = -(-n // len(rows))
    present = {a.id for a, _ in pairs}
    scaled = []
    for copy in range(copies):
        suffix = "" if copy == 0 else f"~{copy}"
        for group in groups:
            members = [m + suffix for m in group["members"] if m + suffix in present]
            if members:
                scaled.append({**group, "group_id": group["group_id"] + suffix, "members": members})
    writes.replace_groups(conn, scaled)
    conn.close()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "pipeline.toml")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    base = corpus_catalogue(args.out.parent / "corpus.sqlite", args.config)
    seconds = scaled_catalogue(base, args.out, args.rows)
    print(f"{args.out}: {args.rows} rows in {seconds:.1f} s")


if __name__ == "__main__":
    main()
