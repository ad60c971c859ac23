"""Tests of the value mode: offers by value under the compliance rules, allocation within capacity."""

from __future__ import annotations

from pathlib import Path

import factories
import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import policy as policy_module
from pipeline.plan import assign_plans
from pipeline.policy import PolicyError, parse_policy
from pipeline.value_mode import allowed_offers, assign_value_plans, plans_at_equal_capacity
from pipeline.value_plan import (
    VALUE_OFFERS,
    ValueAllocation,
    best_offers,
    offer_costs,
    offer_values,
)

DEFAULT_FILE = Path(policy_module.__file__).with_name("default_policy.yaml")
D = pd.Timestamp("2024-03-15")
VALUE = {
    "calls_per_day": 2,
    "sms_per_day": 100,
    "horizon_days": 7,
    "cost_per_call": 1.5,
    "cost_per_sms": 0.05,
    "contact_lift": {"low": 0.05, "medium": 0.10, "high": 0.12},
    "installment_plan": {"uptake": 0.5, "cost": 5.0, "deferral_cost": 0.05},
    "extension": {"uptake": 0.6, "cost": 2.0, "deferral_cost": 0.03},
    "staged_repayment": {"uptake": 0.35, "cost": 5.0, "deferral_cost": 0.08},
    "settlement": {"uptake": 0.4, "discount_pct": 30.0},
    "max_settlement_discount_pct": 40.0,
    "explore_share": 0.0,
}


def _policy(value=VALUE, **changes):
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data["control_share"] = 0.0
    data["value_allocation"] = value
    data.update(changes)
    return parse_policy(data, "test.yaml")


def _scored(*rows):
    """Rows of (arrears, p_willingness, p_ability, capacity, short_shock); dpd 20."""
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(1, len(rows) + 1)],
            "dpd": np.full(len(rows), 20, dtype=np.int64),
            "arrears": [float(r[0]) for r in rows],
            "p_willingness": [float(r[1]) for r in rows],
            "p_ability": [float(r[2]) for r in rows],
            "capacity": [float(r[3]) for r in rows],
            "installment_amount": [100.0] * len(rows),
            "short_shock": [float(r[4]) for r in rows],
        }
    )


def _best_names(scored, hardship=None, difficulty=None):
    cfg = ValueAllocation.model_validate(VALUE)
    n = len(scored)
    hardship = np.zeros(n, bool) if hardship is None else np.asarray(hardship)
    difficulty = hardship if difficulty is None else np.asarray(difficulty)
    recovery, _ = offer_values(scored, cfg)
    best, _ = best_offers(recovery, offer_costs(cfg), allowed_offers(hardship, difficulty))
    return [VALUE_OFFERS[i] for i in best[:, 2]]  # at medium intensity


def test_offers_follow_the_debtor_situation():
    scored = _scored(
        (1000, 0.95, 0.95, 300, 0.0),  # will and can: a reminder, no giveaway
        (1000, 0.9, 0.2, 200, 0.0),  # willing, unable, shown capacity: a plan
        (1000, 0.9, 0.2, np.nan, 0.0),  # willing, unable, nothing to size on: staged
        (1000, 0.9, 0.2, 200, 0.9),  # a short shock: an extension
        (1000, 0.05, 0.1, np.nan, 0.0),  # little recovery without it: settlement
    )
    assert _best_names(scored) == [
        "reminder",
        "installment_plan",
        "staged_repayment",
        "extension",
        "settlement",
    ]


def test_hardship_and_difficulty_rules_still_bind():
    scored = _scored((1000, 0.05, 0.1, np.nan, 0.0), (1000, 0.05, 0.1, np.nan, 0.0))
    names = _best_names(scored, hardship=[True, False], difficulty=[True, True])
    assert names[0] in {"installment_plan", "extension", "reminder"}
    assert names[1] in {"installment_plan", "extension", "reminder"}


def test_settlement_discount_is_held_within_the_policy_limit():
    bad = {**VALUE, "settlement": {"uptake": 0.4, "discount_pct": 50.0}}
    with pytest.raises(PolicyError, match="discount_pct 50.0 is above max_settlement_discount_pct"):
        _policy(bad)
    with pytest.raises(PolicyError, match="must not fall with intensity"):
        _policy({**VALUE, "contact_lift": {"low": 0.2, "medium": 0.1, "high": 0.3}})


def _world(n=8, hardship=None, suppressed=None):
    rng = np.random.default_rng(3)
    rows = [
        (rng.uniform(200, 5000), rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.9), 150, 0)
        for _ in range(n)
    ]
    scored = _scored(*rows)
    accounts = factories.accounts(n)
    if hardship is not None:
        accounts["hardship"] = hardship
    if suppressed is not None:
        accounts["dispute_open"] = suppressed
    return scored, accounts


def _contacts(account_id: str, n_calls: int) -> pd.DataFrame:
    times = pd.date_range("2024-03-11 15:00", periods=n_calls, freq="3h", tz="UTC")
    return pd.DataFrame(
        {
            "account_id": [account_id] * n_calls,
            "contact_at": times,
            "channel": ["call"] * n_calls,
            "direction": ["outbound"] * n_calls,
            "outcome": ["no_answer"] * n_calls,
        }
    )


def test_plan_stays_within_capacity_and_every_cap():
    hardship = [False, True, False, False, False, False, False, False]
    suppressed = [False, False, True, False, False, False, False, False]
    scored, accounts = _world(8, hardship, suppressed)
    policy = _policy()
    contacts = _contacts("A4", 7)  # the 7-in-7 rule is used up for A4
    plans = assign_value_plans(scored, accounts, contacts, D, policy, "v")
    assert plans["max_calls_7d"].sum() <= VALUE["calls_per_day"] * VALUE["horizon_days"]
    assert plans["max_sms_7d"].sum() <= VALUE["sms_per_day"] * VALUE["horizon_days"]
    by_id = plans.set_index("account_id")
    assert by_id.loc["A2", "contact_intensity"] in {"none", "low"}  # hardship max
    assert by_id.loc["A2", "offer"] not in {"settlement", "legal_review"}
    assert by_id.loc["A3", "contact_intensity"] == "none"  # dispute_open
    assert by_id.loc["A4", "max_calls_7d"] == 0  # legal cap from the log
    caps = {k: v.max_calls_7d for k, v in policy.intensity_caps.items()}
    assert (plans["max_calls_7d"] <= plans["contact_intensity"].map(caps)).all()
    assert (plans["max_calls_day"] <= plans["max_calls_7d"]).all()


def test_capacity_goes_to_the_accounts_worth_most():
    # Identical debtors except arrears: with room for one medium plan of calls,
    # the largest arrears get the calls.
    scored = _scored((500, 0.5, 0.5, 150, 0), (5000, 0.5, 0.5, 150, 0), (1500, 0.5, 0.5, 150, 0))
    accounts = factories.accounts(3)
    policy = _policy({**VALUE, "calls_per_day": 1, "horizon_days": 3, "sms_per_day": 100})
    plans = assign_value_plans(scored, accounts, None, D, policy, "v").set_index("account_id")
    assert plans["max_calls_7d"].sum() <= 3
    assert plans.loc["A2", "max_calls_7d"] == 3
    assert plans.loc["A1", "max_calls_7d"] == 0


def test_control_group_keeps_its_baseline_treatment():
    scored, accounts = _world(8)
    data_policy = _policy(control_share=0.5)
    fixed = assign_plans(scored, accounts, None, D, data_policy, "v")
    value = assign_value_plans(scored, accounts, None, D, data_policy, "v")
    control = fixed["control_group"].to_numpy()
    assert control.any()
    cols = ["contact_intensity", "max_calls_7d", "max_sms_7d", "offer"]
    pd.testing.assert_frame_equal(fixed.loc[control, cols], value.loc[control, cols])


def test_value_mode_needs_its_section():
    scored, accounts = _world(2)
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    with pytest.raises(ValueError, match="no value_allocation section"):
        assign_value_plans(scored, accounts, None, D, parse_policy(data), "v")


def test_equal_capacity_uses_no_more_than_the_fixed_tiers():
    scored, accounts = _world(8)
    fixed_policy = _policy()
    fixed = assign_plans(scored, accounts, None, D, fixed_policy, "v")
    value = plans_at_equal_capacity(scored, accounts, None, D, fixed_policy, _policy(), "v")
    assert value["max_calls_7d"].sum() <= fixed["max_calls_7d"].sum()
    assert value["max_sms_7d"].sum() <= fixed["max_sms_7d"].sum()
    assert value.attrs["allocation"]["calls_capacity"] == fixed["max_calls_7d"].sum() // 7 * 7


def test_packaged_value_settings_load_and_a_policy_section_wins(tmp_path):
    from pipeline.policy import load_policy  # noqa: PLC0415
    from pipeline.value_mode import with_value_allocation  # noqa: PLC0415

    policy = with_value_allocation(load_policy())
    assert policy.value_allocation.calls_per_day == 400
    own = _policy()
    assert with_value_allocation(own) is own
    bad = tmp_path / "bad.yaml"
    bad.write_text("calls_per_day: -1\n", "utf-8")
    with pytest.raises(PolicyError, match="invalid value settings"):
        with_value_allocation(load_policy(), bad)


def test_exploration_draws_lawful_intensities_within_capacity_and_caps():
    hardship = [False, True, False, False, False, False, False, False]
    suppressed = [False, False, True, False, False, False, False, False]
    scored, accounts = _world(8, hardship, suppressed)
    policy = _policy({**VALUE, "explore_share": 1.0, "calls_per_day": 100})
    contacts = _contacts("A4", 7)  # no call left for A4: medium and high give only texts
    plans = assign_value_plans(scored, accounts, contacts, D, policy, "v").set_index("account_id")
    assert plans.loc["A3", "arm"] == "plan"  # suppressed: never explored
    assert plans.loc["A3", "contact_intensity"] == "none"
    explored = plans.drop(index="A3")
    assert (explored["arm"] == explored["contact_intensity"]).all()
    assert plans.loc["A2", "arm"] in {"none", "low"}  # hardship's maximum
    assert plans.loc["A2", "arm_probability"] == pytest.approx(1 / 2)
    assert np.allclose(explored.drop(index="A2")["arm_probability"], 1 / 4)
    assert plans.loc["A4", "max_calls_7d"] == 0
    caps = {k: v.max_calls_7d for k, v in policy.intensity_caps.items()}
    assert (plans["max_calls_7d"] <= plans["contact_intensity"].map(caps)).all()
    # Capacity binds the explored too: one call a day for seven days.
    tight = _policy({**VALUE, "explore_share": 1.0, "calls_per_day": 1})
    small = assign_value_plans(scored, accounts, contacts, D, tight, "v")
    assert small["max_calls_7d"].sum() <= 7
    assert small["max_sms_7d"].sum() <= VALUE["sms_per_day"] * 7


def test_exploration_is_a_reproducible_share_per_episode():
    rng = np.random.default_rng(5)
    n = 400
    rows = [(rng.uniform(200, 5000), rng.uniform(0.2, 0.9), 0.5, 150, 0) for _ in range(n)]
    scored = _scored(*rows)
    accounts = factories.accounts(n)
    value = {**VALUE, "explore_share": 0.5, "calls_per_day": 10_000, "sms_per_day": 10_000}
    policy = _policy(value, control_share=0.1)
    plans = assign_value_plans(scored, accounts, None, D, policy, "v")
    arm = plans["arm"]
    control = plans["control_group"]
    assert (arm[control] == "control").all()
    assert (plans.loc[control, "arm_probability"] == 0.1).all()
    explored = arm.isin(["none", "low", "medium", "high"])
    assert 0.35 < explored.sum() / (~control).sum() < 0.65  # about half of the rest
    assert arm[explored].value_counts().min() >= 20  # every arm drawn
    assert np.allclose(plans.loc[explored, "arm_probability"], 0.5 * 0.9 / 4)
    assert plans.loc[arm == "plan", "arm_probability"].isna().all()
    # The same accounts in another order, on the next night of the same episodes: same arms.
    later = scored.iloc[::-1].assign(dpd=21)
    again = assign_value_plans(later, accounts, None, D + pd.Timedelta(days=1), policy, "v")
    pd.testing.assert_series_equal(
        again.set_index("account_id")["arm"].sort_index(),
        plans.set_index("account_id")["arm"].sort_index(),
    )
    # No exploration: only control and plan.
    off = assign_value_plans(scored, accounts, None, D, _policy(control_share=0.1), "v")
    assert set(off["arm"]) == {"control", "plan"}


def test_learned_effects_replace_the_prior_lift_and_never_fall_with_intensity():
    from pipeline.value_plan import EFFECT_COLUMNS  # noqa: PLC0415

    cfg = ValueAllocation.model_validate(VALUE)
    scored = _scored((1000, 0.4, 0.5, 150, 0), (1000, 0.4, 0.5, 150, 0), (800, 0.2, 0.5, 0, 0))
    learned = scored.assign(
        **dict(
            zip(
                EFFECT_COLUMNS,
                np.array([[0.02, 0.05, 0.04], [0.0, -0.01, 0.1], [np.nan] * 3]).T,
                strict=True,
            )
        )  # fmt: skip
    )
    reminder = offer_values(learned, cfg)[0][:, :, 0]
    base = 1000 * 0.4 * 0.5
    # Row 1: base + effect x arrears, high held at medium's 0.05 (no fall with intensity).
    np.testing.assert_allclose(reminder[0], base + 1000 * np.array([0, 0.02, 0.05, 0.05]))
    np.testing.assert_allclose(reminder[1], base + 1000 * np.array([0, 0, 0, 0.1]))
    # Row 3 has no estimate: the prior lift, as without effect columns.
    np.testing.assert_allclose(reminder[2], offer_values(scored, cfg)[0][2, :, 0])
    assert (np.diff(offer_values(learned, cfg)[0], axis=1) >= -1e-9).all()


def test_capacity_follows_the_learned_effects_within_every_cap():
    from pipeline.value_plan import EFFECT_COLUMNS  # noqa: PLC0415

    # The prior gives the calls to the largest arrears; the learned effect says
    # only A2 responds to contact, so A2 gets them.
    scored = _scored((5000, 0.5, 0.5, 150, 0), (1000, 0.5, 0.5, 150, 0), (1500, 0.5, 0.5, 150, 0))
    accounts = factories.accounts(3)
    policy = _policy({**VALUE, "calls_per_day": 1, "horizon_days": 3, "sms_per_day": 100})
    prior = assign_value_plans(scored, accounts, None, D, policy, "v").set_index("account_id")
    assert prior.loc["A1", "max_calls_7d"] == 3
    effects = np.array([[0.0, 0.0, 0.0], [0.05, 0.2, 0.3], [0.0, 0.0, 0.0]])
    learned = scored.assign(**dict(zip(EFFECT_COLUMNS, effects.T, strict=True)))
    plans = assign_value_plans(learned, accounts, None, D, policy, "v").set_index("account_id")
    assert plans.loc["A2", "max_calls_7d"] == 3
    assert plans["max_calls_7d"].sum() <= 3
    assert plans.loc[["A1", "A3"], "max_calls_7d"].eq(0).all()


def test_effects_from_an_uplift_model_need_the_four_intensity_arms():
    from models.uplift import fit_t_learner, planted_randomised_data  # noqa: PLC0415
    from pipeline.value_plan import EFFECT_COLUMNS, effects_from_model  # noqa: PLC0415

    arms = ("none", "low", "medium", "high")
    X, t, y, _ = planted_randomised_data(400, 1, arms)
    model = fit_t_learner(X, t, y, arms, rounds=5)
    eff = effects_from_model(model, X.head(3))
    assert eff.columns.tolist() == list(EFFECT_COLUMNS)
    expected = model.effects(X.head(3))[["low", "medium", "high"]].to_numpy()
    np.testing.assert_allclose(eff.to_numpy(), expected)
    other = fit_t_learner(
        X, np.where(t == "none", "control", t), y, ("control", *arms[1:]), rounds=5
    )
    with pytest.raises(ValueError, match="must be \\['none', 'low', 'medium', 'high'\\]"):
        effects_from_model(other, X.head(3))


def test_lawful_arms_counts_the_intensities_the_law_leaves_each_account():
    from features.vocab import CONTACT_INTENSITIES  # noqa: PLC0415

    hardship = [False, True, False, False, False, False]
    suppressed = [False, False, True, False, False, False]
    scored, accounts = _world(6, hardship, suppressed)
    promises = pd.DataFrame(
        {
            "account_id": ["A4"],
            "promised_date": pd.to_datetime(["2024-03-18"]),
            "deadline": pd.to_datetime(["2024-03-22"]),
            "state": ["pending"],
        }
    )  # an open promise holds every contact of A4 until the 22nd
    policy = _policy({**VALUE, "explore_share": 1.0, "calls_per_day": 100})
    plans = assign_value_plans(scored, accounts, None, D, policy, "v", promises)
    lawful = plans.set_index("account_id")["lawful_arms"]
    assert str(lawful.dtype) == "Int64"
    assert lawful[["A1", "A5", "A6"]].tolist() == [4, 4, 4]
    assert lawful["A2"] == 2  # hardship: none and low only
    assert lawful["A4"] == 1  # promise hold: none only
    assert pd.isna(lawful["A3"])  # suppressed: value mode did not plan it
    # Every explored arm was drawn uniformly among the lawful ones.
    explored = plans["arm"].isin(CONTACT_INTENSITIES)
    assert explored.sum() == 5 and plans.set_index("account_id").loc["A4", "arm"] == "none"
    np.testing.assert_allclose(
        plans.loc[explored, "arm_probability"], 1.0 / plans.loc[explored, "lawful_arms"]
    )
    # The control group, and the fixed-tier plan, have no count.
    half = assign_value_plans(scored, accounts, None, D, _policy(control_share=0.5), "v")
    assert (
        half["control_group"].any() and half.loc[half["control_group"], "lawful_arms"].isna().all()
    )
    assert assign_plans(scored, accounts, None, D, _policy(), "v")["lawful_arms"].isna().all()
