"""Same-idea grouping and nearest neighbours (pipeline/group.py, `pipeline group` / `similar`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_jsonl
from pipeline.cli.main import main
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Grouper, SimilarityIndex, UnknownIdError, cut, hub_corrected, nearest
from pipeline.models.group_describe import group_id
from pipeline.core.records import Initiative

# Two obvious pairs (laptops for pupils, extra food parcels) and one unrelated row.
ROWS = [
    {"id": "a1", "gemeente": "Almere", "naam": "Laptops voor scholieren",
     "omschrijving": "Leerlingen zonder computer krijgen een laptop in bruikleen zodat zij "
                     "thuisonderwijs kunnen volgen."},
    {"id": "a2", "gemeente": "Heerlen", "naam": "Laptops voor leerlingen",
     "omschrijving": "Scholieren die thuis geen computer hebben krijgen een laptop van de gemeente "
                     "om thuisonderwijs te volgen."},
    {"id": "b1", "gemeente": "Breda", "naam": "Voedselpakketten",
     "omschrijving": "De voedselbank bezorgt extra voedselpakketten bij gezinnen die door corona "
                     "geen inkomen meer hebben."},
    {"id": "b2", "gemeente": "Delft", "naam": "Extra voedselpakketten",
     "omschrijving": "Gezinnen zonder inkomen krijgen via de voedselbank extra voedselpakketten "
                     "thuisbezorgd."},
    {"id": "c1", "gemeente": "Zwolle", "naam": "Parkeervergunning",
     "omschrijving": "Ondernemers in de binnenstad betalen dit jaar minder voor hun "
                     "terrasvergunning en parkeervergunning."},
]


def initiatives(rows=ROWS):
    return [Initiative(id=r["id"], gemeente=r["gemeente"], naam=r["naam"],
                       omschrijving=r["omschrijving"]) for r in rows]


@pytest.fixture(scope="module")
def encoder(settings):
    return encoder_from_config(settings.embed)


@pytest.fixture(scope="module")
def fitted(settings, encoder):
    return Grouper.from_config(settings.group, encoder=encoder).fit(initiatives())


def test_two_obvious_pairs_group_and_the_unrelated_row_stays_alone(fitted):
    assert [g.members for g in fitted.groups_] == [("a1", "a2"), ("b1", "b2")]
    labels = dict(zip([r["id"] for r in ROWS], fitted.labels_))
    assert labels["a1"] == labels["a2"] != labels["b1"] == labels["b2"]
    assert labels["c1"] not in {labels["a1"], labels["b1"]}


def test_group_fields_describe_the_idea(fitted):
    laptops = fitted.groups_[0]
    assert laptops.gemeenten == ("Almere", "Heerlen")
    assert laptops.naam in {"Laptops voor scholieren", "Laptops voor leerlingen"}
    assert "laptop" in laptops.kernwoorden
    assert 0.0 < laptops.cohesie <= 1.0
    assert laptops.group_id == group_id(["a2", "a1"])


def test_same_rows_twice_give_the_same_group_ids(settings, encoder, fitted):
    again = Grouper.from_config(settings.group, encoder=encoder).fit(initiatives())
    assert [g.group_id for g in again.groups_] == [g.group_id for g in fitted.groups_]


def test_shuffled_input_gives_the_same_groups(settings, encoder, fitted):
    shuffled = initiatives([ROWS[i] for i in (4, 2, 0, 3, 1)])
    again = Grouper.from_config(settings.group, encoder=encoder).fit(shuffled)
    assert [g.to_dict() for g in again.groups_] == [g.to_dict() for g in fitted.groups_]
    # labels_ follow the input order
    assert again.labels_[2] == again.labels_[4]  # a1, a2


@pytest.mark.parametrize("ids,expected", [
    (["a1", "b1", "c1"], []),                      # three unrelated rows stay apart
    (["a1", "b1"], []),
    (["a1", "b1", "c1", "b2"], [("b1", "b2")]),
])
def test_small_inputs_group_only_rows_that_are_really_alike(settings, encoder, ids, expected):
    rows = [r for r in ROWS if r["id"] in ids]
    grouper = Grouper.from_config(settings.group, encoder=encoder).fit(rows)
    assert [g.members for g in grouper.groups_] == expected


def test_group_id_depends_only_on_the_members():
    assert group_id(["x", "y"]) == group_id(["y", "x"])
    assert group_id(["x", "y"]) != group_id(["x", "z"])
    assert group_id(["x", "y"]).startswith("g-")


def test_nearest_ranks_the_partner_first_and_accepts_catalogue_mappings(settings, encoder):
    found = nearest(ROWS, "b1", k=2, config=settings.group, encoder=encoder)
    assert [n.id for n in found][0] == "b2"
    assert len(found) == 2
    assert found[0].score >= found[1].score


def test_nearest_with_precomputed_vectors_needs_no_encoder():
    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.05], [0, 0, 1]], float)
    found = SimilarityIndex().fit(ROWS, vectors=vectors).nearest("a2", k=1)
    assert found[0].id == "a1"


def test_nearest_unknown_id_is_a_clear_error():
    index = SimilarityIndex().fit(ROWS, vectors=np.eye(5))
    with pytest.raises(UnknownIdError, match="'zz'.*unknown id"):
        index.nearest("zz")


def test_duplicate_ids_are_refused():
    rows = ROWS[:2] + [dict(ROWS[0])]
    with pytest.raises(ValueError, match="repeated.*a1"):
        SimilarityIndex().fit(rows, vectors=np.eye(3))


@pytest.mark.parametrize("param,value,message", [
    ("dense_weight", 1.5, "dense_weight"),
    ("text", "titel", "text must be one of"),
    ("hub_neighbours", -1, "hub_neighbours"),
])
def test_bad_parameters_name_the_value(param, value, message):
    with pytest.raises(ValueError, match=message):
        SimilarityIndex(**{param: value}).fit(ROWS, vectors=np.eye(5))


def test_hub_correction_lowers_a_row_close_to_everything():
    s = np.array([[1.0, 0.9, 0.8, 0.1], [0.9, 1.0, 0.85, 0.1], [0.8, 0.85, 1.0, 0.1],
                  [0.1, 0.1, 0.1, 1.0]])
    corrected = hub_corrected(s, 1)
    assert np.allclose(corrected, corrected.T)
    # 0-1 is the mutual best pair; 1-2 loses more because both have a better partner
    assert corrected[0, 1] > corrected[1, 2]


def test_cut_is_all_singletons_above_every_score():
    s = np.array([[1.0, 0.2], [0.2, 1.0]])
    assert list(cut(s, 0.5)) == [0, 1]
    assert list(cut(s, 0.1)) == [0, 0]


# --- CLI ----------------------------------------------------------------------------------------


def test_group_command_writes_one_line_per_group_and_reports_rejected_rows(tmp_path):
    bad = {"id": "x9", "gemeente": "Ede"}  # no omschrijving
    source = write_jsonl(tmp_path / "in.jsonl", ROWS + [bad])
    out = tmp_path / "groups.jsonl"
    result = CliRunner().invoke(main, ["group", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["members"] for line in lines] == [["a1", "a2"], ["b1", "b2"]]
    assert set(lines[0]) == {"group_id", "members", "gemeenten", "naam", "kernwoorden", "cohesie"}
    assert "2 groups" in result.output and "1 rows rejected" in result.output
    errors = (tmp_path / "groups.errors.jsonl").read_text(encoding="utf-8")
    assert '"x9"' in errors and "omschrijving" in errors


def test_similar_command_lists_neighbours_and_json(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    runner = CliRunner()
    result = runner.invoke(main, ["similar", "a1", "--in", str(source), "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("1. a2")
    result = runner.invoke(main, ["similar", "a1", "--in", str(source), "-k", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["id"] == "a2"


def test_similar_unknown_id_is_a_clean_error(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    result = CliRunner().invoke(main, ["similar", "nope", "--in", str(source)])
    assert result.exit_code == 1
    assert "'nope'" in result.output and "Traceback" not in result.output


def test_index_accepts_sqlite_rows(tmp_path):
    import sqlite3

    conn = sqlite3.connect(tmp_path / "c.sqlite")
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE t (id TEXT, gemeente TEXT, naam TEXT, omschrijving TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                     [(r["id"], r["gemeente"], r["naam"], r["omschrijving"]) for r in ROWS])
    records = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    index = SimilarityIndex().fit(records, vectors=np.eye(5))
    assert index.ids_ == ["a1", "a2", "b1", "b2", "c1"]
    assert index.nearest("b1", k=1)[0].id == "b2"  # shared words carry it with orthogonal vectors


@pytest.mark.parametrize("ident", [0, "0", 0.0])
def test_id_zero_is_a_real_id(ident):
    rows = [{**ROWS[0], "id": ident}] + ROWS[1:]
    index = SimilarityIndex().fit(rows, vectors=np.eye(5))
    assert str(ident) in index.ids_


@pytest.mark.parametrize("change, field", [({"id": None}, "id"), ({"id": " "}, "id"), ({"omschrijving": ""}, "omschrijving")])
def test_missing_id_or_text_is_named(change, field):
    with pytest.raises(ValueError, match=f"no '{field}'"):
        SimilarityIndex().fit([{**ROWS[0], **change}], vectors=np.eye(1))


@pytest.mark.parametrize("name, value", [("text", "omschrijving"), ("dense_weight", 0.3),
                                         ("char_ngram_min", 2), ("char_ngram_max", 4),
                                         ("hub_neighbours", 3)])
def test_every_index_setting_reaches_the_grouper_index(name, value):
    grouper = Grouper(**{name: value}).fit(ROWS, vectors=np.eye(5))
    assert grouper.index_.get_params()[name] == value
