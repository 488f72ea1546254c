"""Run every benchmark in turn and keep each one's output in bench/results/<name>.txt.

    .venv/bin/python bench/run_all.py [--only classify score ...] [--quick]

Each benchmark measures its baseline in the same run and prints ratios against it; nothing here
asserts a time. `--quick` passes the lighter options (fewer repeats, smaller sizes) for a run of
a few minutes instead of a quarter of an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# name -> (full arguments, quick arguments)
BENCHMARKS = {
    "classify": (["--repeats", "3"], ["--repeats", "1"]),
    "score": (["--repeats", "3"], ["--repeats", "1"]),
    "group": ([], ["--no-speed"]),
    "search": ([], []),
    "municipalities": ([], []),
    "speed": (["--rows", "1000"], ["--rows", "300"]),
    "encoder": (["--repeats", "2"], ["--threads", "1"]),
    "run": (["--sizes", "1000", "5000"], ["--sizes", "500", "1000"]),
    "crash": (["--kills", "12"], ["--kills", "4", "--copies", "1"]),
    "label_gain": (["--seeds", "10"], ["--seeds", "6"]),
    "scale": (["--rows", "10000", "50000", "100000"], ["--rows", "10000", "--requests", "80"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    failed = []
    for name in args.only:
        full, quick = BENCHMARKS[name]
        command = [sys.executable, str(BENCH / f"bench_{name}.py"), *(quick if args.quick else full)]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        with open(results / f"{name}.txt", "w", encoding="utf-8") as out:
            process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out.write(process.stdout)
        print(process.stdout[-3000:], flush=True)
        print(f"== {name}: exit {process.returncode} in {time.perf_counter() - started:.0f}s; "
              f"full output in {results / (name + '.txt')}\n", flush=True)
        if process.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
