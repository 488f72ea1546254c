"""Same-idea grouping at catalogue scale: a full regroup and a run adding 1,000 rows.

    .venv/bin/python bench/bench_scale_group.py [--sizes 10000 50000 100000] [--old-sizes 2000 10000]

Catalogues of n rows are the 133 corpus rows repeated under new ids; each copy drops a random
15% of its words (so the lexical channel sees near, not exact, duplicates) and its e5 vector gets
small random noise (cosine about 0.97 to the original), so no two neighbours tie. Embeddings
come from the cache (the noisy copies are never embedded: the timing is the grouping's own).

Each measurement runs in a fresh process, so its peak memory (ru_maxrss) is its own:

- graph, full: `GraphGrouper.fit` on n rows (what `pipeline regroup --full` does), state saved;
- graph, add 1,000: load that state, `GraphGrouper.update` with 1,000 new rows (what
  `pipeline run` does after a file);
- dense (the released code path), full: `Grouper.fit` on n rows, only where it fits in memory
  (the sizes in --old-sizes); before this change `pipeline run` did this after every file.

Writes bench/out/scale_group.json and prints a table with the 10k -> 100k time ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.config import load_settings
from pipeline.core.records import Initiative
from pipeline.ingest.reader import read_initiatives
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Grouper, group_text
from pipeline.models.group_incremental import GraphGrouper, GroupingState

ADDED = 1000
OUT = ROOT / "bench" / "out" / "scale_group.json"


def catalogue(n: int, start: int = 0, seed: int = 0, with_vectors: bool = True):
    """Rows start..start+n-1 of the synthetic catalogue and their (noisy) e5 vectors (None
    without `with_vectors`: a run adding rows has the stored rows' vectors in its state)."""
    settings = load_settings()
    base = read_initiatives(settings.paths.corpus, limits=settings.ingest).accepted
    vectors = encoder_from_config(settings.embed).embed(
        [group_text(r, settings.group.text) for r in base])
    rng = np.random.default_rng(seed + start)
    rows = []
    out = np.empty((n, vectors.shape[1]), dtype=np.float32) if with_vectors else None
    for k in range(n):
        original = base[(start + k) % len(base)]
        words = original.omschrijving.split()
        keep = [w for w in words if rng.random() > 0.15] or words
        rows.append(Initiative(id=f"s{start + k:07d}", gemeente=original.gemeente,
                               naam=original.naam, omschrijving=" ".join(keep)))
        noisy = vectors[(start + k) % len(base)] + rng.normal(0, 0.012, vectors.shape[1])
        if out is not None:  # the noise is drawn either way: the texts must not change
            out[k] = noisy / np.linalg.norm(noisy)
    return rows, out


def measure(task: str, n: int, state_file: str) -> dict:
    settings = load_settings()
    rows, vectors = catalogue(n, with_vectors=task != "add")
    if task == "add":
        new_rows, new_vectors = catalogue(ADDED, start=n)
        started = time.perf_counter()
        state = GroupingState.load(Path(state_file))
        grouper = GraphGrouper.from_config(settings.group).update(
            state, rows + new_rows, vectors=new_vectors)
        seconds = time.perf_counter() - started
        state_mb = Path(state_file).stat().st_size / 2**20
        extra = {"changed_groups": len(grouper.changed_), "state_file_mb": round(state_mb, 1)}
    else:
        started = time.perf_counter()
        if task == "dense":
            grouper = Grouper.from_config(settings.group).fit(rows, vectors=vectors)
        else:
            grouper = GraphGrouper.from_config(settings.group).fit(rows, vectors=vectors)
            grouper.state_.save(Path(state_file))
        seconds = time.perf_counter() - started
        extra = {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"task": task, "n": n, "seconds": round(seconds, 1), "peak_gb": round(peak, 2),
            "groups": len(grouper.groups_), **extra}


def child(task: str, n: int, state_file: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", task, str(n), state_file],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {"task": task, "n": n, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000, 100000])
    parser.add_argument("--old-sizes", type=int, nargs="*", default=[2000, 10000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task, n, state_file = args.child
        print(json.dumps(measure(task, int(n), state_file)))
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sorted(set(args.old_sizes)):
            results.append(child("dense", n, ""))
            print(results[-1], flush=True)
        for n in args.sizes:
            state_file = str(Path(folder) / f"state-{n}.npz")
            for task in ("graph", "add"):
                results.append(child(task, n, state_file))
                print(results[-1], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\n{'what':34s} {'rows':>8s} {'seconds':>8s} {'peak GB':>8s}")
    names = {"dense": "dense (released), full regroup", "graph": "graph, full regroup",
             "add": f"graph, add {ADDED:,} rows"}
    for r in results:
        if "error" in r:
            print(f"{names[r['task']]:34s} {r['n']:8d}  failed: {r['error']}")
            continue
        print(f"{names[r['task']]:34s} {r['n']:8d} {r['seconds']:8.1f} {r['peak_gb']:8.2f}")
    for task in ("graph", "add"):
        timed = {r["n"]: r["seconds"] for r in results if r["task"] == task and "seconds" in r}
        if len(timed) >= 2:
            low, high = min(timed), max(timed)
            print(f"{names[task]}: time x{timed[high] / max(timed[low], 1e-9):.1f} from {low:,} "
                  f"to {high:,} rows (x{high / low:.0f} rows)")
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
