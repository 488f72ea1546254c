"""Search ranking: `HybridRanker` mixes a dense channel (e5 cosine) and a keyword channel (lemma
TF-IDF), each min-max scaled over the documents, by `dense_weight` ([search] in the settings).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from pipeline.core.text import lemma_texts, normalise
from pipeline.models.query_lemmas import QueryLemmatizer


def _minmax(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a channel that cannot tell rows apart (all equal) contributes 0."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low <= 0:
        return np.zeros_like(values)
    return (values - low) / (high - low)


class HybridRanker(BaseEstimator):
    """Rank documents for a query by dense similarity and lemma TF-IDF together.

    Parameters (keyword-only, stored as given):
        query_encoder: encoder for queries (`.embed(texts)`, e5 with "query: ").
        doc_encoder: encoder for documents; None means the query encoder.
        dense_weight: weight of the dense channel in [0, 1]; 0 is keyword-only, 1 dense-only.
        lemmatize: run the keyword channel over lemmas (True) or plain lower-cased words.

    `fit(texts)` embeds and indexes the documents and returns self; `channel_scores(query)` gives
    both scaled channels; `score(query)` their mix, one float per document. `fit` takes the
    documents' vectors and keyword texts when they are known already (a stored index adding new
    rows), so only new texts are embedded and lemmatized. Queries are lemmatized with
    `query_lemmatizer_` (no spaCy at query time, see `models.query_lemmas`).
    """

    def __init__(self, *, query_encoder=None, doc_encoder=None, dense_weight: float = 0.8,
                 lemmatize: bool = True):
        self.query_encoder = query_encoder
        self.doc_encoder = doc_encoder
        self.dense_weight = dense_weight
        self.lemmatize = lemmatize

    def _keyword_texts(self, texts: Sequence[str]) -> list[str]:
        texts = [normalise(t) for t in texts]
        return lemma_texts(texts) if self.lemmatize else [t.lower() for t in texts]

    def fit(self, texts: Sequence[str], y=None, *, embeddings=None, keyword_texts=None):
        """Index `texts` (already the model text of each record); `embeddings` (n, d) and
        `keyword_texts` (`_keyword_texts(texts)`), when given, are used instead of computing them.
        Raises ValueError on a bad weight or when a given array does not match `texts`."""
        if not 0.0 <= float(self.dense_weight) <= 1.0:
            raise ValueError(f"dense_weight must lie in [0, 1], got {self.dense_weight!r}")
        if self.query_encoder is None and float(self.dense_weight) > 0:
            raise ValueError("dense_weight > 0 needs a query_encoder")
        texts = list(texts)
        self.n_documents_ = len(texts)
        doc_encoder = self.doc_encoder or self.query_encoder
        for name, given in (("embeddings", embeddings), ("keyword_texts", keyword_texts)):
            if given is not None and len(given) != len(texts):
                raise ValueError(f"{name} has {len(given)} rows for {len(texts)} texts")
        if embeddings is not None and texts:
            self.doc_vectors_ = np.asarray(embeddings, dtype=np.float32)
        elif doc_encoder is not None and texts:
            self.doc_vectors_ = np.asarray(doc_encoder.embed(texts), dtype=np.float32)
        else:
            self.doc_vectors_ = None
        keyword_docs = list(keyword_texts) if keyword_texts is not None else self._keyword_texts(texts)
        # sublinear tf: a word repeated in a long OCR text should not outweigh a short exact match.
        self.vectorizer_ = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b")
        if any(doc.strip() for doc in keyword_docs):
            self.keyword_matrix_ = self.vectorizer_.fit_transform(keyword_docs)
        else:
            self.vectorizer_ = None
            self.keyword_matrix_ = None
        self.query_lemmatizer_ = (QueryLemmatizer.for_vocabulary(self.vectorizer_.vocabulary_)
                                  if self.lemmatize and self.vectorizer_ is not None else None)
        return self

    def _query_keywords(self, query: str) -> str:
        query = normalise(query)
        lemmatizer = getattr(self, "query_lemmatizer_", None)
        if lemmatizer is not None:
            return lemmatizer(query)
        return lemma_texts([query])[0] if self.lemmatize else query.lower()

    def channel_scores(self, query: str) -> dict[str, np.ndarray]:
        """Both channels for `query`, each scaled to [0, 1] over the documents.

        Returns {"dense": array, "keyword": array} (length n_documents_; a channel that is off
        or has nothing to match is all zeros), and the unscaled cosines "dense_raw" and
        "keyword_raw" that say how close the best document really is (a relevance floor reads
        these: min-max scaling makes the best document 1 even for a query that matches nothing).
        """
        check_is_fitted(self, "n_documents_")
        n = self.n_documents_
        dense_raw = np.zeros(n)
        if self.doc_vectors_ is not None and self.query_encoder is not None and float(self.dense_weight) > 0:
            query_vector = np.asarray(self.query_encoder.embed([normalise(query)]), dtype=np.float32)[0]
            dense_raw = (self.doc_vectors_ @ query_vector).astype(np.float64)
        keyword_raw = np.zeros(n)
        if self.vectorizer_ is not None:
            query_vector = self.vectorizer_.transform([self._query_keywords(query)])
            keyword_raw = (self.keyword_matrix_ @ query_vector.T).toarray().ravel()
        return {"dense": _minmax(dense_raw), "keyword": _minmax(keyword_raw),
                "dense_raw": dense_raw, "keyword_raw": keyword_raw}

    def score(self, query: str, dense_weight: float | None = None) -> np.ndarray:
        """The mixed score per document for `query` (higher is better), in [0, 1]."""
        return self.mix(self.channel_scores(query), dense_weight)

    def mix(self, channels: dict[str, np.ndarray], dense_weight: float | None = None) -> np.ndarray:
        """`dense_weight * dense + (1 - dense_weight) * keyword` for `channel_scores` output."""
        weight = float(self.dense_weight if dense_weight is None else dense_weight)
        return weight * channels["dense"] + (1.0 - weight) * channels["keyword"]
