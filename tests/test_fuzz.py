"""Fuzzing ingest and the inbox (issue 17) with hypothesis: whatever a file holds, the reader
raises nothing but `InputFileError`, every row is accepted or listed as rejected (row, field),
every row can be stored, and the job never leaves a file FAILED."""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from pipeline.catalogue import readmodel, schema, writes
from pipeline.core.errors import InputFileError
from pipeline.ingest.reader import read_initiatives
from pipeline.jobs.inbox import FAILED, run_inbox
from pipeline.models.predict import Predictor

from conftest import PROJECT_ROOT

# Text with everything that broke something once: controls, separators, surrogates, "$", slashes.
HOSTILE = st.sampled_from(["\u0000", "\u0007", "\u001b[31m", "\u2028", "\u2029", "\u0085", "\ud800",
                           "\udfff", "$x$", "/", "..", "\\", "\r", "\n", "\t", "\u202e", "\ufeff",
                           "=1+1", '"', ";", ",", "é", "ë"])
TEXT = st.lists(st.one_of(HOSTILE, st.text(max_size=12)), max_size=6).map("".join)
VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                     max_leaves=12)
ROW = st.fixed_dictionaries(
    {},
    optional={"id": st.one_of(TEXT, st.integers(), st.floats(), VALUE),
              "gemeente": st.one_of(TEXT, VALUE), "omschrijving": st.one_of(TEXT, VALUE),
              "naam": st.one_of(TEXT, VALUE), "gemeenten": st.one_of(TEXT, VALUE),
              "urls": st.one_of(TEXT, VALUE), "extra": VALUE},
)
GOOD_ROW = st.builds(lambda i, text: {"id": f"r{i}", "gemeente": "Ede",
                                      "omschrijving": f"Vrijwilligers koken maaltijden {text}"},
                     st.integers(0, 10**6), TEXT)
LINE = st.one_of(ROW.map(lambda r: json.dumps(r)), GOOD_ROW.map(json.dumps), TEXT,
                 st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
                 st.integers(4300, 6000).map(lambda n: '{"id": ' + "7" * n + "}"))


def _prediction():
    return {"model_id": "fuzz", "themes": [], "doelgroepen": [], "kind": "initiative", "scores": {},
            "replicability": 3, "replicability_score": 3.0, "replicability_reasons": []}


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(lines=st.lists(LINE, min_size=1, max_size=8))
def test_every_jsonl_row_is_accepted_or_rejected_and_storable(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "in.jsonl"
    text = "\n".join(line.replace("\n", " ") for line in lines)
    try:
        # A .jsonl file must start with "{" or "[" (else the whole file is refused, tested elsewhere).
        path.write_text("{" + text if not text.lstrip().startswith(("{", "[")) else text,
                        encoding="utf-8", errors="backslashreplace")
        result = read_initiatives(path)
    except InputFileError:
        return
    content = path.read_bytes().decode("utf-8-sig")
    try:
        whole = json.loads(content)
    except (ValueError, RecursionError):
        whole = None
    if whole is None:  # JSON lines: every non-blank line is one accepted or one rejected row
        numbered = [n for n, line in enumerate(content.split("\n"), 1) if line.strip()]
        seen = sorted([i.row for i in result.accepted] + [r.row for r in result.rejected])
        assert seen == numbered
    for row in result.rejected:
        assert row.row >= 1 and row.field and row.message()
    conn = schema.connect(folder / "c.sqlite")
    try:
        writes.store_submission(conn, file_name="in.jsonl", sha256=str(time.time_ns()),
                                accepted=result.accepted, rejected=result.rejected,
                                predictions=[_prediction() for _ in result.accepted])
    finally:
        conn.close()


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(TEXT, min_size=1, max_size=5), min_size=1, max_size=6),
       delimiter=st.sampled_from([";", ",", "\t"]))
def test_every_csv_row_is_accepted_or_rejected(tmp_path_factory, cells, delimiter):
    path = tmp_path_factory.mktemp("fuzz") / "in.csv"
    header = delimiter.join(["id", "gemeente", "omschrijving", "naam", "extra"])
    body = "\n".join(delimiter.join(row) for row in cells)
    path.write_text(header + "\n" + body + "\n", encoding="utf-8", errors="backslashreplace")
    try:
        result = read_initiatives(path)
    except InputFileError:
        return
    for row in result.rejected:
        assert row.row >= 2 and row.field


needs_model = pytest.mark.skipif(not (PROJECT_ROOT / "models" / "LATEST").is_file(),
                                 reason="no released model")
NAME = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\x00" not in b
                                                 and b not in (b".", b"..") and not b.startswith(b"."))


@pytest.fixture(scope="module")
def predictor(settings):
    return Predictor.load(None, settings)


@needs_model
@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(files=st.lists(st.tuples(NAME, st.sampled_from([".jsonl", ".csv", ""]),
                                st.lists(LINE, min_size=1, max_size=4)), min_size=1, max_size=3))
def test_the_job_never_leaves_a_file_failed(tmp_path_factory, predictor, settings, files):
    root = tmp_path_factory.mktemp("inbox")
    inbox = root / "inbox"
    inbox.mkdir()
    for stem, suffix, lines in files:
        name = os.path.join(os.fsencode(inbox), (stem + suffix.encode())[-250:])
        with open(name, "wb") as handle:
            handle.write("\n".join(lines).encode("utf-8", "backslashreplace"))
        os.utime(name, (time.time() - 3600, time.time() - 3600))
    conn = schema.connect(root / "c.sqlite")
    try:
        report = run_inbox(inbox, conn, predictor_factory=lambda: predictor, limits=settings.ingest)
        assert report.count(FAILED) == 0, [f.message for f in report.files]
        left = [p for p in os.listdir(os.fsencode(inbox)) if not p.startswith(b".")
                and os.path.isfile(os.path.join(os.fsencode(inbox), p))]
        skipped = [f for f in report.files if f.status == "skipped"]
        assert len(left) == len(skipped)
        assert readmodel.counts(conn) is not None
    finally:
        conn.close()
