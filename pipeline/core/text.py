"""Text normalisation for the models only; the stored text always stays as the user gave it.

`model_text(initiative)` is what encoders and the lexical channel read: name and description,
with OCR artefacts, bullets, URLs and odd whitespace cleaned. `lemma_text(text)` adds Dutch
lookup lemmas from spaCy (`blank("nl")` + spacy-lookups-data) so inflections share features.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable, Mapping

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
# A word broken over a line end by the scanner: "maat-\njes" -> "maatjes". Not a Dutch elliptical
# hyphen ("ouderen-\nen jongerenwerk", "huur- of zorgtoeslag"): the next word is then en/of/tot,
# and a space after the hyphen also means it was typed, not a break.
_HYPHEN_BREAK = re.compile(r"(\w)-\r?\n\s*(?!(?:en|of|tot)\b)(\w)", re.IGNORECASE)
_BULLETS = re.compile(r"(?m)^\s*(?:[•▪●◦■□➢►\-–*·o]|\d{1,2}[.)])\s+")
_INLINE_BULLETS = re.compile(r"\s*[•▪●◦■□➢►·]\s*")
_SPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "´": "'", "`": "'"})
_CONTROL = {cat for cat in ("Cc", "Cf", "Co", "Cs")}


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:  # keep_newlines: and tabs
    """`text` for a terminal or a log line: control characters (escape codes, newlines, bells),
    line/paragraph separators and bidi overrides shown as \\uXXXX instead of acting."""
    out = []
    for char in str(text):
        code = ord(char)
        if keep_newlines and char in "\n\t":  # the CLI's own layout
            out.append(char)
            continue
        if code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF or (
                code >= 0x80 and unicodedata.category(char) in ("Zl", "Zp", "Cf")):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def fold(text: str) -> str:
    """Lower case without accents, so "ëenzaam" finds "eenzaam" and "Den Haag" finds "den haag"."""
    decomposed = unicodedata.normalize("NFKD", str(text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise(text: str) -> str:
    """Clean `text` for a model: NFKC (ligatures), joined hyphen breaks, no bullets/URLs/e-mail
    addresses, straight quotes, single spaces.

    >>> normalise("• Maat-\\njes bellen ouderen, zie https://x.nl")
    'Maatjes bellen ouderen, zie'
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch) not in _CONTROL or ch in "\n\r\t" else " " for ch in text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _BULLETS.sub(" ", text)
    text = _INLINE_BULLETS.sub(" ; ", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = text.translate(_QUOTES)
    text = _SPACE.sub(" ", text).strip()
    return re.sub(r"\s+([,.;:!?])", r"\1", text)


def model_text(initiative) -> str:
    """The text the models read for one initiative: its name (if any) and its description.

    `initiative` is an `Initiative` or a catalogue record (a mapping with "naam" and
    "omschrijving"): training, prediction and search read the same text, so they share the
    embedding cache.
    """
    if isinstance(initiative, Mapping):
        naam, body = initiative.get("naam"), initiative.get("omschrijving")
    else:
        naam, body = initiative.naam, initiative.omschrijving
    naam = normalise(naam or "")
    body = normalise(body or "")
    if naam and not body.lower().startswith(naam.lower()):
        return f"{naam}. {body}"
    return body


@lru_cache(maxsize=1)
def dutch_nlp():
    """spaCy's blank Dutch pipeline with lookup lemmas (no trained pipeline exists on the registry)."""
    import spacy

    nlp = spacy.blank("nl")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def lemma_text(text: str) -> str:
    """Lower-cased lemmas of the content words of `text`, space separated.

    >>> lemma_text("Vrijwilligers brachten maaltijden")
    'vrijwilliger brengen maaltijd'
    """
    return lemma_texts([text])[0]


def lemma_texts(texts: Iterable[str], batch_size: int = 64) -> list[str]:
    """`lemma_text` for many texts, through `nlp.pipe` for speed."""
    nlp = dutch_nlp()
    out = []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        out.append(
            " ".join(
                (tok.lemma_ or tok.text).lower()
                for tok in doc
                if not (tok.is_stop or tok.is_punct or tok.is_space)
            )
        )
    return out
