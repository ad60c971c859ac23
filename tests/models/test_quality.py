"""Tests of the quality-bar figures against a latent truth table."""

from __future__ import annotations

import pandas as pd
import pytest

from models.config import config_from_dict
from models.quality import format_quality, quality_figures, truth_month
from models.synthetic import make_training_set
from models.training import train


def test_truth_month_is_the_label_horizon_month():
    dates = pd.Series(pd.to_datetime(["2024-01-31", "2024-02-29", "2024-12-31"]))
    assert truth_month(dates).tolist() == list(
        pd.to_datetime(["2024-02-01", "2024-03-01", "2025-01-01"])
    )
    assert truth_month(dates, "as_of").tolist() == list(
        pd.to_datetime(["2024-01-01", "2024-02-01", "2024-12-01"])
    )


@pytest.fixture(scope="module")
def run():
    data = make_training_set(n_accounts=3000, n_months=8, seed=21)
    result = train(data.frame, config_from_dict({"lightgbm": {"num_threads": 1}}), data.spec)
    return result, data.truth


def test_quality_figures_match_truth_rows_and_rank_the_latents(run):
    result, truth = run
    figs = quality_figures(result, truth)
    assert figs["truth_rows_matched"] == figs["truth_rows_expected"] == len(result.split.test)
    assert figs["willingness_auc_minus_dpd_rule"] == pytest.approx(
        result.metrics["willingness"]["test"]["auc"]
        - result.baseline_metrics["willingness"]["dpd_rule"]["test"]["auc"]
    )
    # The synthetic heads separate the two latent traits as the design intends.
    assert figs["ability_head_ranks_ability"] and figs["willingness_head_ranks_willingness"]
    assert figs["beats_dpd_rule"]
    text = format_quality(figs)
    assert "Spearman vs latent ability" in text and "overall:" in text


def test_truth_without_month_joins_on_account(run):
    result, truth = run
    per_account = truth.groupby("account_id", as_index=False)[["ability", "willingness"]].mean()
    figs = quality_figures(result, per_account)
    assert figs["truth_rows_matched"] == len(result.split.test)
