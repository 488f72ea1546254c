"""Writing to the catalogue: a submitted file with its accepted rows (new versions only when the
text changed), rejected rows and predictions in one transaction, and the same-idea groups.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from pipeline.core.records import Initiative, RejectedRow
from pipeline.catalogue.schema import GROUPS_GENERATION, SUBMISSION_REJECTED, SUBMISSION_STORED, _float_or_none, _int_or_none, _json, get_state, now, set_state, transaction
from pipeline.catalogue.schema import LABEL_FIELDS
from pipeline.catalogue.readmodel import _initiative_record


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
        "extra, submission_id, source_row, received_at, is_current, places) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
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
            None if initiative.places is None else _json([p.to_dict() for p in initiative.places]),
        ),
    )
    return cursor.lastrowid, version


def _storable(text: str | None) -> str | None:
    """`text` as SQLite can store it: a lone surrogate (valid in a JSON escape) as `\\udXXX`."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def add_rejected_row(conn: sqlite3.Connection, rejected: RejectedRow, *, submission_id: int) -> int:
    """Store a rejected row as sent; whatever it holds (lone surrogates, deep nesting) is kept as
    text, so every bad row is listed."""
    raw = rejected.raw
    if not isinstance(raw, str):
        try:
            raw = _json(raw)
        except (ValueError, RecursionError, TypeError):
            raw = repr(raw)[:100_000]
    cursor = conn.execute(
        "INSERT INTO rejected_rows (submission_id, row, id, field, message, raw) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (submission_id, rejected.row, _storable(rejected.id), _storable(rejected.field),
         _storable(rejected.message()), _storable(raw)),
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


def replace_groups(conn: sqlite3.Connection, groups: Iterable[Mapping], *, grouped_max_pk=None,
                   state: Mapping | None = None) -> int:
    """Replace all groups by `groups` (dicts as pipeline.group writes them: group_id, members,
    gemeenten, naam, kernwoorden, cohesie) in one transaction; return how many were stored.

    `grouped_max_pk` records which catalogue state the groups were built from; `state` holds
    more catalogue_state keys to set in the same transaction.
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
        for key, value in (state or {}).items():
            set_state(conn, key, value)
        # Counted up at every regroup: new groups can have the same count as the old ones, and
        # `catalogue_signature` must still change.
        set_state(conn, GROUPS_GENERATION, int(get_state(conn, GROUPS_GENERATION) or 0) + 1)
    return count
