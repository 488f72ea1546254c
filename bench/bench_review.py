"""How long do the review queue and save-and-next take on a large catalogue, with and without the
queue cache?

Builds a catalogue of --rows rows (the corpus repeated with new ids, predictions with random
label scores; no model needed) in a temporary folder, then times through the Flask test client:
the queue page (cold: first request; warm: the model part cached) and save-and-next, against the
uncached `queue.queue_items` measured in the same run.

    .venv/bin/python bench/bench_review.py [--rows 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.catalogue import accounts
from pipeline.catalogue import queue
from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.core.config import load_settings, load_taxonomy
from pipeline.core.records import Initiative
from pipeline.app.factory import create_app

PASSWORD = "een-lang-bench-wachtwoord"


def build(path: Path, settings, n: int) -> None:
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    base = [json.loads(line) for line in
            settings.paths.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(0)
    initiatives, predictions = [], []
    for i in range(n):
        copy, row = divmod(i, len(base))
        source = base[row]
        initiatives.append(Initiative(id=f"{source['id']}~{copy}", gemeente=source["gemeente"],
                                      omschrijving=source["omschrijving"], naam=source.get("naam")))
        scores = {field: {label: round(rng.random(), 3) for label in taxonomy.ids(field)}
                  for field in ("themes", "doelgroepen")}
        predictions.append({
            "model_id": "bench",
            "themes": [max(scores["themes"], key=scores["themes"].get)],
            "doelgroepen": [max(scores["doelgroepen"], key=scores["doelgroepen"].get)],
            "kind": "initiative",
            "scores": {**scores, "kind": round(rng.random(), 3)},
            "replicability": rng.randint(1, 5),
            "replicability_score": 3.0,
            "replicability_reasons": [],
        })
    conn = schema.connect(path)
    try:
        writes.store_submission(conn, file_name="bench.jsonl", sha256="bench", accepted=initiatives,
                               rejected=[], predictions=predictions)
        accounts.add_reviewer(conn, "bench", PASSWORD, min_password_chars=12)
    finally:
        conn.close()


def timed(function, repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "catalogue.sqlite"
        build(db, settings, args.rows)
        serve = dataclasses.replace(settings.serve, secret_key_file=Path(folder) / "secret")
        app = create_app(dataclasses.replace(settings, serve=serve), db_path=db,
                         test_config={"TESTING": True})
        client = app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token})

        conn = schema.connect(db)
        share = settings.review.second_opinion_share
        uncached = timed(lambda: queue.queue_items(conn, kind_threshold=0.5, share=share), args.repeat)
        start = time.perf_counter()
        assert client.get("/review/").status_code == 200
        cold = time.perf_counter() - start
        warm = timed(lambda: client.get("/review/"), args.repeat)

        def save_and_next():
            first = re.search(r'href="/review/item/([^"?]+)', client.get("/review/").text).group(1)
            html = client.get(f"/review/item/{first}").text
            fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
            start = time.perf_counter()
            response = client.post(f"/review/item/{first}", data={
                **fields, "themes": ["schulden"], "doelgroepen": ["ouderen"], "kind": "initiative",
                "replicability": "3", "then": "next"})
            assert response.status_code == 302, response.status_code
            return time.perf_counter() - start

        saves = sorted(save_and_next() for _ in range(args.repeat))
        save = saves[len(saves) // 2]
        builds = app.extensions["pipeline_queue"].builds
        conn.close()
    print(f"rows: {args.rows}")
    print(f"uncached queue_items (baseline): {uncached:.3f} s")
    print(f"queue page, first request:       {cold:.3f} s")
    print(f"queue page, warm:                {warm:.3f} s  ({uncached / warm:.1f}x faster than the baseline)")
    print(f"save-and-next POST, warm:        {save:.3f} s  ({uncached / save:.1f}x faster than the baseline)")
    print(f"model part read {builds} time(s) over {1 + args.repeat * 2 + args.repeat} queue uses")


if __name__ == "__main__":
    main()
