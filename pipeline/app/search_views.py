"""The public search page /zoeken: a thin view over `catalogue.search.SearchIndex`, the index kept
per app and rebuilt only when the catalogue's texts change.
"""
from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass

from flask import Blueprint, current_app, g, render_template, request

from pipeline.app.context import get_db
from pipeline.catalogue import readmodel
from pipeline.catalogue.readmodel import KIND_NAMES, LABELS_FROM
from pipeline.catalogue.records import catalogue_groups, catalogue_records, excerpt, places
from pipeline.catalogue.search import (
    SearchError,
    SearchFilters,
    SearchIndex,
    _scale_text,
    collapse_ideas,
    facet_counts,
    resolve_kind,
    resolve_label,
    resolve_places,
    resolve_provinces,
    search_index_from_settings,
    text_signature,
)
from pipeline.core.config import load_taxonomy
from pipeline.core.municipalities import reference_from_settings

blueprint = Blueprint("search", __name__)

# Query-string names of the filters on /zoeken (Dutch: they show in the address bar).
PARAM_QUERY, PARAM_THEME, PARAM_GROUP, PARAM_PLACE, PARAM_KIND, PARAM_MIN = (
    "q", "thema", "doelgroep", "gemeente", "soort", "min_score")
PARAM_PROVINCE = "provincie"


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
    """Per-app state of the search page: the taxonomy and the last fitted ranker."""
    cache = current_app.extensions.setdefault("pipeline.search", {"lock": threading.Lock()})
    if "taxonomy" not in cache:
        cache["taxonomy"] = load_taxonomy(current_app.config["SETTINGS"].paths.taxonomy)
    return cache


def current_index(snapshot: CatalogueSnapshot) -> SearchIndex:
    """A SearchIndex over the snapshot's records. The ranker is refitted only when the texts
    changed (new or changed initiatives), not when labels or reviews changed; the texts are
    compared only when the catalogue signature moved."""
    cache = _app_cache()
    with cache["lock"]:
        index = cache.get("index")
        if cache.get("catalogue_signature") != snapshot.signature:
            texts = text_signature(snapshot.records)
            if index is None or index.signature != texts:
                index = search_index_from_settings(snapshot.records,
                                                   current_app.config["SETTINGS"], signature=texts)
            cache.update(index=index, catalogue_signature=snapshot.signature)
    return dataclasses.replace(index, records=snapshot.records)


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
    taxonomy = _app_cache()["taxonomy"]
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
    if error is None:
        index = current_index(snapshot)
        all_hits = index.search(query, filters)
        # One idea from ten places takes one place on the page ("ook in 9 andere gemeenten").
        all_ideas = collapse_ideas(all_hits)
        total, total_ideas, ideas = len(all_hits), len(all_ideas), all_ideas[: settings.search.limit]
        answered = bool(all_hits) or index.answers(query)
        facets = facet_counts(records, filters) if answered else {}
    # Filter options: the municipalities and provinces the catalogue has rows from, with counts.
    place_counts, province_counts = {}, {}
    for r in records:
        for code, naam in zip(r["gemeente_codes"], r["gemeenten"]):
            place_counts[(code, naam)] = place_counts.get((code, naam), 0) + 1
        for provincie in r["provincies"]:
            province_counts[provincie] = province_counts.get(provincie, 0) + 1
    place_list = sorted(((code, naam, n) for (code, naam), n in place_counts.items()),
                        key=lambda option: option[1].casefold())
    province_list = sorted(province_counts.items())
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
    ), status
