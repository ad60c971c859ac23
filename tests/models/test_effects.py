"""Tests of the treatment-effect assessment and its section of the model report."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pytest

from models import report
from models.effects import (
    EFFECT_TABLE_COLUMNS,
    assess_effects,
    effects_metrics,
    no_effects,
    observed_effect,
    ranking_sentence,
)
from models.report_sections import effects_summary
from models.uplift import evaluate_uplift, planted_randomised_data

ARMS = ("none", "low", "medium", "high")


@pytest.fixture(scope="module")
def planted():
    X, t, y, true = planted_randomised_data(8000, 3, ARMS)
    return X, t, y, assess_effects(X, t, y, ARMS, "planted data", seed=5, n_boot=100)


def test_figures_are_the_computed_ones(planted):
    X, t, y, eff = planted
    assert list(eff.table.columns) == list(EFFECT_TABLE_COLUMNS)
    assert eff.table["arm"].tolist() == ["low", "medium", "high"]
    fit = np.random.default_rng(5).random(len(y)) >= 0.3  # the documented held-out draw
    held, _ = evaluate_uplift(eff.model, X.loc[~fit], t[~fit], y[~fit])
    for row, h in zip(eff.table.itertuples(), held.itertuples(), strict=True):
        assert row.units == (t == row.arm).sum() and row.baseline_units == (t == "none").sum()
        assert row.observed_effect == pytest.approx(y[t == row.arm].mean() - y[t == "none"].mean())
        assert row.ci_low < row.observed_effect < row.ci_high
        assert row.heldout_units == h.rows == ((t[~fit] == row.arm) | (t[~fit] == "none")).sum()
        assert row.qini_coefficient == pytest.approx(h.qini_coefficient)
        assert row.predicted_effect == pytest.approx(h.predicted_effect)
        assert row.qini_ci_low <= row.qini_coefficient <= row.qini_ci_high
    # The planted effect is 0.3 * persuadable * j / (j + 1): strong enough to rank by.
    high = eff.table.set_index("arm").loc["high"]
    assert high.qini_ci_low > 0
    assert "better than chance" in ranking_sentence(high.to_dict() | {"arm": "high"}, "none")
    metrics = effects_metrics(eff)
    assert metrics["uplift_qini_high"] == pytest.approx(high.qini_coefficient)
    assert metrics["uplift_units_low"] == (t == "low").sum()


def test_no_effect_is_not_called_better_than_chance():
    X, t, _, _ = planted_randomised_data(3000, 4, ("none", "high"))
    y = np.random.default_rng(1).random(len(t))  # outcome independent of everything
    eff = assess_effects(X, t, y, ("none", "high"), "noise", seed=2, n_boot=100)
    row = eff.table.iloc[0]
    assert row.qini_ci_low < 0 < row.qini_ci_high
    assert "does not rank accounts by the effect distinguishably" in ranking_sentence(row, "none")


@pytest.mark.parametrize(
    ("lo", "hi", "words"),
    [(0.001, 0.01, "better than chance"), (-0.01, 0.01, "distinguishably from chance"),
     (-0.01, -0.001, "worse than chance: do not target")],
)  # fmt: skip
def test_ranking_sentence_reads_the_interval(lo, hi, words):
    row = {"arm": "low", "qini_coefficient": (lo + hi) / 2, "qini_ci_low": lo, "qini_ci_high": hi}
    text = ranking_sentence(row, "control")
    assert text.startswith("low vs control: the model") and words in text
    assert f"95% CI {lo:.4f} to {hi:.4f}" in text


def test_short_arms_are_dropped_and_too_little_data_means_no_model():
    X, t, y, _ = planted_randomised_data(2000, 6, ARMS)
    t = t.copy()
    t[np.flatnonzero(t == "medium")[40:]] = "low"  # medium keeps 40 units
    eff = assess_effects(X, t, y, ARMS, "x", n_boot=20)
    assert eff.arms == ("none", "low", "high") and eff.dropped == {"medium": 40}
    small = assess_effects(X.head(150), t[:150], y[:150], ARMS, "tiny", n_boot=20)
    assert small.model is None and "too few randomised units" in small.reason


def test_observed_effect_interval_by_hand():
    y = np.array([0.5, 0.7, 0.1, 0.3])
    m, lo, hi = observed_effect(y, np.array([True, True, False, False]))
    half = 1.959963984540054 * np.sqrt(0.02 / 2 + 0.02 / 2)
    assert (m, lo, hi) == pytest.approx((0.4, 0.4 - half, 0.4 + half))


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.imgs, self._td = [], 0, False

    def handle_starttag(self, tag, attrs):
        self._td = tag == "td"
        self.imgs += tag == "img"

    def handle_data(self, data):
        if self._td:
            self.cells.append(data)
            self._td = False


def _section(effects) -> str:
    parts: list[str] = []
    report._effects_section(SimpleNamespace(effects=effects), parts.append)
    return "".join(parts)


def test_report_section_shows_the_computed_figures(planted):
    *_, eff = planted
    page = _section(eff)
    parser = _Cells()
    parser.feed(page)
    assert parser.imgs == 3  # one Qini curve per arm
    shown = parser.cells
    for row in eff.table.itertuples():
        i = shown.index(row.arm)
        assert shown[i + 1] == f"{row.units:,}" and shown[i + 2] == f"{row.baseline_units:,}"
        figures = [row.observed_effect, row.ci_low, row.ci_high]
        assert shown[i + 3 : i + 6] == [f"{v:.4f}" for v in figures]
        assert shown[i + 7 : i + 9] == [
            f"{row.predicted_effect:.4f}",
            f"{row.qini_coefficient:.4f}",
        ]
        assert f"{row.arm} vs none: the model" in page
    assert re.search(
        r"high vs none: the model ranks accounts by the effect better than chance", page
    )


def test_report_says_when_there_is_no_model():
    page = _section(None)
    assert "No treatment-effect model: no randomised data was given to this run" in page
    short = no_effects("logged plans in p/", "too few randomised units")
    assert "No treatment-effect model: too few randomised units" in _section(short)
    assert effects_summary(SimpleNamespace(effects=short)).startswith("No treatment-effect model")


def test_summary_counts_units_and_arms(planted):
    X, t, y, eff = planted
    text = effects_summary(SimpleNamespace(effects=eff))
    assert f"on {len(t):,} randomised units (planted data)" in text
    assert f"ranks {int((eff.table['qini_ci_low'] > 0).sum())} of 3 arm(s)" in text
