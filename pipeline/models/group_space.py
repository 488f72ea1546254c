"""The similarity of `pipeline.models.group` without n x n matrices, so it scales to 10^5 rows.

`SimilarityIndex` builds dense n x n matrices: e5 cosine and char TF-IDF cosine of every pair,
each standardised over every pair, mixed, then hub-corrected. `MixedSpace` gives the same mixed
score for any *pair* of rows, from per-row representations:

- dense: the e5 embedding, unit length;
- lexical: char n-gram TF-IDF (the analyzer, sublinear tf and smoothed idf of `SimilarityIndex`),
  hashed into `2**20` columns so a new text needs no refit, unit length (sparse);
- sketch: the TF-IDF row projected by a fixed random sign matrix (a count sketch) to
  `sketch_dims` columns. Its dot products estimate the TF-IDF cosine (standard deviation about
  `1 / sqrt(sketch_dims)`), good enough to *find* candidate neighbours with one dense matrix
  product; every candidate pair is then scored exactly.

The dense channel's mean and standard deviation over all pairs come exactly from its d x d Gram
matrix (`sum_ij v_i.v_j = |sum v|^2`, `sum_ij (v_i.v_j)^2 = |V^T V|_F^2`); the lexical
channel's from all pairs of at most `MOMENT_ROWS` rows spread over the input (exact up to that
size). `fit` learns the idf and these moments (what a full regroup refits); `encode` maps rows,
old or new, into the fitted space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

HASH_FEATURES = 2**20
# Rows per chunk when hashing texts: bounds the sparse matrices held at once.
CHUNK_ROWS = 5000
# Rows whose pairs give the lexical channel's moments (2000 rows: 2 million pairs).
MOMENT_ROWS = 2000
# Fixed, so a sketch written by one run compares with one made by the next.
SKETCH_SEED = 20261203
# Pairs scored per chunk in `pair_scores` (bounds the temporary sparse rows).
PAIR_CHUNK = 5000


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def pair_moments(unit: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of `u_i . u_j` over all ordered pairs i != j, in O(n d^2)."""
    n = len(unit)
    if n < 3:
        return 0.0, 1.0  # as SimilarityIndex: too few pairs to put on a scale
    unit = unit.astype(np.float64)
    self_dots = np.einsum("ij,ij->i", unit, unit)
    total = unit.sum(axis=0)
    pairs = n * (n - 1)
    mean = (float(total @ total) - float(self_dots.sum())) / pairs
    gram = unit.T @ unit
    square = (float(np.sum(gram * gram)) - float(np.sum(self_dots**2))) / pairs
    spread = float(np.sqrt(max(square - mean * mean, 0.0)))
    return mean, (spread if spread > 0 else 1.0)


def sparse_moments(rows: sparse.csr_matrix) -> tuple[float, float]:
    """Mean and standard deviation of the off-diagonal dot products of (a spread of) `rows`."""
    n = rows.shape[0]
    if n < 3:
        return 0.0, 1.0
    if n > MOMENT_ROWS:
        rows = rows[np.linspace(0, n - 1, MOMENT_ROWS).astype(int)]
        n = MOMENT_ROWS
    gram = (rows @ rows.T).toarray().astype(np.float64)
    off = gram[~np.eye(n, dtype=bool)]
    spread = float(off.std())
    return float(off.mean()), (spread if spread > 0 else 1.0)


def _drain(chunks: list):
    """Yield and drop the items of `chunks`, first to last."""
    chunks.reverse()
    while chunks:
        yield chunks.pop()


@dataclass
class Encoded:
    """Rows in a fitted MixedSpace: unit `dense` (n, d), unit sparse `lexical`, `sketch` (n, m)."""

    dense: np.ndarray
    lexical: sparse.csr_matrix
    sketch: np.ndarray

    def __len__(self) -> int:
        return len(self.dense)


class MixedSpace(BaseEstimator):
    """Exact pair scores of the standardised e5 + char TF-IDF mix (see the module docstring).

    `fit(texts, vectors=...)` learns `idf_`, `dense_moments_` and `lexical_moments_`;
    `encode(texts, vectors)` returns `Encoded` rows; `pair_scores(a, i, b, j)` returns the mixed
    score (standard deviations) and the plain similarity of the pairs `(a[i], b[j])`.
    """

    def __init__(self, *, dense_weight: float = 0.5, char_ngram_min: int = 3,
                 char_ngram_max: int = 5, sketch_dims: int = 512):
        self.dense_weight = dense_weight
        self.char_ngram_min = char_ngram_min
        self.char_ngram_max = char_ngram_max
        self.sketch_dims = sketch_dims

    def _hashed(self, texts: list[str]):
        hasher = HashingVectorizer(analyzer="char_wb", lowercase=True, alternate_sign=False,
                                   ngram_range=(self.char_ngram_min, self.char_ngram_max),
                                   n_features=HASH_FEATURES, norm=None, dtype=np.float32)
        for start in range(0, len(texts), CHUNK_ROWS):
            yield hasher.transform(texts[start:start + CHUNK_ROWS]).tocsr()

    def fit(self, X, y=None, *, vectors=None):
        texts = list(X)
        self._check_params(texts, vectors)
        self._fit_lexical(texts, vectors)
        return self

    def _check_params(self, texts, vectors) -> None:
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be between 0 and 1, got {self.dense_weight!r}")
        if not 1 <= self.char_ngram_min <= self.char_ngram_max:
            raise ValueError(f"char n-gram range must satisfy 1 <= min <= max, got "
                             f"({self.char_ngram_min!r}, {self.char_ngram_max!r})")
        if self.sketch_dims < 1:
            raise ValueError(f"sketch_dims must be at least 1, got {self.sketch_dims!r}")
        if vectors is None or len(vectors) != len(texts):
            raise ValueError(f"vectors must have one row per text ({len(texts)})")

    def _fit_lexical(self, texts, vectors) -> sparse.csr_matrix:
        chunks = list(self._hashed(texts))  # hashed once: char n-grams are the slow part
        df = np.zeros(HASH_FEATURES, dtype=np.float64)
        for counts in chunks:
            df += np.bincount(counts.indices, minlength=HASH_FEATURES)
        self.idf_ = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float32)
        self.n_fitted_ = len(texts)
        lexical = self._weighted(_drain(chunks))  # each hashed chunk freed once weighted
        self.dense_moments_ = pair_moments(unit_rows(vectors))
        self.lexical_moments_ = sparse_moments(lexical)
        return lexical

    def fit_encode(self, X, *, vectors) -> Encoded:
        """`fit(X, vectors=vectors).encode(X, vectors)`, hashing the texts once."""
        texts = list(X)
        self._check_params(texts, vectors)
        lexical = self._fit_lexical(texts, vectors)
        return self._encoded(lexical, vectors)

    def _weighted(self, chunks) -> sparse.csr_matrix:
        blocks = []
        for counts in chunks:  # fresh matrices: weighted in place
            counts.data = (1.0 + np.log(counts.data)) * self.idf_[counts.indices]  # sublinear tf
            blocks.append(normalize(counts).astype(np.float32))
        if not blocks:
            return sparse.csr_matrix((0, HASH_FEATURES), dtype=np.float32)
        return sparse.vstack(blocks, format="csr")

    def lexical(self, texts) -> sparse.csr_matrix:
        """Unit-length hashed char TF-IDF rows (float32 CSR) of `texts` with the fitted idf."""
        check_is_fitted(self, "idf_")
        return self._weighted(self._hashed(list(texts)))

    def _projection(self) -> sparse.csr_matrix:
        rng = np.random.default_rng(SKETCH_SEED)
        bucket = rng.integers(0, self.sketch_dims, size=HASH_FEATURES)
        sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=HASH_FEATURES)
        return sparse.csr_matrix((sign, (np.arange(HASH_FEATURES), bucket)),
                                 shape=(HASH_FEATURES, self.sketch_dims))

    def encode(self, texts, vectors) -> Encoded:
        texts = list(texts)
        if len(vectors) != len(texts):
            raise ValueError(f"vectors must have one row per text ({len(texts)}), got {len(vectors)}")
        return self._encoded(self.lexical(texts), vectors)

    def _encoded(self, lexical, vectors) -> Encoded:
        sketch = np.asarray((lexical @ self._projection()).todense(), dtype=np.float32)
        dense = unit_rows(vectors) if lexical.shape[0] else np.zeros((0, 0), np.float32)
        return Encoded(dense, lexical, sketch)

    def search_weights(self) -> tuple[float, float, float]:
        """(a, b, offset): `a dense.dense + b sketch.sketch - offset` estimates the mixed score."""
        check_is_fitted(self, "idf_")
        w = self.dense_weight
        (dm, ds), (lm, ls) = self.dense_moments_, self.lexical_moments_
        return w / ds, (1 - w) / ls, w * dm / ds + (1 - w) * lm / ls

    def pair_scores(self, a: Encoded, i: np.ndarray, b: Encoded, j: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(mixed, plain) for the pairs `(a[i[k]], b[j[k]])`: the standardised mix that
        `SimilarityIndex.score_` holds before the hub correction, and `similarity_`."""
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        dense = np.zeros(len(i), dtype=np.float64)
        lexical = np.zeros(len(i), dtype=np.float64)
        # In chunks: the rows of a million pairs, gathered at once, would take gigabytes.
        for start in range(0, len(i), PAIR_CHUNK):
            part = slice(start, start + PAIR_CHUNK)
            dense[part] = np.einsum("ij,ij->i", a.dense[i[part]], b.dense[j[part]])
            lexical[part] = np.asarray(
                a.lexical[i[part]].multiply(b.lexical[j[part]]).sum(axis=1)).ravel()
        w = self.dense_weight
        (dm, ds), (lm, ls) = self.dense_moments_, self.lexical_moments_
        mixed = w * (dense - dm) / ds + (1 - w) * (lexical - lm) / ls
        return mixed, w * dense + (1 - w) * lexical

    def block_scores(self, a: Encoded, b: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """(mixed, plain) as len(a) x len(b) matrices (for a component or a small input)."""
        dense = (a.dense @ b.dense.T).astype(np.float64)
        lexical = (a.lexical @ b.lexical.T).toarray().astype(np.float64)
        w = self.dense_weight
        (dm, ds), (lm, ls) = self.dense_moments_, self.lexical_moments_
        return (w * (dense - dm) / ds + (1 - w) * (lexical - lm) / ls,
                w * dense + (1 - w) * lexical)


def take(rows: Encoded, positions) -> Encoded:
    """The rows at `positions`, as a new Encoded."""
    positions = np.asarray(positions, dtype=np.int64)
    return Encoded(rows.dense[positions], rows.lexical[positions], rows.sketch[positions])


def stack(parts: list[Encoded]) -> Encoded:
    """Rows of several Encoded one after the other."""
    parts = [p for p in parts if len(p)]
    return Encoded(np.vstack([p.dense for p in parts]),
                   sparse.vstack([p.lexical for p in parts], format="csr"),
                   np.vstack([p.sketch for p in parts]))
