"""Tests of the DPD-bucket rule and the WOE scorecard, worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.baselines import (
    DpdBucketRule,
    WoeScorecard,
    baseline_from_dict,
    dpd_bucket,
    select_scorecard_features,
)


def test_dpd_buckets_and_their_edges():
    got = dpd_bucket([1, 29, 30, 59, 60, 89, 90, 119, 120, 700, np.nan]).tolist()
    assert got == [
        "1-29",
        "1-29",
        "30-59",
        "30-59",
        "60-89",
        "60-89",
        "90-119",
        "90-119",
        "120+",
        "120+",
        "",
    ]


def test_dpd_rule_learns_the_training_rate_per_bucket():
    train = pd.DataFrame({"dpd": [5, 10, 45, 95, 150, 200, 100]})
    rule = DpdBucketRule.fit(train, [1, 0, 1, 0, 1, 0, 0])
    assert rule.rates == {
        "1-29": 0.5,
        "30-59": 1.0,
        "60-89": pytest.approx(3 / 7),  # no training row: the overall rate
        "90-119": 0.0,
        "120+": 0.5,
    }
    scored = rule.predict(pd.DataFrame({"dpd": [3.0, 30.0, np.nan, 1000.0, 61.0]}))
    assert scored.tolist() == pytest.approx([0.5, 1.0, 3 / 7, 0.5, 3 / 7])


def test_dpd_rule_round_trips_through_json():
    rule = DpdBucketRule.fit(pd.DataFrame({"dpd": [5, 45, 130]}), [1, 0, 1])
    again = baseline_from_dict(json.loads(json.dumps(rule.to_dict())))
    assert again == rule


def test_woe_by_hand_on_one_feature():
    # Median cut 2.5: bin 0 = {1, 2} (0 events, 2 non-events), bin 1 = {3, 4} (2, 0),
    # missing bin empty. Smoothed shares: events (0.5, 2.5, 0.5) / 3.5,
    # non-events (2.5, 0.5, 0.5) / 3.5 -> WOE (ln 0.2, ln 5, 0).
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    card = WoeScorecard.fit(frame, [0, 0, 1, 1], ["x"], n_bins=2)
    assert card.edges == {"x": (2.5,)}
    assert card.woe["x"] == pytest.approx((math.log(0.2), math.log(5.0), 0.0))
    woe = card.transform(pd.DataFrame({"x": [2.5, 2.6, np.nan]}))[:, 0]
    assert woe.tolist() == pytest.approx([math.log(0.2), math.log(5.0), 0.0])


def test_scorecard_probability_is_the_logistic_regression_on_woe():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame.loc[::7, "b"] = np.nan
    y = (frame["a"] + rng.normal(size=300) > 0).astype(int)
    card = WoeScorecard.fit(frame, y, ["a", "b"], n_bins=4)
    expected = LogisticRegression(C=1.0, max_iter=1000).fit(card.transform(frame), y)
    assert card.predict(frame) == pytest.approx(expected.predict_proba(card.transform(frame))[:, 1])
    again = baseline_from_dict(json.loads(json.dumps(card.to_dict())))
    assert np.array_equal(again.predict(frame), card.predict(frame))


def test_feature_selection_by_univariate_strength_is_deterministic():
    frame = pd.DataFrame({"weak": [1.0, 2, 1, 2], "strong": [1.0, 2, 3, 4], "flip": [4.0, 3, 2, 1]})
    # strong and flip separate perfectly (|AUC - 0.5| = 0.5): tie kept in candidate order.
    assert select_scorecard_features(frame, [0, 0, 1, 1], ["weak", "flip", "strong"], 2) == (
        "flip",
        "strong",
    )


def test_baselines_name_a_missing_column():
    with pytest.raises(KeyError, match="dpd"):
        DpdBucketRule.fit(pd.DataFrame({"x": [1]}), [1])
