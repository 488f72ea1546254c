"""How fast is the scheduled job, how does its time grow, and where does it go?

Runs the job behind `pipeline run` (pipeline.inbox.run_inbox with the same model, grouper and
settings the command uses) on inboxes of 1,000 and 5,000 rows, made by repeating the corpus with
new ids, split into files of --file-rows rows (municipalities send small files). Prints
initiatives per second, seconds per stage (read, embed, predict = classify + score, database,
group, move) and each stage's growth from the smallest size to the largest (5.0 = linear).

Warm vs cold embedding: repeated corpus texts hit the embedding cache, so the sized runs measure
everything except computing new embeddings. Cold embedding is measured separately on
--cold-sample varied texts with a throw-away cache (the project's cache is not touched), and the
cold throughput of the job is estimated from both. `--cold` instead runs the sizes with varied
texts for real (slow: ~15 rows/s on 2 cores).

    .venv/bin/python bench/bench_run.py [--sizes 1000 5000] [--file-rows 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.core.config import load_settings
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Grouper
from pipeline.jobs.inbox import STAGES, run_inbox
from pipeline.core.text import lemma_texts, model_text
from pipeline.core.records import Initiative


def corpus_rows(settings) -> list[dict]:
    return [json.loads(line) for line in settings.paths.corpus.read_text(encoding="utf-8").splitlines()]


def make_rows(base: list[dict], n: int, *, vary_text: bool) -> list[dict]:
    """n rows: the corpus repeated with new ids (copy k of row r is 'r~k'); with `vary_text`, each
    copy's text gets a distinct suffix so nothing comes from the embedding cache."""
    rows = []
    for i in range(n):
        copy, row = divmod(i, len(base))
        item = dict(base[row], id=f"{base[row]['id']}~{copy}")
        if vary_text:
            item["omschrijving"] = f"{item['omschrijving']} (variant {copy})"
        rows.append(item)
    return rows


def fill_inbox(inbox: Path, rows: list[dict], file_rows: int) -> int:
    inbox.mkdir(parents=True, exist_ok=True)
    files = len(list(inbox.glob("inzending-*.jsonl"))) + len(list(inbox.glob("processed/*")))
    for start in range(0, len(rows), file_rows):
        with open(inbox / f"inzending-{files:05d}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows[start : start + file_rows]:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        files += 1
    return files


def model_encoder(predictor, fallback):
    """The encoder the model itself embeds with (its cache included), so embedding first fills
    the very cache the model reads; `fallback` when the bundle has no embedding step."""
    for model in predictor.stages.values():
        features = getattr(model, "features_", None)
        for _, transformer in getattr(features, "transformer_list", []):
            if hasattr(transformer, "_live") and hasattr(transformer, "encoder_id_"):
                return transformer._live()
    return fallback


def run_once(settings, predictor, encoder, rows, file_rows, workdir: Path, *, expect: int | None = None):
    inbox = workdir / "inbox"
    files = fill_inbox(inbox, rows, file_rows)
    conn = schema.connect_from_config(settings.store, workdir / "catalogue.sqlite")
    try:
        report = run_inbox(
            inbox, conn,
            predictor_factory=lambda: predictor,
            grouper_factory=lambda: Grouper.from_config(settings.group, encoder=encoder),
            # Embed first with the model's encoder settings, so embedding and classification are
            # timed apart (the predictor then reads the vectors from the cache).
            embedder_factory=lambda: (model_encoder(predictor, encoder), model_text),
            ignore_suffixes=settings.run.ignore_suffixes, lock_name=settings.run.lock_name,
            limits=settings.ingest,
        )
        counts = readmodel.counts(conn)
    finally:
        conn.close()
    assert report.ok, [f for f in report.files if f.status != "stored"]
    assert counts["current_initiatives"] == (expect or len(rows)), counts
    return report, files, counts


def predict_stage_seconds(predictor, rows: list[dict]) -> dict[str, float]:
    """Seconds of each stage of the model bundle (themes, doelgroepen, kind, replicability, ...)
    on `rows`: splits the job's "predict" time into classification and scoring."""
    from pipeline.ingest.reader import validate_records
    from pipeline.models.predict import OUTPUTS, Batch

    initiatives = validate_records([(i, r, r, None) for i, r in enumerate(rows, start=1)]).accepted
    batch = Batch(initiatives, [model_text(i) for i in initiatives], predictor.taxonomy,
                  [{"id": i.id} for i in initiatives])
    out = {}
    for name, output in OUTPUTS.items():
        model = predictor.stages.get(name)
        if model is None:
            continue
        start = time.perf_counter()
        output(model, batch)
        out[name] = time.perf_counter() - start
    return out


def cold_embedding_rate(settings, base, sample: int) -> float:
    """Rows per second of the encoder on texts it has never seen (throw-away cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        embed = dataclasses.replace(settings.embed, cache_path=Path(tmp) / "cache.sqlite")
        encoder = encoder_from_config(embed)
        texts = [model_text(Initiative(id=r["id"], gemeente=r["gemeente"], omschrijving=r["omschrijving"],
                                       naam=r.get("naam")))
                 for r in make_rows(base, sample, vary_text=True)]
        encoder.embed(texts[:2])  # load the model outside the timing
        start = time.perf_counter()
        encoder.embed(texts[2:])
        return (len(texts) - 2) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--file-rows", type=int, default=100, help="rows per inbox file")
    parser.add_argument("--cold-sample", type=int, default=66, help="texts for the cold embedding rate")
    parser.add_argument("--cold", action="store_true", help="varied texts in the sized runs (slow)")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: released)")
    parser.add_argument("--increment", type=int, default=10,
                        help="rows of one new file sent to the largest catalogue (a typical 15-minute run)")
    args = parser.parse_args()

    from pipeline.models.predict import Predictor

    settings = load_settings()
    base = corpus_rows(settings)
    with tempfile.TemporaryDirectory() as tmp:
        if args.cold:
            # Varied texts must not fill the project's cache with bench texts.
            settings = dataclasses.replace(
                settings, embed=dataclasses.replace(settings.embed, cache_path=Path(tmp) / "cache.sqlite"))
        load_start = time.perf_counter()
        predictor = Predictor.load(args.model, settings)
        encoder = encoder_from_config(settings.embed)
        first = Initiative(id="x", gemeente="x", omschrijving=base[0]["omschrijving"], naam=base[0].get("naam"))
        encoder.embed([model_text(first)])
        predictor.predict([first])  # the stages build their encoders on first use
        lemma_texts(["opwarmen"])  # grouping loads spaCy once per process
        load_seconds = time.perf_counter() - load_start
        print(f"model {predictor.model_id}, encoder {encoder.encoder_id}; "
              f"loading model, encoder and spaCy {load_seconds:.1f}s (once per run, not in the numbers below)")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
              "(other work on the machine slows every number)")
        print(f"texts: {'varied (cold embedding)' if args.cold else 'corpus texts repeated (embedding cache warm)'}; "
              f"{args.file_rows} rows per file; {len(base)} distinct corpus rows")
        print()
        header = f"{'rows':>6} {'files':>5} {'seconds':>8} {'rows/s':>7}  " + " ".join(f"{s:>9}" for s in STAGES)
        print(header)
        results = {}
        for size in args.sizes:
            rows = make_rows(base, size, vary_text=args.cold)
            workdir = Path(tmp) / f"run-{size}"
            workdir.mkdir()
            report, files, counts = run_once(settings, predictor, encoder, rows, args.file_rows, workdir)
            results[size] = report
            stages = " ".join(f"{report.timings.get(s, 0.0):9.2f}" for s in STAGES)
            print(f"{size:6d} {files:5d} {report.seconds:8.1f} {size / report.seconds:7.1f}  {stages}")
            cpu = " ".join(f"{report.cpu_timings.get(s, 0.0):9.2f}" for s in STAGES)
            print(f"{'cpu s':>6} {'':5} {sum(report.cpu_timings.values()):8.1f} {'':7}  {cpu}")
        large = max(results)
        extra = [dict(r, id=f"{r['id']}~new") for r in make_rows(base, args.increment, vary_text=args.cold)]
        report, _, _ = run_once(settings, predictor, encoder, extra, args.file_rows,
                                Path(tmp) / f"run-{large}", expect=large + len(extra))
        stages = " ".join(f"{report.timings.get(s, 0.0):9.2f}" for s in STAGES)
        print(f"+{len(extra):5d} {1:5d} {report.seconds:8.1f} {len(extra) / report.seconds:7.1f}  {stages}"
              f"   <- one new file into the {large}-row catalogue")
        cpu = " ".join(f"{report.cpu_timings.get(s, 0.0):9.2f}" for s in STAGES)
        print(f"{'cpu s':>6} {'':5} {sum(report.cpu_timings.values()):8.1f} {'':7}  {cpu}")
        print()
        small = min(results)
        if small != large:
            factor = large / small
            print(f"growth {small} -> {large} rows ({factor:.0f}x the rows; {factor:.1f} = linear):")
            print("  (baseline: the same job on the smaller inbox in this run; wall | CPU seconds)")
            for stage in (*STAGES, "total"):
                line = f"  {stage:>9}:"
                for name in ("timings", "cpu_timings"):
                    first, last = getattr(results[small], name), getattr(results[large], name)
                    a = sum(first.values()) if stage == "total" else first.get(stage, 0.0)
                    b = sum(last.values()) if stage == "total" else last.get(stage, 0.0)
                    ratio = f"{b / a:5.1f}x" if a > 0 else "  n/a"
                    line += f" {a:7.2f}s -> {b:7.2f}s {ratio} |"
                print(line.rstrip("|"))
        print()
        print("share of time per stage:")
        for size, report in results.items():
            shares = ", ".join(f"{s} {100 * report.timings.get(s, 0.0) / report.seconds:.0f}%" for s in STAGES)
            print(f"  {size:6d} rows: {shares}")
        print()
        print(f"predict step by model stage ({min(results)} rows, vectors cached):")
        for name, seconds in predict_stage_seconds(predictor, make_rows(base, min(results), vary_text=args.cold)).items():
            print(f"  {name:>12}: {seconds:6.2f}s")
        if not args.cold:
            rate = cold_embedding_rate(settings, base, args.cold_sample)
            print()
            print(f"cold embedding (new texts, {args.cold_sample} sampled): {rate:.1f} rows/s")
            for size, report in results.items():
                rest = report.seconds - report.timings.get("embed", 0.0)
                cold = size / (rest + size / rate)
                print(f"  estimated job throughput with all-new texts at {size} rows: {cold:.1f} rows/s "
                      f"(embedding {100 * (size / rate) / (rest + size / rate):.0f}% of the time)")


if __name__ == "__main__":
    main()
