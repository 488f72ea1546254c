"""Agreement over independent reviews (pipeline.catalogue.agreement), the blind second opinion and
the statuses it leads to (pipeline.catalogue.reviews), on tiny fixtures with values worked out by
hand, and on a real SQLite catalogue."""

from __future__ import annotations

import pytest

from pipeline.catalogue import agreement, reviews, schema
from pipeline.core.config import load_taxonomy

from test_review import LABELS_A, LABELS_B, _pk, build_catalogue


@pytest.fixture
def taxonomy(settings):
    return load_taxonomy(settings.paths.taxonomy)


def labels(themes, kind="initiative", score=3):
    return {"themes": themes, "doelgroepen": ["ouderen"], "kind": kind, "replicability": score}


TWO = [
    {"anna": labels(["eenzaamheid"]), "bram": labels(["eenzaamheid"])},
    {"anna": labels(["eenzaamheid"]), "bram": labels(["schulden"], score=4)},
    {"anna": labels(["schulden"]), "bram": labels(["schulden"])},
    {"anna": labels(["digitaal"]), "bram": labels(["digitaal"], kind="signal")},
]


def test_two_reviewers_kappa_and_alpha_per_label(taxonomy):
    rows = {(r.field, r.label): r for r in agreement.label_agreement(TWO, taxonomy)}
    lonely = rows[("themes", "eenzaamheid")]
    # yes/no: anna [1,1,0,0], bram [1,0,0,0]. po 0.75, pe 0.5*0.25 + 0.5*0.75 = 0.5 -> kappa 0.5.
    # alpha: coincidences o11 = 2, o10 = o01 = 1, o00 = 4; n1 = 3, n0 = 5, n = 8;
    # Do = 2/8, De = 2*3*5/(8*7) -> alpha = 1 - (2/8)/(30/56) = 16/30.
    assert (lonely.n, lonely.percent, lonely.positives) == (4, pytest.approx(75.0), 3)
    assert lonely.kappa == pytest.approx(0.5)
    assert lonely.alpha == pytest.approx(16 / 30)
    assert rows[("themes", "digitaal")].kappa == pytest.approx(1.0)
    # nobody chose it: always agree, kappa and alpha undefined rather than a misleading number
    never = rows[("themes", "onderwijs")]
    assert never.percent == 100.0 and never.kappa is None and never.alpha is None and never.positives == 0
    assert rows[("kind", "kind")].percent == pytest.approx(75.0)
    assert rows[("replicability", "replicability")].percent == pytest.approx(75.0)
    assert agreement.label_agreement([], taxonomy) == []


def test_three_reviewers_with_missing_judgements(taxonomy):
    ratings = [
        {"anna": labels(["eenzaamheid"]), "bram": labels(["eenzaamheid"]), "carla": labels(["schulden"])},
        {"anna": labels(["schulden"]), "bram": labels(["schulden"])},
        {"anna": labels(["eenzaamheid"]), "carla": labels(["eenzaamheid"])},
    ]
    row = next(r for r in agreement.label_agreement(ratings, taxonomy) if r.label == "eenzaamheid")
    # pairs of judgements: item 1 agrees 1 of 3, items 2 and 3 one of one -> 3 of 5 = 60%.
    assert row.percent == pytest.approx(60.0)
    # alpha: o11 = 1 + 2, o00 = 2, o10 = o01 = 1 (item 1 weighs 1/(3-1)); n1 = 4, n0 = 3, n = 7:
    # Do = 2/7, De = 2*4*3/(7*6) = 4/7 -> 0.5.
    assert row.alpha == pytest.approx(0.5)
    # kappa per pair: anna-bram [1,0]/[1,0] = 1; anna-carla [1,1]/[0,1] = 0; bram-carla [1]/[0] = 0.
    assert (row.kappa, row.pairs) == (pytest.approx(1 / 3), 3)
    pairs = {(p.a, p.b): p for p in agreement.pairwise(ratings, taxonomy)}
    assert set(pairs) == {("anna", "bram"), ("anna", "carla"), ("bram", "carla")}
    assert pairs[("anna", "bram")].n == 2 and pairs[("anna", "bram")].kappa["themes"] == pytest.approx(1.0)


def test_replicability_kappa_is_quadratic_weighted(taxonomy):
    near = [{"a": labels(["schulden"], score=s), "b": labels(["schulden"], score=t)}
            for s, t in ((1, 1), (3, 3), (5, 4), (4, 4))]
    far = [{"a": labels(["schulden"], score=s), "b": labels(["schulden"], score=t)}
           for s, t in ((1, 1), (3, 3), (5, 1), (4, 4))]
    score = {name: agreement.field_agreement(r, taxonomy)[-1] for name, r in (("near", near), ("far", far))}
    assert score["near"].percent == score["far"].percent == 75.0
    assert score["near"].kappa > score["far"].kappa and score["near"].alpha > score["far"].alpha


def test_only_blind_reviews_count_and_the_latest_per_reviewer():
    rows = {
        1: [{"reviewer": "anna", "blind": 1, "themes": ["a"]},
            {"reviewer": "bram", "blind": 0, "themes": ["a"]}],  # saw anna's labels: not counted
        2: [{"reviewer": "anna", "blind": 1, "themes": ["a"]},
            {"reviewer": "bram", "blind": 1, "themes": ["b"]},
            {"reviewer": "bram", "blind": 0, "themes": ["a"]}],  # changed after seeing: not counted
    }
    (only,) = agreement.independent_ratings(rows)
    assert only[0] == 2 and only[1]["bram"]["themes"] == ["b"]


def test_differences_name_the_labels_and_who_said_what(taxonomy):
    latest = [{**labels(["eenzaamheid"]), "reviewer": "anna"},
              {**labels(["schulden"], kind="signal", score=4), "reviewer": "bram"}]
    found = agreement.differences(latest, taxonomy)
    assert {"naam": "thema Eenzaamheid en sociaal contact", "ja": ["anna"], "nee": ["bram"]} in found
    assert {"naam": "overdraagbaarheid", "values": [("anna", 3), ("bram", 4)]} in found
    assert {"naam": "soort", "values": [("anna", "initiatief"), ("bram", "signaal")]} in found
    assert not any("Ouderen" in d["naam"] for d in found)  # both chose it


def _review(reviewer, themes, *, conflict=0, blind=1):
    return {**labels(themes), "reviewer": reviewer, "conflict": conflict, "blind": blind}


def test_item_status_second_opinion_dispute_and_a_third_reviewer_decides():
    anna = _review("anna", ["a"])
    assert reviews.item_status([], sampled=True) == "nieuw"
    assert reviews.item_status([anna], sampled=False) == "beoordeeld"
    assert reviews.item_status([anna], sampled=True) == "tweede"
    assert reviews.item_status([anna, _review("bram", ["a"])], sampled=True) == "beoordeeld"
    disputed = [anna, _review("bram", ["b"])]
    assert reviews.item_status(disputed, sampled=True) == "betwist"
    decided = disputed + [_review("carla", ["b", "c"])]
    assert reviews.settled_by(decided)["reviewer"] == "carla"
    assert reviews.item_status(decided, sampled=True) == "beoordeeld"
    # anna saves again with her old view: her review is in force, the dispute is open again
    reopened = decided + [_review("anna", ["a"], blind=0)]
    assert reviews.settled_by(reopened) is None and reviews.item_status(reopened, sampled=True) == "betwist"


def test_blind_for_a_reviewer_who_has_not_seen_a_sampled_or_disputed_item():
    anna = _review("anna", ["a"])
    assert not reviews.blind_for([], "bram", sampled=True)  # first review: the model's labels anyway
    assert reviews.blind_for([anna], "bram", sampled=True)
    assert not reviews.blind_for([anna], "bram", sampled=False)  # not sampled: sees anna's labels
    assert not reviews.blind_for([anna], "anna", sampled=True)
    disputed = [anna, _review("bram", ["b"])]
    assert reviews.blind_for(disputed, "carla", sampled=False)


def test_second_opinion_share_is_about_the_configured_share_and_stable():
    ids = [f"gemeente-{i}" for i in range(2000)]
    chosen = [i for i in ids if reviews.second_opinion_sampled(i, 0.2)]
    assert 0.17 < len(chosen) / len(ids) < 0.23
    assert chosen == [i for i in ids if reviews.second_opinion_sampled(i, 0.2)]
    assert not any(reviews.second_opinion_sampled(i, 0.0) for i in ids)
    assert all(reviews.second_opinion_sampled(i, 1.0) for i in ids)


# --------------------------------------------------------------------------- storage


@pytest.fixture
def conn(tmp_path, corpus_rows):
    path = tmp_path / "catalogue.sqlite"
    build_catalogue(path, corpus_rows)
    connection = schema.connect(path)
    yield connection
    connection.close()


def test_a_blind_second_review_is_stored_as_independent_and_counts(conn, taxonomy):
    pk = _pk(conn, "xss-1")
    first = reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_A,
                                based_on=None, note=None)
    # bram's blind form: based on anna's review (no conflict) but showing the model's labels
    second = reviews.save_review(conn, initiative_pk=pk, reviewer="bram", labels=LABELS_B,
                                 based_on=first.review_pk, note=None, blind=True)
    assert not second.conflict
    (dispute,) = agreement.disputes(conn, taxonomy, share=0.0)
    assert dispute["record"]["id"] == "xss-1" and dispute["decided_by"] is None
    assert dispute["status"] == "betwist" and dispute["reviewers"] == ["anna", "bram"]
    assert {"naam": "overdraagbaarheid", "values": [("anna", 5), ("bram", 4)]} in dispute["differences"]
    # anna, having seen bram's labels, saves again: not independent
    reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_B,
                        based_on=second.review_pk, note=None, blind=True)
    rows = conn.execute("SELECT blind, before FROM reviews ORDER BY pk").fetchall()
    assert [r["blind"] for r in rows] == [1, 1, 0]
    model = '{"doelgroepen": ["ouderen"], "kind": "initiative", "replicability": 4, "themes": ["eenzaamheid"]}'
    assert rows[1]["before"] == model  # what bram saw: the model's suggestion, not anna's labels
    (rating,) = [r for _, r in agreement.ratings_of(conn)]
    assert rating["anna"]["replicability"] == 5 and rating["bram"]["replicability"] == 4
    assert agreement.disputes(conn, taxonomy, share=0.0) == []  # anna now agrees with bram


def test_a_non_blind_second_review_does_not_count(conn):
    pk = _pk(conn, "xss-1")
    first = reviews.save_review(conn, initiative_pk=pk, reviewer="anna", labels=LABELS_A,
                                based_on=None, note=None)
    reviews.save_review(conn, initiative_pk=pk, reviewer="bram", labels=LABELS_A,
                        based_on=first.review_pk, note=None)  # pre-filled with anna's labels
    assert agreement.ratings_of(conn) == []


def test_migration_marks_earlier_first_reviews_as_independent(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(schema.MIGRATIONS[:4], start=1):
        for statement in schema._statements(script):
            raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {number}")
    raw.execute("INSERT INTO submissions (id, file_name, sha256, received_at, status) "
                "VALUES (1, 'f', 's', 't', 'stored')")
    raw.execute("INSERT INTO initiatives (pk, id, version, gemeente, omschrijving, submission_id, "
                "received_at) VALUES (1, 'x', 1, 'G', 'tekst', 1, 't')")
    for pk, name in ((1, "anna"), (2, "bram")):
        raw.execute("INSERT INTO reviewers (pk, name, password_hash, created_at) VALUES (?, ?, 'h', 't')",
                    (pk, name))
    # anna first (based on the model), bram on a form pre-filled with anna's, anna again
    for pk, reviewer, based_on in ((1, 1, None), (2, 2, 1), (3, 1, None)):
        raw.execute("INSERT INTO reviews (pk, initiative_pk, reviewer_pk, created_at, based_on_review_pk) "
                    "VALUES (?, 1, ?, 't', ?)", (pk, reviewer, based_on))
    raw.close()
    conn = schema.connect(path)
    assert [r[0] for r in conn.execute("SELECT blind FROM reviews ORDER BY pk")] == [1, 0, 0]
    conn.close()
