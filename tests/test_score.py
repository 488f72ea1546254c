"""The replicability scorer: ordinal scores, Dutch reasons with verbatim evidence, cue-file errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.records import Initiative
from pipeline.models.cues import load_cues
from pipeline.models.ordinal import FrankHall
from pipeline.models.score import ReplicabilityScorer, build_scorer, evaluate_scorer, ordinal_metrics

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CUES = PROJECT_ROOT / "configs" / "replicability_cues.toml"
SEED = PROJECT_ROOT / "data" / "labelled" / "seed.jsonl"

SIMPLE = Initiative(
    id="t-simpel", gemeente="Testdorp", naam="Koffiebakfiets",
    omschrijving=(
        "Vrijwilligers gaan met een koffiebakfiets langs bij ouderen in de wijk om een praatje te "
        "maken. Het is gratis en binnen enkele weken gestart via het bestaande buurthuis."
    ),
)
COMPLEX = Initiative(
    id="t-complex", gemeente="Testdorp", naam="Schuldenfonds",
    omschrijving=(
        "Een regionaal fonds lost schulden af na afspraken met alle schuldeisers, zorgverzekeraars en "
        "woningcorporaties. Een nieuw IT-systeem koppelt de gegevens van de kredietbank aan het "
        "portaal; gespecialiseerde schuldhulpverleners voeren het structurele programma uit."
    ),
)
SIGNAL = Initiative(
    id="t-signaal", gemeente="Testdorp", naam=None,
    omschrijving="Wij pleiten ervoor dat het Rijk de wetgeving voor inkomensondersteuning vereenvoudigt.",
)


def _seed():
    rows = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    initiatives = [
        Initiative(id=r["id"], gemeente=r["gemeente"], naam=r["naam"], omschrijving=r["omschrijving"])
        for r in rows
    ]
    return initiatives, np.array([r["replicability"] for r in rows]), [r["kind"] for r in rows]


@pytest.fixture(scope="module")
def fitted():
    """A cue-only scorer fitted on the seed labels (no embedding: fast and deterministic)."""
    initiatives, y, _ = _seed()
    return ReplicabilityScorer(cues_path=CUES, embedding=None, C=0.1).fit(initiatives, y)


def test_simple_description_scores_higher_than_complex(fitted):
    simple, complex_ = fitted.expected([SIMPLE, COMPLEX])
    assert simple > complex_ + 1.0, (simple, complex_)
    rows = fitted.score_rows([SIMPLE, COMPLEX], ["initiative", "initiative"])
    assert rows[0]["replicability"] > rows[1]["replicability"]
    assert rows[0]["replicability"] >= 4
    assert rows[1]["replicability"] <= 3


def test_complex_reasons_name_the_fund_and_many_parties_with_their_words(fitted):
    reasons = fitted.score_rows([COMPLEX], ["initiative"])[0]["replicability_reasons"]
    by_reason = {r["reden"]: r for r in reasons}
    book = load_cues(CUES)
    fund = by_reason[book.cue("fonds").reden]
    assert fund["richting"] == "-" and "fonds" in fund["bewijs"]
    parties = by_reason[book.cue("veel_partijen").reden]
    assert "schuldeisers" in parties["bewijs"]


def test_signal_row_gets_score_one_with_the_signal_reason_first(fitted):
    row = fitted.score_rows([SIGNAL], ["signal"])[0]
    assert row["replicability"] == 1
    assert row["replicability_score"] == 1.0
    first = row["replicability_reasons"][0]
    assert first["reden"] == load_cues(CUES).cue("signaal_rijk").reden
    assert first["richting"] == "-"
    assert first["bewijs"] in SIGNAL.omschrijving


def test_every_bewijs_is_verbatim_and_every_row_has_a_reason_over_the_corpus(fitted):
    initiatives, _, kinds = _seed()
    rows = fitted.score_rows(initiatives, kinds)
    assert len(rows) == len(initiatives)
    for initiative, row in zip(initiatives, rows):
        assert row["replicability"] in (1, 2, 3, 4, 5)
        assert 1.0 <= row["replicability_score"] <= 5.0
        assert row["replicability_reasons"], initiative.id
        for reason in row["replicability_reasons"]:
            assert reason["richting"] in ("+", "-")
            assert reason["reden"]
            if reason["bewijs"] is not None:
                assert reason["bewijs"] in initiative.omschrijving, (initiative.id, reason)


def test_missing_goed_beschreven_element_is_a_reason_without_evidence(fitted):
    bare = Initiative(id="t-kaal", gemeente="X", omschrijving="Een mooi initiatief.")
    reasons = fitted.score_rows([bare], ["initiative"])[0]["replicability_reasons"]
    missing = [r for r in reasons if r["bewijs"] is None and r["richting"] == "-"]
    texts = " ".join(r["reden"] for r in missing)
    assert "doelgroep" in texts and "kosten" in texts


def test_predict_proba_rows_sum_to_one_and_predict_is_ordinal(fitted):
    proba = fitted.predict_proba([SIMPLE, COMPLEX, SIGNAL])
    assert proba.shape == (3, 5)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert set(fitted.predict([SIMPLE, COMPLEX, SIGNAL])) <= {1, 2, 3, 4, 5}


def test_scorer_survives_pickling(fitted):
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.score_rows([SIMPLE], ["initiative"]) == fitted.score_rows([SIMPLE], ["initiative"])


def test_fit_rejects_score_outside_scale():
    with pytest.raises(ValueError, match="row 1 has 7"):
        ReplicabilityScorer(cues_path=CUES).fit([SIMPLE, COMPLEX], [4, 7])


@pytest.mark.parametrize("class_weight", [None, "balanced"])
@pytest.mark.parametrize("model", [FrankHall])
def test_ordinal_models_order_a_single_informative_feature(model, class_weight):
    x = np.repeat(np.arange(1, 6, dtype=float), 6)[:, None]
    y = np.repeat(np.arange(1, 6), 6)
    fitted = model(C=10.0, class_weight=class_weight).fit(x - x.mean(), y)
    predicted = fitted.predict(np.array([[-2.0], [0.0], [2.0]]))
    assert list(predicted) == [1, 3, 5]


def test_ordinal_metrics_on_known_values():
    metrics = ordinal_metrics([1, 2, 3, 4], [1, 3, 3, 2])
    assert metrics["mae"] == 0.75
    assert metrics["exact"] == 0.5
    assert metrics["within_one"] == 0.75


def _write_cues(tmp_path, text):
    path = tmp_path / "cues.toml"
    good = CUES.read_text(encoding="utf-8")
    path.write_text(text(good), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('richting = "+"', 'richting = "plus"', 1), r"cue\[0\] \(id 'vrijwilligers'\)\.richting"),
        (lambda t: t.replace('id = "bestaande_structuur"', 'id = "vrijwilligers"'), "repeats \\[\\[cue\\]\\] id"),
        (lambda t: t.replace('patronen = [\n  "vrijwilliger*"', 'patronen = [\n  "*"', 1), r"cue\[0\].*patronen\[0\]"),
        (lambda t: t.replace("[partners]", "[partner]"), "unknown table"),
        (lambda t: t.replace('reden = "Draait op', 'redenen = "Draait op', 1), r"cue\[0\].*unknown key"),
        (lambda t: t.replace("korte_tekst_tekens = 150", 'korte_tekst_tekens = "veel"'), r"\[algemeen\]\.korte_tekst_tekens"),
    ],
)
def test_cue_file_errors_name_file_and_key(tmp_path, edit, message):
    path = _write_cues(tmp_path, edit)
    with pytest.raises(ConfigError, match=message) as info:
        load_cues(path)
    assert str(path) in str(info.value)


def test_broken_cue_file_names_the_file(tmp_path):
    path = tmp_path / "cues.toml"
    path.write_text("[[cue]\nid = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_cues(path)


def test_unknown_signal_cue_is_a_config_error():
    with pytest.raises(ConfigError, match="no \\[\\[cue\\]\\] with id 'bestaat_niet'"):
        ReplicabilityScorer(cues_path=CUES, signal_cue="bestaat_niet").fit([SIMPLE, COMPLEX], [5, 2])


def test_build_scorer_and_evaluate_from_settings(settings):
    """The configured scorer (with the cached corpus embeddings) evaluates on a small split."""
    initiatives, y, kinds = _seed()
    scorer = build_scorer(settings)
    assert scorer.embedding_weight == settings.score.embedding_weight
    folds = [(np.arange(0, len(y), 2), np.arange(1, len(y), 2))]
    metrics = evaluate_scorer(settings, initiatives, y, kinds, folds)
    assert set(metrics) >= {"mae", "exact", "within_one", "spearman"}
    assert metrics["n"] == len(np.arange(1, len(y), 2))
    # Better than always answering the training half's median score (MAE 0.97 on this split).
    baseline = np.abs(y[folds[0][1]] - np.median(y[folds[0][0]])).mean()
    assert metrics["mae"] < baseline - 0.2, (metrics["mae"], baseline)


def test_plain_texts_and_dicts_score_like_initiatives(fitted):
    as_initiative = fitted.score_rows([COMPLEX], ["initiative"])[0]
    as_dict = fitted.score_rows([{"naam": COMPLEX.naam, "omschrijving": COMPLEX.omschrijving}], ["initiative"])[0]
    assert as_dict == as_initiative
    as_text = fitted.score_rows([COMPLEX.omschrijving], ["initiative"])[0]
    assert as_text["replicability"] <= 3
    with pytest.raises(ValueError, match="row 1: expected an initiative"):
        fitted.predict([SIMPLE, 42])


def test_rows_without_a_score_are_skipped_in_fit():
    initiatives, y, _ = _seed()
    y = y.copy()
    y[:10] = -1
    scorer = ReplicabilityScorer(cues_path=CUES, C=0.1).fit(initiatives, y)
    assert scorer.predict([SIMPLE])[0] in (1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="no row has a replicability"):
        ReplicabilityScorer(cues_path=CUES).fit([SIMPLE], [-1])


def test_cue_found_only_in_the_name_says_so_and_quotes_no_description_words(fitted):
    row = Initiative(id="t-naam", gemeente="X", naam="Facebookgroep Burenhulp",
                     omschrijving="Inwoners bieden elkaar hulp aan.")
    reasons = fitted.score_rows([row], ["initiative"])[0]["replicability_reasons"]
    named = [r for r in reasons if "in de naam" in r["reden"]]
    assert named and all(r["bewijs"] is None for r in named)
    assert any("Facebookgroep" in r["reden"] for r in named)


def test_trained_model_predicts_replicability_with_reasons(settings, tmp_path):
    """`train` fits the scorer beside the classifiers; `Predictor.predict` adds the three fields."""
    import dataclasses

    from pipeline.models.predict import Predictor
    from pipeline.training.train import train_model

    labelled = tmp_path / "labelled"
    labelled.mkdir()
    lines = SEED.read_text(encoding="utf-8").splitlines()
    (labelled / "seed.jsonl").write_text("\n".join(lines[:50]) + "\n", encoding="utf-8")
    paths = dataclasses.replace(settings.paths, models=tmp_path / "models")
    model_dir = train_model(dataclasses.replace(settings, paths=paths), labelled_dir=labelled,
                            folds=0).model_dir
    rows = [SIMPLE, COMPLEX, SIGNAL]
    records = Predictor.load(model_dir, settings).predict(rows)
    for row, record in zip(rows, records):
        assert record["replicability"] in (1, 2, 3, 4, 5)
        assert isinstance(record["replicability_score"], float)
        assert record["replicability_reasons"]
        for reason in record["replicability_reasons"]:
            assert reason["bewijs"] is None or reason["bewijs"] in row.omschrijving
        if record["kind"] == "signal":
            assert record["replicability"] == 1
    assert records[0]["replicability_score"] > records[1]["replicability_score"]


def test_balanced_weights_let_a_rare_top_score_be_predicted():
    """Two rows of 5 among many 4s: balanced weights give a row like the 5s a clearly higher
    probability of 5 than unweighted fitting does."""
    x = np.array([[0.0]] * 30 + [[1.0]] * 2 + [[-1.0]] * 10)
    y = np.array([4] * 30 + [5] * 2 + [3] * 10)
    plain = FrankHall(C=1.0).fit(x, y).predict_proba([[1.0]])[0, 4]
    balanced = FrankHall(C=1.0, class_weight="balanced").fit(x, y).predict_proba([[1.0]])[0, 4]
    assert balanced > plain + 0.2, (plain, balanced)
    with pytest.raises(ValueError, match="class_weight"):
        FrankHall(class_weight="auto").fit(x, y)


@pytest.mark.parametrize("model", ["frank_hall"])
@pytest.mark.parametrize("score", [1, 4])
def test_training_rows_all_with_one_score_still_score_and_explain(model, score):
    scorer = ReplicabilityScorer(cues_path=CUES, embedding=None, model=model).fit(
        [SIMPLE, COMPLEX, SIGNAL], [score] * 3)
    (row,) = scorer.score_rows([SIMPLE], ["initiative"])
    assert row["replicability"] == score
    assert row["replicability_reasons"]
