"""The public search page /zoeken: a thin view over `catalogue.search.SearchIndex`, the index kept
per app and rebuilt only when the catalogue's texts change.
"""
from __future__ import annotations

import re
import threading
from urllib.parse import urlencode
from dataclasses import dataclass

from flask import Blueprint, current_app, g, render_template, request

from pipeline.app.context import get_db, get_taxonomy
from pipeline.catalogue import readmodel
from pipeline.catalogue.readmodel import KIND_NAMES, LABELS_FROM
from pipeline.catalogue.records import catalogue_groups, catalogue_records, excerpt, places
from pipeline.catalogue.search import (
    SearchError,
    SearchFilters,
    SearchIndex,
    _scale_text,
    catalogue_stored_index,
    index_over,
    resolve_kind,
    resolve_label,
    resolve_places,
    resolve_provinces,
    search_encoders,
)
from pipeline.core.municipalities import reference_from_settings

blueprint = Blueprint("search", __name__)

# Query-string names of the filters on /zoeken (Dutch: they show in the address bar).
PARAM_QUERY, PARAM_THEME, PARAM_GROUP, PARAM_PLACE, PARAM_KIND, PARAM_MIN = (
    "q", "thema", "doelgroep", "gemeente", "soort", "min_score")
PARAM_PROVINCE = "provincie"
PARAM_PAGE = "pagina"


@dataclass(frozen=True)
class CatalogueSnapshot:
    """The published records and groups of a catalogue as of `signature`
    (`readmodel.catalogue_signature`). Shared between requests and pages: read, never modify."""

    signature: tuple
    records: list[dict]
    groups: list[dict]


def app_catalogue(conn) -> CatalogueSnapshot:
    """The records and groups of the app's catalogue, reread only when
    `readmodel.catalogue_signature(conn)` (one cheap query) changed since the last request.

    The one cache of catalogue records of a web app: /zoeken and /rapport both read through it.
    """
    cache = current_app.extensions.setdefault("pipeline.catalogue", {"lock": threading.Lock()})
    signature = readmodel.catalogue_signature(conn)
    with cache["lock"]:
        snapshot = cache.get("snapshot")
        if snapshot is None or snapshot.signature != signature:
            reference = reference_from_settings(current_app.config["SETTINGS"])
            snapshot = CatalogueSnapshot(signature, catalogue_records(conn, reference), catalogue_groups(conn))
            cache["snapshot"] = snapshot
        return snapshot


def _app_cache() -> dict:
    """Per-app state of the search page: the encoders, the last index."""
    cache = current_app.extensions.setdefault("pipeline.search", {"lock": threading.Lock()})
    return cache


def current_index(snapshot: CatalogueSnapshot) -> SearchIndex:
    """A SearchIndex over the snapshot's records, made once per catalogue signature. Its ranker
    comes from the index stored beside the catalogue (`catalogue.search_index`), which is
    refitted only when texts were added or changed (not for labels, reviews or groups), and then
    embeds only the new texts."""
    cache = _app_cache()
    with cache["lock"]:
        index = cache.get("index")
        if index is None or index.signature != snapshot.signature:
            settings = current_app.config["SETTINGS"]
            encoders = cache.setdefault("encoders", search_encoders(settings))
            # A review or regroup changes the snapshot, not the texts: the stored index in
            # memory is kept then, not read from disk again.
            stored = catalogue_stored_index(get_db(), current_app.config["DATABASE"], settings,
                                            encoders=encoders, current=cache.get("stored"))
            index = index_over(snapshot.records, stored, settings, signature=snapshot.signature)
            cache.update(index=index, stored=stored, facets={},
                         options=_filter_options(snapshot.records))
        return index


def _filter_options(records) -> tuple[list, list]:
    """The municipalities and provinces the catalogue has rows from, with counts."""
    place_counts, province_counts = {}, {}
    for r in records:
        for code, naam in zip(r["gemeente_codes"], r["gemeenten"]):
            place_counts[(code, naam)] = place_counts.get((code, naam), 0) + 1
        for provincie in r["provincies"]:
            province_counts[provincie] = province_counts.get(provincie, 0) + 1
    place_list = sorted(((code, naam, n) for (code, naam), n in place_counts.items()),
                        key=lambda option: option[1].casefold())
    return place_list, sorted(province_counts.items())


FACET_CACHE_SIZE = 256  # filter combinations whose counts are kept per catalogue state


def _facets(index: SearchIndex, filters: SearchFilters) -> dict:
    """`facet_counts` of the index's records, kept per filter combination (it does not depend on
    the query) until the catalogue changes."""
    cache = _app_cache()
    facets = cache.setdefault("facets", {})
    key = (index.signature, filters)
    counts = facets.get(key)
    if counts is None:
        counts = index.masks().facet_counts(filters)
        if len(facets) >= FACET_CACHE_SIZE:
            facets.pop(next(iter(facets)), None)
        facets[key] = counts
    return counts


def warm_up(app) -> SearchIndex:
    """Load (or build and store) the search index and the query encoder before the first
    visitor, so the first /zoeken after `pipeline serve` starts is as fast as the next."""
    with app.test_request_context("/zoeken"):
        index = current_index(app_catalogue(get_db()))
        index.answers("warm")  # loads the encoder model
        _facets(index, SearchFilters())  # and makes the filter masks
        return index


def filters_from_args(args, taxonomy, reference) -> SearchFilters:
    """SearchFilters from the query string of /zoeken (municipalities as CBS codes or names,
    resolved with `reference`). Raises SearchError for a bad value."""
    def many(name):
        return tuple(v for v in args.getlist(name) if v.strip())

    minimum = args.get(PARAM_MIN, "").strip()
    # ASCII digits only, at most 3: "²".isdigit() is True and int() of 5,000 digits fails.
    if minimum and not re.fullmatch(r"[0-9]{1,3}", minimum):
        raise SearchError(
            f"minimale overdraagbaarheid moet {_scale_text(taxonomy)} zijn, niet {minimum!r}")
    return SearchFilters(
        themes=tuple(resolve_label(taxonomy, "themes", t) for t in many(PARAM_THEME)),
        doelgroepen=tuple(resolve_label(taxonomy, "doelgroepen", d) for d in many(PARAM_GROUP)),
        gemeenten=resolve_places(reference, many(PARAM_PLACE)),
        provincies=resolve_provinces(reference, many(PARAM_PROVINCE)),
        kind=resolve_kind(args.get(PARAM_KIND)),
        min_replicability=int(minimum) if minimum else None,
    ).validate(taxonomy)


@blueprint.get("/zoeken")
def page():
    """The public search page: published rows; model scores and review notes for reviewers only."""

    settings = current_app.config["SETTINGS"]
    taxonomy = get_taxonomy()
    snapshot = app_catalogue(get_db())
    records = snapshot.records
    query = request.args.get(PARAM_QUERY, "").strip()
    error, ideas, total, total_ideas, answered, facets = None, [], 0, 0, True, {}
    reference = reference_from_settings(settings)
    try:
        filters = filters_from_args(request.args, taxonomy, reference)
    except SearchError as exc:
        error, filters = str(exc), SearchFilters()
    limit = settings.search.max_query_chars
    if len(query) > limit:
        error = (f"De zoekvraag is te lang ({len(query)} tekens, hoogstens {limit}). Gebruik een "
                 "paar kernwoorden.")
        query = query[:limit]
    page_number = request.args.get(PARAM_PAGE, "1").strip()
    page_number = int(page_number) if re.fullmatch(r"[0-9]{1,4}", page_number) and int(page_number) > 0 else 1
    per_page = settings.search.limit
    index = current_index(snapshot)
    if error is None:
        # One idea from ten places takes one place on the page ("ook in 9 andere gemeenten").
        ideas, total, total_ideas, answered = index.ideas(
            query, filters, start=(page_number - 1) * per_page, count=per_page)
        facets = _facets(index, filters) if answered else {}
    place_list, province_list = _app_cache()["options"]
    pages = -(-total_ideas // per_page)
    status = 400 if error else 200
    return render_template(
        "search_page.html", query=query, ideas=ideas, total=total, total_ideas=total_ideas,
        answered=answered, facets=facets, error=error, filters=filters,
        taxonomy=taxonomy, place_options=place_list, province_options=province_list,
        n_records=len(records), searched=bool(request.args),
        reasons_shown=settings.search.reasons_shown, is_reviewer=bool(g.get("reviewer")),
        title_chars=settings.search.title_chars, description_chars=settings.search.description_chars,
        kind_names={kind: name.lower() for kind, name in KIND_NAMES.items()},
        labels_from=LABELS_FROM, places=places, excerpt=excerpt,
        page_number=page_number, pages=pages, page_links=_page_links(page_number, pages),
    ), status


def _page_links(page_number: int, pages: int) -> dict:
    """Query strings of the previous and next result pages (None where there is none)."""
    def link(n):
        args = request.args.to_dict(flat=False)
        args[PARAM_PAGE] = [str(n)]
        return "?" + urlencode(args, doseq=True)

    return {"vorige": link(page_number - 1) if page_number > 1 else None,
            "volgende": link(page_number + 1) if page_number < pages else None}
