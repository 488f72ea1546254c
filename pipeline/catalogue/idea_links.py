"""Reviewers' same-idea marks on pairs of initiatives: "zelfde idee" or "ander idee".

A mark is stored with who and when and never updated; the newest mark of a pair is the one in
force (a reviewer who changes their mind, or a second reviewer, simply marks again). Grouping
reads the marks in force as must-link / cannot-link (`pipeline.models.constraints`), and
`pipeline export-labels` writes them as training pairs for the grouping model.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.catalogue.reviews import export_rows
from pipeline.catalogue.schema import get_state, now, set_state, transaction
from pipeline.core.errors import ReviewError

# catalogue_state key: the newest idea_links pk the stored groups were built with.
GROUPED_LINKS = "grouped_links"
SAME, DIFFERENT = "zelfde idee", "ander idee"


def pair(a: str, b: str) -> tuple[str, str]:
    """The pair's one spelling (smaller id first). Raises ReviewError for an id paired with itself."""
    a, b = str(a), str(b)
    if a == b:
        raise ReviewError(f"een initiatief ({a!r}) kan niet met zichzelf worden gekoppeld")
    return (a, b) if a < b else (b, a)


def save_link(conn: sqlite3.Connection, a: str, b: str, *, same: bool, reviewer: str) -> int:
    """Store `reviewer`'s mark on the pair (a, b); return its pk.

    Raises ReviewError when an id is not a current initiative or the reviewer is unknown or
    inactive (nothing is stored then)."""
    first, second = pair(a, b)
    with transaction(conn):
        known = {row[0] for row in conn.execute(
            "SELECT id FROM initiatives WHERE is_current = 1 AND id IN (?, ?)", (first, second))}
        missing = [i for i in (first, second) if i not in known]
        if missing:
            raise ReviewError(f"geen initiatief met nummer {missing[0]!r} in de catalogus")
        row = conn.execute("SELECT pk FROM reviewers WHERE name = ? AND active = 1",
                           (reviewer,)).fetchone()
        if row is None:
            raise ReviewError(f"beoordelaar {reviewer!r} bestaat niet of is niet actief")
        cursor = conn.execute(
            "INSERT INTO idea_links (first_id, second_id, same, reviewer_pk, created_at) "
            "VALUES (?, ?, ?, ?, ?)", (first, second, int(bool(same)), row["pk"], now()))
        return int(cursor.lastrowid)


def _record(row) -> dict:
    return {"pk": row["pk"], "a": row["first_id"], "b": row["second_id"], "same": bool(row["same"]),
            "reviewer": row["reviewer"], "created_at": row["created_at"]}


_IN_FORCE = (
    "SELECT l.*, v.name AS reviewer FROM idea_links l JOIN reviewers v ON v.pk = l.reviewer_pk "
    "WHERE l.pk = (SELECT max(m.pk) FROM idea_links m "
    "              WHERE m.first_id = l.first_id AND m.second_id = l.second_id)"
)


def links_in_force(conn: sqlite3.Connection, ids: Sequence[str] | None = None) -> list[dict]:
    """The newest mark of every pair (of the pairs touching `ids`, when given), oldest first:
    dicts {pk, a, b (a < b), same (bool), reviewer, created_at}."""
    if ids is None:
        rows = conn.execute(_IN_FORCE + " ORDER BY l.pk").fetchall()
    else:
        ids = [str(i) for i in ids]
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            f"{_IN_FORCE} AND (l.first_id IN ({marks}) OR l.second_id IN ({marks})) ORDER BY l.pk",
            ids + ids).fetchall() if ids else []
    return [_record(row) for row in rows]


def marks_of(conn: sqlite3.Connection, initiative_id: str) -> dict[str, dict]:
    """Other id -> the mark in force on (initiative_id, other id)."""
    out = {}
    for link in links_in_force(conn, [initiative_id]):
        other = link["b"] if link["a"] == initiative_id else link["a"]
        out[other] = link
    return out


def as_constraints(links: Sequence[Mapping]) -> list[tuple[str, str, bool]]:
    """(a, b, same) triples, the form `pipeline.models.constraints` takes."""
    return [(link["a"], link["b"], bool(link["same"])) for link in links]


def links_signature(conn: sqlite3.Connection) -> str:
    """Changes with every new mark: the newest pk (marks are only ever added)."""
    return str(conn.execute("SELECT coalesce(max(pk), 0) FROM idea_links").fetchone()[0])


def groups_need_links(conn: sqlite3.Connection) -> bool:
    """True when marks were added since the stored groups were built."""
    return links_signature(conn) != (get_state(conn, GROUPED_LINKS) or "0")


def record_grouped(conn: sqlite3.Connection, signature: str) -> None:
    """Note that the stored groups were built with the marks up to `signature`."""
    with transaction(conn):
        set_state(conn, GROUPED_LINKS, signature)


def export_links(conn: sqlite3.Connection) -> list[dict]:
    """The marks in force as training pairs: {"a", "b", "same", "reviewer", "reviewed_at",
    "source": "review"}, sorted by pair."""
    return [{"a": link["a"], "b": link["b"], "same": link["same"], "reviewer": link["reviewer"],
             "reviewed_at": link["created_at"], "source": "review"}
            for link in sorted(links_in_force(conn), key=lambda l: (l["a"], l["b"]))]


def read_pairs(path: str | Path) -> list[dict]:
    """The pairs in a JSONL file written by `export_links`. Raises ReviewError naming the row of a
    broken line or a line without "a", "b" and a true/false "same"."""
    out = []
    for number, row in export_rows(Path(path)):
        if not (isinstance(row, dict) and row.get("a") and row.get("b")
                and isinstance(row.get("same"), bool)):
            raise ReviewError(f"{path}: rij {number} mist \"a\", \"b\" of \"same\" (true/false)")
        out.append(row)
    return out


def merge_pairs(records: Sequence[Mapping], path) -> tuple[list[dict], int]:
    """`records` plus the pairs of an earlier export at `path` that they lack (as
    `reviews.merge_with_existing` does for labels). Returns (rows sorted by pair, kept)."""
    path = Path(path)
    merged = {pair(r["a"], r["b"]): dict(r) for r in records}
    kept = 0
    if path.exists():
        for row in read_pairs(path):
            key = pair(row["a"], row["b"])
            if key not in merged:
                merged[key] = row
                kept += 1
    return [merged[key] for key in sorted(merged)], kept
