"""Features made from the taxonomy's own label texts (scikit-learn transformers).

- `LabelSimilarity`: per label, the highest e5 cosine between a text and the label's description
  texts.
- `LabelTerms`: per label, whether the text names one of the label's own terms.

`LabelSimilarity` takes `label_texts` as `pipeline.training.stages.prior_texts` makes them (per
label its "naam. omschrijving" text, then the terms of the description); `LabelTerms` takes
`label_terms` as `pipeline.training.stages.label_terms` makes them (per label the terms of its
name and description).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from pipeline.core.text import fold


# A phrase that starts with one of these is a condition of the guide, not a term ("als er geen
# smallere groep genoemd wordt"); "de taal niet goed spreken" is a term.
CONDITIONS = {"als", "wanneer", "indien"}


def as_lists(label_texts) -> list[list[str]]:
    """Per label a list of texts (a label may be given one str)."""
    return [[t] if isinstance(t, str) else list(t) for t in label_texts]


def _folded_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


class LabelSimilarity(TransformerMixin, BaseEstimator):
    """texts -> (n_texts, n_labels): per label the highest cosine between a text and any of that
    label's description texts, standardised per column on the fitted texts. The maximum over a
    label's terms is not a linear function of the embedding, so it adds to the embedding channel.
    """

    def __init__(self, *, embedding=None, label_texts: Sequence = ()):
        self.embedding = embedding
        self.label_texts = label_texts

    def _raw(self, X) -> np.ndarray:
        sims = np.asarray(self.embedding_.transform(list(X))) @ self.label_vectors_.T
        out = np.column_stack([sims[:, self.groups_ == j].max(axis=1) for j in range(self.n_labels_)])
        # e5 cosines all sit near 0.8: what matters is which labels a text is closest to.
        return out - out.mean(axis=1, keepdims=True)

    def fit(self, X, y=None):
        groups = as_lists(self.label_texts)
        if not groups or not all(groups):
            raise ValueError("LabelSimilarity needs at least one text per label")
        self.embedding_ = clone(self.embedding).fit(list(X))
        self.n_labels_ = len(groups)
        self.groups_ = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        self.label_vectors_ = np.asarray(self.embedding_.transform([t for g in groups for t in g]))
        raw = self._raw(X)
        self.mean_, self.scale_ = raw.mean(axis=0), raw.std(axis=0) + 1e-6
        return self

    def transform(self, X):
        check_is_fitted(self, "label_vectors_")
        return (self._raw(X) - self.mean_) / self.scale_


class LabelTerms(TransformerMixin, BaseEstimator):
    """texts -> (n_texts, n_labels): 1 where the text names one of the label's terms, L2-normalised
    per row.

    `label_terms` holds per label its phrases: its name and the terms of its description
    (`pipeline.training.stages.label_terms`). A phrase is named when every one of its content
    words (Dutch stop words left out) occurs in the text: as a word, at the start of a compound
    ("jongeren" in "jongerenwerk") or, seven letters or more, at its end ("migranten" in
    "arbeidsmigranten"; "ouders" is not found in "statushouders"); words under four letters
    must match a whole word. Left out: a phrase that is the first half of an elliptical compound
    ("Dak-" of "Dak- en thuislozen": "onder één dak" is no shelter), a condition ("als er geen
    smallere groep genoemd wordt": guidance, not a term) and one word under four letters.
    Unlike the description examples, this is evidence the classifier sees on every row, so a
    label with four examples can still learn that its own words matter.
    Learned: terms_ (per label, a tuple of content-word tuples).
    """

    def __init__(self, *, label_terms: Sequence = ()):
        self.label_terms = label_terms

    def fit(self, X=None, y=None):
        from spacy.lang.nl.stop_words import STOP_WORDS

        entries = as_lists(self.label_terms)
        if not entries or not all(entries):
            raise ValueError("LabelTerms needs at least one phrase per label in label_terms")
        stop = {w for word in STOP_WORDS for w in _folded_words(word)}
        terms = []
        for phrases in entries:
            kept = set()
            for phrase in phrases:
                phrase = re.sub(r"\(.*?\)", " ", phrase).strip(" .'")
                words = _folded_words(phrase)
                if phrase.endswith("-") or (words and words[0] in CONDITIONS):
                    continue
                content = tuple(w for w in words if w not in stop)
                if content and not (len(content) == 1 and len(content[0]) < 4):
                    kept.add(content)
            terms.append(tuple(sorted(kept)))
        self.terms_ = terms
        return self

    def transform(self, X):
        check_is_fitted(self, "terms_")
        out = np.zeros((len(X), len(self.terms_)))
        for i, text in enumerate(X):
            words = _folded_words(text)
            joined = " " + " ".join(words) + " "
            whole = set(words)

            def named(word):
                if len(word) < 4:
                    return word in whole
                # the start of a word (jongeren-werk), or for long words also its end
                # (arbeids-migranten); not anywhere ("ouders" is no part of "statushouders")
                return " " + word in joined or (len(word) >= 7 and word + " " in joined)

            for j, label_terms in enumerate(self.terms_):
                out[i, j] = any(all(named(w) for w in term) for term in label_terms)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)
