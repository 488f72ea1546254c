"""Does adapting e5 to this domain help on rows the adapter never saw? Frozen vs adapted, one run.

    .venv/bin/python bench/bench_finetune.py [--folds 5] [--epochs 3]

The protocol is `pipeline.training.finetune.evaluate_adaptation`: outer folds that keep same-idea
groups together ([train] split), an adapter learned on each training fold only, and on the same
folds four designs fitted on the training rows and scored on the held-out rows:

  frozen/e5-lr    e5 embedding + logistic regression at 0.5 (the issue's baseline)
  frozen/ours     the released stages ([classify]) on the frozen encoder
  adapted/e5-lr   the same baseline on adapted vectors
  adapted/ours    the released stages on adapted vectors

Settings of the adapter come from [finetune] and were fixed before this ran. Figures are pooled
out-of-fold F1 (micro/macro) per field and kind accuracy, plus the per-fold wins. Results go to
bench/out/finetune.json and are printed; `pipeline finetune` stores the same comparison beside
the adapter it releases (evaluation.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.config import load_settings  # noqa: E402
from pipeline.training.finetune import adaptation_wins, comparison_table, evaluate_adaptation  # noqa: E402

OUT = ROOT / "bench" / "out" / "finetune.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=None, help="outer folds (default [finetune] folds)")
    parser.add_argument("--epochs", type=int, default=None, help="override [finetune] epochs")
    args = parser.parse_args()
    settings = load_settings()
    if args.epochs is not None:
        settings = dataclasses.replace(settings, finetune=dataclasses.replace(settings.finetune, epochs=args.epochs))
    started = time.perf_counter()
    evaluation = evaluate_adaptation(settings, folds=args.folds or settings.finetune.folds,
                                     log=lambda message: print(message, flush=True))
    evaluation["seconds"] = round(time.perf_counter() - started, 1)
    evaluation["adapted_beats_frozen"] = adaptation_wins(evaluation)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(evaluation, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(evaluation["protocol"])
    print(comparison_table(evaluation))
    print(f"adapted beats frozen on every field: {evaluation['adapted_beats_frozen']} "
          f"({evaluation['seconds']:.0f} s); written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
