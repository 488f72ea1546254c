"""Adapting e5 with a LoRA adapter (pipeline/training/finetune.py) and loading it back
(models.embed.AdaptedE5Encoder). Real peft, real torch, on a handful of rows with tiny settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import EncoderError
from pipeline.models.embed import ADAPTER_META, AdaptedE5Encoder, ConvertedE5Encoder, make_encoder
from pipeline.models.encoder_build import build_encoder, converted_folder
from pipeline.training.finetune import (_balanced_weights, adaptation_wins, comparison_table, fine_tune_release,
                                        pair_targets)
from conftest import write_jsonl


def test_pair_target_is_the_share_of_fields_with_a_label_in_common():
    themes = np.array([[1, 0], [1, 1], [0, 1]])
    groups = np.array([[1, 0], [0, 1], [0, 1]])
    targets = pair_targets([themes, groups])
    assert targets[0, 1] == 0.5           # share a theme, not a group
    assert targets[1, 2] == 1.0           # share both
    assert targets[0, 2] == 0.0           # share nothing
    assert np.allclose(targets, targets.T) and np.all(np.diag(targets) == 1.0)


def test_every_target_value_weighs_the_same_in_total():
    targets = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 1.0])
    weights = _balanced_weights(targets)
    for value in (0.0, 0.5, 1.0):
        assert weights[targets == value].sum() == pytest.approx(1 / 3)


def _evaluation(adapted_themes_macro):
    """The shape evaluate_adaptation pools: each field's micro and macro are metric dicts."""
    def field(micro, macro):
        return {"micro": {"precision": micro, "recall": micro, "f1": micro},
                "macro": {"precision": macro, "recall": macro, "f1": macro}}

    frozen = {"themes": field(0.6, 0.5), "doelgroepen": field(0.7, 0.5), "kind": {"accuracy": 0.9}}
    adapted = json.loads(json.dumps(frozen))
    adapted["doelgroepen"]["micro"]["f1"] = 0.72
    adapted["themes"]["macro"]["f1"] = adapted_themes_macro
    return {"pooled": {"frozen/ours": frozen, "adapted/ours": adapted}}


def test_adaptation_wins_only_when_no_field_loses():
    assert adaptation_wins(_evaluation(0.55))
    assert not adaptation_wins(_evaluation(0.45))


def test_comparison_table_shows_pooled_f1_and_the_folds_won():
    evaluation = _evaluation(0.45)
    pooled = evaluation["pooled"]
    evaluation["folds"] = [{"scores": {f"{variant}/{field}": pooled[variant][field]
                                       for variant in pooled for field in ("themes", "doelgroepen")}}]
    table = comparison_table(evaluation)
    assert "| adapted/ours | 0.600 / 0.450 | 0.720 / 0.500 | 0.900 |" in table
    assert "themes macro 0/1" in table and "doelgroepen micro 1/1" in table


@pytest.fixture(scope="module")
def encoders_dir(tmp_path_factory):
    from pipeline.core.config import load_settings

    configured = load_settings().embed.encoders_dir
    try:
        converted_folder(configured)
        return configured
    except EncoderError:
        out = tmp_path_factory.mktemp("encoders")
        build_encoder(out)
        return out


@pytest.fixture(scope="module")
def released(tmp_path_factory, settings, corpus_rows, encoders_dir):
    """An adapter learned on 8 labelled rows with tiny settings, released as `pipeline finetune` does."""

    root = tmp_path_factory.mktemp("finetune")
    labels = [json.loads(line) for line in Path(settings.paths.labelled, "seed.jsonl")
              .read_text(encoding="utf-8").splitlines()][:8]
    labelled = root / "labelled"
    labelled.mkdir()
    write_jsonl(labelled / "seed.jsonl", labels)
    tiny = dataclasses.replace(settings.finetune, epochs=1, batch_texts=4, max_tokens=16, learning_rate=5e-3)
    embed = dataclasses.replace(settings.embed, encoders_dir=encoders_dir)
    paths = dataclasses.replace(settings.paths, labelled=labelled)
    tiny_settings = dataclasses.replace(settings, finetune=tiny, embed=embed, paths=paths)
    messages = []
    folder = fine_tune_release(tiny_settings, root / "adapters", log=messages.append)
    return folder, labels, messages


def test_release_writes_a_small_adapter_named_by_its_weights(released):
    folder, labels, messages = released
    assert folder.name.startswith("e5-ft-") and len(folder.name) == len("e5-ft-") + 16
    assert {p.name for p in folder.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", ADAPTER_META}
    assert (folder / "adapter_model.safetensors").stat().st_size < 10_000_000
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] is None         # no machine's local path in git
    meta = json.loads((folder / ADAPTER_META).read_text())
    assert meta["rows"] == len(labels) and meta["base_encoder"].startswith("e5-small-")
    assert len(meta["data_sha256"]) == 64 and meta["settings"]["epochs"] == 1
    assert any("epoch 1/1" in m for m in messages)


def test_the_adapter_changes_the_vectors_and_the_encoder_id(released, encoders_dir):
    folder, _, _ = released
    texts = ["Voedselpakketten voor gezinnen met weinig geld.", "Een telefooncirkel voor ouderen."]
    adapted = AdaptedE5Encoder(encoders_dir, folder)
    frozen = ConvertedE5Encoder(encoders_dir)
    a, f = adapted.embed(texts), frozen.embed(texts)
    assert a.shape == f.shape and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    cosines = np.sum(a * f, axis=1)
    assert np.all(cosines < 0.99999) and np.all(cosines > 0.5)
    assert adapted.encoder_id.startswith(frozen.encoder_id.split("/")[0] + "+" + folder.name)
    cached = make_encoder("e5-st-ft", model_path=str(folder), encoders_dir=str(encoders_dir))
    assert cached.encoder_id == adapted.encoder_id


def test_a_missing_adapter_folder_is_a_clear_error(tmp_path, encoders_dir):
    with pytest.raises(EncoderError, match="LoRA adapter folder not found.*model_path"):
        AdaptedE5Encoder(encoders_dir, tmp_path / "nowhere")
