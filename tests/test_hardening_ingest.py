"""Issue 17, classes 1, 4 (at ingest), 10 and 11: one rule for a valid row and a valid id,
enforced at ingest with a message naming row, id and field; one bad row never stops the file."""

from __future__ import annotations

import json

import pytest

from pipeline.catalogue import readmodel, schema, writes
from pipeline.ingest.reader import read_initiatives

GOOD = {"gemeente": "Ede", "omschrijving": "Vrijwilligers bellen wekelijks met eenzame ouderen."}


def _read(tmp_path, lines, name="in.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_initiatives(path)


def _line(**fields):
    return json.dumps({**GOOD, **fields}, ensure_ascii=False)


# --- class 1: rows that crashed the reader or failed later in spaCy / SQLite -----------------


def test_class1_hostile_rows_are_rejected_per_row_and_the_good_ones_kept(tmp_path):
    deep = '{"id": "diep", "gemeente": "Ede", "omschrijving": "x", "extra": ' + "[" * 50_000 + "]" * 50_000 + "}"
    lines = [
        _line(id="goed-1"),
        deep,
        '{"id": ' + "9" * 5000 + ', "gemeente": "Ede", "omschrijving": "tekst"}',
        '{"id": "surrogaat", "gemeente": "Ede", "omschrijving": "kapot \\ud800 teken"}',
        '{"id": "s2", "gemeente": "Ede\\udfff", "omschrijving": "tekst"}',
        _line(id="goed-2"),
    ]
    result = _read(tmp_path, lines)
    assert [i.id for i in result.accepted] == ["goed-1", "goed-2"]
    assert [r.row for r in result.rejected] == [2, 3, 4, 5]
    by_row = {r.row: r for r in result.rejected}
    assert by_row[4].id == "surrogaat" and by_row[4].field == "omschrijving"
    assert "U+D800" in by_row[4].message()
    assert by_row[5].field == "gemeente"


def test_class1_every_rejected_row_can_be_stored_and_listed(tmp_path):
    lines = [
        _line(id="goed-1"),
        '[{"id": "a\\ud800", "gemeente": "Ede", "omschrijving": "x"}]',
        '{"id": "nest", "gemeente": "Ede", "omschrijving": "tekst", "x": ' + "[" * 20 + "]" * 20 + "}",
        '{"id": "sleutel", "gemeente": "Ede", "omschrijving": "tekst", "k\\ud800": 1}',
    ]
    result = _read(tmp_path, lines)
    assert [i.id for i in result.accepted] == ["goed-1"]
    assert len(result.rejected) == 3
    conn = schema.connect(tmp_path / "c.sqlite")
    writes.store_submission(conn, file_name="in.jsonl", sha256="x", accepted=[],
                            rejected=result.rejected, predictions=[])
    stored = readmodel.rejected_rows(conn)
    assert len(stored) == 3 and all(r["message"] for r in stored)


# --- class 4 at ingest: control characters --------------------------------------------------


@pytest.mark.parametrize("field_name, value", [
    ("gemeente", "Ede\u0007"), ("naam", "Naam\u001b[31m"), ("omschrijving", "Tekst met bel \u0007"),
    ("gemeenten", ["Ede", "Wageningen\u0000"]),
])
def test_class4_control_characters_are_rejected_naming_the_field(tmp_path, field_name, value):
    result = _read(tmp_path, [_line(id="c1", **{field_name: value})])
    assert not result.accepted
    (row,) = result.rejected
    assert row.field == field_name and "stuurteken" in row.message()


def test_class4_tabs_and_newlines_stay_allowed_in_a_description(tmp_path):
    result = _read(tmp_path, [_line(id="t1", omschrijving="Regel een\n\tRegel twee\r\nEinde")])
    assert [i.id for i in result.accepted] == ["t1"]


# --- class 10: ids that cannot be one segment of a URL path ----------------------------------


@pytest.mark.parametrize("ident", [
    "x/overslaan", "..", ".", "../../x", "//evil.example", "regel\neen", "a\\b", "tab\tid",
    "rtl\u202eid", "x" * 201,
])
def test_class10_unsafe_ids_are_rejected_with_a_message(tmp_path, ident):
    result = _read(tmp_path, [_line(id=ident), _line(id="goed")])
    assert [i.id for i in result.accepted] == ["goed"]
    (row,) = result.rejected
    assert row.field == "id" and row.row == 1
    assert "\n" not in (row.id or "") and "\t" not in (row.id or "")


@pytest.mark.parametrize("ident", ["halsema-013", "Ede 12", "2024.01", "ëën_1", "a:b~c", 12])
def test_class10_ordinary_ids_stay_valid(tmp_path, ident):
    result = _read(tmp_path, [_line(id=ident)])
    assert [i.id for i in result.accepted] == [str(ident)]


def test_class10_a_non_finite_number_is_no_id(tmp_path):
    result = _read(tmp_path, ['{"id": 1e400, "gemeente": "Ede", "omschrijving": "tekst"}'])
    assert not result.accepted and result.rejected[0].field == "id"


# --- class 11: only "\n" ends a JSON line ----------------------------------------------------


def test_class11_unicode_line_separators_inside_strings_keep_the_row(tmp_path):
    lines = [
        _line(id="r1", omschrijving="Een\u2028twee\u2029drie\u0085vier\x1c\x1d\x1e"[:-3]),
        _line(id="r2"),
        "{kapot",
        _line(id="r4"),
    ]
    result = _read(tmp_path, lines)
    assert [(i.id, i.row) for i in result.accepted] == [("r1", 1), ("r2", 2), ("r4", 4)]
    assert [r.row for r in result.rejected] == [3]


# --- class 9: what reaches a terminal ---------------------------------------------------------


def test_class9_escape_codes_in_a_file_never_reach_the_terminal(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli.main import main

    path = tmp_path / "kleur\x1b[31m.jsonl"
    path.write_text('{"id": "a", "gemeente": "Ede", "omschrijving": ""}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["group", str(path), "--out", str(tmp_path / "g.jsonl")])
    assert "\x1b" not in result.output and "\\u001b" in result.output


def test_class1_a_few_nul_bytes_reject_their_row_not_the_file(tmp_path):
    path = tmp_path / "nul.jsonl"
    path.write_bytes(b'{"id": "a", "gemeente": "Ede", "omschrijving": "tekst \x00"}\n'
                     b'{"id": "b", "gemeente": "Ede", "omschrijving": "Vrijwilligers koken samen"}\n')
    result = read_initiatives(path)
    assert [i.id for i in result.accepted] == ["b"] and [r.row for r in result.rejected] == [1]
