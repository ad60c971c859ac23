"""The drift scenario of the simulator: each shift shows in the tables at its documented rate."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from models.evaluation import spearman
from pipeline.simulator import DEBTOR_TYPES, Parameters, drift_parameters, simulate_portfolio

N, MONTHS, START = 4000, 18, "2024-01-01"


@pytest.fixture(scope="module")
def drift():
    return simulate_portfolio(N, MONTHS, seed=31, start=START, params=drift_parameters())


@pytest.fixture(scope="module")
def base():
    return simulate_portfolio(N, MONTHS, seed=31, start=START)


def _opened_in_window(portfolio) -> pd.Series:
    accounts = portfolio.tables["accounts"].set_index("account_id")
    return pd.to_datetime(accounts["opened_date"]) >= pd.Timestamp(START)


def _monthly_truth(portfolio) -> pd.DataFrame:
    truth = portfolio.truth.assign(month=pd.to_datetime(portfolio.truth["month"]))
    return truth.groupby("month")[["willingness", "ability"]].mean()


def test_default_parameters_keep_the_stationary_portfolio():
    assert not Parameters().shifts and drift_parameters().shifts
    a = simulate_portfolio(300, 4, seed=2, start=START)
    b = simulate_portfolio(300, 4, seed=2, start=START, params=replace(Parameters()))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])


def test_willingness_falls_by_the_trend(drift, base):
    will = _monthly_truth(drift)["willingness"]
    fall = will.iloc[0] - will.iloc[-1]
    # 0.006 a month over 17 months is 0.10 (less where willingness is clipped at 0),
    # on top of the slow change the new, less willing customers bring.
    assert 0.07 < fall < 0.2
    steady = _monthly_truth(base)["willingness"]
    assert abs(steady.iloc[0] - steady.iloc[-1]) < 0.03


def test_the_mix_shifts_towards_difficult_debtors_and_new_products(drift):
    opened = _opened_in_window(drift)
    assert 0.40 < opened.mean() < 0.50  # opened_during_share 0.45
    first = drift.truth.drop_duplicates("account_id").set_index("account_id")["debtor_type"]
    good = first.reindex(opened.index).eq(DEBTOR_TYPES[0])
    assert 0.62 < good[opened].mean() < 0.74  # new customers: 68% good payers
    assert 0.80 < good[~opened].mean() < 0.88  # the book: 84%
    product = drift.tables["accounts"].set_index("account_id")["product"]
    small = product.isin(["microloan", "bnpl"])
    assert 0.52 < small[opened].mean() < 0.64  # 25% + 33% of the new accounts
    assert small[~opened].mean() < 0.36


def test_the_macro_shock_lowers_ability_for_four_months(drift):
    ability = _monthly_truth(drift)["ability"]
    first, months, _ = drift_parameters().macro_shock
    before = ability.iloc[first - 2 : first].mean()
    during = ability.iloc[first : first + months].mean()
    after = ability.iloc[first + months :].mean()
    assert during < before - 0.03  # ability is capped at 1, so the mean moves less
    assert after > during + 0.015  # capacity comes back when the shock ends


def test_the_share_of_accounts_paying_falls_faster_than_in_the_stationary_book(drift, base):
    def paying_share(portfolio) -> pd.Series:
        pay = portfolio.tables["payments"]
        month = pd.to_datetime(pay["paid_at"]).dt.tz_localize(None).dt.to_period("M")
        active = pd.DataFrame(
            {"account_id": pay["account_id"], "month": month.dt.to_timestamp(), "paid": 1}
        ).drop_duplicates()
        open_months = portfolio.truth.assign(month=pd.to_datetime(portfolio.truth["month"]))
        rows = open_months.merge(active, on=["account_id", "month"], how="left")
        return rows.fillna({"paid": 0}).groupby("month")["paid"].mean()

    def late_over_mid(s: pd.Series) -> float:
        # The last quarter against months 6-8 (after the warm start has settled).
        return s.iloc[-3:].mean() / s.iloc[6:9].mean()

    assert late_over_mid(paying_share(drift)) < late_over_mid(paying_share(base)) - 0.04


def test_behaviour_noise_weakens_the_link_between_the_traits_and_paying():
    def links(noise: float) -> tuple[float, float]:
        params = replace(Parameters(), behaviour_noise=noise)
        p = simulate_portfolio(3000, 8, seed=8, start=START, params=params)
        pay = p.tables["payments"]
        month = pd.to_datetime(pay["paid_at"]).dt.tz_localize(None).dt.to_period("M")
        active = pd.DataFrame(
            {"account_id": pay["account_id"], "month": month.dt.to_timestamp(), "paid": 1}
        ).drop_duplicates()
        truth = p.truth.assign(month=pd.to_datetime(p.truth["month"]))
        rows = truth.merge(active, on=["account_id", "month"], how="left").fillna({"paid": 0})
        return spearman(rows["willingness"], rows["paid"]), spearman(rows["ability"], rows["paid"])

    clean, noisy = links(0.0), links(0.3)
    # The truth table keeps the traits; behaviour follows them less closely.
    assert noisy[0] < clean[0] - 0.005 and noisy[1] < clean[1] - 0.005


def test_evaluate_refuses_an_unknown_scenario_with_one_line():
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, ["evaluate", "--scenario", "storm"])
    assert result.exit_code == 2
    assert "'storm' is unknown" in result.output and "Traceback" not in result.output
