"""The catalogue: migrations, versions, predictions, groups, reviews, one transaction per file."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pipeline.catalogue import export
from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.core.records import Initiative, RejectedRow, as_initiative
from pipeline.ingest.reader import Problem


def _initiative(ident="a-1", text="Vrijwilligers bellen eenzame ouderen.", gemeente="Almere", **kw):
    return Initiative(id=ident, gemeente=gemeente, omschrijving=text, **kw)


def _prediction(model_id="m-1", themes=("eenzaamheid",), kind="initiative", replicability=None):
    prediction = {
        "model_id": model_id,
        "themes": list(themes),
        "doelgroepen": ["ouderen"],
        "kind": kind,
        "scores": {
            "themes": {"eenzaamheid": 0.9, "voedsel_basis": 0.1},
            "doelgroepen": {"ouderen": 0.8, "jongeren": 0.2},
            "kind": 0.1,
        },
    }
    if replicability is not None:
        prediction.update(
            replicability=replicability,
            replicability_score=replicability - 0.2,
            replicability_reasons=["Weinig budget nodig.", "Vrijwilligers zijn er al."],
        )
    return prediction


def _store(conn, name, rows, *, sha=None, rejected=(), model_id="m-1"):
    return writes.store_submission(
        conn,
        file_name=name,
        sha256=sha or name,
        accepted=rows,
        rejected=list(rejected),
        predictions=[_prediction(model_id) for _ in rows],
    )


@pytest.fixture
def conn(tmp_path):
    connection = schema.connect(tmp_path / "catalogue.sqlite")
    yield connection
    connection.close()


def test_connect_creates_the_schema_in_wal_mode_with_foreign_keys(tmp_path):
    conn = schema.connect(tmp_path / "sub" / "catalogue.sqlite")
    assert schema.schema_version(conn) == len(schema.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert readmodel.counts(conn)["initiatives"] == 0


def test_reconnecting_runs_no_migration_twice(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    schema.connect(path).close()
    conn = schema.connect(path)
    assert schema.schema_version(conn) == len(schema.MIGRATIONS)


def test_an_appended_migration_runs_on_the_next_connect(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    schema.connect(path).close()
    conn = schema.connect(path)
    extended = [*schema.MIGRATIONS, "ALTER TABLE reviews ADD COLUMN status TEXT;"]
    assert schema.migrate(conn, extended) == len(extended)
    conn.execute("SELECT status FROM reviews").fetchall()


def test_a_failing_migration_leaves_the_schema_as_it_was(tmp_path):
    conn = schema.connect(tmp_path / "catalogue.sqlite")
    broken = [*schema.MIGRATIONS, "CREATE TABLE extra (x INTEGER);\nTHIS IS NOT SQL;"]
    with pytest.raises(sqlite3.OperationalError):
        schema.migrate(conn, broken)
    assert schema.schema_version(conn) == len(schema.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "extra" not in tables


def test_a_catalogue_from_a_newer_program_is_refused(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    conn = schema.connect(path)
    conn.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(schema.StoreError, match="nieuwer|newer"):
        schema.connect(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    path.write_text("dit is geen database " * 100)
    with pytest.raises(schema.StoreError, match="catalogue.sqlite"):
        schema.connect(path)


def test_text_is_stored_exactly_as_given(conn):
    text = "  Ouderen   bellen\n(OCR: cliénten) <b>vet</b>  "
    _store(conn, "f1.jsonl", [_initiative(text=text, naam=" Bel-maatje ", urls=("https://x.nl",),
                                          extra={"bijdrager": "Jan"})])
    (record,) = readmodel.current_initiatives(conn)
    assert record["omschrijving"] == text
    assert record["naam"] == " Bel-maatje "
    assert record["urls"] == ["https://x.nl"]
    assert record["extra"] == {"bijdrager": "Jan"}
    assert as_initiative(record).omschrijving == text


def test_the_same_id_in_a_later_file_is_a_new_version_and_the_old_one_is_kept(conn):
    _store(conn, "f1.jsonl", [_initiative(text="oud")])
    counts = _store(conn, "f2.jsonl", [_initiative(text="nieuw")])
    assert counts.new_versions == 1
    (current,) = readmodel.current_initiatives(conn)
    assert (current["omschrijving"], current["version"]) == ("nieuw", 2)
    versions = readmodel.initiative_versions(conn, "a-1")
    assert [(v["version"], v["omschrijving"], v["is_current"]) for v in versions] == [
        (1, "oud", 0), (2, "nieuw", 1)]


def test_the_same_content_hash_cannot_be_stored_twice(conn):
    _store(conn, "f1.jsonl", [_initiative()], sha="abc")
    with pytest.raises(sqlite3.IntegrityError):
        _store(conn, "f1-kopie.jsonl", [_initiative()], sha="abc")
    assert readmodel.counts(conn)["initiatives"] == 1


def test_a_failure_inside_the_file_transaction_stores_nothing_of_that_file(conn):
    def fail():
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        writes.store_submission(
            conn, file_name="f.jsonl", sha256="x", accepted=[_initiative()], rejected=[],
            predictions=[_prediction()], before_commit=fail,
        )
    assert readmodel.counts(conn) == {k: 0 for k in readmodel.counts(conn)}


def test_rejected_rows_keep_their_message_field_and_raw_row(conn):
    bad = RejectedRow(3, "b-2", (Problem("omschrijving", "verplicht veld is leeg"),),
                      {"id": "b-2", "omschrijving": ""})
    counts = _store(conn, "f1.csv", [_initiative()], rejected=[bad])
    (row,) = readmodel.rejected_rows(conn)
    assert (row["row"], row["id"], row["field"], row["file_name"]) == (3, "b-2", "omschrijving", "f1.csv")
    assert "rij 3" in row["message"] and "verplicht veld is leeg" in row["message"]
    assert '"omschrijving": ""' in row["raw"]
    (submission,) = readmodel.submissions(conn)
    assert (submission["rows_in"], submission["rows_accepted"], submission["rows_rejected"]) == (2, 1, 1)
    assert counts.rejected == 1


def test_latest_prediction_has_the_predictor_shape(conn):
    _store(conn, "f1.jsonl", [_initiative()])
    (record,) = readmodel.current_initiatives(conn)
    prediction = readmodel.latest_predictions(conn)[record["pk"]]
    assert prediction["themes"] == ["eenzaamheid"]
    assert prediction["doelgroepen"] == ["ouderen"]
    assert prediction["scores"]["themes"] == {"eenzaamheid": 0.9, "voedsel_basis": 0.1}
    assert prediction["scores"]["kind"] == 0.1
    assert prediction["model_id"] == "m-1"
    assert prediction["replicability"] is None


def test_replicability_and_reasons_are_stored(conn):
    stored = writes.store_submission(
        conn, file_name="f", sha256="f", accepted=[_initiative()], rejected=[],
        predictions=[_prediction(replicability=4)],
    )
    prediction = next(iter(readmodel.latest_predictions(conn).values()))
    assert (prediction["replicability"], prediction["replicability_score"]) == (4, pytest.approx(3.8))
    assert prediction["replicability_reasons"] == ["Weinig budget nodig.", "Vrijwilligers zijn er al."]
    assert stored.predictions == 1


def test_a_newer_prediction_is_the_one_in_force_and_the_old_is_kept(conn):
    _store(conn, "f1.jsonl", [_initiative()])
    (record,) = readmodel.current_initiatives(conn)
    with schema.transaction(conn):
        writes.add_prediction(conn, record["pk"], _prediction("m-2", themes=("voedsel_basis",)))
    prediction = readmodel.latest_predictions(conn)[record["pk"]]
    assert (prediction["model_id"], prediction["themes"]) == ("m-2", ["voedsel_basis"])
    assert readmodel.counts(conn)["predictions"] == 2


def test_groups_are_replaced_whole(conn):
    _store(conn, "f1.jsonl", [_initiative("a"), _initiative("b"), _initiative("c")])
    writes.replace_groups(conn, [{"group_id": "g-1", "members": ["a", "b"], "naam": "Bellen",
                                 "gemeenten": ["Almere"], "kernwoorden": ["bellen"], "cohesie": 0.7}])
    writes.replace_groups(conn, [{"group_id": "g-2", "members": ["b", "c"], "naam": "Bellen 2"}],
                         grouped_max_pk=3)
    (group,) = readmodel.groups(conn)
    assert (group["group_id"], group["members"]) == ("g-2", ["b", "c"])
    assert set(readmodel.group_of(conn)) == {"b", "c"}
    assert schema.get_state(conn, "grouped_max_pk") == "3"


def _add_review(conn, initiative_pk, themes, name="anna", replicability=5, note=None):
    with schema.transaction(conn):
        reviewer = conn.execute("SELECT pk FROM reviewers WHERE name = ?", (name,)).fetchone()
        if reviewer is None:
            reviewer_pk = conn.execute(
                "INSERT INTO reviewers (name, password_hash, created_at) VALUES (?, 'x', ?)",
                (name, schema.now()),
            ).lastrowid
        else:
            reviewer_pk = reviewer[0]
        conn.execute(
            "INSERT INTO reviews (initiative_pk, reviewer_pk, created_at, themes, doelgroepen, kind, "
            "replicability, note) VALUES (?, ?, ?, ?, '[\"ouderen\"]', 'initiative', ?, ?)",
            (initiative_pk, reviewer_pk, schema.now(), schema._json(list(themes)), replicability, note),
        )


def test_catalogue_prefers_the_reviewers_labels_over_the_model(conn):
    _store(conn, "f1.jsonl", [_initiative("a"), _initiative("b")])
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    _add_review(conn, pks["a"], ["gezondheid_zorg"])
    rows = {r["id"]: r for r in readmodel.catalogue(conn)}
    assert (rows["a"]["themes"], rows["a"]["labels_from"], rows["a"]["replicability"]) == (
        ["gezondheid_zorg"], "review", 5)
    assert (rows["b"]["themes"], rows["b"]["labels_from"]) == (["eenzaamheid"], "model")


def test_resending_unchanged_rows_adds_no_version_and_keeps_the_review_in_force(conn):
    sent = [_initiative("a", naam="Bel", urls=("https://x.nl",), gemeenten=("Almere", "Ede"),
                        extra={"jaar": 2021}), _initiative("b")]
    _store(conn, "f1.jsonl", sent)
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    _add_review(conn, pks["a"], ["gezondheid_zorg"])
    # The municipality sends its whole list again: "a" as it was, "b" changed.
    counts = _store(conn, "f2.jsonl", [sent[0], _initiative("b", text="Nu ook in Ede.")])
    assert (counts.unchanged, counts.initiatives, counts.new_versions) == (1, 1, 1)
    assert [v["version"] for v in readmodel.initiative_versions(conn, "a")] == [1]
    assert [v["version"] for v in readmodel.initiative_versions(conn, "b")] == [1, 2]
    assert readmodel.counts(conn)["predictions"] == 3  # none for the unchanged row
    rows = {r["id"]: r for r in readmodel.catalogue(conn)}
    assert (rows["a"]["labels_from"], rows["a"]["themes"]) == ("review", ["gezondheid_zorg"])
    assert rows["b"]["omschrijving"] == "Nu ook in Ede."


@pytest.mark.parametrize("field, value", [
    ("naam", "Bel-maatje"), ("gemeente", "Ede"), ("gemeenten", ("Almere",)),
    ("urls", ("https://y.nl",)), ("extra", {"jaar": 2022}),
])
def test_a_change_in_any_sent_field_is_a_new_version(conn, field, value):
    first = _initiative("a", naam="Bel", urls=("https://x.nl",), gemeenten=("Almere", "Ede"),
                        extra={"jaar": 2021})
    _store(conn, "f1.jsonl", [first])
    changed = Initiative(**{**first.__dict__, field: value})
    assert _store(conn, "f2.jsonl", [changed]).new_versions == 1


def _store_scored(conn, rows, replicability):
    return writes.store_submission(
        conn, file_name="f.jsonl", sha256="f", accepted=rows, rejected=[],
        predictions=[_prediction(replicability=replicability) for _ in rows],
    )


def test_a_reviewers_other_score_drops_the_models_reasons(conn, settings):
    _store_scored(conn, [_initiative("a"), _initiative("b"), _initiative("c")], replicability=3)
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    _add_review(conn, pks["a"], ["eenzaamheid"], replicability=5, note="Al in drie gemeenten gedaan.")
    _add_review(conn, pks["b"], ["eenzaamheid"], replicability=1)
    _add_review(conn, pks["c"], ["eenzaamheid"], replicability=3)  # agrees with the model
    rows = {r["id"]: r for r in readmodel.catalogue(conn)}
    assert (rows["a"]["replicability"], rows["a"]["replicability_reasons"]) == (
        5, ["Al in drie gemeenten gedaan."])
    assert (rows["b"]["replicability"], rows["b"]["replicability_reasons"]) == (1, [])
    assert rows["c"]["replicability_reasons"] == ["Weinig budget nodig.", "Vrijwilligers zijn er al."]
    from pipeline.core.config import load_taxonomy

    exported = {r["Id"]: r for r in export.export_records(conn, load_taxonomy(settings.paths.taxonomy))}
    assert (exported["a"]["Overdraagbaarheid"], exported["a"]["Redenen"]) == (
        5, "Al in drie gemeenten gedaan.")
    assert exported["b"]["Redenen"] == ""


def test_a_few_ids_are_looked_up_without_reading_the_whole_catalogue(conn):
    _store(conn, "f1.jsonl", [_initiative(i) for i in ("c", "a", "b", "d")])
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    _add_review(conn, pks["b"], ["gezondheid_zorg"])
    assert [r["id"] for r in readmodel.current_initiatives(conn, ["d", "b", "onbekend", "b"])] == ["b", "d"]
    rows = readmodel.catalogue(conn, ["b", "c"])
    assert [(r["id"], r["labels_from"]) for r in rows] == [("b", "review"), ("c", "model")]
    assert set(readmodel.latest_reviews(conn, [pks["c"]])) == set()
    assert set(readmodel.latest_reviews(conn, [pks["b"], pks["c"]])) == {pks["b"]}
    assert readmodel.catalogue(conn, []) == []


def test_the_catalogue_signature_changes_with_every_change_readers_see(conn):
    seen = [readmodel.catalogue_signature(conn)]

    def changed():
        seen.append(readmodel.catalogue_signature(conn))
        return seen[-1] != seen[-2]

    assert not changed()
    _store(conn, "f1.jsonl", [_initiative("a"), _initiative("b")])
    assert changed()
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    with schema.transaction(conn):
        writes.add_prediction(conn, pks["a"], _prediction("m-2"))
    assert changed()
    _add_review(conn, pks["b"], ["gezondheid_zorg"])
    assert changed()
    group = {"group_id": "g-1", "members": ["a", "b"], "naam": "Bellen"}
    writes.replace_groups(conn, [group])
    assert changed()
    writes.replace_groups(conn, [dict(group, naam="Bellen anders")])  # same count, other groups
    assert changed()
    assert not changed()


def test_stale_initiatives_skip_reviewed_rows_and_rows_of_the_current_model(conn):
    _store(conn, "f1.jsonl", [_initiative("a"), _initiative("b"), _initiative("c")], model_id="old")
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    _add_review(conn, pks["a"], ["gezondheid_zorg"])
    with schema.transaction(conn):
        writes.add_prediction(conn, pks["c"], _prediction("new"))
    todo, skipped = readmodel.stale_initiatives(conn, "new")
    assert [r["id"] for r in todo] == ["b"]
    assert skipped == 1


# --- export ----------------------------------------------------------------------------------


@pytest.fixture
def exported_catalogue(tmp_path):
    """A catalogue of two rows, one in a group, one reviewed, one with a formula-like text."""
    path = tmp_path / "catalogue.sqlite"
    conn = schema.connect(path)
    rows = [
        _initiative("a", text="=1+1 Ouderen bellen; cliénten", gemeenten=("Almere", "Lelystad"),
                    naam="Bel-maatje"),
        _initiative("b", text="Voedselpakketten rondbrengen.", gemeente="Ede", gemeenten=("Ede",)),
    ]
    predictions = [_prediction(replicability=4), _prediction(kind="signal")]
    predictions[0]["replicability_reasons"] = [
        {"reden": "Weinig budget nodig", "richting": "+", "bewijs": None}]
    writes.store_submission(conn, file_name="f", sha256="f", accepted=rows, rejected=[
        RejectedRow(7, "c", (Problem("gemeente", "verplicht veld ontbreekt"),), {"id": "c"})],
        predictions=predictions)
    writes.replace_groups(conn, [{"group_id": "g-1", "members": ["a", "b"], "naam": "Ouderen bellen",
                                 "gemeenten": ["Almere", "Ede"]}])
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    _add_review(conn, pks["b"], ["voedsel_basis"])
    conn.close()
    return path


def _export(settings, db, out, *args):
    from click.testing import CliRunner

    from pipeline.cli.main import main

    result = CliRunner().invoke(main, ["export", "--db", str(db), "--out", str(out), *args],
                                obj={"settings": settings})
    assert result.exit_code == 0, result.output
    return result


def test_export_xlsx_has_dutch_columns_labels_by_name_and_text_never_becomes_a_formula(
        settings, exported_catalogue, tmp_path):
    import openpyxl

    out = tmp_path / "catalogus.xlsx"
    result = _export(settings, exported_catalogue, out, "--format", "xlsx")
    assert "2 initiatieven" in result.output
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    for column in ("Naam", "Gemeente", "Omschrijving", "Thema's", "Doelgroepen", "Soort",
                   "Overdraagbaarheid", "Redenen", "Groep", "Model"):
        assert column in header
    rows = {r[0]: dict(zip(header, r)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    a, b = rows["a"], rows["b"]
    assert a["Omschrijving"] == "=1+1 Ouderen bellen; cliénten"
    assert sheet.cell(row=2, column=header.index("Omschrijving") + 1).data_type == "s"
    assert a["Thema's"] == "Eenzaamheid en sociaal contact"
    assert (a["Soort"], a["Overdraagbaarheid"], a["Redenen"]) == ("Initiatief", 4, "+ Weinig budget nodig")
    assert (a["Groep"], a["Ook in"], a["Labels van"], a["Model"]) == ("Ouderen bellen", "Ede", "model", "m-1")
    assert (b["Labels van"], b["Soort"]) == ("beoordelaar", "Initiatief")  # the review's kind
    assert "Voedsel" in b["Thema's"]


def test_export_csv_opens_in_dutch_excel_and_guards_against_formulas(settings, exported_catalogue, tmp_path):
    import csv

    out = tmp_path / "catalogus.csv"
    _export(settings, exported_catalogue, out, "--format", "csv")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8 accents right
    with open(out, encoding="utf-8-sig", newline="") as handle:
        records = list(csv.DictReader(handle, delimiter=";"))
    assert [r["Id"] for r in records] == ["a", "b"]
    assert records[0]["Omschrijving"] == "'=1+1 Ouderen bellen; cliénten"
    assert records[0]["Gemeenten"] == "Almere; Lelystad"


def test_export_jsonl_and_rejected_rows(settings, exported_catalogue, tmp_path):
    out = tmp_path / "catalogus.jsonl"
    _export(settings, exported_catalogue, out, "--format", "jsonl")
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert records[0]["Omschrijving"] == "=1+1 Ouderen bellen; cliénten"
    assert list(records[0])[:3] == ["Id", "Naam", "Gemeente"]
    rejected_out = tmp_path / "afgewezen.jsonl"
    result = _export(settings, exported_catalogue, rejected_out, "--format", "jsonl", "--rejected")
    assert "1 afgewezen rijen" in result.output
    (row,) = [json.loads(line) for line in rejected_out.read_text(encoding="utf-8").splitlines()]
    assert (row["Rij"], row["Id"], row["Veld"]) == (7, "c", "gemeente")


def test_export_of_an_unknown_format_is_refused(settings, exported_catalogue, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli.main import main

    result = CliRunner().invoke(main, ["export", "--db", str(exported_catalogue), "--format", "pdf",
                                       "--out", str(tmp_path / "x.pdf")], obj={"settings": settings})
    assert result.exit_code != 0 and "pdf" in result.output


def test_numpy_numbers_from_the_models_are_stored_as_plain_numbers(conn):
    import numpy as np

    prediction = _prediction(replicability=4)
    prediction.update(replicability=np.int64(3), replicability_score=np.float32(2.75),
                      replicability_reasons=[{"reden": "Weinig budget", "richting": "+",
                                              "gewicht": np.float64(0.5)}])
    prediction["scores"]["themes"]["eenzaamheid"] = np.float32(0.9)
    writes.store_submission(conn, file_name="f", sha256="f", accepted=[_initiative()], rejected=[],
                           predictions=[prediction])
    stored = next(iter(readmodel.latest_predictions(conn).values()))
    assert (stored["replicability"], stored["replicability_score"]) == (3, 2.75)
    assert stored["replicability_reasons"][0]["gewicht"] == 0.5


def test_predictions_stored_before_migration_2_are_read_from_their_label_rows(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    schema.migrate(old, schema.MIGRATIONS[:1])  # a catalogue written by the first version
    old.executescript(
        "INSERT INTO submissions (file_name, sha256, received_at, status) VALUES ('f', 'f', 't', 'stored');"
        "INSERT INTO initiatives (id, version, gemeente, omschrijving, submission_id, received_at)"
        "  VALUES ('a', 1, 'Ede', 'tekst', 1, 't');"
        "INSERT INTO predictions (initiative_pk, model_id, created_at, kind) VALUES (1, 'm-0', 't', 'signal');"
        "INSERT INTO prediction_labels VALUES (1, 'themes', 'schulden', 0.3, 0), (1, 'themes', 'eenzaamheid', 0.8, 1);"
    )
    old.close()
    conn = schema.connect(path)
    assert schema.schema_version(conn) == len(schema.MIGRATIONS)
    prediction = readmodel.latest_predictions(conn)[1]
    assert prediction["themes"] == ["eenzaamheid"]
    assert prediction["scores"]["themes"] == {"eenzaamheid": 0.8, "schulden": 0.3}


def test_resolved_municipalities_are_stored_and_older_versions_resolved_on_reading(conn, tmp_path):
    from pipeline.catalogue.records import catalogue_records
    from pipeline.ingest.reader import validate_records

    assert schema.schema_version(conn) == len(schema.MIGRATIONS) >= 3
    resolved = validate_records([(1, {"id": "a-1", "gemeente": "Den Bosch", "omschrijving": "Maatjes."},
                                  "", None)]).accepted
    _store(conn, "a.jsonl", resolved + [_initiative("b-1", gemeente="Diverse gemeenten")])
    stored = {r["id"]: r for r in readmodel.current_initiatives(conn)}
    assert stored["a-1"]["places"][0]["code"] == "GM0796" and stored["a-1"]["gemeente"] == "Den Bosch"
    assert stored["b-1"]["places"] is None                       # made in code: not resolved yet
    records = {r["id"]: r for r in catalogue_records(conn)}
    assert records["a-1"]["gemeente_codes"] == ["GM0796"]
    assert records["a-1"]["gemeenten"] == ["'s-Hertogenbosch"]
    assert records["a-1"]["provincies"] == ["Noord-Brabant"]
    assert records["b-1"]["gemeente_codes"] == [] and records["b-1"]["gemeenten"] == []
    assert records["b-1"]["plaatsen"] == [{"text": "Diverse gemeenten", "how": "unresolved",
                                           "field": "gemeente"}]


def test_a_catalogue_of_schema_3_gets_the_places_column(tmp_path):
    path = tmp_path / "old.sqlite"
    old = schema.connect(path)
    old.close()
    raw = sqlite3.connect(path)
    raw.execute("ALTER TABLE initiatives DROP COLUMN places")
    raw.execute("DROP TABLE idea_links")  # migration 5 (same-idea marks) came after schema 3 too
    raw.execute("PRAGMA user_version = 3")
    raw.commit()
    raw.close()
    conn = schema.connect(path)
    assert "places" in {row["name"] for row in conn.execute("PRAGMA table_info(initiatives)")}
    conn.close()
