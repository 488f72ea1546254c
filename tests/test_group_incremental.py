"""Sparse and incremental same-idea grouping (pipeline/models/group_incremental.py, group_graph.py,
pipeline/jobs/regroup.py): the same groups as the dense path, updates that match a full regroup,
ids that stay put, and the state beside a real SQLite catalogue."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.catalogue import readmodel, schema, writes
from pipeline.cli.main import main
from pipeline.core.records import Initiative
from pipeline.jobs.regroup import STATE_TOKEN, regroup, state_path
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Grouper, group_text
from pipeline.models.group_graph import cluster_component, constrained_average, stable_ids
from pipeline.models.group_describe import Group
from pipeline.models.group_incremental import GraphGrouper, GroupingState

ROWS = [
    ("a1", "Almere", "Laptops voor scholieren", "Leerlingen zonder computer krijgen een laptop in "
     "bruikleen zodat zij thuisonderwijs kunnen volgen."),
    ("a2", "Heerlen", "Laptops voor leerlingen", "Scholieren die thuis geen computer hebben krijgen "
     "een laptop van de gemeente om thuisonderwijs te volgen."),
    ("b1", "Breda", "Voedselpakketten", "De voedselbank bezorgt extra voedselpakketten bij gezinnen "
     "die door corona geen inkomen meer hebben."),
    ("b2", "Delft", "Extra voedselpakketten", "Gezinnen zonder inkomen krijgen via de voedselbank "
     "extra voedselpakketten thuisbezorgd."),
    ("c1", "Zwolle", "Parkeervergunning", "Ondernemers in de binnenstad betalen dit jaar minder voor "
     "hun terrasvergunning en parkeervergunning."),
    ("d1", "Ede", "Telefooncirkel ouderen", "Vrijwilligers bellen eenzame ouderen elke dag op via "
     "een telefooncirkel zodat niemand alleen zit."),
    # added later
    ("a3", "Oss", "Laptops voor thuisonderwijs", "Kinderen zonder laptop krijgen er een te leen van "
     "de gemeente zodat zij het thuisonderwijs kunnen volgen."),
    ("d2", "Assen", "Belcirkel voor ouderen", "Eenzame ouderen worden dagelijks gebeld door "
     "vrijwilligers van de telefooncirkel zodat niemand alleen zit."),
    ("e1", "Venlo", "Fietsenstalling station", "Bij het station komt een bewaakte fietsenstalling "
     "met plek voor bakfietsen."),
]


def initiatives(ids=None):
    rows = [Initiative(id=i, gemeente=g, naam=n, omschrijving=o) for i, g, n, o in ROWS]
    return [r for r in rows if ids is None or r.id in ids]


FIRST = ["a1", "a2", "b1", "b2", "c1", "d1"]


@pytest.fixture(scope="module")
def encoder(settings):
    return encoder_from_config(settings.embed)


@pytest.fixture(scope="module")
def first(settings, encoder):
    return GraphGrouper.from_config(settings.group, encoder=encoder).fit(initiatives(FIRST))


def members(grouper):
    return sorted(g.members for g in grouper.groups_)


def test_graph_grouping_gives_the_dense_groups_on_the_corpus(settings, encoder, corpus_rows):
    rows = [Initiative(id=r["id"], gemeente=r["gemeente"], naam=r.get("naam"),
                       omschrijving=r["omschrijving"]) for r in corpus_rows]
    vectors = encoder.embed([group_text(r, settings.group.text) for r in rows])
    dense = Grouper.from_config(settings.group).fit(rows, vectors=vectors)
    graph = GraphGrouper.from_config(settings.group).fit(rows, vectors=vectors)
    assert len(dense.groups_) > 20
    # The graph path finds each row's hub radius from its candidate neighbours only: a pair at the
    # threshold may fall the other way. Nearly every same-idea pair must agree, and a group both
    # paths find keeps the same id.
    def pairs(grouper):
        return {(a, b) for g in grouper.groups_ for a in g.members for b in g.members if a < b}
    shared = pairs(graph) & pairs(dense)
    assert 2 * len(shared) / (len(pairs(graph)) + len(pairs(dense))) >= 0.95
    same = set(members(graph)) & set(members(dense))
    assert len(same) >= len(dense.groups_) - 2
    ids = {g.members: g.group_id for g in dense.groups_}
    assert all(ids[g.members] == g.group_id for g in graph.groups_ if g.members in same)


def test_first_grouping_finds_the_pairs(first):
    assert members(first) == [("a1", "a2"), ("b1", "b2")]


def test_adding_rows_gives_the_groups_of_a_full_regroup(settings, encoder, first):
    full = GraphGrouper.from_config(settings.group, encoder=encoder).fit(initiatives())
    grouper = GraphGrouper.from_config(settings.group, encoder=encoder)
    assert grouper.needs_full(first.state_, initiatives()) is None
    grouper.update(first.state_, initiatives())
    assert members(grouper) == members(full) == [("a1", "a2", "a3"), ("b1", "b2"), ("d1", "d2")]


def test_group_ids_stay_while_groups_grow_and_after_a_full_regroup(settings, encoder, first):
    ids = {g.members: g.group_id for g in first.groups_}
    grouper = GraphGrouper.from_config(settings.group, encoder=encoder).update(first.state_, initiatives())
    after = {g.members: g.group_id for g in grouper.groups_}
    assert after[("a1", "a2", "a3")] == ids[("a1", "a2")]          # grew, kept its id
    assert after[("b1", "b2")] == ids[("b1", "b2")]                # unchanged
    unchanged = {g.group_id: g for g in first.groups_}[ids[("b1", "b2")]]
    assert {g.group_id: g for g in grouper.groups_}[ids[("b1", "b2")]] == unchanged
    assert sorted(grouper.changed_) == sorted([ids[("a1", "a2")], after[("d1", "d2")]])
    again = GraphGrouper.from_config(settings.group, encoder=encoder).fit(
        initiatives(), previous=grouper.groups_)
    assert {g.members: g.group_id for g in again.groups_} == after
    # a second update with nothing new changes nothing
    same = GraphGrouper.from_config(settings.group, encoder=encoder).update(grouper.state_, initiatives())
    assert same.groups_ == grouper.groups_ and same.changed_ == []


def test_a_removed_or_changed_row_leaves_its_group(settings, encoder, first):
    rows = [r for r in initiatives(FIRST) if r.id != "b2"]
    grouper = GraphGrouper.from_config(settings.group, encoder=encoder).update(first.state_, rows)
    assert members(grouper) == [("a1", "a2")]
    assert "b2" not in grouper.state_.ids


def test_other_settings_or_a_doubled_catalogue_need_a_full_regroup(settings, encoder, first):
    other = GraphGrouper.from_config(settings.group, encoder=encoder).set_params(threshold=0.0)
    assert "settings" in other.needs_full(first.state_, initiatives())
    grouper = GraphGrouper.from_config(settings.group, encoder=encoder)
    assert "grew" in grouper.needs_full(first.state_, initiatives() * 3)
    assert grouper.needs_full(None, initiatives()) == "no stored grouping"


def test_state_survives_a_file(tmp_path, first):
    path = first.state_.save(tmp_path / "s.npz")
    loaded = GroupingState.load(path)
    assert loaded.ids == first.state_.ids and loaded.groups == first.state_.groups
    assert np.array_equal(loaded.dense, first.state_.dense)
    assert loaded.space.lexical_moments_ == first.state_.space.lexical_moments_


def test_stable_ids_follow_the_larger_part():
    old = [Group("g-old", ("a", "b", "c", "d"), (), "", (), 0.0)]
    assert stable_ids([("a", "b", "c"), ("d", "e")], old)[0] == "g-old"
    assert stable_ids([("a", "b", "c"), ("d", "e")], old)[1] != "g-old"
    assert stable_ids([("x", "y")], old)[0] != "g-old"


def test_constrained_linkage_never_merges_two_stored_groups():
    score = np.full((4, 4), 1.0)
    clusters = constrained_average(score, [[0, 1], [2], [3]], [True, True, False],
                                   [False, False, True], 0.0)
    assert [0, 1] in clusters or [0, 1, 3] in clusters
    assert not any({0, 2} <= set(c) for c in clusters)


def test_a_chained_component_is_split_to_fit():
    # a chain 0-1-2-3-4-5 with stronger links in pairs
    score = np.full((6, 6), -1e6)
    for a, b, s in [(0, 1, 2.0), (1, 2, 0.5), (2, 3, 2.0), (3, 4, 0.5), (4, 5, 2.0)]:
        score[a, b] = score[b, a] = s
    parts = cluster_component(score, 0.0, "single", max_rows=2)
    assert sorted(map(list, parts)) == [[0, 1], [2, 3], [4, 5]]


# --- the catalogue ------------------------------------------------------------------------------


def _store(conn, rows, name):
    prediction = {"model_id": "t", "themes": [], "doelgroepen": [], "kind": "initiative",
                  "scores": {}, "replicability": 3, "replicability_score": 3.0,
                  "replicability_reasons": []}
    writes.store_submission(conn, file_name=name, sha256=name, accepted=rows, rejected=[],
                            predictions=[prediction] * len(rows))


def test_catalogue_groups_grow_by_run_and_regroup_in_full_on_request(tmp_path, settings, encoder):
    conn = schema.connect(tmp_path / "c.sqlite")
    grouper = GraphGrouper.from_config(settings.group, encoder=encoder)
    _store(conn, initiatives(FIRST), "one")
    done = regroup(conn, grouper)
    assert (done.mode, done.reason, done.groups) == ("full", "no stored grouping", 2)
    assert state_path(conn).is_file()
    first_ids = {tuple(g["members"]): g["group_id"] for g in readmodel.groups(conn)}
    _store(conn, initiatives(["a3", "d2", "e1"]), "two")
    done = regroup(conn, grouper)
    assert (done.mode, done.groups, done.changed) == ("incremental", 3, 2)
    stored = {tuple(g["members"]): g["group_id"] for g in readmodel.groups(conn)}
    assert stored[("a1", "a2", "a3")] == first_ids[("a1", "a2")]
    result = CliRunner().invoke(main, ["regroup", "--db", str(tmp_path / "c.sqlite"), "--full"])
    assert result.exit_code == 0, result.output
    assert "3 group(s), full (asked for)" in result.output
    assert {tuple(g["members"]): g["group_id"] for g in readmodel.groups(conn)} == stored


def test_a_state_from_an_interrupted_run_is_not_used(tmp_path, settings, encoder):
    conn = schema.connect(tmp_path / "c.sqlite")
    grouper = GraphGrouper.from_config(settings.group, encoder=encoder)
    _store(conn, initiatives(FIRST), "one")
    regroup(conn, grouper)
    with schema.transaction(conn):
        schema.set_state(conn, STATE_TOKEN, "another")
    _store(conn, initiatives(["a3"]), "two")
    assert regroup(conn, grouper).mode == "full"
