"""Issue 17, classes 1, 2 and 9 at the inbox: a file always ends stored with its bad rows listed,
links are never followed, any file name is handled. The real job, the real released model."""

from __future__ import annotations

import json
import os
import time

import pytest

from pipeline.catalogue import readmodel, schema
from pipeline.core.errors import InputFileError
from pipeline.jobs.inbox import FAILED, STORED, run_inbox
from pipeline.models.predict import Predictor

from conftest import PROJECT_ROOT

needs_model = pytest.mark.skipif(not (PROJECT_ROOT / "models" / "LATEST").is_file(),
                                 reason="no released model")


@pytest.fixture(scope="module")
def predictor(settings):
    return Predictor.load(None, settings)


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def _good_lines(corpus_rows, n=2, prefix="g"):
    return [json.dumps({**corpus_rows[i], "id": f"{prefix}{i}"}, ensure_ascii=False) for i in range(n)]


def _run(inbox, conn, predictor, settings):
    past = time.time() - 3600
    for path in inbox.iterdir():
        if path.is_file() and not path.is_symlink():
            os.utime(path, (past, past))
    return run_inbox(inbox, conn, predictor_factory=lambda: predictor, limits=settings.ingest)


@needs_model
def test_class1_a_file_with_hostile_rows_is_stored_with_them_listed(inbox, tmp_path, predictor,
                                                                    settings, corpus_rows):
    lines = _good_lines(corpus_rows) + [
        '{"id": "diep", "gemeente": "Ede", "omschrijving": "x", "e": ' + "[" * 20000 + "]" * 20000 + "}",
        '{"id": ' + "9" * 5000 + ', "gemeente": "Ede", "omschrijving": "tekst"}',
        '{"id": "s", "gemeente": "Ede", "omschrijving": "kapot \\ud800 teken"}',
    ]
    (inbox / "vijandig.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    conn = schema.connect(tmp_path / "c.sqlite")
    report = _run(inbox, conn, predictor, settings)
    (outcome,) = report.files
    assert outcome.status == STORED and outcome.accepted == 2 and outcome.rejected_rows == 3
    assert [r["row"] for r in readmodel.rejected_rows(conn)] == [3, 4, 5]
    assert (inbox / "processed" / "vijandig.jsonl").is_file()


@needs_model
def test_class2_links_are_never_followed(inbox, tmp_path, predictor, settings, corpus_rows):
    secret = tmp_path / "geheim.jsonl"
    secret.write_text("\n".join(_good_lines(corpus_rows, prefix="geheim")) + "\n", encoding="utf-8")
    (inbox / "link.jsonl").symlink_to(secret)
    conn = schema.connect(tmp_path / "c.sqlite")
    report = _run(inbox, conn, predictor, settings)
    assert report.files == [] and readmodel.counts(conn)["initiatives"] == 0
    assert (inbox / "link.jsonl").is_symlink() and secret.is_file()


def test_class2_a_linked_processed_folder_is_refused(inbox, tmp_path, settings):
    elsewhere = tmp_path / "elders"
    elsewhere.mkdir()
    (inbox / "processed").symlink_to(elsewhere)
    (inbox / "a.jsonl").write_text('{"id": "a", "gemeente": "Ede", "omschrijving": "tekst"}\n')
    conn = schema.connect(tmp_path / "c.sqlite")
    with pytest.raises(InputFileError, match="link"):
        run_inbox(inbox, conn, predictor_factory=lambda: None, limits=settings.ingest)
    assert list(elsewhere.iterdir()) == [] and (inbox / "a.jsonl").is_file()


def test_class2_a_linked_report_name_is_replaced_not_written_through(inbox, tmp_path, settings):
    target = tmp_path / "belangrijk.txt"
    target.write_text("origineel")
    (inbox / "rejected").mkdir()
    (inbox / "rejected" / "kapot.jsonl.fout.txt").symlink_to(target)
    (inbox / "kapot.jsonl").write_text("geen json\n")
    conn = schema.connect(tmp_path / "c.sqlite")
    _run(inbox, conn, None, settings)
    assert target.read_text() == "origineel"


@needs_model
def test_class9_odd_file_names_are_stored_shown_safely_and_moved(inbox, tmp_path, predictor,
                                                                  settings, corpus_rows):
    body = "\n".join(_good_lines(corpus_rows, n=1)) + "\n"
    raw_name = b"gemeente-\xff\xfe.jsonl"
    with open(os.path.join(os.fsencode(inbox), raw_name), "w", encoding="utf-8") as handle:
        handle.write(body)
    (inbox / "regel\nINFO vals\x1b[31m.jsonl").write_text(body.replace('"g0"', '"g1"'), encoding="utf-8")
    long_name = "x" * 245 + ".jsonl"
    (inbox / long_name).write_text(body.replace('"g0"', '"g2"'), encoding="utf-8")
    (inbox / "processed").mkdir()
    (inbox / "processed" / long_name).write_text("eerder bestand")
    conn = schema.connect(tmp_path / "c.sqlite")
    report = _run(inbox, conn, predictor, settings)
    assert [f.status for f in report.files] == [STORED] * 3 and not report.count(FAILED)
    names = [r["file_name"] for r in readmodel.submissions(conn)]
    assert all("\n" not in n and "\x1b" not in n for n in names)
    assert any("\\xff\\xfe" in n for n in names)
    assert [p.name for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")] == []
    assert len(list((inbox / "processed").iterdir())) == 4


def test_class12_a_read_only_catalogue_is_said_before_any_model_loads(inbox, tmp_path, settings):
    import sqlite3

    from pipeline.core.errors import StoreError

    db = tmp_path / "c.sqlite"
    schema.connect(db).close()
    (inbox / "a.jsonl").write_text('{"id": "a", "gemeente": "Ede", "omschrijving": "tekst"}\n')
    read_only = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    read_only.row_factory = sqlite3.Row
    loaded = []
    with pytest.raises(StoreError, match="alleen-lezen"):
        run_inbox(inbox, read_only, predictor_factory=lambda: loaded.append(1), limits=settings.ingest)
    assert loaded == [] and (inbox / "a.jsonl").is_file()
