"""How the search mixes its two channels, chosen on one query set and scored on another.

Two query sets over the labelled corpus:
- guide: the 46 queries of `bench_search.py`, written from the labelling guide; the relevant rows
  are those with the query's label (many per query).
- names: each row's own `naam` as the query, the documents being the descriptions only (the name
  left out of every document); the one relevant row is the row itself. A name says what the
  description says in other words, often with proper nouns: the paraphrase case.

Fusions compared (each over `HybridRanker.channel_scores`): the min-max mix today
(`w * dense + (1 - w) * keyword`, each channel scaled to [0, 1] over the documents), the same mix
over z-scores (each channel standardised over the documents), and weighted reciprocal-rank fusion
(RRF, k = 60). The protocol never scores a choice on the queries it was chosen on: the fusion and
weight are chosen on one set (best MRR) and scored on the other, both ways; dense-only, keyword-only
and today's setting ([search] dense_weight, min-max) are printed beside them on the same queries.

Run: .venv/bin/python bench/bench_search_fusion.py   (a minute with warm embeddings)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import QUERIES, bootstrap_ci, labelled_rows, metrics  # noqa: E402

from pipeline.catalogue.records import records_from_rows  # noqa: E402
from pipeline.core.config import load_settings  # noqa: E402
from pipeline.core.text import model_text  # noqa: E402
from pipeline.catalogue.search import search_encoders  # noqa: E402
from pipeline.models.ranking import HybridRanker  # noqa: E402

WEIGHTS = [round(w, 1) for w in np.linspace(0.0, 1.0, 11)]
RRF_K = 60


def _z(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def _rrf(values: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(values))
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return 1.0 / (RRF_K + ranks)


FUSIONS = {
    "minmax": lambda ch, w: w * ch["dense"] + (1 - w) * ch["keyword"],
    "zscore": lambda ch, w: w * _z(ch["dense_raw"]) + (1 - w) * _z(ch["keyword_raw"]),
    "rrf": lambda ch, w: w * _rrf(ch["dense_raw"]) + (1 - w) * _rrf(ch["keyword_raw"]),
}
# The keyword channel divided by max(best keyword cosine, floor) instead of by its best: a query
# whose words barely occur anywhere (a paraphrase) no longer gets a keyword channel at full scale.
for _floor in (0.1, 0.2, 0.3, 0.4):
    FUSIONS[f"floor{_floor}"] = (lambda f: lambda ch, w: w * ch["dense"] + (1 - w) * (
        ch["keyword_raw"] - ch["keyword_raw"].min()) / max(float(np.ptp(ch["keyword_raw"])), f))(_floor)


def reciprocal_ranks(channels, relevants, fusion: str, weight: float) -> np.ndarray:
    return np.array([metrics(FUSIONS[fusion](ch, weight), rel)[0] for ch, rel in zip(channels, relevants)])


def query_sets(settings):
    rows = labelled_rows(settings)
    records = records_from_rows(rows)
    query_encoder, doc_encoder = search_encoders(settings)  # what `pipeline search` uses

    def ranker(texts):
        return HybridRanker(query_encoder=query_encoder, doc_encoder=doc_encoder,
                            lemmatize=settings.text.lemmatize).fit(texts)

    guide = ranker([model_text(r) for r in records])
    guide_channels = [guide.channel_scores(q) for _, _, q in QUERIES]
    guide_relevant = [np.array([label in r[field] for r in records], dtype=float) for field, label, _ in QUERIES]

    described = [r for r in records if (r.get("naam") or "").strip()]
    bare = ranker([model_text(dict(r, naam=None)) for r in records])
    name_channels = [bare.channel_scores(r["naam"]) for r in described]
    position = {r["id"]: i for i, r in enumerate(records)}
    name_relevant = []
    for r in described:
        relevant = np.zeros(len(records))
        relevant[position[r["id"]]] = 1.0
        name_relevant.append(relevant)
    return {"guide": (guide_channels, guide_relevant), "names": (name_channels, name_relevant)}


def main() -> None:
    settings = load_settings()
    sets = query_sets(settings)
    table = {(name, fusion, w): reciprocal_ranks(*sets[name], fusion, w)
             for name in sets for fusion in FUSIONS for w in WEIGHTS}
    print("MRR per query set, fusion and dense weight (0 = keyword only, 1 = dense only)")
    for name, (channels, _) in sets.items():
        print(f"\n{name} ({len(channels)} queries)")
        print(f"{'fusion':8} " + " ".join(f"{w:>5}" for w in WEIGHTS))
        for fusion in FUSIONS:
            print(f"{fusion:8} " + " ".join(f"{table[(name, fusion, w)].mean():5.3f}" for w in WEIGHTS))

    configured = round(settings.search.dense_weight, 1)
    print("\nchosen on one set, scored on the other (best mean MRR on the choosing set):")
    for choose, score in (("guide", "names"), ("names", "guide")):
        best = max(((f, w) for f in FUSIONS for w in WEIGHTS),
                   key=lambda fw: (table[(choose, *fw)].mean(), fw[0] == "minmax"))
        chosen = table[(score, *best)]
        dense = table[(score, "minmax", 1.0)]
        today = table[(score, "minmax", configured)]
        low, high = bootstrap_ci(chosen - dense)
        print(f"  chosen on {choose}: {best[0]} w={best[1]} -> on {score}: MRR {chosen.mean():.3f}"
              f"  (dense only {dense.mean():.3f}, keyword only {table[(score, 'minmax', 0.0)].mean():.3f},"
              f" today minmax w={configured} {today.mean():.3f}; chosen - dense 95% [{low:+.3f}, {high:+.3f}])")


if __name__ == "__main__":
    main()
