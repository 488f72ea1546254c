"""Search: the hybrid ranker, filters, the `pipeline search` command and the /zoeken page."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.cli.main import main
from pipeline.core.config import load_taxonomy
from pipeline.core.records import Initiative
from pipeline.catalogue.search import REVIEWER_ONLY_FIELDS, SearchError, SearchFilters, SearchIndex, resolve_kind, resolve_label, search_index_from_settings
from pipeline.models.ranking import HybridRanker
from pipeline.catalogue.records import records_from_rows

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED = PROJECT_ROOT / "data" / "labelled" / "seed.jsonl"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def record(id, gemeente, themes=(), doelgroepen=(), kind="initiative", replicability=4,
           naam=None, omschrijving="tekst", **extra):
    return {"id": id, "gemeente": gemeente, "naam": naam, "omschrijving": omschrijving,
            "themes": list(themes), "doelgroepen": list(doelgroepen), "kind": kind,
            "replicability": replicability, "reasons": [], "group_id": None,
            "group_gemeenten": [], **extra}


TINY = [
    record("a", "Almere", ["voedsel_basis"], ["dak_thuislozen"], naam="Maaltijden rondbrengen",
           omschrijving="Vrijwilligers brengen warme maaltijden naar daklozen.", replicability=5),
    record("b", "Breda", ["schulden"], ["financieel_kwetsbaar"], naam="Schuldhulp",
           omschrijving="Snelle hulp bij schulden en betalingsachterstanden.", replicability=3),
    record("c", "almere", ["schulden", "voedsel_basis"], ["gezinnen"], kind="signal", replicability=1,
           omschrijving="Verzoek aan het Rijk om de bijstand te verruimen."),
    record("d", "Delft", ["onderwijs"], ["kinderen"], replicability=None,
           omschrijving="Laptops voor leerlingen die thuis les volgen."),
]


@pytest.fixture(scope="module")
def taxonomy(settings):
    return load_taxonomy(settings.paths.taxonomy)


@pytest.fixture(scope="module")
def corpus_index(settings):
    rows = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    return search_index_from_settings(records_from_rows(rows), settings)


def make_catalogue(path: Path, rows: list[dict], groups: list[dict] = (),
                   file_name: str = "test.jsonl") -> Path:
    """A real catalogue file: rows (seed format) stored with their labels as one model's prediction,
    as if they came in `file_name` (call again with another name to add a file)."""
    conn = schema.connect(path)
    accepted = [Initiative(id=r["id"], gemeente=r["gemeente"], omschrijving=r["omschrijving"],
                           naam=r.get("naam"), gemeenten=tuple(r.get("gemeenten") or ()))
                for r in rows]
    predictions = [{
        "model_id": "test-model", "themes": r["themes"], "doelgroepen": r["doelgroepen"],
        "kind": r["kind"],
        "scores": {"themes": {t: 0.9 for t in r["themes"]}, "doelgroepen": {}, "kind": 0.2},
        "replicability": r.get("replicability"),
        "replicability_score": float(r.get("replicability") or 1),
        "replicability_reasons": [{"reden": r.get("reason") or "reden", "richting": "+",
                                   "bewijs": None}],
    } for r in rows]
    writes.store_submission(conn, file_name=file_name, sha256=f"{path.name}/{file_name}",
                           accepted=accepted, rejected=[], predictions=predictions)
    if groups:
        writes.replace_groups(conn, groups)
    conn.close()
    return path


# --- ranking -------------------------------------------------------------------------------------


def test_eenzame_ouderen_bellen_finds_contact_initiatives_for_the_elderly(corpus_index):
    """The words are not in the texts ("bellen" is, "eenzame" is not); meaning must carry it.
    Relevant = the labelled rows about loneliness for older people."""
    hits = corpus_index.search("eenzame ouderen bellen")
    ranks = {hit.record["id"]: rank for rank, hit in enumerate(hits)}
    relevant = [r["id"] for r in corpus_index.records
                if "eenzaamheid" in r["themes"] and "ouderen" in r["doelgroepen"]]
    unrelated = [r["id"] for r in corpus_index.records
                 if "eenzaamheid" not in r["themes"] and "ouderen" not in r["doelgroepen"]]
    assert relevant and unrelated
    assert hits[0].record["id"] in relevant
    assert all(ranks[i] < 5 for i in relevant), {i: ranks[i] for i in relevant}
    # Share of (relevant, unrelated) pairs in the right order: 1.0 is perfect, 0.5 chance.
    ordered = np.mean([ranks[r] < ranks[u] for r in relevant for u in unrelated])
    assert ordered > 0.95


def test_nonsense_and_off_topic_queries_get_no_hits(corpus_index):
    """Before the floor every query returned the whole catalogue, best first."""
    assert corpus_index.search("xyzzy qwerty") == []
    assert corpus_index.search("voetbaluitslagen eredivisie") == []


def test_the_floor_is_a_gate_not_a_cut(corpus_index):
    """A query that some row answers still ranks every row: weaker rows stay below it."""
    hits = corpus_index.search("voedselpakketten voor gezinnen")
    assert len(hits) == len(corpus_index.records)
    assert hits[0].dense >= hits[-1].dense


def test_the_floor_reads_raw_cosines_not_scaled_scores(settings):
    """Scaled channels make the best row 1 for any query; the floor must look at raw cosines."""
    from pipeline.models.embed import encoder_from_config

    index = SearchIndex.build(
        [record("a", "Almere", omschrijving="Maaltijden voor daklozen"),
         record("b", "Breda", omschrijving="Schuldhulp voor gezinnen")],
        query_encoder=encoder_from_config(settings.embed), dense_weight=0.8, lemmatize=True,
        min_dense_similarity=0.99, min_keyword_similarity=0.3)
    assert index.search("fietsenstalling bij het station") == []
    assert [h.record["id"] for h in index.search("daklozen")][:1] == ["a"]  # by its keyword cosine


def test_one_idea_from_several_places_takes_one_place_on_the_page():
    from pipeline.catalogue.search import Hit, collapse_ideas

    rows = [record("a", "Almere", group_id=1), record("b", "Breda"), record("c", "Delft", group_id=1),
            record("d", "Ede", group_id=1), record("e", "Delft", group_id=2)]
    ideas = collapse_ideas([Hit(r, 1.0 - i / 10) for i, r in enumerate(rows)])
    assert [(i.hit.record["id"], [o.record["id"] for o in i.others]) for i in ideas] == [
        ("a", ["c", "d"]), ("b", []), ("e", [])]
    assert ideas[0].places == ["Delft", "Ede"]


def test_facet_counts_leave_out_their_own_filter():
    from pipeline.catalogue.search import facet_counts

    counts = facet_counts(TINY, SearchFilters(themes=("schulden",), kind="initiative"))
    # Themes: counted with the kind filter only (a, b, d are initiatives).
    assert counts["themes"] == {"voedsel_basis": 1, "schulden": 1, "onderwijs": 1}
    # Kind: counted with the theme filter only (b initiative, c signal).
    assert counts["kind"] == {"initiative": 1, "signal": 1}
    assert counts["gemeenten"] == {"Breda": 1}


def test_keyword_channel_matches_inflections_through_lemmas():
    ranker = HybridRanker(dense_weight=0.0).fit(
        ["Wij koken een maaltijd voor buren.", "Hulp bij de belastingaangifte.", "Sport in het park."])
    scores = ranker.score("maaltijden")
    assert scores.argmax() == 0 and scores[0] > scores[1:].max()


def test_ranker_rejects_a_weight_outside_zero_one():
    with pytest.raises(ValueError, match="dense_weight must lie in"):
        HybridRanker(dense_weight=1.5).fit(["x"])


def test_dense_weight_one_ignores_the_keyword_channel(settings):
    from pipeline.models.embed import encoder_from_config

    texts = ["Maaltijden voor daklozen", "Schuldhulpverlening voor gezinnen"]
    ranker = HybridRanker(query_encoder=encoder_from_config(settings.embed), dense_weight=1.0).fit(texts)
    channels = ranker.channel_scores("eten voor mensen op straat")
    np.testing.assert_allclose(ranker.score("eten voor mensen op straat"), channels["dense"])
    assert channels["dense"].argmax() == 0


# --- filters -------------------------------------------------------------------------------------


def keyword_index(records=TINY):
    return SearchIndex.build(records, query_encoder=None, dense_weight=0.0, lemmatize=True,
                             min_dense_similarity=0.0, min_keyword_similarity=0.0)


@pytest.mark.parametrize("filters, expected", [
    (SearchFilters(themes=("schulden",)), {"b", "c"}),
    (SearchFilters(themes=("schulden", "onderwijs")), {"b", "c", "d"}),          # OR within
    (SearchFilters(themes=("schulden",), kind="initiative"), {"b"}),            # AND across
    (SearchFilters(doelgroepen=("kinderen",)), {"d"}),
    (SearchFilters(gemeenten=("ALMERE",)), {"a", "c"}),                         # any case
    (SearchFilters(kind="signal"), {"c"}),
    (SearchFilters(min_replicability=4), {"a"}),                                # None never passes
    (SearchFilters(), {"a", "b", "c", "d"}),
])
def test_filters_keep_matching_rows(filters, expected):
    assert {h.record["id"] for h in keyword_index().search("hulp", filters)} == expected


# A joint submission: one long `gemeente` string, its places in `gemeenten`.
JOINT = record("j", "Amersfoort, Almere, Enschede en Leiden samen", ["eenzaamheid"], ["ouderen"],
               gemeenten=["Amersfoort", "Almere", "Enschede", "Leiden"],
               omschrijving="Samen een belcirkel voor eenzame ouderen.")


@pytest.mark.parametrize("place, expected", [
    ("Enschede", {"j"}),
    ("almere", {"a", "c", "j"}),
    ("Amersfoort, Almere, Enschede en Leiden samen", set()),   # the joint string is no place
])
def test_gemeente_filter_uses_every_place_of_a_joint_submission(place, expected):
    hits = keyword_index(TINY + [JOINT]).search("", SearchFilters(gemeenten=(place,)))
    assert {h.record["id"] for h in hits} == expected


def test_empty_query_lists_by_replicability_then_name():
    hits = keyword_index().search("")
    assert [h.record["id"] for h in hits] == ["a", "b", "c", "d"]
    assert all(h.score == 0 for h in hits)


def test_limit_cuts_after_ranking():
    hits = keyword_index().search("schulden", limit=1)
    assert [h.record["id"] for h in hits] == ["b"]


@pytest.mark.parametrize("filters, message", [
    (SearchFilters(themes=("armoede",)), "onbekend label 'armoede'"),
    (SearchFilters(doelgroepen=("bejaarden",)), "onbekend label 'bejaarden'"),
    (SearchFilters(kind="wens"), "onbekende soort 'wens'"),
    (SearchFilters(min_replicability=6), "moet 1-5 zijn"),
])
def test_bad_filters_name_the_value(taxonomy, filters, message):
    with pytest.raises(SearchError, match=message):
        filters.validate(taxonomy)


def test_minimum_score_is_checked_against_the_taxonomy_scale(taxonomy):
    import dataclasses

    three = dataclasses.replace(taxonomy, replicability={k: v for k, v in
                                                         taxonomy.replicability.items() if k <= 3})
    SearchFilters(min_replicability=3).validate(three)
    with pytest.raises(SearchError, match="moet 1-3 zijn"):
        SearchFilters(min_replicability=4).validate(three)


def test_labels_resolve_from_id_or_dutch_name(taxonomy):
    assert resolve_label(taxonomy, "themes", "schulden") == "schulden"
    assert resolve_label(taxonomy, "themes", "schulden en GELDZORGEN") == "schulden"
    assert resolve_label(taxonomy, "doelgroepen", "Ouderen") == "ouderen"
    assert resolve_kind("Signaal") == "signal" and resolve_kind("") is None
    with pytest.raises(SearchError, match="onbekende doelgroep 'bejaarden'.*ouderen"):
        resolve_label(taxonomy, "doelgroepen", "bejaarden")


def test_reviewer_only_fields_stay_out_of_public_hits():
    row = record("x", "Ede", label_scores={"themes": {"schulden": 0.7}}, model_id="m1",
                 review_notes="twijfel", review_status="review")
    hit = keyword_index([row]).search("")[0]
    public, private = hit.to_dict(), hit.to_dict(reviewer=True)
    assert not set(REVIEWER_ONLY_FIELDS) & set(public)
    assert private["review_notes"] == "twijfel" and private["model_id"] == "m1"


# --- command line --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_rows():
    return [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def catalogue(tmp_path, seed_rows):
    """Twelve real corpus rows (their embeddings are cached) in a real catalogue, one group."""
    rows = seed_rows[:12]
    group = {"group_id": "g-1", "naam": "idee", "members": [rows[0]["id"], rows[5]["id"]],
             "gemeenten": sorted({rows[0]["gemeente"], rows[5]["gemeente"]})}
    return make_catalogue(tmp_path / "catalogue.sqlite", rows, [group]), rows


def run(settings, *args):
    return CliRunner().invoke(main, list(args), obj={"settings": settings})


def test_cli_json_prints_one_hit_per_line_with_id_and_score(settings, catalogue):
    path, rows = catalogue
    result = run(settings, "search", "maaltijden voor daklozen", "--db", str(path), "--json",
                 "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 3
    assert all({"id", "score"} <= set(line) for line in lines)
    assert [line["score"] for line in lines] == sorted((line["score"] for line in lines), reverse=True)
    assert {line["id"] for line in lines} <= {r["id"] for r in rows}


def test_cli_filters_and_shows_the_group(settings, catalogue):
    path, rows = catalogue
    gemeente = rows[0]["gemeente"]
    result = run(settings, "search", "hulp", "--db", str(path), "--gemeente", gemeente)
    assert result.exit_code == 0, result.output
    shown = [line.split()[1] for line in result.output.splitlines() if line[:1].isdigit()]
    assert shown and set(shown) == {r["id"] for r in rows if r["gemeente"] == gemeente}
    if rows[5]["gemeente"] != gemeente:
        assert f"ook in {rows[5]['gemeente']}" in result.output


@pytest.mark.parametrize("args, message", [
    (["--thema", "armoede"], "onbekend thema 'armoede'"),
    (["--soort", "wens"], "onbekende soort 'wens'"),
])
def test_cli_bad_filter_is_a_clean_error(settings, catalogue, args, message):
    path, _ = catalogue
    result = run(settings, "search", "x", "--db", str(path), *args)
    assert result.exit_code == 1
    assert message in result.output


def test_cli_missing_catalogue_says_how_to_fill_it(settings, tmp_path):
    result = run(settings, "search", "x", "--db", str(tmp_path / "nope.sqlite"))
    assert result.exit_code == 1
    assert "catalogus niet gevonden" in result.output and "pipeline run" in result.output
    assert not (tmp_path / "nope.sqlite").exists()


# --- web page ------------------------------------------------------------------------------------


@pytest.fixture
def app(settings, catalogue, tmp_path):
    from pipeline.app.factory import create_app

    path, _ = catalogue
    return create_app(settings, db_path=path, test_config={"TESTING": True, "SECRET_KEY": "test"})


def test_search_page_is_public_and_hides_reviewer_fields(app, catalogue):
    _, rows = catalogue
    response = app.test_client().get("/zoeken", query_string={"q": "maaltijden"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Every row is on the page: as a hit, or under the hit of its same-idea group.
    assert html.count("data-id=") == len(rows) and html.count('class="hit"') < len(rows)
    assert "data-reviewer-only" not in html and "test-model" not in html
    assert "/review/item/" not in html


def test_search_page_shows_model_scores_to_a_reviewer(settings, app, catalogue):
    import re

    from pipeline.catalogue.accounts import add_reviewer

    password = "x" * settings.review.min_password_chars
    conn = schema.connect(catalogue[0])
    add_reviewer(conn, "anna", password, min_password_chars=settings.review.min_password_chars)
    conn.close()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    login = client.post("/login", data={"name": "anna", "password": password, "csrf_token": token})
    assert login.status_code == 302
    html = client.get("/zoeken", query_string={"q": "maaltijden"}).get_data(as_text=True)
    assert "data-reviewer-only" in html and "test-model" in html
    assert "/review/item/" in html


def test_search_page_filter_and_bad_filter(app, catalogue):
    _, rows = catalogue
    client = app.test_client()
    theme = rows[0]["themes"][0]
    html = client.get("/zoeken", query_string={"q": "hulp", "thema": theme}).get_data(as_text=True)
    assert html.count('class="hit"') == sum(theme in r["themes"] for r in rows)
    response = client.get("/zoeken", query_string={"thema": "armoede"})
    assert response.status_code == 400
    assert "onbekend thema" in response.get_data(as_text=True)


def test_search_page_lists_and_filters_the_places_of_a_joint_submission(settings, tmp_path,
                                                                          seed_rows):
    import re

    from pipeline.app.factory import create_app

    joint = dict(seed_rows[0], id="joint-1", gemeente="Amersfoort, Almere, Enschede en ...",
                 gemeenten=["Amersfoort", "Almere", "Enschede"])
    rows = [joint] + [r for r in seed_rows[1:4] if r["gemeente"] not in joint["gemeenten"]]
    group = {"group_id": "g-1", "naam": "idee", "members": ["joint-1", rows[1]["id"]],
             "gemeenten": []}
    path = make_catalogue(tmp_path / "catalogue.sqlite", rows, [group])
    client = create_app(settings, db_path=path,
                        test_config={"TESTING": True, "SECRET_KEY": "t"}).test_client()
    other = client.get("/zoeken", query_string={"gemeente": rows[1]["gemeente"]}).get_data(as_text=True)
    assert "Hetzelfde idee ook in 3 andere gemeenten: Almere, Amersfoort, Enschede<" in other
    html = client.get("/zoeken", query_string={"gemeente": "Enschede"}).get_data(as_text=True)
    assert re.findall(r'data-id="([^"]+)"', html) == ["joint-1"]
    assert "andere gemeente: " + rows[1]["gemeente"] in html
    options = re.findall(r'<option value="GM\d{4}" ?(?:selected)?>([^<(]+) \(\d+\)</option>', html)
    assert {"Amersfoort", "Almere", "Enschede"} <= set(options)
    assert joint["gemeente"] not in options
    assert "Amersfoort, Almere, Enschede · joint-1" in html


def test_pages_reread_the_catalogue_only_after_it_changed(app, catalogue, seed_rows):
    from pipeline.app.search_views import app_catalogue
    from pipeline.app.context import get_db

    def snapshot():
        with app.test_request_context():
            return app_catalogue(get_db())

    path, rows = catalogue
    client = app.test_client()
    assert client.get("/zoeken", query_string={"q": "hulp"}).status_code == 200
    first = snapshot()
    assert client.get("/rapport").status_code == 200
    client.get("/zoeken", query_string={"q": "eten"})
    assert snapshot() is first                      # nothing changed: nothing reread
    new = seed_rows[len(rows)]
    make_catalogue(path, [new], file_name="nieuw.jsonl")   # a new file in the same catalogue
    html = client.get("/zoeken", query_string={"gemeente": new["gemeente"]}).get_data(as_text=True)
    assert f'data-id="{new["id"]}"' in html
    assert snapshot() is not first and len(snapshot().records) == len(rows) + 1


def test_description_markup_is_shown_as_text(settings, tmp_path):
    from pipeline.app.factory import create_app

    rows = [{"id": "x-1", "gemeente": "Ede", "naam": "<b>vet</b>", "themes": ["schulden"],
             "doelgroepen": [], "kind": "initiative", "replicability": 3,
             "omschrijving": "Hulp <script>window.__xss = 1</script> bij schulden."}]
    app = create_app(settings, db_path=make_catalogue(tmp_path / "c.sqlite", rows),
                     test_config={"TESTING": True, "SECRET_KEY": "test"})
    html = app.test_client().get("/zoeken", query_string={"q": "schulden"}).get_data(as_text=True)
    assert "<script>window" not in html and "&lt;script&gt;" in html and "<b>vet" not in html


@pytest.fixture
def live_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium missing at /usr/bin/chromium (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_search_page_in_chromium(browser, live_server, catalogue):
    _, rows = catalogue
    page = browser.new_page()
    refused = []   # what the page's Content-Security-Policy blocked (its own style, say)
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{live_server}/zoeken")
    page.fill("input[name=q]", "maaltijden voor daklozen")
    page.select_option("select[name=soort]", "initiatief")
    page.click("button[type=submit]")
    page.wait_for_selector("li.hit")
    assert "q=maaltijden" in page.url
    ids = page.eval_on_selector_all("li.hit, li.hit li[data-id]", "els => els.map(e => e.dataset.id)")
    assert set(ids) == {r["id"] for r in rows if r["kind"] == "initiative"}
    assert page.locator("select[name=soort]").input_value() == "initiatief"
    assert page.locator("[data-reviewer-only]").count() == 0
    # The page's own style applies (a hit is a card), and nothing on it was refused.
    assert page.eval_on_selector("li.hit", "e => getComputedStyle(e).borderTopLeftRadius") == "6px"
    assert refused == []
    # On a 390 px phone nothing sticks out sideways.
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    page.wait_for_selector("li.hit")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # A gibberish query says so.
    page.goto(f"{live_server}/zoeken?q=xyzzy+qwerty")
    assert "Geen passende initiatieven" in page.inner_text("p.resultaat-telling")


def test_search_page_filters_on_resolved_municipalities_and_provinces(settings, tmp_path, seed_rows):
    import re

    from pipeline.app.factory import create_app

    rows = [dict(seed_rows[0], id="bosch", gemeente="Den Bosch", gemeenten=[]),
            dict(seed_rows[1], id="diverse", gemeente="Diverse gemeenten", gemeenten=[]),
            dict(seed_rows[2], id="weesp", gemeente="Weesp", gemeenten=[])]
    group = {"group_id": "g-1", "naam": "idee", "members": ["bosch", "diverse"], "gemeenten": []}
    path = make_catalogue(tmp_path / "catalogue.sqlite", rows, [group])
    client = create_app(settings, db_path=path,
                        test_config={"TESTING": True, "SECRET_KEY": "t"}).test_client()

    def ids(**query):
        from html import unescape

        html = unescape(client.get("/zoeken", query_string=query).get_data(as_text=True))
        return re.findall(r'data-id="([^"]+)"', html), html

    for value in ("GM0796", "'s-Hertogenbosch", "Den Bosch"):
        assert ids(gemeente=value)[0] == ["bosch"], value
    assert ids(gemeente="Amsterdam")[0] == ["weesp"]          # an old name counts for its successor
    assert ids(provincie="Noord-Brabant")[0] == ["bosch"]
    assert sorted(ids(provincie="Noord-Holland")[0]) == ["weesp"]
    found, html = ids(q="")
    assert sorted(found) == ["bosch", "diverse", "weesp"]
    # the same idea comes from "Diverse gemeenten" only: no municipality to advertise
    assert re.findall(r'class="ook">([^<]*)<', html) == ["Hetzelfde idee ook in 1 andere gemeente: 's-Hertogenbosch"]
    options = re.findall(r'<option value="(GM\d{4})" ?(?:selected)?>([^<]+)</option>', html)
    assert options == [("GM0796", "'s-Hertogenbosch (1)"), ("GM0363", "Amsterdam (1)")]
    assert "Diverse" not in " ".join(name for _, name in options)
    response = client.get("/zoeken", query_string={"gemeente": "Nergensdorp"})
    assert response.status_code == 400 and "onbekende gemeente" in response.get_data(as_text=True)
