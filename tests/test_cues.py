"""Cues in context: one small hand-written Dutch sentence per context rule of the cue file
(negation, paid work, a word inside another word, done versus planned, several partners, too vague),
and the claims the scorer makes from them (one claim per word, no opposite reasons on the same
words, reasons that agree with the score)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.records import Initiative
from pipeline.models.cues import CueMatcher, load_cues
from pipeline.models.score import ReplicabilityScorer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CUES = PROJECT_ROOT / "configs" / "replicability_cues.toml"
SEED = PROJECT_ROOT / "data" / "labelled" / "seed.jsonl"


@pytest.fixture(scope="module")
def book():
    return load_cues(CUES)


@pytest.fixture(scope="module")
def matcher(book):
    return CueMatcher(book)


@pytest.fixture(scope="module")
def seed():
    rows = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    return ([Initiative(id=r["id"], gemeente=r["gemeente"], naam=r["naam"], omschrijving=r["omschrijving"])
             for r in rows], np.array([r["replicability"] for r in rows]))


@pytest.fixture(scope="module")
def fitted(seed):
    initiatives, y = seed
    return ReplicabilityScorer(cues_path=CUES, embedding=None, C=0.1).fit(initiatives, y)


def counts(matcher, text, naam=None):
    row = matcher.match([naam], [text])[0]
    return row.counts, row


def reasons_of(fitted, text, naam=None):
    x = Initiative(id="t", gemeente="Testdorp", naam=naam, omschrijving=text)
    return fitted.score_rows([x], ["initiative"])[0]


# -- the context rules, one sentence each ----------------------------------------------------


def test_negated_volunteers_are_no_volunteers(matcher):
    found, _ = counts(matcher, "Er zijn geen vrijwilligers nodig; de gemeente regelt het zelf.")
    assert found["cue:vrijwilligers"] == 0


def test_without_subsidy_is_the_low_cost_claim_not_a_budget(matcher):
    found, _ = counts(matcher, "De maaltijden worden zonder subsidie bereid.")
    assert found["cue:eigen_budget"] == 0
    assert found["cue:weinig_budget"] == 1


def test_residents_in_paid_employment_are_no_volunteers(matcher):
    found, _ = counts(matcher, "Zes buurtbewoners zijn bij de stichting in dienst.")
    assert found["cue:vrijwilligers"] == 0
    assert found["cue:betaalde_professionals"] == 1


def test_field_workers_and_experts_by_experience_are_paid_work(matcher):
    found, _ = counts(matcher, "Maaltijden worden rondgebracht door veldwerkers en ervaringsdeskundigen.")
    assert found["cue:vrijwilligers"] == 0
    assert found["cue:betaalde_professionals"] >= 1


def test_budget_inside_budgetcoaching_is_no_money(matcher):
    found, _ = counts(matcher, "Inwoners met schulden krijgen preventieve budgetcoaching.")
    assert found["cue:eigen_budget"] == 0
    assert found["element:kosten"] == 0


def test_existing_means_are_no_budget_of_its_own(matcher):
    found, _ = counts(matcher, "De ondersteuning werd uit de bestaande financiële middelen betaald.")
    assert found["cue:eigen_budget"] == 0
    assert found["cue:weinig_budget"] == 1


def test_something_set_up_within_two_weeks_is_no_plan(matcher):
    found, _ = counts(matcher, "Binnen twee weken is de dagbesteding opgezet. Nu willen we een tweede locatie openen.")
    assert found["cue:voornemen"] == 0
    assert found["cue:snel_te_starten"] == 1


def test_a_plan_is_still_a_plan(matcher):
    found, _ = counts(matcher, "We willen volgend jaar een buurtkamer openen.")
    assert found["cue:voornemen"] == 1


def test_a_wish_word_is_no_plan_when_it_states_an_aim(matcher):
    found, _ = counts(matcher, "Het project wil eenzaamheid onder ouderen verminderen met een belronde.")
    assert found["cue:voornemen"] == 0


def test_in_kaart_brengen_is_no_map_or_card(matcher):
    found, _ = counts(matcher, "Het wijkteam heeft alle kwetsbare gezinnen in kaart gebracht.")
    assert found["cue:eenvoudig_middel"] == 0


def test_a_target_group_after_voor_is_no_partner(matcher):
    _, row = counts(matcher, "Er is een loket voor ondernemers en zzp'ers.")
    assert row.partners == set()


def test_digital_means_are_devices_not_money(matcher):
    found, _ = counts(matcher, "De school deelt digitale middelen uit aan leerlingen.")
    assert found["cue:eigen_budget"] == 0 and found["element:kosten"] == 0
    found, _ = counts(matcher, "De gemeente heeft extra middelen vrijgemaakt voor de voedselbank.")
    assert found["cue:eigen_budget"] == 1


def test_loan_laptops_are_no_fund_and_ict_help_is_no_it_system(matcher):
    found, _ = counts(matcher, "Er zijn 450 leenlaptops uitgedeeld en een helpdesk voor ict problemen.")
    assert found["cue:fonds"] == 0 and found["cue:it_systeem"] == 0
    found, _ = counts(matcher, "Ondernemers kunnen geld lenen bij het fonds; aanvragen lopen via een portaal.")
    assert found["cue:fonds"] >= 1 and found["cue:it_systeem"] == 1


def test_a_difficulty_or_request_with_om_te_is_no_aim(matcher):
    found, _ = counts(matcher, "In de opvang is het lastig om afstand van elkaar te houden.")
    assert found["element:doel"] == 0
    found, _ = counts(matcher, "Jongerenwerkers zijn gevraagd om in de wijken iets te organiseren.")
    assert found["element:doel"] == 0
    found, _ = counts(matcher, "Er komt een inloop om eenzame ouderen een plek te geven.")
    assert found["element:doel"] == 1


def test_their_own_employer_is_no_partner(matcher):
    _, row = counts(matcher, "Arbeidsmigranten zijn afhankelijk van hun werkgever voor huisvesting.")
    assert row.partners == set()
    # "zijn" as a verb says nothing about whose partner comes next
    found, row = counts(matcher, "Er zijn jongerenwerkers ingezet in de wijk.")
    assert found["element:partners"] == 1


def test_a_problem_that_leads_to_more_is_no_aim_and_rightly_is_no_approach(matcher):
    found, _ = counts(matcher, "De lockdown leidt tot meer eenzaamheid.")
    assert found["element:doel"] == 0
    found, _ = counts(matcher, "Ouderen maken zich terecht zorgen.")
    assert found["element:aanpak"] == 0
    found, _ = counts(matcher, "Gezinnen kunnen op de website terecht voor alle informatie.")
    assert found["element:aanpak"] == 1
    found, _ = counts(matcher, "Inwoners kunnen daarvoor bij het wijkteam terecht.")
    assert found["element:aanpak"] == 1
    for text in ("Steeds meer jongeren komen terecht in de schulden.",
                 "Zonder hulp komen gezinnen terecht bij de voedselbank."):
        found, _ = counts(matcher, text)
        assert found["element:aanpak"] == 0, text


def test_actions_beyond_the_common_verbs_are_an_approach(matcher):
    for text in ("Zorgaanbieders worden regelmatig bevraagd over hun dienstverlening.",
                 "De gemeente heeft laptops ter beschikking gesteld aan leerlingen.",
                 "Op de website kunnen gezinnen terecht met hulpvragen."):
        found, _ = counts(matcher, text)
        assert found["element:aanpak"] >= 1, text


def test_a_sentence_that_explores_is_no_approach_yet(matcher):
    for text in ("We zijn in gesprek met de opvangorganisatie hoe we de opvang anders vorm kunnen geven.",
                 "Wij onderzoeken of we volgend jaar huisbezoeken kunnen aanbieden."):
        found, _ = counts(matcher, text)
        assert found["element:aanpak"] == 0, text
    for text in ("Dat vraagt ook inzet van het UWV.",
                 "Scholen en gemeente denken na over een zomerschool via de bibliotheek."):
        found, _ = counts(matcher, text)
        assert found["element:aanpak"] == 0, text
    found, _ = counts(matcher, "Ouders die om hulp hebben gevraagd krijgen een huisbezoek.")
    assert found["element:aanpak"] == 1
    found, _ = counts(matcher, "Vrijwilligers bellen wekelijks met ouderen. We kijken of dat zo blijft.")
    assert found["element:aanpak"] >= 1  # the exploring sentence does not block the other one


def test_tailored_help_that_is_delivered_is_no_policy_language(matcher):
    for text in ("Corporaties leveren maatwerk voor huurders met een achterstand.",
                 "Daardoor kan individueel maatwerk worden toegepast."):
        found, _ = counts(matcher, text)
        assert found["cue:vage_beleidstaal"] == 0, text
    found, _ = counts(matcher, "Uitgangspunt is maatwerk.")
    assert found["cue:vage_beleidstaal"] >= 1


def test_whose_money_whose_bank_and_for_whom(matcher):
    found, _ = counts(matcher, "De app geeft een overzicht van het vrij te besteden geld.")
    assert found["element:kosten"] == 0
    found, _ = counts(matcher, "Coaches van de Groningse Kredietbank begeleiden jongeren.")
    assert found["cue:fonds"] == 0
    found, _ = counts(matcher, "Ze verwijzen naar de afdeling Inkomen van onze gemeente.")
    assert found["element:partners"] == 0  # the municipality is not its own partner
    found, _ = counts(matcher, "Een eenmalige bijdrage bedoeld voor inwoners in acute nood.")
    assert found["element:doel"] == 0  # "bedoeld voor" says for whom, not what for
    found, _ = counts(matcher, "Het fonds is bedoeld om huisuitzettingen te voorkomen.")
    assert found["element:doel"] >= 1


def test_plural_partners_mean_several(fitted):
    reasons = reasons_of(fitted, "De partners in de wijk organiseren samen wekelijks activiteiten voor kinderen.")
    texts = [r["reden"] for r in reasons["replicability_reasons"]]
    assert fitted.cuebook_.partners.reden_veel in texts
    assert fitted.cuebook_.partners.reden_weinig not in texts


# -- claims ------------------------------------------------------------------------------------


def test_gratis_counts_once_as_the_low_cost_claim(fitted, book):
    reasons = reasons_of(fitted, "Vrijwilligers bezorgen gratis boodschappen bij ouderen.")["replicability_reasons"]
    texts = [r["reden"] for r in reasons]
    assert book.cue("weinig_budget").reden in texts
    kosten = next(e for e in book.elements if e.id == "kosten")
    assert kosten.aanwezig not in texts


def test_no_opposite_reasons_on_the_same_words(fitted):
    text = "Met een klein budget en een subsidie van de provincie organiseren vrijwilligers een koffieochtend."
    reasons = reasons_of(fitted, text)["replicability_reasons"]
    spans = []
    for r in reasons:
        if r["bewijs"]:
            start = text.find(r["bewijs"])
            assert start >= 0, r
            spans.append((start, start + len(r["bewijs"]), r["richting"]))
    for i, (a, b, d) in enumerate(spans):
        for c, e, d2 in spans[i + 1:]:
            assert d == d2 or not (a < e and c < b), (reasons, (a, b, d), (c, e, d2))


def test_reasons_agree_with_the_score_on_the_seed_rows(fitted, seed):
    initiatives, _ = seed
    rows = fitted.score_rows(initiatives, ["initiative"] * len(initiatives))
    for x, row in zip(initiatives, rows):
        first = row["replicability_reasons"][0]["richting"]
        if row["replicability"] >= 4:
            assert first == "+", (x.id, row)
        if row["replicability"] <= 2:
            assert first == "-", (x.id, row)
        for reason in row["replicability_reasons"]:
            assert reason["bewijs"] is None or reason["bewijs"] in x.omschrijving


# -- too vague ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Gemeente Ede heeft gekozen voor een vergelijkbare aanpak.",
    "Zie www.voorbeeldgemeente.nl voor de aanpak.",
])
def test_a_fragment_that_only_points_elsewhere_is_too_vague(fitted, book, text):
    row = reasons_of(fitted, text)
    assert row["replicability"] <= book.vaag.max_score
    first = row["replicability_reasons"][0]
    assert first["reden"] == book.vaag.reden and first["richting"] == "-"
    assert first["bewijs"] in text


def test_a_described_initiative_is_not_too_vague(matcher):
    _, row = counts(matcher, "Vrijwilligers bellen elke week ouderen; de belrondes staan op de website.")
    assert row.vaag is None


# -- the cue file ------------------------------------------------------------------------------


def test_context_rule_errors_name_file_and_key(tmp_path):
    text = CUES.read_text(encoding="utf-8")
    path = tmp_path / "cues.toml"
    path.write_text(text.replace('geldt_voor = ["cue:vrijwilligers"]', 'geldt_voor = ["cue:bestaat_niet"]', 1),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cues\.toml context\[1\] \(id 'betaald_werk'\)\.geldt_voor.*bestaat_niet"):
        load_cues(path)
    path.write_text(text.replace('soort = "zin"\nvenster = 0', 'soort = "ergens"\nvenster = 0', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"context\[1\].*\.soort"):
        load_cues(path)
    path.write_text(text.replace("[vaag]", "[vaagheid]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="cues.toml"):
        load_cues(path)
