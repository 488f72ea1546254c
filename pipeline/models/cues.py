"""The Dutch cues behind the replicability reasons: the cue file (configs/replicability_cues.toml),
validated once into a `CueBook`, and `CueMatcher`, spaCy `Matcher` patterns that find them in a text.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


from pipeline.core.config import _read_toml, section_from_dict
from pipeline.core.errors import ConfigError
from pipeline.core.text import dutch_nlp


# --------------------------------------------------------------------------------------------
# The cue file
# --------------------------------------------------------------------------------------------


DIRECTIONS = ("+", "-")


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
