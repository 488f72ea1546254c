"""Speed benchmark: rows per second for classification of 1,000 rows, cold and warm embedding cache,
against a TF-IDF-only model in the same run.

    .venv/bin/python bench/bench_speed.py [--rows 1000]

The rows are the corpus repeated with new ids AND slightly changed texts (" (kopie N)" appended),
so the cold run really embeds every row. The cold run uses a fresh temporary cache file; the warm
run repeats the same rows against that now-filled cache. The TF-IDF-only model is the released
[classify] config with the embedding channel switched off, trained in this run on the labelled
rows. Times cover the classification stages (themes, doelgroepen, kind) of `Predictor.predict`:
model-text normalisation, features, classifiers and thresholds, not file reading. Other stages in
the bundle (e.g. replicability) are timed once more at the end, warm, as "all stages".
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.core.config import load_settings
from pipeline.ingest.reader import read_initiatives
from pipeline.models.predict import Predictor
from pipeline.training.train import STAGES, train_model


def make_rows(corpus, n):
    rows = []
    for k in range(n):
        base = corpus[k % len(corpus)]
        copy = k // len(corpus) + 1
        rows.append(dataclasses.replace(base, id=f"{base.id}-kopie{copy}",
                                        omschrijving=f"{base.omschrijving} (kopie {copy})"))
    return rows


CLASSIFY_STAGES = ("themes", "doelgroepen", "kind")


def classification_only(predictor):
    predictor.stages = {k: v for k, v in predictor.stages.items() if k in CLASSIFY_STAGES}
    return predictor


def timed(predictor, rows):
    start = time.perf_counter()
    records = predictor.predict(rows)
    seconds = time.perf_counter() - start
    assert len(records) == len(rows)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    settings = load_settings()
    corpus = read_initiatives(settings.paths.corpus).accepted
    rows = make_rows(corpus, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold_settings = dataclasses.replace(
            settings, embed=dataclasses.replace(settings.embed, cache_path=tmp / "cold.sqlite"))
        predictor = classification_only(Predictor.load(None, cold_settings))
        cold = timed(predictor, rows)
        warm = timed(classification_only(Predictor.load(None, cold_settings)), rows)
        full = Predictor.load(None, cold_settings)
        stages = list(full.stages)
        all_warm = timed(full, rows)
        lexical_settings = dataclasses.replace(
            settings, paths=dataclasses.replace(settings.paths, models=tmp / "models"),
            classify=dataclasses.replace(settings.classify, embedding_weight=0.0,
                                         kind={"embedding_weight": 0.0, "char_weight": 1.0}))
        lexical_dir = train_model(lexical_settings, folds=0,
                                  stages=[st for st in STAGES if st.name in CLASSIFY_STAGES]).model_dir
        lexical = timed(classification_only(Predictor.load(lexical_dir, lexical_settings)), rows)
    n = len(rows)
    print(f"classify {n} rows with model {predictor.model_id} ({predictor.bundle['encoder_id']})")
    print(f"{'run':34s} {'seconds':>8s} {'rows/s':>8s} {'vs TF-IDF':>10s}")
    for name, seconds in [("e5 + TF-IDF, cold embedding cache", cold), ("e5 + TF-IDF, warm embedding cache", warm),
                          ("TF-IDF only (no embedding)", lexical),
                          (f"all stages, warm ({len(stages)})", all_warm)]:
        print(f"{name:34s} {seconds:8.1f} {n / seconds:8.1f} {seconds / lexical:9.1f}x")


if __name__ == "__main__":
    main()
