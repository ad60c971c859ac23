"""The control group: one draw per delinquency episode, stable across nights, balanced."""

from __future__ import annotations

from pathlib import Path

import factories as f
import numpy as np
import pandas as pd
import pytest
import yaml

from features.build import build_features
from pipeline import policy as policy_module
from pipeline.control import episode_start, plan_id
from pipeline.plan import assign_plans
from pipeline.policy import parse_policy
from pipeline.score import scored_frame

D = pd.Timestamp("2025-03-01")
DEFAULT_FILE = Path(policy_module.__file__).with_name("default_policy.yaml")


def _policy(share: float = 0.05, tier_shares: dict[str, float] | None = None):
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data["control_share"] = share
    for tier in data["tiers"]:
        if tier_shares and tier["name"] in tier_shares:
            tier["control_share"] = tier_shares[tier["name"]]
    return parse_policy(data)


def _population(n: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dpd = rng.integers(1, 200, n)
    scored = pd.DataFrame(
        {
            "account_id": [f"ACC-{i:06d}" for i in range(n)],
            "dpd": dpd,
            "episode_days_current": dpd + rng.integers(0, 20, n),
            "arrears": rng.lognormal(6, 1, n),
            "p_willingness": rng.uniform(0, 1, n),
            "p_ability": rng.uniform(0, 1, n),
            "capacity": rng.uniform(0, 400, n),
            "installment_amount": rng.uniform(50, 400, n),
        }
    )
    accounts = f.accounts(n)
    accounts["account_id"] = scored["account_id"].to_numpy()
    return scored, accounts


def _night(scored: pd.DataFrame, k: int) -> pd.DataFrame:
    """The same accounts k nights later, still in the same episode."""
    return scored.assign(
        dpd=scored["dpd"] + k, episode_days_current=scored["episode_days_current"] + k
    )


def test_assignment_is_stable_across_nights_within_an_episode():
    scored, accounts = _population(8_000)
    policy = _policy()
    nights = [
        assign_plans(_night(scored, k), accounts, None, D + pd.Timedelta(days=k), policy, "v")
        for k in range(0, 30, 3)
    ]
    first = nights[0]["control_group"].to_numpy()
    assert 0.03 < first.mean() < 0.07
    for plans in nights[1:]:
        np.testing.assert_array_equal(plans["control_group"].to_numpy(), first)
    # The plan id is stable for account and date and differs between dates.
    assert nights[0]["plan_id"].iloc[0] == "20250301-ACC-000000"
    assert (nights[1]["plan_id"] != nights[0]["plan_id"]).all()


def test_a_new_episode_draws_afresh():
    scored, accounts = _population(20_000)
    policy = _policy()
    now = assign_plans(scored, accounts, None, D, policy, "v")["control_group"].to_numpy()
    # 60 days later every account is in a new episode (it cured in between).
    later_d = D + pd.Timedelta(days=60)
    again = scored.assign(episode_days_current=5, dpd=5)
    later = assign_plans(again, accounts, None, later_d, policy, "v")["control_group"].to_numpy()
    assert 0.04 < later.mean() < 0.06
    both = (now & later).mean()
    assert both < 0.006  # independent draws: about 0.05 x 0.05 = 0.0025, not 0.05


def test_control_and_treated_are_balanced_on_scores_dpd_and_arrears():
    scored, accounts = _population(20_000, seed=9)
    plans = assign_plans(scored, accounts, None, D, _policy(0.1), "v")
    control = plans["control_group"].to_numpy()
    for col in ("p_willingness", "p_ability", "dpd", "arrears"):
        x = scored[col].to_numpy(dtype=float)
        smd = (x[control].mean() - x[~control].mean()) / x.std()
        assert abs(smd) < 0.1, f"{col} unbalanced: standardised difference {smd:.3f}"
    by_tier = plans.groupby("risk_tier")["control_group"].mean()
    assert ((by_tier - 0.1).abs() < 0.03).all()


def test_share_per_tier_and_the_treated_plan_is_recorded():
    scored, accounts = _population(20_000, seed=4)
    policy = _policy(0.05, {"able_unwilling": 0.3})
    plans = assign_plans(scored, accounts, None, D, policy, "v")
    rate = plans.groupby("risk_tier")["control_group"].mean()
    assert abs(rate["able_unwilling"] - 0.3) < 0.03
    assert abs(rate.drop("able_unwilling") - 0.05).max() < 0.02
    probability = plans.groupby("risk_tier")["control_probability"].unique()
    assert probability["able_unwilling"].tolist() == [0.3]
    # What a control account would have had is what it gets without a control group.
    none = assign_plans(scored, accounts, None, D, _policy(0.0), "v")
    c = plans["control_group"].to_numpy()
    assert (plans.loc[c, "treated_offer"] == none.loc[c, "offer"]).all()
    assert (plans.loc[c, "treated_max_calls_7d"] == none.loc[c, "max_calls_7d"]).all()
    assert (plans.loc[c, "treated_contact_intensity"] == none.loc[c, "contact_intensity"]).all()
    assert (plans.loc[c, "offer"] == "reminder").all()


def test_episode_start_follows_the_ledger_through_a_partial_payment_and_a_cure():
    """A1 misses January, pays it in February (still behind on February), cures in March.

    DPD drops when the January installment is paid, but the episode that began
    on 2024-01-02 goes on; after the cure a missed April starts a new episode.
    """
    accounts = f.accounts(1)
    inst = f.installments(["A1"], n=6)
    pays = pd.DataFrame(
        {
            "payment_id": ["P1", "P2"],
            "account_id": ["A1", "A1"],
            "paid_at": f.utc("2024-02-10 10:00", "2024-03-05 10:00"),
            "amount": [100.0, 200.0],
            "channel": ["card", "card"],
        }
    )
    tables = {"accounts": accounts, "installments": inst, "payments": pays,
              "contacts": f.contacts().iloc[:0], "offers": f.offers().iloc[:0]}  # fmt: skip
    starts, dpds = [], []
    for day in ("2024-01-20", "2024-02-05", "2024-02-15", "2024-02-28", "2024-04-10"):
        feats = build_features(tables, pd.Timestamp(day))
        preds = pd.DataFrame({"p_willingness": [0.5], "p_ability": [0.5], "expected_share": [0.5]})
        scored = scored_frame(feats, preds)
        starts.append(episode_start(scored, pd.Timestamp(day)).iloc[0].date().isoformat())
        dpds.append(int(scored["dpd"].iloc[0]))
    assert starts[:4] == ["2024-01-02"] * 4
    assert dpds[2] < dpds[1]  # the partial payment moved the oldest unpaid installment
    assert starts[4] == "2024-04-02"


@pytest.mark.parametrize("day", ["2025-06-30", "2025-07-01"])
def test_plan_id_is_the_date_and_the_account(day):
    ids = plan_id(pd.Series(["A1", "B-2"]), pd.Timestamp(day))
    assert ids.tolist() == [f"{day.replace('-', '')}-A1", f"{day.replace('-', '')}-B-2"]
