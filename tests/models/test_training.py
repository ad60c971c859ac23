"""Tests of a whole training run on a synthetic training set (no MLflow)."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from models.config import config_from_dict
from models.heads import HEADS, design_matrix, fit_level_shift
from models.review import PolicyBands
from models.spec import FeatureSpec
from models.splits import SPLIT_NAMES
from models.synthetic import make_training_set
from models.training import fingerprint, train

CONFIG = config_from_dict({"lightgbm": {"num_threads": 1}})


@pytest.fixture(scope="module")
def data():
    return make_training_set(n_accounts=3000, n_months=10, seed=0)


BANDS = PolicyBands(
    tiers={
        "self_cure": ((0.6, 1.0), (0.5, 1.0)),
        "willing_unable": ((0.6, 1.0), (0.0, 0.5)),
        "able_unwilling": ((0.0, 0.6), (0.5, 1.0)),
        "unable_unwilling": ((0.0, 0.6), (0.0, 0.5)),
    },
    dpd_stages={"early": (0, 31), "mid": (31, 91), "late": (91, None)},
    source="policy test-1",
)


def _with_segments(frame, seed=0):
    """Add an age per account (unrelated to payment) and a jurisdiction, as train_job does."""
    rng = np.random.default_rng(seed)
    ids = frame["account_id"].unique()
    age = dict(zip(ids, rng.integers(18, 85, len(ids)).astype(float), strict=True))
    place = dict(zip(ids, rng.choice(["us_reg_f", "uk_conc"], len(ids)), strict=True))
    return frame.assign(
        age=frame["account_id"].map(age), jurisdiction=frame["account_id"].map(place)
    )


@pytest.fixture(scope="module")
def result(data):
    frame = _with_segments(data.frame)
    return train(frame, CONFIG, data.spec, data_window={"horizon_days": 30}, bands=BANDS)


def test_splits_are_by_time_and_cover_the_set(result, data):
    months = result.split.months
    assert max(months["train"]) < min(months["validation"])
    assert max(months["validation"]) < min(months["test"])
    assert len(months["test"]) == 2 and len(months["validation"]) == 2
    assert result.split_summary["rows"].sum() == len(data.frame)
    assert result.split_summary["split"].tolist() == list(SPLIT_NAMES)


def test_metrics_per_head_and_split(result):
    for head in HEADS:
        for split in SPLIT_NAMES:
            m = result.metrics[head][split]
            assert 0.5 < m["auc"] <= 1.0
            assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
            assert 0 <= m["ece"] < 0.2 and 0 < m["brier"] < 0.25
    test = result.predictions["test"]
    payers = int((test["paid_any"] == 1).sum())
    assert result.metrics["ability"]["test"]["n"] == payers
    assert result.metrics["willingness"]["test"]["n"] == len(test)


def test_the_heads_beat_both_baselines_out_of_time(result):
    for head in HEADS:
        model_auc = result.metrics[head]["test"]["auc"]
        for name in ("dpd_rule", "scorecard"):
            assert model_auc > result.baseline_metrics[head][name]["test"]["auc"], (head, name)


def test_tables_cover_the_populations(result):
    test = result.predictions["test"]
    assert result.deciles["willingness_test"]["count"].sum() == len(test)
    assert result.deciles["ability_test"]["count"].sum() == int(test["paid_any"].sum())
    scores = {"p_willingness", "p_ability", "expected_share"}
    assert set(result.psi["variable"]) == {*result.spec.columns, *scores}
    assert set(result.psi["flag"]) <= {"stable", "moderate", "major"}
    for head in HEADS:
        assert set(result.importance[head]["feature"]) == set(result.spec.columns)
        summary = result.shap_summary[head].set_index("feature")
        assert summary.loc["product", "direction"] == "by category"
    # The strongest willingness signal in the synthetic data lowers it as it grows.
    will = result.shap_summary["willingness"].set_index("feature")
    assert will.loc["promises_broken_90d", "direction"] == "higher lowers"
    assert will.loc["dpd", "monotone"] == "decreasing"


def test_expected_share_estimates_coverage_of_payers(result):
    for split in ("validation", "test"):
        m = result.metrics["ability"][split]
        assert m["share_mae"] < 0.3 and abs(m["share_bias"]) < 0.05
    test = result.predictions["test"]
    assert test["expected_share"].between(0, 1).all()
    # Higher ability scores never mean a lower expected share (a monotone map).
    order = np.argsort(
        result.model.boosters["ability"].predict(result.split.test[list(result.spec.columns)])
    )
    assert (np.diff(test["expected_share"].to_numpy()[order]) >= 0).all()


def test_drift_reference_is_the_newest_month_fitted_on(result):
    # The reference is the last validation month (features and out-of-sample
    # scores), not the pool: that month compares to it with PSI 0, an older one does not.
    last = result.split.months["validation"][-1]
    assert result.model.metadata["drift_reference_months"] == [str(last.date())]
    newest = result.split.validation["as_of_date"] == last
    view = result.split.validation.loc[newest].assign(
        p_willingness=result.predictions["validation"].loc[newest, "p_willingness"].to_numpy()
    )
    drift = result.model.drift(view)
    assert drift["psi"].max() < 1e-9
    assert "p_willingness" in set(drift["variable"])
    shifted = view.assign(dpd=view["dpd"] + 200)
    assert result.model.drift(shifted).set_index("variable").loc["dpd", "flag"] == "major"


def test_calibration_is_reported_per_month(result):
    for head in HEADS:
        for split in ("validation", "test"):
            table = result.calibration_by_month[f"{head}_{split}"]
            assert table["month"].tolist() == [str(d.date()) for d in result.split.months[split]]
            pred = result.predictions[split]
            rows = pred if head == "willingness" else pred.loc[pred["paid_any"] == 1]
            assert table["rows"].sum() == len(rows)
        last = result.calibration_by_month[f"{head}_test"].iloc[-1]
        test = result.metrics[head]["test"]
        assert test["last_month_over_prediction"] == pytest.approx(last["over_prediction"])
        assert test["last_month_ece"] == pytest.approx(last["ece"])


def test_calibration_level_is_anchored_on_the_newest_validation_month(result):
    # recent_months=1: the level shift is the one that matches the last
    # validation month's rate, shrunk by shift_z (2) standard errors of it.
    val = result.split.validation
    newest = (val["as_of_date"] == result.split.months["validation"][-1]).to_numpy()
    X = design_matrix(val.loc[newest], result.spec)
    raw = result.model.boosters["willingness"].predict(X)
    cal = result.model.calibrators["willingness"]
    y = val.loc[newest, "paid_any"].to_numpy()
    exact = fit_level_shift(cal.with_shift(0.0).transform(raw), y)
    rate = y.mean()
    noise = 2.0 / np.sqrt(len(y) * rate * (1 - rate))
    assert cal.shift == pytest.approx(np.sign(exact) * max(abs(exact) - noise, 0.0), abs=1e-9)
    # With shift_z 0 the calibrated mean of that month is its observed rate.
    moved = cal.with_shift(exact).transform(raw)
    assert moved.mean() == pytest.approx(rate, abs=1e-6)


def test_flat_metrics_names(result):
    flat = result.flat_metrics()
    for name in (
        "willingness_test_auc",
        "ability_validation_ece",
        "baseline_dpd_rule_willingness_test_auc",
        "baseline_scorecard_ability_test_ks",
        "rows_train",
        "paid_any_rate_test",
        "full_coverage_rate_validation",
    ):
        assert name in flat
    assert all(isinstance(v, float) for v in flat.values())


def test_training_is_deterministic(result, data):
    again = train(data.frame, CONFIG, data.spec, data_window={"horizon_days": 30})
    assert again.flat_metrics() == result.flat_metrics()
    for head in HEADS:
        assert (
            again.model.boosters[head].model_to_string()
            == result.model.boosters[head].model_to_string()
        )
    assert again.fingerprint == result.fingerprint


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.headings, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "src" in attrs:
            self.srcs.append(attrs["src"])
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def test_report_is_self_contained_with_every_section(result):
    parser = _Collector()
    parser.feed(result.report_html)
    assert parser.srcs and all(s.startswith("data:image/png;base64,") for s in parser.srcs)
    assert parser.hrefs == []  # nothing to fetch: no stylesheet, script or link
    assert len(parser.srcs) == 3 * 2 * 2 + 2 * 2  # roc/cal/gains x heads x splits + shap/imp
    text = " ".join(parser.headings).lower()
    for section in (
        "summary for the committee",
        "identity",
        "purpose and population",
        "data window",
        "willingness head against the baselines",
        "ability head against the baselines",
        "calibration by decile",
        "stability",
        "performance by segment",
        "top features",
        "characteristic analysis",
        "missing values",
        "fair lending",
        "known limitations",
        "gate figures",
        "treatment effects",
        "configuration",
    ):
        assert section in text, section
    html = result.report_html
    for words in (
        "Labels",
        "Splits",
        "horizon_days",
        result.fingerprint,
        result.trained_at,
        "not registered (report rendered at training",  # identity before logging
        "95% CI",
        "Performance by month",
        "By policy band (policy test-1)",
        "Jurisdiction</h3><table>",
        "DPD stage</h3><table>",
        "Risk tier of the policy</h3><table>",
        "Score distribution by age band",
        "Proxy check",
        "excluded from the features",
        "No treatment-effect model: no randomised data was given to this run",
    ):
        assert words in html, words
    # Every month of every split has a row per head; counts are printed as integers.
    months = result.review["monthly"]
    assert len(months) == 2 * result.split_summary["months"].sum()
    assert months.groupby("head")["rows"].sum()["willingness"] == result.split_summary["rows"].sum()
    first = result.deciles["willingness_test"].iloc[0]
    assert f"<td>{int(first['events']):,}</td>" in html
    assert f"<td>{float(first['events']):.4f}</td>" not in html
    top = result.shap_summary["willingness"]["feature"].head(5)
    assert all(f"characteristic_{f}" in result.review for f in top)
    # Age is unrelated to payment here: the features do not predict its band.
    assert result.review["age_proxy"]["proxy_auc"].max() < 0.65


def test_age_is_left_out_unless_justified_and_always_reviewed(data):
    frame = _with_segments(data.frame, seed=1)
    spec = FeatureSpec(
        columns=(*data.spec.columns, "age"),
        categorical=data.spec.categorical,
        monotone_willingness=data.spec.monotone_willingness,
        monotone_ability=data.spec.monotone_ability,
        code_version=data.spec.code_version,
    )
    default = train(frame, CONFIG, spec)
    assert "age" not in default.spec.columns and default.excluded == ("age",)
    assert "age" not in default.model.spec.columns
    assert "age_band_scores" in default.review  # reviewed although not a feature
    assert "By policy band" in default.report_html and "No policy bands" in default.report_html
    justified = config_from_dict(
        {
            "lightgbm": {"num_threads": 1},
            "fairness": {"include_protected": ["age"], "justification": "counsel memo 12"},
        }
    )
    used = train(frame, justified, spec)
    assert "age" in used.model.spec.columns and used.excluded == ()
    assert "Protected attribute(s) used as features: age" in used.report_html
    assert "counsel memo 12" in used.report_html


def test_bad_training_sets_are_refused(data):
    frame = data.frame.head(200).copy()
    with pytest.raises(KeyError, match="coverage"):
        train(frame.drop(columns=["coverage"]), CONFIG, data.spec)
    bad = frame.copy()
    bad.loc[bad.index[0], "paid_any"] = 2
    with pytest.raises(ValueError, match="paid_any must be 0 or 1"):
        train(bad, CONFIG, data.spec)
    dupes = frame.copy()
    dupes.loc[dupes.index[1], ["account_id", "as_of_date"]] = dupes.loc[
        dupes.index[0], ["account_id", "as_of_date"]
    ].to_numpy()
    with pytest.raises(ValueError, match="duplicate"):
        train(dupes, CONFIG, data.spec)


def test_fingerprint_changes_with_any_value(data):
    frame = data.frame.head(100)
    changed = frame.copy()
    changed.loc[changed.index[5], "dpd"] = changed.loc[changed.index[5], "dpd"] + 1
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) != fingerprint(changed)
