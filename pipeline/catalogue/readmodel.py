"""Reading the catalogue: current versions, latest predictions and reviews, groups, and the
"labels in force" rule (a reviewer's labels win over the model's).
"""
from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Mapping

from pipeline.catalogue.schema import GROUPS_GENERATION, _chunks


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
    if record.get("places") is not None:
        record["places"] = json.loads(record["places"])
    return record


def current_initiatives(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> list[dict]:
    """The current version of every initiative (or of `ids`), ordered by id.

    Each record: pk, id, version, naam, gemeente, omschrijving, gemeenten (list), urls (list),
    extra (dict), submission_id, source_row, received_at, is_current, places (list of resolved
    municipality dicts, or None for a version stored before municipalities were resolved).
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


def group_of(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> dict[str, dict]:
    """Initiative id -> its group record (see `groups`); ids without a group are absent.
    With `ids`, only their groups are read (in SQL: one item page does not read every group)."""
    if ids is None:
        return {member: group for group in groups(conn) for member in group["members"]}
    wanted = list(dict.fromkeys(ids))
    group_ids: set[str] = set()
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        group_ids.update(row[0] for row in conn.execute(
            f"SELECT group_id FROM group_members WHERE initiative_id IN ({marks})", chunk))
    out: dict[str, dict] = {}
    for chunk in _chunks(sorted(group_ids)):
        marks = ",".join("?" * len(chunk))
        members: dict[str, list[str]] = {}
        for row in conn.execute(f"SELECT * FROM group_members WHERE group_id IN ({marks}) "
                                "ORDER BY initiative_id", chunk):
            members.setdefault(row["group_id"], []).append(row["initiative_id"])
        for row in conn.execute(f"SELECT * FROM groups WHERE group_id IN ({marks})", chunk):
            record = dict(row)
            record["kernwoorden"] = json.loads(record["kernwoorden"])
            record["gemeenten"] = json.loads(record["gemeenten"])
            record["members"] = members.get(row["group_id"], [])
            out.update({member: record for member in record["members"]})
    return {i: out[i] for i in wanted if i in out}


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
    group_by_id = group_of(conn, None if ids is None else [r["id"] for r in records])
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
KIND_NAMES = {"initiative": "Initiatief", "signal": "Signaal"}
LABELS_FROM = {"review": "beoordelaar", "model": "model", "none": "nog niet geclassificeerd"}


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


def newest_prediction_model(conn: sqlite3.Connection) -> dict | None:
    """{model_id, created_at} of the newest prediction (the model whose predictions are in force
    after the last run or reclassify), or None when the catalogue has no predictions."""
    row = conn.execute("SELECT model_id, created_at FROM predictions ORDER BY pk DESC LIMIT 1").fetchone()
    return dict(row) if row else None
