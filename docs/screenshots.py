"""Screenshots for the README and the closing note, taken in headless Chromium.

Fills a fresh catalogue with `pipeline run` on the corpus (released model unless --model), starts
the real app on a free port and photographs: the report's coverage section, its easy examples and
its ideas, a search with grouped results, a gibberish search, a page per initiative (also at
390 px) and the review guide. Writes PNGs to docs/screenshots/ (or --out).

    .venv/bin/python docs/screenshots.py [--corpus ../shared/corpus/initiatives.jsonl] [--model DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.app.factory import create_app  # noqa: E402
from pipeline.core.config import load_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def fill_catalogue(corpus: Path, work: Path, model: str | None) -> Path:
    inbox, db = work / "inbox", work / "catalogue.sqlite"
    inbox.mkdir()
    shutil.copy(corpus, inbox / corpus.name)
    command = [sys.executable, "-m", "pipeline", "run", "--inbox", str(inbox), "--db", str(db),
               "--log", str(work / "run.log"), "--settle-seconds", "0"]
    if model:
        command += ["--model", model]
    subprocess.run(command, check=True, cwd=ROOT)
    return db


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/initiatives.jsonl")
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = fill_catalogue(args.corpus, work, args.model)
        settings = load_settings()
        serve = dataclasses.replace(settings.serve, secret_key_file=work / "secret")
        app = create_app(dataclasses.replace(settings, serve=serve), db_path=db)
        http = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{http.server_port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="nl-NL")
            page.goto(base + "/rapport")
            for section in ("dekking", "voorbeelden", "ideeen", "signalen"):
                box = page.locator(f"section#{section}").bounding_box()
                # The top of a long section is enough to show what it is (and keeps files small).
                page.screenshot(path=str(args.out / f"report_{section}.png"), full_page=True,
                                clip={"x": box["x"], "y": box["y"], "width": box["width"],
                                      "height": min(box["height"], 1300)})
            page.goto(base + "/zoeken?q=laptops+voor+thuisonderwijs")
            page.screenshot(path=str(args.out / "search_grouped.png"), full_page=False)
            page.goto(base + "/zoeken?q=xyzzy+qwerty")
            page.screenshot(path=str(args.out / "search_gibberish.png"))
            first = page.goto(base + "/zoeken?q=eenzame+ouderen+bellen") and \
                page.locator("a[href^='/initiatief/']").first.get_attribute("href")
            page.goto(base + first)
            page.screenshot(path=str(args.out / "initiative.png"), full_page=True)
            phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="nl-NL")
            phone.goto(base + first)
            phone.screenshot(path=str(args.out / "initiative_390.png"), full_page=True)
            browser.close()
        http.shutdown()
    print("screenshots in", args.out)


if __name__ == "__main__":
    main()
