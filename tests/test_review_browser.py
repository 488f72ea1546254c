"""Blind second review, bulk "model klopt" and the guide in real headless Chromium.

Reuses the browser, login and catalogue helpers of tests/test_web_browser.py; the app runs with
[review] second_opinion_share = 1, so every item gets a blind second opinion.
"""

from __future__ import annotations

import json
import re

import pytest

from pipeline.core.config import load_taxonomy

from test_web_browser import _checkbox, _login, _reviews, browser, pytestmark, serve_app  # noqa: F401


@pytest.fixture
def server(settings, tmp_path, corpus_rows):
    """(base URL, catalogue path, facts): the real app on a free port, every item sampled."""
    yield from serve_app(settings, tmp_path, corpus_rows, second_opinion_share=1.0)


def test_second_reviewer_does_not_see_the_first_reviewers_labels_before_saving(browser, server):  # noqa: F811 (browser: the imported fixture)
    from playwright.sync_api import expect

    base, db, _ = server
    anna_context, anna = _login(browser, base, "anna")
    anna.goto(f"{base}/review/item/xss-1")
    anna.keyboard.press("t")
    anna.keyboard.type("11")  # digitaal on (the model did not choose it)
    anna.fill("textarea[name=note]", "Ook digitaal volgens anna.")
    anna.click("#save")
    expect(anna.locator(".flash.success")).to_contain_text("Opgeslagen")
    anna_context.close()

    bram_context, bram = _login(browser, base, "bram")
    bram.goto(f"{base}/review/item/xss-1")
    expect(bram.locator("#blind-note")).to_be_visible()
    expect(_checkbox(bram, "digitaal")).not_to_be_checked()  # anna's label is not shown ...
    expect(_checkbox(bram, "eenzaamheid")).to_be_checked()  # ... the model's suggestion is
    expect(bram.locator("#review-form")).not_to_contain_text("anna")
    expect(bram.locator("#history")).not_to_contain_text("anna")
    expect(bram.locator("#hidden-reviews")).to_contain_text("1 beoordeling van andere beoordelaars verborgen")
    bram.keyboard.press("r")
    bram.keyboard.press("3")
    bram.keyboard.press("s")
    expect(bram.locator(".flash.success")).to_contain_text("onafhankelijk oordeel")
    expect(bram.locator("#history")).to_contain_text("Ook digitaal volgens anna.")  # now visible
    expect(bram.locator("#status")).to_have_text("betwist")
    rows = _reviews(db)
    assert [(r["reviewer"], r["blind"], r["conflict"]) for r in rows] == [("anna", 1, 0), ("bram", 1, 0)]
    assert "digitaal" not in json.loads(rows[1]["themes"]) and rows[1]["replicability"] == 3
    bram_context.close()


def test_bulk_model_klopt_records_one_review_per_selected_row(browser, server):  # noqa: F811 (browser: the imported fixture)
    from playwright.sync_api import expect

    base, db, facts = server
    context, page = _login(browser, base, "anna")
    first, second = facts["queue_order"][:2]
    expect(page.locator("#todo-count")).to_have_text("4")
    for initiative_id in (first, second):
        row = page.locator("table.queue tbody tr", has=page.locator(f'a[href^="/review/item/{initiative_id}"]'))
        row.locator("input[type=checkbox][name=pk]").check()
    page.click("#confirm-selected")
    expect(page.locator(".flash.success")).to_contain_text("Model klopt: 2 initiatieven opgeslagen.")
    expect(page.locator("#todo-count")).to_have_text("2")
    expect(page.locator("#week-count")).to_have_text("2")
    rows = _reviews(db)
    assert len(rows) == 2 and len({r["initiative_pk"] for r in rows}) == 2
    assert all(r["reviewer"] == "anna" and r["blind"] == 1 for r in rows)
    assert all(json.loads(r["themes"]) == json.loads(r["before"])["themes"] for r in rows)
    page.check("#pick-all")  # the head box ticks every remaining row on the page
    expect(page.locator("input[name=pk]:checked")).to_have_count(2)
    context.close()


def test_guide_text_is_visible_next_to_each_checkbox_and_the_whole_scale_fits(browser, server, settings):  # noqa: F811 (browser: the imported fixture)
    from playwright.sync_api import expect

    base, _, _ = server
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    context, page = _login(browser, base, "anna")
    page.goto(f"{base}/review/item/xss-1")
    label = page.locator("#review-form label", has=page.locator('input[value="samenwerking"]'))
    hint = label.locator(".uitleg")
    expect(hint).to_be_visible()  # on the page, not in a hover tooltip
    expect(hint).to_have_text(next(t.omschrijving for t in taxonomy.themes if t.id == "samenwerking"))
    box, text = _checkbox(page, "samenwerking").bounding_box(), hint.bounding_box()
    assert abs(text["y"] - box["y"]) < 60 and text["x"] > box["x"]  # beside the checkbox
    form = page.locator("#review-form").bounding_box()
    for score, uitleg in taxonomy.replicability.items():  # the scale written out, not cut off
        option = page.locator("#replicability label", has=page.locator(f'input[value="{score}"]'))
        expect(option).to_contain_text(uitleg)
        shown = option.locator(".uitleg").bounding_box()
        assert shown["x"] + shown["width"] <= form["x"] + form["width"] + 1
    with context.expect_page() as opened:
        page.click("#review-form a[href='/review/gids']")
    guide = opened.value
    guide.wait_for_url(re.compile(r".*/review/gids"))
    expect(guide.locator("#gids-overdraagbaarheid")).to_contain_text(taxonomy.replicability[5])
    context.close()
