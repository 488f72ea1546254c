"""The search index stored beside the catalogue: `<catalogue>.search-index.joblib`.

What search needs from the catalogue's texts (the fitted `HybridRanker`: e5 vectors, the lemma
TF-IDF matrix and the query lemma table), kept in one file so `pipeline search` and the web app
load it in a second instead of embedding and lemmatizing every row again.

The file is used only when it fits:

- its `key` equals the one asked for: file format, the document encoder's id (an encoder or
  prefix change means other vectors), lemmatization on/off, and the versions of scikit-learn (the pickled
  vectorizer) and spacy-lookups-data (the lemmas);
- its `state` equals the catalogue's (`text_state`: newest initiative pk, id and receipt time,
  and the counts): texts are only ever inserted (a new version is a new row), so any new, changed
  or replaced text moves it. Labels, reviews and groups do not touch the index.

Otherwise it is rebuilt from the catalogue's current texts, reusing the vectors and lemma texts of
every text it already held (by text hash), so only new texts are embedded and lemmatized; the
TF-IDF weights are fitted again over all rows. The new file is written next to the old one and
moved over it, so a reader never sees half a file. A file that cannot be read (another format,
damaged) is a warning and a rebuild, never an error for the user.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np

from pipeline.core.text import model_text
from pipeline.models.ranking import HybridRanker

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".search-index.joblib"


def index_path(db_path) -> Path:
    """Where the search index of the catalogue at `db_path` lives: beside it."""
    return Path(f"{db_path}{SUFFIX}")


def text_state(conn) -> list:
    """A cheap value (one query) that changes whenever the catalogue's current texts can."""
    row = conn.execute(
        "SELECT coalesce(max(pk), 0), count(*), coalesce(sum(is_current), 0),"
        " (SELECT id || '|' || received_at FROM initiatives ORDER BY pk DESC LIMIT 1)"
        " FROM initiatives").fetchone()
    return list(row)


def current_texts(conn) -> tuple[list[str], list[str]]:
    """Ids and model texts of the current initiatives, ordered by id (as catalogue records are)."""
    rows = conn.execute("SELECT id, naam, omschrijving FROM current_initiatives ORDER BY id").fetchall()
    return [r[0] for r in rows], [model_text({"naam": r[1], "omschrijving": r[2]}) for r in rows]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def index_key(query_encoder, doc_encoder, lemmatize: bool) -> dict:
    """What the stored index must have been built with to be used (see module docstring). The
    query encoder is not part of it: the index holds only document vectors."""
    return {"format": FORMAT,
            "doc_encoder": getattr(doc_encoder or query_encoder, "encoder_id", None),
            "lemmatize": bool(lemmatize),
            "scikit-learn": version("scikit-learn"),
            "spacy-lookups-data": version("spacy-lookups-data")}


@dataclass
class StoredIndex:
    """A fitted ranker over the catalogue's current texts, row i being initiative `ids[i]`."""

    key: dict
    state: list
    ids: list[str]
    text_keys: list[str]
    keyword_texts: list[str]
    ranker: HybridRanker
    positions: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.positions = {row_id: i for i, row_id in enumerate(self.ids)}

    def __getstate__(self):
        # Encoders (a loaded model, a cache path) are attached per process, never stored.
        state = self.__dict__.copy()
        state["ranker"] = copy.copy(self.ranker)
        state["ranker"].query_encoder = state["ranker"].doc_encoder = None
        state.pop("positions")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()

    def attach(self, *, query_encoder, doc_encoder, dense_weight: float) -> "StoredIndex":
        self.ranker.set_params(query_encoder=query_encoder, doc_encoder=doc_encoder,
                               dense_weight=dense_weight)
        return self


def load_index(path: Path, key: dict) -> StoredIndex | None:
    """The index stored at `path` when it was built with `key`; None when missing or other."""
    try:
        stored = joblib.load(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign file is rebuilt, not an error for the user
        log.warning("search index %s cannot be read (%s); it is rebuilt", path, exc)
        return None
    if not isinstance(stored, StoredIndex) or stored.key != key:
        return None
    return stored


def save_index(path: Path, stored: StoredIndex) -> None:
    """Write `stored` to `path` atomically. A read-only folder is a warning: search still works."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        joblib.dump(stored, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("search index not saved to %s: %s", path, exc)


def fit_index(ids: Sequence[str], texts: Sequence[str], *, key: dict, state: list, query_encoder,
              doc_encoder, dense_weight: float, lemmatize: bool,
              previous: StoredIndex | None = None) -> StoredIndex:
    """A StoredIndex over `texts`; vectors and lemma texts of texts `previous` holds are reused,
    the rest (each distinct text once) embedded with `doc_encoder` and lemmatized."""
    ranker = HybridRanker(query_encoder=query_encoder, doc_encoder=doc_encoder,
                          dense_weight=dense_weight, lemmatize=lemmatize)
    keys = [text_key(t) for t in texts]
    known = {} if previous is None else {k: i for i, k in enumerate(previous.text_keys)}
    new = {k: t for k, t in zip(keys, texts) if k not in known}
    new_keys, new_texts = list(new), list(new.values())
    keywords = dict(zip(new_keys, ranker._keyword_texts(new_texts))) if new_texts else {}
    keyword_texts = [keywords[k] if k in keywords else previous.keyword_texts[known[k]] for k in keys]
    embeddings = None
    encoder = doc_encoder or query_encoder
    if encoder is not None and texts:
        old = previous.ranker.doc_vectors_ if previous is not None else None
        fresh = np.asarray(encoder.embed(new_texts), dtype=np.float32) if new_texts else None
        where = {k: i for i, k in enumerate(new_keys)}
        embeddings = np.vstack([fresh[where[k]] if k in where else old[known[k]] for k in keys])
    log.info("search index: %d rows, %d new texts embedded and lemmatized", len(texts), len(new_texts))
    ranker.fit(list(texts), embeddings=embeddings, keyword_texts=keyword_texts)
    return StoredIndex(key=key, state=state, ids=list(ids), text_keys=keys,
                       keyword_texts=keyword_texts, ranker=ranker)


def stored_index(conn, path: Path, *, query_encoder, doc_encoder, dense_weight: float,
                 lemmatize: bool, save: bool = True, current: StoredIndex | None = None) -> StoredIndex:
    """The search index of the catalogue `conn` (stored at `path`): `current` (one already in
    memory) or the file when it fits the catalogue's texts and the encoders, else rebuilt (only
    new texts embedded) and saved."""
    key = index_key(query_encoder, doc_encoder, lemmatize)
    state = text_state(conn)
    if current is not None and current.key == key and current.state == state:
        return current
    stored = load_index(path, key)
    if stored is None or stored.state != state:
        for _ in range(3):  # a job storing rows meanwhile: read texts and state from one moment
            ids, texts = current_texts(conn)
            after = text_state(conn)
            if after == state:
                break
            state = after
        else:
            state = ["unsettled"]  # never equal to a catalogue's: rebuilt on the next call
        stored = fit_index(ids, texts, key=key, state=state, query_encoder=query_encoder,
                           doc_encoder=doc_encoder, dense_weight=dense_weight, lemmatize=lemmatize,
                           previous=stored)
        if save:
            save_index(path, stored)
    return stored.attach(query_encoder=query_encoder, doc_encoder=doc_encoder,
                         dense_weight=dense_weight)
