"""The one rule for what text, an id and a row's extra fields may hold (ingest enforces it).

Every string a municipality sends reaches SQLite, spaCy, spreadsheets, charts, log lines, a
terminal and URL paths. A row is accepted only when

- no string holds a lone surrogate (U+D800-U+DFFF: valid in JSON escapes, not encodable as UTF-8),
- a one-line field (id, gemeente, naam, list items, extra keys) holds no control character, no
  line or paragraph separator and no format character (U+200E, U+202E ...),
- a multi-line text (omschrijving, extra values) holds no control character but tab, newline and
  carriage return,
- the id is at most `[ingest] max_id_chars` long, is not "." or "..", and holds no "/" or "\\":
  it is one segment of a URL path (/review/item/<id>), so it always opens its own page,
- extra fields (columns beyond the known ones) nest at most `[ingest] max_nesting_depth` deep.

`text_problem`, `id_problem` and `extra_problem` return the Dutch + English message for the first
breach, or None when the value is valid.
"""

from __future__ import annotations

import math
import unicodedata

from pipeline.core import errors

# Allowed in a multi-line text: tab, newline, carriage return, next line (U+0085).
_MULTILINE_CONTROLS = {"\t", "\n", "\r", "\x85"}
_ID_FORBIDDEN = {"/": "een schuine streep '/'", "\\": "een backslash '\\'"}


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def text_problem(value: str, *, multiline: bool) -> str | None:
    """Why `value` cannot be stored as text (see the module docstring), or None."""
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            return errors.ROW_BAD_CHARACTER.format(char=_codepoint(char), position=position,
                                                   what="losse surrogaat / lone surrogate")
        if code < 0x20 or 0x7F <= code < 0xA0:
            if multiline and char in _MULTILINE_CONTROLS:
                continue
            return errors.ROW_BAD_CHARACTER.format(char=_codepoint(char), position=position,
                                                   what="stuurteken / control character")
        if code < 0x80:
            continue
        category = unicodedata.category(char)
        if category in ("Zl", "Zp") and not multiline:
            return errors.ROW_BAD_CHARACTER.format(char=_codepoint(char), position=position,
                                                   what="regelscheiding / line separator")
        if category == "Cf" and not multiline and char not in ("\u00ad", "\u200d", "\ufeff"):
            return errors.ROW_BAD_CHARACTER.format(char=_codepoint(char), position=position,
                                                   what="opmaakteken / format character")
    return None


def id_problem(value: str, max_id_chars: int) -> str | None:
    """Why `value` (already stripped) cannot be an initiative id, or None."""
    if len(value) > max_id_chars:
        return errors.ROW_TOO_LONG.format(length=len(value), limit=max_id_chars)
    if value in (".", ".."):
        return errors.ROW_BAD_ID.format(what=f"'{value}'")
    for char, what in _ID_FORBIDDEN.items():
        if char in value:
            return errors.ROW_BAD_ID.format(what=what)
    problem = text_problem(value, multiline=False)
    if problem is None and value != value.strip():
        return errors.ROW_BAD_ID.format(what="spaties aan het begin of eind")
    return problem


def number_id(value) -> str | None:
    """A JSON number as id text ("12"), or None when it is no finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    return None


def extra_problem(value, max_depth: int, depth: int = 0) -> str | None:
    """Why an extra field's value cannot be stored (too deep, bad text), or None."""
    if depth > max_depth:
        return errors.ROW_TOO_DEEP.format(limit=max_depth)
    if isinstance(value, str):
        return text_problem(value, multiline=True)
    if isinstance(value, float) and not math.isfinite(value):
        return errors.ROW_NOT_FINITE
    if isinstance(value, list):
        for item in value:
            problem = extra_problem(item, max_depth, depth + 1)
            if problem:
                return problem
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key, multiline=False) or extra_problem(item, max_depth, depth + 1)
            if problem:
                return problem
    return None
