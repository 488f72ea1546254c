"""Issue 17, classes 3, 4, 5, 6, 7, 8, 10, 12 and 13: no input takes a page down, sessions end at
logout, the throttle counts every guess. Real app, real SQLite, real argon2."""

from __future__ import annotations

import http.client
import sqlite3
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from pipeline.app import factory
from pipeline.app.factory import create_app
from pipeline.app.report import build_report, render_charts
from pipeline.catalogue import export, schema, writes
from pipeline.core.config import load_taxonomy
from pipeline.core.records import Initiative

import test_review
from test_review import PASSWORD, csrf_from, item_form, login

# The review tests' fixtures: a real catalogue, the real app, a logged-in client.
app, catalogue, client, web_settings = (test_review.app, test_review.catalogue, test_review.client,
                                        test_review.web_settings)


def _save_form(client, initiative_id, **extra):
    form = item_form(client, initiative_id)
    html = client.get(f"/review/item/{initiative_id}").text
    data = {"csrf_token": csrf_from(html), "initiative_pk": form["initiative_pk"],
            "based_on": form.get("based_on", ""), "themes": ["eenzaamheid"],
            "doelgroepen": ["ouderen"], "kind": "initiative", "replicability": "4", "note": ""}
    data.update(extra)
    return data


# --- class 3: "$...$" in a municipality name ---------------------------------------------------


def test_class3_dollar_signs_in_labels_do_not_break_the_report_charts(settings):
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    records = [{"id": f"r{i}", "gemeente": gemeente, "gemeenten": [gemeente], "naam": None,
                "omschrijving": "Tekst", "themes": ["eenzaamheid"], "doelgroepen": ["ouderen"],
                "kind": "initiative", "replicability": 4, "replicability_reasons": [],
                "group_id": None, "labels_from": "model"}
               for i, gemeente in enumerate(["$\\frac{a$", "Ede", "$x^$"])]
    report = build_report(records, [], taxonomy, settings.report)
    charts = render_charts(report, settings.report)
    assert charts["gemeenten"].startswith("data:image/png")


# --- class 4: control characters in the xlsx export -------------------------------------------


def test_class4_control_characters_do_not_crash_the_xlsx_export(tmp_path):
    records = [{"Id": "a", "Omschrijving": "bel \u0007 en escape \u001b", "Rij zoals ontvangen": "\x00"}]
    out = tmp_path / "x.xlsx"
    export.write_export(records, out, "xlsx", columns=["Id", "Omschrijving", "Rij zoals ontvangen"],
                        sheet_name="Catalogus", csv_delimiter=";")
    assert out.stat().st_size > 0


# --- class 5: logout ends the session for every copy of the cookie ----------------------------


def test_class5_a_cookie_copied_before_logout_is_dead_after_it(app):
    first = app.test_client()
    assert login(first).status_code == 302
    cookie = first.get_cookie("session").value
    html = first.get("/review/").text
    first.post("/logout", data={"csrf_token": csrf_from(html)})
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/review/").status_code in (302, 401)


# --- class 6: simultaneous wrong guesses --------------------------------------------------------


def test_class6_simultaneous_guesses_are_all_counted(app, web_settings):
    limit = web_settings.serve.max_failed_logins
    results, barrier = [], threading.Barrier(12)

    def guess(password):
        c = app.test_client()
        token = csrf_from(c.get("/login").text)
        barrier.wait()
        results.append(c.post("/login", data={"name": "anna", "password": password,
                                              "csrf_token": token}).status_code)

    threads = [threading.Thread(target=guess, args=("fout-wachtwoord-1",)) for _ in range(11)]
    threads.append(threading.Thread(target=guess, args=(PASSWORD,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    checked = sum(1 for code in results if code in (302, 401))
    assert checked <= limit, results


# --- class 7: query length and the query cache ------------------------------------------------


def test_class7_a_long_query_is_refused_in_dutch(app, web_settings):
    limit = web_settings.search.max_query_chars
    response = app.test_client().get("/zoeken", query_string={"q": "a" * (limit * 300)})
    assert response.status_code == 400 and "te lang" in response.text


def test_class7_query_vectors_are_kept_in_a_bounded_memory_cache(settings, tmp_path):
    from pipeline.catalogue import search

    index = search.search_index_from_settings(
        [{"id": "a", "gemeente": "Ede", "omschrijving": "Vrijwilligers koken maaltijden"}], settings)
    encoder = index.ranker.query_encoder
    assert getattr(encoder, "size", None) == settings.search.query_cache_size
    small = search.BoundedQueryEncoder(encoder.encoder, size=3)
    for query in ("een", "twee", "drie", "vier", "vijf"):
        small.embed([query])
    assert len(small) == 3


# --- class 8: strict numbers ------------------------------------------------------------------


def test_class8_odd_numbers_give_400_not_500(client, catalogue):
    for value in ("\u00b2", "9" * 5000, "1e3"):
        assert client.get("/zoeken", query_string={"min_score": value}).status_code == 400
    initiative_id = catalogue[1]["ids"][0]
    data = _save_form(client, initiative_id, based_on=str(2**63 + 5))
    assert client.post(f"/review/item/{initiative_id}", data=data).status_code == 400
    data = _save_form(client, initiative_id, initiative_pk="\u00b2")
    assert client.post(f"/review/item/{initiative_id}", data=data).status_code == 400


# --- class 12: a catalogue that cannot be written ---------------------------------------------


def test_class12_a_failed_save_keeps_the_note_and_says_why(client, catalogue):
    initiative_id = catalogue[1]["ids"][0]
    data = _save_form(client, initiative_id, note="Mijn lange uitleg blijft bewaard")
    # SQLite answers the app's write with "database or disk is full" (a trigger stands in for the
    # full disk, which a test cannot make without mounting a file system).
    conn = sqlite3.connect(catalogue[0])
    conn.execute("CREATE TRIGGER vol BEFORE INSERT ON reviews BEGIN "
                 "SELECT RAISE(FAIL, 'database or disk is full'); END")
    conn.close()
    response = client.post(f"/review/item/{initiative_id}", data=data)
    assert response.status_code == 503
    assert "Mijn lange uitleg blijft bewaard" in response.text and "schijf" in response.text


def test_class12_a_read_only_catalogue_gives_a_dutch_503_not_a_traceback(web_settings, catalogue):
    ro = create_app(web_settings, db_path=catalogue[0], test_config={"TESTING": False,
                                                                      "SECRET_KEY": "x"})
    conn = sqlite3.connect(catalogue[0])
    conn.execute("CREATE TRIGGER ro BEFORE INSERT ON web_sessions BEGIN "
                 "SELECT RAISE(FAIL, 'attempt to write a readonly database'); END")
    conn.close()
    c = ro.test_client()
    token = csrf_from(c.get("/login").text)
    response = c.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 503 and "alleen-lezen" in response.text


# --- class 13: notes, caching, server header, report rebuilds ---------------------------------


def test_class13_a_huge_note_is_refused_and_kept_in_the_form(client, catalogue, web_settings):
    initiative_id = catalogue[1]["ids"][0]
    note = "n" * (web_settings.review.max_note_chars + 1)
    response = client.post(f"/review/item/{initiative_id}", data=_save_form(client, initiative_id, note=note))
    assert response.status_code == 400 and "te lang" in response.text
    big = "n" * (web_settings.serve.max_request_bytes + 1)
    response = client.post(f"/review/item/{initiative_id}", data=_save_form(client, initiative_id, note=big))
    assert response.status_code == 413


def test_class13_reviewer_pages_are_not_cached(client):
    assert client.get("/review/").headers.get("Cache-Control") == "no-store"


def test_class13_the_server_header_names_no_versions(app):
    # The handler `pipeline serve` uses.
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=getattr(factory, "QuietRequestHandler", WSGIRequestHandler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        conn.request("GET", "/favicon.ico")
        header = conn.getresponse().getheader("Server")
    finally:
        server.shutdown()
    assert "Werkzeug" not in header and "Python" not in header


def test_class13_the_report_is_not_rebuilt_after_every_save(client, catalogue):
    first = client.get("/rapport")
    assert first.status_code == 200
    report_cache = client.application.extensions["pipeline.report"]
    built = report_cache["report"]
    conn = schema.connect(catalogue[0])
    writes.store_submission(conn, file_name="n.jsonl", sha256="n", accepted=[
        Initiative(id="nieuw-1", gemeente="Ede", omschrijving="Nieuwe tekst")], rejected=[],
        predictions=[{"model_id": "m", "themes": [], "doelgroepen": [], "kind": "initiative",
                      "scores": {}, "replicability": 3, "replicability_score": 3.0,
                      "replicability_reasons": []}])
    conn.close()
    assert client.get("/rapport").status_code == 200
    assert report_cache["report"] is built
