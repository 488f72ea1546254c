"""Export of the catalogue and of the rejected rows as csv (Excel-safe), xlsx or jsonl, with Dutch
column names; cells are never formulas.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.core.records import write_jsonl
from pipeline.catalogue.readmodel import KIND_NAMES
from pipeline.catalogue.readmodel import LABELS_FROM, catalogue, reason_text, rejected_rows


# --- export for policy staff -----------------------------------------------------------------

EXPORT_FORMATS = ("csv", "xlsx", "jsonl")
EXPORT_COLUMNS = (
    "Id", "Naam", "Gemeente", "Gemeenten", "Omschrijving", "Thema's", "Doelgroepen", "Soort",
    "Overdraagbaarheid", "Redenen", "Groep", "Ook in", "Labels van", "Model", "Versie",
    "Ontvangen",
)
REJECTED_COLUMNS = ("Bestand", "Ontvangen", "Rij", "Id", "Veld", "Melding", "Rij zoals ontvangen")
# A spreadsheet treats a cell that starts with one of these as a formula; text from outside must
# never run as one (CSV injection), so CSV cells that start with them get a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_records(conn: sqlite3.Connection, taxonomy, *, separator: str = "; ") -> list[dict]:
    """The catalogue as policy staff read it: one dict per current initiative with the Dutch
    `EXPORT_COLUMNS` as keys. Lists are joined by `separator`; label ids become Dutch names."""
    records = []
    for row in catalogue(conn):
        group = row["group"]
        records.append({
            "Id": row["id"],
            "Naam": row["naam"] or "",
            "Gemeente": row["gemeente"],
            "Gemeenten": separator.join(row["gemeenten"]),
            "Omschrijving": row["omschrijving"],
            "Thema's": separator.join(taxonomy.name("themes", t) for t in row["themes"]),
            "Doelgroepen": separator.join(taxonomy.name("doelgroepen", d) for d in row["doelgroepen"]),
            "Soort": KIND_NAMES.get(row["kind"], row["kind"] or ""),
            "Overdraagbaarheid": row["replicability"] if row["replicability"] is not None else "",
            "Redenen": separator.join(reason_text(r) for r in row["replicability_reasons"]),
            "Groep": group["naam"] if group else "",
            "Ook in": separator.join(
                g for g in (group["gemeenten"] if group else []) if g != row["gemeente"]
            ),
            "Labels van": LABELS_FROM[row["labels_from"]],
            "Model": row["model_id"] or "",
            "Versie": row["version"],
            "Ontvangen": row["received_at"],
        })
    return records


def rejected_records(conn: sqlite3.Connection) -> list[dict]:
    """Rejected rows with Dutch `REJECTED_COLUMNS` keys, for the export of what was refused."""
    return [
        {
            "Bestand": r["file_name"], "Ontvangen": r["received_at"], "Rij": r["row"],
            "Id": r["id"] or "", "Veld": r["field"], "Melding": r["message"],
            "Rij zoals ontvangen": r["raw"],
        }
        for r in rejected_rows(conn)
    ]


def write_export(records: Sequence[Mapping], path: str | Path, fmt: str, *,
                 columns: Sequence[str] = EXPORT_COLUMNS, sheet_name: str = "Catalogus",
                 csv_delimiter: str = ";") -> Path:
    """Write `records` to `path` as csv (UTF-8 with BOM so Excel reads the accents), xlsx (text
    cells stay text, never formulas) or jsonl. Raises `ValueError` for another format."""
    import csv

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        write_jsonl(({c: record.get(c, "") for c in columns} for record in records), path)
    elif fmt == "csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=csv_delimiter)
            writer.writerow(columns)
            for record in records:
                writer.writerow([_csv_safe(record.get(c, "")) for c in columns])
    else:
        _write_xlsx(records, path, columns, sheet_name)
    return path


def xlsx_bytes(records: Sequence[Mapping], *, columns: Sequence[str] = EXPORT_COLUMNS,
               sheet_name: str = "Catalogus") -> bytes:
    """The xlsx workbook `write_export` writes, as bytes (for a download)."""
    import io

    buffer = io.BytesIO()
    _write_xlsx(records, buffer, columns, sheet_name)
    return buffer.getvalue()


def _csv_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# Column widths in characters for the xlsx sheet: wide for text, narrow for codes.
_XLSX_WIDTHS = {"Omschrijving": 80, "Naam": 30, "Redenen": 60, "Thema's": 30, "Doelgroepen": 30,
                "Groep": 30, "Melding": 60, "Rij zoals ontvangen": 60}
_XLSX_DEFAULT_WIDTH = 14


def _write_xlsx(records, target, columns, sheet_name: str) -> None:
    """Write the workbook to `target`, a path or a binary file object."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_name)
    for index, column in enumerate(columns, start=1):
        width = _XLSX_WIDTHS.get(column, _XLSX_DEFAULT_WIDTH)
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    wrap = Alignment(wrap_text=True, vertical="top")
    for record in records:
        row = []
        for column in columns:
            value = record.get(column, "")
            if isinstance(value, str):
                # Control characters (old rows, rejected rows as sent) are illegal in xlsx XML:
                # shown as U+FFFD rather than failing the whole export.
                value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
                value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates too
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                # openpyxl would turn a text starting with "=" into a formula; keep it text.
                cell.data_type = "s"
                if column in _XLSX_WIDTHS:
                    cell.alignment = wrap
            row.append(cell)
        sheet.append(row)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(records) + 1}"
    book.save(target)
