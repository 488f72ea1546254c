"""The fact sheet: the five elements as verbatim spans, on small hand-written Dutch texts."""

from pipeline.models.facts import ELEMENTS, NOT_NAMED, FactSheet, Span, fact_sheet

BAKFIETS = ("In verband met de coronacrisis, gaan vrijwilligers op een bakfiets langs bij eenzame ouderen. "
            "Samen met Stichting De Zwaan delen zij wekelijks gratis koffie uit.")


def texts(spans):
    return [s.text for s in spans]


def test_elements_have_dutch_labels_in_field_order():
    assert list(ELEMENTS) == ["wat", "voor_wie", "hoe", "met_wie", "kosten"]
    assert ELEMENTS["met_wie"] == "Met wie" and ELEMENTS["kosten"] == "Kosten / middelen"
    assert NOT_NAMED == "niet genoemd"
    assert [f for f in FactSheet.__dataclass_fields__] == list(ELEMENTS)


def test_every_span_is_verbatim_and_the_sheet_is_frozen():
    sheet = fact_sheet(BAKFIETS)
    for field in ELEMENTS:
        for span in getattr(sheet, field):
            assert isinstance(span, Span)
            assert BAKFIETS[span.start:span.end] == span.text
    try:
        sheet.wat = ()
    except AttributeError:
        pass
    else:
        raise AssertionError("FactSheet must be frozen")
    assert fact_sheet(BAKFIETS) == sheet  # deterministic


def test_the_five_elements_of_a_well_described_text():
    sheet = fact_sheet(BAKFIETS)
    assert texts(sheet.wat) == ["gaan vrijwilligers op een bakfiets langs bij eenzame ouderen"]
    assert texts(sheet.voor_wie) == ["eenzame ouderen"]
    assert any("bakfiets langs" in t for t in texts(sheet.hoe))
    assert "vrijwilligers" in texts(sheet.met_wie)
    assert any(t.startswith("Samen met Stichting De Zwaan") or t == "Stichting De Zwaan" for t in texts(sheet.met_wie))
    assert texts(sheet.kosten) == ["gratis"]
    assert sheet.named() == 5


def test_missing_elements_are_empty():
    sheet = fact_sheet("Gemeente Ede heeft voor een vergelijkbare aanpak gekozen.")
    assert sheet.voor_wie == () and sheet.met_wie == () and sheet.kosten == () and sheet.hoe == ()
    assert fact_sheet("") == FactSheet((), (), (), (), ())


def test_a_word_inside_another_word_is_not_a_cost():
    sheet = fact_sheet("Inwoners met geldzorgen krijgen preventieve budgetcoaching van het wijkteam.")
    assert sheet.kosten == ()
    assert texts(sheet.voor_wie) == ["Inwoners met geldzorgen"]
    assert "wijkteam" in texts(sheet.met_wie)


def test_costs_keep_their_amount_and_negation():
    sheet = fact_sheet("Er is een klein budget van € 5.000 beschikbaar. Deelname kost de ouders geen geld.")
    found = texts(sheet.kosten)
    assert found[0] == "een klein budget van € 5.000" and found[-1] == "geen geld"


def test_target_group_with_its_qualifier_and_a_vague_mensen_skipped():
    sheet = fact_sheet("Er is een nieuwsbrief voor ouders en kinderen met autisme. Veel mensen lazen hem.")
    assert texts(sheet.voor_wie) == ["ouders", "kinderen met autisme"]
