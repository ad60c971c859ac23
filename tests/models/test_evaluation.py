"""Tests of the evaluation metrics on tiny examples worked out by hand."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from models import evaluation as ev


def test_auc_and_gini_count_the_ordered_pairs():
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
    y, p = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert ev.auc(y, p) == pytest.approx(0.75)
    assert ev.gini(y, p) == pytest.approx(0.5)
    assert ev.auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert math.isnan(ev.auc([1, 1], [0.2, 0.3]))


def test_ks_of_a_perfectly_separated_set_is_one():
    assert ev.ks([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    assert ev.ks([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)
    # Cut at 0.2: all positives above (TPR 1), one negative above (FPR 0.5).
    assert ev.ks([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.5)


def test_brier_and_log_loss():
    assert ev.brier([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert ev.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(expected)
    assert math.isfinite(ev.log_loss([1, 0], [0.0, 1.0]))  # clipped, not infinite


def test_ece_over_equal_count_bins():
    # Bins {0.1, 0.2} (observed 0) and {0.8, 0.9} (observed 1): gaps 0.15 and 0.15.
    assert ev.expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 2) == pytest.approx(
        0.15
    )
    assert ev.expected_calibration_error([0, 1, 0, 1], [0.5] * 4, 2) == pytest.approx(0.0)
    # Unequal bins: 3 rows in 2 bins -> sizes 2 and 1.
    y, p = [1, 0, 1], [0.2, 0.4, 0.9]
    expected = (abs(1 - 0.6) + abs(1 - 0.9)) / 3
    assert ev.expected_calibration_error(y, p, 2) == pytest.approx(expected)


def test_decile_table_by_hand():
    y = [1, 1, 1, 0, 0, 1]
    p = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    t = ev.decile_table(y, p, n_bins=3)
    assert t["decile"].tolist() == [1, 2, 3]
    assert t["count"].tolist() == [2, 2, 2]
    assert t["events"].tolist() == [2, 1, 1]
    assert t["observed_rate"].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert t["mean_prediction"].tolist() == pytest.approx([0.85, 0.5, 0.15])
    assert t["lift"].tolist() == pytest.approx([1.5, 0.75, 0.75])
    assert t["cumulative_capture"].tolist() == pytest.approx([0.5, 0.75, 1.0])
    assert t["min_score"].tolist() == pytest.approx([0.8, 0.3, 0.1])


def test_spearman_drops_missing_pairs():
    assert ev.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ev.spearman([1, 2, 3, np.nan, 5], [1, 2, 3, 4, np.nan]) == pytest.approx(1.0)
    assert math.isnan(ev.spearman([1, 1, 1], [1, 2, 3]))


def test_binary_metrics_bundle():
    m = ev.binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], n_bins=2)
    assert m["auc"] == pytest.approx(1.0) and m["ks"] == pytest.approx(1.0)
    assert m["n"] == 4 and m["event_rate"] == pytest.approx(0.5)
    assert m["ece"] == pytest.approx(0.15)


def test_plots_render_to_png_without_a_display():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    curves = {"model": (y, p), "baseline": (y, rng.random(200))}
    figures = [
        ev.plot_roc(curves, "roc"),
        ev.plot_calibration({"model": (y, p)}, "cal"),
        ev.plot_gains(curves, "gains"),
        ev.plot_importance(pd.DataFrame({"feature": ["a", "b"], "gain": [3.0, 1.0]}), "imp"),
        ev.plot_shap_summary(
            rng.normal(size=(200, 2)),
            pd.DataFrame({"a": rng.random(200), "b": rng.random(200)}),
            "shap",
        ),
    ]
    assert len(figures[0].axes[0].lines) == 3  # two curves and the diagonal
    for fig in figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
