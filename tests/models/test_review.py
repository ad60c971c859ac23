"""The validation tables of models.review on hand-built frames, and the fairness settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import evaluation as ev
from models import review as rv
from models.config import config_from_dict


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=40).filter(
        lambda rows: 0 < sum(y for y, _ in rows) < len(rows)
    )
)
def test_fast_auc_and_ks_equal_the_reference_with_ties(rows):
    y = np.array([r[0] for r in rows], dtype=float)
    p = np.array([r[1] for r in rows], dtype=float) / 6  # few distinct scores: many ties
    auc, ks = rv.fast_auc_ks(y, p)
    assert auc == pytest.approx(ev.auc(y, p), abs=1e-12)
    assert ks == pytest.approx(ev.ks(y, p), abs=1e-12)


def test_integer_weights_equal_repeated_rows():
    y = np.array([0, 1, 0, 1, 1.0])
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.3])
    w = np.array([2, 1, 0, 3, 1])
    assert rv.fast_auc_ks(y, p, w) == pytest.approx(
        rv.fast_auc_ks(np.repeat(y, w), np.repeat(p, w))
    )


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_rows():
    rng = np.random.default_rng(0)

    def sample(n):
        p = rng.uniform(size=n)
        return (rng.uniform(size=n) < p).astype(float), p

    small = rv.bootstrap_intervals(*sample(200), n_boot=100)
    large = rv.bootstrap_intervals(*sample(5000), n_boot=100)
    for b in (small, large):
        assert b["auc_lo"] <= b["auc"] <= b["auc_hi"] and b["ks_lo"] <= b["ks"] <= b["ks_hi"]
    assert large["auc_hi"] - large["auc_lo"] < small["auc_hi"] - small["auc_lo"]
    assert large["n"] == 5000 and large["auc_se"] < small["auc_se"]


def _pred():
    return pd.DataFrame(
        {
            "product": ["bnpl", "bnpl", "bnpl", "mortgage", "mortgage", "mortgage"],
            "paid_any": [1, 0, 1, 1, 0, 0],
            "full_coverage": [1, 0, 0, 1, 0, 0],
            "p_willingness": [0.9, 0.2, 0.7, 0.6, 0.5, 0.1],
            "p_ability": [0.8, 0.3, 0.2, 0.9, 0.1, 0.4],
            "age": [19.0, 30.0, 70.0, np.nan, 45.0, 30.0],
        }
    )


def test_performance_by_segment_counts_each_head_population():
    table = rv.performance_by(_pred(), "product", ["willingness", "ability"])
    will = table[table["head"] == "willingness"].set_index("group")
    abil = table[table["head"] == "ability"].set_index("group")
    assert will.loc["bnpl", "rows"] == 3 and will.loc["bnpl", "events"] == 2
    assert will.loc["bnpl", "auc"] == 1.0 and will.loc["mortgage", "auc"] == 1.0
    assert abil.loc["bnpl", "rows"] == 2 and abil.loc["mortgage", "rows"] == 1  # payers only
    assert table["rows"].dtype.kind == "i"
    assert will.loc["mortgage", "mean_prediction"] == pytest.approx(0.4)


def test_policy_bands_assign_tiers_and_stages():
    bands = rv.PolicyBands(
        tiers={"hi": ((0.5, 1.0), (0.0, 1.0)), "lo": ((0.0, 0.5), (0.0, 1.0))},
        dpd_stages={"early": (0, 31), "late": (31, None)},
    )
    assert bands.tier(np.array([0.2, 0.5, 1.0]), np.array([0.1, 0.9, 1.0])).tolist() == [
        "lo",
        "hi",
        "hi",
    ]
    assert bands.stage(np.array([0, 30, 31, 400])).tolist() == ["early", "early", "late", "late"]


def test_age_bands_scores_and_characteristic_bins():
    pred = _pred()
    edges = [25, 65]
    bands = rv.age_band(pred["age"], edges)
    assert bands.tolist() == ["under 25", "25-64", "65 and over", "unknown", "25-64", "25-64"]
    table = rv.score_by_band(pred, bands, rv.age_band_order(edges))
    assert table["band"].tolist() == ["under 25", "25-64", "65 and over", "unknown"]
    assert table["rows"].tolist() == [1, 3, 1, 1]
    mid = table.set_index("band").loc["25-64"]
    assert mid["mean_p_willingness"] == pytest.approx((0.2 + 0.5 + 0.1) / 3)
    assert mid["observed_paid_any"] == 0.0

    dev = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan])
    oot = pd.Series([1.0, 4.0, np.nan])
    char = rv.characteristic_table(dev, oot, np.array([1, 1, 0, 0, 1]), np.array([0, 1, 1]), 2)
    assert char["rows_dev"].sum() == 5 and char["rows_oot"].sum() == 3
    missing = char[char["bin"] == "99 missing"].iloc[0]
    assert missing["rows_dev"] == 1 and missing["event_rate_oot"] == 1.0


def test_missing_rates_count_per_frame():
    frames = {
        "train": pd.DataFrame({"a": [1.0, np.nan], "b": [1, 2]}),
        "test": pd.DataFrame({"a": [np.nan]}),
    }
    table = rv.missing_rates(frames, ["a", "b"]).set_index("feature")
    assert table.loc["a", "missing_train"] == 1 and table.loc["a", "missing_share_train"] == 0.5
    assert table.loc["b", "missing_test"] == 1  # a column absent from a frame counts as missing


def test_proxy_check_finds_a_feature_that_encodes_age():
    rng = np.random.default_rng(1)
    age = pd.Series(rng.integers(18, 80, 1200).astype(float))
    x = pd.DataFrame(
        {"leaky": age + rng.normal(0, 2, len(age)), "noise": rng.normal(size=len(age))}
    )
    bands = rv.age_band(age, [35, 55])
    tr, te = slice(0, 800), slice(800, None)
    table, drivers = rv.proxy_check(
        x.iloc[tr], bands[tr], x.iloc[te].reset_index(drop=True), bands[te]
    )
    assert table["proxy_auc"].min() > 0.9
    assert drivers.iloc[0]["feature"] == "leaky" and drivers.iloc[0]["gain_share"] > 0.8
    blind, _ = rv.proxy_check(x[["noise"]].iloc[tr], bands[tr], x[["noise"]].iloc[te], bands[te])
    assert blind["proxy_auc"].max() < 0.65


def test_protected_attributes_need_a_justification():
    assert config_from_dict({}).fairness.excluded == ("age",)
    with pytest.raises(ValueError, match="needs a justification"):
        config_from_dict({"fairness": {"include_protected": ["age"]}})
    with pytest.raises(ValueError, match="not in protected"):
        config_from_dict({"fairness": {"include_protected": ["region"], "justification": "x"}})
    ok = config_from_dict({"fairness": {"include_protected": ["age"], "justification": "legal"}})
    assert ok.fairness.excluded == ()
