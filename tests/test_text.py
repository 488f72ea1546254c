"""text: normalisation for the models only, and Dutch lookup lemmas."""

from __future__ import annotations

import pytest

from pipeline.core.records import Initiative
from pipeline.core.text import lemma_text, model_text, normalise


@pytest.mark.parametrize("raw, expected", [
    ("Maat-\njes bellen", "Maatjes bellen"),                      # hyphen broken over a line end
    ("• eerste\n• tweede", "eerste tweede"),                      # bullets at line starts
    ("koffie • thee", "koffie; thee"),                            # inline bullets keep a boundary
    ("zie https://example.nl/x of www.test.nl nu", "zie of nu"),  # urls
    ("mail info@gemeente.nl .", "mail."),                          # e-mail addresses, space before dot
    ("“quotes”  and\t\ttabs", '"quotes" and tabs'),
    ("ﬁnanciële", "financiële"),                                   # ligature from OCR (NFKC)
    ("", ""),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_model_text_puts_the_name_before_the_description_once():
    with_name = Initiative(id="1", gemeente="G", naam="Maatjes", omschrijving="Vrijwilligers bellen.")
    assert model_text(with_name) == "Maatjes. Vrijwilligers bellen."
    repeated = Initiative(id="2", gemeente="G", naam="Maatjes", omschrijving="Maatjes bellen ouderen.")
    assert model_text(repeated) == "Maatjes bellen ouderen."
    assert model_text(Initiative(id="3", gemeente="G", omschrijving="Alleen tekst")) == "Alleen tekst"


def test_lemmas_merge_dutch_inflections_and_drop_stop_words():
    assert lemma_text("Vrijwilligers brachten de maaltijden") == "vrijwilliger brengen maaltijd"


@pytest.mark.parametrize("raw, expected", [
    ("Ouderen-\n en jongerenwerk", "Ouderen- en jongerenwerk"),   # elliptical hyphen, not a break
    ("Ouderen-\nen jongerenwerk", "Ouderen- en jongerenwerk"),
    ("huur-\nof zorgtoeslag", "huur- of zorgtoeslag"),
    ("0-\ntot 4-jarigen", "0- tot 4-jarigen"),
    ("buurt- \nhuizen", "buurt- huizen"),                            # typed space: not a scanner break
    ("Maat-\r\njes", "Maatjes"),
    ("ouderen-\nenquête", "ouderenenquête"),                           # "en" only as a whole word
])
def test_normalise_keeps_dutch_elliptical_hyphens(raw, expected):
    assert normalise(raw) == expected
