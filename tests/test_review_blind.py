"""The reviewer-facing half of issue 16 through the real app (Flask test client, real SQLite): the
blind second opinion, the agreement page, the guide next to the labels and on /review/gids, and
the queue's search, bulk "model klopt" and weekly goal."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from pipeline.app.factory import create_app
from pipeline.core.config import load_taxonomy
from pipeline.catalogue import accounts, schema
from pipeline.catalogue.queue import week_start

from test_review import (
    LABELS_A,
    LABELS_B,
    PASSWORD,
    _queue_ids,
    _save,
    build_catalogue,
    csrf_from,
    item_form,
    login,
)


def _app(settings, tmp_path, corpus_rows, share):
    db = tmp_path / "catalogue.sqlite"
    facts = build_catalogue(db, corpus_rows)
    conn = schema.connect(db)
    accounts.add_reviewer(conn, "carla", PASSWORD, min_password_chars=12)
    conn.close()
    serve = dataclasses.replace(settings.serve, secret_key_file=tmp_path / "secret")
    review = dataclasses.replace(settings.review, second_opinion_share=share)
    app = create_app(dataclasses.replace(settings, serve=serve, review=review), db_path=db,
                     test_config={"TESTING": True})
    return app, db, facts


@pytest.fixture
def every_item(settings, tmp_path, corpus_rows):
    """The app with [review] second_opinion_share = 1: every item gets a blind second opinion."""
    return _app(settings, tmp_path, corpus_rows, 1.0)


@pytest.fixture
def no_item(settings, tmp_path, corpus_rows):
    """The app with second_opinion_share = 0: only disputed items get a blind opinion."""
    return _app(settings, tmp_path, corpus_rows, 0.0)


def _clients(app, *names):
    out = []
    for name in names:
        client = app.test_client()
        assert login(client, name).status_code == 302
        out.append(client)
    return out


def _form_part(html):
    return html.split('id="review-form"', 1)[1].split("</form>", 1)[0]


def _rows(db):
    conn = schema.connect(db)
    try:
        return [dict(r) for r in conn.execute(
            "SELECT r.*, v.name AS reviewer, i.id AS initiative_id FROM reviews r "
            "JOIN reviewers v ON v.pk = r.reviewer_pk JOIN initiatives i ON i.pk = r.initiative_pk "
            "ORDER BY r.pk")]
    finally:
        conn.close()


def test_second_reviewer_sees_the_models_suggestion_not_the_first_reviewers_labels(every_item):
    app, db, _ = every_item
    anna, bram = _clients(app, "anna", "bram")
    assert _save(anna, "xss-1", LABELS_B, note="anna vindt digitaal").status_code == 302
    html = bram.get("/review/item/xss-1").text
    form = _form_part(html)
    assert "Onafhankelijk oordeel gevraagd" in form and "Labels van <strong>anna" not in html
    assert not re.search(r'value="digitaal" checked', form)  # anna's label, not the model's
    assert re.search(r'value="eenzaamheid" checked', form)  # the model's suggestion
    history = html.split('id="history"', 1)[1]
    assert "anna" not in history and "anna vindt digitaal" not in history
    assert "1 beoordeling van andere beoordelaars verborgen" in history
    # the queue shows bram the model's labels too, and asks for his opinion
    queue = bram.get("/review/?status=tweede").text
    row = queue.split('href="/review/item/xss-1', 1)[1].split("</tr>", 1)[0]
    assert "onafhankelijk oordeel gevraagd" in row and "Digitale middelen" not in row
    response = _save(bram, "xss-1", LABELS_A, fields=item_form(bram, "xss-1"))
    after = bram.get(response.headers["Location"]).text
    assert "onafhankelijk oordeel" in after and "anna vindt digitaal" in after  # shown after saving
    assert "U verschilt van mening (thema Digitale middelen en inclusie; overdraagbaarheid)" in after
    rows = _rows(db)
    assert [(r["reviewer"], r["blind"], r["conflict"]) for r in rows] == [("anna", 1, 0), ("bram", 1, 0)]
    assert json.loads(rows[1]["before"])["themes"] == ["eenzaamheid"]  # what bram was shown
    assert 'id="status">betwist' in after


def test_a_forged_blind_field_does_not_make_a_review_independent(no_item):
    app, db, _ = no_item
    anna, bram = _clients(app, "anna", "bram")
    _save(anna, "xss-1", LABELS_A)
    fields = item_form(bram, "xss-1")
    assert "blind" not in fields  # not sampled, not disputed: bram sees anna's labels
    assert "Labels van <strong>anna" in bram.get("/review/item/xss-1").text
    data = {"csrf_token": fields["csrf_token"], "initiative_pk": fields["initiative_pk"],
            "based_on": fields["based_on"], "blind": "1", **{k: v for k, v in LABELS_A.items()}}
    data["replicability"] = str(LABELS_A["replicability"])
    assert bram.post("/review/item/xss-1", data=data).status_code == 302
    assert [r["blind"] for r in _rows(db)] == [1, 0]


def test_a_third_reviewer_decides_a_dispute_and_the_agreement_page_says_what_differed(no_item):
    app, db, _ = no_item
    anna, bram, carla = _clients(app, "anna", "bram", "carla")
    anna_form, bram_form = item_form(anna, "xss-1"), item_form(bram, "xss-1")
    _save(anna, "xss-1", LABELS_A, fields=anna_form)
    _save(bram, "xss-1", LABELS_B, fields=bram_form)  # opened before anna saved: a conflict
    page = anna.get("/review/overeenstemming").text
    disputes = page.split('id="disputes"', 1)[1]
    assert "thema Digitale middelen en inclusie: ja bram; nee anna" in disputes
    assert "overdraagbaarheid: anna 5 · bram 4" in disputes and "wacht op een derde" in disputes
    assert "Krippendorff" in page and 'id="agreement-pairs"' in page and "anna – bram" in page
    # carla has not seen it: blind, and her review decides
    carla_form = item_form(carla, "xss-1")
    assert carla_form.get("blind") == "1"
    assert "xss-1" in _queue_ids(carla.get("/review/").text)  # in carla's to-do list
    decided = carla.get(_save(carla, "xss-1", LABELS_B, fields=carla_form).headers["Location"]).text
    assert "uw oordeel beslist" in decided
    page = anna.get("/review/overeenstemming").text
    assert "beslist door carla" in page
    assert 'id="status">beoordeeld' in anna.get("/review/item/xss-1").text
    conn = schema.connect(db)
    in_force = conn.execute("SELECT themes FROM reviews WHERE conflict = 0 ORDER BY pk DESC").fetchone()
    conn.close()
    assert json.loads(in_force[0]) == LABELS_B["themes"]


def test_guide_next_to_every_checkbox_and_on_its_own_page(no_item, settings):
    app, _, _ = no_item
    (anna,) = _clients(app, "anna")
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    form = _form_part(anna.get("/review/item/xss-1").text)
    for label in taxonomy.themes + taxonomy.doelgroepen:
        box = form.split(f'value="{label.id}"', 1)[1].split("</label>", 1)[0]
        assert f'<small class="uitleg">{label.omschrijving}</small>'.replace("'", "&#39;") in box
    for score, text in taxonomy.replicability.items():  # the whole scale, not cut off
        radio = form.split(f'name="replicability" value="{score}"', 1)[1].split("</label>", 1)[0]
        assert text in radio
    guide = anna.get("/review/gids")
    assert guide.status_code == 200
    assert all(label.omschrijving.replace("'", "&#39;") in guide.text for label in taxonomy.themes)
    assert all(text in guide.text for text in taxonomy.replicability.values())
    assert "Label op de tekst alleen" in guide.text


@pytest.mark.parametrize("query, expected", [
    ("belcirkel", ["xss-1"]), ("TESTDORP", ["xss-1"]), ("eenzame ouderen", ["xss-1"]),
    ("bestaat-nergens", []),
])
def test_queue_free_text_search(no_item, query, expected):
    app, _, _ = no_item
    (anna,) = _clients(app, "anna")
    assert _queue_ids(anna.get("/review/", query_string={"q": query}).text) == expected


def test_bulk_model_klopt_records_one_review_per_selected_row(no_item):
    app, db, facts = no_item
    anna, bram = _clients(app, "anna", "bram")
    html = anna.get("/review/").text
    token = csrf_from(html)
    pks = re.findall(r'<input type="checkbox" name="pk" value="(\d+)"', html)
    assert len(pks) == 4
    assert anna.post("/review/bevestigen", data={"pk": pks[:2]}).status_code == 400  # no CSRF token
    assert _rows(db) == []
    response = anna.post("/review/bevestigen", data={"csrf_token": token, "pk": pks[:2]})
    assert response.status_code == 302
    rows = _rows(db)
    assert sorted(r["initiative_pk"] for r in rows) == sorted(int(p) for p in pks[:2])
    assert all(r["reviewer"] == "anna" and r["blind"] == 1 and r["before"] for r in rows)
    assert all(json.loads(r["themes"]) == json.loads(r["before"])["themes"] for r in rows)
    page = anna.get(response.headers["Location"]).text
    assert "Model klopt: 2 initiatieven opgeslagen." in page
    # again on the same rows: named and refused, nothing doubled
    again = anna.post("/review/bevestigen", data={"csrf_token": token, "pk": pks[:2]}, follow_redirects=True)
    assert "al beoordeeld" in again.text and len(_rows(db)) == 2
    # bram sees anna's labels on those rows (not sampled): no checkbox for them
    bram_pks = re.findall(r'name="pk" value="(\d+)"', bram.get("/review/?status=alle").text)
    assert sorted(bram_pks) == sorted(pks[2:])


def test_queue_shows_what_is_left_and_the_weekly_goal(no_item):
    app, _, facts = no_item
    (anna,) = _clients(app, "anna")
    html = anna.get("/review/").text
    assert re.search(r'id="todo-count">4<', html) and re.search(r'id="week-count">0<', html)
    goal = app.config["SETTINGS"].review.weekly_goal
    assert f"van {goal}" in html
    _save(anna, "xss-1", LABELS_A)
    html = anna.get("/review/").text
    assert re.search(r'id="todo-count">3<', html) and re.search(r'id="week-count">1<', html)


def test_week_starts_on_monday_in_the_display_timezone():
    from datetime import datetime, timezone

    # Sunday 23:30 UTC is Monday 00:30 in Amsterdam (winter time): a new week there.
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc)
    assert week_start(sunday_night, "Europe/Amsterdam") == "2026-11-29T23:00:00+00:00"
    assert week_start(sunday_night, "UTC") == "2026-11-23T00:00:00+00:00"
