"""The five elements of a description as a fact sheet: what, for whom, how, with whom, costs.

Movisie's and Loket Gezond Leven's intervention databases describe every intervention by the same
elements (doel, doelgroep, aanpak, uitvoerders/partners, kosten); our labelling guide says "a
description that names what was done, with whom and how, is easier to replicate". `fact_sheet`
finds, for one text, the shortest verbatim spans that say each element:

    sheet = fact_sheet(text)
    for field, label in ELEMENTS.items():
        spans = getattr(sheet, field)       # tuple of Span(start, end, text); () = "niet genoemd"
        assert all(text[s.start:s.end] == s.text for s in spans)

Pure and deterministic: regular expressions over the text as given, no model, no I/O. The rules:

- wat: the first sentence (bullets and an opening "In verband met ..." clause skipped), cut at a
  clause boundary to at most `_WAT_MAX_TOKENS` tokens;
- voor wie: target-group nouns with their adjectives ("kwetsbare ouderen", "kinderen met autisme");
- hoe: activity words (calling, visiting, delivering, "via", "wekelijks", a phone line, a website)
  with a few words of their clause;
- met wie: who carries it out or works with it ("vrijwilligers", "jongerenwerkers", "Stichting De
  Zwaan", "samen met scholen"); the municipality itself is not a partner, every text names it;
- kosten / middelen: money words as whole words ("gratis", "€ 5.000", "subsidie", "een budget"),
  so "budgetcoaching" or "geldzorgen" say nothing about costs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ELEMENTS: dict[str, str] = {
    "wat": "Wat",
    "voor_wie": "Voor wie",
    "hoe": "Hoe",
    "met_wie": "Met wie",
    "kosten": "Kosten / middelen",
}
NOT_NAMED = "niet genoemd"

_MAX_SPANS = 3         # per element: the first few distinct places that say it
_WAT_MAX_TOKENS = 20   # the "wat" span is a clause, not a paragraph


@dataclass(frozen=True)
class Span:
    """`text` is exactly `source[start:end]`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class FactSheet:
    wat: tuple[Span, ...]
    voor_wie: tuple[Span, ...]
    hoe: tuple[Span, ...]
    met_wie: tuple[Span, ...]
    kosten: tuple[Span, ...]

    def named(self) -> int:
        """How many of the five elements the text names (the "goed beschreven" count)."""
        return sum(1 for field in ELEMENTS if getattr(self, field))


# --------------------------------------------------------------------------------------------
# Tokens and clauses
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"€|\w+(?:[-'’.]\w+)*-?|[^\w\s]", re.UNICODE)
_ABBREVIATIONS = {"etc", "o.a", "i.s.m", "bijv", "m.b.t", "t.b.v", "e.d", "o.b.v", "d.w.z", "ca", "nr",
                  "mr", "dhr", "st", "o.a", "a.s", "z.s.m", "bv", "mevr", "incl", "excl", "resp", "evt", "zgn", "i.v.m", "m.n"}
_SENTENCE_END = set(".!?;:•\n")
_CLAUSE_END = _SENTENCE_END | set(",()[]“”\"")


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    text: str
    lower: str


def _tokens(text: str) -> list[_Tok]:
    return [_Tok(m.start(), m.end(), m.group(), m.group().lower()) for m in _TOKEN.finditer(text)]


def _is_boundary(text: str, toks: list[_Tok], i: int, ends: set[str]) -> bool:
    """Token i ends a sentence/clause (a period after an abbreviation or inside a number does not)."""
    tok = toks[i]
    if tok.text == "." and "." in ends:
        previous = toks[i - 1].lower if i else ""
        return previous not in _ABBREVIATIONS
    if tok.text in ends:
        return True
    # A line break between tokens also ends a sentence.
    return i + 1 < len(toks) and "\n" in text[tok.end:toks[i + 1].start] and "\n" in ends


def _clause_of(text: str, toks: list[_Tok], i: int, ends: set[str]) -> tuple[int, int]:
    """Token range [a, b) of the clause holding token i, boundaries excluded."""
    a = i
    while a > 0 and not (toks[a - 1].text in ends and _is_boundary(text, toks, a - 1, ends)) \
            and "\n" not in text[toks[a - 1].end:toks[a].start]:
        a -= 1
    b = i + 1
    while b < len(toks) and not (toks[b].text in ends and _is_boundary(text, toks, b, ends)) \
            and "\n" not in text[toks[b - 1].end:toks[b].start]:
        b += 1
    return a, b


def _span(text: str, toks: list[_Tok], a: int, b: int) -> Span:
    start, end = toks[a].start, toks[b - 1].end
    return Span(start, end, text[start:end])


_FULL_STOP = set(".!?•\n")


def sentences(text: str) -> list[Span]:
    """The sentences of `text`, verbatim spans in order: a sentence ends at . ! ? • or a line
    break (not at a period after an abbreviation such as "bijv." or inside a number)."""
    toks = _tokens(text)
    out, a = [], 0
    for i in range(len(toks)):
        if _is_boundary(text, toks, i, _FULL_STOP):
            # The closing mark (or the last word before a line break) belongs to the sentence;
            # a bullet does not.
            b = i if toks[i].text == "•" else i + 1
            if b > a:
                out.append(_span(text, toks, a, b))
            a = i + 1
    if a < len(toks):
        out.append(_span(text, toks, a, len(toks)))
    return out


# --------------------------------------------------------------------------------------------
# Triggers (lower-case, matched as whole tokens or token sequences)
# --------------------------------------------------------------------------------------------

def _words(*patterns: str) -> re.Pattern:
    return re.compile("^(?:" + "|".join(patterns) + ")$")


_GROUP_NOUNS = _words(
    r"ouderen", r"senioren", r"\w*jongeren", r"jongvolwassenen", r"jeugd(?:igen)?", r"\w*kinderen",
    r"pubers", r"\w*leerlingen", r"scholieren", r"studenten", r"\w*gezinnen", r"ouders",
    r"\w*inwoners", r"\w*bewoners", r"huishoudens", r"cli[eéë]nten", r"deelnemers", r"doelgroep",
    r"minima", r"zzp'?ers", r"zelfstandigen", r"uitkeringsgerechtigden", r"werkzoekenden",
    r"daklozen", r"thuislozen", r"dak-", r"mantelzorgers", r"migranten", r"arbeidsmigranten",
    r"statushouders", r"slachtoffers", r"kwetsbaren", r"alleenstaanden", r"vrouwen", r"mannen",
    r"nieuwkomers", r"anderstaligen", r"laaggeletterden", r"verslaafden", r"wanbetalers",
    r"eenzamen", r"dementerenden", r"mensen", r"personen", r"huurders", r"gezin",
)
# Adjectives (and a few numerals) that belong to a target group: "kwetsbare ouderen".
_GROUP_ADJECTIVE = _words(r"\w+[^d]e", r"\w+ende", r"\d[\d.]*", r"meest", r"jonge", r"oude")
_NOT_ADJECTIVE = {"de", "die", "deze", "onze", "hun", "je", "we", "ze", "te", "mee", "twee", "drie",
                  "vijf", "negen", "andere", "elke", "iedere", "welke", "dezelfde", "zijde", "ook"}
# "mensen", "personen" only say who when something follows: "mensen met schulden".
_VAGUE_GROUP = {"mensen", "personen", "deelnemers"}

_AGENT_NOUNS = _words(
    r"\w*vrijwilligers?", r"vrijwilligersorganisaties?", r"\w*medewerkers?", r"\w+werkers?",
    r"\w*coach(?:es)?", r"consulenten", r"\w*professionals", r"\w*hulpverleners", r"\w*wijkteams?",
    r"cjg", r"ggd", r"jgz", r"ggz", r"politie", r"uwv", r"\w*corporaties?", r"voedselbank(?:en)?",
    r"bibliothe(?:ek|ken)", r"huisartsen?", r"\w*scholen", r"schoolbesturen", r"kinderopvang",
    r"welzijn\w*", r"\w*partners?", r"\w*partijen", r"\w*organisaties?", r"\w*instellingen",
    r"buren", r"maatjes", r"ervaringsdeskundigen", r"boa'?s", r"wijkagenten?", r"\w*verenigingen?",
    r"\w*aanbieders", r"jongerenwerk", r"opbouwwerk", r"buurtsportcoach(?:es)?", r"kerken",
    r"moskee(?:ën)?", r"ondernemers", r"werkgevers", r"bedrijven", r"studenten", r"mantelzorgers",
)
# Names follow these: "Stichting Inloophuis De Zwaan", "Veilig Thuis Rotterdam".
_NAME_HEADS = _words(r"stichting", r"vereniging", r"restaurant", r"veilig", r"welzijnsorganisatie",
                     r"organisatie", r"zorgorganisatie", r"platform", r"netwerk", r"coöperatie")
_WITH_PHRASES = (("samen", "met"), ("samenwerking", "tussen"), ("in", "samenwerking", "met"), ("i.s.m",), ("met", "hulp", "van"),
                 ("gerund", "door"), ("uitgevoerd", "door"), ("georganiseerd", "door"))

_HOW_WORDS = _words(
    r"bellen", r"belt", r"bellen", r"gebeld", r"belronde\w*", r"telefonisch\w*", r"\w*telefoon\w*",
    r"huisbezoek\w*", r"bezoeken", r"bezocht", r"bezoekt", r"langs", r"bezorg\w*", r"rondbrengen", r"uitdelen", r"uitgedeeld", r"uitgereikt", r"verstrek\w*", r"organiser\w*",
    r"georganiseerd", r"aanbieden", r"aangeboden", r"biedt", r"bieden", r"geboden", r"koppelen",
    r"koppelt", r"gekoppeld", r"begeleid\w*", r"ondersteunen", r"ondersteunt", r"via", r"online",
    r"digitaal", r"wekelijks", r"dagelijks", r"maandelijks", r"spreekuur\w*",
    r"whatsapp\w*", r"\w*website", r"brief", r"brieven", r"flyers?", r"\w*nieuwsbrief", r"\w*pakket\w*",
    r"\w*lijn", r"hulplijn\w*", r"app", r"sturen", r"stuurt", r"gestuurd", r"benaderen", r"benaderd",
    r"opgezet", r"ingericht", r"ingezet", r"verspreid\w*", r"brengen", r"gebracht", r"opgevangen",
    r"opvangen", r"mailen", r"gemaild",
)
_HOW_BEFORE, _HOW_AFTER = 3, 4

_MONEY_WORDS = _words(
    r"gratis", r"kosteloos", r"goedkoop", r"kosten", r"kost", r"budget", r"\w+budget", r"budgetten",
    r"subsidie", r"subsidies", r"\w+subsidie", r"gesubsidieerd", r"financier\w*", r"\w*financiering",
    r"bekostig\w*", r"middelen", r"bijdrage", r"\w+bijdrage", r"fonds", r"\w+fonds", r"fondsen",
    r"geld", r"betaald", r"vergoed\w*", r"vergoeding", r"euro", r"miljoen", r"€", r"investering\w*",
)
_MONEY_BEFORE = 3
_NUMBER = re.compile(r"^[\d.,]+(?:-)?$")

_OPENING = _words(r"in", r"vanwege", r"door", r"tijdens", r"sinds", r"naar", r"als")
_OPENING_TOPIC = re.compile(r"corona|covid|crisis|lockdown|maatregel|verband|kader", re.I)


# --------------------------------------------------------------------------------------------
# The elements
# --------------------------------------------------------------------------------------------


def _wat(text: str, toks: list[_Tok]) -> list[Span]:
    i = 0
    while i < len(toks) and (toks[i].text in _CLAUSE_END or toks[i].text in "-–*·"):
        i += 1
    if i >= len(toks):
        return []
    a, b = _clause_of(text, toks, i, _SENTENCE_END)
    # Skip an opening clause that only gives the occasion ("In verband met de coronacrisis,").
    commas = [k for k in range(a, b) if toks[k].text == ","]
    if commas and commas[0] - a <= 6 and _OPENING.match(toks[a].lower) and _OPENING_TOPIC.search(text[toks[a].start:toks[commas[0]].end]) \
            and commas[0] + 1 < b:
        a = commas[0] + 1
    if b - a > _WAT_MAX_TOKENS:
        cuts = [k for k in range(a + 3, a + _WAT_MAX_TOKENS) if toks[k].text == ","]
        b = cuts[0] if cuts else a + _WAT_MAX_TOKENS
    while b > a and toks[b - 1].text in _CLAUSE_END:
        b -= 1
    return [_span(text, toks, a, b)] if b > a else []


def _voor_wie(text: str, toks: list[_Tok]) -> list[Span]:
    out = []
    for i, tok in enumerate(toks):
        if not _GROUP_NOUNS.match(tok.lower):
            continue
        a, b = i, i + 1
        if tok.lower == "dak-":  # "dak- en thuislozen"
            if i + 2 < len(toks) and toks[i + 1].lower == "en" and toks[i + 2].lower.endswith("lozen"):
                b = i + 3
            else:
                continue
        if b + 1 < len(toks) and toks[b].lower in {"met", "zonder"} and toks[b + 1].text not in _CLAUSE_END:
            # "kinderen met autisme", "mensen met een beperking": articles and adjectives, then a noun
            stop = b + 1
            while stop < min(len(toks), b + 4) and toks[stop].text not in _CLAUSE_END:
                stop += 1
                if not (toks[stop - 1].lower in {"de", "het", "een"} or _GROUP_ADJECTIVE.match(toks[stop - 1].lower)):
                    break
            b = stop
        elif tok.lower in _VAGUE_GROUP and a == i and not (i and _GROUP_ADJECTIVE.match(toks[i - 1].lower)):
            continue
        for _ in range(2):
            prev = toks[a - 1].lower if a else ""
            if a and _GROUP_ADJECTIVE.match(prev) and prev not in _NOT_ADJECTIVE:
                a -= 1
            else:
                break
        out.append(_span(text, toks, a, b))
    return out


def _met_wie(text: str, toks: list[_Tok]) -> list[Span]:
    out = []
    lowers = [t.lower for t in toks]
    for i, tok in enumerate(toks):
        for phrase in _WITH_PHRASES:
            if tuple(lowers[i:i + len(phrase)]) == phrase:
                a, b = _clause_of(text, toks, i, _CLAUSE_END)
                end = min(b, i + len(phrase) + 5)
                if end > i + len(phrase):
                    out.append(_span(text, toks, i, end))
        if _NAME_HEADS.match(tok.lower) and i + 1 < len(toks) and toks[i + 1].text[:1].isupper():
            b = i + 1
            while b < len(toks) and (toks[b].text[:1].isupper() or toks[b].lower in {"de", "het", "van"}) \
                    and b - i <= 5:
                b += 1
            while b > i + 1 and toks[b - 1].lower in {"de", "het", "van"}:
                b -= 1
            out.append(_span(text, toks, i, b))
        elif _AGENT_NOUNS.match(tok.lower):
            a = i
            prev = lowers[i - 1] if i else ""
            if i and _GROUP_ADJECTIVE.match(prev) and prev not in _NOT_ADJECTIVE:
                a -= 1
            out.append(_span(text, toks, a, i + 1))
    return out


def _window(text: str, toks: list[_Tok], i: int, before: int, after: int) -> Span:
    a, b = _clause_of(text, toks, i, _CLAUSE_END)
    return _span(text, toks, max(a, i - before), min(b, i + 1 + after))


def _hoe(text: str, toks: list[_Tok]) -> list[Span]:
    return [_window(text, toks, i, _HOW_BEFORE, _HOW_AFTER)
            for i, tok in enumerate(toks) if _HOW_WORDS.match(tok.lower)]


def _kosten(text: str, toks: list[_Tok]) -> list[Span]:
    out = []
    for i, tok in enumerate(toks):
        if not (_MONEY_WORDS.match(tok.lower) or _NUMBER.match(tok.lower) and i + 1 < len(toks)
                and toks[i + 1].lower in {"euro", "miljoen", "mln"}):
            continue
        if tok.lower == "kost" and i + 1 < len(toks) and toks[i + 1].lower in {"tijd", "moeite"}:
            continue
        if tok.lower == "middelen" and i and toks[i - 1].lower.endswith(("hulp", "communicatie", "beschermings")):
            continue
        a, b = _clause_of(text, toks, i, _CLAUSE_END)
        start, end = i, i + 1
        # Before: a negation, article or adjective ("geen kosten", "een klein budget").
        while start > max(a, i - _MONEY_BEFORE) and (
                toks[start - 1].lower in {"geen", "zonder", "een", "het", "de", "eigen", "extra", "klein", "kleine"}
                or _GROUP_ADJECTIVE.match(toks[start - 1].lower) and toks[start - 1].lower not in _NOT_ADJECTIVE
                or _NUMBER.match(toks[start - 1].lower) or toks[start - 1].text == "€"):
            start -= 1
        # After: an amount ("€ 5.000", "budget van 10.000 euro").
        k = end
        if k < b and toks[k].lower == "van":
            k += 1
        if k < b and (toks[k].text == "€" or _NUMBER.match(toks[k].lower)):
            while k < b and (toks[k].text == "€" or _NUMBER.match(toks[k].lower)
                             or toks[k].lower in {"euro", "miljoen", "mln", ","}):
                k += 1
            end = k
        while end > start + 1 and toks[end - 1].text == ",":
            end -= 1
        out.append(_span(text, toks, start, end))
    return out


def _distinct(spans: list[Span], text: str) -> tuple[Span, ...]:
    """Overlapping spans merged, then the first `_MAX_SPANS` in text order."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            if span.end > last.end:
                merged[-1] = Span(last.start, span.end, text[last.start:span.end])
            continue
        merged.append(span)
    seen, out = set(), []
    for span in merged:
        key = span.text.lower()
        if key not in seen:
            seen.add(key)
            out.append(span)
    return tuple(out[:_MAX_SPANS])


def fact_sheet(text: str) -> FactSheet:
    """The five elements of `text`, each a tuple of verbatim spans (empty: not named)."""
    toks = _tokens(text or "")
    if not toks:
        return FactSheet((), (), (), (), ())
    return FactSheet(
        wat=_distinct(_wat(text, toks), text),
        voor_wie=_distinct(_voor_wie(text, toks), text),
        hoe=_distinct(_hoe(text, toks), text),
        met_wie=_distinct(_met_wie(text, toks), text),
        kosten=_distinct(_kosten(text, toks), text),
    )


__all__ = ["ELEMENTS", "NOT_NAMED", "FactSheet", "Span", "fact_sheet"]
