"""ingest: JSONL and Excel-style CSV in, good rows accepted, every bad row named by row and field."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import InputFileError
from pipeline.ingest import errors_path_for, read_initiatives, write_rejected

from conftest import write_jsonl

GOOD = {"id": "a-1", "gemeente": "Utrecht", "naam": "Maatjes", "omschrijving": "Vrijwilligers bellen ouderen."}


def test_jsonl_keeps_text_exactly_as_given(tmp_path):
    raw = "  Maat-\njes   bellen • ouderen  "
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "omschrijving": raw}])
    result = read_initiatives(path)
    assert [i.omschrijving for i in result.accepted] == [raw]
    assert result.rejected == []


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_with_comma_or_semicolon(tmp_path, delimiter):
    text = (f"id{delimiter}gemeente{delimiter}omschrijving\n"
            f'b-1{delimiter}Zwolle{delimiter}"Voedselpakketten, ook aan huis"\n')
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    result = read_initiatives(path)
    assert [(i.id, i.gemeente, i.omschrijving) for i in result.accepted] == [
        ("b-1", "Zwolle", "Voedselpakketten, ook aan huis")]


def test_csv_with_utf8_bom(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("id;gemeente;omschrijving\nc-1;Ede;Cliënten krijgen hulp\n".encode("utf-8-sig"))
    result = read_initiatives(path)
    assert result.accepted[0].id == "c-1"  # the BOM is not glued to the first column name
    assert result.accepted[0].omschrijving == "Cliënten krijgen hulp"


def test_csv_in_windows_1252(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("id;gemeente;omschrijving\nd-1;Den Haag;Cliënten – één loket\n".encode("cp1252"))
    result = read_initiatives(path)
    assert result.encoding == "cp1252"
    assert result.accepted[0].omschrijving == "Cliënten – één loket"


def test_broken_json_line_is_rejected_and_the_rest_goes_on(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, '{"id": "x", "gemeente": ', {**GOOD, "id": "a-2"}])
    result = read_initiatives(path)
    assert [i.id for i in result.accepted] == ["a-1", "a-2"]
    (bad,) = result.rejected
    assert bad.row == 2
    assert "JSON" in bad.message()


@pytest.mark.parametrize("change, field", [
    ({"gemeente": None}, "gemeente"),
    ({"omschrijving": "   "}, "omschrijving"),
    ({"id": ""}, "id"),
])
def test_missing_or_empty_required_field_names_row_and_field(tmp_path, change, field):
    row = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "id": "ok"}, row])
    result = read_initiatives(path)
    assert [i.id for i in result.accepted] == ["ok"]
    (bad,) = result.rejected
    assert bad.row == 2 and bad.field == field
    assert f"rij 2" in bad.message() and f"'{field}'" in bad.message()


def test_duplicate_id_is_rejected_with_the_first_row(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, {**GOOD, "omschrijving": "Anders"}])
    result = read_initiatives(path)
    assert len(result.accepted) == 1
    (bad,) = result.rejected
    assert bad.id == "a-1" and bad.field == "id" and "rij 1" in bad.message()


def test_too_long_text_is_rejected_not_truncated(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "omschrijving": "x" * 50}])
    result = read_initiatives(path, max_text_chars=40)
    assert result.accepted == []
    assert result.rejected[0].field == "omschrijving"
    assert "50" in result.rejected[0].message()


def test_xlsx_renamed_to_csv_is_a_clean_error(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # the zip signature every .xlsx starts with
    with pytest.raises(InputFileError, match="Excel"):
        read_initiatives(path)


def test_empty_and_missing_files_are_clean_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputFileError, match="leeg"):
        read_initiatives(empty)
    with pytest.raises(InputFileError, match="niet gevonden"):
        read_initiatives(tmp_path / "nope.csv")


def test_rejected_rows_are_written_beside_the_output_with_raw_row(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "gemeente": ""}])
    result = read_initiatives(path)
    target = errors_path_for(tmp_path / "pred.jsonl")
    assert target.name == "pred.errors.jsonl"
    write_rejected(result.rejected, target)
    (line,) = [json.loads(l) for l in target.read_text(encoding="utf-8").splitlines()]
    assert line["row"] == 1 and line["field"] == "gemeente" and line["raw"]
