"""Tests of the promotion gate (pure: no MLflow)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.config import config_from_dict
from models.gate import decide, evaluate_gate, model_figures, top_feature_stability
from models.synthetic import make_training_set
from models.training import train

CHALLENGER = {
    "auc_willingness": 0.5,
    "ece_willingness": 0.02,
    "auc_ability": 0.625,
    "ece_ability": 0.03,
    "auc_willingness_dpd_rule": 0.375,
    "auc_willingness_scorecard": 0.5,
    "auc_ability_dpd_rule": 0.5,
    "auc_ability_scorecard": 0.5,
}


def test_against_a_champion_the_tolerance_is_inclusive():
    champion = {"auc_willingness": 0.75, "auc_ability": 0.625}
    checks = decide(CHALLENGER, champion, tolerance=0.25, max_ece=0.03)
    assert [(c.name, c.passed) for c in checks] == [
        ("willingness AUC vs champion - tolerance", True),  # 0.5 >= 0.75 - 0.25
        ("willingness ECE", True),
        ("ability AUC vs champion - tolerance", True),
        ("ability ECE", True),  # 0.03 <= 0.03
    ]
    worse = decide(CHALLENGER, champion, tolerance=0.125, max_ece=0.025)
    assert [c.passed for c in worse] == [False, True, True, False]


def test_without_a_champion_it_must_beat_both_baselines_strictly():
    checks = {c.name: c.passed for c in decide(CHALLENGER, None, max_ece=0.05)}
    assert checks == {
        "willingness AUC vs dpd_rule": True,
        "willingness AUC vs scorecard": False,  # equal is not better
        "willingness ECE": True,
        "ability AUC vs dpd_rule": True,
        "ability AUC vs scorecard": True,
        "ability ECE": True,
    }


def test_missing_figures_fail_the_gate():
    figs = {**CHALLENGER, "auc_ability": float("nan")}
    assert not all(c.passed for c in decide(figs, None, max_ece=1.0))


@pytest.fixture(scope="module")
def models_and_frame():
    data = make_training_set(n_accounts=2500, n_months=8, seed=5)
    config = config_from_dict({"lightgbm": {"num_threads": 1}})
    good = train(data.frame, config, data.spec)
    # A model trained on shuffled labels has learnt nothing.
    rng = np.random.default_rng(0)
    noisy = data.frame.copy()
    order = rng.permutation(len(noisy))
    noisy["paid_any"] = noisy["paid_any"].to_numpy()[order]
    noisy["coverage"] = noisy["coverage"].to_numpy()[order]
    bad = train(noisy, config, data.spec)
    return good.model, bad.model, good.split.test


def test_figures_score_each_head_on_its_population(models_and_frame):
    good, _, frame = models_and_frame
    figs = model_figures(good, frame)
    assert set(figs) == {
        "auc_willingness",
        "ece_willingness",
        "auc_ability",
        "ece_ability",
        "auc_willingness_dpd_rule",
        "auc_willingness_scorecard",
        "auc_ability_dpd_rule",
        "auc_ability_scorecard",
    }
    assert figs["auc_willingness"] > figs["auc_willingness_dpd_rule"]


def test_a_worse_challenger_is_refused_with_its_figures(models_and_frame):
    good, bad, frame = models_and_frame
    decision = evaluate_gate(
        bad, good, frame, tolerance=0.005, max_ece=1.0, challenger_version="2", champion_version="1"
    )
    assert not decision.accepted
    failed = [c.name for c in decision.checks if not c.passed]
    assert "willingness AUC vs champion - tolerance" in failed
    text = decision.summary()
    assert "REFUSED" in text and "champion v1" in text and "challenger_auc_willingness" in text
    tags = decision.tags()
    assert tags["promotion.decision"] == "refused" and tags["promotion.against"] == "v1"


def test_an_equal_challenger_passes_against_the_champion(models_and_frame):
    good, _, frame = models_and_frame
    decision = evaluate_gate(good, good, frame, tolerance=0.005, max_ece=1.0)
    assert decision.accepted
    assert decision.figures["challenger_auc_ability"] == decision.figures["champion_auc_ability"]


def test_the_calibration_bound_alone_can_refuse(models_and_frame):
    good, _, frame = models_and_frame
    decision = evaluate_gate(good, good, frame, tolerance=0.005, max_ece=1e-9)
    assert not decision.accepted
    assert {c.name for c in decision.checks if not c.passed} == {"willingness ECE", "ability ECE"}


def test_the_gate_needs_labels(models_and_frame):
    good, _, frame = models_and_frame
    with pytest.raises(KeyError, match="paid_any"):
        evaluate_gate(good, None, frame.drop(columns=["paid_any"]))


def test_stability_flags_a_top_feature_that_shifts(models_and_frame):
    good, _, frame = models_and_frame
    steady = evaluate_gate(good, None, frame, max_ece=1.0, stability=(5, 0.25))
    check = [c for c in steady.checks if c.name.startswith("stability")]
    assert len(check) == 1 and check[0].passed, steady.summary()
    table = top_feature_stability(good, frame, 5)
    assert set(table["head"]) == {"willingness", "ability"}
    assert (table.groupby("head")["gain_rank"].max() == 5).all()
    # Move the willingness head's most important feature: the gate names it and refuses.
    top = table.loc[(table["head"] == "willingness") & (table["gain_rank"] == 1), "feature"].item()
    moved = frame.assign(**{top: frame[top] * 3 + 50})
    shifted = evaluate_gate(good, None, moved, max_ece=1.0, stability=(5, 0.25))
    failed = [c.name for c in shifted.checks if not c.passed]
    assert f"stability: top-feature PSI ({top})" in failed
    assert shifted.figures["challenger_max_top_feature_psi"] > 0.25


def test_drift_exempt_features_are_left_out_of_stability(models_and_frame):
    good, _, frame = models_and_frame
    top = top_feature_stability(good, frame, 3)["feature"].iloc[0]
    exempt = replace(good, spec=replace(good.spec, drift_exempt={top: "counts time"}))
    assert top not in set(top_feature_stability(exempt, frame, 3)["feature"])
    assert top_feature_stability(good, frame, 0).empty


def test_given_predictions_are_not_predicted_again_and_give_the_same_figures(models_and_frame):
    good, bad, frame = models_and_frame
    settings = {"tolerance": 0.005, "max_ece": 1.0, "stability": (5, 0.25)}
    predicted_by_gate = evaluate_gate(bad, good, frame, **settings)
    challenger, champion = replace(bad), replace(good)  # same boosters, own instances
    calls = []
    for model in (challenger, champion):
        model.predict_proba = lambda f, m=model: calls.append(m) or type(m).predict_proba(m, f)
    given = evaluate_gate(
        challenger,
        champion,
        frame,
        **settings,
        challenger_probs=bad.predict_proba(frame),
        champion_probs=good.predict_proba(frame),
    )
    assert calls == []
    assert given.figures == predicted_by_gate.figures
    assert [c.passed for c in given.checks] == [c.passed for c in predicted_by_gate.checks]
    # Predictions of other rows are refused, not silently misaligned.
    with pytest.raises(ValueError, match="not those of the frame's rows"):
        evaluate_gate(good, None, frame, challenger_probs=good.predict_proba(frame.iloc[1:]))
