"""Reviews in the catalogue: reviewers correct the model's labels; their corrections train the next model.

Pure core (no SQL): `labels_of`, `review_status(latest_per_reviewer)` ("nieuw": no review of the
current text version, "beoordeeld": all reviewers' latest labels agree, "betwist": two disagree),
`agreement(pairs, taxonomy)` (percent agreement and Cohen's kappa per label), `validate_labels`,
`in_force` / `latest_per_reviewer`.

Storage (functions that take a catalogue connection; tables in pipeline/catalogue/schema.py):
`save_review`: every save is a new row with who, when, what was shown (`before`) and what was
saved. Optimistic concurrency: the form carries the review it was based on (`based_on_review_pk`);
a save based on a stale one is stored too, marked `conflict`, and the other stays in force. The
labels in force are those of the newest non-conflicting review (readmodel.latest_reviews; search,
report, export and reclassify read them). `reviews_of`, `labels_shown`, `agreement_pairs`,
`export_reviewed` (the seed format of data/labelled/) and `merge_with_existing`.

Accounts live in pipeline/catalogue/accounts.py, the queue in pipeline/catalogue/queue.py and the
Flask views in pipeline/app/review_views.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue.accounts import ReviewError

STATUSES = ("nieuw", "beoordeeld", "betwist")
LABEL_FIELDS = ("themes", "doelgroepen")
KINDS = tuple(readmodel.KIND_NAMES)  # "initiative", "signal"


def labels_of(review: Mapping) -> dict:
    """The comparable part of a review or prediction: sorted label lists, kind, replicability."""
    return {
        "themes": sorted(review.get("themes") or []),
        "doelgroepen": sorted(review.get("doelgroepen") or []),
        "kind": review.get("kind"),
        "replicability": review.get("replicability"),
    }


def review_status(latest_per_reviewer: Sequence[Mapping]) -> str:
    """"nieuw" without reviews; "betwist" when two reviewers' latest labels differ; else "beoordeeld"."""
    if not latest_per_reviewer:
        return "nieuw"
    distinct = {json.dumps(labels_of(r), sort_keys=True) for r in latest_per_reviewer}
    return "betwist" if len(distinct) > 1 else "beoordeeld"


@dataclass(frozen=True)
class LabelAgreement:
    field: str
    label: str
    naam: str
    n: int
    percent: float
    kappa: float | None  # None when undefined (both reviewers gave one constant answer)
    positives: int  # how many of the 2n judgements said yes (context for a high percentage)


def _kappa(a: Sequence, b: Sequence, weights=None) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:
        return None
    value = cohen_kappa_score(a, b, weights=weights)
    return None if math.isnan(value) else float(value)


def agreement(pairs: Sequence[tuple[Mapping, Mapping]], taxonomy) -> list[LabelAgreement]:
    """Agreement between two reviewers per label over doubly-reviewed items.

    `pairs` holds, per item, the latest labels of its first two reviewers. For every theme and
    target group the yes/no decisions are compared; kind as a two-class label; replicability as
    exact agreement with quadratic-weighted kappa (a 4 against a 5 is a smaller disagreement than a
    1 against a 5). Returns one row per label, in taxonomy order; empty when there are no pairs.
    """
    if not pairs:
        return []
    rows = []
    for field_name in LABEL_FIELDS:
        for label in getattr(taxonomy, field_name):
            a = [label.id in (x.get(field_name) or []) for x, _ in pairs]
            b = [label.id in (y.get(field_name) or []) for _, y in pairs]
            rows.append(_agreement_row(field_name, label.id, label.naam, a, b))
    a = [x.get("kind") for x, _ in pairs]
    b = [y.get("kind") for _, y in pairs]
    rows.append(_agreement_row("kind", "kind", "Soort (initiatief/signaal)", a, b))
    a = [x.get("replicability") for x, _ in pairs]
    b = [y.get("replicability") for _, y in pairs]
    scale = score_scale(taxonomy)
    naam = f"Overdraagbaarheid ({scale[0]}-{scale[-1]})" if scale else "Overdraagbaarheid"
    rows.append(_agreement_row("replicability", "replicability", naam, a, b, weights="quadratic"))
    return rows


def _agreement_row(field_name, label, naam, a, b, weights=None) -> LabelAgreement:
    same = sum(x == y for x, y in zip(a, b))
    positives = sum(bool(x) is True for x in a + b) if field_name in LABEL_FIELDS else 0
    return LabelAgreement(
        field=field_name,
        label=label,
        naam=naam,
        n=len(a),
        percent=100.0 * same / len(a),
        kappa=_kappa(a, b, weights),
        positives=positives,
    )


def _review_record(row) -> dict:
    record = dict(row)
    for key in ("themes", "doelgroepen", "before"):
        record[key] = json.loads(record[key]) if record.get(key) else ([] if key != "before" else {})
    return record


def reviews_of(conn, initiative_pks: Sequence[int]) -> dict[int, list[dict]]:
    """Every review of the given initiative versions, oldest first, keyed by initiative pk
    (reviewer name in `reviewer`)."""
    out: dict[int, list[dict]] = {pk: [] for pk in initiative_pks}
    if not initiative_pks:
        return out
    marks = ",".join("?" * len(initiative_pks))
    for row in conn.execute(
        "SELECT r.*, v.name AS reviewer FROM reviews r JOIN reviewers v ON v.pk = r.reviewer_pk "
        f"WHERE r.initiative_pk IN ({marks}) ORDER BY r.pk",
        list(initiative_pks),
    ):
        out[row["initiative_pk"]].append(_review_record(row))
    return out


def all_current_reviews(conn) -> dict[int, list[dict]]:
    """Every review of every current initiative version, oldest first, keyed by initiative pk
    (with the initiative's id in `initiative_id`)."""
    out: dict[int, list[dict]] = {}
    for row in conn.execute(
        "SELECT r.*, v.name AS reviewer, i.id AS initiative_id FROM reviews r "
        "JOIN current_initiatives i ON i.pk = r.initiative_pk "
        "JOIN reviewers v ON v.pk = r.reviewer_pk ORDER BY r.pk"
    ):
        out.setdefault(row["initiative_pk"], []).append(_review_record(row))
    return out


def latest_per_reviewer(reviews: Sequence[Mapping]) -> list[Mapping]:
    """Each reviewer's newest review (conflicting ones included), in order of first review."""
    latest: dict[str, Mapping] = {}
    for review in reviews:
        if review["reviewer"] not in latest:
            latest[review["reviewer"]] = review
        else:
            latest.pop(review["reviewer"])
            latest[review["reviewer"]] = review
    first_seen = list(dict.fromkeys(r["reviewer"] for r in reviews))
    return [latest[name] for name in first_seen]


def in_force(reviews: Sequence[Mapping]) -> Mapping | None:
    """The review whose labels are in force: the newest one not saved on a stale version."""
    accepted = [r for r in reviews if not r["conflict"]]
    return accepted[-1] if accepted else None


def validate_labels(labels: Mapping, taxonomy) -> dict:
    """The labels of a submitted review, checked against the taxonomy.

    Returns {"themes", "doelgroepen", "kind", "replicability"}; raises ReviewError (Dutch) naming
    what is wrong: an unknown label, no theme or target group, a kind or score out of range.
    """
    out = {}
    names = {"themes": "thema", "doelgroepen": "doelgroep"}
    for field_name in LABEL_FIELDS:
        values = list(dict.fromkeys(labels.get(field_name) or []))
        known = set(taxonomy.ids(field_name))
        unknown = [v for v in values if v not in known]
        if unknown:
            raise ReviewError(f"onbekende {names[field_name]}: {', '.join(unknown)}")
        if not values:
            raise ReviewError(f"kies minstens één {names[field_name]}")
        out[field_name] = values
    kind = labels.get("kind")
    if kind not in KINDS:
        raise ReviewError("kies de soort: initiatief of signaal")
    out["kind"] = kind
    scale = score_scale(taxonomy)
    wrong_score = (f"kies een overdraagbaarheid van {scale[0]} tot en met {scale[-1]}" if scale
                   else "de taxonomie noemt geen scores voor overdraagbaarheid")
    try:
        score = int(labels.get("replicability"))
    except (TypeError, ValueError):
        raise ReviewError(wrong_score) from None
    if score not in scale:
        raise ReviewError(wrong_score)
    out["replicability"] = score
    return out


def score_scale(taxonomy) -> list[int]:
    """The replicability scores reviewers may give, lowest first: those of the taxonomy's
    [replicability] section (the labelling guide's 1-5)."""
    return sorted(taxonomy.replicability)


@dataclass(frozen=True)
class SaveResult:
    review_pk: int
    conflict: bool
    in_force: Mapping | None  # the review in force after the save (the other's, on a conflict)
    stale_version: bool  # a newer version of the text arrived after the form was opened


def save_review(
    conn,
    *,
    initiative_pk: int,
    reviewer: str,
    labels: Mapping,
    based_on: int | None,
    note: str | None,
) -> SaveResult:
    """Store one review as a new row; never overwrite.

    `based_on` is the pk of the review in force when the reviewer opened the form (None: the
    model's labels). When another review came in since, this one is stored too, with conflict = 1,
    and the other stays in force. What the reviewer was shown (`before`) is looked up here from
    `based_on`, not taken from the browser, so the history cannot be forged. Raises ReviewError for
    an unknown reviewer or initiative.
    """
    with schema.transaction(conn):
        reviewer_row = conn.execute(
            "SELECT pk FROM reviewers WHERE name = ? AND active = 1", (reviewer,)
        ).fetchone()
        if reviewer_row is None:
            raise ReviewError(f"onbekende beoordelaar {reviewer!r}")
        initiative = conn.execute(
            "SELECT is_current FROM initiatives WHERE pk = ?", (initiative_pk,)
        ).fetchone()
        if initiative is None:
            raise ReviewError(f"onbekende initiatiefversie (intern nummer {initiative_pk})")
        current = conn.execute(
            "SELECT max(pk) FROM reviews WHERE initiative_pk = ? AND conflict = 0",
            (initiative_pk,),
        ).fetchone()[0]
        conflict = current != based_on
        before = labels_shown(conn, initiative_pk, based_on)
        cursor = conn.execute(
            "INSERT INTO reviews (initiative_pk, reviewer_pk, created_at, themes, doelgroepen, "
            "kind, replicability, note, before, based_on_review_pk, conflict) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                initiative_pk,
                reviewer_row["pk"],
                schema.now(),
                json.dumps(list(labels["themes"]), ensure_ascii=False),
                json.dumps(list(labels["doelgroepen"]), ensure_ascii=False),
                labels["kind"],
                labels["replicability"],
                (note or "").strip() or None,
                json.dumps(dict(before), ensure_ascii=False, sort_keys=True),
                based_on,
                int(conflict),
            ),
        )
        review_pk = cursor.lastrowid
    reviews = reviews_of(conn, [initiative_pk])[initiative_pk]
    return SaveResult(review_pk, conflict, in_force(reviews), not initiative["is_current"])


def labels_shown(conn, initiative_pk: int, based_on: int | None) -> dict:
    """The labels a form based on review `based_on` showed: that review's, or the latest
    prediction's when it was based on the model (or on a review of another initiative)."""
    if based_on is not None:
        row = conn.execute(
            "SELECT * FROM reviews WHERE pk = ? AND initiative_pk = ?", (based_on, initiative_pk)
        ).fetchone()
        if row is not None:
            return labels_of(_review_record(row))
    prediction = readmodel.latest_predictions(conn, [initiative_pk]).get(initiative_pk) or {}
    return labels_of(prediction)


def export_reviewed(conn) -> list[dict]:
    """The labels in force of every reviewed initiative, in the seed format of data/labelled/.

    One row per initiative id: the newest review in force over all its versions, with the text of
    the version that was reviewed; `reason` is the reviewer's note (empty when none was given).
    """
    rows = conn.execute(
        "SELECT r.*, i.id AS initiative_id, i.gemeente, i.naam, i.omschrijving, "
        "v.name AS reviewer FROM reviews r "
        "JOIN initiatives i ON i.pk = r.initiative_pk JOIN reviewers v ON v.pk = r.reviewer_pk "
        "WHERE r.conflict = 0 ORDER BY r.pk"
    ).fetchall()
    latest: dict[str, dict] = {}
    for row in rows:
        latest[row["initiative_id"]] = _review_record(row)
    out = []
    for initiative_id in sorted(latest):
        r = latest[initiative_id]
        out.append(
            {
                "id": initiative_id,
                "gemeente": r["gemeente"],
                "naam": r["naam"],
                "omschrijving": r["omschrijving"],
                "themes": r["themes"],
                "doelgroepen": r["doelgroepen"],
                "kind": r["kind"],
                "replicability": r["replicability"],
                "reason": r["note"] or "",
                "source": "review",
                "reviewer": r["reviewer"],
                "reviewed_at": r["created_at"],
            }
        )
    return out


def merge_with_existing(records: Sequence[Mapping], path) -> tuple[list[dict], int]:
    """`records` plus the rows of an earlier export at `path` whose ids they lack.

    Reviews are never deleted, so an id missing from a new export means the export came from
    another (or a fresh) catalogue: its earlier corrections are kept rather than lost. Returns
    (rows sorted by id, how many were kept from the earlier file).
    """
    path = Path(path)
    merged = {r["id"]: dict(r) for r in records}
    kept = 0
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReviewError(
                    f"{path}: rij {number} is geen geldige JSON ({exc.msg}); herstel of verplaats "
                    "het bestand / broken JSON in the earlier export"
                ) from None
            if isinstance(row, dict) and row.get("id") and row["id"] not in merged:
                merged[row["id"]] = row
                kept += 1
    return [merged[key] for key in sorted(merged)], kept




# --------------------------------------------------------------------------- web



def agreement_pairs(conn) -> list[tuple[Mapping, Mapping, Mapping]]:
    """(item, first reviewer's latest, second reviewer's latest) for every current initiative
    version that two or more reviewers reviewed."""
    reviews = all_current_reviews(conn)
    twice = [rows[0]["initiative_id"] for rows in reviews.values()
             if len(latest_per_reviewer(rows)) >= 2]
    records = {r["pk"]: r for r in readmodel.current_initiatives(conn, twice)} if twice else {}
    out = []
    for pk, item_reviews in sorted(reviews.items()):
        latest = latest_per_reviewer(item_reviews)
        if len(latest) >= 2:
            out.append((records[pk], latest[0], latest[1]))
    return out
