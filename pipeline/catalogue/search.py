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

from pipeline.catalogue import schema
from pipeline.catalogue.readmodel import KIND_NAMES
from pipeline.catalogue.records import catalogue_records, places, with_places
from pipeline.core.config import load_taxonomy
from pipeline.core.municipalities import Reference, reference_from_settings
from pipeline.core.municipalities import key as name_key
from pipeline.core.errors import SearchError
from pipeline.core.text import model_text
from pipeline.models.embed import E5_PREFIXED, encoder_from_config, make_encoder
from pipeline.models.ranking import HybridRanker

# Keys of a record that only logged-in reviewers see (model internals and review notes).
REVIEWER_ONLY_FIELDS = ("label_scores", "model_id", "review_notes", "review_status")
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


@dataclass
class Hit:
    """One search result: the record, its mixed score and the two channel scores behind it."""

    record: dict
    score: float
    dense: float = 0.0
    keyword: float = 0.0

    def to_dict(self, *, reviewer: bool = False, taxonomy=None, reasons_shown: int | None = None) -> dict:
        """A JSON-ready dict: id, score, the record's public fields; reviewer-only fields only
        when `reviewer` is true. With a taxonomy, Dutch label names are added."""
        out = {"id": self.record["id"], "score": round(float(self.score), 4),
               "dense": round(float(self.dense), 4), "keyword": round(float(self.keyword), 4)}
        for key, value in self.record.items():
            if key == "id" or (key in REVIEWER_ONLY_FIELDS and not reviewer):
                continue
            out[key] = value
        if reasons_shown is not None and out.get("reasons"):
            out["reasons"] = list(out["reasons"])[:reasons_shown]
        if taxonomy is not None:
            out["thema_namen"] = [taxonomy.name("themes", t) for t in self.record.get("themes") or ()]
            out["doelgroep_namen"] = [
                taxonomy.name("doelgroepen", d) for d in self.record.get("doelgroepen") or ()
            ]
        return out


@dataclass
class SearchIndex:
    """Published records and a fitted ranker over their texts, built once and queried often."""

    records: list[dict]
    ranker: HybridRanker
    min_dense_similarity: float
    min_keyword_similarity: float
    signature: object = field(default=None, compare=False)

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

    def relevant(self, channels: dict, rows: Sequence[int]) -> bool:
        """Does any of `rows` pass the relevance floor: raw e5 cosine >= min_dense_similarity
        or lemma TF-IDF cosine >= min_keyword_similarity? (Scaled channels cannot say this:
        min-max scaling makes the best row 1 even for a query that matches nothing.)"""
        rows = list(rows)
        if not rows:
            return False
        dense_on = self.ranker.doc_vectors_ is not None and float(self.ranker.dense_weight) > 0
        dense_ok = dense_on and bool(
            (channels["dense_raw"][rows] >= self.min_dense_similarity).any())
        return dense_ok or bool((channels["keyword_raw"][rows] >= self.min_keyword_similarity).any())

    def answers(self, query: str) -> bool:
        """Is any record in the catalogue close enough to `query` (the relevance floor)?
        An empty query always answers (it browses by filters)."""
        query = (query or "").strip()
        if not query:
            return True
        return self.relevant(self.ranker.channel_scores(query), range(len(self.records)))

    def search(self, query: str, filters: SearchFilters | None = None,
               limit: int | None = None) -> list[Hit]:
        """Records matching `filters`, best first for `query`, at most `limit`.

        An empty query lists the matching records by replicability (highest first), then name,
        with score 0: browsing by filters alone is a normal use of the page. A query that no
        record is close to (see `relevant`) gets no hits at all ("geen passende
        initiatieven"), not the least bad rows; when one record passes, all are ranked (the floor
        is a gate, measured in bench/bench_search_floor.py).
        """
        filters = filters or SearchFilters()
        query = (query or "").strip()
        keep = [i for i, r in enumerate(self.records) if filters.matches(r)]
        if query:
            channels = self.ranker.channel_scores(query)
            # The floor asks whether the catalogue answers the query at all; filters then narrow.
            if not self.relevant(channels, range(len(self.records))):
                return []
            mixed = self.ranker.mix(channels)
            # Ties (e.g. keyword-only with no matching word) keep catalogue order: stable sort.
            keep.sort(key=lambda i: -mixed[i])
            hits = [Hit(self.records[i], float(mixed[i]), float(channels["dense"][i]),
                        float(channels["keyword"][i])) for i in keep]
        else:
            keep.sort(key=lambda i: (-(self.records[i].get("replicability") or 0),
                                     (self.records[i].get("naam") or self.records[i]["id"]).casefold()))
            hits = [Hit(self.records[i], 0.0) for i in keep]
        return hits if limit is None else hits[:limit]


@dataclass
class IdeaResult:
    """One idea on a results page: its best-ranked hit and the other hits of its same-idea group
    in ranked order, so one idea sent from ten places takes one place on the page."""

    hit: Hit
    others: list[Hit]

    @property
    def places(self) -> list[str]:
        """The other places of this idea among the hits (the group's other members' places),
        without the best hit's own, in ranked order."""
        own = {p.casefold() for p in places(self.hit.record)}
        seen, out = set(own), []
        for other in self.others:
            for place in places(other.record):
                if place.casefold() not in seen:
                    seen.add(place.casefold())
                    out.append(place)
        return out


def collapse_ideas(hits: Sequence[Hit]) -> list[IdeaResult]:
    """Hits grouped by same-idea group, each group at the rank of its best hit; a hit without a
    group is an idea of its own. Order of `hits` (best first) is kept."""
    results: list[IdeaResult] = []
    by_group: dict[object, IdeaResult] = {}
    for hit in hits:
        group = hit.record.get("group_id")
        if group is not None and group in by_group:
            by_group[group].others.append(hit)
            continue
        result = IdeaResult(hit, [])
        results.append(result)
        if group is not None:
            by_group[group] = result
    return results


FACET_FIELDS = ("themes", "doelgroepen", "gemeenten", "kind")


def facet_counts(records: Sequence[dict], filters: SearchFilters) -> dict[str, dict[str, int]]:
    """Per filter field, how many records each option would give: every other filter applied,
    the field's own filter left out (so the counts say what choosing another option yields).

    Returns {"themes": {id: n}, "doelgroepen": {id: n}, "gemeenten": {place: n}, "kind": {id: n}}.
    """
    cleared = {"themes": (), "doelgroepen": (), "gemeenten": (), "kind": None}
    out: dict[str, dict[str, int]] = {}
    for field_name in FACET_FIELDS:
        others = dataclasses.replace(filters, **{field_name: cleared[field_name]})
        counts: dict[str, int] = {}
        for record in records:
            if not others.matches(record):
                continue
            if field_name == "gemeenten":
                values = places(record)
            elif field_name == "kind":
                values = [record["kind"]] if record.get("kind") else []
            else:
                values = record.get(field_name) or ()
            for value in dict.fromkeys(values):
                counts[value] = counts.get(value, 0) + 1
        out[field_name] = counts
    return out


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


def search_index_from_settings(records: list[dict], settings, *, signature=None) -> SearchIndex:
    """A SearchIndex over `records` with the encoders and weight from configs."""
    embed = settings.embed
    # Documents through the disk cache; queries (anyone's text, from a public page) through a
    # bounded in-memory cache only, so distinct queries never grow a file.
    query_prefix = "query: " if embed.encoder in E5_PREFIXED else embed.prefix
    doc_prefix = settings.search.doc_prefix if embed.encoder in E5_PREFIXED else embed.prefix
    doc_encoder = encoder_from_config(dataclasses.replace(embed, prefix=doc_prefix))
    query_encoder = BoundedQueryEncoder(
        make_encoder(embed.encoder, prefix=query_prefix, model_path=embed.model_path,
                     encoders_dir=str(embed.encoders_dir),
                     cache_path=None, batch_size=embed.batch_size),
        size=settings.search.query_cache_size)
    return SearchIndex.build(records, query_encoder=query_encoder, doc_encoder=doc_encoder,
                             dense_weight=settings.search.dense_weight,
                             lemmatize=settings.text.lemmatize,
                             min_dense_similarity=settings.search.min_dense_similarity,
                             min_keyword_similarity=settings.search.min_keyword_similarity,
                             signature=signature)


def text_signature(records: Sequence[dict]) -> str:
    """Identifies the texts a ranker was fitted on: labels may change, the index need not."""
    digest = hashlib.sha256()
    for record in records:
        for part in (record["id"], record.get("naam") or "", record.get("omschrijving") or ""):
            digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def search_catalogue(settings, query: str, filters: SearchFilters | None = None, *,
                     limit: int | None = None, db_path=None) -> list[Hit]:
    """Search the published rows of the catalogue at `db_path` (default: [store] path).

    Returns hits best first. Raises SearchError for bad filters, StoreError for a bad file.
    """

    taxonomy = load_taxonomy(settings.paths.taxonomy)
    filters = (filters or SearchFilters()).validate(taxonomy)
    db_path = db_path or settings.store.path
    if not Path(db_path).exists():
        raise SearchError(f"catalogus niet gevonden / catalogue not found: {db_path}; "
                          f"vul hem met `pipeline run --inbox DIR` of geef --db PATH")
    conn = schema.connect_from_config(settings.store, db_path)
    try:
        records = catalogue_records(conn, reference_from_settings(settings))
    finally:
        conn.close()
    index = search_index_from_settings(records, settings)
    return index.search(query, filters, limit=limit if limit is not None else settings.search.limit)

