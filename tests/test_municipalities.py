"""Municipality values resolved to CBS codes: a tiny reference written here, and the real one
for the corpus."""
from __future__ import annotations

import json

import pytest

from pipeline.core.config import load_settings
from pipeline.core.municipalities import (EXACT, FUZZY, REGION, SPELLING, SUCCESSOR, UNRESOLVED,
                                          load_reference, reference_from_settings)

MUNICIPALITIES = """code,naam,provincie,alternatieven
GM0363,Amsterdam,Noord-Holland,
GM0796,'s-Hertogenbosch,Noord-Brabant,Den Bosch|s-Hertogenbosch
GM0758,Breda,Noord-Brabant,
GM0848,Son en Breugel,Noord-Brabant,
GM0820,"Nuenen, Gerwen en Nederwetten",Noord-Brabant,Nuenen
GM0373,Bergen (NH.),Noord-Holland,Bergen (NH)
GM0893,Bergen (L.),Limburg,Bergen (L)
GM1980,Dijk en Waard,Noord-Holland,
GM0405,Hoorn,Noord-Holland,
GM0484,Alphen aan den Rijn,Zuid-Holland,Alphen a/d Rijn
GM0546,Leiden,Zuid-Holland,
GM0757,Boxtel,Noord-Brabant,
GM0855,Tilburg,Noord-Brabant,
"""
MERGED = """oude_naam,nieuwe_naam,nieuwe_code,jaar
Heerhugowaard,Dijk en Waard,GM1980,2022
Weesp,Amsterdam,GM0363,2022
Haaren,Boxtel,GM0757,2021
Haaren,Tilburg,GM0855,2021
"""
TERMS = """term,soort
regio,regio
West-Friesland,regio
diverse,groep
meer gemeenten,groep
"""


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    for name, text in (("g.csv", MUNICIPALITIES), ("m.csv", MERGED), ("t.csv", TERMS)):
        (folder / name).write_text(text, encoding="utf-8")
    return load_reference(str(folder / "g.csv"), str(folder / "m.csv"), str(folder / "t.csv"), 83.0)


def codes(ref, value):
    return [p.code for p in ref.resolve(value) if p.code]


def test_den_bosch_and_s_hertogenbosch_are_one_place(ref):
    for value in ("'s-Hertogenbosch", "Den Bosch", "s Hertogenbosch", "den bosch", "'S-HERTOGENBOSCH"):
        assert codes(ref, value) == ["GM0796"], value
    assert ref.resolve("'s-Hertogenbosch")[0].how == EXACT
    assert ref.resolve("Den Bosch")[0].how == SPELLING


def test_old_name_resolves_to_its_successor_and_keeps_the_old_name(ref):
    [place] = ref.resolve("Heerhugowaard")
    assert (place.how, place.code, place.naam, place.old_name) == (SUCCESSOR, "GM1980", "Dijk en Waard",
                                                                   "Heerhugowaard")
    assert place.text == "Heerhugowaard"
    # a split municipality: every receiving municipality
    assert codes(ref, "Haaren") == ["GM0757", "GM0855"]


def test_typos_above_the_cut_off_are_fuzzy_below_are_unresolved(ref):
    [place] = ref.resolve("Amsterdm")
    assert (place.how, place.code) == (FUZZY, "GM0363") and place.score >= 83
    [typo_of_old] = ref.resolve("Heerhugowaart")
    assert (typo_of_old.code, typo_of_old.old_name) == ("GM1980", "Heerhugowaard")
    assert ref.resolve("Xyzzystad")[0].how == UNRESOLVED
    assert ref.resolve("Amsterdm", fuzzy_cutoff=99)[0].how == UNRESOLVED


def test_regions_and_groups_are_never_municipalities(ref):
    for value, how in (("Breda (regio)", REGION), ("West friesland", REGION), ("Diverse", UNRESOLVED),
                       ("Diverse gemeenten", UNRESOLVED), ("Meer gemeenten", UNRESOLVED)):
        places = ref.resolve(value)
        assert [(p.how, p.code) for p in places] == [(how, None)], value
        assert places[0].text == value
    # "Bergen" is two municipalities: no guess
    assert codes(ref, "Bergen") == []


def test_joint_submissions_are_split_but_names_with_separators_stay_whole(ref):
    assert codes(ref, "Amsterdam, Breda en Leiden") == ["GM0363", "GM0758", "GM0546"]
    assert codes(ref, "Hoorn/West friesland") == ["GM0405"]
    assert [p.how for p in ref.resolve("Hoorn/West friesland")] == [EXACT, REGION]
    assert codes(ref, "Son en Breugel, Breda") == ["GM0848", "GM0758"]
    assert codes(ref, "Nuenen, Gerwen en Nederwetten") == ["GM0820"]
    assert codes(ref, "Alphen a/d Rijn / Leiden") == ["GM0484", "GM0546"]
    places = ref.resolve("Amsterdam, Leiden en ...")
    assert [p.code for p in places] == ["GM0363", "GM0546", None]


def test_a_row_keeps_the_text_as_sent_and_warns_per_value(ref):
    placement = ref.resolve_row("Breda (regio)", ["Breda"])
    assert placement.codes == ("GM0758",)
    assert [(p.field, p.text, p.how) for p in placement.places] == [
        ("gemeente", "Breda (regio)", REGION), ("gemeenten", "Breda", EXACT)]
    assert len(placement.warnings) == 1 and "'Breda (regio)' is een regio" in placement.warnings[0]
    # the reader fills `gemeenten` with `gemeente` when a sender leaves it out: not counted twice
    assert ref.resolve_row("Amsterdam", ["Amsterdam"]).to_list() == [
        {"text": "Amsterdam", "how": EXACT, "code": "GM0363", "naam": "Amsterdam",
         "provincie": "Noord-Holland", "field": "gemeente"}]
    assert "niet te herleiden" in ref.resolve_row("Diverse gemeenten").warnings[0]
    assert "gelezen als Amsterdam" in ref.resolve_row("Amsterdm").warnings[0]


def test_every_value_in_the_corpus_resolves_or_is_marked_not_a_municipality():
    settings = load_settings()
    reference = reference_from_settings(settings)
    assert len(reference.municipalities) == 342 and len(reference.provinces) == 12
    seen = set()
    for line in settings.paths.corpus.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for value in [row["gemeente"], *(row.get("gemeenten") or ())]:
            for place in reference.resolve(value):
                seen.add((place.text, place.how, place.code))
                assert place.code or place.how in (REGION, UNRESOLVED), place
                assert place.how != FUZZY, place  # the corpus is spelled right
    not_places = {text for text, how, code in seen if code is None}
    assert not_places == {"Breda (regio)", "Diverse", "Diverse gemeenten", "Meer gemeenten",
                          "arbeidsmarktregio Groningen", "West friesland", "..."}
    assert ("Den Haag", SPELLING, "GM0518") in seen


def test_a_diverse_gemeenten_row_takes_the_municipalities_its_description_lists(ref):
    text = "De gemeenten Amsterdam, Leiden en Den Bosch werken samen. Ook Breda doet mee."
    placement = ref.resolve_row("Diverse gemeenten", (), text)
    assert placement.codes == ("GM0363", "GM0546", "GM0796")
    assert {p.field for p in placement.places if p.code} == {"omschrijving"}
    assert "noemt de gemeenten Amsterdam, Leiden, 's-Hertogenbosch" in placement.warnings[0]
    # a row whose fields name a municipality keeps only those
    assert ref.resolve_row("Breda", (), text).codes == ("GM0758",)
    # running text is never fuzzy-matched
    assert ref.resolve_row("Diverse", (), "In verschillende gemeenten, zoals Amsterdm.").codes == ()
