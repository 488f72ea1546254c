"""Lemmas for a search query without spaCy: what `core.text.lemma_texts` gives for a short query,
from a table small enough to store with a search index.

spaCy's Dutch lookup lemmatizer looks every token up, lower-cased, in spacy-lookups-data's
`nl_lemma_lookup` table and drops stop words. Loading spaCy takes 3-9 s (it imports torch),
which is most of a `pipeline search` call; the documents were lemmatized once, when the index was
built, so only the query needs this. `QueryLemmatizer.for_vocabulary` keeps the table rows that
can matter for one TF-IDF vocabulary (a form or its lemma has a word in it): a form left out
gives itself, which then matches nothing either way.

Tokens are whitespace-separated chunks with leading and trailing punctuation cut (spaCy keeps
"mei-" and "en/of" whole, and so does this). On the 133 corpus texts the keyword vectors equal
spaCy's for 125 texts (whole texts of up to pages); the rest differ in a bracket inside a word
("mentor(of"), which short typed queries rarely hold (tests/test_search_index.py).
"""
from __future__ import annotations

import gzip
import importlib.resources
import json
import re
from functools import lru_cache
from typing import Iterable

# The TF-IDF token pattern of `HybridRanker` (words of two or more characters).
WORD = re.compile(r"(?u)\b\w\w+\b")
KEEP_AFTER_WORD = ("-", "/")  # spaCy keeps "op-" and "kunnen/" whole: not a stop word then


@lru_cache(maxsize=1)
def dutch_lookup_table() -> dict[str, str]:
    """spacy-lookups-data's Dutch lemma table (lower-case form -> lemma), read without spaCy."""
    source = importlib.resources.files("spacy_lookups_data") / "data" / "nl_lemma_lookup.json.gz"
    return json.loads(gzip.decompress(source.read_bytes()))


@lru_cache(maxsize=1)
def dutch_stop_words() -> frozenset[str]:
    """spaCy's Dutch stop words (what `lemma_texts` drops)."""
    from spacy.lang.nl.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _token(chunk: str) -> str:
    start, end = 0, len(chunk)
    while start < end and not chunk[start].isalnum():
        start += 1
    while end > start and not chunk[end - 1].isalnum():
        end -= 1
    if end < len(chunk) and end > start and chunk[end] in KEEP_AFTER_WORD:
        end += 1
    return chunk[start:end]


class QueryLemmatizer:
    """`lemma_texts` for queries from a stored table: `lemmatizer(text) -> "lemma lemma ..."`.

    `lemmas` maps lower-case forms to lemmas, `stop_words` are dropped. Build it with
    `for_vocabulary`; it pickles as two plain containers.
    """

    def __init__(self, *, lemmas: dict[str, str], stop_words: frozenset[str]):
        self.lemmas = lemmas
        self.stop_words = stop_words

    @classmethod
    def for_vocabulary(cls, vocabulary: Iterable[str]) -> "QueryLemmatizer":
        """The table rows whose form or lemma holds a word of `vocabulary` (a fitted TF-IDF
        vocabulary over lemma texts), with spaCy's Dutch stop words."""
        vocabulary = set(vocabulary)
        lemmas = {form: lemma for form, lemma in dutch_lookup_table().items()
                  if form != lemma and (any(w in vocabulary for w in WORD.findall(lemma.lower()))
                                        or any(w in vocabulary for w in WORD.findall(form)))}
        return cls(lemmas=lemmas, stop_words=dutch_stop_words())

    def __call__(self, text: str) -> str:
        out = []
        for chunk in text.split():
            token = _token(chunk).lower()
            if token and token not in self.stop_words:
                out.append(self.lemmas.get(token, token).lower())
        return " ".join(out)
