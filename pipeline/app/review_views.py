"""The review pages under /review/: the queue (search, progress towards the weekly goal), an item
with its evidence highlighted and the guide next to every label, saving a review (blind when a
second opinion is needed) and the history. Bulk "model klopt" is in bulk_views.py, the agreement
page in agreement_views.py, the guide page in guide_views.py.
"""
from __future__ import annotations

import math
import re
import sqlite3
import threading
from datetime import datetime, timezone
from typing import Iterable, Mapping

from flask import (
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
from markupsafe import Markup, escape

from pipeline.app.context import format_time, get_db, get_taxonomy
from pipeline.catalogue import readmodel
from pipeline.catalogue.agreement import differences
from pipeline.catalogue.queue import (
    TODO,
    QueueCache,
    QueueFilters,
    QueueLoading,
    filter_queue,
    history_rows,
    week_start,
)
from pipeline.catalogue.reviews import (
    STATUS_NAMES,
    STATUSES,
    blind_for,
    in_force,
    item_status,
    labels_of,
    latest_per_reviewer,
    review_status,
    reviews_of,
    reviews_since,
    save_review,
    score_scale,
    second_opinion_sampled,
    settled_by,
    validate_labels,
)
from pipeline.core.errors import PipelineError, ReviewError
from pipeline.models import group as grouping
from pipeline.models.embed import encoder_from_config


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


# One reading of a replicability reason for every page (the scorer's dicts, older plain strings).
reason_parts = readmodel.reason_parts


# The store's Dutch kind names, lower case as they stand mid-sentence on the review pages.
KIND_NAMES = {kind: name.lower() for kind, name in readmodel.KIND_NAMES.items()}


blueprint = Blueprint("review", __name__, url_prefix="/review")

# The session cookie holds the ids a reviewer skipped; browsers cap a cookie at 4 KB, so only the
# most recent ones are kept (older skips simply return to their place in the queue).
MAX_SKIPPED_IN_SESSION = 100


def strict_int(text: str, max_digits: int = 18) -> int:
    """`text` as a non-negative int: ASCII digits only, at most `max_digits` (fits SQLite's
    64-bit integers). ValueError otherwise ("²", "1e3", 5,000 digits, 2**63)."""
    if not isinstance(text, str) or not re.fullmatch(rf"[0-9]{{1,{max_digits}}}", text.strip()):
        raise ValueError(f"not a number: {text!r:.40}")
    return int(text.strip())


def store_unavailable_text(exc: Exception) -> str:
    """The Dutch message for a catalogue that cannot be written (disk full, read-only)."""
    text = str(exc).lower()
    if "full" in text:
        reason = "de schijf van de server is vol"
    elif "readonly" in text or "read-only" in text:
        reason = "de catalogus is alleen-lezen"
    elif "locked" in text:
        reason = "de catalogus is bezet"
    else:
        reason = "de catalogus kan nu niet worden geschreven"
    return (f"Niet opgeslagen: {reason}. Uw labels en notitie staan hieronder nog; probeer het "
            "over een paar minuten opnieuw of waarschuw de beheerder")


def _settings():
    return current_app.config["SETTINGS"]


def _taxonomy():
    return get_taxonomy()


def _db():

    return get_db()


# How soon the "wachtrij wordt geladen" page asks again (Retry-After and a meta refresh).
LOADING_RETRY_SECONDS = 5


def queue_cache() -> QueueCache:
    """This app's `QueueCache`."""
    extensions = current_app.extensions
    if "pipeline_queue" not in extensions:
        extensions.setdefault(
            "pipeline_queue", QueueCache(kind_threshold=_settings().review.kind_threshold,
                                         share=_settings().review.second_opinion_share)
        )
    return extensions["pipeline_queue"]


def warm_up_queue(app) -> int:
    """Read the model part of the review queue once (`QueueCache`), so the first reviewer after
    `pipeline serve` starts does not wait for every prediction to be read (100,000 rows: ~25 s).
    Returns the number of queue items."""
    with app.test_request_context("/review/"):
        return len(queue_cache().model_items(_db(), wait=True))


@blueprint.errorhandler(QueueLoading)
def queue_loading(exc):
    """The first read of the queue after start is still running: a page that asks again itself,
    instead of a server thread held for the whole read."""
    seconds = LOADING_RETRY_SECONDS
    body = render_template("error.html", code=503, title="De wachtrij wordt geladen", refresh=seconds,
                           text="Kort na het starten leest de server alle voorspellingen in. Deze "
                                f"pagina laadt over {seconds} seconden vanzelf opnieuw; wat u al hebt "
                                "opgeslagen, is bewaard.")
    return body, 503, {"Retry-After": str(seconds)}


def _queue_context():
    # Once per request: the queue page and save-and-next each need it once.
    if "queue_items" not in g:
        g.queue_items = queue_cache().reviewer_items(_db(), g.reviewer)
    return g.queue_items


@blueprint.route("")
@blueprint.route("/")
def queue():
    filters = QueueFilters.from_args(request.args)
    items = _queue_context()
    chosen, counts = filter_queue(items, filters, session.get("skipped", []))
    page_size = _settings().review.queue_page_size
    try:
        page = max(1, strict_int(request.args.get("pagina", "1")))
    except ValueError:
        page = 1
    shown = chosen[(page - 1) * page_size : page * page_size]
    since = week_start(datetime.now(timezone.utc), _settings().serve.display_timezone)
    return render_template(
        "review_queue.html",
        items=shown,
        total=len(chosen),
        page=page,
        pages=max(1, math.ceil(len(chosen) / page_size)),
        counts=counts,
        filters=filters,
        taxonomy=_taxonomy(),
        gemeenten=queue_cache().options(_db()),
        statuses=(TODO, *STATUSES),
        status_names={TODO: "te doen", **STATUS_NAMES},
        todo=sum(item["todo"] for item in items),
        done_this_week=reviews_since(_db(), g.reviewer, since),
        weekly_goal=_settings().review.weekly_goal,
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
    records = readmodel.current_initiatives(_db(), [initiative_id])
    if not records:
        abort(404)
    return records[0]


_SIMILARITY_LOCK = threading.Lock()


def similar_initiatives(record: Mapping, k: int) -> list[dict]:
    """The `k` current initiatives from other municipalities most like `record`.

    Uses pipeline.group's similarity index (dense e5 + character n-grams, hub-corrected) over the
    current catalogue; the index is kept per app and rebuilt when the catalogue changes.
    """

    conn = _db()
    state = readmodel.max_initiative_pk(conn)
    cache = current_app.extensions.setdefault("pipeline_similarity", {})
    # One rebuild at a time under the threaded server; readers take index and rows as one pair.
    with _SIMILARITY_LOCK:
        if cache.get("state") != state:
            rows = readmodel.current_initiatives(conn)
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
    prediction = readmodel.latest_predictions(conn, [record["pk"]]).get(record["pk"]) or {}
    reviews = reviews_of(conn, [record["pk"]])[record["pk"]]
    sampled = second_opinion_sampled(record["id"], _settings().review.second_opinion_share)
    # A blind second opinion: the model's suggestion in the form, the other reviewers' labels
    # (form, history, who is in force) hidden until this reviewer has saved.
    blind = blind_for(reviews, g.reviewer, sampled=sampled)
    history, hidden = [], 0
    for version in readmodel.initiative_versions(conn, record["id"]):
        version_reviews = reviews if version["pk"] == record["pk"] else reviews_of(
            conn, [version["pk"]])[version["pk"]]
        for row in history_rows(version_reviews, taxonomy):
            if blind and row["reviewer"] != g.reviewer:
                hidden += 1
                continue
            history.append({**row, "version": version["version"]})
    history.sort(key=lambda row: row["pk"], reverse=True)
    current = in_force(reviews)
    shown = labels_of(prediction if blind or current is None else current)
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
        in_force=None if blind else current,
        blind=blind,
        hidden_reviews=hidden,
        reasons=reasons,
        text_html=highlight(record["omschrijving"], [r["bewijs"] for r in reasons]),
        naam_html=highlight(record["naam"] or "", [r["bewijs"] for r in reasons]),
        history=history,
        status=item_status(reviews, sampled=sampled),
        status_names=STATUS_NAMES,
        similar=similar,
        similar_error=similar_error,
        taxonomy=taxonomy,
        kind_names=KIND_NAMES,
        scale=score_scale(taxonomy),
        title_chars=_settings().review.title_chars,
        note=note,
        error=error,
        conflict_with=conflict_with,
        queue_args=QueueFilters.from_args(request.args).args(),
    )


@blueprint.route("/item/<initiative_id>")
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
    try:
        next_id = _next_item_id(current_id, filters)
    except QueueLoading:  # after a POST: the loading page must come from a GET it can reload
        return redirect(url_for("review.queue", **filters.args()))
    if next_id is None:
        flash("De wachtrij is leeg voor deze selectie.", "success")
        return redirect(url_for("review.queue", **filters.args()))
    return redirect(url_for("review.item", initiative_id=next_id, **filters.args()))


@blueprint.route("/item/<initiative_id>/overslaan", methods=["POST"])
def skip(initiative_id: str):
    skipped = [i for i in session.get("skipped", []) if i != initiative_id] + [initiative_id]
    session["skipped"] = skipped[-MAX_SKIPPED_IN_SESSION:]
    return _go_next(initiative_id, QueueFilters.from_args(request.args))


@blueprint.route("/item/<initiative_id>", methods=["POST"])
def save(initiative_id: str):

    form = request.form
    try:
        initiative_pk = strict_int(form["initiative_pk"])
    except (KeyError, ValueError):
        abort(400)
    conn = _db()
    record = conn.execute("SELECT * FROM initiatives WHERE pk = ? AND id = ?",
                          (initiative_pk, initiative_id)).fetchone()
    if record is None:
        abort(404)
    try:
        based_on = strict_int(form["based_on"]) if form.get("based_on") else None
    except ValueError:
        abort(400)
    submitted = {
        "themes": form.getlist("themes"),
        "doelgroepen": form.getlist("doelgroepen"),
        "kind": form.get("kind"),
        "replicability": form.get("replicability"),
    }
    note_limit = _settings().review.max_note_chars
    try:
        if len(form.get("note", "")) > note_limit:
            raise ReviewError(f"de notitie is te lang ({len(form.get('note', ''))} tekens, "
                              f"hoogstens {note_limit}); maak haar korter")
        labels = validate_labels(submitted, _taxonomy())
    except ReviewError as exc:
        current = _current_record(initiative_id)
        context = _item_context(current, form_labels=submitted, based_on=based_on,
                                note=form.get("note", ""), error=str(exc))
        return render_template("review_item.html", **context), 400
    # Blind only when the form said so and the item still needs this reviewer's blind opinion:
    # a forged field cannot make a review seen with another's labels count as independent.
    sampled = second_opinion_sampled(initiative_id, _settings().review.second_opinion_share)
    blind = form.get("blind") == "1" and blind_for(
        reviews_of(conn, [initiative_pk])[initiative_pk], g.reviewer, sampled=sampled)
    try:
        result = save_review(
            conn,
            initiative_pk=initiative_pk,
            reviewer=g.reviewer,
            labels=labels,
            based_on=based_on,
            note=form.get("note"),
            blind=blind,
        )
    except ReviewError as exc:  # e.g. the account was deactivated after this request began
        _abort_dutch(409, f"Niet opgeslagen: {exc}.")
    except sqlite3.DatabaseError as exc:  # disk full, read-only catalogue, locked too long
        # The reviewer's labels and note come back in the form: nothing typed is lost.
        context = _item_context(_current_record(initiative_id), form_labels=submitted,
                                based_on=based_on, note=form.get("note", ""),
                                error=store_unavailable_text(exc))
        return render_template("review_item.html", **context), 503
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
    if blind and form.get("then") == "next":
        flash("Opgeslagen als onafhankelijk oordeel.", "success")
    elif blind:
        flash("Opgeslagen. Dit was een onafhankelijk oordeel; de labels van de andere "
              "beoordelaars staan nu in de geschiedenis." + _outcome(conn, initiative_pk), "success")
    else:
        flash("Opgeslagen.", "success")
    if form.get("then") == "next":
        return _go_next(initiative_id, filters)
    return redirect(url_for("review.item", initiative_id=initiative_id, **filters.args()))


def _outcome(conn, initiative_pk: int) -> str:
    """What a blind opinion just did to the item, in one Dutch sentence ("" when all agree)."""
    reviews = reviews_of(conn, [initiative_pk])[initiative_pk]
    decider = settled_by(reviews)
    if decider is not None and decider["reviewer"] == g.reviewer:
        return " De beoordelaars waren het oneens; uw oordeel beslist."
    latest = latest_per_reviewer(reviews)
    if review_status(latest) != "betwist":
        return " U bent het eens met de andere beoordelaars."
    what = "; ".join(d["naam"] for d in differences(latest, _taxonomy()))
    return f" U verschilt van mening ({what}): een derde beoordelaar beslist."
