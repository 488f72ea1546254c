"""The report: counts traceable to rows, examples spread over municipalities, the file and page."""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.cli.main import main
from pipeline.core.config import load_taxonomy
from pipeline.core.records import Initiative
from pipeline.app.report import build_report, pick_examples, render_report_html

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def record(id, gemeente, themes, doelgroepen, kind="initiative", replicability=4, naam=None,
           group_gemeenten=()):
    return {"id": id, "gemeente": gemeente, "naam": naam or f"Initiatief {id}",
            "omschrijving": f"Omschrijving van {id}.", "themes": list(themes),
            "doelgroepen": list(doelgroepen), "kind": kind, "replicability": replicability,
            "reasons": [{"reden": f"reden {id}", "richting": "+", "bewijs": None}],
            "group_id": None, "group_gemeenten": list(group_gemeenten)}


# Seven rows from four municipalities: Almere three times, Breda twice, Delft and Ede once.
ROWS = [
    record("r1", "Almere", ["eenzaamheid"], ["ouderen"], replicability=5),
    record("r2", "Almere", ["eenzaamheid", "vrijwillige_inzet"], ["ouderen", "alle_inwoners"],
           replicability=5, group_gemeenten=["Breda"]),
    record("r3", "Almere", ["schulden"], ["financieel_kwetsbaar"], kind="signal", replicability=1),
    record("r4", "Breda", ["eenzaamheid"], ["alle_inwoners"], replicability=4),
    record("r5", "Breda", ["schulden"], ["financieel_kwetsbaar", "gezinnen"], replicability=2),
    record("r6", "Delft", ["eenzaamheid"], ["ouderen"], replicability=3),
    record("r7", "Ede", ["werk_inkomen", "schulden"], ["ondernemers"], kind="signal", replicability=1),
]
GROUPS = [
    {"id": "g-a", "label": "Bellen met ouderen", "members": ["r2", "r4"]},
    {"id": "g-b", "label": "Schulden", "members": ["r3", "r5", "gone"]},   # "gone": not published
]


@pytest.fixture(scope="module")
def taxonomy(settings):
    return load_taxonomy(settings.paths.taxonomy)


@pytest.fixture(scope="module")
def report(settings, taxonomy):
    return build_report(ROWS, GROUPS, taxonomy, settings.report,
                        now=datetime(2026, 11, 23, tzinfo=timezone.utc))


def by_key(counts):
    return {c.key: sorted(c.ids) for c in counts}


def test_headline_counts(report):
    assert report.total.n == 7 and report.n_gemeenten == 4
    assert sorted(report.initiatives.ids) == ["r1", "r2", "r4", "r5", "r6"]
    assert sorted(report.signals.ids) == ["r3", "r7"]


def test_municipalities_most_first_and_those_heard_once(report):
    assert [(c.label, c.n) for c in report.gemeenten] == [("Almere", 3), ("Breda", 2), ("Delft", 1),
                                                          ("Ede", 1)]
    assert [c.label for c in report.gemeenten_once] == ["Delft", "Ede"]


def test_counts_per_theme_target_group_and_combination_list_their_rows(report, taxonomy):
    themes = by_key(report.themes)
    assert themes["eenzaamheid"] == ["r1", "r2", "r4", "r6"]
    assert themes["schulden"] == ["r3", "r5", "r7"]
    assert themes["onderwijs"] == []
    assert set(themes) == set(taxonomy.ids("themes"))
    assert by_key(report.doelgroepen)["ouderen"] == ["r1", "r2", "r6"]
    cells = {cell.key: sorted(cell.ids) for row in report.heatmap for cell in row}
    assert cells["eenzaamheid|ouderen"] == ["r1", "r2", "r6"]
    assert cells["schulden|financieel_kwetsbaar"] == ["r3", "r5"]
    assert sum(len(ids) for ids in cells.values()) == 12   # every (theme, group) pair of every row


def test_examples_are_easy_initiatives_at_most_one_per_municipality(report):
    examples = {count.key: [r["id"] for r in chosen] for count, chosen in report.examples}
    # r1 and r2 are both Almere 5s: the one also found elsewhere (r2, Breda) wins; r4 (Breda, 4)
    # follows; r6 (3) is not easy enough.
    assert examples["eenzaamheid"] == ["r2", "r4"]
    assert examples["schulden"] == []     # r5 scores 2, r3/r7 are signals


def test_pick_examples_shows_one_row_per_same_idea_group():
    rows = [dict(r, group_id="g") if r["id"] in ("r2", "r4") else r for r in ROWS]
    chosen = pick_examples(rows, "eenzaamheid", min_replicability=4, per_theme=5, per_gemeente=1)
    assert [r["id"] for r in chosen] == ["r2"]       # r4 is the same idea; r1 is Almere again


@pytest.mark.parametrize("per_gemeente, per_theme, expected", [
    (1, 5, ["r2", "r4"]),
    (2, 5, ["r2", "r1", "r4"]),
    (2, 1, ["r2"]),
])
def test_pick_examples_limits(per_gemeente, per_theme, expected):
    chosen = pick_examples(ROWS, "eenzaamheid", min_replicability=4, per_theme=per_theme,
                           per_gemeente=per_gemeente)
    assert [r["id"] for r in chosen] == expected


def test_pick_examples_counts_a_joint_submission_for_each_of_its_places():
    joint = dict(record("j", "Almere en Zwolle", ["eenzaamheid"], ["ouderen"], replicability=5),
                 gemeenten=["Almere", "Zwolle"])
    zwolle = record("z", "Zwolle", ["eenzaamheid"], ["ouderen"], replicability=4)
    chosen = pick_examples([joint, zwolle], "eenzaamheid", min_replicability=4, per_theme=5,
                           per_gemeente=1)
    assert [r["id"] for r in chosen] == ["j"]     # Zwolle already has its one example


def test_ideas_count_distinct_published_municipalities(report):
    assert [(i["id"], i["gemeenten"]) for i in report.ideas] == [("g-a", ["Almere", "Breda"]),
                                                                ("g-b", ["Almere", "Breda"])]
    assert sorted(report.ideas[1]["count"].ids) == ["r3", "r5"]


def test_ideas_are_listed_under_their_main_theme_with_what_they_do(taxonomy, settings, report):
    by_theme = {count.key: [i["id"] for i in found] for count, found in report.ideas_by_theme}
    assert by_theme == {"eenzaamheid": ["g-a"], "schulden": ["g-b"]}
    # The member that names most of the five elements stands for the idea, its *wat* is the line.
    rich = dict(record("x1", "Zwolle", ["schulden"], ["gezinnen"]),
                omschrijving="Wij bieden gezinnen gratis budgetcoaching. Vrijwilligers van de "
                             "voedselbank bellen wekelijks, samen met de wijkteams.")
    poor = record("x2", "Delft", ["schulden"], ["gezinnen"])
    ideas = build_report([poor, rich], [{"id": "g", "members": ["x1", "x2"]}], taxonomy,
                         settings.report).ideas_by_theme
    (count, (idea,)), = ideas
    assert count.key == "schulden" and idea["shown"] == "x1"
    assert idea["wat"] in rich["omschrijving"] and idea["wat"].startswith("Wij bieden gezinnen")
    # Two rows of one municipality are no idea "found in places".
    local = build_report([poor, dict(rich, gemeente="Delft")], [{"id": "g", "members": ["x1", "x2"]}],
                         taxonomy, settings.report)
    assert local.ideas_by_theme == []


def test_the_report_page_links_each_idea_to_a_fact_sheet(app):
    html = app.test_client().get("/rapport").get_data(as_text=True)
    section = html[html.index('id="ideeen"'):html.index('id="signalen"')]
    assert re.search(r'data-idee="g-a" data-thema="eenzaamheid"><a href="/initiatief/r[24]"', section)


def test_signals_grouped_by_theme(report):
    signals = {count.key: sorted(count.ids) for count, _ in report.signals_by_theme}
    assert signals == {"schulden": ["r3", "r7"], "werk_inkomen": ["r7"]}


def html_of(report, taxonomy, settings):
    report = dataclasses.replace(report, charts={})
    return render_report_html(report, taxonomy, settings.report)


def test_html_shows_the_counts_and_links_every_id_to_the_appendix(report, taxonomy, settings):
    html = html_of(report, taxonomy, settings)
    assert re.search(r'data-telling="totaal">7<', html)
    assert re.search(r'data-telling="gemeenten">4<', html)
    assert re.search(r'data-telling="eenmalig">2<', html)
    assert re.search(r'data-thema="eenzaamheid">4<', html)
    assert re.search(r'data-combinatie="eenzaamheid\|ouderen">3<', html)
    anchors = set(re.findall(r'id="rij-([^"]+)"', html))
    assert anchors == {r["id"] for r in ROWS}
    assert set(re.findall(r'href="#rij-([^"]+)"', html)) <= anchors
    assert "@media print" in html and '<html lang="nl">' in html


def test_charts_are_png_inside_the_file(report, taxonomy, settings):
    html = html_of(report, taxonomy, settings)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 5  # themes, target groups, heatmap, municipalities, provinces
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert "http://" not in html and "https://" not in html   # nothing to fetch: mailable


def test_a_joint_submission_counts_for_each_of_its_places(settings, taxonomy):
    joint = dict(record("j", "Almere, Breda, Zwolle en ...", ["eenzaamheid"], ["ouderen"]),
                 gemeenten=["Almere", "Breda", "Zwolle"])
    report = build_report(ROWS + [joint], [{"id": "g", "members": ["j", "r6"]}], taxonomy,
                          settings.report)
    places = by_key(report.gemeenten)
    assert "Almere, Breda, Zwolle en ..." not in places
    assert places["Almere"] == ["j", "r1", "r2", "r3"]
    assert places["Zwolle"] == ["j"]
    assert report.n_gemeenten == 5
    assert report.ideas[0]["gemeenten"] == ["Almere", "Breda", "Delft", "Zwolle"]
    assert report.joint.ids == ["j"]
    html = html_of(report, taxonomy, settings)
    assert re.search(r'data-gemeente="Zwolle">1<', html)
    assert "1 inzending is van meer gemeenten samen" in html
    # Almere (4 rows) and Breda (3): the joint row is one of the 8 submissions, counted once.
    config = dataclasses.replace(settings.report, summary_top=2)
    html = render_report_html(dataclasses.replace(report, charts={}), taxonomy, config)
    assert "De 2 gemeenten met de meeste inzendingen leveren er 6 van de 8" in html


def test_examples_say_minimum_score_or_higher(report, taxonomy, settings):
    html = html_of(report, taxonomy, settings)
    minimum = settings.report.example_min_replicability
    assert f"overdraagbaarheid {minimum} of hoger," in html
    assert f"{minimum} of 5" not in html


def test_summary_names_as_many_top_themes_as_configured(report, taxonomy, settings):
    config = dataclasses.replace(settings.report, summary_top=1)
    html = render_report_html(dataclasses.replace(report, charts={}), taxonomy, config)
    line = re.search(r"Meest genoemde thema's: (.*?)</li>", html).group(1)
    assert line.count("<a ") == 1 and "eenzaamheid" in line
    assert "De 1 gemeenten met de meeste inzendingen leveren er 3 van de 7" in html


def test_text_from_municipalities_is_escaped(settings, taxonomy):
    rows = [record("x", "Ede", ["schulden"], ["gezinnen"], kind="signal",
                   naam="<script>alert(1)</script>")]
    report = build_report(rows, [], taxonomy, settings.report)
    html = html_of(report, taxonomy, settings)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_without_any_replicability_score_the_examples_section_says_why(settings, taxonomy):
    rows = [dict(r, replicability=None) for r in ROWS]
    html = html_of(build_report(rows, [], taxonomy, settings.report), taxonomy, settings)
    assert "nog geen overdraagbaarheidsscores" in html and "data-voorbeeld" not in html


def test_empty_catalogue_says_so(settings, taxonomy):
    html = html_of(build_report([], [], taxonomy, settings.report), taxonomy, settings)
    assert "nog geen gepubliceerde initiatieven" in html


# --- from a real catalogue file: command and page -------------------------------------------------


@pytest.fixture
def catalogue(tmp_path):
    conn = schema.connect(tmp_path / "catalogue.sqlite")
    accepted = [Initiative(id=r["id"], gemeente=r["gemeente"], omschrijving=r["omschrijving"],
                           naam=r["naam"]) for r in ROWS]
    predictions = [{"model_id": "m", "themes": r["themes"], "doelgroepen": r["doelgroepen"],
                    "kind": r["kind"], "scores": {}, "replicability": r["replicability"],
                    "replicability_score": float(r["replicability"]),
                    "replicability_reasons": r["reasons"]} for r in ROWS]
    writes.store_submission(conn, file_name="f.jsonl", sha256="h", accepted=accepted, rejected=[],
                           predictions=predictions)
    writes.replace_groups(conn, [{"group_id": g["id"], "naam": g["label"], "members": g["members"],
                                 "gemeenten": []} for g in GROUPS])
    conn.close()
    return tmp_path / "catalogue.sqlite"


def test_report_command_writes_one_mailable_file(settings, catalogue, tmp_path):
    out = tmp_path / "uit" / "rapport.html"
    result = CliRunner().invoke(main, ["report", "--out", str(out), "--db", str(catalogue)],
                                obj={"settings": settings})
    assert result.exit_code == 0, result.output
    assert "7 inzendingen uit 4 gemeenten" in result.output
    html = out.read_text(encoding="utf-8")
    assert re.search(r'data-telling="signalen">2<', html)
    assert "ook in Breda" in html    # the group, read back from the catalogue


def test_report_command_without_catalogue_fails_cleanly(settings, tmp_path):
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "r.html"),
                                       "--db", str(tmp_path / "none.sqlite")],
                                obj={"settings": settings})
    assert result.exit_code == 1
    assert "catalogus niet gevonden" in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.fixture
def app(settings, catalogue):
    from pipeline.app.factory import create_app

    return create_app(settings, db_path=catalogue, test_config={"TESTING": True, "SECRET_KEY": "t"})


def test_report_page_and_download_are_public(app):
    client = app.test_client()
    page = client.get("/rapport")
    assert page.status_code == 200
    assert re.search(r'data-telling="totaal">7<', page.get_data(as_text=True))
    download = client.get("/rapport/download")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.get_data(as_text=True).startswith("<!doctype html>")


def test_report_page_offers_the_catalogue_as_an_excel_sheet(app):
    import io

    from openpyxl import load_workbook

    client = app.test_client()
    page = client.get("/rapport").get_data(as_text=True)
    assert 'href="/rapport/catalogus.xlsx"' in page
    download = client.get("/rapport/catalogus.xlsx")
    assert download.status_code == 200
    assert 'filename="catalogus.xlsx"' in download.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(download.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[:3] == ("Id", "Naam", "Gemeente")
    assert sorted(r[0] for r in rows[1:]) == sorted(r["id"] for r in ROWS)
    assert client.get("/rapport/catalogus.xlsx").data == download.data   # cached, same bytes


def test_report_time_is_local_time_as_on_the_web_pages(taxonomy, settings):
    from datetime import datetime, timezone

    from pipeline.app.report import build_report

    winter = datetime(2026, 12, 3, 7, 0, tzinfo=timezone.utc)
    summer = datetime(2026, 7, 3, 7, 0, tzinfo=timezone.utc)
    local = build_report([], [], taxonomy, settings.report, now=winter, display_timezone="Europe/Amsterdam")
    assert local.generated_at == "03-12-2026 08:00"
    assert build_report([], [], taxonomy, settings.report, now=summer,
                        display_timezone="Europe/Amsterdam").generated_at == "03-07-2026 09:00"
    assert build_report([], [], taxonomy, settings.report, now=winter).generated_at == "03-12-2026 07:00 UTC"


@pytest.mark.browser
def test_report_page_renders_in_chromium(app):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium missing at /usr/bin/chromium (make browser)")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            refused = []   # what the page's Content-Security-Policy blocked
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.goto(f"http://127.0.0.1:{server.server_port}/rapport")
            assert page.locator("[data-telling=totaal]").inner_text() == "7"
            widths = page.eval_on_selector_all("img.grafiek", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 5 and min(widths) > 0
            # A count's rows open and link to the appendix.
            page.locator("#thema-eenzaamheid summary").click()
            page.locator('#thema-eenzaamheid a[href="#rij-r4"]').click()
            assert page.url.endswith("#rij-r4")
            page.emulate_media(media="print")
            assert page.locator("header.site").is_hidden()
            page.pdf()   # printing opens every list of ids: on paper nothing can be clicked
            assert page.locator(".rapport details:not([open])").count() == 0
            assert refused == []
            browser.close()
    finally:
        server.shutdown()
        thread.join()


def test_regions_and_diverse_gemeenten_are_no_municipalities_and_coverage_counts_provinces(settings, taxonomy):
    rows = ROWS + [
        record("x1", "Diverse gemeenten", ["schulden"], ["financieel_kwetsbaar"]),
        record("x2", "Breda (regio)", ["schulden"], ["financieel_kwetsbaar"]),
        record("x3", "Den Bosch", ["schulden"], ["financieel_kwetsbaar"]),
        record("x4", "'s-Hertogenbosch", ["schulden"], ["financieel_kwetsbaar"]),
    ]
    report = build_report(rows, GROUPS, taxonomy, settings.report)
    assert report.n_gemeenten == 5           # Almere, Breda, Delft, Ede, 's-Hertogenbosch
    assert "Diverse gemeenten" not in {c.label for c in report.gemeenten}
    assert by_key(report.gemeenten)["'s-Hertogenbosch"] == ["x3", "x4"]
    coverage = report.coverage
    assert (coverage.n_heard, coverage.n_municipalities) == (5, 342)
    assert (coverage.n_provinces_heard, coverage.n_provinces) == (4, 12)
    brabant = next(p for p in coverage.provinces if p.provincie == "Noord-Brabant")
    assert (brabant.n_heard, brabant.total) == (2, 56)
    assert sorted(coverage.unplaced.ids) == ["x1", "x2"]
    assert {c.label for c in coverage.not_municipalities} == {"Diverse gemeenten", "Breda (regio)"}
    assert coverage.size_classes is None
    html = html_of(report, taxonomy, settings)
    assert re.search(r'data-telling="gemeenten">5<', html)
    assert re.search(r'data-dekking="gemeenten">5</strong> van de 342', html)
    assert re.search(r'data-provincie="Noord-Brabant">2<', html)
    assert "geen inwonertallen" in html


# --- the easy examples: once, under the main theme, leading with what makes them easy -----------


def _reason(text, direction, bewijs=None):
    return {"reden": text, "richting": direction, "bewijs": bewijs}


def test_an_example_appears_once_under_its_main_theme(settings, taxonomy):
    # m1 is scored highest for vrijwillige_inzet although eenzaamheid is listed first.
    m1 = dict(record("m1", "Almere", ["eenzaamheid", "vrijwillige_inzet"], ["ouderen"], replicability=5),
              label_scores={"themes": {"eenzaamheid": 0.6, "vrijwillige_inzet": 0.9}})
    m2 = record("m2", "Breda", ["eenzaamheid", "digitaal"], ["ouderen"], replicability=4)
    report = build_report([m1, m2], [], taxonomy, settings.report)
    shown = [(count.key, r["id"]) for count, chosen in report.examples for r in chosen]
    assert sorted(shown) == [("eenzaamheid", "m2"), ("vrijwillige_inzet", "m1")]


def test_a_same_idea_group_gives_one_example_in_the_whole_report(settings, taxonomy):
    a = dict(record("a", "Almere", ["eenzaamheid"], ["ouderen"], replicability=5), group_id="g")
    b = dict(record("b", "Breda", ["digitaal"], ["ouderen"], replicability=5), group_id="g")
    report = build_report([a, b], [], taxonomy, settings.report)
    assert [r["id"] for _, chosen in report.examples for r in chosen] == ["a"]


def test_an_example_never_leads_with_a_negative_reason(settings, taxonomy):
    costs = dict(record("neg", "Almere", ["eenzaamheid"], ["ouderen"], replicability=5),
                 reasons=[_reason("Zegt niets over de kosten.", "-"),
                          _reason("Draait op vrijwilligers.", "+", "vrijwilligers")])
    none = dict(record("leeg", "Breda", ["eenzaamheid"], ["ouderen"], replicability=5), reasons=[])
    reviewed = dict(record("rev", "Delft", ["eenzaamheid"], ["ouderen"], replicability=4),
                    reasons=["De beoordelaar: draait op de buurt."], review_status="review")
    reviewed["reasons"] = [{"reden": "De beoordelaar: draait op de buurt.", "richting": "", "bewijs": None}]
    report = build_report([costs, none, reviewed], [], taxonomy, settings.report)
    shown = [r["id"] for _, chosen in report.examples for r in chosen]
    assert shown == ["rev"]  # a reviewer's score stands on its own


def test_an_example_shows_its_positive_reasons_first(settings, taxonomy):
    mixed = dict(record("mix", "Almere", ["eenzaamheid"], ["ouderen"], replicability=4),
                 reasons=[_reason("Draait op vrijwilligers.", "+", "vrijwilligers"),
                          _reason("Vraagt een eigen budget.", "-", "budget"),
                          _reason("Bouwt op de bibliotheek.", "+", "bibliotheek")])
    report = build_report([mixed], [], taxonomy, settings.report)
    html = html_of(report, taxonomy, settings)
    block = re.search(r'<div class="voorbeeld" data-voorbeeld="eenzaamheid" data-id="mix">(.*?)</div>\s*\n\s*(?:<details|<h3)',
                      html, re.DOTALL).group(1)
    order = [block.index(t) for t in ("Draait op vrijwilligers", "Bouwt op de bibliotheek", "Vraagt een eigen budget")]
    assert order == sorted(order)


def test_examples_link_to_the_page_on_the_web_and_to_the_appendix_in_the_file(app, catalogue, settings):
    page = app.test_client().get("/rapport").get_data(as_text=True)
    example = re.search(r'data-voorbeeld="eenzaamheid" data-id="r2">\s*<a href="([^"]+)"', page).group(1)
    assert example == "/initiatief/r2"
    assert app.test_client().get(example).status_code == 200
    assert '<td><a href="/initiatief/r4">r4</a></td>' in page  # the appendix too
    download = app.test_client().get("/rapport/download").get_data(as_text=True)
    assert re.search(r'data-voorbeeld="eenzaamheid" data-id="r2">\s*<a href="#rij-r2"', download)


def test_an_example_shows_what_it_does(settings, taxonomy):
    text = "Buurtbewoners brengen wekelijks gratis maaltijden rond bij ouderen, samen met de voedselbank."
    row = dict(record("w", "Almere", ["eenzaamheid"], ["ouderen"], replicability=5), omschrijving=text)
    report = build_report([row], [], taxonomy, settings.report)
    assert report.example_facts["w"]["wat"] == [text[:-1]]
    assert report.example_facts["w"]["hoe"]
    html = html_of(report, taxonomy, settings)
    assert '<div class="feit" data-feit="wat"><span class="feit-label">Wat:</span> “Buurtbewoners brengen' in html
    assert 'data-feit="hoe"' in html


REQUEST_WORDS = ["rijk", "zou", "nodig"]


def test_a_signal_is_quoted_in_whole_sentences_with_its_ask_first():
    from pipeline.app.report import signal_quote

    text = ("De gezinnen ervaren rust. Scholen zijn dicht, bijv. in de wijk Noord. "
            "Het Rijk zou meer budget moeten geven voor schuldhulp. Dat is alles.")
    quote = signal_quote(text, REQUEST_WORDS, 60)
    assert quote == "… Het Rijk zou meer budget moeten geven voor schuldhulp. …"
    # With room, the neighbouring sentences come along, in text order, whole.
    assert signal_quote(text, REQUEST_WORDS, 200) == text
    assert signal_quote(text, REQUEST_WORDS, 110) == (
        "… Scholen zijn dicht, bijv. in de wijk Noord. Het Rijk zou meer budget moeten geven "
        "voor schuldhulp. …")


def test_a_signal_without_an_ask_word_starts_at_its_beginning_and_items_after_a_colon_count():
    from pipeline.app.report import signal_quote

    assert signal_quote("Geintegreerd in de pijlers Sociaal en Fysiek", REQUEST_WORDS, 80) == \
        "Geintegreerd in de pijlers Sociaal en Fysiek"
    listed = "Wij merken veel. Wat nodig is:\n• Minder regels\n• Eén loket"
    assert signal_quote(listed, REQUEST_WORDS, 30) == "… Wat nodig is: Minder regels …"
    assert signal_quote("", REQUEST_WORDS, 80) == ""
    long_one = "Het rijk " + "moet echt veel meer doen " * 20
    assert len(signal_quote(long_one, REQUEST_WORDS, 50)) <= 100
