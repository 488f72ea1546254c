"""The review queue: least certain rows first (they teach the next model most), its filters, a
cache of its model part that is read again when initiatives or predictions change (reviews are
laid over it per request), and the history of an item.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from pipeline.core.text import fold
from pipeline.catalogue import readmodel
from pipeline.catalogue.readmodel import KIND_NAMES as _KIND_NAMES
from pipeline.catalogue.records import place_fields, resolved_places

from pipeline.catalogue.schema import LABEL_FIELDS
from pipeline.catalogue.reviews import (
    STATUSES,
    all_current_reviews,
    in_force,
    item_status,
    labels_of,
    second_opinion_sampled,
)

# The queue's own tab: what still needs this reviewer (new items, and second opinions and disputes
# they have not reviewed yet). The default.
TODO = "te_doen"

# The Dutch kind names, lower case as they stand mid-sentence on the review pages.
KIND_NAMES = {kind: name.lower() for kind, name in _KIND_NAMES.items()}



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


def least_certain_first(items: Sequence[Mapping]) -> list:
    """`items` (each with "certainty" and "id") in the queue's order: least certain first, ties
    by id. The one ordering of the queue; bench/bench_label_gain.py measures it against others."""
    return sorted(items, key=lambda item: (item["certainty"], item["id"]))


# --------------------------------------------------------------------------- queue and item data


def model_queue_items(conn, *, kind_threshold: float) -> list[dict]:
    """Every current initiative with the model's labels and certainty, least certain first.

    The expensive part of the queue (every latest prediction read and scored), without review
    state, so it can be kept while reviewers save (`QueueCache`). Each item: pk, id, naam,
    gemeente, omschrijving, and the model's themes, doelgroepen, kind, replicability (also together
    under `model`), certainty.
    """
    predictions = readmodel.latest_predictions(conn)
    items = []
    for record in readmodel.current_initiatives(conn):
        prediction = predictions.get(record["pk"]) or {}
        items.append(
            {
                "pk": record["pk"],
                "id": record["id"],
                "naam": record["naam"],
                "gemeente": record["gemeente"],
                # Resolved at ingest: the filter works on CBS codes ("Den Bosch" is
                # 's-Hertogenbosch), a joint submission is found under each of its places.
                **{key: value for key, value in place_fields(resolved_places(record)).items()
                   if key in ("gemeenten", "gemeente_codes")},
                "omschrijving": record["omschrijving"],
                "themes": list(prediction.get("themes") or []),
                "doelgroepen": list(prediction.get("doelgroepen") or []),
                "kind": prediction.get("kind"),
                "replicability": prediction.get("replicability"),
                "certainty": certainty(prediction, kind_threshold),
            }
        )
        items[-1]["search_text"] = search_text(items[-1])
        # The model's own labels stay under "model" when a review's replace them (blind views).
        items[-1]["model"] = {key: items[-1][key] for key in ("themes", "doelgroepen", "kind",
                                                               "replicability")}
    return least_certain_first(items)


def with_reviews(model_items: Sequence[Mapping], reviews: Mapping[int, Sequence[Mapping]], *,
                 share: float) -> list[dict]:
    """`model_items` (new dicts, same order) with the labels in force, status and review count.

    Where a review is in force (`in_force`) its labels replace the model's, as in
    readmodel.catalogue; `reviews` is `all_current_reviews` (initiative pk -> reviews, oldest first).
    Each item also gets `reviewers` (names, first review first) and
    `sampled` (chosen for a blind second opinion, [review] second_opinion_share `share`).
    """
    out = []
    for item in model_items:
        item_reviews = reviews.get(item["pk"], ())
        sampled = second_opinion_sampled(item["id"], share)
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
        out.append({**item, **labels, "sampled": sampled,
                    "status": item_status(item_reviews, sampled=sampled),
                    "reviewers": tuple(dict.fromkeys(r["reviewer"] for r in item_reviews)),
                    "reviews": len(item_reviews),
                    "in_force_pk": current["pk"] if current is not None else None})
    return out


def for_reviewer(items: Sequence[Mapping], reviewer: str) -> list[dict]:
    """The queue as `reviewer` sees it: on an item that needs their blind opinion (others reviewed
    it, they did not, and it is sampled or disputed: reviews.blind_for) the model's labels instead
    of the reviewers'; `blind` and `todo` (nieuw, or a second opinion or dispute they have not
    reviewed) and `confirmable` (the queue shows the model's labels, so "model klopt" can save
    them) set on every item."""
    out = []
    for item in items:
        mine = reviewer in item["reviewers"]
        blind = bool(item["reviewers"]) and not mine and (item["sampled"] or item["status"] == "betwist")
        todo = item["status"] == "nieuw" or (item["status"] in ("tweede", "betwist") and not mine)
        out.append({**item, **(item["model"] if blind else {}), "blind": blind, "todo": todo,
                    "mine": mine, "confirmable": not mine and (blind or not item["reviewers"])})
    return out


def queue_items(conn, taxonomy=None, *, kind_threshold: float, share: float) -> list[dict]:
    """Every current initiative with what the queue shows and filters on, least certain first.

    Each item: pk, id, naam, gemeente, omschrijving, themes, doelgroepen, kind, replicability (the
    labels in force: the review's if reviewed, else the model's), certainty, status, reviews (count).
    Reads the whole catalogue: the web app keeps the model part in a `QueueCache` instead.
    """
    return with_reviews(model_queue_items(conn, kind_threshold=kind_threshold),
                        all_current_reviews(conn), share=share)


def model_signature(conn) -> tuple:
    """A cheap value (one query) that changes whenever `model_queue_items` can: a new initiative
    version or a new prediction. Both tables only ever grow; counts guard against rows deleted by
    hand. Reviews are left out on purpose: they change at every save and are read per request."""
    return tuple(conn.execute(
        "SELECT (SELECT coalesce(max(pk), 0) FROM initiatives), (SELECT count(*) FROM initiatives),"
        " (SELECT coalesce(max(pk), 0) FROM predictions), (SELECT count(*) FROM predictions)"
    ).fetchone())


class QueueLoading(Exception):
    """The queue is being read for the first time (at 100,000 rows ~25 s); ask again shortly."""


@dataclass(frozen=True)
class _Snapshot:
    signature: tuple
    items: tuple
    unreviewed: tuple  # every item as anyone sees it before its first review
    position: dict     # pk -> index in items
    options: list      # municipality_options(items)


class QueueCache:
    """The model part of the review queue (`model_queue_items`), kept per app process and read
    again only when `model_signature` changes; the reviews are laid over it per request.

    Reading and scoring every prediction is the slow part (5,000 rows: ~0.4 s, 100,000: ~25 s);
    reviews are a small table. So opening the queue, or saving and going to the next item, costs
    one signature query and one reviews query while nothing new came in. Safe under the threaded
    server: one thread at a time reads the catalogue, outside any lock the others need; while it
    does, the others serve the previous snapshot, or, before the first one exists, wait
    (`wait=True`) or raise `QueueLoading`, so no request holds a server thread for a whole read.
    """

    def __init__(self, *, kind_threshold: float, share: float):
        self.kind_threshold = kind_threshold
        self.share = share
        self._build_lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self.builds = 0  # how often the model part was read (for tests and benchmarks)

    def _build(self, conn, signature) -> _Snapshot:
        items = tuple(model_queue_items(conn, kind_threshold=self.kind_threshold))
        # Without reviews an item looks the same to every reviewer, so the per-request work is
        # only the reviewed items (a small share of a large catalogue).
        return _Snapshot(signature=signature, items=items,
                         unreviewed=tuple(for_reviewer(with_reviews(items, {}, share=self.share), "")),
                         position={item["pk"]: i for i, item in enumerate(items)},
                         options=municipality_options(items))

    def _current(self, conn, *, wait: bool = False) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and snapshot.signature == model_signature(conn):
            return snapshot
        if not self._build_lock.acquire(blocking=snapshot is None and wait):
            if snapshot is None:
                raise QueueLoading()
            return snapshot  # another thread reads the new state; the previous one meanwhile
        try:
            # Read inside the lock and before the data: a change during the read shows as a new
            # signature at the next request, and two threads never read for the same change.
            signature = model_signature(conn)
            snapshot = self._snapshot
            if snapshot is None or snapshot.signature != signature:
                snapshot = self._build(conn, signature)
                self._snapshot = snapshot
                self.builds += 1
            return snapshot
        finally:
            self._build_lock.release()

    def model_items(self, conn, *, wait: bool = False) -> tuple:
        """The cached `model_queue_items` (read again first when the catalogue changed)."""
        return self._current(conn, wait=wait).items

    def reviewer_items(self, conn, reviewer: str) -> list[dict]:
        """`for_reviewer(queue_items(...), reviewer)` from the cache: only reviewed items are
        worked out again. The items are shared between requests: read them, do not change them."""
        snapshot = self._current(conn)
        out = list(snapshot.unreviewed)
        for pk, item_reviews in all_current_reviews(conn).items():
            i = snapshot.position.get(pk)
            if i is None:  # reviewed meanwhile and not yet in the cache: next rebuild
                continue
            reviewed = with_reviews([snapshot.items[i]], {pk: item_reviews}, share=self.share)
            out[i] = for_reviewer(reviewed, reviewer)[0]
        return out

    def options(self, conn) -> list[tuple[str, str]]:
        """The cached `municipality_options` of every queue item."""
        return self._current(conn).options


def municipality_options(items: Sequence[Mapping]) -> list[tuple[str, str]]:
    """(value, label) of the queue's municipality filter: each resolved municipality once by CBS
    code and name, then what was sent but did not resolve (a region, "Diverse gemeenten")."""
    resolved, unresolved = {}, set()
    for item in items:
        for code, name in zip(item.get("gemeente_codes", ()), item.get("gemeenten", ())):
            resolved[code] = name
        if not item.get("gemeente_codes"):
            unresolved.add(item["gemeente"])
    return (sorted(resolved.items(), key=lambda pair: pair[1].casefold())
            + [(raw, f"{raw} (geen gemeente)") for raw in sorted(unresolved, key=str.casefold) if raw])


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters as given in the query string ("" = no filter)."""

    thema: str = ""
    doelgroep: str = ""
    gemeente: str = ""   # a CBS code, or the municipality as sent when it did not resolve
    soort: str = ""
    score: str = ""
    status: str = TODO
    q: str = ""  # free text: every word in the name, description or municipality

    @classmethod
    def from_args(cls, args: Mapping) -> "QueueFilters":
        status = args.get("status", TODO)
        return cls(
            q=" ".join(args.get("q", "").split())[:200],
            thema=args.get("thema", ""),
            doelgroep=args.get("doelgroep", ""),
            gemeente=args.get("gemeente", ""),
            soort=args.get("soort", ""),
            score=args.get("score", ""),
            status=status if status in STATUSES or status in (TODO, "alle") else TODO,
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
        if self.gemeente and self.gemeente not in item.get("gemeente_codes", ()) \
                and item["gemeente"] != self.gemeente:
            return False
        if self.soort and item["kind"] != self.soort:
            return False
        if self.score and str(item["replicability"]) != self.score:
            return False
        if self.q:
            text = item.get("search_text") or search_text(item)
            if any(word not in text for word in fold(self.q).split()):
                return False
        if with_status and self.status == TODO:
            return bool(item.get("todo", item["status"] == "nieuw"))
        if with_status and self.status != "alle" and item["status"] != self.status:
            return False
        return True


def search_text(item: Mapping) -> str:
    """What the queue's free-text filter searches in: name, description, municipality and id,
    folded (`pipeline.core.text.fold`). `model_queue_items` keeps it per item, so typing a word does not fold
    every description again."""
    return fold(" ".join(item.get(k) or "" for k in ("naam", "omschrijving", "gemeente", "id")))


def filter_queue(items: Sequence[Mapping], filters: QueueFilters, skipped: Sequence[str] = ()):
    """(matching items with the ones this reviewer skipped last, counts per status under the other
    filters)."""
    counts = {status: 0 for status in STATUSES}
    todo = 0
    for item in items:
        if filters.matches(item, with_status=False):
            counts[item["status"]] += 1
            todo += bool(item.get("todo", item["status"] == "nieuw"))
    counts["alle"] = sum(counts.values())
    counts[TODO] = todo
    skipped = set(skipped)
    chosen = [item for item in items if filters.matches(item)]
    chosen.sort(key=lambda item: item["id"] in skipped)  # stable: keeps certainty order
    return chosen, counts


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


def week_start(now: datetime, timezone: str) -> str:
    """The start of the week (Monday 00:00 in `timezone`, [serve] display_timezone) that `now`
    falls in, as ISO 8601 UTC text like the catalogue's times: the weekly goal counts from it."""
    local = now.astimezone(ZoneInfo(timezone))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday.astimezone(ZoneInfo("UTC")).isoformat(timespec="seconds")

