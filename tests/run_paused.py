"""`pipeline run` that pauses at one checkpoint, for the crash tests in test_inbox.py.

    python tests/run_paused.py POINT run --inbox ... --db ... --log ...

At POINT (see pipeline.jobs.inbox.CHECKPOINTS) it prints `pausing at POINT` on stderr and sleeps;
the test then SIGKILLs it there, or changes the file and sends SIGUSR1 to let the run go on.
"""
from __future__ import annotations

import signal
import sys
import time

from pipeline.cli.main import main
from pipeline.jobs.inbox import CHECKPOINTS

PAUSE_SECONDS = 600  # long enough for any test to act; the test ends the pause itself


class _Resume(Exception):
    pass


def _resume(signum, frame):
    raise _Resume


def pause_at(wanted: str):
    def checkpoint(point: str, name: str) -> None:
        if point != wanted:
            return
        previous = signal.signal(signal.SIGUSR1, _resume)
        try:
            print(f"pausing at {point} for {name}", file=sys.stderr, flush=True)
            time.sleep(PAUSE_SECONDS)
        except _Resume:
            pass
        finally:
            signal.signal(signal.SIGUSR1, previous)
    return checkpoint


if __name__ == "__main__":
    point, args = sys.argv[1], sys.argv[2:]
    if point not in CHECKPOINTS:
        sys.exit(f"unknown checkpoint {point!r}; one of {CHECKPOINTS}")
    main(args, obj={"run_checkpoint": pause_at(point)})
