"""Replicability score 1-5 with Dutch reasons a policy officer can check against the text.

Three parts, data flowing one way:

- `load_cues(path)` reads the Dutch cues of `configs/replicability_cues.toml` (criteria of the
  labelling guide, partners, and the "goed beschreven" elements aim/target group/approach/
  partners/costs) into a `CueBook`; any error names the file and the key.
- `CueMatcher` finds those cues with spaCy's `Matcher` in the raw text as given, so every piece of
  evidence (`bewijs`) is a verbatim substring of the description.
- `ReplicabilityScorer`, a scikit-learn estimator: an ordinal model for 1-5 (a cumulative-link
  logistic model with one weight vector and four ordered cut points, or Frank & Hall's four
  binary models made monotone) on the cue features, text length and, optionally, the sentence
  embedding. `score_rows` adds the score, its expected value and the reasons, ordered by how much
  each weighed in the model. A row whose kind is "signal" gets score 1 with the signal reason.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from pipeline.core.config import _read_toml, section_from_dict
from pipeline.core.errors import ConfigError
from pipeline.core.text import dutch_nlp, model_text

SCORES = (1, 2, 3, 4, 5)
DIRECTIONS = ("+", "-")
SIGNAL_KIND = "signal"
# A row without a score (e.g. a reviewer correction of labels only) in y: skipped by fit, as
# scikit-learn's semi-supervised estimators skip -1.
UNLABELLED = -1
# Floor for a class probability inside a log: keeps the ordinal loss finite for impossible rows.
_EPS = 1e-12


# --------------------------------------------------------------------------------------------
# The cue file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    """One criterion of the guide: a Dutch reason, its direction and the patterns that find it."""

    id: str
    richting: str
    reden: str
    patronen: tuple[str, ...]


@dataclass(frozen=True)
class PartnerRule:
    """Partners are counted: up to `weinig_max` distinct ones is "one or two", more is "several"."""

    weinig_max: int
    reden_weinig: str
    richting_weinig: str
    reden_veel: str
    richting_veel: str
    patronen: tuple[str, ...]


@dataclass(frozen=True)
class Element:
    """A "goed beschreven" element; both its presence and its absence are reasons."""

    id: str
    aanwezig: str
    ontbreekt: str
    patronen: tuple[str, ...]


@dataclass(frozen=True)
class General:
    """Reasons that come from the text as a whole rather than from a pattern."""

    korte_tekst_tekens: int
    reden_korte_tekst: str
    in_naam: str
    reden_geen_aanwijzing: str


@dataclass(frozen=True)
class CueBook:
    cues: tuple[Cue, ...]
    partners: PartnerRule
    elements: tuple[Element, ...]
    algemeen: General
    source: str

    def cue(self, cue_id: str) -> Cue:
        for cue in self.cues:
            if cue.id == cue_id:
                return cue
        raise ConfigError(
            f"{self.source} has no [[cue]] with id {cue_id!r}; ids are {[c.id for c in self.cues]}"
        )


_TOKEN_OK = re.compile(r"^(_|[^\s]+)$")


def _check_patterns(patterns: Sequence[str], where: str) -> None:
    if not patterns:
        raise ConfigError(f"{where}.patronen is empty; give at least one Dutch pattern")
    for i, pattern in enumerate(patterns):
        tokens = pattern.split()
        if not tokens:
            raise ConfigError(f"{where}.patronen[{i}] is an empty pattern")
        for token in tokens:
            if not _TOKEN_OK.match(token) or token.strip("*") == "":
                raise ConfigError(
                    f"{where}.patronen[{i}] {pattern!r} has the token {token!r}, which matches "
                    f"anything; use '_' for one arbitrary token or add letters to the wildcard"
                )
        if all(token == "_" for token in tokens):
            raise ConfigError(f"{where}.patronen[{i}] {pattern!r} would match every token")


def _check_direction(value: str, where: str) -> None:
    if value not in DIRECTIONS:
        raise ConfigError(f'{where} must be "+" or "-", got {value!r}')


def load_cues(path: str | Path) -> CueBook:
    """Read the cue file (`configs/replicability_cues.toml`) into a `CueBook`.

    Raises `ConfigError` naming the file and the key for a missing table, an unknown or missing
    key, a direction other than "+"/"-", a repeated id or a pattern that would match anything.
    """
    path = Path(path)
    data = _read_toml(path)
    where = str(path)
    known = {"cue", "partners", "element", "algemeen"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown table(s) {unknown}; valid are {sorted(known)}")
    for key in ("cue", "element"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ConfigError(f"{where} has no [[{key}]] entries")
    for key in ("partners", "algemeen"):
        if key not in data:
            raise ConfigError(f"{where} has no [{key}] table")

    cues = []
    for i, item in enumerate(data["cue"]):
        label = f"{where} cue[{i}]" + (f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else "")
        cue = section_from_dict(Cue, item, where=label)
        _check_direction(cue.richting, f"{label}.richting")
        _check_patterns(cue.patronen, label)
        cues.append(cue)
    elements = []
    for i, item in enumerate(data["element"]):
        label = f"{where} element[{i}]" + (f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else "")
        element = section_from_dict(Element, item, where=label)
        _check_patterns(element.patronen, label)
        elements.append(element)
    partners = section_from_dict(PartnerRule, data["partners"], where=f"{where} [partners]")
    _check_direction(partners.richting_weinig, f"{where} [partners].richting_weinig")
    _check_direction(partners.richting_veel, f"{where} [partners].richting_veel")
    _check_patterns(partners.patronen, f"{where} [partners]")
    if partners.weinig_max < 1:
        raise ConfigError(f"{where} [partners].weinig_max must be at least 1, got {partners.weinig_max}")
    algemeen = section_from_dict(General, data["algemeen"], where=f"{where} [algemeen]")
    for kind, items in (("cue", cues), ("element", elements)):
        ids = [item.id for item in items]
        repeated = sorted({x for x in ids if ids.count(x) > 1})
        if repeated:
            raise ConfigError(f"{where} repeats [[{kind}]] id(s) {repeated}")
    return CueBook(tuple(cues), partners, tuple(elements), algemeen, where)


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


@dataclass
class RowCues:
    """What the matcher found in one initiative.

    `counts[key]` counts matches in name and description; `evidence[key]` is the first match in the
    description as (start_char, end_char) into the raw text, or None when it only occurs in the
    name; `in_name[key]` is the first match in the name as text (or None). `partners` holds the
    distinct partner words (lower case).
    """

    counts: dict[str, int]
    evidence: dict[str, tuple[int, int] | None]
    partners: set[str]
    text_chars: int
    in_name: dict[str, str | None] = dataclasses.field(default_factory=dict)


def _token_specs(word: str, nlp) -> list[dict]:
    if word == "_":
        return [{}]
    if "*" in word:
        regex = "^" + ".*".join(re.escape(part) for part in word.lower().split("*")) + "$"
        return [{"LOWER": {"REGEX": regex}}]
    specs = []
    for token in nlp(word.lower()):
        # The lookup lemmatizer knows only some inflections, so the lower-case form is accepted too.
        forms = sorted({token.text.lower(), (token.lemma_ or token.text).lower()})
        specs.append({"LEMMA": {"IN": forms}})
    return specs


def _merge_single_tokens(patterns: list[list[dict]]) -> list[list[dict]]:
    """Fold the one-token patterns of a key into one regex and one lemma set: the Matcher then
    tests each token twice instead of once per pattern (same matches, several times faster)."""
    regexes, forms, rest = [], set(), []
    for pattern in patterns:
        if len(pattern) == 1 and "REGEX" in pattern[0].get("LOWER", {}):
            regexes.append(pattern[0]["LOWER"]["REGEX"])
        elif len(pattern) == 1 and "IN" in pattern[0].get("LEMMA", {}):
            forms.update(pattern[0]["LEMMA"]["IN"])
        else:
            rest.append(pattern)
    merged = []
    if regexes:
        merged.append([{"LOWER": {"REGEX": "|".join(f"(?:{r})" for r in regexes)}}])
    if forms:
        merged.append([{"LEMMA": {"IN": sorted(forms)}}])
    return merged + rest


class CueMatcher:
    """spaCy `Matcher` over the cue book. `match(texts)` -> one `RowCues` per (naam, text) pair."""

    PARTNER_KEY = "partners"

    def __init__(self, cuebook: CueBook, *, context_tokens: int = 3):
        from spacy.matcher import Matcher

        self.cuebook = cuebook
        self.context_tokens = context_tokens
        self.nlp = dutch_nlp()
        self.matcher = Matcher(self.nlp.vocab)
        for key, patterns in self.pattern_sets():
            self.matcher.add(key, _merge_single_tokens(
                [[spec for word in pattern.split() for spec in _token_specs(word, self.nlp)]
                 for pattern in patterns]), greedy="LONGEST")

    def pattern_sets(self):
        yield from ((f"cue:{c.id}", c.patronen) for c in self.cuebook.cues)
        yield self.PARTNER_KEY, self.cuebook.partners.patronen
        yield from ((f"element:{e.id}", e.patronen) for e in self.cuebook.elements)

    def _spans(self, doc) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        for match_id, start, end in self.matcher(doc):
            found.setdefault(self.nlp.vocab.strings[match_id], []).append((start, end))
        for spans in found.values():
            spans.sort()
        return found

    def _widen(self, doc, start: int, end: int) -> tuple[int, int]:
        """Character offsets of tokens [start, end) plus up to `context_tokens` words either side,
        never crossing punctuation or a line break, so the evidence reads as a phrase."""

        def stops(token) -> bool:
            return token.is_punct or token.is_space or "\n" in token.whitespace_

        left = start
        for _ in range(self.context_tokens):
            if left == 0 or stops(doc[left - 1]):
                break
            left -= 1
        right = end
        for _ in range(self.context_tokens):
            if right >= len(doc) or stops(doc[right]) or "\n" in doc[right - 1].whitespace_:
                break
            right += 1
        return doc[left].idx, doc[right - 1].idx + len(doc[right - 1].text)

    def match(self, naam: Sequence[str | None], texts: Sequence[str]) -> list[RowCues]:
        names = list(self.nlp.pipe([n or "" for n in naam]))
        bodies = list(self.nlp.pipe(list(texts)))
        out = []
        for name_doc, doc in zip(names, bodies):
            in_name = self._spans(name_doc)
            in_body = self._spans(doc)
            counts = {key: len(in_name.get(key, ())) + len(in_body.get(key, ())) for key, _ in self.pattern_sets()}
            evidence: dict[str, tuple[int, int] | None] = {}
            for key in counts:
                spans = in_body.get(key)
                evidence[key] = self._widen(doc, *spans[0]) if spans else None
            partners = {
                d[s:e].text.lower()
                for d, found in ((name_doc, in_name), (doc, in_body))
                for s, e in found.get(self.PARTNER_KEY, ())
            }
            named = {key: name_doc[s[0][0] : s[0][1]].text if (s := in_name.get(key)) else None
                     for key in counts}
            out.append(RowCues(counts, evidence, partners, len(doc.text), named))
        return out


# --------------------------------------------------------------------------------------------
# Ordinal models
# --------------------------------------------------------------------------------------------


class CumulativeLogit(ClassifierMixin, BaseEstimator):
    """Cumulative-link ("all-threshold") logistic model for ordered classes 1..K.

    P(y <= k | x) = sigmoid(c_k - x.w) with ordered cut points c_1 < ... < c_{K-1} and one weight
    vector w shared by all thresholds, fitted by L-BFGS with an L2 penalty 1/(2C)|w|^2. With few rows
    one shared w uses the data better than one model per threshold. `class_weight="balanced"`
    weighs each row by n / (K * rows of its class), as scikit-learn does.
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, class_weight: str | None = None):
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight

    @staticmethod
    def _cuts(theta: np.ndarray) -> np.ndarray:
        return theta[0] + np.concatenate([[0.0], np.cumsum(np.exp(theta[1:]))])

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        if self.C <= 0:
            raise ValueError(f"C must be positive, got {self.C!r}")
        self.classes_ = np.array(sorted(SCORES))
        n_cuts = len(self.classes_) - 1
        index = np.searchsorted(self.classes_, y)
        n, d = X.shape
        weight = _row_weights(index, len(self.classes_), self.class_weight)

        def loss_grad(params):
            w, theta = params[:d], params[d:]
            cuts = self._cuts(theta)
            eta = X @ w
            upper = np.concatenate([cuts, [np.inf]])[index] - eta
            lower = np.concatenate([[-np.inf], cuts])[index] - eta
            f_up, f_lo = expit(upper), expit(lower)
            p = np.maximum(f_up - f_lo, _EPS)
            d_up, d_lo = f_up * (1 - f_up), f_lo * (1 - f_lo)
            loss = -(weight * np.log(p)).sum() + 0.5 / self.C * w @ w
            g_eta = weight * (d_up - d_lo) / p
            grad_w = X.T @ g_eta + w / self.C
            # d loss / d cut_k from the rows whose upper or lower cut point is k.
            g_cut = np.zeros(n_cuts)
            up_k, lo_k = index, index - 1
            np.add.at(g_cut, up_k[up_k < n_cuts], -(weight * d_up / p)[up_k < n_cuts])
            np.add.at(g_cut, lo_k[lo_k >= 0], (weight * d_lo / p)[lo_k >= 0])
            # cut_k = theta_0 + sum_{j=1..k} exp(theta_j)
            grad_theta = np.zeros(n_cuts)
            grad_theta[0] = g_cut.sum()
            exp_t = np.exp(theta[1:])
            grad_theta[1:] = exp_t * np.cumsum(g_cut[::-1])[::-1][1:]
            return loss, np.concatenate([grad_w, grad_theta])

        counts = np.bincount(index, minlength=len(self.classes_)) + 1.0
        start_cuts = np.log(np.cumsum(counts)[:-1] / (counts.sum() - np.cumsum(counts)[:-1]))
        theta0 = np.concatenate([[start_cuts[0]], np.log(np.maximum(np.diff(start_cuts), 1e-3))])
        result = minimize(
            loss_grad, np.concatenate([np.zeros(d), theta0]), jac=True, method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        self.coef_ = result.x[:d]
        self.cuts_ = self._cuts(result.x[d:])
        return self

    def cumulative_gt(self, X) -> np.ndarray:
        """(n, K-1): P(y > k) for k = 1..K-1."""
        check_is_fitted(self, "coef_")
        eta = np.asarray(X, dtype=float) @ self.coef_
        return 1.0 - expit(self.cuts_[None, :] - eta[:, None])

    def predict_proba(self, X) -> np.ndarray:
        return _proba_from_gt(self.cumulative_gt(X))

    def predict(self, X) -> np.ndarray:
        return _median(self.predict_proba(X))

    def effects(self) -> np.ndarray:
        """How much one unit of each feature raises the latent score (shared by all thresholds)."""
        return self.coef_


class FrankHall(ClassifierMixin, BaseEstimator):
    """Frank & Hall (2001): one binary logistic model P(y > k) per threshold, made monotone.

    `class_weight="balanced"` balances each binary problem (the rare ends 1 and 5 then count as
    much as the middle, so the model dares to predict them)."""

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, class_weight: str | None = None):
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        self.classes_ = np.array(sorted(SCORES))
        self.n_features_in_ = X.shape[1]
        self.models_ = []
        for k in self.classes_[:-1]:
            target = (y > k).astype(int)
            if target.min() == target.max():
                # A fold without one side of this threshold: a constant, not a failed fit.
                self.models_.append(float(target[0]))
            else:
                self.models_.append(LogisticRegression(
                    C=self.C, max_iter=self.max_iter, class_weight=self.class_weight).fit(X, target))
        return self

    def cumulative_gt(self, X) -> np.ndarray:
        check_is_fitted(self, "models_")
        X = np.asarray(X, dtype=float)
        columns = [
            np.full(len(X), m) if isinstance(m, float) else m.predict_proba(X)[:, 1]
            for m in self.models_
        ]
        # P(y > k) cannot grow with k; the separate models do not know that.
        return np.minimum.accumulate(np.column_stack(columns), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        return _proba_from_gt(self.cumulative_gt(X))

    def predict(self, X) -> np.ndarray:
        return _median(self.predict_proba(X))

    def effects(self) -> np.ndarray:
        """How much one unit of each feature raises P(y > k), summed over the thresholds."""
        fitted = [m.coef_[0] for m in self.models_ if not isinstance(m, float)]
        if not fitted:
            # Every training row had the same score: every threshold is a constant, so no
            # feature moves the score.
            return np.zeros(self.n_features_in_)
        return np.sum(fitted, axis=0)


ORDINAL_MODELS = {"cumulative": CumulativeLogit, "frank_hall": FrankHall}


def _row_weights(index: np.ndarray, n_classes: int, class_weight: str | None) -> np.ndarray:
    if class_weight is None:
        return np.ones(len(index))
    if class_weight != "balanced":
        raise ValueError(f'class_weight must be None or "balanced", got {class_weight!r}')
    counts = np.bincount(index, minlength=n_classes).astype(float)
    present = counts > 0
    per_class = np.zeros(n_classes)
    per_class[present] = len(index) / (present.sum() * counts[present])
    return per_class[index]


def _proba_from_gt(gt: np.ndarray) -> np.ndarray:
    ones = np.ones((len(gt), 1))
    zeros = np.zeros((len(gt), 1))
    upper = np.hstack([ones, gt])
    lower = np.hstack([gt, zeros])
    return np.clip(upper - lower, 0.0, 1.0)


def _median(proba: np.ndarray) -> np.ndarray:
    """The median class: the score that minimises expected absolute error (the metric is MAE)."""
    cumulative = np.cumsum(proba, axis=1)
    return np.array(SCORES)[np.argmax(cumulative >= 0.5 - 1e-9, axis=1)]


def expected_value(proba: np.ndarray) -> np.ndarray:
    return proba @ np.array(SCORES, dtype=float)


# --------------------------------------------------------------------------------------------
# The scorer
# --------------------------------------------------------------------------------------------


class ReplicabilityScorer(ClassifierMixin, BaseEstimator):
    """Ordinal replicability score 1-5 from Dutch cues, text length and (optionally) an embedding.

    fit(X, y): X a sequence of `Initiative` (anything with `naam` and `omschrijving`; a dict with
    those keys or a plain text also works), y ints 1-5 (-1: no score, the row is skipped).
    predict(X) -> ints 1-5 (the median of the predicted distribution); predict_proba(X) -> (n, 5);
    score_rows(X, kinds) -> one dict per row with the score, its expected value and the reasons.

    `embedding` is a fitted-or-unfitted transformer of texts (e.g. `EmbeddingVectorizer`) or None
    for a cue-only model; `embedding_weight` scales its standardised block against the cues.
    """

    def __init__(self, *, cues_path: str | Path | None = None, embedding=None,
                 embedding_weight: float = 0.1, model: str = "cumulative", C: float = 0.1,
                 class_weight: str | None = None, max_reasons: int = 8, context_tokens: int = 3, signal_cue: str = "signaal_rijk"):
        self.cues_path = cues_path
        self.embedding = embedding
        self.embedding_weight = embedding_weight
        self.model = model
        self.C = C
        self.class_weight = class_weight
        self.max_reasons = max_reasons
        self.context_tokens = context_tokens
        self.signal_cue = signal_cue

    # -- features ---------------------------------------------------------------------------

    def _matcher(self) -> CueMatcher:
        live = getattr(self, "_live_matcher", None)
        if live is None:
            live = CueMatcher(self.cuebook_, context_tokens=self.context_tokens)
            self._live_matcher = live
        return live

    def _feature_names(self) -> list[str]:
        book = self.cuebook_
        return (
            [f"cue:{c.id}" for c in book.cues]
            + ["partners:weinig", "partners:veel", "partners:aantal"]
            + [f"element:{e.id}" for e in book.elements]
            + ["elements:missing", "text:log_chars", "text:kort"]
        )

    def _cue_features(self, found: list[RowCues]) -> np.ndarray:
        book = self.cuebook_
        rows = []
        for row in found:
            n_partners = len(row.partners)
            elements = [1.0 if row.counts[f"element:{e.id}"] else 0.0 for e in book.elements]
            rows.append(
                [math.log1p(row.counts[f"cue:{c.id}"]) for c in book.cues]
                + [
                    1.0 if 1 <= n_partners <= book.partners.weinig_max else 0.0,
                    1.0 if n_partners > book.partners.weinig_max else 0.0,
                    math.log1p(n_partners),
                ]
                + elements
                + [
                    len(elements) - sum(elements),
                    math.log1p(row.text_chars),
                    1.0 if row.text_chars < book.algemeen.korte_tekst_tekens else 0.0,
                ]
            )
        return np.asarray(rows, dtype=float)

    def _find(self, X) -> list[RowCues]:
        return self._matcher().match([x.naam for x in X], [x.omschrijving for x in X])

    def _design(self, X, found: list[RowCues], *, fit: bool) -> np.ndarray:
        cues = self._cue_features(found)
        if fit:
            self.cue_scaler_ = StandardScaler().fit(cues)
        blocks = [self.cue_scaler_.transform(cues)]
        if self.embedding is not None and self.embedding_weight > 0:
            texts = [x.embed_text for x in X]
            if fit:
                self.embedding_ = _fit_if_needed(self.embedding, texts)
            vectors = np.asarray(self.embedding_.transform(texts), dtype=float)
            if fit:
                self.embedding_scaler_ = StandardScaler().fit(vectors)
            blocks.append(self.embedding_weight * self.embedding_scaler_.transform(vectors))
        return np.hstack(blocks)

    # -- estimator API ----------------------------------------------------------------------

    def fit(self, X, y):
        """Fit on initiatives `X` and scores `y` (ints 1-5); returns self. Raises ValueError."""
        X = _rows(X)
        y = np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} scores")
        bad = [(i, v) for i, v in enumerate(y.tolist()) if v not in SCORES and v != UNLABELLED]
        if bad:
            i, v = bad[0]
            raise ValueError(f"replicability must be an integer 1-5; row {i} has {v!r}")
        keep = [i for i, v in enumerate(y.tolist()) if v != UNLABELLED]
        if not keep:
            raise ValueError("no row has a replicability score 1-5 to learn from")
        X = [X[i] for i in keep]
        y = y[keep]
        if self.model not in ORDINAL_MODELS:
            raise ValueError(f"model must be one of {sorted(ORDINAL_MODELS)}, got {self.model!r}")
        if self.cues_path is None:
            raise ValueError("cues_path is required: the file with the Dutch cues")
        self.cuebook_ = load_cues(self.cues_path)
        self.cuebook_.cue(self.signal_cue)
        self._live_matcher = None
        self.feature_names_ = self._feature_names()
        design = self._design(X, self._find(X), fit=True)
        self.ordinal_ = ORDINAL_MODELS[self.model](C=self.C, class_weight=self.class_weight).fit(
            design, y.astype(int))
        self.classes_ = np.array(SCORES)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "ordinal_")
        X = _rows(X)
        return self.ordinal_.predict_proba(self._design(X, self._find(X), fit=False))

    def predict(self, X) -> np.ndarray:
        return _median(self.predict_proba(X))

    def expected(self, X) -> np.ndarray:
        """The expected score (a float between 1 and 5) of each row."""
        return expected_value(self.predict_proba(X))

    def score_rows(self, X, kinds: Sequence[str]) -> list[dict]:
        """Score and explain each initiative.

        Returns one dict per row: "replicability" (int 1-5), "replicability_score" (expected value),
        "replicability_reasons" ([{"reden", "richting", "bewijs"}], strongest first, at least one;
        `bewijs` is a verbatim substring of the row's `omschrijving` or None). A row whose kind is
        "signal" gets score 1 with the signal reason first.
        """
        check_is_fitted(self, "ordinal_")
        X = _rows(X)
        kinds = list(kinds)
        if len(kinds) != len(X):
            raise ValueError(f"got {len(X)} rows but {len(kinds)} kinds")
        if not X:
            return []
        found = self._find(X)
        design = self._design(X, found, fit=False)
        proba = self.ordinal_.predict_proba(design)
        scores = _median(proba)
        expected = expected_value(proba)
        effects = self._cue_effects()
        out = []
        for x, kind, row, score, mean in zip(X, kinds, found, scores, expected):
            reasons = self._reasons(x, row, effects)
            if kind == SIGNAL_KIND:
                score, mean = 1, 1.0
                signal = self._signal_reason(x, row)
                reasons = [signal] + [r for r in reasons if not r["reden"].startswith(signal["reden"])]
            out.append({
                "replicability": int(score),
                "replicability_score": round(float(mean), 2),
                "replicability_reasons": reasons[: self.max_reasons],
            })
        return out

    # -- reasons ----------------------------------------------------------------------------

    def _cue_effects(self) -> dict[str, float]:
        """Per hand-made feature: how much a value of 1 (rather than 0) moves the latent score."""
        n = len(self.feature_names_)
        raw = self.ordinal_.effects()[:n] / self.cue_scaler_.scale_
        return dict(zip(self.feature_names_, raw))

    def _bewijs(self, x, span) -> str | None:
        return None if span is None else x.omschrijving[span[0] : span[1]]

    def _signal_reason(self, x, row: RowCues) -> dict:
        cue = self.cuebook_.cue(self.signal_cue)
        key = f"cue:{cue.id}"
        return {"reden": cue.reden, "richting": cue.richting, "bewijs": self._bewijs(x, row.evidence[key])}

    def _reasons(self, x, row: RowCues, effects: dict[str, float]) -> list[dict]:
        book = self.cuebook_
        candidates = []  # (support for the stated direction, config order, reason)

        def add(order, reden, richting, span, effect, key=None):
            sign = 1.0 if richting == "+" else -1.0
            if span is None and key is not None and row.in_name.get(key):
                reden = f"{reden} {book.algemeen.in_naam.format(woorden=row.in_name[key])}"
            candidates.append((sign * effect, -order, {"reden": reden, "richting": richting,
                                                       "bewijs": self._bewijs(x, span)}))

        order = 0
        for cue in book.cues:
            order += 1
            key = f"cue:{cue.id}"
            if row.counts[key]:
                add(order, cue.reden, cue.richting, row.evidence[key],
                    effects[key] * math.log1p(row.counts[key]), key)
        n_partners = len(row.partners)
        rule = book.partners
        order += 1
        if 1 <= n_partners <= rule.weinig_max:
            add(order, rule.reden_weinig, rule.richting_weinig, row.evidence[CueMatcher.PARTNER_KEY],
                effects["partners:weinig"], CueMatcher.PARTNER_KEY)
        elif n_partners > rule.weinig_max:
            add(order, rule.reden_veel, rule.richting_veel, row.evidence[CueMatcher.PARTNER_KEY],
                effects["partners:veel"], CueMatcher.PARTNER_KEY)
        for element in book.elements:
            order += 1
            key = f"element:{element.id}"
            if row.counts[key]:
                add(order, element.aanwezig, "+", row.evidence[key], effects[key], key)
            else:
                add(order, element.ontbreekt, "-", None, -effects[key])
        order += 1
        if row.text_chars < book.algemeen.korte_tekst_tekens:
            add(order, book.algemeen.reden_korte_tekst, "-", None, effects["text:kort"])
        if not candidates:
            add(order + 1, book.algemeen.reden_geen_aanwijzing, "+", None, 0.0)
        candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
        return [reason for _, _, reason in candidates]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_live_matcher", None)  # spaCy objects are rebuilt from the cue book on load
        return state


@dataclass(frozen=True)
class _Row:
    naam: str | None
    omschrijving: str
    embed_text: str


def _rows(X) -> list[_Row]:
    """Accept `Initiative`s (or anything with `naam` and `omschrijving`), dicts with those keys, or
    plain strings (a text without a name, e.g. the model texts the training stage passes)."""
    out = []
    for i, x in enumerate(X):
        if isinstance(x, str):
            out.append(_Row(None, x, x))
            continue
        if isinstance(x, dict):
            x = SimpleNamespace(naam=x.get("naam"), omschrijving=x.get("omschrijving"))
        omschrijving = getattr(x, "omschrijving", None)
        if not isinstance(omschrijving, str):
            raise ValueError(
                f"row {i}: expected an initiative with a text field 'omschrijving' or a string, "
                f"got {type(x).__name__} with omschrijving={omschrijving!r}"
            )
        out.append(_Row(getattr(x, "naam", None), omschrijving, model_text(x)))
    return out


def _fit_if_needed(transformer, texts):
    try:
        check_is_fitted(transformer)
        return transformer
    except Exception:
        from sklearn.base import clone

        return clone(transformer).fit(texts)


# --------------------------------------------------------------------------------------------
# Construction and evaluation
# --------------------------------------------------------------------------------------------


def build_scorer(settings) -> ReplicabilityScorer:
    """The scorer described by [score] (and [embed]) of `configs/pipeline.toml`, unfitted."""
    from pipeline.models.embed import EmbeddingVectorizer

    config = settings.score
    embedding = None
    if config.embedding_weight > 0:
        embed = settings.embed
        embedding = EmbeddingVectorizer(
            encoder=embed.encoder, prefix=embed.prefix, model_path=embed.model_path,
            cache_path=str(embed.cache_path), batch_size=embed.batch_size,
        )
    return ReplicabilityScorer(
        cues_path=str(config.cues),
        embedding=embedding,
        embedding_weight=config.embedding_weight,
        model=config.model,
        C=config.C,
        class_weight=config.class_weight or None,
        max_reasons=config.max_reasons,
        context_tokens=config.bewijs_context_tokens,
        signal_cue=config.signal_cue,
    )


def ordinal_metrics(y_true, y_pred) -> dict:
    """MAE, exact agreement, agreement within one point and Spearman's rho."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    error = np.abs(y_true - y_pred)
    rho = spearmanr(y_true, y_pred).statistic if np.ptp(y_pred) > 0 else 0.0
    return {
        "mae": round(float(error.mean()), 4),
        "exact": round(float((error == 0).mean()), 4),
        "within_one": round(float((error <= 1).mean()), 4),
        "spearman": round(float(rho), 4),
        "n": int(len(y_true)),
    }


def cv_folds(y, cv_splits, random_state: int = 0):
    """`cv_splits` as given (an iterable of (train, test) index arrays) or, for an int, stratified
    folds on the score."""
    if isinstance(cv_splits, int):
        y = np.asarray(y)
        n_splits = min(cv_splits, int(np.bincount(y).max()))
        return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y))
    return list(cv_splits)


def cross_val_scores(make_scorer, initiatives, y, kinds, cv_splits, random_state: int = 0):
    """Out-of-fold predictions (ints), expected values and a mask of the rows some fold tested;
    signal rows get 1 as in `score_rows`."""
    initiatives = list(initiatives)
    y = np.asarray(y, dtype=int)
    predicted = np.zeros(len(y), dtype=int)
    expected = np.zeros(len(y), dtype=float)
    scored = np.zeros(len(y), dtype=bool)
    for train, test in cv_folds(y, cv_splits, random_state):
        scorer = make_scorer().fit([initiatives[i] for i in train], y[train])
        rows = scorer.score_rows([initiatives[i] for i in test], [kinds[i] for i in test])
        predicted[test] = [r["replicability"] for r in rows]
        expected[test] = [r["replicability_score"] for r in rows]
        scored[test] = True
    return predicted, expected, scored


def evaluate_scorer(settings, initiatives, y, kinds, cv_splits) -> dict:
    """Cross-validated MAE, exact, within-one and Spearman of the configured scorer.

    `kinds` are the rows' kinds (signal rows get score 1, as in prediction); `cv_splits` an int
    (stratified folds) or a list of (train, test) index arrays. Returns a dict of metrics.
    """
    predicted, _, scored = cross_val_scores(lambda: build_scorer(settings), initiatives, y, kinds,
                                            cv_splits, settings.score.random_state)
    return ordinal_metrics(np.asarray(y)[scored], predicted[scored])


__all__ = [
    "Cue", "CueBook", "CueMatcher", "CumulativeLogit", "FrankHall", "ReplicabilityScorer",
    "build_scorer", "cross_val_scores", "evaluate_scorer", "load_cues", "ordinal_metrics",
]
