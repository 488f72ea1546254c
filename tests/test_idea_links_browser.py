"""A same-idea mark made in real headless Chromium changes the group on the next run.

Uses the app server and browser fixtures of test_web_browser.py (the real app over a real
SQLite catalogue in tmp_path, Debian's /usr/bin/chromium through Playwright).
"""

from __future__ import annotations

import re

import pytest

from pipeline.catalogue import idea_links, readmodel, schema
from pipeline.jobs.inbox import run_inbox
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Grouper

from test_web_browser import CHROMIUM, _login, browser, server  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian chromium missing at /usr/bin/chromium: run `make browser`"),
]


def _regroup(db, settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    conn = schema.connect(db)
    try:
        run_inbox(inbox, conn, predictor_factory=lambda: None, grouper_factory=lambda: Grouper.from_config(
            settings.group, encoder=encoder_from_config(settings.embed)))
        return {m: tuple(g["members"]) for g in readmodel.groups(conn) for m in g["members"]}
    finally:
        conn.close()


def test_zelfde_idee_in_the_browser_joins_the_pair_on_the_next_run(browser, server, settings, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    base, db, facts = server
    first = facts["queue_order"][0]
    before = _regroup(db, settings, tmp_path)
    context, page = _login(browser, base, "anna")
    page.goto(f"{base}/review/item/{first}")
    form = page.locator("ul.similar form.idea-mark").first
    other = form.get_attribute("data-other")
    assert other and other not in before.get(first, ())
    form.locator("button[value=zelfde]").click()
    page.wait_for_url(re.compile(rf".*/review/item/{re.escape(first)}.*"))
    expect(page.locator(".flash.success")).to_contain_text("Opgeslagen: zelfde idee")
    expect(page.locator(f'form.idea-mark[data-other="{other}"]')).to_contain_text("zelfde idee volgens anna")
    page.goto(f"{base}/initiatief/{first}")
    expect(page.locator("#markeringen")).to_contain_text(other)  # not applied yet: pending
    after = _regroup(db, settings, tmp_path)
    assert other in after[first]
    page.reload()
    expect(page.locator(f'#zelfde-idee form.idea-mark[data-other="{other}"]')).to_contain_text(
        "zelfde idee volgens anna")
    expect(page.locator("#markeringen")).to_have_count(0)
    conn = schema.connect(db)
    try:
        (link,) = idea_links.links_in_force(conn)
        assert link["same"] and link["reviewer"] == "anna"
    finally:
        conn.close()
    context.close()
