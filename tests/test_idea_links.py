"""Reviewers' same-idea marks: stored with who and when, applied as must-link / cannot-link by the
next grouping (`pipeline run` over a real SQLite catalogue, `pipeline group`), exported as pairs,
marked through the web app (pipeline/catalogue/idea_links.py, pipeline/models/constraints.py,
pipeline/app/link_views.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_jsonl
from pipeline.catalogue import accounts, idea_links, readmodel, schema, writes
from pipeline.cli.main import main
from pipeline.core.errors import ReviewError
from pipeline.core.records import Initiative
from pipeline.jobs.inbox import run_inbox
from pipeline.models.constraints import CANNOT_LINK, MUST_LINK, apply_links
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Grouper

from test_group import ROWS, initiatives
from test_review import PASSWORD, csrf_from, login

# --------------------------------------------------------------------------- constraints


def test_must_link_averages_the_joined_rows_and_cannot_link_spreads_to_them():
    ids = ["a", "b", "c", "d"]
    score = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
    out, report = apply_links(score, ids, [("a", "b", True), ("c", "a", False)])
    assert out[0, 1] == out[1, 0] == MUST_LINK
    assert out[0, 3] == out[1, 3] == (3 + 5) / 2  # {a, b} acts as one row against d
    assert out[2, 0] == out[2, 1] == out[0, 2] == CANNOT_LINK  # b is kept from c through a
    assert out[2, 3] == 6 and score[0, 1] == 1  # other pairs and the input are unchanged
    assert (report.must, report.cannot, report.conflicts, report.absent) == (1, 1, 0, 0)


def test_a_mark_contradicting_earlier_ones_is_left_out_and_counted():
    ids = ["a", "b", "c"]
    links = [("a", "b", False), ("b", "c", True), ("a", "c", True), ("x", "a", True)]
    out, report = apply_links(np.zeros((3, 3)), ids, links)
    assert out[0, 1] == out[0, 2] == CANNOT_LINK and out[1, 2] == MUST_LINK
    assert (report.must, report.cannot, report.conflicts, report.absent) == (1, 1, 1, 1)


@pytest.fixture(scope="module")
def encoder(settings):
    return encoder_from_config(settings.embed)


def _groups(settings, encoder, links=()):
    grouper = Grouper.from_config(settings.group, encoder=encoder).fit(initiatives(), links=links)
    return [g.members for g in grouper.groups_]


def test_cannot_link_splits_a_group_and_must_link_joins_rows(settings, encoder):
    assert _groups(settings, encoder) == [("a1", "a2"), ("b1", "b2")]
    assert _groups(settings, encoder, [("a1", "a2", False)]) == [("b1", "b2")]
    joined = _groups(settings, encoder, [("c1", "a1", True)])
    assert ("a1", "a2", "c1") in joined or ("a1", "c1") in joined, joined


# --------------------------------------------------------------------------- the catalogue


def _catalogue(path, rows=ROWS):
    conn = schema.connect(path)
    accepted = [Initiative(id=r["id"], gemeente=r["gemeente"], naam=r["naam"],
                           omschrijving=r["omschrijving"]) for r in rows]
    predictions = [{"model_id": "test-model", "themes": ["digitaal"], "doelgroepen": ["jongeren"],
                    "kind": "initiative", "scores": {"themes": {}, "doelgroepen": {}, "kind": 0.1},
                    "replicability": 3, "replicability_score": 3.0, "replicability_reasons": []}
                   for _ in accepted]
    writes.store_submission(conn, file_name="t.jsonl", sha256="t-sha", accepted=accepted,
                            rejected=[], predictions=predictions)
    accounts.add_reviewer(conn, "anna", PASSWORD, min_password_chars=12)
    return conn


@pytest.fixture
def conn(tmp_path):
    connection = _catalogue(tmp_path / "catalogue.sqlite")
    yield connection
    connection.close()


def test_the_newest_mark_of_a_pair_is_in_force_with_who_and_when(conn):
    idea_links.save_link(conn, "a2", "a1", same=True, reviewer="anna")
    idea_links.save_link(conn, "a1", "a2", same=False, reviewer="anna")
    (link,) = idea_links.links_in_force(conn)
    assert (link["a"], link["b"], link["same"], link["reviewer"]) == ("a1", "a2", False, "anna")
    assert link["created_at"].startswith("20")
    assert conn.execute("SELECT count(*) FROM idea_links").fetchone()[0] == 2  # history kept
    assert set(idea_links.marks_of(conn, "a2")) == {"a1"}


@pytest.mark.parametrize("a, b, who, message", [
    ("a1", "a1", "anna", "met zichzelf"),
    ("a1", "zz", "anna", "'zz'"),
    ("a1", "a2", "nobody", "'nobody'"),
])
def test_a_bad_mark_is_refused_with_a_dutch_reason(conn, a, b, who, message):
    with pytest.raises(ReviewError, match=message):
        idea_links.save_link(conn, a, b, same=True, reviewer=who)
    assert idea_links.links_in_force(conn) == []


def _run(tmp_path, conn, settings, encoder):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)

    def no_model():
        raise AssertionError("nothing to predict: the inbox is empty")

    return run_inbox(inbox, conn, predictor_factory=no_model,
                     grouper_factory=lambda: Grouper.from_config(settings.group, encoder=encoder))


def _stored_groups(conn):
    return sorted(tuple(g["members"]) for g in readmodel.groups(conn))


def test_a_mark_changes_the_groups_on_the_next_run(tmp_path, conn, settings, encoder):
    assert _run(tmp_path, conn, settings, encoder).regrouped
    assert _stored_groups(conn) == [("a1", "a2"), ("b1", "b2")]
    assert not _run(tmp_path, conn, settings, encoder).regrouped  # nothing new: no regroup
    idea_links.save_link(conn, "a1", "a2", same=False, reviewer="anna")
    idea_links.save_link(conn, "b2", "c1", same=True, reviewer="anna")
    assert _run(tmp_path, conn, settings, encoder).regrouped
    groups = _stored_groups(conn)
    assert not any({"a1", "a2"} <= set(g) for g in groups), groups
    assert any({"b2", "c1"} <= set(g) for g in groups), groups
    assert not _run(tmp_path, conn, settings, encoder).regrouped


def test_export_labels_writes_the_pairs_and_group_applies_them(tmp_path, conn, settings):
    idea_links.save_link(conn, "a1", "a2", same=False, reviewer="anna")
    pairs = tmp_path / "pairs" / "same_idea.jsonl"
    review = dataclasses.replace(settings.review, links_export_path=pairs,
                                 export_path=tmp_path / "reviewed.jsonl")
    runner = CliRunner()
    obj = {"settings": dataclasses.replace(settings, review=review)}
    result = runner.invoke(main, ["export-labels", "--db", str(tmp_path / "catalogue.sqlite")],
                           obj=obj)
    assert result.exit_code == 0, result.output
    assert "1 same-idea pairs (0 zelfde idee, 1 ander idee)" in result.output
    (row,) = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    assert (row["a"], row["b"], row["same"], row["reviewer"]) == ("a1", "a2", False, "anna")
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "groups.jsonl"
    result = runner.invoke(main, ["group", str(source), "--out", str(out)], obj=obj)
    assert result.exit_code == 0, result.output
    assert "0 zelfde-idee and 1 ander-idee mark(s) applied" in result.output
    members = [json.loads(line)["members"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert members == [["b1", "b2"]]
    result = runner.invoke(main, ["group", str(source), "--out", str(out), "--no-links"], obj=obj)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2, result.output


# --------------------------------------------------------------------------- web


@pytest.fixture
def web(settings, tmp_path, conn):
    from pipeline.app.factory import create_app

    serve = dataclasses.replace(settings.serve, secret_key_file=tmp_path / "secret")
    app = create_app(dataclasses.replace(settings, serve=serve), db_path=tmp_path / "catalogue.sqlite",
                     test_config={"TESTING": True})
    return app.test_client()


def test_a_reviewer_marks_a_pair_from_the_initiative_page(web, conn, tmp_path, settings, encoder):
    _run(tmp_path, conn, settings, encoder)
    assert web.post("/review/zelfde-idee", data={"initiative_id": "a1", "other_id": "a2",
                                                  "oordeel": "ander"}).status_code in (302, 401)
    assert idea_links.links_in_force(conn) == []  # anonymous: nothing stored
    assert login(web).status_code == 302
    page = web.get("/initiatief/a1").text
    assert 'value="zelfde"' in page and 'data-other="a2"' in page
    response = web.post("/review/zelfde-idee", data={
        "csrf_token": csrf_from(page), "initiative_id": "a1", "other_id": "a2", "oordeel": "ander",
        "next": "/initiatief/a1"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/initiatief/a1")
    (link,) = idea_links.links_in_force(conn)
    assert (link["same"], link["reviewer"]) == (False, "anna")
    page = web.get("/initiatief/a1").text
    assert "ander idee volgens anna" in page and 'id="markeringen"' in page
    forged = web.post("/review/zelfde-idee", data={"initiative_id": "a1", "other_id": "a2",
                                                    "oordeel": "zelfde"})
    assert forged.status_code == 400  # no CSRF token
    assert len(idea_links.links_in_force(conn)) == 1 and not idea_links.links_in_force(conn)[0]["same"]


def _write_model(models, model_id, created):
    (models / model_id).mkdir(parents=True)
    (models / model_id / "metrics.json").write_text(json.dumps({"created": created}), encoding="utf-8")


def test_reviewers_are_told_when_a_newer_model_is_released(settings, tmp_path, conn):
    from pipeline.app.factory import create_app

    models = tmp_path / "models"
    _write_model(models, "test-model", "2026-11-01T10:00:00+00:00")
    _write_model(models, "20261202-newer", "2026-12-02T10:00:00+00:00")
    (models / "LATEST").write_text("test-model\n", encoding="utf-8")
    serve = dataclasses.replace(settings.serve, secret_key_file=tmp_path / "secret")
    paths = dataclasses.replace(settings.paths, models=models)
    app = create_app(dataclasses.replace(settings, serve=serve, paths=paths),
                     db_path=tmp_path / "catalogue.sqlite", test_config={"TESTING": True})
    client = app.test_client()
    assert login(client).status_code == 302
    assert "nieuwer model" not in client.get("/review/").text
    (models / "LATEST").write_text("20261202-newer\n", encoding="utf-8")
    page = client.get("/review/").text
    assert "Er is een nieuwer model beschikbaar" in page and "20261202-newer" in page
    assert "nieuwer model" not in app.test_client().get("/zoeken").text  # not to the public


# --------------------------------------------------------------------------- retrain


def test_retrain_exports_trains_and_reclassifies_in_one_command(settings, tmp_path, conn):
    from pipeline.app.model_notice import newer_model
    from pipeline.catalogue.reviews import save_review

    seed = [json.loads(line) for line in
            (settings.root / "data" / "labelled" / "seed.jsonl").read_text(encoding="utf-8").splitlines()]
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    write_jsonl(labelled / "seed.jsonl", seed[:40])
    pk = readmodel.current_initiatives(conn, ["a1"])[0]["pk"]
    save_review(conn, initiative_pk=pk, reviewer="anna", based_on=None, note="laptops",
                labels={"themes": ["digitaal"], "doelgroepen": ["jongeren"], "kind": "initiative",
                        "replicability": 4})
    idea_links.save_link(conn, "a1", "a2", same=True, reviewer="anna")
    models = tmp_path / "models"
    review = dataclasses.replace(settings.review, export_path=labelled / "reviewed.jsonl",
                                 links_export_path=labelled / "pairs" / "same_idea.jsonl")
    paths = dataclasses.replace(settings.paths, labelled=labelled, models=models)
    obj = {"settings": dataclasses.replace(settings, review=review, paths=paths)}
    result = CliRunner().invoke(main, ["retrain", "--db", str(tmp_path / "catalogue.sqlite"),
                                       "--folds", "0"], obj=obj)
    assert result.exit_code == 0, result.output
    assert "1 reviewed initiatives" in result.output and "1 same-idea pairs" in result.output
    assert "4 initiative(s) re-predicted" in result.output and "1 kept" in result.output
    latest = (models / "LATEST").read_text(encoding="utf-8").strip()
    assert readmodel.newest_prediction_model(conn)["model_id"] == latest
    assert newer_model(models, readmodel.newest_prediction_model(conn)) is None


def test_retrain_without_a_catalogue_says_so(settings, tmp_path):
    result = CliRunner().invoke(main, ["retrain", "--db", str(tmp_path / "none.sqlite")],
                                obj={"settings": settings})
    assert result.exit_code == 1 and "geen catalogus" in result.output
    assert not (tmp_path / "none.sqlite").exists()


def test_a_catalogue_of_schema_5_gets_the_idea_links_table(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    schema.migrate(raw, schema.MIGRATIONS[:5])  # written by the program of schema 5
    raw.close()
    conn = schema.connect(path)
    assert schema.schema_version(conn) == len(schema.MIGRATIONS)
    assert idea_links.links_in_force(conn) == []
    conn.close()
