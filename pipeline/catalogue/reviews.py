"""Reviews in the catalogue: reviewers correct the model's labels; their corrections train the next model.

Pure core (no SQL): `labels_of`, `review_status(latest_per_reviewer)` ("nieuw": no review of the
current text version, "beoordeeld": all reviewers' latest labels agree, "betwist": two disagree),
`item_status` (adds "tweede": sampled for a blind second opinion and seen once; and a dispute
decided by a third reviewer, `settled_by`), `second_opinion_sampled`, `blind_for` (whether a
reviewer's form must hide the other reviewers' labels), `validate_labels`, `in_force` /
`latest_per_reviewer`. Agreement between reviewers is in pipeline/catalogue/agreement.py.

Storage (functions that take a catalogue connection; tables in pipeline/catalogue/schema.py):
`save_review`: every save is a new row with who, when, what was shown (`before`) and what was
saved. Optimistic concurrency: the form carries the review it was based on (`based_on_review_pk`);
a save based on a stale one is stored too, marked `conflict`, and the other stays in force. The
labels in force are those of the newest non-conflicting review (readmodel.latest_reviews; search,
report, export and reclassify read them). `reviews_of`, `labels_shown`, `reviews_since`,
`export_reviewed` (the seed format of data/labelled/) and `merge_with_existing`.

Accounts live in pipeline/catalogue/accounts.py, the queue in pipeline/catalogue/queue.py and the
Flask views in pipeline/app/review_views.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Sequence


from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue.accounts import ReviewError

# Item statuses in queue order; "tweede": waiting for a blind second opinion.
STATUSES = ("nieuw", "tweede", "betwist", "beoordeeld")
STATUS_NAMES = {"nieuw": "nieuw", "tweede": "tweede oordeel", "betwist": "betwist",
                "beoordeeld": "beoordeeld"}
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


def second_opinion_sampled(initiative_id: str, share: float) -> bool:
    """Whether `initiative_id` is one of the share ([review] second_opinion_share) of items that
    get a blind second review. Decided by a hash of the id, so the same items are chosen in every
    process and on every run, and an item stays chosen when a new text version arrives."""
    digest = hashlib.sha256(initiative_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def settled_by(reviews: Sequence[Mapping]) -> Mapping | None:
    """The review that decided a dispute, if the labels in force are one: the newest review (not a
    conflict) by a reviewer who had not reviewed the item before, saved while the latest labels of
    the earlier reviewers differed, and still in force. None otherwise."""
    decider = None
    for position, review in enumerate(reviews):
        earlier = reviews[:position]
        if (not review["conflict"] and review["reviewer"] not in {r["reviewer"] for r in earlier}
                and review_status(latest_per_reviewer(earlier)) == "betwist"):
            decider = review
    return decider if decider is not None and decider is in_force(reviews) else None


def item_status(reviews: Sequence[Mapping], *, sampled: bool) -> str:
    """The status of one item from all its reviews (oldest first): "nieuw" without reviews;
    "betwist" when reviewers' latest labels differ and no third reviewer decided (`settled_by`);
    "tweede" when it is `sampled` for a second opinion and one reviewer has seen it; else
    "beoordeeld"."""
    latest = latest_per_reviewer(reviews)
    status = review_status(latest)
    if status == "betwist" and settled_by(reviews) is not None:
        return "beoordeeld"
    if status == "beoordeeld" and sampled and len(latest) < 2:
        return "tweede"
    return status


def blind_for(reviews: Sequence[Mapping], reviewer: str, *, sampled: bool) -> bool:
    """Whether `reviewer` must give an independent opinion on this item: others reviewed it, this
    reviewer did not yet, and it needs a second opinion (`sampled`) or is disputed. Their form then
    shows the model's suggestion, not the other reviewers' labels, until they save."""
    if not reviews or any(r["reviewer"] == reviewer for r in reviews):
        return False
    return sampled or item_status(reviews, sampled=sampled) == "betwist"


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
    blind: bool = False,
) -> SaveResult:
    """Store one review as a new row; never overwrite.

    `based_on` is the pk of the review in force when the reviewer opened the form (None: the
    model's labels). When another review came in since, this one is stored too, with conflict = 1,
    and the other stays in force. `blind`: the form showed the model's suggestion instead of the
    review in force (a blind second opinion, `blind_for`). The review is stored as independent
    (blind = 1) when the reviewer had not reviewed this version before and saw no other reviewer's
    labels (the form was based on the model, or was blind). What the reviewer was shown (`before`) is looked up here from
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
        own_earlier = conn.execute(
            "SELECT 1 FROM reviews WHERE initiative_pk = ? AND reviewer_pk = ? LIMIT 1",
            (initiative_pk, reviewer_row["pk"]),
        ).fetchone()
        independent = own_earlier is None and (based_on is None or blind)
        before = labels_shown(conn, initiative_pk, None if independent else based_on)
        cursor = conn.execute(
            "INSERT INTO reviews (initiative_pk, reviewer_pk, created_at, themes, doelgroepen, "
            "kind, replicability, note, before, based_on_review_pk, conflict, blind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                int(independent),
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


def disputed_ids(conn) -> set[str]:
    """Ids of current initiatives whose reviewers' latest labels differ and that no third
    reviewer decided (`item_status` "betwist"): their labels are not agreed, so not training data."""
    return {reviews[0]["initiative_id"] for reviews in all_current_reviews(conn).values()
            if reviews and item_status(reviews, sampled=False) == "betwist"}


def export_reviewed(conn, *, leave_out: Collection[str] = ()) -> list[dict]:
    """The labels in force of every reviewed initiative, in the seed format of data/labelled/.

    One row per initiative id: the newest review in force over all its versions, with the text of
    the version that was reviewed; `reason` is the reviewer's note (empty when none was given).
    Ids in `leave_out` (e.g. `disputed_ids`) are not exported.
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
    for initiative_id in sorted(set(latest) - set(leave_out)):
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


def export_rows(path: Path) -> list[tuple[int, object]]:
    """(line number, parsed JSON) of every non-blank line of an earlier export (labels or
    same-idea pairs). Raises ReviewError naming the row of a line that is no JSON."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ReviewError(
                f"{path}: rij {number} is geen geldige JSON ({exc.msg}); herstel of verplaats "
                "het bestand / broken JSON in the earlier export"
            ) from None
    return out


def merge_with_existing(records: Sequence[Mapping], path, *,
                        leave_out: Collection[str] = ()) -> tuple[list[dict], int]:
    """`records` plus the rows of an earlier export at `path` whose ids they lack.

    Reviews are never deleted, so an id missing from a new export means the export came from
    another (or a fresh) catalogue: its earlier corrections are kept rather than lost. Returns
    (rows sorted by id, how many were kept from the earlier file). An earlier row whose id is in
    `leave_out` (disputed now) is not kept either.
    """
    path = Path(path)
    merged = {r["id"]: dict(r) for r in records}
    kept = 0
    if path.exists():
        for _, row in export_rows(path):
            if isinstance(row, dict) and row.get("id") and row["id"] not in merged \
                    and row["id"] not in leave_out:
                merged[row["id"]] = row
                kept += 1
    return [merged[key] for key in sorted(merged)], kept


def reviews_since(conn, reviewer: str, since: str) -> int:
    """How many initiative versions `reviewer` reviewed at or after `since` (ISO 8601 UTC): the
    progress towards [review] weekly_goal."""
    return conn.execute(
        "SELECT count(DISTINCT r.initiative_pk) FROM reviews r JOIN reviewers v ON v.pk = r.reviewer_pk "
        "WHERE v.name = ? AND r.created_at >= ?",
        (reviewer, since),
    ).fetchone()[0]
