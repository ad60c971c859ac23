"""Tests of the design matrix, the calibrators and the LightGBM heads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.config import config_from_dict
from models.heads import (
    PROB_CLIP,
    Calibrator,
    ability_target,
    design_matrix,
    fit_calibrator,
    fit_level_shift,
    train_head,
)
from models.spec import FeatureSpec
from models.splits import time_split
from models.synthetic import make_training_set

SPEC = FeatureSpec(
    columns=("dpd", "product", "ratio"),
    categorical={"product": ("credit_card", "bnpl", "mortgage")},
    monotone_willingness={"dpd": -1},
)
PARAMS = config_from_dict({"lightgbm": {"num_threads": 1}}).lightgbm


def test_design_matrix_fixes_order_dtypes_and_categories():
    frame = pd.DataFrame(
        {
            "ratio": [0.5, None, 2.0],
            "extra": ["x", "y", "z"],
            "product": ["bnpl", "boat", None],
            "dpd": [3, 40, 95],
            "account_id": ["A1", "A2", "A3"],
        },
        index=[10, 11, 12],
    )
    before = frame.copy()
    X = design_matrix(frame, SPEC)
    assert list(X.columns) == ["dpd", "product", "ratio"]
    assert X.index.tolist() == [10, 11, 12]
    assert X["dpd"].dtype == np.float64
    assert list(X["product"].cat.categories) == ["credit_card", "bnpl", "mortgage"]
    # Codes follow the fixed list, not the values present; unknown becomes missing.
    assert X["product"].cat.codes.tolist() == [1, -1, -1]
    pd.testing.assert_frame_equal(frame, before)


def test_design_matrix_names_missing_columns():
    with pytest.raises(KeyError, match=r"\['ratio'\]"):
        design_matrix(pd.DataFrame({"dpd": [1], "product": ["bnpl"]}), SPEC)


def test_isotonic_calibrator_by_hand():
    # Pool-adjacent-violators on y = (0, 1, 0, 1): blocks {0.1} -> 0, {0.2, 0.3} -> 0.5,
    # {0.4} -> 1; knots at the block centres 0.1, 0.25, 0.4.
    cal = fit_calibrator(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]), "isotonic")
    assert cal.x == pytest.approx((0.1, 0.25, 0.4)) and cal.y == pytest.approx((0.0, 0.5, 1.0))
    got = cal.transform(np.array([0.05, 0.15, 0.25, 0.35, 0.5]))
    assert got.tolist() == pytest.approx([PROB_CLIP, 0.5 / 3, 0.5, 0.5 + 1 / 3, 1 - PROB_CLIP])


def test_isotonic_calibration_keeps_the_ranking():
    rng = np.random.default_rng(2)
    raw = rng.random(2000)
    y = (rng.random(2000) < raw**2).astype(int)
    cal = fit_calibrator(raw, y, "isotonic")
    inner = (raw > cal.x[1]) & (raw < cal.x[-2])
    out = cal.transform(np.sort(raw[inner]))
    assert (np.diff(out) >= 0).all()
    assert len(np.unique(out)) == inner.sum()  # no ties between the outer knots
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal


def test_platt_calibrator_recovers_its_two_coefficients():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.02, 0.98, 40_000)
    logit = np.log(raw / (1 - raw))
    y = (rng.random(raw.size) < 1 / (1 + np.exp(-(2.0 * logit + 0.5)))).astype(int)
    cal = fit_calibrator(raw, y, "platt")
    assert cal.a == pytest.approx(2.0, abs=0.1)
    assert cal.b == pytest.approx(0.5, abs=0.1)
    assert set(cal.to_dict()) == {"method", "a", "b"}


def test_calibration_on_one_class_is_identity():
    cal = fit_calibrator(np.array([0.2, 0.3]), np.array([1, 1]), "isotonic")
    assert cal.method == "identity"
    assert cal.transform(np.array([0.2])).tolist() == [0.2]


def test_ability_target_is_full_coverage():
    assert ability_target([1.0, 0.999, 0.9989, 0.0], 0.999).tolist() == [1, 1, 0, 0]


@pytest.fixture(scope="module")
def synthetic_split():
    data = make_training_set(n_accounts=1500, n_months=8, seed=3)
    return data.spec, time_split(data.frame, 2, 2)


def test_willingness_head_respects_its_monotone_constraints(synthetic_split):
    spec, split = synthetic_split
    X_train, X_val = design_matrix(split.train, spec), design_matrix(split.validation, spec)
    head = train_head(
        "willingness",
        X_train,
        split.train["paid_any"].to_numpy(),
        X_val,
        split.validation["paid_any"].to_numpy(),
        PARAMS,
        spec,
    )
    assert 1 <= head.best_iteration < PARAMS.n_estimators
    assert head.booster.current_iteration() == head.best_iteration  # truncated at the best
    rows = X_val.head(20)
    for feature in ("dpd", "promises_broken_90d", "days_since_last_payment"):
        grid = np.linspace(0, 400, 9) if feature != "promises_broken_90d" else np.arange(9.0)
        preds = []
        for value in grid:
            moved = rows.copy()
            moved[feature] = value
            preds.append(head.predict_raw(moved))
        steps = np.diff(np.vstack(preds), axis=0)
        assert (steps <= 1e-12).all(), f"willingness rose with {feature}"


def test_ability_head_is_trained_on_payers(synthetic_split):
    spec, split = synthetic_split
    paid_t = split.train["paid_any"].to_numpy() == 1
    paid_v = split.validation["paid_any"].to_numpy() == 1
    head = train_head(
        "ability",
        design_matrix(split.train, spec).loc[paid_t],
        ability_target(split.train["coverage"])[paid_t],
        design_matrix(split.validation, spec).loc[paid_v],
        ability_target(split.validation["coverage"])[paid_v],
        PARAMS,
        spec,
        "platt",
    )
    rows = design_matrix(split.validation, spec).head(20)
    preds = [head.predict_raw(rows.assign(arrears_to_income=v)) for v in (0.1, 1.0, 5.0, 20.0)]
    assert (np.diff(np.vstack(preds), axis=0) <= 1e-12).all()
    assert head.calibrator.method == "platt"


def test_a_head_refuses_a_single_class(synthetic_split):
    spec, split = synthetic_split
    X = design_matrix(split.train, spec)
    with pytest.raises(ValueError, match="ability head: the train rows have one class only"):
        train_head("ability", X, np.ones(len(X)), X, np.r_[np.ones(len(X) - 1), 0], PARAMS, spec)


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0.01, 0.99), min_size=3, max_size=40),
    rate=st.floats(0.02, 0.98),
)
def test_level_shift_moves_the_mean_to_the_observed_rate_and_keeps_the_order(p, rate):
    p = np.asarray(p)
    y = np.full(p.size, rate)  # shares are valid targets too
    shift = fit_level_shift(p, y)
    moved = Calibrator("identity", shift=shift).transform(p)
    if abs(shift) < 4.0 - 1e-9:  # inside the bound the mean matches exactly
        assert moved.mean() == pytest.approx(rate, abs=1e-9)
    # A shift on the log-odds scale never reorders accounts.
    assert (np.diff(moved[np.argsort(p, kind="stable")]) >= 0).all()


def test_level_shift_round_trips_through_json():
    cal = Calibrator("isotonic", x=(0.2, 0.6), y=(0.1, 0.5), shift=-0.3)
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    raw = np.array([0.1, 0.4, 0.9])
    expected = 1 / (
        1
        + np.exp(
            -(
                np.log(cal.with_shift(0).transform(raw))
                - np.log1p(-cal.with_shift(0).transform(raw))
                - 0.3
            )
        )
    )
    assert again.transform(raw) == pytest.approx(expected)
    assert "shift" not in cal.with_shift(0.0).to_dict()


def test_a_coverage_head_learns_shares_and_is_calibrated_to_full_coverage():
    data = make_training_set(n_accounts=1500, n_months=6, seed=3)
    split = time_split(data.frame, validation_months=1, test_months=1)
    payers = {n: f.loc[f["paid_any"] == 1] for n, f in split.frames().items()}
    X = {n: design_matrix(f, data.spec) for n, f in payers.items()}
    head = train_head(
        "ability",
        X["train"],
        payers["train"]["coverage"].to_numpy(),
        X["validation"],
        payers["validation"]["coverage"].to_numpy(),
        PARAMS,
        data.spec,
        y_calibrate=ability_target(payers["validation"]["coverage"]),
        objective="cross_entropy",
    )
    assert head.booster.params["objective"] == "cross_entropy"
    raw = head.predict_raw(X["test"])
    cov = payers["test"]["coverage"].to_numpy()
    # The raw booster predicts the share paid; the calibrated one the full-cover rate.
    assert abs(raw.mean() - cov.mean()) < 0.1
    full = ability_target(payers["test"]["coverage"])
    assert abs(head.predict(X["test"]).mean() - full.mean()) < 0.05
