"""End-to-end review in real headless Chromium (Debian's /usr/bin/chromium through Playwright).

The real app runs on 127.0.0.1 on a free port in a thread (werkzeug's server), over a real SQLite
catalogue in tmp_path (built by test_review.build_catalogue). Each test drives the pages as a
reviewer would: keyboard, forms, two reviewers at once, an anonymous visitor, a forged form.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from pathlib import Path

import pytest

from pipeline.catalogue import schema
from pipeline.app.factory import create_app

from test_review import PASSWORD, build_catalogue

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian chromium missing at /usr/bin/chromium: run `make browser`"),
]


def serve_app(settings, tmp_path, corpus_rows, **review_changes):
    """(base URL, catalogue path, facts): the real app on a free port over a catalogue of the
    corpus rows ([review] settings changed by `review_changes`), stopped when the generator ends."""
    from werkzeug.serving import make_server

    db = tmp_path / "catalogue.sqlite"
    facts = build_catalogue(db, corpus_rows)
    serve = dataclasses.replace(settings.serve, secret_key_file=tmp_path / "secret")
    review = dataclasses.replace(settings.review, **review_changes)
    app = create_app(dataclasses.replace(settings, serve=serve, review=review), db_path=db)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", db, facts
    http.shutdown()
    thread.join()


@pytest.fixture
def server(settings, tmp_path, corpus_rows):
    """(base URL, catalogue path, facts): the real app on a free port, stopped after the test."""
    yield from serve_app(settings, tmp_path, corpus_rows)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _login(browser, base, name):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="nl-NL")
    page = context.new_page()
    page.goto(f"{base}/review/")
    assert page.url.startswith(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/review/.*"))
    return context, page


def _reviews(db):
    conn = schema.connect(db)
    try:
        return [dict(r) for r in conn.execute(
            "SELECT r.*, v.name AS reviewer FROM reviews r JOIN reviewers v ON v.pk = r.reviewer_pk "
            "ORDER BY r.pk")]
    finally:
        conn.close()


def _checkbox(page, value):
    return page.locator(f'#review-form input[type=checkbox][value="{value}"]')


def test_reviewer_corrects_an_item_with_the_keyboard_and_sees_it_in_the_history(browser, server):
    from playwright.sync_api import expect

    base, db, facts = server
    context, page = _login(browser, base, "anna")
    first = facts["queue_order"][0]
    links = page.locator("table.queue tbody a")
    expect(links).to_have_count(len(facts["queue_order"]))
    assert links.first.get_attribute("href").startswith(f"/review/item/{first}")
    links.first.click()
    page.wait_for_url(re.compile(rf".*/review/item/{re.escape(first)}.*"))
    # Predicted: eenzaamheid (theme 1) and alle_inwoners (target group 13).
    expect(_checkbox(page, "eenzaamheid")).to_be_checked()
    expect(_checkbox(page, "alle_inwoners")).to_be_checked()
    page.keyboard.press("t")
    page.keyboard.type("12")  # theme 12: vrijwillige_inzet on
    expect(_checkbox(page, "vrijwillige_inzet")).to_be_checked()
    page.keyboard.press("1")  # theme 1 on its own (after the wait for a second digit): off
    expect(_checkbox(page, "eenzaamheid")).not_to_be_checked()
    page.keyboard.press("d")
    page.keyboard.type("13")  # target group 13: alle_inwoners off
    expect(_checkbox(page, "alle_inwoners")).not_to_be_checked()
    page.keyboard.press("1")  # target group 1: ouderen on
    expect(_checkbox(page, "ouderen")).to_be_checked()
    page.keyboard.press("r")
    page.keyboard.press("5")  # replicability 5 (the model said 4)
    expect(page.locator('input[name=replicability][value="5"]')).to_be_checked()
    page.keyboard.press("k")  # kind: initiative -> signal
    expect(page.locator("input[name=kind][value=signal]")).to_be_checked()
    page.fill("textarea[name=note]", "Draait op vrijwilligers; doelgroep is ouderen.")
    page.locator("body").click(position={"x": 5, "y": 300})  # leave the note so keys are shortcuts
    page.keyboard.press("s")
    expect(page.locator(".flash.success")).to_contain_text("Opgeslagen")
    history = page.locator("#history")
    expect(history).to_contain_text("anna")
    expect(history).to_contain_text("+ Vrijwillige inzet en burgerinitiatief")
    expect(history).to_contain_text("- Eenzaamheid en sociaal contact")
    expect(history).to_contain_text("+ Ouderen")
    expect(history).to_contain_text("Draait op vrijwilligers")
    expect(history).to_contain_text("overdraagbaarheid 4 → 5")
    expect(history).to_contain_text("soort initiatief → signaal")
    (saved,) = _reviews(db)
    assert saved["reviewer"] == "anna" and saved["conflict"] == 0
    assert json.loads(saved["themes"]) == ["vrijwillige_inzet"]
    assert json.loads(saved["doelgroepen"]) == ["ouderen"]
    assert (saved["replicability"], saved["kind"]) == (5, "signal")
    context.close()


def test_second_reviewer_conflicts_and_both_versions_are_kept(browser, server):
    from playwright.sync_api import expect

    base, db, _ = server
    anna_context, anna = _login(browser, base, "anna")
    bram_context, bram = _login(browser, base, "bram")
    anna.goto(f"{base}/review/item/xss-1")
    bram.goto(f"{base}/review/item/xss-1")
    anna.keyboard.press("t")
    anna.keyboard.type("11")  # digitaal on
    anna.keyboard.press("s")
    expect(anna.locator(".flash.success")).to_contain_text("Opgeslagen")
    bram.keyboard.press("t")
    bram.keyboard.type("9")  # voedsel_basis on, on a form opened before anna saved
    bram.keyboard.press("s")
    expect(bram.locator(".flash.conflict")).to_contain_text("anna heeft dit initiatief intussen al opgeslagen")
    # bram now sees anna's labels in the form
    expect(_checkbox(bram, "digitaal")).to_be_checked()
    expect(_checkbox(bram, "voedsel_basis")).not_to_be_checked()
    expect(bram.locator("#history tr.conflict")).to_contain_text("bram")
    expect(bram.locator("#status")).to_have_text("betwist")
    rows = _reviews(db)
    assert [(r["reviewer"], r["conflict"]) for r in rows] == [("anna", 0), ("bram", 1)]
    assert "voedsel_basis" in rows[1]["themes"]  # bram's submission is not lost
    anna_context.close()
    bram_context.close()


def test_anonymous_request_and_forged_form_are_refused(browser, server):
    from playwright.sync_api import expect

    base, db, _ = server
    anonymous = browser.new_context()
    page = anonymous.new_page()
    page.goto(f"{base}/review/item/xss-1")
    assert page.url.startswith(f"{base}/login")
    response = anonymous.request.post(f"{base}/review/item/xss-1", form={"initiative_pk": "4"},
                                      max_redirects=0)
    assert response.status == 401
    anonymous.close()

    context, page = _login(browser, base, "anna")
    page.goto(f"{base}/review/item/xss-1")
    # A form without its CSRF token, as another site could post it on the reviewer's behalf.
    page.evaluate("document.querySelector('#review-form input[name=csrf_token]').remove()")
    page.click("#save")
    expect(page.locator("section.error")).to_contain_text("beveiligingscode")
    response = context.request.post(
        f"{base}/review/item/xss-1",
        form={"initiative_pk": "4", "themes": "schulden", "doelgroepen": "ouderen",
              "kind": "signal", "replicability": "1"},
    )
    assert response.status == 400
    assert _reviews(db) == []
    context.close()


def test_script_in_a_description_does_not_run(browser, server):
    base, _, _ = server
    context, page = _login(browser, base, "anna")
    messages = []
    page.on("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
    for path in ("/review/", "/review/item/xss-1", "/review/?status=alle"):
        page.goto(base + path)
        assert page.evaluate("window.__xss") is None
        assert "gehackt" not in page.title()
    page.goto(f"{base}/review/item/xss-1")
    assert "<script>window.__xss = 1" in page.locator("#omschrijving").inner_text()
    assert "<b>Belcirkel</b>" in page.locator("#naam").inner_text()
    assert page.evaluate("window.__xss") is None and messages == []
    context.close()


def test_public_pages_work_under_the_content_security_policy(browser, server):
    """/zoeken and /rapport keep their inline styles and script with the policy on: the browser
    reports no violation, and the inline style is in effect."""
    base, _, _ = server
    context = browser.new_context()
    context.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    for path in ("/zoeken", "/rapport", "/login", "/initiatief/xss-1"):
        response = page.goto(base + path)
        assert response.status == 200 and response.header_value("content-security-policy"), path
        assert page.evaluate("window.__violations") == [], path
    page.goto(f"{base}/zoeken")
    # search_page.html's inline <style>: the search box is widened to 22rem (352px), never wider than the screen
    width = page.evaluate("getComputedStyle(document.querySelector('form.zoek input[type=search]')).minWidth")
    assert width == "min(352px, 100%)"
    assert refused == []
    context.close()


def test_a_javascript_url_from_a_sender_is_not_a_link(browser, server):
    base, _, _ = server
    context, page = _login(browser, base, "anna")
    page.goto(f"{base}/review/item/xss-1")
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert "https://testdorp.example/belcirkel" in hrefs
    assert not [h for h in hrefs if not h.startswith(("http://", "https://"))]
    context.close()


@pytest.mark.parametrize("width", [375, 390])
def test_initiative_page_and_report_fit_a_phone(browser, server, width):
    """On a phone nothing sticks out sideways: the label chips wrap onto new lines inside the page,
    long OCR words and links break, on the fact sheet and in the report."""
    base, _, _ = server
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="nl-NL")
    page = context.new_page()
    for path in ("/initiatief/halsema-001", "/rapport"):
        assert page.goto(base + path).status == 200, path
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        overflowing = page.evaluate(
            "w => [...document.querySelectorAll('body *')]"
            ".filter(e => e.getClientRects().length && e.getBoundingClientRect().right > w + 0.5"
            " && getComputedStyle(e).position !== 'fixed' && !e.closest('table, .tabel'))"
            ".map(e => e.tagName + '.' + e.className)", width)
        assert overflowing == [], (path, overflowing[:5])
    page.goto(base + "/initiatief/halsema-001")
    chips = page.eval_on_selector_all(".chip", "els => els.map(e => e.getBoundingClientRect().top)")
    assert chips, "the page shows its labels as chips"
    context.close()
