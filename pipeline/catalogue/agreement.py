"""Agreement between reviewers, over independent (blind) reviews only, with any number of reviewers.

A review counts when it was blind (reviews.blind = 1: the reviewer saw the model's suggestion, not
another reviewer's labels, before saving); per item and reviewer the latest such review. A second
review made on a form pre-filled with the first reviewer's labels would count a plain confirmation
as agreement, so it never counts here.

Pure core: `independent_ratings(reviews_by_item)` (per item: reviewer -> labels, items with two or
more independent reviewers), `label_agreement` (per label), `field_agreement` (per field: themes
and target groups over every item-label decision, kind, replicability) and `pairwise` (per pair of
reviewers). Each gives the share of agreeing pairs of judgements, Cohen's kappa
(sklearn.metrics.cohen_kappa_score: per pair of reviewers over the items both judged, averaged over
the pairs where it is defined) and Krippendorff's alpha (the `krippendorff` package: all reviewers
at once, missing judgements allowed). Yes/no labels and the kind are nominal; replicability is
ordinal (alpha) with quadratic-weighted kappa (a 4 against a 5 weighs less than a 1 against a 5).
`differences(latest, taxonomy)` says what two or more reviewers' labels differ in.

Storage: `ratings_of(conn)` and `disputes(conn, taxonomy, share)` read the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping, Sequence

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from pipeline.catalogue import readmodel
from pipeline.catalogue.reviews import (
    KINDS,
    LABEL_FIELDS,
    all_current_reviews,
    item_status,
    labels_of,
    latest_per_reviewer,
    review_status,
    score_scale,
    second_opinion_sampled,
    settled_by,
)

# One item's independent judgements: reviewer name -> labels (a review row or a labels dict).
Rating = Mapping[str, Mapping]

FIELD_NAMES = {"themes": "Thema's", "doelgroepen": "Doelgroepen", "kind": "Soort (initiatief/signaal)",
               "replicability": "Overdraagbaarheid"}


@dataclass(frozen=True)
class Agreement:
    """Agreement on one label (`label` = its id) or one whole field (`label` = the field name)."""

    field: str
    label: str
    naam: str
    n: int  # items with two or more independent judgements of this label or field
    percent: float | None  # agreeing pairs of judgements of the same item, in percent
    kappa: float | None  # mean pairwise Cohen's kappa; None when undefined for every pair
    alpha: float | None  # Krippendorff's alpha; None when undefined (one answer throughout)
    positives: int  # judgements that said yes (labels only): context for a high percentage
    pairs: int  # reviewer pairs whose kappa is defined (what `kappa` averages)


@dataclass(frozen=True)
class PairAgreement:
    """Two reviewers over the items both judged independently: kappa per field."""

    a: str
    b: str
    n: int
    kappa: dict  # field -> float | None
    percent: dict  # field -> float


def independent_ratings(reviews_by_item: Mapping[int, Sequence[Mapping]]) -> list[tuple[int, Rating]]:
    """Per item (key, oldest review first), each reviewer's latest blind review; only items that
    two or more reviewers judged independently, in key order."""
    out = []
    for key in sorted(reviews_by_item):
        blind = [r for r in reviews_by_item[key] if r.get("blind")]
        by_reviewer = {r["reviewer"]: r for r in blind}  # later reviews replace earlier ones
        if len(by_reviewer) >= 2:
            out.append((key, by_reviewer))
    return out


def _reviewers(ratings: Sequence[Rating]) -> list[str]:
    return sorted({name for rating in ratings for name in rating})


def _units(field_name: str, label: str | None, taxonomy):
    """A function from one review to its judgements (numbers) for this label or field."""
    if field_name in LABEL_FIELDS:
        ids = [label] if label else taxonomy.ids(field_name)
        return lambda review: [float(i in (review.get(field_name) or [])) for i in ids]
    if field_name == "kind":
        return lambda review: [float(KINDS.index(review["kind"])) if review.get("kind") in KINDS
                               else math.nan]
    return lambda review: [math.nan if review.get("replicability") is None
                           else float(review["replicability"])]


def _matrix(ratings: Sequence[Rating], reviewers: Sequence[str], units) -> np.ndarray:
    """reviewers x judgement units (item by item), NaN where a reviewer did not judge."""
    columns = []
    for rating in ratings:
        width = len(units(next(iter(rating.values()))))
        block = np.full((len(reviewers), width), np.nan)
        for row, name in enumerate(reviewers):
            if name in rating:
                block[row] = units(rating[name])
        columns.append(block)
    return np.hstack(columns) if columns else np.empty((len(reviewers), 0))


def _percent(matrix: np.ndarray) -> tuple[float | None, int]:
    """(agreeing pairs of judgements of the same unit in percent, units with a pair)."""
    agree = total = units = 0
    for column in matrix.T:
        values = column[~np.isnan(column)]
        if len(values) < 2:
            continue
        units += 1
        for x, y in combinations(values, 2):
            total += 1
            agree += x == y
    return (float(100.0 * agree / total) if total else None), units


def _alpha(matrix: np.ndarray, level: str) -> float | None:
    values = matrix[~np.isnan(matrix)]
    if len(set(values.tolist())) < 2:
        return None
    try:
        value = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    except ValueError:  # fewer than two values in the pairable units
        return None
    return None if math.isnan(value) else float(value)


def _kappa(a: np.ndarray, b: np.ndarray, weights: str | None) -> float | None:
    if len(a) == 0 or len(set(a.tolist()) | set(b.tolist())) < 2:
        return None
    value = cohen_kappa_score(a, b, weights=weights)
    return None if math.isnan(value) else float(value)


def _pair_kappas(matrix: np.ndarray, weights: str | None) -> list[float]:
    kappas = []
    for i, j in combinations(range(matrix.shape[0]), 2):
        both = ~np.isnan(matrix[i]) & ~np.isnan(matrix[j])
        value = _kappa(matrix[i][both], matrix[j][both], weights)
        if value is not None:
            kappas.append(value)
    return kappas


def _agreement(ratings, taxonomy, field_name, label, naam) -> Agreement:
    matrix = _matrix(ratings, _reviewers(ratings), _units(field_name, label, taxonomy))
    ordinal = field_name == "replicability"
    percent, _ = _percent(matrix)
    kappas = _pair_kappas(matrix, "quadratic" if ordinal else None)
    positives = int(np.nansum(matrix)) if field_name in LABEL_FIELDS else 0
    return Agreement(
        field=field_name, label=label or field_name, naam=naam, n=len(ratings), percent=percent,
        kappa=float(np.mean(kappas)) if kappas else None,
        alpha=_alpha(matrix, "ordinal" if ordinal else "nominal"),
        positives=positives, pairs=len(kappas),
    )


def label_agreement(ratings: Sequence[Rating], taxonomy) -> list[Agreement]:
    """One row per theme and target group (taxonomy order), then kind and replicability; empty
    without items that two reviewers judged independently."""
    if not ratings:
        return []
    rows = [_agreement(ratings, taxonomy, field_name, label.id, label.naam)
            for field_name in LABEL_FIELDS for label in getattr(taxonomy, field_name)]
    return rows + field_agreement(ratings, taxonomy)[len(LABEL_FIELDS):]


def field_agreement(ratings: Sequence[Rating], taxonomy) -> list[Agreement]:
    """Per field: themes and target groups over every (item, label) yes/no decision, kind, and
    replicability (ordinal alpha, quadratic-weighted kappa)."""
    if not ratings:
        return []
    scale = score_scale(taxonomy)
    names = {**FIELD_NAMES, "replicability": f"Overdraagbaarheid ({scale[0]}-{scale[-1]})" if scale
             else FIELD_NAMES["replicability"]}
    return [_agreement(ratings, taxonomy, field_name, None, names[field_name])
            for field_name in (*LABEL_FIELDS, "kind", "replicability")]


def pairwise(ratings: Sequence[Rating], taxonomy) -> list[PairAgreement]:
    """Cohen's kappa and percent agreement per field for every pair of reviewers that judged at
    least one item both, independently."""
    reviewers = _reviewers(ratings)
    out = []
    for a, b in combinations(reviewers, 2):
        shared = [{a: r[a], b: r[b]} for r in ratings if a in r and b in r]
        if not shared:
            continue
        kappa, percent = {}, {}
        for field_name in (*LABEL_FIELDS, "kind", "replicability"):
            matrix = _matrix(shared, [a, b], _units(field_name, None, taxonomy))
            both = ~np.isnan(matrix[0]) & ~np.isnan(matrix[1])
            weights = "quadratic" if field_name == "replicability" else None
            kappa[field_name] = _kappa(matrix[0][both], matrix[1][both], weights)
            percent[field_name] = _percent(matrix)[0]
        out.append(PairAgreement(a=a, b=b, n=len(shared), kappa=kappa, percent=percent))
    return out


def differences(latest: Sequence[Mapping], taxonomy) -> list[dict]:
    """What the reviewers' latest labels (`latest`, each with "reviewer") differ in, in Dutch:
    per label on which they differ {"naam", "ja": [names], "nee": [names]}; for kind and
    replicability {"naam", "values": [(name, value as shown)]}."""
    out = []
    for field_name in LABEL_FIELDS:
        for label in getattr(taxonomy, field_name):
            yes = [r["reviewer"] for r in latest if label.id in (r.get(field_name) or [])]
            if yes and len(yes) < len(latest):
                no = [r["reviewer"] for r in latest if r["reviewer"] not in yes]
                kind = "thema" if field_name == "themes" else "doelgroep"
                out.append({"naam": f"{kind} {label.naam}", "ja": yes, "nee": no})
    kind_names = {k: v.lower() for k, v in readmodel.KIND_NAMES.items()}
    for field_name, naam in (("kind", "soort"), ("replicability", "overdraagbaarheid")):
        if len({r.get(field_name) for r in latest}) > 1:
            values = [(r["reviewer"], kind_names.get(r.get(field_name), r.get(field_name))
                       if field_name == "kind" else r.get(field_name)) for r in latest]
            out.append({"naam": naam, "values": values})
    return out


# --------------------------------------------------------------------------- storage


def ratings_of(conn) -> list[tuple[int, Rating]]:
    """`independent_ratings` of every current initiative version in the catalogue."""
    return independent_ratings(all_current_reviews(conn))


def disputes(conn, taxonomy, *, share: float) -> list[dict]:
    """Every current item whose reviewers' latest labels differ, oldest first: {"record",
    "differences", "status" ("betwist", or "beoordeeld" when decided), "decided_by" (the third
    reviewer's name or None), "reviewers"}."""
    reviews = all_current_reviews(conn)
    found = {pk: rows for pk, rows in reviews.items()
             if review_status(latest_per_reviewer(rows)) == "betwist"}
    ids = [rows[0]["initiative_id"] for rows in found.values()]
    records = {r["pk"]: r for r in readmodel.current_initiatives(conn, ids)} if ids else {}
    out = []
    for pk in sorted(found):
        rows = found[pk]
        latest = latest_per_reviewer(rows)
        decider = settled_by(rows)
        out.append({
            "record": records[pk],
            "differences": differences(latest, taxonomy),
            "status": item_status(rows, sampled=second_opinion_sampled(records[pk]["id"], share)),
            "decided_by": decider["reviewer"] if decider else None,
            "reviewers": [r["reviewer"] for r in latest],
            "labels": {r["reviewer"]: labels_of(r) for r in latest},
        })
    return out
