"""Municipalities: free-text `gemeente` / `gemeenten` values resolved to CBS codes.

`Reference` holds the official list of the year (CBS code, name, province, common spellings), the
municipalities merged away since 2018 with their successors, and the words that mark a region or a
group of municipalities (`data/reference/`, named by [paths] and [municipalities]). It is pure:
no settings are read here except by `reference_from_settings`.

`Reference.resolve(value)` turns one value as sent into `Place`s, in this order:

1. the whole value: the CBS name (case and spaces aside) is `exact`; a listed spelling ("Den
   Bosch") or the same letters without accents, hyphens and apostrophes is `spelling`; a
   municipality merged away since 2018 is `successor` (the old name kept in `old_name`; a
   municipality split over several gives one place per receiving municipality);
2. a joint value ("A, B en C", "A / B", "A; B") is split, names that contain a separator
   ("Nuenen, Gerwen en Nederwetten", "Son en Breugel") kept whole, and every part resolved;
3. a part naming a region ("Breda (regio)", "arbeidsmarktregio Groningen", "West-Friesland") is
   `region`, a group ("Diverse gemeenten", "Meer gemeenten", "...") is `unresolved`: kept as
   text, never a municipality;
4. anything else is matched with rapidfuzz (`fuzz.ratio` on the normalised letters) against every
   name, spelling and old name: `fuzzy` at or above `fuzzy_cutoff` (measured in
   bench/bench_municipalities.py), else `unresolved` ("niet te herleiden").

`Reference.resolve_row(gemeente, gemeenten)` does both fields of a row and returns a `Placement`:
the places in order, the unique codes, and the Dutch warnings a sender should read.
"""
from __future__ import annotations

import csv
import functools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from pipeline.core.config import load_settings
from pipeline.core.text import fold

EXACT, SPELLING, SUCCESSOR, FUZZY, REGION, UNRESOLVED = (
    "exact", "spelling", "successor", "fuzzy", "region", "unresolved")
HOW = (EXACT, SPELLING, SUCCESSOR, FUZZY, REGION, UNRESOLVED)
# Dutch words for the pages and warnings.
HOW_NAMES = {EXACT: "officiële naam", SPELLING: "bekende schrijfwijze", SUCCESSOR: "opgeheven gemeente",
             FUZZY: "schrijffout verbeterd", REGION: "regio", UNRESOLVED: "niet te herleiden"}

# The provinces in CBS's order (province codes PV20-PV31), north to south: reports list them so.
PROVINCE_ORDER = ("Groningen", "Fryslân", "Drenthe", "Overijssel", "Flevoland", "Gelderland", "Utrecht",
                  "Noord-Holland", "Zuid-Holland", "Zeeland", "Noord-Brabant", "Limburg")

# Between the names of a joint value: , ; | / & + and the word "en" (or "and", "of").
_SEPARATORS = re.compile(r"\s*(?:[,;|/&+]|\s(?:en|and|of)\s)\s*", re.IGNORECASE)
_PLACEHOLDER = "\x00{}\x00"
_PREFIX = re.compile(r"^(?:de\s+)?gemeenten?\s+", re.IGNORECASE)
# A list that goes on: "A, B en ...", "A e.a.", "A etc.".
_ELLIPSIS = re.compile(r"^(?:\.{2,}|…|e\.?a\.?|etc\.?|enz\.?|en anderen?|en andere gemeenten)$", re.IGNORECASE)


# "de gemeenten Deventer, Enschede en Zwolle" in a description: capitalised names after "gemeenten".
_NAME = r"(?:'s-)?[A-Z][\w'-]*(?:\s+(?:aan\s+(?:de|den)\s+)?[A-Z][\w'-]*)*"
_NAMED_IN_TEXT = re.compile(rf"\bgemeenten\s+({_NAME}(?:\s*,\s*{_NAME})*(?:\s+en\s+{_NAME})?)")


def key(text: str) -> str:
    """The letters of a name for comparing spellings: no accents, case, punctuation or extra spaces
    ("'s-Hertogenbosch" and "s Hertogenbosch" meet; "Súdwest-Fryslân" and "sudwest fryslan")."""
    text = re.sub(r"[^\w\s]", " ", fold(text))
    return " ".join(text.split())


def _plain(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Municipality:
    code: str
    naam: str
    provincie: str


@dataclass(frozen=True)
class Place:
    """One resolved part of a value: the text as sent and, for a municipality, its code."""

    text: str                     # the part as sent
    how: str                      # one of HOW
    code: str | None = None
    naam: str | None = None       # the CBS name of the year
    provincie: str | None = None
    old_name: str | None = None   # for `successor`: the name of the municipality merged away
    score: float | None = None    # for `fuzzy`: the rapidfuzz similarity 0-100
    field: str = "gemeente"       # which field it came from: gemeente | gemeenten

    @property
    def is_municipality(self) -> bool:
        return self.code is not None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "Place":
        return cls(**{k: data.get(k) for k in ("text", "how", "code", "naam", "provincie", "old_name", "score")},
                   field=data.get("field") or "gemeente")


@dataclass(frozen=True)
class Placement:
    """Both fields of one row resolved."""

    places: tuple[Place, ...]
    warnings: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.code for p in self.places if p.code))

    def to_list(self) -> list[dict]:
        return [p.to_dict() for p in self.places]


@dataclass
class Reference:
    """The municipalities of one year, their spellings and successors, and region/group words."""

    municipalities: dict[str, Municipality]
    spellings: dict[str, str]                       # key(name) -> code
    successors: dict[str, tuple[str, tuple[str, ...]]]   # key(old name) -> (old name, codes)
    region_words: tuple[str, ...]
    group_words: tuple[str, ...]
    fuzzy_cutoff: float
    source: str = ""
    # Every name as written (CBS names, spellings, old names): those with a separator in them
    # are kept whole when a joint value is split.
    raw_names: tuple[str, ...] = ()
    _exact: dict[str, str] = field(default_factory=dict, repr=False)
    _choices: dict[str, str] = field(default_factory=dict, repr=False)
    _joined: list[tuple[re.Pattern, str]] = field(default_factory=list, repr=False)
    _ambiguous: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self):
        self._exact = {_plain(m.naam): m.code for m in self.municipalities.values()}
        # Fuzzy candidates: every name, spelling and old name by its key; the value says what
        # it stands for ("GM0363", or "old:<key>" for a successor).
        self._choices = {k: code for k, code in self.spellings.items()}
        self._choices.update({k: f"old:{k}" for k in self.successors})
        # Names that contain a separator, longest first, so "Nuenen, Gerwen en Nederwetten" is not cut.
        names = {m.naam for m in self.municipalities.values()} | set(self.raw_names)
        names |= {old for old, _ in self.successors.values()}
        joined = sorted((n for n in names if _SEPARATORS.search(n)), key=len, reverse=True)
        self._joined = [(re.compile(r"(?<!\w)" + re.escape(n) + r"(?!\w)", re.IGNORECASE), n) for n in joined]
        # "a/d" (aan de/den) inside a name is no separator.
        self._joined.append((re.compile(r"(?<!\w)\w/\w(?!\w)"), ""))
        # A name that several municipalities carry with a suffix ("Bergen" for Bergen (NH.) and
        # Bergen (L.)): which one is meant cannot be read from the letters, so no fuzzy guess.
        bases: dict[str, set[str]] = {}
        for m in self.municipalities.values():
            if "(" in m.naam:
                bases.setdefault(key(m.naam.split("(")[0]), set()).add(m.code)
        self._ambiguous = {k for k, codes in bases.items() if len(codes) > 1}

    @property
    def provinces(self) -> list[str]:
        return sorted({m.provincie for m in self.municipalities.values()})

    def municipality(self, code: str) -> Municipality | None:
        return self.municipalities.get(code)

    # --- one value ----------------------------------------------------------------------

    def resolve(self, value: str, *, field_name: str = "gemeente", fuzzy_cutoff: float | None = None) -> list[Place]:
        """The places of one value as sent (see the module docstring for the order)."""
        text = " ".join((value or "").split())
        if not text:
            return []
        cutoff = self.fuzzy_cutoff if fuzzy_cutoff is None else fuzzy_cutoff
        whole = self._by_name(text, field_name)
        if whole:
            return whole
        parts = self._split(text)
        out: list[Place] = []
        for part in parts:
            out += self._by_name(part, field_name) or [self._one_part(part, field_name, cutoff)]
        return out

    def _by_name(self, text: str, field_name: str) -> list[Place]:
        """Exact, listed spelling or merged-away name of the whole text; [] when none."""
        bare = _PREFIX.sub("", text)
        if _plain(bare) in self._exact:
            return [self._place(text, EXACT, self._exact[_plain(bare)], field_name)]
        k = key(bare)
        if k in self.spellings:
            return [self._place(text, SPELLING, self.spellings[k], field_name)]
        if k in self.successors:
            old, codes = self.successors[k]
            return [self._place(text, SUCCESSOR, code, field_name, old_name=old) for code in codes]
        return []

    def _split(self, text: str) -> list[str]:
        protected: list[str] = []

        def hide(match):
            protected.append(match.group(0))
            return _PLACEHOLDER.format(len(protected) - 1)

        for pattern, _ in self._joined:
            text = pattern.sub(hide, text)
        parts = [p.strip() for p in _SEPARATORS.split(text) if p and p.strip()]
        return [re.sub("\x00(\\d+)\x00", lambda m: protected[int(m.group(1))], p) for p in parts]

    def _one_part(self, part: str, field_name: str, cutoff: float) -> Place:
        k = key(part)
        words = set(k.split())
        if _ELLIPSIS.match(part.strip()) or any(self._has(k, words, w) for w in self.group_words):
            return Place(part, UNRESOLVED, field=field_name)
        if any(self._has(k, words, w) for w in self.region_words):
            return Place(part, REGION, field=field_name)
        if _PREFIX.sub("", k) in self._ambiguous:
            return Place(part, UNRESOLVED, field=field_name)
        best = process.extractOne(_PREFIX.sub("", k), self._choices.keys(), scorer=fuzz.ratio) if k else None
        if best is not None and best[1] >= cutoff:
            target = self._choices[best[0]]
            if target.startswith("old:"):
                old, codes = self.successors[target[4:]]
                # A split municipality cannot be told apart by a typo of its name: first code only
                # would be a guess, so every receiving municipality is named.
                return self._place(part, FUZZY, codes[0], field_name, old_name=old, score=best[1]) \
                    if len(codes) == 1 else Place(part, UNRESOLVED, field=field_name)
            return self._place(part, FUZZY, target, field_name, score=best[1])
        return Place(part, UNRESOLVED, field=field_name)

    @staticmethod
    def _has(k: str, words: set[str], term: str) -> bool:
        """`term` (a key) occurs in `k` as whole words (a phrase) or as a word."""
        return (" " in term and re.search(r"(?<!\w)" + re.escape(term) + r"(?!\w)", k) is not None) or term in words

    def _place(self, text, how, code, field_name, *, old_name=None, score=None) -> Place:
        m = self.municipalities[code]
        return Place(text, how, code, m.naam, m.provincie, old_name,
                     None if score is None else round(float(score), 1), field_name)

    # --- one row ------------------------------------------------------------------------

    def resolve_row(self, gemeente: str, gemeenten=(), omschrijving: str | None = None) -> Placement:
        """Both fields of a row; the `gemeenten` list counts only when it adds something to
        `gemeente` (the reader fills it with `gemeente` when a sender leaves it out). When neither
        names a municipality ("Diverse gemeenten"), the municipalities the description lists after
        "gemeenten" ("De gemeenten Deventer, Enschede en Zwolle werken ...") are taken, by exact
        name or listed spelling only (field `omschrijving`)."""
        places = self.resolve(gemeente, field_name="gemeente")
        listed = [g for g in gemeenten or () if g and g.strip() and _plain(g) != _plain(gemeente or "")]
        for value in listed:
            places += self.resolve(value, field_name="gemeenten")
        if omschrijving and not any(p.code for p in places):
            places += self.named_in_text(omschrijving)
        return Placement(tuple(places), tuple(self._warnings(places)))

    def named_in_text(self, text: str) -> list[Place]:
        """Municipalities a description lists after the word "gemeenten" (exact names and listed
        spellings; no fuzzy guesses in running text)."""
        out = []
        for match in _NAMED_IN_TEXT.finditer(text):
            for part in self._split(match.group(1)):
                out += [p for p in self._by_name(part, "omschrijving") if p.how in (EXACT, SPELLING)]
        seen, unique = set(), []
        for p in out:
            if p.code not in seen:
                seen.add(p.code)
                unique.append(p)
        return unique

    def _warnings(self, places: list[Place]) -> list[str]:
        out = []
        codes = {p.code for p in places if p.code}
        in_text = [p for p in places if p.field == "omschrijving"]
        if in_text:
            out.append(f"veld 'omschrijving' noemt de gemeenten {', '.join(p.naam for p in in_text)}; "
                       f"die tellen mee als gemeenten van deze inzending")
        for p in places:
            where = f"veld '{p.field}': '{p.text}'"
            if p.field == "omschrijving":
                continue
            if p.how == FUZZY:
                out.append(f"{where} gelezen als {p.naam} ({p.code}, gelijkenis {p.score:.0f}%); "
                           f"controleer de schrijfwijze")
            elif p.how == SUCCESSOR:
                out.append(f"{where} is opgeheven; meegeteld bij {p.naam} ({p.code})")
            elif p.how == REGION and not codes:
                out.append(f"{where} is een regio, geen gemeente; niet meegeteld als gemeente")
            elif p.how == REGION:
                out.append(f"{where} is een regio, geen gemeente; alleen de genoemde gemeenten tellen mee")
            elif p.how == UNRESOLVED and key(p.text) in self._ambiguous:
                out.append(f"{where} is dubbelzinnig (meer gemeenten heten zo); schrijf de provincie erbij, "
                           f"bijvoorbeeld 'Bergen (NH.)'; niet meegeteld als gemeente")
            elif p.how == UNRESOLVED and _ELLIPSIS.match(p.text.strip()):
                out.append(f"{where}: de lijst van gemeenten loopt door; alleen de genoemde gemeenten tellen mee")
            elif p.how == UNRESOLVED:
                out.append(f"{where} is niet te herleiden tot een gemeente; niet meegeteld als gemeente")
        return out


# --- reading the files ---------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@functools.lru_cache(maxsize=8)
def load_reference(municipalities_csv: str | Path, merged_csv: str | Path, terms_csv: str | Path,
                   fuzzy_cutoff: float) -> Reference:
    """Read the year's list (`code,naam,provincie,alternatieven`), the merged-away municipalities
    (`oude_naam,nieuwe_naam,nieuwe_code,jaar`) and the region/group words (`term,soort`).

    Cached per arguments: every reader in a process shares one.
    """
    municipalities, spellings, raw_names = {}, {}, []
    for row in _rows(Path(municipalities_csv)):
        m = Municipality(row["code"].strip(), row["naam"].strip(), row["provincie"].strip())
        municipalities[m.code] = m
    for row in _rows(Path(municipalities_csv)):
        code = row["code"].strip()
        for name in [row["naam"], *(row.get("alternatieven") or "").split("|")]:
            if name.strip():
                spellings.setdefault(key(name), code)
                raw_names.append(name.strip())
    successors: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in _rows(Path(merged_csv)):
        k = key(row["oude_naam"])
        if k in spellings:
            continue  # a current name wins over an old one
        old, codes = successors.get(k, (row["oude_naam"].strip(), ()))
        code = row["nieuwe_code"].strip()
        if code not in municipalities:
            raise ValueError(f"{merged_csv}: successor code {code} of {old} is not in {municipalities_csv}")
        successors[k] = (old, codes + (code,))
    regions, groups = [], []
    for row in _rows(Path(terms_csv)):
        (regions if row["soort"].strip() == "regio" else groups).append(key(row["term"]))
    return Reference(municipalities, spellings, successors, tuple(regions), tuple(groups),
                     float(fuzzy_cutoff), source=str(municipalities_csv), raw_names=tuple(raw_names))


def default_reference() -> Reference:
    """The reference of the settings in force (configs/pipeline.toml, --config, $PIPELINE_CONFIG)."""
    return reference_from_settings(load_settings())


def reference_from_settings(settings) -> Reference:
    """The reference named by [paths] municipalities / merged_municipalities and [municipalities]."""
    return load_reference(str(settings.paths.municipalities), str(settings.paths.merged_municipalities),
                          str(settings.municipalities.terms), settings.municipalities.fuzzy_cutoff)
