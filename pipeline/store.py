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
    received_at, is_current (1 for the newest version of an id; exactly one per id).
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
    (1 when saved on a stale version).
catalogue_state    key/value facts about the catalogue (e.g. `grouped_max_pk`: the highest
    initiative pk the groups were built from, so an interrupted regroup is redone).

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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from .errors import PipelineError
from .ingest import Initiative, RejectedRow

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
]


class StoreError(PipelineError):
    """The catalogue file cannot be opened or is newer than this program."""


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
        raise StoreError(f"{path}: geen bruikbare catalogus / not a usable catalogue: {exc}") from None
    return conn


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


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCounts:
    """What one submission added: new initiatives, of which new versions of known ids."""

    submission_id: int
    initiatives: int
    new_versions: int
    rejected: int
    predictions: int
    # Rows identical to their id's current version: nothing stored for them (see add_initiative).
    unchanged: int = 0


def submission_by_hash(conn: sqlite3.Connection, sha256: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM submissions WHERE sha256 = ?", (sha256,)).fetchone()


def add_submission(
    conn: sqlite3.Connection,
    *,
    file_name: str,
    sha256: str,
    status: str = SUBMISSION_STORED,
    received_at: str | None = None,
    sender: str | None = None,
    rows_in: int = 0,
    rows_accepted: int = 0,
    rows_rejected: int = 0,
    error: str | None = None,
) -> int:
    """Insert a submission row and return its id (call inside a transaction)."""
    cursor = conn.execute(
        "INSERT INTO submissions (file_name, sha256, received_at, sender, status, rows_in, "
        "rows_accepted, rows_rejected, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (file_name, sha256, received_at or now(), sender, status, rows_in, rows_accepted,
         rows_rejected, error),
    )
    return cursor.lastrowid


# The fields that make a version: a resent row equal to the current version in all of these is
# the same version (its reviews stay in force), whatever file or row number it came in.
VERSION_FIELDS = ("naam", "gemeente", "omschrijving", "gemeenten", "urls", "extra")


def same_as_current(conn: sqlite3.Connection, initiative: Initiative) -> int | None:
    """The pk of `initiative`'s current version when that version has exactly the same
    `VERSION_FIELDS`, else None (new id, or something changed)."""
    row = conn.execute(
        "SELECT * FROM initiatives WHERE id = ? AND is_current = 1", (initiative.id,)
    ).fetchone()
    if row is None:
        return None
    current = _initiative_record(row)
    sent = {
        "naam": initiative.naam, "gemeente": initiative.gemeente,
        "omschrijving": initiative.omschrijving, "gemeenten": list(initiative.gemeenten),
        "urls": list(initiative.urls), "extra": dict(initiative.extra),
    }
    return row["pk"] if all(current[f] == sent[f] for f in VERSION_FIELDS) else None


def add_initiative(
    conn: sqlite3.Connection,
    initiative: Initiative,
    *,
    submission_id: int,
    received_at: str | None = None,
) -> tuple[int, int]:
    """Store `initiative` as the newest version of its id; return (pk, version).

    The previous current version (if any) is kept with is_current = 0. Callers that must not
    make a new version of an unchanged row check `same_as_current` first (store_submission does).
    """
    previous = conn.execute(
        "SELECT max(version) AS v FROM initiatives WHERE id = ?", (initiative.id,)
    ).fetchone()["v"]
    version = (previous or 0) + 1
    if previous:
        conn.execute(
            "UPDATE initiatives SET is_current = 0 WHERE id = ? AND is_current = 1",
            (initiative.id,),
        )
    cursor = conn.execute(
        "INSERT INTO initiatives (id, version, naam, gemeente, omschrijving, gemeenten, urls, "
        "extra, submission_id, source_row, received_at, is_current) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        (
            initiative.id,
            version,
            initiative.naam,
            initiative.gemeente,
            initiative.omschrijving,
            _json(list(initiative.gemeenten)),
            _json(list(initiative.urls)),
            _json(initiative.extra),
            submission_id,
            initiative.row or None,
            received_at or now(),
        ),
    )
    return cursor.lastrowid, version


def add_rejected_row(conn: sqlite3.Connection, rejected: RejectedRow, *, submission_id: int) -> int:
    raw = rejected.raw if isinstance(rejected.raw, str) else _json(rejected.raw)
    cursor = conn.execute(
        "INSERT INTO rejected_rows (submission_id, row, id, field, message, raw) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (submission_id, rejected.row, rejected.id, rejected.field, rejected.message(), raw),
    )
    return cursor.lastrowid


def add_prediction(
    conn: sqlite3.Connection,
    initiative_pk: int,
    prediction: Mapping,
    *,
    created_at: str | None = None,
) -> int:
    """Store one prediction dict as `pipeline.predict.Predictor.predict` returns it.

    Uses model_id, kind, scores (themes/doelgroepen: {label: p}, kind: P(signal)), themes and
    doelgroepen (the chosen labels) and, when present, replicability, replicability_score and
    replicability_reasons. Labels chosen without a score are stored with score 1.0.
    """
    scores = prediction.get("scores") or {}
    reasons = prediction.get("replicability_reasons") or []
    cursor = conn.execute(
        "INSERT INTO predictions (initiative_pk, model_id, created_at, kind, kind_score, "
        "replicability, replicability_score, replicability_reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            initiative_pk,
            prediction["model_id"],
            created_at or now(),
            prediction.get("kind"),
            _float_or_none(scores.get("kind")),
            _int_or_none(prediction.get("replicability")),
            _float_or_none(prediction.get("replicability_score")),
            _json(list(reasons)),
        ),
    )
    prediction_pk = cursor.lastrowid
    rows = []
    for field in LABEL_FIELDS:
        field_scores = dict(scores.get(field) or {})
        chosen = set(prediction.get(field) or ())
        for label in chosen - set(field_scores):
            field_scores[label] = 1.0
        rows += [
            (prediction_pk, field, label, float(score), int(label in chosen))
            for label, score in field_scores.items()
        ]
    # Both forms in the same order latest_predictions reads them: highest score first.
    rows.sort(key=lambda r: (r[1], -r[3], r[2]))
    conn.executemany(
        "INSERT INTO prediction_labels (prediction_pk, field, label, score, chosen) "
        "VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute(
        "UPDATE predictions SET labels = ? WHERE pk = ?",
        (_json([[field, label, score, chosen] for _, field, label, score, chosen in rows]), prediction_pk),
    )
    return prediction_pk


def store_submission(
    conn: sqlite3.Connection,
    *,
    file_name: str,
    sha256: str,
    accepted: Sequence[Initiative],
    rejected: Sequence[RejectedRow],
    predictions: Sequence[Mapping],
    received_at: str | None = None,
    before_commit=None,
) -> StoredCounts:
    """Store one received file, its accepted rows with their predictions and its rejected rows,
    in ONE transaction: either all of it is in the catalogue or none of it.

    `predictions[i]` belongs to `accepted[i]` (the Predictor's order). A row equal to its id's
    current version (`same_as_current`: a municipality resending its list) adds no version and
    no prediction: reviews are tied to the version, so a new identical version would silently
    put the reviewer's labels out of force. Such rows are counted as `unchanged`.
    `before_commit`, if given, is called inside the transaction just before COMMIT (the job's
    crash-test hook and its last "has the file changed" check; raising there stores nothing).
    Raises `ValueError` when the lengths differ, `sqlite3.IntegrityError` when the hash is known.
    """
    if len(predictions) != len(accepted):
        raise ValueError(
            f"{file_name}: {len(predictions)} predictions for {len(accepted)} accepted rows"
        )
    received_at = received_at or now()
    senders = {initiative.gemeente for initiative in accepted}
    with transaction(conn):
        submission_id = add_submission(
            conn,
            file_name=file_name,
            sha256=sha256,
            received_at=received_at,
            sender=senders.pop() if len(senders) == 1 else None,
            rows_in=len(accepted) + len(rejected),
            rows_accepted=len(accepted),
            rows_rejected=len(rejected),
        )
        new_versions = unchanged = 0
        for initiative, prediction in zip(accepted, predictions):
            if same_as_current(conn, initiative) is not None:
                unchanged += 1
                continue
            pk, version = add_initiative(
                conn, initiative, submission_id=submission_id, received_at=received_at
            )
            new_versions += version > 1
            add_prediction(conn, pk, prediction, created_at=received_at)
        for row in rejected:
            add_rejected_row(conn, row, submission_id=submission_id)
        if before_commit is not None:
            before_commit()
    added = len(accepted) - unchanged
    return StoredCounts(submission_id, added, new_versions, len(rejected), added, unchanged)


def store_rejected_file(
    conn: sqlite3.Connection, *, file_name: str, sha256: str, error: str,
    received_at: str | None = None,
) -> int:
    """Record a file that could not be read at all (status 'rejected'); return its id."""
    with transaction(conn):
        return add_submission(
            conn, file_name=file_name, sha256=sha256, status=SUBMISSION_REJECTED,
            received_at=received_at, error=error,
        )


def replace_groups(conn: sqlite3.Connection, groups: Iterable[Mapping], *, grouped_max_pk=None) -> int:
    """Replace all groups by `groups` (dicts as pipeline.group writes them: group_id, members,
    gemeenten, naam, kernwoorden, cohesie) in one transaction; return how many were stored.

    `grouped_max_pk` records which catalogue state the groups were built from.
    """
    created_at = now()
    count = 0
    with transaction(conn):
        conn.execute("DELETE FROM group_members")
        conn.execute("DELETE FROM groups")
        for group in groups:
            conn.execute(
                "INSERT INTO groups (group_id, naam, kernwoorden, cohesie, gemeenten, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    group["group_id"],
                    group.get("naam"),
                    _json(list(group.get("kernwoorden") or [])),
                    _float_or_none(group.get("cohesie")),
                    _json(list(group.get("gemeenten") or [])),
                    created_at,
                ),
            )
            conn.executemany(
                "INSERT INTO group_members (group_id, initiative_id) VALUES (?, ?)",
                [(group["group_id"], member) for member in dict.fromkeys(group["members"])],
            )
            count += 1
        if grouped_max_pk is not None:
            set_state(conn, "grouped_max_pk", grouped_max_pk)
        # Counted up at every regroup: new groups can have the same count as the old ones, and
        # `catalogue_signature` must still change.
        set_state(conn, GROUPS_GENERATION, int(get_state(conn, GROUPS_GENERATION) or 0) + 1)
    return count


# --- reading ---------------------------------------------------------------------------------


def max_initiative_pk(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(pk), 0) FROM initiatives").fetchone()[0]


def catalogue_signature(conn: sqlite3.Connection) -> tuple:
    """A cheap value (one query) that changes whenever `catalogue()` can: a new initiative
    version, prediction or review, or a regroup. Readers cache catalogue records keyed on it.

    Initiatives, predictions and reviews are only ever inserted, so their max pk moves with every
    change; the counts guard against rows deleted by hand; groups are replaced whole, so a
    generation counter kept in catalogue_state stands for them.
    """
    row = conn.execute(
        "SELECT (SELECT coalesce(max(pk), 0) FROM initiatives),"
        " (SELECT count(*) FROM initiatives),"
        " (SELECT coalesce(max(pk), 0) FROM predictions),"
        " (SELECT count(*) FROM predictions),"
        " (SELECT coalesce(max(pk), 0) FROM reviews),"
        " (SELECT count(*) FROM reviews),"
        " (SELECT count(*) FROM groups),"
        " (SELECT value FROM catalogue_state WHERE key = ?)",
        (GROUPS_GENERATION,),
    ).fetchone()
    return tuple(row)


def _initiative_record(row: sqlite3.Row) -> dict:
    record = dict(row)
    for key in ("gemeenten", "urls"):
        record[key] = json.loads(record[key])
    record["extra"] = json.loads(record["extra"])
    return record


def current_initiatives(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> list[dict]:
    """The current version of every initiative (or of `ids`), ordered by id.

    Each record: pk, id, version, naam, gemeente, omschrijving, gemeenten (list), urls (list),
    extra (dict), submission_id, source_row, received_at, is_current.
    """
    if ids is None:
        rows = conn.execute("SELECT * FROM current_initiatives ORDER BY id").fetchall()
    else:
        # In SQL (index on id), so one item page does not read the whole catalogue.
        rows = []
        for chunk in _chunks(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(
                f"SELECT * FROM current_initiatives WHERE id IN ({marks})", chunk
            ).fetchall()
        rows.sort(key=lambda r: r["id"])
    return [_initiative_record(r) for r in rows]


def initiative_versions(conn: sqlite3.Connection, initiative_id: str) -> list[dict]:
    """Every stored version of one initiative id, oldest first."""
    rows = conn.execute(
        "SELECT * FROM initiatives WHERE id = ? ORDER BY version", (initiative_id,)
    ).fetchall()
    return [_initiative_record(r) for r in rows]


def as_initiative(record: Mapping) -> Initiative:
    """A catalogue record back as the `Initiative` the models take."""
    return Initiative(
        id=record["id"],
        gemeente=record["gemeente"],
        omschrijving=record["omschrijving"],
        naam=record["naam"],
        gemeenten=tuple(record["gemeenten"]),
        urls=tuple(record["urls"]),
        extra=dict(record["extra"]),
        row=record.get("source_row") or 0,
    )


def latest_predictions(
    conn: sqlite3.Connection, initiative_pks: Iterable[int] | None = None
) -> dict[int, dict]:
    """The newest prediction per initiative version, keyed by initiative pk.

    Each value has the Predictor's shape: themes, doelgroepen (chosen labels, by descending
    score), kind, scores {themes: {label: p}, doelgroepen: {...}, kind: P(signal)}, model_id,
    replicability, replicability_score, replicability_reasons, plus prediction_pk and created_at.
    Only current versions when `initiative_pks` is None.
    """
    if initiative_pks is None:
        rows = conn.execute(
            "SELECT p.* FROM predictions p "
            "JOIN (SELECT max(pk) AS pk FROM predictions GROUP BY initiative_pk) m ON m.pk = p.pk "
            "JOIN initiatives i ON i.pk = p.initiative_pk AND i.is_current = 1"
        ).fetchall()
    else:
        wanted = list(dict.fromkeys(initiative_pks))
        rows = []
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(
                f"SELECT * FROM latest_predictions WHERE initiative_pk IN ({marks})", chunk
            ).fetchall()
    out: dict[int, dict] = {}
    by_prediction: dict[int, dict] = {}  # predictions stored before migration 2: labels in rows
    for row in rows:
        record = {
            "prediction_pk": row["pk"],
            "initiative_pk": row["initiative_pk"],
            "model_id": row["model_id"],
            "created_at": row["created_at"],
            "kind": row["kind"],
            "themes": [],
            "doelgroepen": [],
            "scores": {"themes": {}, "doelgroepen": {}, "kind": row["kind_score"]},
            "replicability": row["replicability"],
            "replicability_score": row["replicability_score"],
            "replicability_reasons": json.loads(row["replicability_reasons"]),
        }
        out[row["initiative_pk"]] = record
        if row["labels"] is None:
            by_prediction[row["pk"]] = record
            continue
        for field, label, score, chosen in json.loads(row["labels"]):
            record["scores"][field][label] = score
            if chosen:
                record[field].append(label)
    for chunk in _chunks(list(by_prediction)):
        marks = ",".join("?" * len(chunk))
        for label in conn.execute(
            f"SELECT * FROM prediction_labels WHERE prediction_pk IN ({marks}) "
            "ORDER BY score DESC, label",
            chunk,
        ):
            record = by_prediction[label["prediction_pk"]]
            record["scores"][label["field"]][label["label"]] = label["score"]
            if label["chosen"]:
                record[label["field"]].append(label["label"])
    return out


def latest_reviews(
    conn: sqlite3.Connection, initiative_pks: Iterable[int] | None = None
) -> dict[int, dict]:
    """The newest review of every current initiative version (or of the versions
    `initiative_pks`), keyed by initiative pk (themes, doelgroepen as lists; reviewer name
    included).

    A review saved on a stale version (conflict = 1) is kept but not in force: the reviewer was
    shown the other's labels, and the item is marked disputed until someone saves again."""
    sql = (
        "SELECT r.*, v.name AS reviewer FROM reviews r "
        "JOIN current_initiatives i ON i.pk = r.initiative_pk "
        "JOIN reviewers v ON v.pk = r.reviewer_pk "
        "WHERE r.pk = (SELECT max(q.pk) FROM reviews q "
        "WHERE q.initiative_pk = r.initiative_pk AND q.conflict = 0)"
    )
    if initiative_pks is None:
        rows = conn.execute(sql).fetchall()
    else:
        rows = []
        for chunk in _chunks(list(dict.fromkeys(initiative_pks))):
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(sql + f" AND r.initiative_pk IN ({marks})", chunk).fetchall()
    out = {}
    for row in rows:
        record = dict(row)
        for key in ("themes", "doelgroepen", "before"):
            record[key] = json.loads(record[key])
        out[row["initiative_pk"]] = record
    return out


def reviewed_pks(conn: sqlite3.Connection) -> set[int]:
    """Initiative versions that at least one reviewer confirmed or corrected."""
    return {r[0] for r in conn.execute("SELECT DISTINCT initiative_pk FROM reviews")}


def groups(conn: sqlite3.Connection) -> list[dict]:
    """All groups, largest first: group_id, naam, kernwoorden, cohesie, gemeenten, members."""
    members: dict[str, list[str]] = {}
    for row in conn.execute("SELECT * FROM group_members ORDER BY initiative_id"):
        members.setdefault(row["group_id"], []).append(row["initiative_id"])
    out = []
    for row in conn.execute("SELECT * FROM groups"):
        record = dict(row)
        record["kernwoorden"] = json.loads(record["kernwoorden"])
        record["gemeenten"] = json.loads(record["gemeenten"])
        record["members"] = members.get(row["group_id"], [])
        out.append(record)
    out.sort(key=lambda g: (-len(g["members"]), g["group_id"]))
    return out


def group_of(conn: sqlite3.Connection) -> dict[str, dict]:
    """Initiative id -> its group record (see `groups`); ids without a group are absent."""
    return {member: group for group in groups(conn) for member in group["members"]}


def catalogue(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> list[dict]:
    """The catalogue as readers see it: every current initiative (or those of `ids`, looked up
    in SQL) with its labels in force.

    Labels in force are the latest review's where a reviewer confirmed or corrected the row
    (`labels_from` = 'review'), else the latest prediction's (`labels_from` = 'model'; 'none' when
    the row has no prediction). Each record is a `current_initiatives` record plus themes,
    doelgroepen, kind, replicability, replicability_reasons, model_id, labels_from, prediction
    (the full latest prediction or None), review (the latest review or None), group (or None).
    When a reviewer gave another replicability than the model, the model's reasons argue for a
    score that is not shown: they are replaced by the reviewer's note (a plain string), if any.
    """
    records = current_initiatives(conn, ids)
    pks = None if ids is None else [r["pk"] for r in records]
    predictions = latest_predictions(conn, pks)
    reviews = latest_reviews(conn, pks)
    group_by_id = group_of(conn)
    out = []
    for record in records:
        prediction = predictions.get(record["pk"])
        review = reviews.get(record["pk"])
        source = review or prediction or {}
        model_score = (prediction or {}).get("replicability")
        reviewer_score = (review or {}).get("replicability")
        reasons = (prediction or {}).get("replicability_reasons") or []
        if reviewer_score is not None and reviewer_score != model_score:
            note = ((review or {}).get("note") or "").strip()
            reasons = [note] if note else []
        record.update(
            themes=list(source.get("themes") or []),
            doelgroepen=list(source.get("doelgroepen") or []),
            kind=source.get("kind"),
            replicability=reviewer_score if reviewer_score is not None else model_score,
            replicability_reasons=reasons,
            model_id=(prediction or {}).get("model_id"),
            labels_from="review" if review else "model" if prediction else "none",
            prediction=prediction,
            review=review,
            group=group_by_id.get(record["id"]),
        )
        out.append(record)
    return out


def submissions(conn: sqlite3.Connection) -> list[dict]:
    """Every received file, newest first."""
    return [dict(r) for r in conn.execute("SELECT * FROM submissions ORDER BY id DESC")]


def rejected_rows(conn: sqlite3.Connection, submission_id: int | None = None) -> list[dict]:
    """Rejected rows with the file they came in (file_name), in file and row order."""
    sql = (
        "SELECT r.*, s.file_name, s.received_at FROM rejected_rows r "
        "JOIN submissions s ON s.id = r.submission_id"
    )
    params: tuple = ()
    if submission_id is not None:
        sql += " WHERE r.submission_id = ?"
        params = (submission_id,)
    return [dict(r) for r in conn.execute(sql + " ORDER BY r.submission_id, r.row", params)]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts per table (for summaries and tests)."""
    tables = (
        "submissions", "initiatives", "rejected_rows", "predictions", "prediction_labels",
        "groups", "group_members", "reviewers", "reviews",
    )
    out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    out["current_initiatives"] = conn.execute(
        "SELECT count(*) FROM current_initiatives"
    ).fetchone()[0]
    return out


def stale_initiatives(conn: sqlite3.Connection, model_id: str) -> tuple[list[dict], int]:
    """Current initiatives whose latest prediction is missing or came from another model.

    Returns (records to re-predict, how many were skipped because a reviewer confirmed or
    corrected them: their labels are never overwritten).
    """
    predictions = latest_predictions(conn)
    reviewed = reviewed_pks(conn)
    todo, skipped = [], 0
    for record in current_initiatives(conn):
        prediction = predictions.get(record["pk"])
        if prediction is not None and prediction["model_id"] == model_id:
            continue
        if record["pk"] in reviewed:
            skipped += 1
            continue
        todo.append(record)
    return todo, skipped


# --- export for policy staff -----------------------------------------------------------------

EXPORT_FORMATS = ("csv", "xlsx", "jsonl")
EXPORT_COLUMNS = (
    "Id", "Naam", "Gemeente", "Gemeenten", "Omschrijving", "Thema's", "Doelgroepen", "Soort",
    "Overdraagbaarheid", "Redenen", "Groep", "Ook in", "Labels van", "Model", "Versie",
    "Ontvangen",
)
REJECTED_COLUMNS = ("Bestand", "Ontvangen", "Rij", "Id", "Veld", "Melding", "Rij zoals ontvangen")
KIND_NAMES = {"initiative": "Initiatief", "signal": "Signaal"}
LABELS_FROM = {"review": "beoordelaar", "model": "model", "none": "nog niet geclassificeerd"}
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


def reason_parts(reason) -> dict:
    """One replicability reason as {"reden", "richting", "bewijs"}: the scorer's dicts as they
    are, a plain string (older models, a reviewer's note) as {"reden": it, "richting": "",
    "bewijs": None}."""
    if isinstance(reason, Mapping):
        return {
            "reden": str(reason.get("reden") or ""),
            "richting": reason.get("richting") or "",
            "bewijs": reason.get("bewijs"),
        }
    return {"reden": str(reason), "richting": "", "bewijs": None}


def reason_text(reason) -> str:
    """One replicability reason as text: "+ reden" / "- reden" for the scorer's dicts
    ({"reden", "richting", "bewijs"}), a plain string as it is."""
    parts = reason_parts(reason)
    return f"{parts['richting']} {parts['reden']}" if parts["richting"] else parts["reden"]


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
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps({c: record.get(c, "") for c in columns}, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=csv_delimiter)
            writer.writerow(columns)
            for record in records:
                writer.writerow([_csv_safe(record.get(c, "")) for c in columns])
    else:
        _write_xlsx(records, path, columns, sheet_name)
    return path


def _csv_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# Column widths in characters for the xlsx sheet: wide for text, narrow for codes.
_XLSX_WIDTHS = {"Omschrijving": 80, "Naam": 30, "Redenen": 60, "Thema's": 30, "Doelgroepen": 30,
                "Groep": 30, "Melding": 60, "Rij zoals ontvangen": 60}
_XLSX_DEFAULT_WIDTH = 14


def _write_xlsx(records, path: Path, columns, sheet_name: str) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
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
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                # openpyxl would turn a text starting with "=" into a formula; keep it text.
                cell.data_type = "s"
                if column in _XLSX_WIDTHS:
                    cell.alignment = wrap
            row.append(cell)
        sheet.append(row)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(records) + 1}"
    book.save(path)


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
