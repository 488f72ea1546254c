"""The catalogue: one SQLite file that the scheduled job fills and the web pages read.

Standard `sqlite3`, autocommit mode with explicit transactions (`with transaction(conn):` runs
BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception), WAL journal so readers (review and
search pages) never block the writer, foreign keys on. `connect(path)` creates the file and runs
the migrations that are not yet applied, so every command simply connects.

Schema (stable names: the review app and the search/report pages read these)
--------------------------------------------------------------------------
Times are ISO 8601 UTC text ("2026-11-23T19:00:00+00:00"); lists and dicts are JSON text.

submissions        one received file.
    id INTEGER PK, file_name, sha256 UNIQUE (content hash: the same content is never stored
    twice), received_at, sender (the gemeente when all accepted rows share one, else NULL),
    status ('stored' | 'rejected': the file could not be read at all), rows_in, rows_accepted,
    rows_rejected, error (why a rejected file could not be read, Dutch + English).
initiatives        every version of every initiative, text exactly as given.
    pk INTEGER PK (one version), id (the sender's initiative id), version (1, 2, ... per id),
    naam, gemeente, omschrijving, gemeenten JSON list, urls JSON list, extra JSON dict (fields
    beyond the known ones), submission_id -> submissions, source_row (row in the file),
    received_at, is_current (1 for the newest version of an id; exactly one per id),
    places (migration 3): `gemeente`/`gemeenten` resolved to CBS codes at ingest, a JSON list
    (NULL: stored before; resolved on reading), the text as sent kept in `gemeente`/`gemeenten`.
    The same id in a later file is a new version; the old version is kept with is_current = 0.
rejected_rows      rows of a stored submission that failed validation, with everything sent.
    pk, submission_id, row, id (when known), field, message, raw (the row as sent: the JSON line,
    or the CSV cells as a JSON object).
predictions        one model's prediction for one initiative version (never updated: a new model
    adds a new row; the latest `pk` per version is the one in force).
    pk, initiative_pk -> initiatives, model_id, created_at, kind ('initiative' | 'signal'),
    kind_score (P(signal)), replicability (1-5 or NULL until a scorer exists),
    replicability_score (its expected value), replicability_reasons JSON list of
    {"reden", "richting" ('+' | '-'), "bewijs" (verbatim substring of omschrijving or null)}.
    labels (migration 2): the same label scores as prediction_labels in one JSON list of
    [field, label, score, chosen], highest score first per field (fast to read in bulk).
prediction_labels  the label scores of a prediction: one row per (field, label).
    prediction_pk -> predictions, field ('themes' | 'doelgroepen'), label (taxonomy id),
    score (probability), chosen (1 when the label was assigned).
groups             groups of initiatives carrying the same idea (replaced whole at each regroup).
    group_id TEXT PK (stable: derived from the member ids by pipeline.group), naam, kernwoorden
    JSON list, cohesie, gemeenten JSON list, created_at.
group_members      group_id -> groups, initiative_id (the sender's id of a current initiative).
reviewers          pk, name UNIQUE, password_hash (argon2), created_at, active.
reviews            one saved judgement of a reviewer on one initiative version; never updated.
    pk, initiative_pk -> initiatives, reviewer_pk -> reviewers, created_at, themes JSON,
    doelgroepen JSON, kind, replicability, note, before JSON (the labels shown to the reviewer),
    based_on_review_pk (the review the form was based on: optimistic concurrency), conflict
    (1 when saved on a stale version), blind (migration 5: 1 when the reviewer saw the model's
    suggestion and no other reviewer's labels before saving; only these count for agreement).
catalogue_state    key/value facts about the catalogue (e.g. `grouped_max_pk`: the highest
    initiative pk the groups were built from, so an interrupted regroup is redone;
    `grouped_links`: the newest idea_links pk the groups were built with).
idea_links         (migration 5) a reviewer's "zelfde idee" / "ander idee" mark on two initiatives.
    pk, first_id < second_id (senders' ids), same (1 | 0), reviewer_pk -> reviewers, created_at.
    Never updated: the newest mark of a pair is in force (`idea_links.links_in_force`).

Views: `current_initiatives` (is_current = 1) and `latest_predictions` (the newest prediction of
every initiative version).

Reading (functions take a connection; records are plain dicts with JSON already parsed)
------------------------------------------------------------------------------------
`current_initiatives`, `initiative_versions`, `latest_predictions` (Predictor-shaped dicts),
`latest_reviews` (the newest non-conflicting review), `groups` / `group_of`, `submissions`,
`rejected_rows`, `counts`, and `catalogue`: every current initiative with the labels in force
(a reviewer's where one confirmed or corrected the row, else the latest model's).
`current_initiatives`, `latest_reviews` and `catalogue` take ids / pks to look up a few rows in
SQL instead of reading the whole catalogue. `catalogue_signature(conn)` is one cheap query whose
value changes whenever `catalogue()` can change: key any cache of catalogue records on it (web
pages: compare it per request, rebuild only when it differs). `KIND_NAMES`, `LABELS_FROM`,
`reason_parts` and `reason_text` are the one Dutch naming of kinds/sources and the one reading of
a replicability reason: import them rather than keeping copies. Writing:
`store_submission` (one file in one transaction), `store_rejected_file`, `add_prediction`,
`replace_groups`; wrap any other write in `with transaction(conn):`.

Extending the schema (the review app and later work)
----------------------------------------------------
`MIGRATIONS` is an ordered list of SQL scripts; `PRAGMA user_version` counts how many ran.
Never edit a script that has shipped: append a new one (e.g. `ALTER TABLE reviews ADD COLUMN
...` or `CREATE TABLE ...`) at the end of the list. The review helper owns the reviews and
reviewers columns added after migration 1 and appends its migrations here.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from pipeline.core.errors import StoreError

SUBMISSION_STORED = "stored"
# catalogue_state key: how many times the groups were replaced (see catalogue_signature).
GROUPS_GENERATION = "groups_generation"
SUBMISSION_REJECTED = "rejected"
LABEL_FIELDS = ("themes", "doelgroepen")

# Ordered migrations: index i (0-based) brings the schema to user_version i + 1.
MIGRATIONS: list[str] = [
    # 1: the catalogue.
    """
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        file_name TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        received_at TEXT NOT NULL,
        sender TEXT,
        status TEXT NOT NULL CHECK (status IN ('stored', 'rejected')),
        rows_in INTEGER NOT NULL DEFAULT 0,
        rows_accepted INTEGER NOT NULL DEFAULT 0,
        rows_rejected INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE TABLE initiatives (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        naam TEXT,
        gemeente TEXT NOT NULL,
        omschrijving TEXT NOT NULL,
        gemeenten TEXT NOT NULL DEFAULT '[]',
        urls TEXT NOT NULL DEFAULT '[]',
        extra TEXT NOT NULL DEFAULT '{}',
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        source_row INTEGER,
        received_at TEXT NOT NULL,
        is_current INTEGER NOT NULL DEFAULT 1 CHECK (is_current IN (0, 1)),
        UNIQUE (id, version)
    );
    CREATE UNIQUE INDEX initiatives_one_current ON initiatives(id) WHERE is_current = 1;
    CREATE INDEX initiatives_submission ON initiatives(submission_id);
    CREATE TABLE rejected_rows (
        pk INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        row INTEGER NOT NULL,
        id TEXT,
        field TEXT NOT NULL,
        message TEXT NOT NULL,
        raw TEXT NOT NULL
    );
    CREATE INDEX rejected_rows_submission ON rejected_rows(submission_id);
    CREATE TABLE predictions (
        pk INTEGER PRIMARY KEY,
        initiative_pk INTEGER NOT NULL REFERENCES initiatives(pk),
        model_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        kind TEXT,
        kind_score REAL,
        replicability INTEGER CHECK (replicability BETWEEN 1 AND 5),
        replicability_score REAL,
        replicability_reasons TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX predictions_initiative ON predictions(initiative_pk, pk);
    CREATE TABLE prediction_labels (
        prediction_pk INTEGER NOT NULL REFERENCES predictions(pk) ON DELETE CASCADE,
        field TEXT NOT NULL CHECK (field IN ('themes', 'doelgroepen')),
        label TEXT NOT NULL,
        score REAL NOT NULL,
        chosen INTEGER NOT NULL CHECK (chosen IN (0, 1)),
        PRIMARY KEY (prediction_pk, field, label)
    );
    CREATE TABLE groups (
        group_id TEXT PRIMARY KEY,
        naam TEXT,
        kernwoorden TEXT NOT NULL DEFAULT '[]',
        cohesie REAL,
        gemeenten TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
        initiative_id TEXT NOT NULL,
        PRIMARY KEY (group_id, initiative_id)
    );
    CREATE INDEX group_members_initiative ON group_members(initiative_id);
    CREATE TABLE reviewers (
        pk INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
    );
    CREATE TABLE reviews (
        pk INTEGER PRIMARY KEY,
        initiative_pk INTEGER NOT NULL REFERENCES initiatives(pk),
        reviewer_pk INTEGER NOT NULL REFERENCES reviewers(pk),
        created_at TEXT NOT NULL,
        themes TEXT NOT NULL DEFAULT '[]',
        doelgroepen TEXT NOT NULL DEFAULT '[]',
        kind TEXT,
        replicability INTEGER CHECK (replicability BETWEEN 1 AND 5),
        note TEXT,
        before TEXT NOT NULL DEFAULT '{}',
        based_on_review_pk INTEGER REFERENCES reviews(pk),
        conflict INTEGER NOT NULL DEFAULT 0 CHECK (conflict IN (0, 1))
    );
    CREATE INDEX reviews_initiative ON reviews(initiative_pk, pk);
    CREATE TABLE catalogue_state (
        key TEXT PRIMARY KEY,
        value TEXT
    );
    CREATE VIEW current_initiatives AS
        SELECT * FROM initiatives WHERE is_current = 1;
    CREATE VIEW latest_predictions AS
        SELECT p.* FROM predictions p
        WHERE p.pk = (SELECT max(q.pk) FROM predictions q WHERE q.initiative_pk = p.initiative_pk);
    """,
    # 2: the label scores of a prediction also as one JSON value, so reading the whole catalogue
    # (review queue, search index) parses one value per row instead of ~40 label rows
    # (5,000 rows: 1.0 s -> 0.1 s). prediction_labels stays the queryable form.
    """
    ALTER TABLE predictions ADD COLUMN labels TEXT;
    """,
    # 3: server-side login sessions. The cookie carries a random token; only its SHA-256 is
    # stored. Logout deletes the row, so a copied cookie stops working at once.
    """
    CREATE TABLE web_sessions (
        token_sha256 TEXT PRIMARY KEY,
        reviewer_pk INTEGER NOT NULL REFERENCES reviewers(pk),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX web_sessions_reviewer ON web_sessions(reviewer_pk);
    """,
    # 4: the municipalities of an initiative version as resolved at ingest
    # (pipeline.core.municipalities): a JSON list of {"text" (the part as sent), "how", "code",
    # "naam", "provincie", "old_name", "score", "field"}. NULL for versions stored before: the
    # read model resolves those when it reads them.
    """
    ALTER TABLE initiatives ADD COLUMN places TEXT;
    """,
    # 5: whether a review was independent ("blind"): the reviewer saw the model's suggestion, not
    # another reviewer's labels, before saving (pipeline.catalogue.reviews.save_review). Only these
    # count for agreement. Earlier reviews: a reviewer's first review of a version whose form was
    # based on the model (no review in force when it was opened) was independent too.
    """
    ALTER TABLE reviews ADD COLUMN blind INTEGER NOT NULL DEFAULT 0 CHECK (blind IN (0, 1));
    UPDATE reviews SET blind = 1 WHERE based_on_review_pk IS NULL AND NOT EXISTS (
        SELECT 1 FROM reviews e WHERE e.initiative_pk = reviews.initiative_pk
        AND e.reviewer_pk = reviews.reviewer_pk AND e.pk < reviews.pk);
    """,
    # 6: reviewers' same-idea marks on a pair of initiatives (pipeline.catalogue.idea_links):
    # never updated, the newest mark of a pair is in force. Ids are the senders' ids (a new
    # version of a text keeps its marks); `first_id` < `second_id` so a pair has one spelling.
    # `same` 1 = "zelfde idee" (must-link), 0 = "ander idee" (cannot-link).
    """
    CREATE TABLE idea_links (
        pk INTEGER PRIMARY KEY,
        first_id TEXT NOT NULL,
        second_id TEXT NOT NULL,
        same INTEGER NOT NULL CHECK (same IN (0, 1)),
        reviewer_pk INTEGER NOT NULL REFERENCES reviewers(pk),
        created_at TEXT NOT NULL,
        CHECK (first_id < second_id)
    );
    CREATE INDEX idea_links_pair ON idea_links(first_id, second_id, pk);
    CREATE INDEX idea_links_second ON idea_links(second_id);
    """,
]


# --- connection and transactions -------------------------------------------------------------


def now() -> str:
    """The current time as ISO 8601 UTC text, the format of every time column."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(
    path: str | Path, *, busy_timeout_seconds: float = 30.0, synchronous: str = "FULL"
) -> sqlite3.Connection:
    """Open (and create) the catalogue at `path` and bring its schema up to date.

    Returns a connection in autocommit mode (use `transaction()` for writes) whose rows are
    `sqlite3.Row`. Raises `StoreError` when the file is not an SQLite database or was written by a
    newer version of this program.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_seconds, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {_checked_synchronous(synchronous)}")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(unusable_message(path, exc)) from None
    return conn


def unusable_message(path, exc: Exception) -> str:
    """What to tell the operator when the catalogue cannot be opened or written: a full disk or a
    read-only file is not a broken catalogue."""
    text = str(exc).lower()
    if "full" in text or "disk i/o" in text:
        return (f"{path}: de catalogus kan niet worden geschreven: schijf vol of schijffout ({exc}); "
                f"maak ruimte vrij en probeer opnieuw / disk full or I/O error")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (f"{path}: de catalogus is alleen-lezen of niet te openen ({exc}); controleer de "
                f"rechten / the catalogue is read-only or cannot be opened")
    return f"{path}: geen bruikbare catalogus / not a usable catalogue: {exc}"


def check_writable(conn: sqlite3.Connection, path="de catalogus") -> None:
    """`StoreError` now, before any work, when the catalogue cannot take a write lock."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:  # BEGIN alone succeeds on a read-only file: only a real write tells
            set_state(conn, "write_check", now())
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc).lower():  # busy (a long review save): the writes will wait again
            return
        raise StoreError(unusable_message(path, exc)) from None


def connect_from_config(store_config, path: str | Path | None = None) -> sqlite3.Connection:
    """`connect()` with the [store] settings; `path` (from --db) overrides the configured file."""
    return connect(
        path or store_config.path,
        busy_timeout_seconds=store_config.busy_timeout_seconds,
        synchronous=store_config.synchronous,
    )


def _checked_synchronous(value: str) -> str:
    allowed = ("OFF", "NORMAL", "FULL", "EXTRA")
    if value.upper() not in allowed:
        raise StoreError(f"[store] synchronous must be one of {allowed}, got {value!r}")
    return value.upper()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT; ROLLBACK when the block raises (the exception goes on).

    IMMEDIATE takes the write lock at the start, so two writers queue (up to the busy timeout)
    instead of failing half-way with "database is locked".
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Run the migrations not yet applied, each in its own transaction; return the new version.

    Safe when two processes start at once: the version is re-read inside the write lock.
    """
    target = len(migrations)
    if schema_version(conn) > target:
        raise StoreError(
            f"de catalogus heeft schemaversie {schema_version(conn)}, dit programma kent er "
            f"{target}; werk het programma bij / the catalogue is newer than this program"
        )
    while schema_version(conn) < target:
        with transaction(conn):
            version = schema_version(conn)
            if version >= target:
                break
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            # PRAGMA takes no parameters; `version + 1` is an int we computed.
            conn.execute(f"PRAGMA user_version = {int(version) + 1}")
    return schema_version(conn)


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script into complete statements (executescript would commit mid-way)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


# --- catalogue state -------------------------------------------------------------------------


def get_state(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM catalogue_state WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else default


def set_state(conn: sqlite3.Connection, key: str, value) -> None:
    conn.execute(
        "INSERT INTO catalogue_state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, None if value is None else str(value)),
    )


# --- helpers ---------------------------------------------------------------------------------

# SQLite's default limit on host parameters in one statement is 999 on old builds.
_CHUNK = 900


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict),
                      default=_plain)


def _plain(value):
    """numpy scalars (from the models) as plain numbers; anything else is a bug to see."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} {value!r} as JSON")


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)
