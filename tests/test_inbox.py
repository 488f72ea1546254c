"""The scheduled job `pipeline run`, run as a real subprocess on a real SQLite file.

The crash tests run the job through tests/run_paused.py, which pauses it at one of the job's
checkpoints (pipeline.jobs.inbox.CHECKPOINTS) and says so on stderr; the test SIGKILLs it there,
then runs the job again and counts rows: none lost, none doubled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.jobs.inbox import pending_files
from pipeline.jobs.reclassify import reclassify

from conftest import PROJECT_ROOT, write_jsonl

PIPELINE = Path(sys.executable).parent / "pipeline"
MODELS = PROJECT_ROOT / "models"
# Generous: a run loads the model and the encoder; corpus texts come from the embedding cache.
RUN_TIMEOUT = 300

needs_model = pytest.mark.skipif(
    not (MODELS / "LATEST").is_file(), reason="no released model in models/ (run `make train`)"
)


@pytest.fixture(scope="module")
def rows(corpus_rows):
    """Six corpus rows: their texts are in the embedding cache, so runs stay fast."""
    return [dict(r) for r in corpus_rows[:6]]


@pytest.fixture
def workdir(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return inbox, tmp_path / "catalogue.sqlite", tmp_path / "run.log"


def settle(inbox):
    """Date the inbox's files an hour back: the job leaves files newer than [run] settle_seconds
    for a later run (they may still be arriving)."""
    past = time.time() - 3600
    for path in inbox.iterdir() if inbox.is_dir() else ():
        if path.is_file():
            os.utime(path, (past, past))


def run_job(inbox, db, log, *, env=None, check=True, settled=True, extra_args=()):
    if settled:
        settle(inbox)
    result = subprocess.run(
        [str(PIPELINE), "run", "--inbox", str(inbox), "--db", str(db), "--log", str(log), *extra_args],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, env={**os.environ, **(env or {})},
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def start_paused(inbox, db, log, point):
    """Start the job paused at `point` (tests/run_paused.py) and wait until it says so."""
    settle(inbox)
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("run_paused.py")), point,
         "run", "--inbox", str(inbox), "--db", str(db), "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen = []
    for line in process.stderr:  # blocks until the job writes; ends if the job exits
        seen.append(line)
        if f"pausing at {point}" in line:
            return process
    process.wait(timeout=RUN_TIMEOUT)
    pytest.fail(f"the job never paused at {point}; it exited {process.returncode}: {''.join(seen)}"
                f"{process.stdout.read()}")


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=RUN_TIMEOUT)
    assert process.returncode == -signal.SIGKILL


def catalogue_counts(db):
    conn = schema.connect(db)
    try:
        return readmodel.counts(conn)
    finally:
        conn.close()


def csv_with_bad_rows(path, rows):
    """Two good rows and two bad ones (empty description, missing gemeente)."""
    lines = ["id;gemeente;naam;omschrijving"]
    for r in rows[:2]:
        lines.append(f"{r['id']};{r['gemeente']};;\"{r['omschrijving'].replace(chr(34), chr(34) * 2)}\"")
    lines += ["leeg-1;Ede;Leeg;", "zonder-gemeente;;Iets;Een tekst zonder gemeente."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- without a model -------------------------------------------------------------------------


def test_pending_files_skip_hidden_and_uploading_files(tmp_path):
    for name in ("b.jsonl", "a.csv", ".pipeline-run.lock", "c.jsonl.part", "d.tmp"):
        (tmp_path / name).write_text("x")
    (tmp_path / "processed").mkdir()
    assert [p.name for p in pending_files(tmp_path, (".part", ".tmp"))] == ["a.csv", "b.jsonl"]


def test_an_unreadable_file_goes_to_rejected_with_a_dutch_and_english_report(workdir):
    inbox, db, log = workdir
    (inbox / "export.csv").write_bytes(b"PK\x03\x04 this is really an xlsx file")
    result = run_job(inbox, db, log)
    assert "1 unreadable" in result.stdout
    assert not (inbox / "export.csv").exists()
    assert (inbox / "rejected" / "export.csv").exists()
    report = (inbox / "rejected" / "export.csv.fout.txt").read_text(encoding="utf-8")
    assert "NEDERLANDS" in report and "ENGLISH" in report and "Excel" in report
    (submission,) = readmodel.submissions(schema.connect(db))
    assert (submission["status"], submission["file_name"]) == ("rejected", "export.csv")
    assert "export.csv: unreadable" in log.read_text(encoding="utf-8")


def test_empty_and_half_uploaded_files_wait_and_are_never_recorded(workdir):
    inbox, db, log = workdir
    (inbox / "leeg.csv").write_bytes(b"")
    settle(inbox)  # old enough, but empty: an upload that has not written anything yet
    (inbox / "half.csv").write_text("id;gem", encoding="utf-8")  # just arrived: half a header
    result = run_job(inbox, db, log, settled=False)
    assert "2 still arriving" in result.stdout and "0 unreadable" in result.stdout
    assert {p.name for p in pending_files(inbox)} == {"leeg.csv", "half.csv"}
    assert not (inbox / "rejected").exists()
    assert catalogue_counts(db)["submissions"] == 0
    assert "leeg.csv: empty" in log.read_text(encoding="utf-8")


def test_settle_seconds_zero_takes_a_file_just_copied_in(workdir, rows):
    inbox, db, log = workdir
    write_jsonl(inbox / "nu.jsonl", rows[:2])
    waiting = run_job(inbox, db, log, settled=False)
    assert "1 still arriving" in waiting.stdout and catalogue_counts(db)["initiatives"] == 0
    taken = run_job(inbox, db, log, settled=False, extra_args=("--settle-seconds", "0"))
    assert "1 stored" in taken.stdout, taken.stdout
    assert catalogue_counts(db)["initiatives"] == 2


def test_a_missing_inbox_is_a_clean_error(tmp_path):
    result = run_job(tmp_path / "nope", tmp_path / "c.sqlite", tmp_path / "run.log", check=False)
    assert result.returncode == 1
    assert "inbox" in result.stderr and "Traceback" not in result.stderr


def test_without_a_model_the_run_stops_cleanly_and_the_file_waits(workdir, rows, tmp_path):
    inbox, db, log = workdir
    write_jsonl(inbox / "a.jsonl", rows[:1])
    settle(inbox)
    result = subprocess.run(
        [str(PIPELINE), "run", "--inbox", str(inbox), "--db", str(db), "--log", str(log),
         "--model", str(tmp_path / "geen-model")],
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 1
    assert "model.joblib" in result.stderr and "Traceback" not in result.stderr
    assert (inbox / "a.jsonl").exists()
    assert catalogue_counts(db)["initiatives"] == 0
    assert "run stopped" in log.read_text(encoding="utf-8")


# --- with the released model -----------------------------------------------------------------


@needs_model
def test_good_bad_and_broken_files_in_one_run(workdir, rows):
    inbox, db, log = workdir
    write_jsonl(inbox / "01-goed.jsonl", rows[:3])
    csv_with_bad_rows(inbox / "02-deels-fout.csv", rows[3:5])
    (inbox / "03-kapot.jsonl").write_text("dit is geen json\n", encoding="utf-8")
    result = run_job(inbox, db, log)

    assert result.stdout.count("\n") == 1, result.stdout  # one summary line
    assert "3 file(s), 2 stored, 0 already known, 1 unreadable" in result.stdout
    counts = catalogue_counts(db)
    assert (counts["submissions"], counts["initiatives"], counts["rejected_rows"]) == (3, 5, 2)
    assert counts["predictions"] == 5
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["01-goed.jsonl", "02-deels-fout.csv"]
    assert (inbox / "rejected" / "03-kapot.jsonl.fout.txt").exists()
    assert pending_files(inbox) == []

    conn = schema.connect(db)
    stored = {r["id"]: r for r in readmodel.current_initiatives(conn)}
    assert stored[rows[0]["id"]]["omschrijving"] == rows[0]["omschrijving"]  # exactly as given
    model_id = (MODELS / "LATEST").read_text().strip()
    assert {p["model_id"] for p in readmodel.latest_predictions(conn).values()} == {model_id}
    rejected = {r["id"]: r for r in readmodel.rejected_rows(conn)}
    assert set(rejected) == {"leeg-1", "zonder-gemeente"}
    assert rejected["leeg-1"]["field"] == "omschrijving" and rejected["leeg-1"]["row"] == 4
    assert "rij 4" in rejected["leeg-1"]["message"]
    assert schema.get_state(conn, "grouped_max_pk") == str(readmodel.max_initiative_pk(conn))
    assert "rij 4 (id leeg-1)" in log.read_text(encoding="utf-8")


@needs_model
def test_the_same_file_twice_adds_nothing(workdir, rows):
    inbox, db, log = workdir
    write_jsonl(inbox / "a.jsonl", rows[:2])
    run_job(inbox, db, log)
    before = catalogue_counts(db)
    shutil.copy(inbox / "processed" / "a.jsonl", inbox / "a.jsonl")  # same name, same content
    shutil.copy(inbox / "processed" / "a.jsonl", inbox / "b-kopie.jsonl")
    result = run_job(inbox, db, log)
    assert "2 file(s), 0 stored, 2 already known" in result.stdout
    assert catalogue_counts(db) == before
    assert len(list((inbox / "processed").iterdir())) == 3  # nothing the sender gave is dropped
    assert "same content as submission 1" in log.read_text(encoding="utf-8")


@needs_model
def test_the_same_id_in_a_new_file_is_a_new_version(workdir, rows):
    inbox, db, log = workdir
    write_jsonl(inbox / "a.jsonl", rows[:1])
    run_job(inbox, db, log)
    changed = dict(rows[0], omschrijving=rows[0]["omschrijving"] + " Aangevuld in 2021.")
    write_jsonl(inbox / "b.jsonl", [changed])
    result = run_job(inbox, db, log)
    assert "1 new version(s)" in result.stdout
    conn = schema.connect(db)
    versions = readmodel.initiative_versions(conn, rows[0]["id"])
    assert [(v["version"], v["is_current"]) for v in versions] == [(1, 0), (2, 1)]
    assert versions[0]["omschrijving"] == rows[0]["omschrijving"]
    assert readmodel.counts(conn)["current_initiatives"] == 1


@needs_model
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_killed_in_the_middle_of_a_file_the_next_run_loses_and_doubles_nothing(workdir, rows, point):
    inbox, db, log = workdir
    write_jsonl(inbox / "01.jsonl", rows[:2])
    write_jsonl(inbox / "02.jsonl", rows[2:5])
    kill(start_paused(inbox, db, log, point))

    committed = catalogue_counts(db)["initiatives"]
    assert committed == (0 if point == "before_commit" else 2)
    assert (inbox / "01.jsonl").exists()  # not moved before the kill

    result = run_job(inbox, db, log)
    counts = catalogue_counts(db)
    assert (counts["submissions"], counts["initiatives"], counts["predictions"]) == (2, 5, 5)
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["01.jsonl", "02.jsonl"]
    expected = "1 already known" if point == "after_commit" else "0 already known"
    assert expected in result.stdout


@needs_model
def test_a_half_uploaded_file_is_stored_whole_once_complete(workdir, rows):
    inbox, db, log = workdir
    (inbox / "a.csv").write_text("id;gemeente;omsch", encoding="utf-8")
    (inbox / "b.jsonl").write_bytes(b"")
    run_job(inbox, db, log, settled=False)
    csv_with_bad_rows(inbox / "a.csv", rows[:2])  # the uploads complete under the same names
    write_jsonl(inbox / "b.jsonl", rows[2:3])
    result = run_job(inbox, db, log)
    assert "2 stored, 0 already known, 0 unreadable" in result.stdout
    counts = catalogue_counts(db)
    assert (counts["submissions"], counts["initiatives"], counts["rejected_rows"]) == (2, 3, 2)
    assert pending_files(inbox) == []


@needs_model
@pytest.mark.parametrize("point", ["after_predict", "after_commit"])
def test_a_file_that_grows_during_a_run_stays_and_is_stored_whole_next_run(workdir, rows, point):
    inbox, db, log = workdir
    path = write_jsonl(inbox / "01.jsonl", rows[:2])
    process = start_paused(inbox, db, log, point)
    with open(path, "a", encoding="utf-8") as handle:  # the sender's upload goes on
        for row in rows[2:4]:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    process.send_signal(signal.SIGUSR1)  # the hook's "go on"
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode == 0, out + err
    assert path.exists()  # not moved: rows 3 and 4 were never read
    assert catalogue_counts(db)["initiatives"] == (0 if point == "after_predict" else 2)

    result = run_job(inbox, db, log)
    counts = catalogue_counts(db)
    assert (counts["initiatives"], counts["current_initiatives"], counts["predictions"]) == (4, 4, 4)
    assert [p.name for p in (inbox / "processed").iterdir()] == ["01.jsonl"]
    assert pending_files(inbox) == []
    if point == "after_commit":
        assert "2 initiative(s) added (0 new version(s)), 2 unchanged" in result.stdout


@needs_model
def test_resending_unchanged_rows_keeps_the_review_in_force(workdir, rows):
    inbox, db, log = workdir
    write_jsonl(inbox / "a.jsonl", rows[:2])
    run_job(inbox, db, log)
    conn = schema.connect(db)
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    with schema.transaction(conn):
        reviewer = conn.execute("INSERT INTO reviewers (name, password_hash, created_at) "
                                "VALUES ('anna', 'x', ?)", (schema.now(),)).lastrowid
        conn.execute("INSERT INTO reviews (initiative_pk, reviewer_pk, created_at, themes, kind) "
                     "VALUES (?, ?, ?, '[\"schulden\"]', 'signal')",
                     (pks[rows[0]["id"]], reviewer, schema.now()))
    changed = dict(rows[1], omschrijving=rows[1]["omschrijving"] + " Aangevuld in 2021.")
    write_jsonl(inbox / "b.jsonl", [rows[0], changed])  # the whole list again, one row changed
    result = run_job(inbox, db, log)
    assert "1 initiative(s) added (1 new version(s)), 1 unchanged" in result.stdout
    assert [v["version"] for v in readmodel.initiative_versions(conn, rows[0]["id"])] == [1]
    assert [v["version"] for v in readmodel.initiative_versions(conn, rows[1]["id"])] == [1, 2]
    reviewed = {r["id"]: r for r in readmodel.catalogue(conn)}[rows[0]["id"]]
    assert (reviewed["labels_from"], reviewed["themes"]) == ("review", ["schulden"])


@needs_model
def test_a_second_run_while_one_is_busy_says_so_and_exits_0(workdir, rows):
    inbox, db, log = workdir
    write_jsonl(inbox / "01.jsonl", rows[:2])
    first = start_paused(inbox, db, log, "before_commit")
    try:
        second = run_job(inbox, db, log)
        assert "another run is busy" in second.stdout
        assert (inbox / "01.jsonl").exists()
    finally:
        kill(first)
    # The busy run touched nothing; what the killed one left is finished by the next run (see
    # the kill test above).
    assert catalogue_counts(db)["initiatives"] == 0
    assert "another run holds" in log.read_text(encoding="utf-8")


@needs_model
def test_reclassify_repredicts_old_rows_but_never_reviewed_ones(tmp_path, rows, settings):
    from pipeline.models.predict import Predictor

    conn = schema.connect(tmp_path / "c.sqlite")
    from pipeline.ingest.reader import validate_records

    accepted = validate_records([(i, r, r, None) for i, r in enumerate(rows[:3], start=1)]).accepted
    old = [{"model_id": "oud-model", "themes": ["schulden"], "doelgroepen": [], "kind": "signal",
            "scores": {}} for _ in accepted]
    writes.store_submission(conn, file_name="f", sha256="f", accepted=accepted, rejected=[],
                           predictions=old)
    pks = {r["id"]: r["pk"] for r in readmodel.current_initiatives(conn)}
    with schema.transaction(conn):
        reviewer = conn.execute("INSERT INTO reviewers (name, password_hash, created_at) "
                                "VALUES ('anna', 'x', ?)", (schema.now(),)).lastrowid
        conn.execute("INSERT INTO reviews (initiative_pk, reviewer_pk, created_at, themes, kind) "
                     "VALUES (?, ?, ?, '[\"schulden\"]', 'signal')",
                     (pks[rows[0]["id"]], reviewer, schema.now()))

    predictor = Predictor.load(None, settings)
    report = reclassify(conn, predictor)
    assert (report.predicted, report.skipped_reviewed) == (2, 1)
    latest = readmodel.latest_predictions(conn)
    assert latest[pks[rows[0]["id"]]]["model_id"] == "oud-model"
    assert latest[pks[rows[1]["id"]]]["model_id"] == predictor.model_id
    reviewed = {r["id"]: r for r in readmodel.catalogue(conn)}[rows[0]["id"]]
    assert (reviewed["themes"], reviewed["labels_from"]) == (["schulden"], "review")
    assert reclassify(conn, predictor).predicted == 0  # nothing left to do
    assert readmodel.counts(conn)["predictions"] == 5


@needs_model
def test_reclassify_command_prints_its_summary(tmp_path, rows, settings):
    from click.testing import CliRunner

    from pipeline.cli.main import main
    from pipeline.ingest.reader import validate_records

    db = tmp_path / "c.sqlite"
    conn = schema.connect(db)
    accepted = validate_records([(1, rows[0], rows[0], None)]).accepted
    writes.store_submission(conn, file_name="f", sha256="f", accepted=accepted, rejected=[],
                           predictions=[{"model_id": "oud-model", "kind": "initiative"}])
    conn.close()
    result = CliRunner().invoke(main, ["reclassify", "--db", str(db)], obj={"settings": settings})
    assert result.exit_code == 0, result.output
    model_id = (MODELS / "LATEST").read_text().strip()
    assert f"1 initiative(s) re-predicted with {model_id}, 0 kept" in result.output
