"""predict: the Predictor contract and the `pipeline classify` command."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.errors import ModelNotFoundError
from pipeline.core.records import Initiative
from pipeline.models.predict import Predictor
from pipeline.training.train import train_model

from conftest import PROJECT_ROOT, write_jsonl


@pytest.fixture(scope="module")
def model_dir(settings, tmp_path_factory):
    """A small model trained on the first 40 seed rows, without cross-validation (fast)."""
    root = tmp_path_factory.mktemp("predict")
    labelled = root / "labelled"
    labelled.mkdir()
    lines = (PROJECT_ROOT / "data" / "labelled" / "seed.jsonl").read_text(encoding="utf-8").splitlines()
    (labelled / "seed.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    paths = dataclasses.replace(settings.paths, models=root / "models")
    return train_model(dataclasses.replace(settings, paths=paths), labelled_dir=labelled, folds=0).model_dir


ROWS = [
    Initiative(id="n1", gemeente="Ede", omschrijving="Vrijwilligers brengen maaltijden naar eenzame ouderen."),
    Initiative(id="n2", gemeente="Epe", naam="Laptops", omschrijving="Laptops voor leerlingen thuis."),
]


def test_predictions_follow_the_contract_and_name_the_model_folder(settings, model_dir):
    predictor = Predictor.load(model_dir, settings)
    assert predictor.model_id == model_dir.name and predictor.model_dir == model_dir
    records = predictor.predict(ROWS)
    assert [r["id"] for r in records] == ["n1", "n2"] and records[1]["gemeente"] == "Epe"
    for record in records:
        assert record["model_id"] == model_dir.name
        assert record["themes"] and record["doelgroepen"]  # at least one label per field
        assert record["kind"] in ("initiative", "signal")
        assert set(record["scores"]["themes"]) >= set(record["themes"])
        assert len(record["scores"]["doelgroepen"]) == 13
        assert 0 <= record["scores"]["kind"] <= 1
    assert predictor.predict([]) == []


def test_load_none_uses_latest_and_missing_model_is_clean_error(settings, model_dir, tmp_path):
    paths = dataclasses.replace(settings.paths, models=model_dir.parent)
    assert Predictor.load(None, dataclasses.replace(settings, paths=paths)).model_id == model_dir.name
    empty = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, models=tmp_path))
    with pytest.raises(ModelNotFoundError, match="make train"):
        Predictor.load(None, empty)
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        Predictor.load(tmp_path, settings)


def test_classify_command_classifies_good_rows_and_reports_bad_ones(model_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "g1", "gemeente": "Ede", "omschrijving": "Voedselpakketten voor gezinnen met schulden."},
        {"id": "b1", "gemeente": "Ede", "omschrijving": ""},
        '{"id": "b2", ',
        {"id": "g2", "gemeente": "Epe", "omschrijving": "Jongerenwerk online via Instagram."},
    ])
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(main, ["classify", str(source), "--out", str(out), "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["g1", "g2"]
    assert {r["model_id"] for r in records} == {model_dir.name}
    assert "rij 2 (id b1)" in result.output and "'omschrijving'" in result.output
    assert "rij 3" in result.output
    errors = [json.loads(line) for line in (tmp_path / "pred.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [2, 3]
    assert "4 rows in, 2 classified, 2 rejected" in result.output


def test_classify_command_on_an_unreadable_file_exits_non_zero_cleanly(model_dir, tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_bytes(b"PK\x03\x04rest-of-an-xlsx")
    result = CliRunner().invoke(main, ["classify", str(bad), "--out", str(tmp_path / "p.jsonl"),
                                       "--model", str(model_dir)])
    assert result.exit_code != 0
    assert "Excel" in result.output and "Traceback" not in result.output
