"""Review in the browser: the pure core, the review storage, the Flask app (test client), the CLI.

The catalogue is a real SQLite file in tmp_path filled through pipeline.catalogue; the app is the real
`create_app`; passwords go through real argon2. `build_catalogue` is shared with the browser tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.app import review_views
from pipeline.catalogue import accounts
from pipeline.catalogue import queue
from pipeline.catalogue import reviews
from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.cli.main import main
from pipeline.core.config import load_taxonomy
from pipeline.core.records import Initiative, write_jsonl
from pipeline.app.factory import create_app

PASSWORD = "correct-paard-batterij"
XSS_TEXT = (
    '<script>window.__xss = 1; document.title = "gehackt"</script>'
    '<img src=x onerror="window.__xss = 2"> Buurtbewoners bellen wekelijks met eenzame ouderen.'
)

# A municipality's links as sent: only the http(s) one may become clickable.
SENDER_URLS = ("https://testdorp.example/belcirkel", "javascript:window.__xss = 3",
               " JavaScript:window.__xss = 4", "data:text/html,<script>alert(1)</script>")


def _prediction(themes, doelgroepen, *, scores, kind="initiative", p_signal=0.1, score=4,
                reasons=()):
    return {
        "model_id": "test-model",
        "themes": themes,
        "doelgroepen": doelgroepen,
        "kind": kind,
        "scores": {"themes": scores.get("themes", {}), "doelgroepen": scores.get("doelgroepen", {}),
                   "kind": p_signal},
        "replicability": score,
        "replicability_score": float(score),
        "replicability_reasons": list(reasons),
    }


def build_catalogue(path: Path, corpus_rows) -> dict:
    """A catalogue with three corpus rows (their embeddings are cached), one row whose text is
    HTML/script, predictions with known certainties, and two reviewers. Returns facts for asserts."""
    rows = corpus_rows[:3]
    initiatives = [
        Initiative(id=r["id"], gemeente=r["gemeente"], omschrijving=r["omschrijving"], naam=r.get("naam"))
        for r in rows
    ]
    initiatives.append(
        Initiative(id="xss-1", gemeente="Testdorp", omschrijving=XSS_TEXT, naam="<b>Belcirkel</b>",
                   urls=SENDER_URLS)
    )
    evidence = "bellen wekelijks"
    predictions = [
        # certainty 0.4: only chosen labels scored (0.8 / 2), kind 0.45
        _prediction(["voedsel_basis"], ["dak_thuislozen"],
                    scores={"themes": {"voedsel_basis": 0.8}, "doelgroepen": {"dak_thuislozen": 0.9}},
                    p_signal=0.05),
        # certainty 0.02: chosen 0.52 against left-out 0.48; the least sure row, first in the queue
        _prediction(["eenzaamheid"], ["alle_inwoners"],
                    scores={"themes": {"eenzaamheid": 0.52, "vrijwillige_inzet": 0.48},
                            "doelgroepen": {"alle_inwoners": 0.7}}, p_signal=0.1),
        # certainty 0.2 through the kind score (|0.7 - 0.5|)
        _prediction(["schulden"], ["financieel_kwetsbaar"], kind="signal", p_signal=0.7, score=1,
                    scores={"themes": {"schulden": 0.95}, "doelgroepen": {"financieel_kwetsbaar": 0.9}}),
        # certainty 0.1: chosen 0.6 against left-out 0.4
        _prediction(["eenzaamheid"], ["ouderen"],
                    scores={"themes": {"eenzaamheid": 0.6, "digitaal": 0.4}, "doelgroepen": {"ouderen": 0.85}},
                    p_signal=0.02,
                    reasons=[{"reden": "Vrijwilligers kunnen dit meteen doen", "richting": "+",
                              "bewijs": evidence}]),
    ]
    conn = schema.connect(path)
    try:
        writes.store_submission(conn, file_name="test.jsonl", sha256="test-sha", accepted=initiatives,
                               rejected=[], predictions=predictions)
        for name in ("anna", "bram"):
            accounts.add_reviewer(conn, name, PASSWORD, min_password_chars=12)
    finally:
        conn.close()
    return {
        "ids": [i.id for i in initiatives],
        "queue_order": [rows[1]["id"], "xss-1", rows[2]["id"], rows[0]["id"]],
        "evidence": evidence,
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def taxonomy(settings):
    return load_taxonomy(settings.paths.taxonomy)


@pytest.fixture
def catalogue(tmp_path, corpus_rows):
    path = tmp_path / "catalogue.sqlite"
    facts = build_catalogue(path, corpus_rows)
    return path, facts


@pytest.fixture
def conn(catalogue):
    connection = schema.connect(catalogue[0])
    yield connection
    connection.close()


@pytest.fixture
def web_settings(settings, tmp_path):
    serve = dataclasses.replace(settings.serve, secret_key_file=tmp_path / "secret")
    return dataclasses.replace(settings, serve=serve)


@pytest.fixture
def app(web_settings, catalogue):
    return create_app(web_settings, db_path=catalogue[0], test_config={"TESTING": True})


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client, name="anna", password=PASSWORD):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


@pytest.fixture
def client(app):
    test_client = app.test_client()
    assert login(test_client).status_code == 302
    return test_client


def item_form(client, initiative_id) -> dict:
    """The hidden fields of an item page's review form."""
    html = client.get(f"/review/item/{initiative_id}").text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    return fields


# --------------------------------------------------------------------------- pure core


def test_certainty_is_the_smallest_margin_over_fields_and_kind():
    prediction = {
        "themes": ["a", "b"], "doelgroepen": ["x"],
        "scores": {"themes": {"a": 0.9, "b": 0.35, "c": 0.3}, "doelgroepen": {"x": 0.8, "y": 0.2},
                   "kind": 0.2},
    }
    # themes: weakest chosen 0.35, strongest left out 0.3 -> 0.025; doelgroepen 0.3; kind 0.3
    assert queue.certainty(prediction, 0.5) == pytest.approx(0.025)
    unsure_kind = {"themes": ["a"], "scores": {"themes": {"a": 0.99, "b": 0.01}, "kind": 0.52}}
    assert queue.certainty(unsure_kind, 0.5) == pytest.approx(0.02)
    assert queue.certainty({}, 0.5) == float("inf")


@pytest.mark.parametrize(
    "latest, expected",
    [
        ([], "nieuw"),
        ([{"themes": ["a"], "doelgroepen": ["x"], "kind": "initiative", "replicability": 3}], "beoordeeld"),
        ([{"themes": ["a", "b"], "doelgroepen": ["x"], "kind": "initiative", "replicability": 3},
          {"themes": ["b", "a"], "doelgroepen": ["x"], "kind": "initiative", "replicability": 3}], "beoordeeld"),
        ([{"themes": ["a"], "doelgroepen": ["x"], "kind": "initiative", "replicability": 3},
          {"themes": ["a"], "doelgroepen": ["x"], "kind": "initiative", "replicability": 4}], "betwist"),
    ],
)
def test_review_status(latest, expected):
    assert reviews.review_status(latest) == expected


def test_highlight_escapes_the_text_and_marks_evidence():
    text = 'Wij <script>x()</script> bellen "ouderen" & buren'
    html = review_views.highlight(text, ['"ouderen" & buren', None, "niet in de tekst"])
    assert "<script>" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert html.endswith("<mark>&#34;ouderen&#34; &amp; buren</mark>")


def test_highlight_merges_overlapping_evidence():
    html = review_views.highlight("abcdef", ["bcd", "cde"])
    assert str(html) == "a<mark>bcde</mark>f"


@pytest.mark.parametrize(
    "labels, message",
    [
        ({"themes": ["geen_thema"], "doelgroepen": ["ouderen"], "kind": "initiative", "replicability": 3},
         "onbekende thema: geen_thema"),
        ({"themes": [], "doelgroepen": ["ouderen"], "kind": "initiative", "replicability": 3},
         "minstens één thema"),
        ({"themes": ["schulden"], "doelgroepen": [], "kind": "initiative", "replicability": 3},
         "minstens één doelgroep"),
        ({"themes": ["schulden"], "doelgroepen": ["ouderen"], "kind": "wens", "replicability": 3},
         "soort"),
        ({"themes": ["schulden"], "doelgroepen": ["ouderen"], "kind": "signal", "replicability": 9},
         "1 tot en met 5"),
        ({"themes": ["schulden"], "doelgroepen": ["ouderen"], "kind": "signal", "replicability": ""},
         "1 tot en met 5"),
    ],
)
def test_validate_labels_names_what_is_wrong(taxonomy, labels, message):
    with pytest.raises(accounts.ReviewError, match=message):
        reviews.validate_labels(labels, taxonomy)


def test_validate_labels_takes_the_score_scale_from_the_taxonomy(taxonomy):
    labels = {"themes": ["schulden"], "doelgroepen": ["ouderen"], "kind": "signal"}
    three = dataclasses.replace(taxonomy, replicability={1: "a", 2: "b", 3: "c"})
    with pytest.raises(accounts.ReviewError, match="van 1 tot en met 3"):
        reviews.validate_labels({**labels, "replicability": 4}, three)
    assert reviews.validate_labels({**labels, "replicability": "3"}, three)["replicability"] == 3
    assert reviews.score_scale(taxonomy) == [1, 2, 3, 4, 5]


# --------------------------------------------------------------------------- storage


def test_passwords_are_stored_as_argon2_hashes_and_checked(conn):
    stored = conn.execute("SELECT password_hash FROM reviewers WHERE name = 'anna'").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.check_password(conn, "anna", PASSWORD)
    assert not accounts.check_password(conn, "anna", PASSWORD + "x")
    assert not accounts.check_password(conn, "niemand", PASSWORD)


@pytest.mark.parametrize(
    "name, password, message",
    [("anna", "nog-een-lang-wachtwoord", "bestaat al"), ("carla", "kort", "te kort"), ("  ", PASSWORD, "leeg")],
)
def test_add_reviewer_refuses(conn, name, password, message):
    with pytest.raises(accounts.ReviewError, match=message):
        accounts.add_reviewer(conn, name, password, min_password_chars=12)


LABELS_A = {"themes": ["eenzaamheid"], "doelgroepen": ["ouderen"], "kind": "initiative", "replicability": 5}
LABELS_B = {"themes": ["eenzaamheid", "digitaal"], "doelgroepen": ["ouderen"], "kind": "initiative",
            "replicability": 4}


def _pk(conn, initiative_id):
    return conn.execute("SELECT pk FROM current_initiatives WHERE id = ?", (initiative_id,)).fetchone()[0]


def test_every_save_is_a_new_row_and_a_stale_save_is_kept_as_conflict(conn):
    pk = _pk(conn, "xss-1")
    first = reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_A,
                               based_on=None, note="eerste")
    assert not first.conflict
    # bram opened the form before anna saved: his form is based on the model (None)
    second = reviews.save_review(conn, initiative_pk=pk, reviewer="bram", labels=LABELS_B,
                                based_on=None, note="tweede")
    assert second.conflict and second.in_force["reviewer"] == "anna"
    # anna corrects her own save: based on the review in force, no conflict
    third = reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_B,
                               based_on=first.review_pk, note=None)
    assert not third.conflict and third.in_force["pk"] == third.review_pk
    rows = conn.execute("SELECT reviewer_pk, conflict, note, before FROM reviews ORDER BY pk").fetchall()
    assert [(r["conflict"], r["note"]) for r in rows] == [(0, "eerste"), (1, "tweede"), (0, None)]
    # "what it was" comes from the server: the model's labels, then the review the form showed
    model = {"themes": ["eenzaamheid"], "doelgroepen": ["ouderen"], "kind": "initiative", "replicability": 4}
    assert [json.loads(r["before"]) for r in rows] == [model, model, reviews.labels_of(LABELS_A)]
    # the catalogue (what search and export show) takes the labels in force, never the conflict
    record = next(r for r in readmodel.catalogue(conn) if r["id"] == "xss-1")
    assert record["themes"] == LABELS_B["themes"] and record["review"]["reviewer"] == "anna"


def test_a_save_on_an_unknown_initiative_names_no_version(conn):
    with pytest.raises(accounts.ReviewError, match=r"onbekende initiatiefversie \(intern nummer 999\)"):
        reviews.save_review(conn, initiative_pk=999, reviewer="anna", labels=LABELS_A, based_on=None,
                           note=None)


def test_export_reviewed_rows_in_seed_format_train_can_read(conn, tmp_path, taxonomy, settings):
    from pipeline.training.data import load_labelled

    pk = _pk(conn, "xss-1")
    reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_A,
                       based_on=None, note="Eenvoudig met vrijwilligers.")
    reviews.save_review(conn, initiative_pk=pk, reviewer="bram", labels=LABELS_B,
                       based_on=None, note="conflict, niet in force")
    rows = reviews.export_reviewed(conn)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == "xss-1" and row["omschrijving"] == XSS_TEXT and row["source"] == "review"
    assert (row["themes"], row["replicability"], row["reason"]) == (
        ["eenzaamheid"], 5, "Eenvoudig met vrijwilligers.")
    folder = tmp_path / "labelled"
    write_jsonl(rows, folder / "reviewed.jsonl")
    data = load_labelled(folder, taxonomy)
    assert data.from_review == 1 and not data.problems


def test_export_keeps_rows_of_an_earlier_export_the_catalogue_lacks(tmp_path):
    path = tmp_path / "reviewed.jsonl"
    write_jsonl([{"id": "oud-1", "themes": ["schulden"]}, {"id": "x", "themes": ["a"]}], path)
    rows, kept = reviews.merge_with_existing([{"id": "x", "themes": ["b"]}], path)
    assert kept == 1
    assert rows == [{"id": "oud-1", "themes": ["schulden"]}, {"id": "x", "themes": ["b"]}]


# --------------------------------------------------------------------------- web: access


def test_anonymous_browser_is_sent_to_login_and_other_clients_get_401(app):
    client = app.test_client()
    response = client.get("/review", headers={"Accept": "text/html"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.get("/review/item/xss-1", headers={"Accept": "application/json"})
    assert response.status_code == 401 and "Niet ingelogd" in response.text
    assert client.post("/review/item/xss-1", data={}).status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize("name, password", [("anna", "fout-wachtwoord-123"), ("onbekend", PASSWORD), ("", "")])
def test_bad_login_is_refused_with_a_dutch_message(app, name, password):
    client = app.test_client()
    response = login(client, name, password)
    assert response.status_code == 401
    assert "Onbekende naam of onjuist wachtwoord" in response.text
    assert client.get("/review", headers={"Accept": "text/html"}).status_code == 302


def test_repeated_failed_logins_block_the_name_even_with_the_right_password(app, web_settings):
    client = app.test_client()
    for _ in range(web_settings.serve.max_failed_logins):
        assert login(client, "anna", "fout-wachtwoord-123").status_code == 401
    response = login(client, "anna", PASSWORD)
    assert response.status_code == 429 and "Te veel mislukte pogingen" in response.text
    assert login(client, "bram", PASSWORD).status_code == 302  # other names are not affected


def test_failed_logins_from_one_address_do_not_lock_the_reviewer_out_elsewhere(app, web_settings):
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for _ in range(web_settings.serve.max_failed_logins + 2):
        login(guesser, "anna", "fout-wachtwoord-123")
    assert login(guesser, "anna", PASSWORD).status_code == 429
    anna = app.test_client()
    anna.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    assert login(anna, "anna", PASSWORD).status_code == 302


def test_front_page_sends_visitors_to_search_and_reviewers_to_their_queue(app):
    visitor = app.test_client()
    response = visitor.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 302 and response.headers["Location"] == "/zoeken"
    reviewer = app.test_client()
    login(reviewer)
    assert reviewer.get("/").headers["Location"] == "/review/"


def test_post_without_csrf_token_is_refused(client):
    response = client.post("/review/item/xss-1", data={"initiative_pk": "4", "themes": ["schulden"]})
    assert response.status_code == 400 and "beveiligingscode" in response.text
    conn = schema.connect(client.application.config["DATABASE"])
    assert conn.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0
    conn.close()
    assert client.post("/login", data={"name": "anna", "password": PASSWORD}).status_code == 400


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "/%09/evil.example/x", "/%0a/evil.example", "/%5Cevil.example",
     "/%5C%5Cevil.example", "https:evil.example", "https://evil.example/", "evil.example", "%20//evil"],
)
def test_login_redirects_only_to_local_paths(app, target):
    client = app.test_client()
    token = csrf_from(client.get("/login").text)
    response = client.post(f"/login?next={target}",
                           data={"name": "anna", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/review/"


def test_login_keeps_a_local_next_path(app):
    client = app.test_client()
    token = csrf_from(client.get("/login").text)
    response = client.post("/login?next=/review/%3Fstatus%3Dalle",
                           data={"name": "anna", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/review/?status=alle"


@pytest.mark.parametrize("change", ["set_password", "deactivate"])
def test_a_new_password_or_deactivation_ends_open_sessions(client, catalogue, change):
    assert client.get("/review/").status_code == 200
    conn = schema.connect(catalogue[0])
    try:
        if change == "set_password":
            accounts.set_password(conn, "anna", "een-heel-nieuw-wachtwoord", min_password_chars=12)
        else:
            accounts.deactivate_reviewer(conn, "anna")
    finally:
        conn.close()
    response = client.get("/review/", headers={"Accept": "text/html"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # the session was cleared, not merely refused once
    with client.session_transaction() as session:
        assert "reviewer" not in session


def test_password_change_of_another_reviewer_leaves_a_session_alone(client, catalogue):
    conn = schema.connect(catalogue[0])
    accounts.set_password(conn, "bram", "een-heel-nieuw-wachtwoord", min_password_chars=12)
    conn.close()
    assert client.get("/review/").status_code == 200


def test_a_deactivated_reviewer_cannot_log_in_or_save(app, catalogue):
    client = app.test_client()
    assert login(client).status_code == 302
    fields = item_form(client, "xss-1")
    conn = schema.connect(catalogue[0])
    accounts.deactivate_reviewer(conn, "anna")
    response = _save(client, "xss-1", LABELS_A, fields=fields)
    assert response.status_code == 401  # refused as logged out, not a server error
    assert conn.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0
    assert login(client).status_code == 401
    conn.close()


def test_a_save_by_an_account_gone_inactive_is_refused_in_dutch(conn):
    accounts.deactivate_reviewer(conn, "anna")
    with pytest.raises(accounts.ReviewError, match="onbekende beoordelaar"):
        reviews.save_review(conn, initiative_pk=_pk(conn, "xss-1"), reviewer="anna", labels=LABELS_A,
                           based_on=None, note=None)
    with pytest.raises(accounts.ReviewError, match="onbekende beoordelaar"):
        accounts.deactivate_reviewer(conn, "niemand")


def test_logout_ends_the_session(client):
    token = csrf_from(client.get("/review/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/review/", headers={"Accept": "text/html"}).status_code == 302


def test_session_expires_after_the_configured_lifetime(client, monkeypatch, web_settings):
    import itsdangerous.timed
    import time as real_time

    assert client.get("/review/").status_code == 200
    lifetime = web_settings.serve.session_lifetime_minutes * 60
    later = real_time.time() + lifetime + 60

    class Later:
        @staticmethod
        def time():
            return later

    monkeypatch.setattr(itsdangerous.timed, "time", Later)
    assert client.get("/review/", headers={"Accept": "text/html"}).status_code == 302


def test_secret_key_is_generated_once_outside_the_code(web_settings, catalogue):
    key_file = web_settings.serve.secret_key_file
    assert not key_file.exists()
    first = create_app(web_settings, db_path=catalogue[0])
    second = create_app(web_settings, db_path=catalogue[0])
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32


def _inline_blocks(html: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(3)) for m in re.finditer(
        r"<(script|style)(\s[^>]*)?>(.*?)</\1>", html, re.DOTALL) if "src=" not in (m.group(2) or "")]


@pytest.mark.parametrize("path, reviewer", [
    ("/zoeken", False), ("/rapport", False), ("/login", False), ("/bestaat-niet", False),
    ("/review/item/xss-1", True), ("/review/overeenstemming", True), ("/review/gids", True),
    ("/review/", True),
])
def test_every_page_sends_a_policy_that_allows_its_own_inline_blocks_only(app, path, reviewer):
    import base64
    import hashlib

    client = app.test_client()
    if reviewer:
        login(client)
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The page still works under it: each inline <style>/<script> it holds is allowed by hash.
    for tag, body in _inline_blocks(response.text):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives[f"{tag}-src"], (path, tag, body[:60])


def test_an_inline_script_injected_into_a_page_is_not_allowed(app):
    import base64
    import hashlib

    from pipeline.app.factory import inline_hashes

    injected = "window.__xss = 1"
    digest = base64.b64encode(hashlib.sha256(injected.encode()).digest()).decode()
    policy = app.test_client().get("/zoeken").headers["Content-Security-Policy"]
    assert digest not in policy
    # blocks with template markup change per request and are never hashed ahead
    hashes = inline_hashes({"a.html": "<script>var x = {{ x }};</script><script src=/s.js></script>"
                                      "<style>p { color: red }</style>"})
    assert hashes["script"] == [] and len(hashes["style"]) == 1


@pytest.mark.parametrize("url, linked", [
    ("https://gemeente.example/x", True), ("http://gemeente.example", True),
    ("HTTPS://gemeente.example", True), ("javascript:alert(1)", False),
    (" javascript:alert(1)", False), ("java\tscript:alert(1)", False), ("data:text/html,x", False),
    ("//evil.example", False), ("www.gemeente.example", False), ("https:/x", False), (None, False),
])
def test_only_http_urls_become_links(url, linked):
    from pipeline.app.factory import is_web_link

    assert is_web_link(url) is linked


def test_item_page_links_only_the_http_urls_of_the_sender(client):
    html = client.get("/review/item/xss-1").text
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert "https://testdorp.example/belcirkel" in hrefs
    assert not [h for h in hrefs if "script" in h.lower() or h.lower().lstrip().startswith("data:")]
    assert "javascript:window.__xss = 3" in html  # still shown, as text


def test_session_cookie_secure_follows_the_serve_setting(web_settings, catalogue):
    for secure in (False, True):
        serve = dataclasses.replace(web_settings.serve, secure_cookies=secure)
        app = create_app(dataclasses.replace(web_settings, serve=serve), db_path=catalogue[0],
                         test_config={"TESTING": True})
        response = login(app.test_client())
        cookie = response.headers["Set-Cookie"]
        assert ("Secure" in cookie) is secure and "HttpOnly" in cookie


def test_forwarded_headers_count_only_from_configured_proxies(web_settings, catalogue):
    """Behind nginx (trusted_proxies = 1) the app sees the visitor's https address; without a
    configured proxy the same headers, which anyone can send, are ignored."""
    from flask import request

    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "catalogus.example",
              "X-Forwarded-For": "203.0.113.9"}
    for proxies, expected in ((0, ("http://localhost/", "127.0.0.1")),
                              (1, ("https://catalogus.example/", "203.0.113.9"))):
        serve = dataclasses.replace(web_settings.serve, trusted_proxies=proxies)
        app = create_app(dataclasses.replace(web_settings, serve=serve), db_path=catalogue[0],
                         test_config={"TESTING": True})
        seen = []
        app.before_request_funcs.setdefault(None, []).insert(
            0, lambda: seen.append((request.url_root, request.remote_addr)))
        app.test_client().get("/zoeken", headers=forged, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert seen == [expected]


def test_times_are_shown_in_the_configured_timezone(web_settings, catalogue):
    from pipeline.core.errors import ConfigError
    from pipeline.app.context import format_time

    stored = "2026-11-23T20:14:00+00:00"
    assert format_time(stored, "Europe/Amsterdam") == "23-11-2026 21:14"
    assert format_time(None, "UTC") == "" and format_time("gisteren", "UTC") == "gisteren"
    for zone, shown in (("UTC", "23-11-2026 20:14"), ("Europe/Amsterdam", "23-11-2026 21:14")):
        serve = dataclasses.replace(web_settings.serve, display_timezone=zone)
        app = create_app(dataclasses.replace(web_settings, serve=serve), db_path=catalogue[0],
                         test_config={"TESTING": True})
        assert app.jinja_env.filters["tijd"](stored) == shown
    serve = dataclasses.replace(web_settings.serve, display_timezone="Europe/Nergenshuizen")
    with pytest.raises(ConfigError, match="display_timezone 'Europe/Nergenshuizen'"):
        create_app(dataclasses.replace(web_settings, serve=serve), db_path=catalogue[0])


def test_unknown_page_gets_a_dutch_error_page(client):
    response = client.get("/review/item/bestaat-niet")
    assert response.status_code == 404 and "Niet gevonden" in response.text


# --------------------------------------------------------------------------- web: queue and item


def _queue_ids(html: str) -> list[str]:
    return re.findall(r'href="/review/item/([^"?]+)', html)


def test_queue_lists_least_certain_first_with_counts(client, catalogue):
    html = client.get("/review/").text
    assert _queue_ids(html) == catalogue[1]["queue_order"]
    assert re.search(r"Nieuw <strong>4</strong>", html)


@pytest.mark.parametrize("query, sentence", [
    ("", "4 initiatieven in deze selectie"), ("?gemeente=Testdorp", "1 initiatief in deze selectie"),
    ("?status=beoordeeld", "0 initiatieven in deze selectie"),
])
def test_queue_counts_in_dutch(client, query, sentence):
    assert sentence in client.get(f"/review/{query}").text


def test_queue_and_item_offer_the_scores_of_the_taxonomy(web_settings, catalogue, tmp_path):
    source = web_settings.paths.taxonomy.read_text(encoding="utf-8")
    four = tmp_path / "taxonomy.toml"
    four.write_text(re.sub(r"(?m)^5 = .*\n", "", source), encoding="utf-8")
    paths = dataclasses.replace(web_settings.paths, taxonomy=four)
    app = create_app(dataclasses.replace(web_settings, paths=paths), db_path=catalogue[0],
                     test_config={"TESTING": True})
    client = app.test_client()
    login(client)
    queue = client.get("/review/").text
    options = re.search(r'<select name="score">(.*?)</select>', queue, re.DOTALL).group(1)
    assert re.findall(r"<option[^>]*>(\d)</option>", options) == ["1", "2", "3", "4"]
    item = client.get("/review/item/xss-1").text
    assert "een cijfer 1-4" in item and 'value="5"' not in item.split('name="replicability"', 1)[1]



def _store_new_row(conn):
    """One new initiative with its prediction, as `pipeline run` stores it."""
    writes.store_submission(conn, file_name="nieuw.jsonl", sha256="nieuw", rejected=[],
                           accepted=[Initiative(id="nieuw-1", gemeente="Testdorp",
                                                omschrijving="Een nieuw initiatief.")],
                           predictions=[_prediction(["schulden"], ["ouderen"], scores={})])

def test_queue_reads_the_models_part_once_while_only_reviews_change(app, catalogue):
    order = catalogue[1]["queue_order"]
    client = app.test_client()
    login(client)
    assert _queue_ids(client.get("/review/").text) == order
    cache = app.extensions["pipeline_queue"]
    assert cache.builds == 1
    client.get("/review/?status=alle")
    response = _save(client, order[0], LABELS_B, then="next")  # save-and-next
    assert response.headers["Location"].startswith(f"/review/item/{order[1]}")
    # the saved labels are in force in the queue (digitaal is the reviewer's, not the model's) ...
    assert order[0] in _queue_ids(client.get("/review/?status=beoordeeld&thema=digitaal").text)
    assert cache.builds == 1  # ... without reading every prediction again
    conn = schema.connect(catalogue[0])
    try:
        _store_new_row(conn)
        assert "nieuw-1" in _queue_ids(client.get("/review/").text)
        assert cache.builds == 2  # a new row: read again
        # the cached queue says what the uncached one and the catalogue say
        mine = cache.reviewer_items(conn, "anna")
        assert mine == queue.for_reviewer(queue.queue_items(
            conn, kind_threshold=0.5, share=app.config["SETTINGS"].review.second_opinion_share), "anna")
        in_force = {r["id"]: (r["themes"], r["replicability"]) for r in readmodel.catalogue(conn)}
        assert {i["id"]: (i["themes"], i["replicability"]) for i in mine if not i["blind"]} == {
            i["id"]: in_force[i["id"]] for i in mine if not i["blind"]}
    finally:
        conn.close()


def test_the_queue_read_at_start_serves_the_first_reviewer(app, catalogue):
    assert review_views.warm_up_queue(app) == len(catalogue[1]["queue_order"])
    cache = app.extensions["pipeline_queue"]
    client = app.test_client()
    login(client)
    assert _queue_ids(client.get("/review/").text) == catalogue[1]["queue_order"]
    assert cache.builds == 1  # the first visit found the queue ready


def test_while_the_queue_is_read_requests_get_the_previous_queue_or_a_page_that_asks_again(app, catalogue):
    client = app.test_client()
    login(client)
    with app.app_context():
        cache = review_views.queue_cache()
    first = catalogue[1]["queue_order"][0]
    token = item_form(client, first)["csrf_token"]   # the item page itself needs no queue
    with cache._build_lock:  # another thread is reading the catalogue for the first time
        response = client.get("/review/")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "De wachtrij wordt geladen" in response.text and 'http-equiv="refresh"' in response.text
        # after a POST, to the queue page (a GET the loading page can reload), not a 503 to a POST
        response = client.post(f"/review/item/{first}/overslaan", data={"csrf_token": token})
        assert response.status_code == 302 and response.headers["Location"].startswith("/review/")
    order = catalogue[1]["queue_order"]
    skipped_last = order[1:] + order[:1]
    assert _queue_ids(client.get("/review/").text) == skipped_last   # read now
    conn = schema.connect(catalogue[0])
    try:
        _store_new_row(conn)
    finally:
        conn.close()
    with cache._build_lock:  # another thread reads the new row: the previous queue meanwhile
        assert _queue_ids(client.get("/review/").text) == skipped_last
    assert "nieuw-1" in _queue_ids(client.get("/review/").text)
    assert cache.builds == 2


def test_the_cached_queue_of_each_reviewer_is_the_queue_worked_out_in_full(catalogue):
    conn = schema.connect(catalogue[0])
    try:
        pks = [row["pk"] for row in conn.execute("SELECT pk FROM current_initiatives ORDER BY id")]
        first = reviews.save_review(conn, initiative_pk=pks[0], reviewer="anna", labels=LABELS_A,
                                    based_on=None, note=None)
        reviews.save_review(conn, initiative_pk=pks[0], reviewer="bram", labels=LABELS_B,
                            based_on=first.review_pk, note=None, blind=True)  # a dispute
        reviews.save_review(conn, initiative_pk=pks[1], reviewer="bram", labels=LABELS_B,
                            based_on=None, note=None)
        for share in (0.0, 1.0):  # no second opinions, or every reviewed item one
            cache = queue.QueueCache(kind_threshold=0.5, share=share)
            full = queue.queue_items(conn, kind_threshold=0.5, share=share)
            for reviewer in ("anna", "bram", "carla"):
                assert cache.reviewer_items(conn, reviewer) == queue.for_reviewer(full, reviewer)
            assert cache.options(conn) == queue.municipality_options(full)
        # a review saved after the cache was built shows at once, without a rebuild
        reviews.save_review(conn, initiative_pk=pks[2], reviewer="anna", labels=LABELS_A,
                            based_on=None, note=None)
        mine = {i["pk"]: i for i in cache.reviewer_items(conn, "anna")}[pks[2]]
        assert mine["mine"] and mine["replicability"] == 5 and cache.builds == 1
    finally:
        conn.close()


def test_untitled_rows_are_titled_by_the_configured_length(web_settings, catalogue):
    text = "Wekelijkse inloop voor ouderen in het buurthuis met koffie, een krant en hulp bij formulieren."
    conn = schema.connect(catalogue[0])
    writes.store_submission(conn, file_name="n.jsonl", sha256="n", rejected=[],
                           accepted=[Initiative(id="zonder-naam", gemeente="Testdorp", omschrijving=text)],
                           predictions=[_prediction(["eenzaamheid"], ["ouderen"], scores={})])
    conn.close()
    for chars in (30, 60):
        config = dataclasses.replace(web_settings.review, title_chars=chars)
        app = create_app(dataclasses.replace(web_settings, review=config), db_path=catalogue[0],
                         test_config={"TESTING": True})
        client = app.test_client()
        login(client)
        html = client.get("/review/?gemeente=Testdorp").text
        title = re.search(r'href="/review/item/zonder-naam[^"]*">([^<]*)</a>', html).group(1)
        assert title.endswith("...") and len(title) <= chars and text.startswith(title[:-3])


def test_queue_filters(client, catalogue):
    assert _queue_ids(client.get("/review/?thema=eenzaamheid").text) == [catalogue[1]["queue_order"][0], "xss-1"]
    assert _queue_ids(client.get("/review/?doelgroep=ouderen").text) == ["xss-1"]
    assert _queue_ids(client.get("/review/?gemeente=Testdorp").text) == ["xss-1"]
    assert _queue_ids(client.get("/review/?soort=signal").text) == [catalogue[1]["queue_order"][2]]
    assert _queue_ids(client.get("/review/?score=1").text) == [catalogue[1]["queue_order"][2]]
    assert _queue_ids(client.get("/review/?status=beoordeeld").text) == []


def test_item_page_shows_text_escaped_predictions_and_evidence(client, catalogue):
    html = client.get("/review/item/xss-1").text
    assert "<script>window.__xss" not in html and "&lt;script&gt;window.__xss" in html
    assert "<b>Belcirkel</b>" not in html and "&lt;b&gt;Belcirkel&lt;/b&gt;" in html
    assert f"<mark>{catalogue[1]['evidence']}</mark>" in html
    assert re.search(r'value="eenzaamheid" checked', html) and re.search(r'value="ouderen" checked', html)
    assert not re.search(r'value="digitaal" checked', html)
    assert "0.40" in html  # the score of an unticked label is shown too
    assert "Vrijwilligers kunnen dit meteen doen" in html


def test_item_page_lists_similar_initiatives_from_other_municipalities(client, corpus_rows):
    first = corpus_rows[0]
    html = client.get(f"/review/item/{first['id']}").text
    section = html.split("Vergelijkbare initiatieven", 1)[1].split("</section>", 1)[0]
    assert "xss-1" in section  # Testdorp, another municipality
    others = [r["id"] for r in corpus_rows[:3] if r["gemeente"] == first["gemeente"] and r["id"] != first["id"]]
    for other in others:
        assert other not in section


def _save(client, initiative_id, labels, *, fields=None, note="", then=""):
    fields = fields or item_form(client, initiative_id)
    data = {
        "csrf_token": fields["csrf_token"], "initiative_pk": fields["initiative_pk"],
        "based_on": fields["based_on"], "themes": labels["themes"],
        "doelgroepen": labels["doelgroepen"], "kind": labels["kind"],
        "replicability": str(labels["replicability"]), "note": note,
    }
    if then:
        data["then"] = then
    if "blind" in fields:  # a blind second opinion's form says so, as the browser sends it
        data["blind"] = fields["blind"]
    return client.post(f"/review/item/{initiative_id}", data=data)


def test_save_adds_history_and_moves_the_item_out_of_new(client):
    response = _save(client, "xss-1", LABELS_B, note="Ook digitaal.")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).text
    assert "Opgeslagen." in html
    history = html.split('id="history"', 1)[1]
    assert "anna" in history and "Ook digitaal." in history
    assert "+ Digitale middelen en inclusie" in history and "overdraagbaarheid 4 → 4" not in history
    assert "xss-1" not in _queue_ids(client.get("/review/").text)
    assert "xss-1" in _queue_ids(client.get("/review/?status=beoordeeld").text)


def test_save_and_next_goes_to_the_next_least_certain_item(client, catalogue):
    order = catalogue[1]["queue_order"]
    response = _save(client, order[0], LABELS_A, then="next")
    assert response.headers["Location"].startswith(f"/review/item/{order[1]}")


def test_invalid_save_keeps_the_reviewers_input_and_says_why(client):
    fields = item_form(client, "xss-1")
    labels = {**LABELS_B, "themes": []}
    response = _save(client, "xss-1", labels, fields=fields, note="mijn notitie")
    assert response.status_code == 400
    assert "kies minstens één thema" in response.text and "mijn notitie" in response.text


def test_second_reviewer_on_a_stale_form_gets_a_message_and_both_versions_are_kept(app):
    anna, bram = app.test_client(), app.test_client()
    login(anna, "anna")
    login(bram, "bram")
    anna_form, bram_form = item_form(anna, "xss-1"), item_form(bram, "xss-1")
    assert _save(anna, "xss-1", LABELS_A, fields=anna_form, note="anna").status_code == 302
    response = _save(bram, "xss-1", LABELS_B, fields=bram_form, note="bram")
    html = bram.get(response.headers["Location"]).text
    assert "anna heeft dit initiatief intussen al opgeslagen" in html
    form_part = html.split('id="review-form"', 1)[1].split("</form>", 1)[0]
    assert re.search(r'value="eenzaamheid" checked', form_part)
    assert not re.search(r'value="digitaal" checked', form_part)  # anna's labels, not bram's
    history = html.split('id="history"', 1)[1]
    assert "conflict" in history and "bram" in history and "anna" in history
    assert 'id="status">betwist' in html
    agreement = anna.get("/review/overeenstemming").text
    assert "Over 1 initiatief" in agreement and "Digitale middelen en inclusie" in agreement


def test_skip_moves_on_and_puts_the_item_last(client, catalogue):
    order = catalogue[1]["queue_order"]
    token = item_form(client, order[0])["csrf_token"]
    response = client.post(f"/review/item/{order[0]}/overslaan", data={"csrf_token": token})
    assert response.headers["Location"].startswith(f"/review/item/{order[1]}")
    assert _queue_ids(client.get("/review/").text) == order[1:] + order[:1]


# --------------------------------------------------------------------------- CLI


def _cli(settings_path, *args, input=None):
    return CliRunner().invoke(main, ["--config", str(settings_path), *args], input=input)


def test_cli_reviewer_add_export_labels(catalogue, tmp_path, settings):
    db, _ = catalogue
    config = settings.source
    result = _cli(config, "reviewer", "add", "carla", "--db", str(db), "--password-stdin",
                  input="een-goed-wachtwoord\n")
    assert result.exit_code == 0, result.output
    result = _cli(config, "reviewer", "add", "dirk", "--db", str(db),
                  input="nog-een-wachtwoord\nnog-een-wachtwoord\n")
    assert result.exit_code == 0, result.output
    conn = schema.connect(db)
    assert accounts.check_password(conn, "carla", "een-goed-wachtwoord")
    assert accounts.check_password(conn, "dirk", "nog-een-wachtwoord")
    reviews.save_review(conn, initiative_pk=_pk(conn, "xss-1"), reviewer="carla", labels=LABELS_A,
                       based_on=None, note=None)
    conn.close()
    result = _cli(config, "reviewer", "add", "carla", "--db", str(db), "--password-stdin",
                  input="een-goed-wachtwoord\n")
    assert result.exit_code == 1 and "bestaat al" in result.output
    out = tmp_path / "labelled" / "reviewed.jsonl"
    result = _cli(config, "export-labels", "--db", str(db), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["source"], r["themes"]) for r in rows] == [("xss-1", "review", ["eenzaamheid"])]


def test_cli_reviewer_passwd_and_list(catalogue, settings):
    db = str(catalogue[0])
    result = _cli(settings.source, "reviewer", "passwd", "bram", "--db", db, "--password-stdin",
                  input="een-nieuw-wachtwoord\n")
    assert result.exit_code == 0, result.output
    conn = schema.connect(catalogue[0])
    assert accounts.check_password(conn, "bram", "een-nieuw-wachtwoord")
    assert not accounts.check_password(conn, "bram", PASSWORD)
    conn.close()
    result = _cli(settings.source, "reviewer", "passwd", "niemand", "--db", db, "--password-stdin",
                  input="een-nieuw-wachtwoord\n")
    assert result.exit_code == 1 and "onbekende beoordelaar" in result.output
    result = _cli(settings.source, "reviewer", "list", "--db", db)
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[:2] for line in result.output.splitlines()] == [
        ["anna", "0 reviews"], ["bram", "0 reviews"]]


def test_cli_reviewer_deactivate_stops_login(catalogue, settings):
    db = str(catalogue[0])
    result = _cli(settings.source, "reviewer", "deactivate", "bram", "--db", db)
    assert result.exit_code == 0, result.output
    conn = schema.connect(catalogue[0])
    assert not accounts.check_password(conn, "bram", PASSWORD)
    assert accounts.check_password(conn, "anna", PASSWORD)
    conn.close()
    result = _cli(settings.source, "reviewer", "deactivate", "niemand", "--db", db)
    assert result.exit_code == 1 and "onbekende beoordelaar" in result.output


def test_cli_export_labels_if_exists_does_nothing_without_a_catalogue(tmp_path, settings):
    missing = tmp_path / "geen.sqlite"
    out = tmp_path / "reviewed.jsonl"
    result = _cli(settings.source, "export-labels", "--if-exists", "--db", str(missing), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not missing.exists() and not out.exists()


def test_reclassify_leaves_reviewed_rows_alone(conn):
    reviews.save_review(conn, initiative_pk=_pk(conn, "xss-1"), reviewer="anna", labels=LABELS_A,
                       based_on=None, note=None)
    todo, skipped = readmodel.stale_initiatives(conn, "a-newer-model")
    assert skipped == 1 and "xss-1" not in {r["id"] for r in todo} and len(todo) == 3


def test_cli_serve_answers_over_http(catalogue, tmp_path, settings):
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        # The project's settings: the session key goes to [serve] secret_key_file (var/, outside git).
        [sys.executable, "-m", "pipeline", "--config", str(settings.source), "serve", "--db", str(catalogue[0]),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as response:
                    assert response.status == 200 and "Inloggen" in response.read().decode()
                    # A production server (waitress), not Flask's development server, and no
                    # software versions in the Server header.
                    assert response.headers["Server"] == "pipeline", response.headers
                    break
            except urllib.error.URLError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {process.stdout.read()}")
                time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/review/item/xss-1",
                                         headers={"Accept": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_save_on_a_text_version_replaced_meanwhile_is_kept_and_flagged(app, catalogue):
    client = app.test_client()
    login(client)
    fields = item_form(client, "xss-1")
    conn = schema.connect(catalogue[0])
    new_text = Initiative(id="xss-1", gemeente="Testdorp", omschrijving="Nieuwe tekst: belcirkel voor ouderen.")
    writes.store_submission(conn, file_name="v2.jsonl", sha256="v2", accepted=[new_text], rejected=[],
                           predictions=[_prediction(["eenzaamheid"], ["ouderen"], scores={})])
    response = _save(client, "xss-1", LABELS_A, fields=fields)
    html = client.get(response.headers["Location"]).text
    assert "vorige versie van de tekst" in html
    saved = conn.execute("SELECT i.version FROM reviews r JOIN initiatives i ON i.pk = r.initiative_pk").fetchall()
    assert [row["version"] for row in saved] == [1]  # stored with the text the reviewer read
    conn.close()
    assert "xss-1" in _queue_ids(client.get("/review/").text)  # the new version still needs a review


def test_an_unexpected_error_gets_the_dutch_error_page_without_details(web_settings, catalogue):
    app = create_app(web_settings, db_path=catalogue[0])

    @app.route("/review/kapot")
    def broken():
        raise RuntimeError("geheime details uit de server")

    client = app.test_client()
    login(client)
    response = client.get("/review/kapot")
    assert response.status_code == 500
    assert "Er ging iets mis" in response.text and "geheime details" not in response.text


def test_a_disputed_item_is_not_training_data_until_a_third_reviewer_decides(conn, tmp_path):
    pk = _pk(conn, "halsema-001")
    first = reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_A,
                                based_on=None, note=None)
    reviews.save_review(conn, initiative_pk=pk, reviewer="bram", labels=LABELS_B,
                        based_on=first.review_pk, note=None)
    assert reviews.disputed_ids(conn) == {"halsema-001"}
    assert reviews.export_reviewed(conn, leave_out=reviews.disputed_ids(conn)) == []
    # An earlier export's row for the id is not kept either: its labels are disputed now.
    path = tmp_path / "reviewed.jsonl"
    write_jsonl([{"id": "halsema-001", "themes": ["schulden"]}, {"id": "oud-1"}], path)
    rows, kept = reviews.merge_with_existing([], path, leave_out={"halsema-001"})
    assert (rows, kept) == ([{"id": "oud-1"}], 1)


def test_queue_filters_municipalities_on_their_cbs_codes(client, catalogue):
    conn = schema.connect(catalogue[0])
    writes.store_submission(conn, file_name="bosch.jsonl", sha256="bosch", rejected=[], accepted=[
        Initiative(id="bosch-1", gemeente="Den Bosch", omschrijving="Wijkteam belt ouderen."),
        Initiative(id="bosch-2", gemeente="'s-Hertogenbosch", omschrijving="Maaltijden aan huis."),
        Initiative(id="regio-1", gemeente="Regio West-Brabant", omschrijving="Regionaal fonds."),
    ], predictions=[_prediction(["eenzaamheid"], ["ouderen"], scores={})] * 3)
    conn.close()
    html = client.get("/review/?status=alle").text
    assert '<option value="GM0796" >&#39;s-Hertogenbosch</option>' in html or \
        re.search(r'<option value="GM0796"\s*>[^<]*Hertogenbosch</option>', html)
    assert re.search(r'<option value="Regio West-Brabant"\s*>Regio West-Brabant \(geen gemeente\)</option>', html)
    # "Den Bosch" and "'s-Hertogenbosch" are one place; a region is found by what was sent.
    assert sorted(_queue_ids(client.get("/review/?status=alle&gemeente=GM0796").text)) == ["bosch-1", "bosch-2"]
    assert _queue_ids(client.get("/review/?status=alle&gemeente=Regio+West-Brabant").text) == ["regio-1"]
