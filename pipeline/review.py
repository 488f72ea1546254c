"""Reviewers correct the model's labels in the browser; their corrections train the next model.

Pure core (no Flask, no SQL):
- `certainty(prediction, kind_threshold)`: how sure the model was about a row; the queue shows the
  least sure first (the rows the next model learns most from),
- `review_status(latest_per_reviewer)`: "nieuw" (no review of the current text version),
  "beoordeeld" (all reviewers' latest labels agree) or "betwist" (two reviewers disagree),
- `highlight(text, evidence)`: the text escaped, with each evidence substring in <mark>,
- `agreement(pairs, taxonomy)`: percent agreement and Cohen's kappa per label.

Storage (functions that take a catalogue connection; tables `reviewers` and `reviews` of
pipeline/store.py): `add_reviewer`, `set_password`, `deactivate_reviewer`, `check_password`
(argon2), `session_fingerprint` (what a login session is checked against on every request, so a
new password or deactivation ends it); `save_review`: every save is a new
row with who, when, what was shown (`before`) and what was saved. Optimistic concurrency: the form
carries the review it was based on (`based_on_review_pk`); a save based on a stale one is stored
too, marked `conflict`, and the other stays in force. The labels in force are those of the newest
non-conflicting review (store.latest_reviews; search, report, export and reclassify read them).
`queue_items` (= `model_queue_items`, the slow part that `QueueCache` keeps per app until a new
row or prediction arrives, plus `with_reviews`, read per request), `reviews_of`, `export_reviewed`
(the seed format of data/labelled/).

Web (Flask blueprints that pipeline/web.py registers): `auth_blueprint` (/login, /logout),
`blueprint` (/review/ queue, /review/item/<id> item page and save, /review/item/<id>/overslaan),
`agreement_blueprint` (/review/overeenstemming).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from markupsafe import Markup, escape

from . import store
from .errors import PipelineError

STATUSES = ("nieuw", "beoordeeld", "betwist")
LABEL_FIELDS = ("themes", "doelgroepen")
KINDS = tuple(store.KIND_NAMES)  # "initiative", "signal"


# --------------------------------------------------------------------------- pure core


def certainty(prediction: Mapping, kind_threshold: float) -> float:
    """How far the model was from deciding differently on a row: small = unsure (review first).

    The classifier tunes one threshold per label, and the catalogue keeps the scores and which
    labels were chosen, not the thresholds. So per field (themes, doelgroepen) the margin is half
    the gap between the weakest chosen label and the strongest label left out: the threshold lay
    somewhere in that gap, and a small gap means a small change in the text would swap labels.
    For the kind it is the distance of P(signal) to `kind_threshold`. The row's certainty is the
    smallest of these; +inf without scores (sorts last: nothing for a reviewer to settle).

    >>> certainty({"themes": ["a"], "scores": {"themes": {"a": 0.6, "b": 0.5}, "kind": 0.1}}, 0.5)
    0.05
    """
    scores = prediction.get("scores") or {}
    margins = []
    for field_name in LABEL_FIELDS:
        field_scores = scores.get(field_name) or {}
        if not field_scores:
            continue
        chosen = set(prediction.get(field_name) or [])
        inside = [float(p) for label, p in field_scores.items() if label in chosen]
        outside = [float(p) for label, p in field_scores.items() if label not in chosen]
        if inside and outside:
            margins.append((min(inside) - max(outside)) / 2)
        elif inside:  # every scored label was chosen: nothing competed
            margins.append(min(inside) / 2)
        else:
            margins.append((1.0 - max(outside)) / 2)
    if scores.get("kind") is not None:
        margins.append(abs(float(scores["kind"]) - kind_threshold))
    if not margins:
        return math.inf
    return round(min(margins), 6)


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


def highlight(text: str, evidence: Iterable[str | None]) -> Markup:
    """`text` HTML-escaped, with the first occurrence of each evidence string wrapped in <mark>.

    Escaping happens per segment, after the spans are found in the raw text, so evidence can never
    inject markup and offsets stay right. Overlapping spans are merged.
    """
    spans = []
    for piece in evidence:
        if not piece:
            continue
        start = text.find(piece)
        if start >= 0:
            spans.append((start, start + len(piece)))
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, position = [], 0
    for start, end in merged:
        out.append(escape(text[position:start]))
        out.append(Markup("<mark>") + escape(text[start:end]) + Markup("</mark>"))
        position = end
    out.append(escape(text[position:]))
    return Markup("").join(out)


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


# --------------------------------------------------------------------------- storage
# Tables `reviewers` and `reviews` are described in pipeline/store.py. Every save is a new row in
# `reviews`; nothing is ever updated or deleted.


class ReviewError(PipelineError, ValueError):
    """A reviewer account or a review that cannot be stored as given (Dutch message)."""


_hasher = None


def password_hasher():
    """One argon2id PasswordHasher with the library's defaults (RFC 9106 low-memory profile)."""
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def _new_password_hash(password: str, min_password_chars: int) -> str:
    """The argon2 hash of a new password; ReviewError when it is shorter than the minimum."""
    if len(password or "") < min_password_chars:
        raise ReviewError(
            f"wachtwoord te kort: minstens {min_password_chars} tekens / password too short "
            f"(at least {min_password_chars} characters)"
        )
    return password_hasher().hash(password)


def add_reviewer(conn, name: str, password: str, *, min_password_chars: int) -> int:
    """Create a reviewer account; return its pk.

    Raises ReviewError when the name is empty or taken, or the password is shorter than
    `min_password_chars`.
    """
    name = (name or "").strip()
    if not name:
        raise ReviewError("de naam van de beoordelaar is leeg / reviewer name is empty")
    hashed = _new_password_hash(password, min_password_chars)
    with store.transaction(conn):
        if conn.execute("SELECT 1 FROM reviewers WHERE name = ?", (name,)).fetchone():
            raise ReviewError(f"beoordelaar {name!r} bestaat al / reviewer {name!r} already exists")
        cursor = conn.execute(
            "INSERT INTO reviewers (name, password_hash, created_at, active) VALUES (?, ?, ?, 1)",
            (name, hashed, store.now()),
        )
    return cursor.lastrowid


def set_password(conn, name: str, password: str, *, min_password_chars: int) -> None:
    """Give reviewer `name` a new password (and make the account active again).

    Raises ReviewError when the name is unknown or the password is too short.
    """
    name = (name or "").strip()
    hashed = _new_password_hash(password, min_password_chars)
    with store.transaction(conn):
        cursor = conn.execute(
            "UPDATE reviewers SET password_hash = ?, active = 1 WHERE name = ?", (hashed, name)
        )
        if cursor.rowcount == 0:
            raise ReviewError(f"onbekende beoordelaar {name!r} / unknown reviewer")


def list_reviewers(conn) -> list[dict]:
    """Every reviewer account: name, created_at, active, reviews (how many saves)."""
    return [
        dict(row)
        for row in conn.execute(
            "SELECT v.name, v.created_at, v.active, count(r.pk) AS reviews FROM reviewers v "
            "LEFT JOIN reviews r ON r.reviewer_pk = v.pk GROUP BY v.pk ORDER BY v.name"
        )
    ]


def check_password(conn, name: str, password: str) -> bool:
    """True when `name` is an active reviewer and `password` is theirs.

    An unknown name costs the same hashing time as a wrong password, so response times do not tell
    which names exist. A hash made with older parameters is upgraded on a successful login.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = password_hasher()
    row = conn.execute(
        "SELECT pk, password_hash FROM reviewers WHERE name = ? AND active = 1", ((name or "").strip(),)
    ).fetchone()
    stored = row["password_hash"] if row else _dummy_hash()
    try:
        hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        return False
    if row is None:
        return False
    if hasher.check_needs_rehash(stored):
        with store.transaction(conn):
            conn.execute(
                "UPDATE reviewers SET password_hash = ? WHERE pk = ?",
                (hasher.hash(password), row["pk"]),
            )
    return True


def session_fingerprint(conn, name: str | None) -> str | None:
    """A digest of active reviewer `name`'s password hash; None for an unknown or inactive name.

    Stored in the session at login and compared on every request, so a new password
    (`set_password`) or a deactivated account ends every session opened before. The cookie is
    readable by its holder, so it carries this digest, never the hash itself.
    """
    import hashlib

    row = conn.execute(
        "SELECT password_hash FROM reviewers WHERE name = ? AND active = 1", (name or "",)
    ).fetchone()
    if row is None:
        return None
    return hashlib.sha256(row["password_hash"].encode("utf-8")).hexdigest()


def deactivate_reviewer(conn, name: str) -> None:
    """Stop reviewer `name` from logging in (their reviews stay); `set_password` reactivates.

    Raises ReviewError when the name is unknown.
    """
    with store.transaction(conn):
        cursor = conn.execute("UPDATE reviewers SET active = 0 WHERE name = ?", ((name or "").strip(),))
        if cursor.rowcount == 0:
            raise ReviewError(f"onbekende beoordelaar {name!r} / unknown reviewer")


_dummy = None


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None:
        _dummy = password_hasher().hash("geen-account")
    return _dummy


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
    with store.transaction(conn):
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
                store.now(),
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
    prediction = store.latest_predictions(conn, [initiative_pk]).get(initiative_pk) or {}
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


def write_jsonl_atomic(records: Iterable[Mapping], path) -> Path:
    """Write JSON lines to `path` through a temporary file, so training never reads half a file."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- queue and item data


def _status_of(reviews: Sequence[Mapping]) -> str:
    return review_status(latest_per_reviewer(reviews))


def model_queue_items(conn, *, kind_threshold: float) -> list[dict]:
    """Every current initiative with the model's labels and certainty, least certain first.

    The expensive part of the queue (every latest prediction read and scored), without review
    state, so it can be kept while reviewers save (`QueueCache`). Each item: pk, id, naam,
    gemeente, omschrijving, and the model's themes, doelgroepen, kind, replicability, certainty.
    """
    predictions = store.latest_predictions(conn)
    items = []
    for record in store.current_initiatives(conn):
        prediction = predictions.get(record["pk"]) or {}
        items.append(
            {
                "pk": record["pk"],
                "id": record["id"],
                "naam": record["naam"],
                "gemeente": record["gemeente"],
                "omschrijving": record["omschrijving"],
                "themes": list(prediction.get("themes") or []),
                "doelgroepen": list(prediction.get("doelgroepen") or []),
                "kind": prediction.get("kind"),
                "replicability": prediction.get("replicability"),
                "certainty": certainty(prediction, kind_threshold),
            }
        )
    items.sort(key=lambda item: (item["certainty"], item["id"]))
    return items


def with_reviews(model_items: Sequence[Mapping], reviews: Mapping[int, Sequence[Mapping]]) -> list[dict]:
    """`model_items` (new dicts, same order) with the labels in force, status and review count.

    Where a review is in force (`in_force`) its labels replace the model's, as in
    store.catalogue; `reviews` is `all_current_reviews` (initiative pk -> reviews, oldest first).
    """
    out = []
    for item in model_items:
        item_reviews = reviews.get(item["pk"], ())
        current = in_force(item_reviews)
        labels = {}
        if current is not None:
            labels = {
                "themes": list(current["themes"]),
                "doelgroepen": list(current["doelgroepen"]),
                "kind": current["kind"],
                "replicability": current["replicability"]
                if current["replicability"] is not None else item["replicability"],
            }
        out.append({**item, **labels, "status": _status_of(item_reviews),
                    "reviews": len(item_reviews)})
    return out


def queue_items(conn, taxonomy=None, *, kind_threshold: float) -> list[dict]:
    """Every current initiative with what the queue shows and filters on, least certain first.

    Each item: pk, id, naam, gemeente, omschrijving, themes, doelgroepen, kind, replicability (the
    labels in force: the review's if reviewed, else the model's), certainty, status, reviews (count).
    Reads the whole catalogue: the web app keeps the model part in a `QueueCache` instead.
    """
    return with_reviews(model_queue_items(conn, kind_threshold=kind_threshold),
                        all_current_reviews(conn))


def model_signature(conn) -> tuple:
    """A cheap value (one query) that changes whenever `model_queue_items` can: a new initiative
    version or a new prediction. Both tables only ever grow; counts guard against rows deleted by
    hand. Reviews are left out on purpose: they change at every save and are read per request."""
    return tuple(conn.execute(
        "SELECT (SELECT coalesce(max(pk), 0) FROM initiatives), (SELECT count(*) FROM initiatives),"
        " (SELECT coalesce(max(pk), 0) FROM predictions), (SELECT count(*) FROM predictions)"
    ).fetchone())


class QueueCache:
    """The model part of the review queue (`model_queue_items`), kept per app process and rebuilt
    only when `model_signature` changes; the reviews are laid over it per request.

    Reading and scoring every prediction is the slow part (5,000 rows: ~0.4 s); reviews are a
    small table. So opening the queue, or saving and going to the next item, costs one signature
    query and one reviews query while nothing new came in. Safe under the threaded server.
    """

    def __init__(self, *, kind_threshold: float):
        import threading

        self.kind_threshold = kind_threshold
        self._lock = threading.Lock()
        self._signature = None
        self._items: tuple = ()
        self.builds = 0  # how often the model part was read (for tests and benchmarks)

    def model_items(self, conn) -> tuple:
        """The cached `model_queue_items` (read again first when the catalogue changed)."""
        signature = model_signature(conn)  # before reading: a change meanwhile triggers a rebuild
        with self._lock:
            if signature != self._signature:
                self._items = tuple(model_queue_items(conn, kind_threshold=self.kind_threshold))
                self._signature = signature
                self.builds += 1
            return self._items

    def items(self, conn) -> list[dict]:
        """`queue_items` of the catalogue behind `conn`, from the cache."""
        return with_reviews(self.model_items(conn), all_current_reviews(conn))


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters as given in the query string ("" = no filter)."""

    thema: str = ""
    doelgroep: str = ""
    gemeente: str = ""
    soort: str = ""
    score: str = ""
    status: str = "nieuw"

    @classmethod
    def from_args(cls, args: Mapping) -> "QueueFilters":
        status = args.get("status", "nieuw")
        return cls(
            thema=args.get("thema", ""),
            doelgroep=args.get("doelgroep", ""),
            gemeente=args.get("gemeente", ""),
            soort=args.get("soort", ""),
            score=args.get("score", ""),
            status=status if status in STATUSES or status == "alle" else "nieuw",
        )

    def args(self, **changes) -> dict:
        """Non-empty filters as query arguments (status always, so links keep the tab)."""
        values = {**self.__dict__, **changes}
        return {k: v for k, v in values.items() if v}

    def matches(self, item: Mapping, *, with_status: bool = True) -> bool:
        if self.thema and self.thema not in item["themes"]:
            return False
        if self.doelgroep and self.doelgroep not in item["doelgroepen"]:
            return False
        if self.gemeente and item["gemeente"] != self.gemeente:
            return False
        if self.soort and item["kind"] != self.soort:
            return False
        if self.score and str(item["replicability"]) != self.score:
            return False
        if with_status and self.status != "alle" and item["status"] != self.status:
            return False
        return True


def filter_queue(items: Sequence[Mapping], filters: QueueFilters, skipped: Sequence[str] = ()):
    """(matching items with the ones this reviewer skipped last, counts per status under the other
    filters)."""
    counts = {status: 0 for status in STATUSES}
    for item in items:
        if filters.matches(item, with_status=False):
            counts[item["status"]] += 1
    counts["alle"] = sum(counts.values())
    skipped = set(skipped)
    chosen = [item for item in items if filters.matches(item)]
    chosen.sort(key=lambda item: item["id"] in skipped)  # stable: keeps certainty order
    return chosen, counts


# One reading of a replicability reason for every page (the scorer's dicts, older plain strings).
reason_parts = store.reason_parts


def history_rows(reviews: Sequence[Mapping], taxonomy) -> list[dict]:
    """The reviews of an item, newest first, each with what changed against what was shown."""
    rows = []
    for review in reversed(reviews):
        before = labels_of(review["before"] or {})
        after = labels_of(review)
        changes = []
        for field_name in LABEL_FIELDS:
            added = [l for l in after[field_name] if l not in before[field_name]]
            removed = [l for l in before[field_name] if l not in after[field_name]]
            for label in added:
                changes.append(("+", taxonomy.name(field_name, label)))
            for label in removed:
                changes.append(("-", taxonomy.name(field_name, label)))
        if before["kind"] != after["kind"]:
            changes.append(("~", f"soort {KIND_NAMES.get(before['kind'], before['kind'] or '—')} → "
                                 f"{KIND_NAMES.get(after['kind'], after['kind'])}"))
        if before["replicability"] != after["replicability"]:
            changes.append(("~", f"overdraagbaarheid {before['replicability'] or '—'} → "
                                 f"{after['replicability']}"))
        rows.append({**review, "changes": changes})
    return rows


# The store's Dutch kind names, lower case as they stand mid-sentence on the review pages.
KIND_NAMES = {kind: name.lower() for kind, name in store.KIND_NAMES.items()}


# --------------------------------------------------------------------------- web

from flask import (  # noqa: E402  (the web layer sits on top of the core above)
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

auth_blueprint = Blueprint("auth", __name__)
blueprint = Blueprint("review", __name__, url_prefix="/review")
agreement_blueprint = Blueprint("agreement", __name__, url_prefix="/review")

# The session cookie holds the ids a reviewer skipped; browsers cap a cookie at 4 KB, so only the
# most recent ones are kept (older skips simply return to their place in the queue).
MAX_SKIPPED_IN_SESSION = 100


def _settings():
    return current_app.config["SETTINGS"]


def _taxonomy():
    from .config import load_taxonomy

    extensions = current_app.extensions
    if "pipeline_taxonomy" not in extensions:
        extensions["pipeline_taxonomy"] = load_taxonomy(_settings().paths.taxonomy)
    return extensions["pipeline_taxonomy"]


def _db():
    from .web import get_db

    return get_db()


def is_local_path(target: str | None) -> bool:
    """True when `target` is a path on this site ("/review/?status=alle"), never another site.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so "/<tab>/evil"
    and "/<backslash>evil" would become "//evil" (another host): any control character, space or
    backslash is refused, and the rest must parse without scheme or host ("https:evil" has one).
    """
    from urllib.parse import urlsplit

    if not target or "\\" in target or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return False
    parts = urlsplit(target)
    return (not parts.scheme and not parts.netloc and parts.path.startswith("/")
            and not parts.path.startswith("//"))


def _safe_next(target: str | None) -> str:
    """`target` when it is a local path (see `is_local_path`), else the queue."""
    return target if is_local_path(target) else url_for("review.queue")


class LoginThrottle:
    """Failed logins per key within a sliding window (in this server process).

    `blocked(key)` is True once `max_failures` failures fell within `window_seconds`; a success
    clears the key. The login page keys on (name, client address), so someone guessing from one
    place cannot lock the named reviewer out everywhere else. Kept in memory: `pipeline serve` is
    one process, and a restart forgetting the count only gives a guesser one more window.
    """

    def __init__(self, *, max_failures: int, window_seconds: float):
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[str, list[float]] = {}
        import threading

        self._lock = threading.Lock()

    def _recent(self, key, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
        if recent:
            self._failures[key] = recent
        else:  # forget keys whose window passed, so guessed names do not pile up in memory
            self._failures.pop(key, None)
        return recent

    def blocked(self, key) -> bool:
        import time

        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.max_failures

    def failed(self, key) -> None:
        import time

        with self._lock:
            now = time.monotonic()
            self._failures[key] = self._recent(key, now) + [now]

    def succeeded(self, key) -> None:
        with self._lock:
            self._failures.pop(key, None)


def _throttle() -> LoginThrottle:
    extensions = current_app.extensions
    if "pipeline_login_throttle" not in extensions:
        serve = _settings().serve
        extensions["pipeline_login_throttle"] = LoginThrottle(
            max_failures=serve.max_failed_logins,
            window_seconds=serve.failed_login_window_minutes * 60,
        )
    return extensions["pipeline_login_throttle"]


@auth_blueprint.route("/login", methods=["GET", "POST"])
def login():
    from .web import SESSION_FINGERPRINT_KEY, SESSION_USER_KEY

    next_url = request.args.get("next", "")
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        throttle = _throttle()
        # Behind a proxy every client has the proxy's address: then this is per name again.
        key = (name.casefold(), request.remote_addr)
        if throttle.blocked(key):
            minutes = _settings().serve.failed_login_window_minutes
            error = (f"Te veel mislukte pogingen voor deze naam vanaf dit adres. Probeer het over "
                     f"{minutes} minuten opnieuw.")
            return render_template("login.html", error=error, name=name, next_url=next_url), 429
        if check_password(_db(), name, request.form.get("password", "")):
            throttle.succeeded(key)
            session.clear()  # a fresh session at login: no fixation of an earlier cookie
            session.permanent = True
            session[SESSION_USER_KEY] = name
            session[SESSION_FINGERPRINT_KEY] = session_fingerprint(_db(), name)
            return redirect(_safe_next(next_url))
        throttle.failed(key)
        return (
            render_template(
                "login.html", error="Onbekende naam of onjuist wachtwoord.", name=name,
                next_url=next_url,
            ),
            401,
        )
    return render_template("login.html", next_url=next_url, name="")


@auth_blueprint.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash("U bent uitgelogd.", "success")
    return redirect(url_for("auth.login"))


def queue_cache() -> QueueCache:
    """This app's `QueueCache`."""
    extensions = current_app.extensions
    if "pipeline_queue" not in extensions:
        extensions.setdefault(
            "pipeline_queue", QueueCache(kind_threshold=_settings().review.kind_threshold)
        )
    return extensions["pipeline_queue"]


def _queue_context():
    # Once per request: the queue page and save-and-next each need it once.
    if "queue_items" not in g:
        g.queue_items = queue_cache().items(_db())
    return g.queue_items


@blueprint.route("")
@blueprint.route("/")
def queue():
    filters = QueueFilters.from_args(request.args)
    items = _queue_context()
    chosen, counts = filter_queue(items, filters, session.get("skipped", []))
    page_size = _settings().review.queue_page_size
    try:
        page = max(1, int(request.args.get("pagina", 1)))
    except ValueError:
        page = 1
    shown = chosen[(page - 1) * page_size : page * page_size]
    return render_template(
        "review_queue.html",
        items=shown,
        total=len(chosen),
        page=page,
        pages=max(1, math.ceil(len(chosen) / page_size)),
        counts=counts,
        filters=filters,
        taxonomy=_taxonomy(),
        gemeenten=sorted({item["gemeente"] for item in items}),
        statuses=STATUSES,
        kind_names=KIND_NAMES,
        scale=score_scale(_taxonomy()),
        title_chars=_settings().review.title_chars,
        skipped=set(session.get("skipped", [])),
        inf=math.inf,
    )


def _abort_dutch(code: int, text: str):
    """Stop the request with error `code` and this Dutch text on the error page."""
    from werkzeug.exceptions import default_exceptions

    exc = default_exceptions[code](text)
    exc.dutch = True
    raise exc


def _current_record(initiative_id: str) -> dict:
    records = store.current_initiatives(_db(), [initiative_id])
    if not records:
        abort(404)
    return records[0]


_SIMILARITY_LOCK = threading.Lock()


def similar_initiatives(record: Mapping, k: int) -> list[dict]:
    """The `k` current initiatives from other municipalities most like `record`.

    Uses pipeline.group's similarity index (dense e5 + character n-grams, hub-corrected) over the
    current catalogue; the index is kept per app and rebuilt when the catalogue changes.
    """
    from . import group as grouping
    from .embed import encoder_from_config

    conn = _db()
    state = store.max_initiative_pk(conn)
    cache = current_app.extensions.setdefault("pipeline_similarity", {})
    # One rebuild at a time under the threaded server; readers take index and rows as one pair.
    with _SIMILARITY_LOCK:
        if cache.get("state") != state:
            rows = store.current_initiatives(conn)
            if "encoder" not in cache:
                cache["encoder"] = encoder_from_config(_settings().embed)
            index = grouping.SimilarityIndex(
                encoder=cache["encoder"], **grouping.index_params(getattr(_settings(), "group", None))
            )
            cache.update(state=state, index=index.fit(rows), rows={r["id"]: r for r in rows})
        index, rows = cache["index"], cache["rows"]
    if record["id"] not in rows:
        return []
    out = []
    for neighbour in index.nearest(record["id"], k=len(rows)):
        other = rows[neighbour.id]
        if other["gemeente"] == record["gemeente"]:
            continue
        out.append({**other, "similarity": neighbour.similarity})
        if len(out) >= k:
            break
    return out


def _item_context(record: Mapping, *, form_labels: Mapping | None = None, based_on=None,
                  note: str = "", error: str | None = None, conflict_with: Mapping | None = None):
    conn = _db()
    taxonomy = _taxonomy()
    prediction = store.latest_predictions(conn, [record["pk"]]).get(record["pk"]) or {}
    reviews = reviews_of(conn, [record["pk"]])[record["pk"]]
    history = []
    for version in store.initiative_versions(conn, record["id"]):
        version_reviews = reviews if version["pk"] == record["pk"] else reviews_of(
            conn, [version["pk"]])[version["pk"]]
        for row in history_rows(version_reviews, taxonomy):
            history.append({**row, "version": version["version"]})
    history.sort(key=lambda row: row["pk"], reverse=True)
    current = in_force(reviews)
    shown = labels_of(current or prediction)
    if form_labels is not None:
        shown = labels_of(form_labels)
    reasons = [reason_parts(r) for r in prediction.get("replicability_reasons") or []]
    scores = prediction.get("scores") or {}
    try:
        similar = similar_initiatives(record, _settings().review.similar_k)
        similar_error = None
    except PipelineError as exc:  # no encoder available: the page still works without it
        similar, similar_error = [], str(exc)
    return dict(
        record=record,
        prediction=prediction,
        scores=scores,
        shown=shown,
        based_on=(current["pk"] if current else None) if based_on is None else based_on,
        in_force=current,
        reasons=reasons,
        text_html=highlight(record["omschrijving"], [r["bewijs"] for r in reasons]),
        naam_html=highlight(record["naam"] or "", [r["bewijs"] for r in reasons]),
        history=history,
        status=_status_of(reviews),
        similar=similar,
        similar_error=similar_error,
        taxonomy=taxonomy,
        kind_names=KIND_NAMES,
        scale=score_scale(taxonomy),
        title_chars=_settings().review.title_chars,
        score_hint_chars=_settings().review.score_hint_chars,
        note=note,
        error=error,
        conflict_with=conflict_with,
        queue_args=QueueFilters.from_args(request.args).args(),
    )


@blueprint.route("/item/<path:initiative_id>")
def item(initiative_id: str):
    record = _current_record(initiative_id)
    return render_template("review_item.html", **_item_context(record))


def _next_item_id(current_id: str, filters: QueueFilters) -> str | None:
    items = _queue_context()
    chosen, _ = filter_queue(items, filters, session.get("skipped", []))
    for item in chosen:
        if item["id"] != current_id and item["id"] not in session.get("skipped", []):
            return item["id"]
    for item in chosen:  # everything left was skipped: go round again
        if item["id"] != current_id:
            return item["id"]
    return None


def _go_next(current_id: str, filters: QueueFilters):
    next_id = _next_item_id(current_id, filters)
    if next_id is None:
        flash("De wachtrij is leeg voor deze selectie.", "success")
        return redirect(url_for("review.queue", **filters.args()))
    return redirect(url_for("review.item", initiative_id=next_id, **filters.args()))


@blueprint.route("/item/<path:initiative_id>/overslaan", methods=["POST"])
def skip(initiative_id: str):
    skipped = [i for i in session.get("skipped", []) if i != initiative_id] + [initiative_id]
    session["skipped"] = skipped[-MAX_SKIPPED_IN_SESSION:]
    return _go_next(initiative_id, QueueFilters.from_args(request.args))


@blueprint.route("/item/<path:initiative_id>", methods=["POST"])
def save(initiative_id: str):
    from .web import format_time

    form = request.form
    try:
        initiative_pk = int(form["initiative_pk"])
    except (KeyError, ValueError):
        abort(400)
    conn = _db()
    record = conn.execute("SELECT * FROM initiatives WHERE pk = ? AND id = ?",
                          (initiative_pk, initiative_id)).fetchone()
    if record is None:
        abort(404)
    based_on = int(form["based_on"]) if form.get("based_on", "").isdigit() else None
    submitted = {
        "themes": form.getlist("themes"),
        "doelgroepen": form.getlist("doelgroepen"),
        "kind": form.get("kind"),
        "replicability": form.get("replicability"),
    }
    try:
        labels = validate_labels(submitted, _taxonomy())
    except ReviewError as exc:
        current = _current_record(initiative_id)
        context = _item_context(current, form_labels=submitted, based_on=based_on,
                                note=form.get("note", ""), error=str(exc))
        return render_template("review_item.html", **context), 400
    try:
        result = save_review(
            conn,
            initiative_pk=initiative_pk,
            reviewer=g.reviewer,
            labels=labels,
            based_on=based_on,
            note=form.get("note"),
        )
    except ReviewError as exc:  # e.g. the account was deactivated after this request began
        _abort_dutch(409, f"Niet opgeslagen: {exc}.")
    filters = QueueFilters.from_args(request.args)
    skipped = [i for i in session.get("skipped", []) if i != initiative_id]
    session["skipped"] = skipped
    if result.conflict:
        other = result.in_force or {}
        when = format_time(other.get("created_at"), _settings().serve.display_timezone)
        flash(
            f"Let op: {other.get('reviewer', 'een andere beoordelaar')} heeft dit initiatief "
            f"intussen al opgeslagen ({when}). Hieronder staan diens "
            "labels. Uw versie is ook bewaard (als conflict in de geschiedenis); het initiatief "
            "staat nu als betwist tot iemand het opnieuw opslaat.",
            "conflict",
        )
        return redirect(url_for("review.item", initiative_id=initiative_id, **filters.args()))
    if result.stale_version:
        flash("Opgeslagen bij de vorige versie van de tekst; er is intussen een nieuwe versie "
              "binnengekomen. Beoordeel die ook.", "conflict")
        return redirect(url_for("review.item", initiative_id=initiative_id, **filters.args()))
    flash("Opgeslagen.", "success")
    if form.get("then") == "next":
        return _go_next(initiative_id, filters)
    return redirect(url_for("review.item", initiative_id=initiative_id, **filters.args()))


def agreement_pairs(conn) -> list[tuple[Mapping, Mapping, Mapping]]:
    """(item, first reviewer's latest, second reviewer's latest) for every current initiative
    version that two or more reviewers reviewed."""
    reviews = all_current_reviews(conn)
    twice = [rows[0]["initiative_id"] for rows in reviews.values()
             if len(latest_per_reviewer(rows)) >= 2]
    records = {r["pk"]: r for r in store.current_initiatives(conn, twice)} if twice else {}
    out = []
    for pk, item_reviews in sorted(reviews.items()):
        latest = latest_per_reviewer(item_reviews)
        if len(latest) >= 2:
            out.append((records[pk], latest[0], latest[1]))
    return out


@agreement_blueprint.route("/overeenstemming")
def page():
    triples = agreement_pairs(_db())
    rows = agreement([(a, b) for _, a, b in triples], _taxonomy())
    disputed = [
        (record, a, b) for record, a, b in triples if labels_of(a) != labels_of(b)
    ]
    return render_template(
        "review_agreement.html", rows=rows, n_items=len(triples), disputed=disputed,
        taxonomy=_taxonomy(),
    )
