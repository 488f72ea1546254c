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

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from pipeline.core.text import model_text
from pipeline.models.cues import CueMatcher, RowCues, load_cues
from pipeline.models.embed import EmbeddingVectorizer
from pipeline.models.facts import fact_sheet
from pipeline.models.reason_reliability import ReasonReliability, read_audits
from pipeline.models.ordinal import ORDINAL_MODELS, SCORES, _median, expected_value

SIGNAL_KIND = "signal"
# A row without a score (e.g. a reviewer correction of labels only) in y: skipped by fit, as
# scikit-learn's semi-supervised estimators skip -1.
UNLABELLED = -1
# Floor for a class probability inside a log: keeps the ordinal loss finite for impossible rows.
_EPS = 1e-12


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

    `reason_marks` are reasons marked right or wrong by hand (`reason_reliability.read_audits`):
    a reason whose kind was right less often than `min_reason_precision` (smoothed with
    `reason_prior_weight` pseudo-marks) is not shown; the signal and "too vague" reasons that set
    a score, and the fallback that says no clear cue was found, always are.
    """

    def __init__(self, *, cues_path: str | Path | None = None, embedding=None,
                 embedding_weight: float = 0.3, model: str = "frank_hall", C: float = 0.1,
                 class_weight: str | None = "balanced", max_reasons: int = 8, context_tokens: int = 3,
                 signal_cue: str = "signaal_rijk", goed_beschreven: bool = True,
                 reason_marks: tuple = (), min_reason_precision: float = 0.85,
                 reason_prior_weight: float = 2.0):
        self.cues_path = cues_path
        self.embedding = embedding
        self.embedding_weight = embedding_weight
        self.model = model
        self.C = C
        self.class_weight = class_weight
        self.max_reasons = max_reasons
        self.context_tokens = context_tokens
        self.signal_cue = signal_cue
        self.goed_beschreven = goed_beschreven
        self.reason_marks = reason_marks
        self.min_reason_precision = min_reason_precision
        self.reason_prior_weight = reason_prior_weight

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
            + (["facts:named"] if self.goed_beschreven else [])
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
        if getattr(self, "goed_beschreven", False):
            named = np.array([[fact_sheet(x.omschrijving).named()] for x in X], dtype=float)
            cues = np.hstack([cues, named])
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
        self.reason_reliability_ = ReasonReliability(prior_weight=self.reason_prior_weight).fit(
            self.reason_marks)
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
        vaag = getattr(self.cuebook_, "vaag", None)
        for x, kind, row, score, mean in zip(X, kinds, found, scores, expected):
            reasons = self._reasons(x, row, effects)
            setting = None  # the reason that sets the score (signal, too vague): always shown
            if kind == SIGNAL_KIND:
                score, mean = 1, 1.0
                setting = signal = self._signal_reason(reasons)
                reasons = [signal] + [r for r in reasons if not r["reden"].startswith(signal["reden"])]
            elif vaag is not None and getattr(row, "vaag", None) is not None:
                # Too vague to act on: the guide's 1-2, with that reason first; a "+" reason on the
                # same words gives way.
                score, mean = min(int(score), vaag.max_score), min(float(mean), float(vaag.max_score))
                start, end = row.vaag
                setting = {"reden": vaag.reden, "richting": "-", "bewijs": self._bewijs(x, row.vaag)}
                reasons = [setting] + [
                    r for r in reasons if not (r["richting"] == "+" and r["bewijs"] and any(
                        a < end and start < b for a, b in _occurrences(x.omschrijving, r["bewijs"])))]
            reasons = self._agree(self._reliable(reasons, setting), int(score), every=reasons)
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

    def _signal_reason(self, reasons: list[dict]) -> dict:
        """The signal cue's reason with the evidence it claimed, or without evidence."""
        cue = self.cuebook_.cue(self.signal_cue)
        found = next((r for r in reasons if r["reden"].startswith(cue.reden)), None)
        return found or {"reden": cue.reden, "richting": cue.richting, "bewijs": None}

    def _reasons(self, x, row: RowCues, effects: dict[str, float]) -> list[dict]:
        """The reasons of one row, strongest first, each claim on its own words.

        A reason is a candidate with its strength (support for its direction in the model) and the
        places in the text that say it. Claims are made cue by cue, then partners, then the
        "goed beschreven" elements, each on the first place whose matched words no earlier reason
        claimed; against a reason of the other direction even the context words may not overlap
        (the evidence shrinks to the matched words, or the reason is dropped). So one word is one
        claim ("gratis" is the low-cost claim, not also "says something about costs") and no
        two reasons of opposite direction quote the same words.
        """
        book = self.cuebook_
        candidates = []  # [strength, -order, rank, reden, richting, places or None]

        def add(order, rank, reden, richting, key, effect):
            sign = 1.0 if richting == "+" else -1.0
            places = row.matches.get(key) if key else None
            if key and not places and row.in_name.get(key):
                reden = f"{reden} {book.algemeen.in_naam.format(woorden=row.in_name[key])}"
            candidates.append((sign * effect, -order, rank, reden, richting, places or None))

        order = 0
        for cue in book.cues:
            order += 1
            key = f"cue:{cue.id}"
            if row.counts[key]:
                add(order, 0, cue.reden, cue.richting, key, effects[key] * math.log1p(row.counts[key]))
        n_partners = len(row.partners)
        rule = book.partners
        order += 1
        several = n_partners > rule.weinig_max or (n_partners >= 1 and row.partners_meervoud)
        if several:
            add(order, 1, rule.reden_veel, rule.richting_veel, CueMatcher.PARTNER_KEY, effects["partners:veel"])
        elif n_partners >= 1:
            add(order, 1, rule.reden_weinig, rule.richting_weinig, CueMatcher.PARTNER_KEY, effects["partners:weinig"])
        for element in book.elements:
            order += 1
            key = f"element:{element.id}"
            if row.counts[key]:
                add(order, 2, element.aanwezig, "+", key, effects[key])
            else:
                add(order, 2, element.ontbreekt, "-", None, -effects[key])
        order += 1
        if row.text_chars < book.algemeen.korte_tekst_tekens:
            add(order, 2, book.algemeen.reden_korte_tekst, "-", None, effects["text:kort"])

        claimed: list[tuple[int, int, int, int, str]] = []  # core start/end, bewijs start/end, direction

        def claim(richting, places):
            for core_start, core_end, start, end in places:
                if any(core_start < c_end and c_start < core_end for c_start, c_end, _, _, _ in claimed):
                    continue
                for span in ((start, end), (core_start, core_end)):
                    # A reader cannot tell which occurrence of the quoted words is meant: all count.
                    seen = _occurrences(x.omschrijving, x.omschrijving[span[0]:span[1]])
                    if not any(a < b_end and b_start < b for a, b in seen
                               for _, _, b_start, b_end, d in claimed if d != richting):
                        claimed.append((core_start, core_end, span[0], span[1], richting))
                        return span
            return None

        kept = []
        for strength, neg_order, rank, reden, richting, places in sorted(
                candidates, key=lambda c: (c[2], -c[0], -c[1])):
            span = None
            if places is not None:
                span = claim(richting, places)
                if span is None:
                    continue  # every place that says it is another reason's claim
            kept.append((strength, neg_order, {"reden": reden, "richting": richting,
                                               "bewijs": self._bewijs(x, span)}))
        if not kept:
            kept.append((0.0, 0, {"reden": book.algemeen.reden_geen_aanwijzing, "richting": "+", "bewijs": None}))
        kept.sort(key=lambda c: (c[0], c[1]), reverse=True)
        return [reason for _, _, reason in kept]

    def _reliable(self, reasons: list[dict], setting: dict | None) -> list[dict]:
        """The reasons whose kind is right often enough (see the class docstring)."""
        reliability = getattr(self, "reason_reliability_", None)  # models trained before it: all
        if reliability is None:
            return reasons
        fallback = self.cuebook_.algemeen.reden_geen_aanwijzing
        return [r for r in reasons if r is setting or r["reden"] == fallback
                or reliability.shows(r["reden"], r["richting"], self.min_reason_precision)]

    def _agree(self, reasons: list[dict], score: int, every: list[dict] = ()) -> list[dict]:
        """Reasons in an order that agrees with the score: a 4-5 leads with what makes it easy,
        a 1-2 with what makes it hard (each group keeps its strength order); a 3 keeps the order.
        With no shown reason in the score's direction, the strongest of `every` (the reasons before
        the reliability filter) in that direction leads: it is what moved the score. Only with
        none at all does the text say no clear cue was found."""
        if score == 3:
            return reasons
        lead = "+" if score >= 4 else "-"
        first = [r for r in reasons if r["richting"] == lead]
        if not first:
            first = [r for r in every if r["richting"] == lead][:1]
        if not first:
            first = [{"reden": self.cuebook_.algemeen.reden_geen_aanwijzing, "richting": lead, "bewijs": None}]
        return first + [r for r in reasons if r["richting"] != lead]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_live_matcher", None)  # spaCy objects are rebuilt from the cue book on load
        return state


@dataclass(frozen=True)
class _Row:
    naam: str | None
    omschrijving: str
    embed_text: str


def _occurrences(text: str, part: str) -> list[tuple[int, int]]:
    out, start = [], text.find(part)
    while start >= 0:
        out.append((start, start + len(part)))
        start = text.find(part, start + 1)
    return out


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

    config = settings.score
    embedding = None
    if config.embedding_weight > 0:
        embedding = EmbeddingVectorizer.from_config(settings.embed)
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
        goed_beschreven=config.goed_beschreven,
        reason_marks=tuple(read_audits(config.reason_audits)),
        min_reason_precision=config.min_reason_precision,
        reason_prior_weight=config.reason_prior_weight,
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
    "ReplicabilityScorer", "build_scorer", "cross_val_scores", "evaluate_scorer", "ordinal_metrics",
]
