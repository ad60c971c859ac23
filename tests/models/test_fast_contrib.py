"""Contributions per split pattern equal LightGBM's own pred_contrib, row for row."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.fast_contrib import lightgbm_matrix, pred_contrib, tree_splits


@pytest.fixture(scope="module")
def booster_and_data():
    rng = np.random.default_rng(3)
    n = 6000
    X = pd.DataFrame(
        {
            "dpd": rng.integers(0, 200, n).astype(float),
            "ratio": rng.normal(size=n),
            "sparse": np.where(rng.random(n) < 0.4, 0.0, rng.exponential(size=n)),
            "gappy": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "product": pd.Categorical(rng.choice(["a", "b", "c", "d"], n), categories=list("abcd")),
        }
    )
    logit = -0.02 * X["dpd"] + X["ratio"] + (X["product"] == "b") * 0.8 - X["gappy"].fillna(1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "max_depth": 5,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "deterministic": True,
        "num_threads": 1,
        "seed": 1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=["product"]), 40)
    return booster, X


def _score_frame(X: pd.DataFrame, booster: lgb.Booster) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    out = X.sample(3000, random_state=2).reset_index(drop=True)
    # Values exactly at split thresholds, missing categories and fresh NaNs.
    thresholds = [
        th for tree in tree_splits(booster) for f, ths in tree.numeric if f == 1 for th in ths
    ]
    out.loc[: len(thresholds) - 1, "ratio"] = thresholds
    out.loc[rng.random(len(out)) < 0.05, "product"] = np.nan
    out.loc[rng.random(len(out)) < 0.05, "dpd"] = np.nan
    return out


def test_equals_lightgbm_pred_contrib(booster_and_data):
    booster, X = booster_and_data
    frame = _score_frame(X, booster)
    expected = booster.predict(frame, pred_contrib=True)
    got = pred_contrib(booster, lightgbm_matrix(frame))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # The contributions add up to the raw score, as SHAP values must.
    np.testing.assert_allclose(got.sum(axis=1), booster.predict(frame, raw_score=True), atol=1e-9)


def test_row_order_and_chunking_do_not_matter(booster_and_data):
    booster, X = booster_and_data
    M = lightgbm_matrix(_score_frame(X, booster))
    whole = pred_contrib(booster, M)
    perm = np.random.default_rng(0).permutation(len(M))
    np.testing.assert_array_equal(pred_contrib(booster, M[perm]), whole[perm])
    np.testing.assert_array_equal(
        np.vstack([pred_contrib(booster, M[:1000]), pred_contrib(booster, M[1000:])]), whole
    )


def test_empty_input():
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 3},
        lgb.Dataset(np.array([[0.0], [1.0], [2.0], [3.0]] * 10), [0, 1, 0, 1] * 10),
        2,
    )
    assert pred_contrib(booster, np.empty((0, 1))).shape == (0, 2)


def test_training_refuses_a_head_that_learned_nothing():
    """A constant head (every account the same score) is refused, not registered."""
    from models.config import load_config
    from models.synthetic import make_training_set
    from models.training import train

    data = make_training_set(n_accounts=600, n_months=8, seed=3)
    cfg = load_config(overrides={"lightgbm.min_data_in_leaf": 100_000})
    with pytest.raises(ValueError, match="learned nothing"):
        train(data.frame, cfg, data.spec)
