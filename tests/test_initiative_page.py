"""The public page per initiative, /initiatief/<id>, through the real app (Flask test client) over a
real SQLite catalogue in tmp_path, filled with a few hand-written Dutch rows: odd ids, a joint
submission, a same-idea group, a reviewed row, HTML in a description and a sender's bad links.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import re
from urllib.parse import urlsplit

import pytest

from pipeline.app import initiative_views
from pipeline.app.factory import create_app
from pipeline.catalogue import accounts, reviews, schema, writes
from pipeline.core.records import Initiative

PASSWORD = "correct-paard-batterij"

BELCIRKEL = ("Vrijwilligers uit de wijk bellen elke week met eenzame ouderen.\n"
             "  De bibliotheek  zoekt de vrijwilligers & deelt flyers <uit>.")
SCRIPT = '<script>window.__xss = 1</script><b>vet</b> Buren koken samen voor wie alleen woont.'
# Ids as municipalities send them: a space, a slash, a leading dot, "?", "#", "%", "~", "..".
ODD_IDS = ("buurt 7/b", ".verborgen", "vraag?#50%~x", "..")


def _prediction(themes, doelgroepen, *, score=4, reasons=(), kind="initiative"):
    return {
        "model_id": "test-model", "themes": themes, "doelgroepen": doelgroepen, "kind": kind,
        "scores": {"themes": {t: 0.9 for t in themes}, "doelgroepen": {d: 0.8 for d in doelgroepen},
                   "kind": 0.1},
        "replicability": score, "replicability_score": float(score),
        "replicability_reasons": list(reasons),
    }


ROWS = [
    (Initiative(id="bel-1", gemeente="Zwolle", gemeenten=("Zwolle", "Kampen", "Dalfsen"),
                naam="Belcirkel", omschrijving=BELCIRKEL,
                urls=("https://zwolle.example/belcirkel", "javascript:alert(1)", "www.zwolle.example")),
     _prediction(["eenzaamheid", "vrijwillige_inzet"], ["ouderen"], score=5, reasons=[
         {"reden": "Draait op vrijwilligers.", "richting": "+", "bewijs": "Vrijwilligers uit de wijk"},
         {"reden": "Bouwt op een bestaande organisatie.", "richting": "+", "bewijs": "De bibliotheek"},
         {"reden": "Zegt niets over de kosten.", "richting": "-", "bewijs": None},
     ])),
    (Initiative(id="bel-2", gemeente="Assen", naam="Telefooncirkel",
                omschrijving="Ouderen worden dagelijks gebeld door vrijwilligers."),
     _prediction(["eenzaamheid"], ["ouderen"], score=4)),
    (Initiative(id="xss-1", gemeente="Testdorp", naam="<i>Kookclub</i>", omschrijving=SCRIPT),
     _prediction(["voedsel_basis"], ["alle_inwoners"], score=3, reasons=[
         {"reden": "Draait op vrijwilligers.", "richting": "+", "bewijs": "<b>vet</b>"}])),
] + [
    (Initiative(id=odd, gemeente="Oss", omschrijving=f"Een initiatief met nummer {odd}."),
     _prediction(["digitaal"], ["jongeren"], score=2))
    for odd in ODD_IDS
]


def build(path):
    conn = schema.connect(path)
    try:
        writes.store_submission(conn, file_name="t.jsonl", sha256="sha", accepted=[r for r, _ in ROWS],
                                rejected=[], predictions=[p for _, p in ROWS])
        writes.replace_groups(conn, [{"group_id": "g1", "members": ["bel-1", "bel-2", "weg-99"],
                                      "gemeenten": ["Zwolle", "Assen"], "naam": "Belcirkels"}])
        accounts.add_reviewer(conn, "anna", PASSWORD, min_password_chars=12)
        pk = conn.execute("SELECT pk FROM current_initiatives WHERE id = 'bel-2'").fetchone()[0]
        reviews.save_review(conn, initiative_pk=pk, reviewer="anna", based_on=None, note=None,
                            labels={"themes": ["eenzaamheid"], "doelgroepen": ["ouderen", "mantelzorgers"],
                                    "kind": "initiative", "replicability": 4})
    finally:
        conn.close()


@pytest.fixture
def app(settings, tmp_path):
    db = tmp_path / "catalogue.sqlite"
    build(db)
    serve = dataclasses.replace(settings.serve, secret_key_file=tmp_path / "secret")
    return create_app(dataclasses.replace(settings, serve=serve), db_path=db, test_config={"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def page_url(app, initiative_id):
    with app.test_request_context():
        from flask import url_for
        return url_for("initiative.page", initiative_id=initiative_id)


def hrefs(html: str) -> list[str]:
    return [html_lib.unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


@pytest.mark.parametrize("initiative_id", ["a b/c", ".", "..", "./x", "~7E", "a~2Fb", "?#%&", "ë ü"])
def test_an_id_survives_the_trip_through_a_url_segment(initiative_id):
    segment = initiative_views.id_to_segment(initiative_id)
    assert "/" not in segment and segment not in (".", "..")
    assert initiative_views.segment_to_id(segment) == initiative_id


def test_page_shows_name_places_text_labels_score_and_review_state(client):
    response = client.get("/initiatief/bel-1")
    assert response.status_code == 200
    page = response.text
    assert '<h1 id="naam">Belcirkel</h1>' in page
    assert "Zwolle" in page and "(samen met Kampen, Dalfsen)" in page
    assert "Eenzaamheid en sociaal contact" in page and "Ouderen" in page  # Dutch names, not ids
    assert "vrijwillige_inzet" not in page
    assert '<span id="score">5</span>/5' in page
    assert "Nog niet gecontroleerd door een beoordelaar" in page
    # Reasons link to their evidence, marked in the text with the reason as title.
    assert '<a class="bewijs-link" href="#bewijs-1">“Vrijwilligers uit de wijk”</a>' in page
    assert re.search(r'<mark class="bewijs plus" id="bewijs-1" title="Draait op vrijwilligers.">'
                     r'Vrijwilligers uit de wijk</mark>', page)
    assert "Zegt niets over de kosten." in page


def test_text_is_shown_exactly_as_sent_and_escaped(client):
    page = client.get("/initiatief/bel-1").text
    body = re.search(r'<div class="text" id="omschrijving">(.*?)</div>', page, re.DOTALL).group(1)
    assert html_lib.unescape(re.sub(r"<[^>]+>", "", body)) == BELCIRKEL  # whitespace and all
    assert "&amp; deelt flyers &lt;uit&gt;." in body

    page = client.get("/initiatief/xss-1").text
    assert "<script>window.__xss" not in page and "<b>vet</b>" not in page and "<i>Kookclub</i>" not in page
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert '<mark class="bewijs plus" id="bewijs-1" title="Draait op vrijwilligers.">&lt;b&gt;vet&lt;/b&gt;</mark>' in page


def test_only_http_links_of_the_sender_are_clickable(client):
    page = client.get("/initiatief/bel-1").text
    assert '<a href="https://zwolle.example/belcirkel" rel="noopener noreferrer nofollow">' in page
    links = hrefs(page)
    assert not [h for h in links if h.lower().startswith(("javascript:", "www."))]
    assert "javascript:alert(1)" in page and "www.zwolle.example" in page  # shown as text


def test_same_idea_links_to_the_other_current_members(client, app):
    page = client.get("/initiatief/bel-1").text
    section = page.split('id="zelfde-idee"')[1].split("</section>")[0]
    assert f'href="{page_url(app, "bel-2")}"' in section and "Assen" in section
    assert "weg-99" not in section  # a member that is no longer in the catalogue
    back = client.get("/initiatief/bel-2").text.split('id="zelfde-idee"')[1].split("</section>")[0]
    assert "/initiatief/bel-1" in back and "Zwolle, Kampen, Dalfsen" in back


def test_reviewed_row_says_so_and_shows_the_labels_in_force(client, app):
    page = client.get("/initiatief/bel-2").text
    assert "Gecontroleerd door een beoordelaar" in page
    assert "Mantelzorgers" in page  # the reviewer's label, not the model's
    assert "anna" not in page  # the reviewer's name only for reviewers
    reviewer = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', reviewer.get("/login").text).group(1)
    reviewer.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token})
    page = reviewer.get("/initiatief/bel-2").text
    assert "(anna)" in page and "/review/item/bel-2" in page


@pytest.mark.parametrize("missing", ["bestaat-niet", "bel-1 ", "a/b", "%3Cscript%3E"])
def test_unknown_id_is_a_dutch_404(client, missing):
    response = client.get(f"/initiatief/{missing}")
    assert response.status_code == 404
    assert "Niet gevonden" in response.text and "Er is geen initiatief met nummer" in response.text
    assert "<script>" not in response.text


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_ids_get_working_pages(client, app, odd):
    url = page_url(app, odd)
    assert urlsplit(url).path == url and "/" not in url[len("/initiatief/"):]
    response = client.get(url)
    assert response.status_code == 200, url
    assert f"Een initiatief met nummer {html_lib.escape(odd, quote=False)}." in response.text


def test_a_typed_address_with_a_raw_slash_finds_the_id(client):
    response = client.get("/initiatief/buurt 7/b")
    assert response.status_code == 200
    assert "Een initiatief met nummer buurt 7/b." in response.text


def test_every_link_on_every_page_resolves(client, app):
    ids = [r.id for r, _ in ROWS]
    for initiative_id in ids:
        page = client.get(page_url(app, initiative_id))
        assert page.status_code == 200, initiative_id
        for href in hrefs(page.text):
            if href.startswith("#"):
                assert f'id="{href[1:]}"' in page.text, (initiative_id, href)
            elif href.startswith("/"):
                assert client.get(href, follow_redirects=True).status_code in (200, 204), (initiative_id, href)
            else:
                assert href.startswith("https://"), href


def test_search_hits_link_to_the_page(client, app):
    page = client.get("/zoeken?q=ouderen+bellen").text
    assert 'href="/initiatief/bel-1"' in page
    odd = client.get("/zoeken?gemeente=Oss").text
    for initiative_id in ODD_IDS:
        assert f'href="{html_lib.escape(page_url(app, initiative_id))}"' in odd


def test_fact_sheet_shows_the_five_elements_in_the_words_of_the_text(client):
    page = client.get("/initiatief/bel-1").text
    sheet = page.split('id="feiten"')[1].split("</section>")[0]
    for label in ("Wat", "Voor wie", "Hoe", "Met wie", "Kosten / middelen"):
        assert f"<dt>{label}</dt>" in sheet
    assert '<dd data-feit="voor_wie"><q>eenzame ouderen</q></dd>' in sheet
    assert "<q>bibliotheek</q>" in sheet
    assert re.search(r'<dd data-feit="kosten"><span class="muted">niet genoemd</span></dd>', sheet)
    # Spans are escaped like the text they come from.
    assert "<q>vrijwilligers &amp; deelt flyers &lt;uit&gt;</q>" in sheet
