"""Read initiatives from JSONL or from CSV as municipalities export it from Excel.

`read_initiatives(path)` returns every good row as an `Initiative` (text exactly as given) and
every bad row as a `RejectedRow` that names the row number, the id where known, the field and what
is wrong, with the raw row kept so nothing is lost. A file that is not what it claims to be raises
`InputFileError`. `write_rejected()` writes the rejected rows beside an output file.

CSV: comma, semicolon or tab separated; UTF-8 with or without BOM, or Windows-1252 (a UTF-8 file
with a few Windows-1252 lines is read line by line and says which lines). Lists (`gemeenten`,
`urls`) are cells (or JSON strings) separated by `;`, `,` or `|` (or whitespace for urls). A
column without a name keeps its cells as `kolom_N`. File-level notes that do not stop the read
(mixed encodings, no rows) are in `IngestResult.warnings` and logged as warnings.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.core.config import IngestConfig, load_settings
from pipeline.core.municipalities import Reference, default_reference
from pipeline.core import errors
from pipeline.core.errors import InputFileError
from pipeline.core.text import normalise
from pipeline.core.records import Initiative, RejectedRow
from pipeline.core.records import Problem
from pipeline.ingest.rules import extra_problem, id_problem, number_id, text_problem

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "gemeente", "omschrijving")
OPTIONAL_FIELDS = ("naam", "gemeenten", "urls")
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
# Byte signatures of files people save by mistake instead of the export they meant to send.
BINARY_SIGNATURES = {
    b"PK\x03\x04": "een Excel- of zip-bestand (.xlsx/.zip)",
    b"\xd0\xcf\x11\xe0": "een oud Excel- of Word-bestand (.xls/.doc)",
    b"%PDF": "een PDF",
}
_LIST_SPLIT = re.compile(r"\s*[;|,]\s*")
_URL_SPLIT = re.compile(r"[\s;|,]+")
# A valid UTF-8 multibyte sequence. A Windows-1252 export practically never contains one, so its
# presence means the file is UTF-8 and only some lines are not.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass
class IngestResult:
    accepted: list[Initiative]
    rejected: list[RejectedRow]
    source: str = ""
    encoding: str = "utf-8"
    format: str = "jsonl"
    # File-level notes the user should see although every row could be read (mixed encodings,
    # no rows at all).
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return len(self.accepted) + len(self.rejected)


def read_initiatives(path: str | Path, *, limits: IngestConfig | None = None,
                     reference: Reference | None = None, data: bytes | None = None) -> IngestResult:
    """Read and validate a JSONL or CSV file of initiatives.

    `limits` is the [ingest] section (text and field lengths); None reads it from the settings.
    `reference` resolves the municipalities (`core.municipalities`); None: the configured one.
    A value that is no municipality, or was read as a misspelt or old name, is a warning for its
    row in `IngestResult.warnings` (the row is accepted).
    `data`, when given, is the file's content already read (the inbox reads without following
    links); `path` then only names the file and decides the format by its suffix.

    Raises `InputFileError` when the file is missing, empty, binary, or not JSONL/CSV at all.
    Every row-level problem becomes a `RejectedRow`; the other rows are still returned.
    """
    path = Path(path)
    if data is None:
        if not path.is_file():
            raise InputFileError(f"{path}: bestand niet gevonden / file not found")
        data = path.read_bytes()
    text, encoding, warnings = _decode(data, path)
    fmt = _detect_format(path, text)
    records = _jsonl_records(text) if fmt == "jsonl" else _csv_records(text, path)
    result = validate_records(records, limits=limits, reference=reference)
    if result.rows_in == 0:
        warnings.append(errors.FILE_NO_ROWS.format(path=path))
    result.source, result.encoding, result.format = str(path), encoding, fmt
    result.warnings = warnings + [f"{path}: {w}" for w in result.warnings]
    for warning in warnings:
        log.warning(warning)
    return result


def validate_records(
    records: Iterable[tuple[int, dict | None, str | dict, str | None]],
    *,
    limits: IngestConfig | None = None,
    reference: Reference | None = None,
) -> IngestResult:
    """Turn parsed records `(row, fields or None, raw, parse_error)` into accepted/rejected rows.

    `limits` is the [ingest] section; None reads it from the settings (configs/pipeline.toml).
    Every accepted row's `gemeente` and `gemeenten` are resolved with `reference` (None: the
    configured one) into `Initiative.places`; what could not be read as a municipality is a
    warning naming the row ("rij 12 (id x): veld 'gemeente': ...") in `IngestResult.warnings`.
    """
    limits = limits or load_settings().ingest
    reference = reference or default_reference()
    row_warnings: list[str] = []
    accepted: list[Initiative] = []
    rejected: list[RejectedRow] = []
    first_row_of_id: dict[str, int] = {}
    for row, fields, raw, parse_error in records:
        if fields is None:
            rejected.append(RejectedRow(row, None, (Problem("(regel)", parse_error or ""),), raw))
            continue
        ident = _clean_id(fields.get("id"))
        try:
            initiative, problems = _validate(row, fields, raw, limits)
        except Exception as exc:  # noqa: BLE001 - one row never stops the file (issue 17)
            log.warning("row %d: unexpected %s while validating", row, type(exc).__name__)
            initiative = None
            problems = [Problem("(rij)", errors.ROW_UNREADABLE.format(error=type(exc).__name__))]
        if ident is not None and text_problem(ident, multiline=False):
            ident = ident.encode("unicode_escape").decode("ascii")
        if initiative is not None and initiative.id in first_row_of_id:
            problems.append(
                Problem("id", errors.ROW_DUPLICATE_ID.format(first_row=first_row_of_id[initiative.id]))
            )
        if problems:
            rejected.append(RejectedRow(row, ident, tuple(problems), raw))
        else:
            first_row_of_id[initiative.id] = row
            placement = reference.resolve_row(initiative.gemeente, fields.get("gemeenten") and initiative.gemeenten,
                                              initiative.omschrijving)
            accepted.append(dataclasses.replace(initiative, places=placement.places))
            row_warnings += [errors.ROW_PLACE_WARNING.format(row=row, id=initiative.id, warning=w)
                             for w in placement.warnings]
    return IngestResult(accepted, rejected, warnings=row_warnings)


# --- parsing ---------------------------------------------------------------------------------


def _decode(data: bytes, path: Path) -> tuple[str, str, list[str]]:
    for signature, what in BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise InputFileError(
                f"{path}: dit is {what}, geen JSONL of CSV. Sla het op als CSV (UTF-8) en stuur het "
                f"opnieuw. / This is not JSONL or CSV; export it as CSV."
            )
    # UTF-16 and binary files are full of NUL bytes; a few NULs in a text file are a row's
    # problem (rejected by the text rule), not a reason to refuse every other row.
    if data.count(b"\x00") > max(8, len(data) // 20):
        raise InputFileError(
            f"{path}: bevat NUL-bytes; dit is geen tekstbestand (misschien UTF-16?). Sla het op als "
            f"CSV UTF-8. / Binary or UTF-16 file; save it as UTF-8 CSV or JSONL."
        )
    try:
        return data.decode("utf-8-sig"), "utf-8", []
    except UnicodeDecodeError:
        pass
    if not _UTF8_MULTIBYTE.search(data):
        try:
            return data.decode("cp1252"), "cp1252", []
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{path}: tekens op byte {exc.start} zijn geen UTF-8 en geen Windows-1252. / "
                f"Unknown text encoding."
            ) from None
    # UTF-8 with a few lines pasted from a Windows-1252 source: decoding the whole file as
    # Windows-1252 would garble every accented character, so only the lines that are not UTF-8
    # are read as Windows-1252, and the user is told which.
    lines, fallback = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                lines.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                raise InputFileError(errors.FILE_UNKNOWN_ENCODING.format(path=path, line=number)) from None
            fallback.append(number)
    text = "\n".join(lines).removeprefix("\ufeff")
    numbers = ", ".join(map(str, fallback))
    return text, "utf-8+cp1252", [errors.FILE_MIXED_ENCODING.format(path=path, lines=numbers)]


def _detect_format(path: Path, text: str) -> str:
    if not text.strip():
        raise InputFileError(f"{path}: het bestand is leeg / the file is empty")
    suffix = path.suffix.lower()
    first = text.lstrip()[:1]
    looks_json = first in "{["
    if suffix in JSONL_SUFFIXES:
        if not looks_json:
            raise InputFileError(
                f"{path}: heet {suffix} maar begint niet met '{{' (is het CSV?). / "
                f"Named {suffix} but is not JSON lines."
            )
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return "jsonl" if looks_json else "csv"


def _jsonl_records(text: str) -> Iterator[tuple[int, dict | None, str | dict, str | None]]:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        # One pretty-printed object spread over several lines (a .json file); JSON lines with
        # more than one object fail here and are read line by line below.
        try:
            item = json.loads(stripped)
        except (ValueError, RecursionError):
            item = None
        if isinstance(item, dict):
            yield text[: len(text) - len(stripped)].count("\n") + 1, item, item, None
            return
    if stripped.startswith("["):
        # A JSON array of objects: accepted too, numbered by position (1-based).
        try:
            items = json.loads(stripped)
        except (ValueError, RecursionError):
            items = None
        if isinstance(items, list):
            for index, item in enumerate(items, start=1):
                if isinstance(item, dict):
                    yield index, item, item, None
                else:
                    got = type(item).__name__
                    yield index, None, _dumped(item), errors.ROW_NOT_OBJECT.format(got=got)
            return
    # Only "\n" ends a JSON line: str.splitlines() would also split on U+2028, U+2029, U+0085 and
    # other separators that are valid inside a JSON string, rejecting good rows and shifting numbers.
    for line_number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_number, None, line, errors.ROW_BROKEN_JSON.format(error=exc.msg)
            continue
        except RecursionError:
            yield line_number, None, line, errors.ROW_BROKEN_JSON.format(error="te diep genest / nested too deep")
            continue
        except ValueError as exc:  # e.g. a number of more than 4,300 digits
            yield line_number, None, line, errors.ROW_BROKEN_JSON.format(error=str(exc)[:200])
            continue
        if not isinstance(item, dict):
            yield line_number, None, line, errors.ROW_NOT_OBJECT.format(got=type(item).__name__)
            continue
        yield line_number, item, line, None


def _csv_records(text: str, path: Path) -> Iterator[tuple[int, dict | None, str | dict, str | None]]:
    lines = io.StringIO(text, newline="").readlines()
    header_line = next((line for line in lines if line.strip()), "")
    delimiter = max(",;\t", key=header_line.count)
    if header_line.count(delimiter) == 0:
        raise InputFileError(
            f"{path}: de eerste regel is geen kop met kolommen gescheiden door , ; of tab. / "
            f"No CSV header found."
        )
    # No cell can be longer than the file: an over-long cell is then read and rejected as too
    # long by validation instead of failing the whole file. strict: a stray quote is an error
    # we report, not text the reader silently reshapes.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    # Blank lines above the header (Excel exports sometimes have them) are skipped.
    header: list[str] = []
    while not any(h.strip() for h in header):
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InputFileError(
                f"{path}: de kop (regel {reader.line_num}) is geen geldige CSV: {exc}. / Broken CSV header."
            ) from None
        if header is None:
            raise InputFileError(
                f"{path}: geen kop met kolomnamen gevonden. / No CSV header found."
            )
    header = [h.strip().lower() for h in header]
    missing = [f for f in REQUIRED_FIELDS if f not in header]
    if missing and not any(f in header for f in REQUIRED_FIELDS):
        raise InputFileError(
            f"{path}: de kop heeft geen van de kolommen {list(REQUIRED_FIELDS)} (kreeg {header}). / "
            f"The header names none of the required columns."
        )
    # A column without a name keeps its cells under its position, so nothing is dropped.
    names = [name or f"kolom_{position}" for position, name in enumerate(header, start=1)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputFileError(errors.FILE_REPEATED_COLUMNS.format(path=path, names=repeated))
    previous_end = reader.line_num
    while True:
        row = previous_end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raw = "".join(lines[row - 1 : reader.line_num])
            if reader.line_num >= len(lines) and "end of data" in str(exc):
                problem = errors.ROW_UNCLOSED_QUOTE.format(first=row, last=reader.line_num)
            else:
                problem = errors.ROW_BROKEN_CSV.format(line=reader.line_num, error=exc)
            previous_end = reader.line_num
            yield row, None, raw, problem
            continue
        previous_end = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        raw = dict(zip(names, cells))
        if len(cells) > len(names):
            raw["(extra cellen)"] = cells[len(names):]
            yield row, None, raw, errors.ROW_EXTRA_CELLS.format(got=len(cells), expected=len(names))
            continue
        yield row, dict(raw), raw, None


# --- validation ------------------------------------------------------------------------------


def _dumped(item) -> str:
    """A parsed JSON value back as text for the rejected-rows file (never raises)."""
    try:
        return json.dumps(item, ensure_ascii=False)
    except (ValueError, RecursionError, TypeError):
        return repr(type(item))


def _clean_id(value) -> str | None:
    if isinstance(value, (int, float)):
        return number_id(value)
    if isinstance(value, str) and value.strip():
        return value.strip()[:200]
    return None


def _validate(row, fields, raw, limits: IngestConfig):
    max_text_chars, max_field_chars = limits.max_text_chars, limits.max_field_chars
    problems: list[Problem] = []
    values: dict = {}
    for name in REQUIRED_FIELDS:
        value = fields.get(name)
        if name not in fields or value is None:
            problems.append(Problem(name, errors.ROW_MISSING_FIELD))
            continue
        if name == "id" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = number_id(value)
            if value is None:
                problems.append(Problem(name, errors.ROW_NOT_FINITE))
                continue
        if not isinstance(value, str):
            problems.append(
                Problem(name, errors.ROW_WRONG_TYPE.format(expected="tekst", got=type(value).__name__))
            )
            continue
        if not value.strip():
            problems.append(Problem(name, errors.ROW_EMPTY_FIELD))
            continue
        limit = max_text_chars if name == "omschrijving" else max_field_chars
        if len(value) > limit:
            problems.append(Problem(name, errors.ROW_TOO_LONG.format(length=len(value), limit=limit)))
            continue
        if name == "id":
            problem = id_problem(value.strip(), limits.max_id_chars)
        else:
            problem = text_problem(value, multiline=name == "omschrijving")
        if problem:
            problems.append(Problem(name, problem))
            continue
        values[name] = value.strip() if name != "omschrijving" else value
    naam = fields.get("naam")
    if naam is not None and not isinstance(naam, str):
        problems.append(Problem("naam", errors.ROW_WRONG_TYPE.format(expected="tekst", got=type(naam).__name__)))
    elif isinstance(naam, str) and len(naam) > max_field_chars:
        problems.append(Problem("naam", errors.ROW_TOO_LONG.format(length=len(naam), limit=max_field_chars)))
    elif isinstance(naam, str) and text_problem(naam, multiline=False):
        problems.append(Problem("naam", text_problem(naam, multiline=False)))
    lists = {}
    for name in ("gemeenten", "urls"):
        value = fields.get(name)
        if value is None or value == "":
            lists[name] = ()
        elif isinstance(value, str):
            # A list typed as one cell (CSV, or a string in JSON): split it the same way.
            splitter = _URL_SPLIT if name == "urls" else _LIST_SPLIT
            lists[name] = tuple(v for v in splitter.split(value.strip()) if v)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            lists[name] = tuple(v.strip() for v in value if v.strip())
        else:
            problems.append(
                Problem(name, errors.ROW_WRONG_TYPE.format(expected="lijst van tekst", got=type(value).__name__))
            )
            continue
        bad = next((p for p in (text_problem(v, multiline=False) for v in lists[name]) if p), None)
        if bad or sum(map(len, lists[name])) > max_field_chars:
            length = sum(map(len, lists[name]))
            problems.append(Problem(name, bad or errors.ROW_TOO_LONG.format(length=length, limit=max_field_chars)))
    known = set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS)
    for key, value in fields.items():
        if key in known:
            continue
        problem = text_problem(str(key), multiline=False) or extra_problem(value, limits.max_nesting_depth)
        if problem:
            problems.append(Problem(_printable(str(key)), problem))
    naam_text = naam if isinstance(naam, str) else ""
    if "omschrijving" in values and "naam" not in {p.field for p in problems} and not (normalise(naam_text) + normalise(values["omschrijving"])):
        # Only links, addresses or bullets: the models would read "" and still answer confidently.
        problems.append(Problem("omschrijving", errors.ROW_NO_TEXT))
    if problems:
        return None, problems
    gemeenten = lists["gemeenten"] or (values["gemeente"],)
    extra = {k: v for k, v in fields.items() if k not in known}
    initiative = Initiative(
        id=values["id"],
        gemeente=values["gemeente"],
        omschrijving=values["omschrijving"],
        naam=naam if naam and naam.strip() else None,
        gemeenten=gemeenten,
        urls=lists["urls"],
        extra=extra,
        row=row,
    )
    return initiative, problems


def _printable(name: str) -> str:
    """A field name as it can be shown in a message (control characters escaped, at most 80)."""
    if text_problem(name, multiline=False):
        name = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return name[:80]
