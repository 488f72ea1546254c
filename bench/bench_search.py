"""Search quality: keyword-only against dense-only against their mix, on the labelled corpus.

Queries are written from the label descriptions of the labelling guide, phrased as a policy officer
would type them (not copied from any row). The relevant rows for a query are the labelled rows
(data/labelled/*.jsonl, review rows over seed rows) that carry the query's label. For each ranking
we print mean reciprocal rank (MRR: where the first relevant row lands), nDCG@10 (how full of
relevant rows the first page is) and mean average precision over all rows.

Compared: the dense-channel document prefix ("query: " vs "passage: " for e5), the keyword channel
over lemmas vs plain words, and the mix weight over a grid. The setting with the best mean of the three measures is
the one to put in configs/pipeline.toml [search] (doc_prefix, dense_weight).

Run: .venv/bin/python bench/bench_search.py   (about a minute; embeddings come from the cache,
the "passage: " vectors are computed once, ~10 s, then cached too)
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.core.config import load_settings
from pipeline.models.embed import encoder_from_config
from pipeline.models.ranking import HybridRanker
from pipeline.core.text import model_text
from pipeline.catalogue.records import records_from_rows
from pipeline.catalogue.search import search_encoders

# (field, label id, query). One or two per label, in the words of a policy officer.
QUERIES: list[tuple[str, str, str]] = [
    ("themes", "eenzaamheid", "eenzame mensen die niemand meer zien"),
    ("themes", "eenzaamheid", "contact houden met geïsoleerde inwoners"),
    ("themes", "schulden", "hulp bij schulden en betalingsachterstanden"),
    ("themes", "schulden", "armoede en geldproblemen voorkomen"),
    ("themes", "werk_inkomen", "uitkering aanvragen en regels versoepelen"),
    ("themes", "werk_inkomen", "mensen helpen een nieuwe baan te vinden"),
    ("themes", "onderwijs", "leerlingen met achterstand door thuisonderwijs"),
    ("themes", "onderwijs", "kinderen die niet meer naar school komen"),
    ("themes", "opvoeding_jeugdhulp", "steun voor ouders bij de opvoeding"),
    ("themes", "opvoeding_jeugdhulp", "jeugdzorg doorzetten tijdens de crisis"),
    ("themes", "huiselijk_geweld", "geweld achter de voordeur signaleren"),
    ("themes", "huiselijk_geweld", "kinderen onveilig thuis"),
    ("themes", "gezondheid_zorg", "psychische klachten en mentale gezondheid"),
    ("themes", "gezondheid_zorg", "dagactiviteiten voor mensen met dementie"),
    ("themes", "wonen_opvang", "daklozen een slaapplek bieden"),
    ("themes", "wonen_opvang", "uitzetting uit huurwoning voorkomen"),
    ("themes", "voedsel_basis", "eten voor gezinnen die het niet kunnen betalen"),
    ("themes", "voedsel_basis", "pakketten met boodschappen rondbrengen"),
    ("themes", "informatie_toegang", "één nummer waar inwoners terecht kunnen met vragen"),
    ("themes", "informatie_toegang", "voorlichting voor mensen die de weg niet kennen"),
    ("themes", "digitaal", "computers en internet voor wie dat niet heeft"),
    ("themes", "digitaal", "hulp via beeldbellen en online"),
    ("themes", "vrijwillige_inzet", "buren die elkaar helpen"),
    ("themes", "vrijwillige_inzet", "vrijwilligers koppelen aan hulpvragen"),
    ("themes", "sport_vrije_tijd", "sporten en spelen in de zomervakantie"),
    ("themes", "sport_vrije_tijd", "culturele activiteiten voor kinderen"),
    ("themes", "samenwerking", "gemeente en partners werken samen in één aanpak"),
    ("themes", "samenwerking", "integrale samenwerking tussen zorg en veiligheid"),
    ("doelgroepen", "ouderen", "ouderen die alleen thuis wonen"),
    ("doelgroepen", "jongeren", "jongvolwassenen die hun weg kwijt zijn"),
    ("doelgroepen", "jongeren", "jongerenwerk in de wijk"),
    ("doelgroepen", "kinderen", "basisschoolleerlingen en kinderopvang"),
    ("doelgroepen", "gezinnen", "alleenstaande moeders en gezinnen met veel problemen"),
    ("doelgroepen", "financieel_kwetsbaar", "huishoudens met een laag inkomen"),
    ("doelgroepen", "financieel_kwetsbaar", "minima die rood staan"),
    ("doelgroepen", "ondernemers", "zelfstandigen die hun inkomen kwijt zijn"),
    ("doelgroepen", "ondernemers", "steun voor de kleine ondernemer"),
    ("doelgroepen", "werkzoekenden", "mensen die hun baan verloren"),
    ("doelgroepen", "dak_thuislozen", "mensen zonder vaste woonplek"),
    ("doelgroepen", "beperking_ggz", "mensen met een verstandelijke beperking"),
    ("doelgroepen", "beperking_ggz", "cliënten van de ggz"),
    ("doelgroepen", "mantelzorgers", "ontlasten van mantelzorgers"),
    ("doelgroepen", "slachtoffers_geweld", "slachtoffers van mishandeling"),
    ("doelgroepen", "migranten_anderstaligen", "nieuwkomers die slecht Nederlands spreken"),
    ("doelgroepen", "migranten_anderstaligen", "laaggeletterde inwoners en statushouders"),
    ("doelgroepen", "alle_inwoners", "iets voor alle bewoners van de wijk"),
]
WEIGHTS = [round(w, 1) for w in np.linspace(0.0, 1.0, 11)]
NDCG_AT = 10


def labelled_rows(settings) -> list[dict]:
    """Labelled rows, a later file's row (review) replacing an earlier one (seed) with the same id."""
    import json

    files = sorted(Path(settings.paths.labelled).glob("*.jsonl"), key=lambda p: p.name != "seed.jsonl")
    rows: dict[str, dict] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return list(rows.values())


def metrics(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float, float]:
    """Reciprocal rank, nDCG@10 and average precision of one ranking (ties broken by row order)."""
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    ranks = np.flatnonzero(hits) + 1
    rr = 1.0 / ranks[0] if ranks.size else 0.0
    gains = hits[:NDCG_AT] / np.log2(np.arange(2, min(NDCG_AT, len(hits)) + 2))
    ideal = 1.0 / np.log2(np.arange(2, min(NDCG_AT, int(relevant.sum())) + 2))
    ndcg = float(gains.sum() / ideal.sum()) if ideal.size else 0.0
    ap = float(np.mean(np.arange(1, ranks.size + 1) / ranks)) if ranks.size else 0.0
    return rr, ndcg, ap


def per_query_rr(channels: list[dict], relevants: list[np.ndarray], weight: float) -> np.ndarray:
    return np.array([metrics(weight * ch["dense"] + (1 - weight) * ch["keyword"], rel)[0]
                     for ch, rel in zip(channels, relevants)])


def bootstrap_ci(differences: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean of paired per-query differences, resampling queries."""
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (n, len(differences)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate(channels: list[dict], relevants: list[np.ndarray], weight: float) -> np.ndarray:
    out = [metrics(weight * ch["dense"] + (1 - weight) * ch["keyword"], rel)
           for ch, rel in zip(channels, relevants)]
    return np.mean(out, axis=0)


def main() -> None:
    settings = load_settings()
    rows = labelled_rows(settings)
    records = records_from_rows(rows)
    texts = [model_text(r) for r in records]
    relevants = [np.array([label in r[field] for r in records], dtype=float) for field, label, _ in QUERIES]
    print(f"{len(QUERIES)} queries over {len(records)} labelled rows; "
          f"{np.mean([r.sum() for r in relevants]):.1f} relevant rows per query on average")

    query_encoder, _ = search_encoders(settings)  # [search] query_encoder, as `pipeline search`
    results, per_query = {}, {}
    for doc_prefix in ("query: ", "passage: "):
        doc_encoder = encoder_from_config(dataclasses.replace(settings.embed, prefix=doc_prefix))
        for lemmatize in (True, False):
            start = time.perf_counter()
            ranker = HybridRanker(query_encoder=query_encoder, doc_encoder=doc_encoder,
                                  dense_weight=0.5, lemmatize=lemmatize).fit(texts)
            channels = [ranker.channel_scores(q) for _, _, q in QUERIES]
            elapsed = time.perf_counter() - start
            for weight in WEIGHTS:
                results[(doc_prefix, lemmatize, weight)] = evaluate(channels, relevants, weight)
                per_query[(doc_prefix, lemmatize, weight)] = per_query_rr(channels, relevants, weight)
            print(f"  docs {doc_prefix!r:12} lemmas={lemmatize!s:5}: index + {len(QUERIES)} queries "
                  f"in {elapsed:.1f} s")

    # Random ranking as the floor: expected MRR of a shuffled list, averaged over a few shuffles.
    rng = np.random.default_rng(0)
    floor = np.mean([[metrics(rng.random(len(records)), rel) for rel in relevants] for _ in range(20)],
                    axis=(0, 1))

    print()
    print("weight = share of the dense channel (0 = keyword-only, 1 = dense-only)")
    header = f"{'docs':10} {'lemmas':6} " + " ".join(f"{w:>5}" for w in WEIGHTS)
    for name, index in (("MRR", 0), (f"nDCG@{NDCG_AT}", 1), ("MAP", 2)):
        print(f"\n{name}  (random ranking: {floor[index]:.3f})")
        print(header)
        for doc_prefix in ("query: ", "passage: "):
            for lemmatize in (True, False):
                cells = " ".join(f"{results[(doc_prefix, lemmatize, w)][index]:5.3f}" for w in WEIGHTS)
                print(f"{doc_prefix.strip():10} {lemmatize!s:6} {cells}")

    # Chosen on the mean of the three measures: MRR alone over ~50 queries moves by a whole
    # query's first hit, while nDCG@10 and MAP look at every relevant row.
    best = max(results, key=lambda k: float(np.mean(results[k])))
    doc_prefix, lemmatize, weight = best
    keyword = results[(doc_prefix, lemmatize, 0.0)]
    dense = results[(doc_prefix, lemmatize, 1.0)]
    mix = results[best]
    print(f"\nbest: docs {doc_prefix!r}, lemmas={lemmatize}, dense_weight={weight}")
    for name, index in (("MRR", 0), (f"nDCG@{NDCG_AT}", 1), ("MAP", 2)):
        print(f"  {name:8} keyword-only {keyword[index]:.3f}   dense-only {dense[index]:.3f}   "
              f"mix {mix[index]:.3f}   (mix / keyword-only = {mix[index] / keyword[index]:.2f}x)")
    for name, baseline in (("keyword-only", 0.0), ("dense-only", 1.0)):
        low, high = bootstrap_ci(per_query[best] - per_query[(doc_prefix, lemmatize, baseline)])
        print(f"  MRR gain of the mix over {name}: 95% interval over queries [{low:+.3f}, {high:+.3f}]")
    worst = np.argsort(per_query[best], kind="stable")[:5]
    print("  hardest queries for the mix (reciprocal rank of the first relevant row):")
    for i in worst:
        field, label, query = QUERIES[i]
        print(f"    {per_query[best][i]:.2f}  {query!r} ({field}={label})")
    configured = results.get((settings.search.doc_prefix, settings.text.lemmatize,
                              round(settings.search.dense_weight, 1))) if hasattr(settings, "search") else None
    if configured is not None:
        print(f"  configured (docs {settings.search.doc_prefix!r}, dense_weight "
              f"{settings.search.dense_weight}): MRR {configured[0]:.3f}, nDCG@{NDCG_AT} {configured[1]:.3f}")

    print()
    latency(settings, records)


def latency(settings, records: list[dict], copies: int = 8) -> None:
    """Index build and per-query time for the corpus and for `copies` times the corpus (texts
    repeated under new ids: their embeddings come from the cache, lemmas and TF-IDF are real work)."""
    from pipeline.catalogue.search import search_index_from_settings

    for n_copies in (1, copies):
        rows = [dict(r, id=f"{r['id']}-{k}") for k in range(n_copies) for r in records]
        start = time.perf_counter()
        index = search_index_from_settings(rows, settings)
        built = time.perf_counter() - start
        start = time.perf_counter()
        for _, _, query in QUERIES:
            index.search(query, limit=settings.search.limit)
        per_query = (time.perf_counter() - start) / len(QUERIES)
        print(f"latency: {len(rows):5d} rows: index built in {built:.2f} s (cached embeddings), "
              f"{per_query * 1000:.1f} ms per query (query embedding cached after first run)")


if __name__ == "__main__":
    main()
