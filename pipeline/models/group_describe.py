"""What a same-idea group shows people: its id (stable: from the member ids), name, key terms,
cohesion and places.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from pipeline.core.records import Initiative
from pipeline.core.text import lemma_texts, normalise
GROUP_ID_PREFIX = "g-"
GROUP_ID_HEX_CHARS = 12
# A lemma must be this long to be a keyword: shorter ones are mostly OCR debris or abbreviations
# without meaning out of context ("nl", "ca").
MIN_KEYWORD_CHARS = 3


@dataclass(frozen=True)
class Group:
    """A group of two or more initiatives that carry the same idea (the GROUPS.jsonl line)."""

    group_id: str
    members: tuple[str, ...]
    gemeenten: tuple[str, ...]
    naam: str
    kernwoorden: tuple[str, ...]
    cohesie: float

    def to_dict(self) -> dict:
        return {
            "group_id": self.group_id,
            "members": list(self.members),
            "gemeenten": list(self.gemeenten),
            "naam": self.naam,
            "kernwoorden": list(self.kernwoorden),
            "cohesie": round(self.cohesie, 4),
        }


def group_id(members: Sequence[str]) -> str:
    """A stable id for a set of member ids: the same members give the same id in every run."""
    digest = hashlib.sha1("\n".join(sorted(members)).encode("utf-8")).hexdigest()
    return GROUP_ID_PREFIX + digest[:GROUP_ID_HEX_CHARS]


def _gemeenten(initiative: Initiative) -> tuple[str, ...]:
    names = [g for g in initiative.gemeenten if g] or [initiative.gemeente]
    return tuple(name.strip() for name in names if name and name.strip())


def describe_groups(index, member_lists: list[list[int]], *, keywords: int,
                    name_max_words: int) -> list[Group]:
    """Name, keywords, cohesion and municipalities for each group (positions into `index.ids_`)."""
    if not member_lists:
        return []
    lemmas = lemma_texts(index.texts_)
    group_terms = distinctive_terms(lemmas, member_lists, top=keywords)
    grouped = sorted({m for members in member_lists for m in members})
    # One batch through spaCy: a call per name costs more than the whole corpus.
    name_lemmas = dict(zip(grouped, lemma_texts(
        [normalise(index.initiatives_[m].naam or "") for m in grouped])))
    groups = []
    for members, terms in zip(member_lists, group_terms):
        sub = index.similarity_[np.ix_(members, members)]
        pair_mask = ~np.eye(len(members), dtype=bool)
        cohesie = float(sub[pair_mask].mean())
        centrality = sub.sum(axis=1)
        ids = tuple(sorted(index.ids_[m] for m in members))
        gemeenten = tuple(sorted({g for m in members for g in _gemeenten(index.initiatives_[m])}))
        naam = group_name([index.initiatives_[m] for m in members], centrality, terms,
                          name_max_words, [name_lemmas[m] for m in members])
        groups.append(Group(group_id(ids), ids, gemeenten, naam, tuple(terms), cohesie))
    groups.sort(key=lambda g: (-len(g.members), g.members))
    return groups


def distinctive_terms(lemma_docs: Sequence[str], member_lists: list[list[int]], *,
                      top: int) -> list[list[str]]:
    """Top `top` lemmas per group by class-based TF-IDF over groups.

    tf is the share of a group's members that use the lemma (so a keyword is shared, not repeated
    by one text); idf is `log((1 + N) / (1 + df))` over all N input rows, which pushes down words
    every municipality writes ("corona", "inwoners", "willen") without a hand-made list. Lemmas
    shared by two or more members come first; a small group is padded with its members' rarest
    words.
    """
    words = r"(?u)\b[^\W\d_]{%d,}\b" % MIN_KEYWORD_CHARS
    vectorizer = CountVectorizer(binary=True, token_pattern=words)
    try:
        counts = vectorizer.fit_transform(lemma_docs)
    except ValueError:  # no words at all
        return [[] for _ in member_lists]
    vocab = vectorizer.get_feature_names_out()
    n_rows = counts.shape[0]
    df = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log((1 + n_rows) / (1 + df))
    out = []
    for members in member_lists:
        used = np.asarray(counts[members].sum(axis=0)).ravel()
        weight = used / len(members) * idf
        shared = used >= min(2, len(members))
        ranked = sorted(np.flatnonzero(used > 0),
                        key=lambda j: (not shared[j], -weight[j], vocab[j]))
        out.append([str(vocab[j]) for j in ranked[:top]])
    return out


def group_name(members: Sequence[Initiative], centrality: np.ndarray, terms: Sequence[str],
               max_words: int, name_lemmas: Sequence[str] | None = None) -> str:
    """A short Dutch name for a group's idea.

    A member's own naam reads best: among the names of at most `max_words` words, the one that
    shares the most (and highest ranked) of the group's keywords, then the most central member's.
    Only when no member has a usable naam do the keywords make the name ("Noodopvang, kind en
    school"). `name_lemmas` (lemmas of each member's naam) saves lemmatising them here.
    """
    if name_lemmas is None:
        name_lemmas = lemma_texts([normalise(m.naam or "") for m in members])
    keyword_rank = {term: len(terms) - i for i, term in enumerate(terms)}
    best = None
    for member, central, lemmas in zip(members, centrality, name_lemmas):
        naam = normalise(member.naam or "").strip(" .;:")
        if not naam or len(naam.split()) > max_words:
            continue
        overlap = sum(keyword_rank.get(t, 0) for t in set(lemmas.split()))
        key = (overlap, float(central), -len(naam), member.id)
        if best is None or key > best[0]:
            best = (key, naam)
    if best is not None:
        naam = best[1]
        return naam[0].upper() + naam[1:]
    if terms:
        words = list(terms[:3])
        phrase = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " en " + words[-1]
        return phrase[0].upper() + phrase[1:]
    return "Groep zonder naam"
