"""ingest: JSONL and Excel-style CSV in, good rows accepted, every bad row named by row and field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.core.config import load_settings
from pipeline.core.errors import InputFileError
from pipeline.core.records import errors_path_for, write_rejected
from pipeline.ingest.reader import read_initiatives

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
    assert "rij 2" in bad.message() and f"'{field}'" in bad.message()


def test_duplicate_id_is_rejected_with_the_first_row(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, {**GOOD, "omschrijving": "Anders"}])
    result = read_initiatives(path)
    assert len(result.accepted) == 1
    (bad,) = result.rejected
    assert bad.id == "a-1" and bad.field == "id" and "rij 1" in bad.message()


def test_too_long_text_is_rejected_not_truncated(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "omschrijving": "x" * 50}])
    result = read_initiatives(path, limits=dataclasses.replace(load_settings().ingest, max_text_chars=40))
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


# --- review findings: every row named, nothing the user gave dropped or garbled ---------------


@pytest.mark.parametrize("naam, omschrijving", [
    (None, "https://www.delft.nl/corona"),
    (None, "info@delft.nl"),
    (None, "• \n• "),
    ("www.x.nl", "https://www.delft.nl/corona  info@delft.nl"),
])
def test_description_with_only_links_or_bullets_is_rejected(tmp_path, naam, omschrijving):
    row = {**GOOD, "id": "b", "naam": naam, "omschrijving": omschrijving}
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, row])
    result = read_initiatives(path)
    assert [i.id for i in result.accepted] == ["a-1"]
    (bad,) = result.rejected
    assert (bad.row, bad.id, bad.field) == (2, "b", "omschrijving")
    assert "links" in bad.message() and bad.raw  # raw row kept for the errors file


def test_a_link_with_a_name_is_still_accepted(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "omschrijving": "https://www.delft.nl/corona"}])
    assert [i.id for i in read_initiatives(path).accepted] == ["a-1"]


@pytest.mark.parametrize("header", [
    "id,gemeente,omschrijving,omschrijving",
    "id;gemeente;Omschrijving;omschrijving ",
])
def test_repeated_column_name_is_a_clean_error(tmp_path, header):
    delimiter = "," if "," in header else ";"
    path = tmp_path / "in.csv"
    path.write_text(header + "\n" + delimiter.join(["1", "Delft", "eerste", "tweede"]) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="omschrijving"):
        read_initiatives(path)


@pytest.mark.parametrize("stray_line", [2, 3])
def test_utf8_file_with_one_windows_1252_line_keeps_every_accent(tmp_path, stray_line):
    lines = ["id;gemeente;omschrijving", "1;Delft;Cliënten krijgen één loket", "2;Ede;Café voor ouderen"]
    encoded = [line.encode("utf-8") for line in lines]
    encoded[stray_line - 1] = lines[stray_line - 1].encode("cp1252")
    path = tmp_path / "in.csv"
    path.write_bytes(b"\n".join(encoded) + b"\n")
    result = read_initiatives(path)
    assert [i.omschrijving for i in result.accepted] == ["Cliënten krijgen één loket", "Café voor ouderen"]
    (warning,) = result.warnings
    assert f"regel(s) {stray_line} " in warning and "Windows-1252" in warning


@pytest.mark.parametrize("length", [131_073, 200_000])
def test_huge_csv_cell_is_a_rejected_row_not_a_crash(tmp_path, length):
    path = tmp_path / "in.csv"
    path.write_text(f"id,gemeente,omschrijving\n1,Delft,{'x' * length}\n2,Ede,kort\n", encoding="utf-8")
    result = read_initiatives(path, limits=dataclasses.replace(load_settings().ingest, max_text_chars=20_000))
    assert [i.id for i in result.accepted] == ["2"]
    (bad,) = result.rejected
    assert (bad.row, bad.id, bad.field) == (2, "1", "omschrijving") and str(length) in bad.message()


@pytest.mark.parametrize("body, bad_row, good_ids", [
    # an unclosed quote swallows every later line: say so, keep the raw lines
    ('1,Delft,"open\n2,Ede,tweede\n3,Epe,derde\n', 2, []),
    ('0,Epe,goed\n1,Delft,"open\n2,Ede,tweede\n', 3, ["0"]),
    # text after a closing quote: that row is rejected, the next one is read
    ('1,Delft,"x"y\n2,Ede,tweede\n', 2, ["2"]),
])
def test_broken_quotes_are_rejected_rows_naming_the_line(tmp_path, body, bad_row, good_ids):
    path = tmp_path / "in.csv"
    path.write_text("id,gemeente,omschrijving\n" + body, encoding="utf-8")
    result = read_initiatives(path)
    assert [i.id for i in result.accepted] == good_ids
    (bad,) = result.rejected
    assert bad.row == bad_row and f"rij {bad_row}" in bad.message() and "regel" in bad.message()
    assert bad.raw.startswith(body.splitlines()[bad_row - 2])


@pytest.mark.parametrize("leading", ["\n\n", "\r\n", " \n;;\n"])
def test_blank_lines_above_the_header_are_skipped(tmp_path, leading):
    path = tmp_path / "in.csv"
    path.write_text(leading + "id;gemeente;omschrijving\n1;Delft;ok\n2;Ede;\n", encoding="utf-8", newline="")
    result = read_initiatives(path)
    header_line = leading.count("\n") + 1
    assert [(i.id, i.row) for i in result.accepted] == [("1", header_line + 1)]
    assert result.rejected[0].row == header_line + 2


@pytest.mark.parametrize("header, cells, expected", [
    ("id,gemeente,omschrijving,", "1,Delft,tekst,bijzonder", {"kolom_4": "bijzonder"}),
    ("id,,gemeente,omschrijving", "1,notitie,Delft,tekst", {"kolom_2": "notitie"}),
])
def test_cells_under_an_empty_column_name_are_kept(tmp_path, header, cells, expected):
    path = tmp_path / "in.csv"
    path.write_text(f"{header}\n{cells}\n", encoding="utf-8")
    (initiative,) = read_initiatives(path).accepted
    assert initiative.extra == expected


@pytest.mark.parametrize("indent", [2, "\t"])
def test_one_pretty_printed_json_object_is_one_row(tmp_path, indent):
    path = tmp_path / "in.json"
    path.write_text("\n" + json.dumps(GOOD, indent=indent), encoding="utf-8")
    result = read_initiatives(path)
    assert [(i.id, i.row) for i in result.accepted] == [("a-1", 2)] and result.rejected == []


@pytest.mark.parametrize("text", ["id,gemeente,omschrijving\n", "id;gemeente;omschrijving\n\n\n"])
def test_header_only_csv_warns_that_there_are_no_rows(tmp_path, text):
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    result = read_initiatives(path)
    assert result.rows_in == 0
    (warning,) = result.warnings
    assert "geen rijen" in warning


@pytest.mark.parametrize("gemeenten, expected", [
    ("Delft; Leiden", ("Delft", "Leiden")),
    ("Delft|Leiden, Ede", ("Delft", "Leiden", "Ede")),
    (["Delft", " Leiden "], ("Delft", "Leiden")),
])
def test_jsonl_gemeenten_as_a_string_is_split_like_csv(tmp_path, gemeenten, expected):
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "gemeenten": gemeenten, "urls": "https://a.nl https://b.nl"}])
    (initiative,) = read_initiatives(path).accepted
    assert initiative.gemeenten == expected
    assert initiative.urls == ("https://a.nl", "https://b.nl")


def test_municipalities_are_resolved_at_ingest_and_odd_values_warn_per_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(
        "id;gemeente;gemeenten;omschrijving\n"
        "a;Den Bosch;;Vrijwilligers bellen ouderen.\n"
        "b;Diverse gemeenten;;Schuldhulp samen.\n"
        "c;Heerhugowaard;;Maaltijden rond.\n"
        "d;Amsterdm;;Laptops voor scholieren.\n"
        "e;Breda (regio);Breda;Nachtopvang.\n", encoding="utf-8")
    result = read_initiatives(path)
    by_id = {i.id: i for i in result.accepted}
    assert len(by_id) == 5 and result.rejected == []
    assert by_id["b"].gemeente == "Diverse gemeenten"          # the text as sent is kept
    assert [(p.code, p.how) for p in by_id["a"].places] == [("GM0796", "spelling")]
    assert [(p.code, p.how) for p in by_id["b"].places] == [(None, "unresolved")]
    assert [(p.code, p.old_name) for p in by_id["c"].places] == [("GM1980", "Heerhugowaard")]
    assert [p.code for p in by_id["e"].places] == [None, "GM0758"]
    warned = " | ".join(result.warnings)
    assert "rij 3 (id b): veld 'gemeente': 'Diverse gemeenten' is niet te herleiden" in warned
    assert "rij 4 (id c)" in warned and "opgeheven" in warned
    assert "rij 5 (id d)" in warned and "gelezen als Amsterdam" in warned
    assert "rij 6 (id e)" in warned and "is een regio" in warned
    assert "id a)" not in warned
