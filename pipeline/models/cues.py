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
    """Partners are counted: up to `weinig_max` distinct ones is "one or two", more is "several".
    A `meervoud` word ("partners", "organisaties") says "several" by itself."""

    weinig_max: int
    reden_weinig: str
    richting_weinig: str
    reden_veel: str
    richting_veel: str
    patronen: tuple[str, ...]
    meervoud: tuple[str, ...]


CONTEXT_KINDS = ("ervoor", "erna", "rond", "zin", "tekst", "woord")


@dataclass(frozen=True)
class ContextRule:
    """A match of a cue counts only in the sense the text gives it: the match does not count when
    one of `patronen` occurs where `soort` says (within `venster` words before/after it in the same
    clause, in the same sentence, anywhere in the text, or as the matched word itself), unless
    that occurrence is part of a `behalve` pattern ("niet alleen" is no negation)."""

    id: str
    soort: str
    venster: int
    geldt_voor: tuple[str, ...]
    patronen: tuple[str, ...]
    behalve: tuple[str, ...]


@dataclass(frozen=True)
class VagueRule:
    """A one-line fragment that only points elsewhere ("koos een vergelijkbare aanpak", a website)
    gets `reden` first and a score of at most `max_score`."""

    max_tekens: int
    reden: str
    max_score: int
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
    contexts: tuple[ContextRule, ...] = ()
    vaag: VagueRule | None = None

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
    known = {"cue", "partners", "element", "algemeen", "context", "vaag"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown table(s) {unknown}; valid are {sorted(known)}")
    for key in ("cue", "element"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ConfigError(f"{where} has no [[{key}]] entries")
    for key in ("partners", "algemeen", "vaag"):
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
    if partners.meervoud:
        _check_patterns(partners.meervoud, f"{where} [partners].meervoud")
    if partners.weinig_max < 1:
        raise ConfigError(f"{where} [partners].weinig_max must be at least 1, got {partners.weinig_max}")
    algemeen = section_from_dict(General, data["algemeen"], where=f"{where} [algemeen]")
    for kind, items in (("cue", cues), ("element", elements)):
        ids = [item.id for item in items]
        repeated = sorted({x for x in ids if ids.count(x) > 1})
        if repeated:
            raise ConfigError(f"{where} repeats [[{kind}]] id(s) {repeated}")
    keys = ({f"cue:{c.id}" for c in cues} | {f"element:{e.id}" for e in elements}
            | {CueMatcher.PARTNER_KEY, "*"})
    contexts = []
    if not isinstance(data.get("context", []), list):
        raise ConfigError(f"{where} [context] must be a list of [[context]] tables")
    for i, item in enumerate(data.get("context", [])):
        label = f"{where} context[{i}]" + (f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else "")
        rule = section_from_dict(ContextRule, item, where=label)
        if rule.soort not in CONTEXT_KINDS:
            raise ConfigError(f"{label}.soort must be one of {list(CONTEXT_KINDS)}, got {rule.soort!r}")
        if rule.venster < 0:
            raise ConfigError(f"{label}.venster must be 0 or more, got {rule.venster}")
        if rule.soort in ("ervoor", "erna", "rond") and rule.venster < 1:
            raise ConfigError(f"{label}.venster must be at least 1 for soort {rule.soort!r}")
        unknown_keys = sorted(set(rule.geldt_voor) - keys)
        if not rule.geldt_voor or unknown_keys:
            raise ConfigError(f"{label}.geldt_voor names unknown cue(s) {unknown_keys or '[]'}; use "
                              f"'cue:<id>', 'element:<id>', 'partners' or '*'")
        _check_patterns(rule.patronen, label)
        if rule.behalve:
            _check_patterns(rule.behalve, f"{label}.behalve")
        contexts.append(rule)
    ids = [rule.id for rule in contexts]
    if len(set(ids)) < len(ids):
        raise ConfigError(f"{where} repeats [[context]] id(s) {sorted({x for x in ids if ids.count(x) > 1})}")
    vaag = section_from_dict(VagueRule, data["vaag"], where=f"{where} [vaag]")
    _check_patterns(vaag.patronen, f"{where} [vaag]")
    if not 1 <= vaag.max_score <= 5:
        raise ConfigError(f"{where} [vaag].max_score must be 1-5, got {vaag.max_score}")
    return CueBook(tuple(cues), partners, tuple(elements), algemeen, where, tuple(contexts), vaag)


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


@dataclass
class RowCues:
    """What the matcher found in one initiative.

    `counts[key]` counts the matches that count (context rules applied) in name and description;
    `matches[key]` lists, for each counting match in the description, (core_start, core_end,
    start, end): character offsets of the matched words and of the words with their context (the
    `bewijs`), in text order; `evidence[key]` is the first one's (start, end), or None when it only
    occurs in the name; `in_name[key]` is the first match in the name as text (or None).
    `partners` holds the distinct partner words (lower case), `partners_meervoud` whether a word
    that means "several partners" by itself occurs; `vaag` is the match of the vague rule as
    (start, end) into the description, or None.
    """

    counts: dict[str, int]
    evidence: dict[str, tuple[int, int] | None]
    partners: set[str]
    text_chars: int
    in_name: dict[str, str | None] = dataclasses.field(default_factory=dict)
    matches: dict[str, list[tuple[int, int, int, int]]] = dataclasses.field(default_factory=dict)
    partners_meervoud: bool = False
    vaag: tuple[int, int] | None = None


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


def _stops(token) -> bool:
    """A clause boundary: punctuation or a line break after the token."""
    return token.is_punct or token.is_space or "\n" in token.whitespace_


_SENTENCE_END = {".", "!", "?", ";", "•"}


def _sentence_ids(doc) -> list[int]:
    ids, current = [], 0
    for token in doc:
        ids.append(current)
        if token.text in _SENTENCE_END or token.is_space and "\n" in token.text or "\n" in token.whitespace_:
            current += 1
    return ids


class CueMatcher:
    """spaCy `Matcher` over the cue book. `match(texts)` -> one `RowCues` per (naam, text) pair.

    A match counts only when no [[context]] rule of the cue file blocks it (negation, paid work,
    a word inside another word, a plan in a text that says what was done)."""

    PARTNER_KEY = "partners"
    MEERVOUD_KEY = "partners:meervoud"
    VAGUE_KEY = "vaag"

    def __init__(self, cuebook: CueBook, *, context_tokens: int = 3):
        from spacy.matcher import Matcher

        self.cuebook = cuebook
        self.context_tokens = context_tokens
        self.nlp = dutch_nlp()
        self.matcher = Matcher(self.nlp.vocab)
        for key, patterns in self.pattern_sets():
            self.matcher.add(key, self._compile(patterns), greedy="LONGEST")
        self.contexts = tuple(getattr(cuebook, "contexts", ()) or ())
        self.context_matcher = Matcher(self.nlp.vocab)
        extra = []
        meervoud = getattr(cuebook.partners, "meervoud", ()) or ()
        if meervoud:
            extra.append((self.MEERVOUD_KEY, meervoud))
        vaag = getattr(cuebook, "vaag", None)
        if vaag is not None:
            extra.append((self.VAGUE_KEY, vaag.patronen))
        for rule in self.contexts:
            extra.append((f"context:{rule.id}", rule.patronen))
            if rule.behalve:
                extra.append((f"behalve:{rule.id}", rule.behalve))
        for key, patterns in extra:
            self.context_matcher.add(key, self._compile(patterns))
        keys = [key for key, _ in self.pattern_sets()]
        self.rules_for = {key: [r for r in self.contexts if "*" in r.geldt_voor or key in r.geldt_voor]
                          for key in keys}

    def _compile(self, patterns):
        return _merge_single_tokens([[spec for word in pattern.split() for spec in _token_specs(word, self.nlp)]
                                     for pattern in patterns])

    def pattern_sets(self):
        yield from ((f"cue:{c.id}", c.patronen) for c in self.cuebook.cues)
        yield self.PARTNER_KEY, self.cuebook.partners.patronen
        yield from ((f"element:{e.id}", e.patronen) for e in self.cuebook.elements)

    def _spans(self, doc, matcher=None) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        for match_id, start, end in (matcher or self.matcher)(doc):
            found.setdefault(self.nlp.vocab.strings[match_id], []).append((start, end))
        for spans in found.values():
            spans.sort()
        return found

    def _context(self, doc) -> dict[str, list[tuple[int, int]]]:
        """Context-rule matches, without those that are part of the rule's `behalve` patterns."""
        found = self._spans(doc, self.context_matcher)
        for rule in self.contexts:
            key, cancel = f"context:{rule.id}", found.get(f"behalve:{rule.id}", [])
            if key in found and cancel:
                found[key] = [(s, e) for s, e in found[key] if not any(a <= s and e <= b for a, b in cancel)]
        return found

    def _blocked(self, doc, sentence, context, text_wide, key, start, end) -> bool:
        for rule in self.rules_for.get(key, ()):
            spans = context.get(f"context:{rule.id}", ())
            if rule.soort == "tekst":
                if text_wide.get(rule.id):
                    return True
                continue
            for s, e in spans:
                if rule.soort == "woord":
                    if s < end and start < e:
                        return True
                elif rule.soort == "zin":
                    # Anywhere in the sentence, also across the match ("in gesprek" blocks
                    # "gesprek"), but not words the match itself holds.
                    if not (start <= s and e <= end) and sentence[s] == sentence[start]:
                        return True
                else:
                    before = e <= start and s >= start - rule.venster and not any(_stops(t) for t in doc[e - 1:start]) \
                        if e <= start else False
                    after = s >= end and e <= end + rule.venster and not any(_stops(t) for t in doc[end - 1:s]) \
                        if s >= end else False
                    if (rule.soort in ("ervoor", "rond") and before) or (rule.soort in ("erna", "rond") and after):
                        return True
        return False

    def _widen(self, doc, start: int, end: int) -> tuple[int, int]:
        """Character offsets of tokens [start, end) plus up to `context_tokens` words either side,
        never crossing punctuation or a line break, so the evidence reads as a phrase."""

        left = start
        for _ in range(self.context_tokens):
            if left == 0 or _stops(doc[left - 1]):
                break
            left -= 1
        right = end
        for _ in range(self.context_tokens):
            if right >= len(doc) or _stops(doc[right]) or "\n" in doc[right - 1].whitespace_:
                break
            right += 1
        return doc[left].idx, doc[right - 1].idx + len(doc[right - 1].text)

    def match(self, naam: Sequence[str | None], texts: Sequence[str]) -> list[RowCues]:
        names = list(self.nlp.pipe([n or "" for n in naam]))
        bodies = list(self.nlp.pipe(list(texts)))
        vaag = getattr(self.cuebook, "vaag", None)
        out = []
        for name_doc, doc in zip(names, bodies):
            body_context, name_context = self._context(doc), self._context(name_doc)
            # A "tekst" rule looks at the whole description (the name too): did it say what was done?
            text_wide = {rule.id: bool(body_context.get(f"context:{rule.id}") or name_context.get(f"context:{rule.id}"))
                         for rule in self.contexts if rule.soort == "tekst"}
            found = {}
            for d, context in ((name_doc, name_context), (doc, body_context)):
                sentence = _sentence_ids(d)
                found[id(d)] = {key: [(s, e) for s, e in spans
                                      if not self._blocked(d, sentence, context, text_wide, key, s, e)]
                                for key, spans in self._spans(d).items()}
            in_name, in_body = found[id(name_doc)], found[id(doc)]
            counts = {key: len(in_name.get(key, ())) + len(in_body.get(key, ())) for key, _ in self.pattern_sets()}
            matches = {key: [(doc[s].idx, doc[e - 1].idx + len(doc[e - 1].text), *self._widen(doc, s, e))
                             for s, e in in_body.get(key, ())] for key in counts}
            evidence = {key: (m[0][2], m[0][3]) if m else None for key, m in matches.items()}
            partners = {
                d[s:e].text.lower()
                for d, spans in ((name_doc, in_name), (doc, in_body))
                for s, e in spans.get(self.PARTNER_KEY, ())
            }
            named = {key: name_doc[s[0][0] : s[0][1]].text if (s := in_name.get(key)) else None
                     for key in counts}
            meervoud = bool(body_context.get(self.MEERVOUD_KEY) or name_context.get(self.MEERVOUD_KEY))
            vague = None
            if vaag is not None and len(doc.text.strip()) <= vaag.max_tekens and body_context.get(self.VAGUE_KEY):
                sentences = {i for t, i in zip(doc, _sentence_ids(doc)) if not (t.is_punct or t.is_space)}
                if len(sentences) <= 1:
                    s, e = body_context[self.VAGUE_KEY][0]
                    vague = (doc[s].idx, doc[e - 1].idx + len(doc[e - 1].text))
            out.append(RowCues(counts, evidence, partners, len(doc.text), named, matches, meervoud, vague))
        return out
