"""The report's easy examples and the page per initiative, on the corpus with the released model.

Builds a catalogue from data/corpus/initiatives.jsonl the way the scheduled job does (`pipeline run`
with models/LATEST, in a temporary folder), then measures

- the report's "easy to organise" examples: how many are shown, how many rows and same-idea groups
  are shown more than once, how many are not under their main theme, how many lead with a reason
  that is not positive ("+"), how many show what they do (a wat or hoe span);
- every page /initiatief/<id> through the Flask test client: status, and every link on it (site
  links followed and resolved, #anchors present on the page, outside links only the sender's
  http(s) links).

    .venv/bin/python bench/bench_pages.py [--code DIR] [--db FILE]

`--code DIR` measures another checkout's code (e.g. main before a change) on the same corpus; a
checkout without the initiative page gets the report numbers only. `--db` reuses a catalogue.
"""

from __future__ import annotations

import argparse
import dataclasses
import html as html_lib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _code_root() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--code", type=Path, default=ROOT)
    known, _ = parser.parse_known_args()
    return known.code.resolve()


CODE = _code_root()
sys.path.insert(0, str(CODE))

from pipeline.app import report as report_module  # noqa: E402
from pipeline.app.factory import create_app  # noqa: E402
from pipeline.catalogue import readmodel, schema  # noqa: E402
from pipeline.catalogue.records import catalogue_groups, catalogue_records  # noqa: E402
from pipeline.core.config import load_settings, load_taxonomy  # noqa: E402


def build_catalogue(db: Path, settings) -> float:
    """Run the scheduled job once over the corpus into `db`; returns seconds."""
    inbox = db.parent / "inbox"
    inbox.mkdir()
    shutil.copy(settings.paths.corpus, inbox / "initiatives.jsonl")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(inbox), "--db", str(db),
                    "--settle-seconds", "0", "--log", str(db.parent / "run.log")],
                   cwd=CODE, check=True, env={**os.environ, "PYTHONPATH": str(CODE)})
    return time.perf_counter() - start


def shown_reasons(record: dict) -> list[dict]:
    """The reasons in the order the report shows them (the code under test decides)."""
    order = getattr(report_module, "example_reasons", None)
    return order(record) if order else list(record.get("reasons") or ())


def example_numbers(report, records: list[dict], minimum: int) -> tuple[dict, list[str]]:
    main_theme = getattr(report_module, "main_theme", None)
    entries = [(count.key, r) for count, chosen in report.examples for r in chosen]
    ids = Counter(r["id"] for _, r in entries)
    groups = Counter(r["group_id"] for _, r in entries if r.get("group_id"))
    first = [shown_reasons(r)[:1] for _, r in entries]
    facts = getattr(report, "example_facts", {}) or {}
    not_positive = [r["id"] for (_, r), f in zip(entries, first) if not f or f[0].get("richting") != "+"]
    return {
        "examples shown": len(entries),
        "distinct rows": len(ids),
        "rows shown more than once": sum(1 for n in ids.values() if n > 1),
        "extra entries of repeated rows": sum(n - 1 for n in ids.values()),
        "same-idea groups shown more than once": sum(1 for n in groups.values() if n > 1),
        "not under their main theme": sum(1 for key, r in entries
                                          if main_theme and main_theme(r) != key)
        if main_theme else sum(1 for key, r in entries if (r.get("themes") or [key])[0] != key),
        "first shown reason not positive": len(not_positive),
        "of which reviewed (score is the reviewer's)": sum(
            1 for i in not_positive if next(r for r in records if r["id"] == i).get("review_status") == "review"),
        "showing a wat or hoe span": sum(1 for _, r in entries
                                         if (facts.get(r["id"]) or {}).get("wat") or (facts.get(r["id"]) or {}).get("hoe")),
        "initiatives with score >= minimum": sum(
            1 for r in records if r.get("kind") == "initiative" and (r.get("replicability") or 0) >= minimum),
        "of which lead with a positive reason": sum(
            1 for r in records if r.get("kind") == "initiative" and (r.get("replicability") or 0) >= minimum
            and (r.get("review_status") == "review" or (r.get("reasons") or [{}])[0].get("richting") == "+")),
        "themes with at least one example": sum(1 for _, chosen in report.examples if chosen),
    }, not_positive


def check_pages(app, records: list[dict], sent_urls: dict[str, list[str]]) -> dict:
    """Every initiative page and every link on it, through the test client. `sent_urls`: the
    links each row was sent with (the only outside links a page may hold)."""
    from flask import url_for

    client = app.test_client()
    with app.test_request_context():
        urls = {r["id"]: url_for("initiative.page", initiative_id=r["id"]) for r in records}
    seen: dict[str, int] = {}
    pages_ok = links = broken = anchors = outside = 0
    problems = []
    start = time.perf_counter()
    for initiative_id, url in urls.items():
        response = client.get(url)
        if response.status_code != 200:
            problems.append(f"{initiative_id}: page status {response.status_code}")
            continue
        pages_ok += 1
        html = response.text
        sender = set(sent_urls.get(initiative_id) or ())
        for href in (html_lib.unescape(h) for h in re.findall(r'href="([^"]*)"', html)):
            links += 1
            if href.startswith("#"):
                anchors += 1
                if f'id="{href[1:]}"' not in html:
                    broken += 1
                    problems.append(f"{initiative_id}: anchor {href} missing")
            elif href.startswith("/"):
                if href not in seen:
                    seen[href] = client.get(href, follow_redirects=True).status_code
                if seen[href] not in (200, 204):
                    broken += 1
                    problems.append(f"{initiative_id}: {href} -> {seen[href]}")
            else:
                outside += 1
                if not href.startswith(("http://", "https://")) or href not in sender:
                    broken += 1
                    problems.append(f"{initiative_id}: outside link {href!r} not a sender's http(s) link")
    seconds = time.perf_counter() - start
    return {"pages": len(urls), "pages 200": pages_ok, "links checked": links,
            "site links (distinct)": len(seen), "anchors": anchors, "outside links": outside,
            "broken links": broken, "seconds": round(seconds, 1), "problems": problems[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code is measured")
    parser.add_argument("--db", type=Path, default=None, help="an existing catalogue to reuse")
    args = parser.parse_args()
    settings = load_settings(CODE / "configs" / "pipeline.toml")
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "catalogue.sqlite"
            print(f"catalogue built by `pipeline run` in {build_catalogue(db, settings):.0f} s "
                  f"(code: {CODE})")
        conn = schema.connect_from_config(settings.store, db)
        try:
            records, groups = catalogue_records(conn), catalogue_groups(conn)
            sent_urls = {r["id"]: r["urls"] for r in readmodel.current_initiatives(conn)}
        finally:
            conn.close()
        model = Counter(r.get("model_id") for r in records).most_common(1)[0][0]
        print(f"{len(records)} rows, {len(groups)} same-idea groups, model {model}")
        report = report_module.build_report(records, groups, taxonomy, settings.report)
        numbers, not_positive = example_numbers(report, records, settings.report.example_min_replicability)
        print("\nReport examples (score >= %d):" % settings.report.example_min_replicability)
        for key, value in numbers.items():
            print(f"  {key:<45} {value}")
        if not_positive:
            print("  rows whose first shown reason is not positive:", ", ".join(not_positive))
        serve = dataclasses.replace(settings.serve, secret_key_file=Path(tmp) / "secret")
        app = create_app(dataclasses.replace(settings, serve=serve), db_path=db,
                         test_config={"TESTING": True})
        if "initiative.page" not in app.view_functions:
            print("\nNo /initiatief/<id> page in this code: page check skipped.")
            return
        print("\nPages /initiatief/<id>:")
        result = check_pages(app, records, sent_urls)
        for key, value in result.items():
            if key != "problems":
                print(f"  {key:<45} {value}")
        for problem in result["problems"]:
            print("  !", problem)


if __name__ == "__main__":
    main()
