"""Reasons marked by hand decide which kinds of reason users see: reading the audit files, the
smoothed share right per kind, and the scorer hiding a kind that is mostly wrong while the reason
that sets a score (a signal) always stays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.records import Initiative
from pipeline.models.reason_reliability import Mark, ReasonReliability, read_audits
from pipeline.models.score import ReplicabilityScorer, build_scorer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CUES = PROJECT_ROOT / "configs" / "replicability_cues.toml"
SEED = PROJECT_ROOT / "data" / "labelled" / "seed.jsonl"
HEADER = "id\tscore\trichting\treden\tbewijs\tlinks\trechts\tshown\tright\n"
NO_COSTS = "Zegt niets over de kosten."


def test_audit_files_are_read_per_round_and_unmarked_lines_skipped(tmp_path):
    (tmp_path / "round0.tsv").write_text(
        HEADER + f"a\t4\t-\t{NO_COSTS}\t\t\t\t1\t1\n" + "a\t4\t+\tNoemt het doel.\tom te\t\t\t1\t\n",
        encoding="utf-8")
    (tmp_path / "round1.tsv").write_text(HEADER + f"b\t3\t-\t{NO_COSTS}\t\t\t\t0\t0\n", encoding="utf-8")
    (tmp_path / "notes.tsv").write_text("not an audit\n", encoding="utf-8")
    assert read_audits(tmp_path) == [Mark("-", NO_COSTS, True), Mark("-", NO_COSTS, False)]
    assert read_audits(tmp_path / "missing") == []


def test_a_bad_mark_names_file_and_line(tmp_path):
    (tmp_path / "round0.tsv").write_text(HEADER + f"a\t4\t-\t{NO_COSTS}\t\t\t\t1\tja\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"round0.tsv line 2: right must be 0, 1 or empty, got 'ja'"):
        read_audits(tmp_path)
    (tmp_path / "round0.tsv").write_text("id\treden\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"round0.tsv: no column\(s\) \['richting', 'right'\]"):
        read_audits(tmp_path)


def test_shares_are_smoothed_towards_the_overall_share():
    marks = [Mark("+", "Noemt het doel.", True)] * 3 + [Mark("-", NO_COSTS, False)]
    reliability = ReasonReliability(prior_weight=2).fit(marks)
    assert reliability.overall_ == pytest.approx(0.75)
    assert reliability.precision("Noemt het doel.", "+") == pytest.approx((3 + 1.5) / 5)
    assert reliability.precision(NO_COSTS, "-") == pytest.approx(1.5 / 3)
    # the same kind when found in the name; the other direction or an unmarked kind: the overall share
    assert reliability.precision("Noemt het doel. (in de naam: 'om')", "+") == pytest.approx(0.9)
    assert reliability.precision("Noemt het doel.", "-") == pytest.approx(0.75)
    assert ReasonReliability().fit([]).precision(NO_COSTS, "-") == 1.0  # no marks: all shown


@pytest.fixture(scope="module")
def seed():
    rows = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    return ([Initiative(id=r["id"], gemeente=r["gemeente"], naam=r["naam"], omschrijving=r["omschrijving"])
             for r in rows], np.array([r["replicability"] for r in rows]))


def test_the_scorer_hides_a_kind_marked_mostly_wrong_but_keeps_a_signal(seed):
    initiatives, y = seed
    signal = "Is een signaal, wens of verzoek (bijvoorbeeld aan het Rijk), geen concreet lokaal initiatief om over te nemen."
    marks = ([Mark("-", NO_COSTS, False)] * 8 + [Mark("-", signal, False)] * 8
             + [Mark("+", "Noemt de doelgroep.", True)] * 40)
    scorer = ReplicabilityScorer(cues_path=CUES, embedding=None, reason_marks=tuple(marks),
                                 min_reason_precision=0.85).fit(initiatives, y)
    x = Initiative(id="t", gemeente="Testdorp", naam=None,
                   omschrijving="Vrijwilligers bellen wekelijks met eenzame ouderen. Het Rijk moet dit betalen.")
    shown = [r["reden"] for r in scorer.score_rows([x], ["initiative"])[0]["replicability_reasons"]]
    assert NO_COSTS not in shown and signal not in shown
    assert "Noemt de doelgroep." in shown
    as_signal = scorer.score_rows([x], ["signal"])[0]
    assert as_signal["replicability"] == 1 and as_signal["replicability_reasons"][0]["reden"] == signal
    scorer.set_params(min_reason_precision=0.0)
    assert NO_COSTS in [r["reden"] for r in scorer.score_rows([x], ["initiative"])[0]["replicability_reasons"]]


def test_the_configured_scorer_learns_from_the_projects_audits(settings):
    scorer = build_scorer(settings)
    assert len(scorer.reason_marks) > 100
    assert scorer.min_reason_precision == settings.score.min_reason_precision
