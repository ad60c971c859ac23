"""Tests of the T-learner: a planted effect is recovered, Qini curves, reload from text."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.uplift import (
    UpliftModel,
    evaluate_uplift,
    fit_t_learner,
    planted_randomised_data,
    qini_coefficient,
    qini_curve,
)

ARMS = ("none", "low", "medium", "high")


@pytest.fixture(scope="module")
def fitted():
    X, t, y, _ = planted_randomised_data(6000, 1, ARMS)
    model = fit_t_learner(X, t, y, ARMS, rounds=120)
    test = planted_randomised_data(4000, 2, ARMS)
    return model, test


def test_planted_effect_is_recovered(fitted):
    model, (X, t, y, true) = fitted
    eff = model.effects(X)
    assert (eff["none"] == 0).all()
    for arm in ARMS[1:]:
        assert np.corrcoef(eff[arm], true[arm])[0, 1] > 0.5
        assert abs(eff[arm].mean() - true[arm].mean()) < 0.03
    # more contact is worth more on average, as planted
    assert eff["low"].mean() < eff["medium"].mean() < eff["high"].mean()


def test_qini_beats_a_random_order_and_nears_the_oracle(fitted):
    model, (X, t, y, true) = fitted
    table, curves = evaluate_uplift(model, X, t, y)
    assert table["arm"].tolist() == ["low", "medium", "high"]
    keep = (t == "high") | (t == "none")
    oracle = qini_coefficient(qini_curve(true["high"].to_numpy()[keep], t[keep] == "high", y[keep]))
    rng = np.random.default_rng(0)
    random = qini_coefficient(qini_curve(rng.normal(size=keep.sum()), t[keep] == "high", y[keep]))
    got = table.set_index("arm").loc["high", "qini_coefficient"]
    assert got > 0.5 * oracle > random
    assert set(curves) == {"low", "medium", "high"}


def test_qini_curve_by_hand():
    # Two treated (outcomes 1, 0) and two untreated (0, 1); the model ranks the
    # treated payer first and the untreated payer last.
    curve = qini_curve(
        np.array([0.9, 0.5, 0.4, 0.1]),
        np.array([True, False, True, False]),
        np.array([1.0, 0.0, 0.0, 1.0]),
        points=5,
    )
    # cumulative gains: 1, 1 - 0*1/1 = 1, 1 - 0*2/1 = 1, 1 - 1*2/2 = 0; divided by n = 4
    np.testing.assert_allclose(curve["qini"], [0, 0.25, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(curve["random"], 0.0)
    assert qini_coefficient(curve) == pytest.approx(0.25 * 0.75)


def test_reload_from_json_predicts_the_same(fitted):
    model, (X, _, _, _) = fitted
    again = UpliftModel.from_dict(json.loads(json.dumps(model.to_dict())))
    pd.testing.assert_frame_equal(again.effects(X), model.effects(X))


def test_bad_training_input_is_refused():
    X, t, y, _ = planted_randomised_data(300, 3, ARMS)
    with pytest.raises(ValueError, match="not among the arms"):
        fit_t_learner(X, t, y, ARMS[:3])
    with pytest.raises(ValueError, match="at least 50"):
        fit_t_learner(X.iloc[:100], t[:100], y[:100], ARMS)
    y = y.copy()
    y[0] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        fit_t_learner(X, t, y, ARMS)
    with pytest.raises(ValueError, match="noise"):
        fit_t_learner(X, t, np.nan_to_num(y), ARMS, rounds=5).effects(X.drop(columns="noise"))
