"""Tests of the policy engine: tiers, stages, offers, compliance and the control group.

Most tests switch the control group off (``control_share: 0``) so that every
account gets its tier's treatment; the control-group tests switch it on.
"""

from __future__ import annotations

from pathlib import Path

import factories
import numpy as np
import pandas as pd
import pytest
import yaml

from features.vocab import SUPPRESSING_STATUSES
from pipeline import policy as policy_module
from pipeline.control import episode_uniform
from pipeline.plan import PLAN_COLUMNS, assign_plans, size_installments
from pipeline.policy import Policy, parse_policy

# Read beside the module: the tests/pipeline folder may shadow the package name.
DEFAULT_FILE = Path(policy_module.__file__).with_name("default_policy.yaml")
D = pd.Timestamp("2024-03-15")
VERSION = "abc123def456"


def make_policy(**changes) -> Policy:
    """The default policy, control group off, with top-level keys changed."""
    text = DEFAULT_FILE.read_text("utf-8")
    data = yaml.safe_load(text)
    data["control_share"] = 0.0
    data.update(changes)
    return parse_policy(data)


def make_scored(*rows: tuple) -> pd.DataFrame:
    """Scored accounts from (dpd, arrears, p_willingness, p_ability, capacity, installment)."""
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(1, len(rows) + 1)],
            "dpd": np.array([r[0] for r in rows], dtype=np.int64),
            "arrears": [float(r[1]) for r in rows],
            "p_willingness": [float(r[2]) for r in rows],
            "p_ability": [float(r[3]) for r in rows],
            "capacity": [float(r[4]) for r in rows],
            "installment_amount": [float(r[5]) for r in rows],
        }
    )


def no_contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": pd.Series(dtype=object),
            "contact_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "channel": pd.Series(dtype=object),
            "direction": pd.Series(dtype=object),
            "outcome": pd.Series(dtype=object),
        }
    )


def plan(scored, accounts=None, contacts=None, policy=None) -> pd.DataFrame:
    accounts = factories.accounts(len(scored)) if accounts is None else accounts
    contacts = no_contacts() if contacts is None else contacts
    return assign_plans(scored, accounts, contacts, D, policy or make_policy(), VERSION)


# --- tiers and stages -------------------------------------------------------------


def test_tiers_follow_the_rectangles_with_edges_on_the_right_side():
    scored = make_scored(
        (10, 100, 0.6, 0.5, 50, 100),  # on both lower edges: self_cure
        (10, 100, 0.5999, 0.5, 50, 100),
        (10, 100, 1.0, 1.0, 50, 100),  # the top corner belongs to a tier
        (10, 100, 0.0, 0.0, 50, 100),
        (10, 100, 0.9, 0.2, 50, 100),
    )
    out = plan(scored)
    assert out["risk_tier"].tolist() == [
        "self_cure",
        "able_unwilling",
        "self_cure",
        "unable_unwilling",
        "willing_unable",
    ]
    assert out.columns.tolist() == list(PLAN_COLUMNS)
    assert (out["policy_version"] == VERSION).all()


def test_self_curing_early_get_a_reminder_at_low_intensity():
    out = plan(make_scored((10, 100, 0.9, 0.9, 50, 100)))
    row = out.iloc[0]
    assert (row.offer, row.contact_intensity, row.dpd_stage) == ("reminder", "low", "early")
    assert (row.max_calls_7d, row.max_sms_7d) == (0, 2)
    assert row.channel_order == "sms,app_push,email"  # the tier allows no calls anyway
    assert row.contact_window == "08:00-21:00"
    assert row.suppressed_reason is None


def test_mid_stage_steps_intensity_and_caps_up():
    out = plan(make_scored((45, 100, 0.9, 0.9, 50, 100), (45, 100, 0.1, 0.9, 50, 100)))
    assert out["contact_intensity"].tolist() == ["medium", "high"]
    # self_cure rises to the medium caps (3, 3); able_unwilling keeps its own (6, 4).
    assert out["max_calls_7d"].tolist() == [3, 6]
    assert out["max_sms_7d"].tolist() == [3, 4]
    assert out["channel_order"].tolist() == ["sms,app_push,email", "call,sms,letter"]


def test_able_unwilling_get_firm_contact_and_legal_review_only_when_late():
    out = plan(make_scored((10, 500, 0.2, 0.8, 0, 100), (120, 500, 0.2, 0.8, 0, 100)))
    assert out["risk_tier"].tolist() == ["able_unwilling"] * 2
    assert out["contact_intensity"].tolist() == ["high", "high"]
    assert out["offer"].tolist() == ["reminder", "legal_review"]
    assert out["offer_installment"].isna().all()


def test_unable_unwilling_get_staged_repayment_then_settlement_when_late():
    out = plan(make_scored((20, 900, 0.2, 0.2, 60, 100), (200, 900, 0.2, 0.2, 60, 100)))
    assert out["offer"].tolist() == ["staged_repayment", "settlement"]
    # Rising steps 60, 120, .., 300: the first within the capacity shown.
    assert out["offer_installment"].iloc[0] == 60.0
    assert out["offer_n_installments"].iloc[0] == 5
    assert out["offer_step_amounts"].iloc[0] == "60.00,120.00,180.00,240.00,300.00"
    assert out["offer_first_due_date"].iloc[0] == D + pd.Timedelta(days=7)
    assert np.isnan(out["offer_installment"].iloc[1]) and out["offer_step_amounts"].iloc[1] is None


# --- offers sized within the capacity shown ---------------------------------------


def test_willing_unable_get_a_plan_within_their_capacity():
    scored = make_scored(
        (20, 1000, 0.9, 0.1, 150, 200),  # capacity 150 -> 7 x 150
        (20, 1000, 0.9, 0.1, np.nan, 200),  # no payments shown: half the usual 200
        (20, 1000, 0.9, 0.1, 333.3333, 200),  # rounded down to the cent: 4 installments
        (20, 120, 0.9, 0.1, 300, 200),  # capacity above arrears: still two installments
        (20, 6000, 0.9, 0.1, 20, 200),  # 300 x 20 is too long: 24 x 250 at most
        (20, 15, 0.9, 0.1, 5, 200),  # too small for two installments of 10: an extension
    )
    out = plan(scored)
    assert out["offer"].tolist() == ["installment_plan"] * 5 + ["extension"]
    assert out["offer_installment"].tolist() == [150.0, 100.0, 333.33, 60.0, 250.0, 10.0]
    assert out["offer_n_installments"].tolist() == [7, 10, 4, 2, 24, 2]


def test_sized_installments_never_exceed_capacity_and_cover_the_arrears():
    rng = np.random.default_rng(3)
    n = 200
    arrears = rng.uniform(1.5, 5000, n).round(2)
    capacity = np.where(rng.uniform(size=n) < 0.2, np.nan, rng.uniform(0.005, 800, n))
    inst, k = size_installments(
        ["installment_plan"] * n, arrears, capacity, [250.0] * n, 0.5, 24, 10.0
    )
    shown = ~np.isnan(capacity) & (capacity >= 0.01)
    # Within capacity unless the 24-installment maximum or the minimum of 10 forces more.
    floor = np.maximum(np.ceil(arrears / 24 * 100) / 100, 10.0)
    assert (inst[shown] <= np.maximum(capacity[shown], floor[shown]) + 1e-9).all()
    assert (k.to_numpy(dtype=float) <= 24).all()
    assert (inst * k.to_numpy(dtype=float) >= arrears - 1e-9).all()
    assert (inst * (k.to_numpy(dtype=float) - 1) < arrears).all()


def test_size_installments_leaves_other_offers_unsized():
    inst, k = size_installments(["reminder", "settlement"], [100.0, 100.0], [50.0, 50.0], [80, 80])
    assert np.isnan(inst).all() and k.isna().all()


# --- compliance in the plan -------------------------------------------------------


@pytest.mark.parametrize("status", SUPPRESSING_STATUSES)
def test_every_suppressing_status_stops_all_contact(status):
    scored = make_scored((120, 500, 0.2, 0.8, 0, 100), (120, 500, 0.2, 0.8, 0, 100))
    accounts = factories.accounts(2, **{status: [True, False]})
    out = plan(scored, accounts)
    row = out.iloc[0]
    assert row.suppressed_reason == status
    assert (row.contact_intensity, row.max_calls_7d, row.max_sms_7d) == ("none", 0, 0)
    assert row.max_calls_day == 0
    assert row.channel_order == "" and row.contact_window is None
    assert row.offer == "none"
    assert out.iloc[1].suppressed_reason is None and out.iloc[1].offer == "legal_review"


def test_override_offer_applies_to_a_suppressed_status():
    policy = make_policy(overrides={"do_not_contact": {"offer": "reminder"}}, control_share=0.0)
    scored = make_scored((200, 500, 0.2, 0.2, 0, 100), (200, 500, 0.2, 0.2, 0, 100))
    accounts = factories.accounts(2, do_not_contact=[True, True], hardship=[False, True])
    out = plan(scored, accounts, policy=policy)
    assert out["contact_intensity"].tolist() == ["none", "none"]
    assert out["offer"].tolist() == ["reminder", "reminder"]
    assert out["limit_reasons"].tolist() == ["do_not_contact", "do_not_contact,hardship"]


def test_hardship_never_gets_settlement_or_legal_review():
    scored = make_scored(
        (200, 900, 0.2, 0.2, 60, 100),  # late unable_unwilling: settlement without hardship
        (200, 900, 0.2, 0.8, 60, 100),  # late able_unwilling: legal_review without hardship
        (10, 900, 0.9, 0.1, 60, 100),  # willing_unable: already a plan
        (10, 900, 0.9, 0.9, 60, 100),  # self_cure: reminder
    )
    accounts = factories.accounts(4, hardship=[True] * 4)
    out = plan(scored, accounts)
    assert out["offer"].tolist() == ["installment_plan"] * 4
    assert not out["offer"].isin(["settlement", "legal_review"]).any()
    # Contact capped at overrides.hardship.max_intensity (low: 1 call, 2 texts).
    assert out["contact_intensity"].tolist() == ["low"] * 4
    assert (out["max_calls_7d"] <= 1).all() and (out["max_sms_7d"] <= 2).all()
    assert out["offer_installment"].tolist() == [60.0] * 4


def test_hardship_keeps_an_extension_the_tier_offers():
    data_tiers = make_policy().model_dump()["tiers"]
    data_tiers[1]["offer"] = "extension"
    policy = make_policy(tiers=data_tiers)
    accounts = factories.accounts(1, hardship=[True])
    out = plan(make_scored((10, 300, 0.9, 0.1, 100, 100)), accounts, policy=policy)
    assert out["offer"].tolist() == ["extension"]


def test_us_caps_are_the_lesser_of_tier_and_what_the_log_leaves():
    scored = make_scored(*[(120, 500, 0.2, 0.8, 0, 100)] * 4)  # able_unwilling, tier cap 6
    at = D.tz_localize("UTC") - pd.to_timedelta([1, 2, 3, 1, 1, 1, 1, 1, 1, 2], unit="D")
    contacts = pd.DataFrame(
        {
            "account_id": ["A1"] * 3 + ["A2"] * 6 + ["A3"],
            "contact_at": at + pd.Timedelta(hours=15),
            "channel": ["call"] * 10,
            "direction": ["outbound"] * 10,
            "outcome": ["no_answer"] * 9 + ["right_party"],
        }
    )
    out = plan(scored, contacts=contacts)
    # The policy's 6 counts the calls already made (A1: 3 left), the law's 7 too (A2: 0);
    # A3's conversation 2 days ago holds calls until D+5, then 5 more are lawful.
    assert out["max_calls_7d"].tolist() == [3, 0, 5, 6]
    assert out["max_calls_day"].tolist() == [3, 0, 5, 6]
    assert out["max_calls_today"].tolist() == [3, 0, 0, 6]
    assert out["contact_hold_until"].tolist()[2] == D + pd.Timedelta(days=5)
    assert out["contact_hold_until"].isna().tolist() == [True, True, False, True]
    assert out["limit_reasons"].tolist() == [
        "policy_calls_7d,reg_f_7in7",
        "policy_calls_7d,reg_f_7in7",
        "policy_calls_7d,reg_f_conversation_block",
        "",
    ]
    # No calls left: the call drops out of the channel order, texts remain.
    assert out["channel_order"].tolist()[1] == "sms,letter"
    assert out["contact_intensity"].tolist()[1] == "high"


def test_uk_routes_low_ability_to_forbearance_first():
    cut = 0.3  # default low_ability_threshold
    scored = make_scored(
        (200, 900, 0.2, cut - 0.1, 60, 100),  # in difficulty: no settlement under uk_conc
        (200, 900, 0.2, cut + 0.1, 60, 100),  # same tier, not in difficulty
        (200, 900, 0.2, 0.9, 60, 100),  # able_unwilling, late
    )
    uk = plan(scored, policy=make_policy(jurisdiction="uk_conc"))
    us = plan(scored, policy=make_policy(jurisdiction="us_reg_f"))
    assert uk["offer"].tolist() == ["installment_plan", "settlement", "legal_review"]
    assert us["offer"].tolist() == ["settlement", "settlement", "legal_review"]
    assert uk["offer_installment"].iloc[0] == 60.0


def test_cn_plan_records_debtor_only_and_its_window():
    policy = make_policy(jurisdiction="cn_2025", contact_hours={"start": "08:00", "end": "22:00"})
    accounts = factories.accounts(2, timezone=["Asia/Shanghai", "Asia/Urumqi"])
    out = plan(make_scored(*[(45, 100, 0.2, 0.8, 0, 100)] * 2), accounts, policy=policy)
    assert not out["third_party_contact_allowed"].any()
    assert out["contact_window"].tolist() == ["08:00-22:00"] * 2
    assert out["max_calls_7d"].tolist() == [6, 6]
    assert out["max_calls_day"].tolist() == [6, 6]


# --- randomised control group ------------------------------------------------------


def _population(n: int, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    scored = pd.DataFrame(
        {
            "account_id": [f"ACC-{i:06d}" for i in range(n)],
            "dpd": rng.integers(1, 200, n),
            "arrears": rng.uniform(5, 3000, n),
            "p_willingness": rng.uniform(0, 1, n),
            "p_ability": rng.uniform(0, 1, n),
            "capacity": rng.uniform(0, 400, n),
            "installment_amount": rng.uniform(50, 400, n),
        }
    )
    accounts = factories.accounts(n)
    accounts["account_id"] = scored["account_id"].to_numpy()
    return scored, accounts


def test_control_group_is_about_five_percent_of_each_tier_and_reproducible():
    scored, accounts = _population(20_000)
    policy = make_policy(control_share=0.05)
    first = plan(scored, accounts, policy=policy)
    share = first["control_group"].mean()
    # Binomial sd of the share is 0.0015 on 20k accounts; allow 4 sd.
    assert abs(share - 0.05) < 0.006
    by_tier = first.groupby("risk_tier")["control_group"].mean()
    assert ((by_tier - 0.05).abs() < 0.015).all()
    assert (first["control_probability"] == 0.05).all()
    again = plan(scored, accounts, policy=policy)
    pd.testing.assert_frame_equal(first, again)


def test_control_assignment_does_not_depend_on_row_order():
    scored, accounts = _population(2_000)
    policy = make_policy(control_share=0.05)
    straight = plan(scored, accounts, policy=policy).set_index("account_id")
    shuffled_scored = scored.sample(frac=1.0, random_state=5)
    shuffled = plan(shuffled_scored, accounts, policy=policy).set_index("account_id")
    pd.testing.assert_frame_equal(straight, shuffled.loc[straight.index])
    # Another seed or another date draws anew.
    other_seed = plan(scored, accounts, policy=make_policy(control_share=0.05, control_seed=1))
    assert (other_seed["control_group"].to_numpy() != straight["control_group"].to_numpy()).any()


def test_episode_uniform_is_pinned():
    # Pins the hash so that a library change that reshuffles the control group is noticed.
    start = pd.Series(pd.to_datetime(["2024-03-31"] * 3))
    u = episode_uniform(pd.Series(["A1", "A2", "B-17"]), start, 7)
    np.testing.assert_allclose(u, [0.4241399, 0.21282702, 0.68623892], atol=1e-8)
    later = episode_uniform(pd.Series(["A1"]), pd.Series(pd.to_datetime(["2024-04-01"])), 7)
    assert later[0] != u[0]


def test_control_group_gets_the_baseline_but_compliance_still_applies():
    policy = make_policy(control_share=0.5)  # enough to find control accounts among few
    scored, accounts = _population(40)
    scored["dpd"] = 120  # late: baseline intensity medium
    scored["p_willingness"], scored["p_ability"] = 0.2, 0.8  # able_unwilling: legal_review
    accounts["hardship"] = [i % 4 == 1 for i in range(40)]
    accounts["deceased"] = [i % 4 == 2 for i in range(40)]
    out = plan(scored, accounts, policy=policy)
    control = out[out["control_group"]]
    plain = control[control["suppressed_reason"].isna() & ~accounts["hardship"][control.index]]
    hard = control[accounts["hardship"][control.index]]
    dead = control[control["suppressed_reason"] == "deceased"]
    assert len(plain) and len(hard) and len(dead)
    assert (plain["offer"] == "reminder").all()
    assert (plain["contact_intensity"] == "medium").all()
    assert (plain["max_calls_7d"] == 3).all() and (plain["channel_order"] == "sms,email,call").all()
    assert (hard["offer"] == "installment_plan").all() and (
        hard["contact_intensity"] == "low"
    ).all()
    assert (dead["contact_intensity"] == "none").all() and (dead["offer"] == "none").all()
    assert (
        out.loc[~out["control_group"] & out["suppressed_reason"].isna(), "risk_tier"]
        == "able_unwilling"
    ).all()
    assert (out["risk_tier"] == "able_unwilling").all()  # the tier is kept for analysis


# --- expected recovery and input checks ---------------------------------------------


def test_expected_recovery_uses_expected_share_else_p_ability():
    scored = make_scored((10, 200, 0.5, 0.4, 0, 100), (10, 200, 0.5, 0.4, 0, 100))
    assert plan(scored)["expected_recovery"].tolist() == [40.0, 40.0]
    scored["expected_share"] = [0.8, np.nan]
    assert plan(scored)["expected_recovery"].tolist() == [80.0, 40.0]


def test_inputs_are_checked_with_clear_messages():
    scored = make_scored((10, 200, 0.5, 0.4, 0, 100), (10, 200, 1.2, 0.4, 0, 100))
    with pytest.raises(ValueError, match=r"p_willingness must be a probability.*A2 \(1.2\)"):
        plan(scored)
    scored = make_scored((10, 200, 0.5, 0.4, 0, 100))
    with pytest.raises(ValueError, match="not in accounts.*A1"):
        plan(scored, factories.accounts(1, account_id=["Z9"]))
    with pytest.raises(ValueError, match=r"missing the columns \['capacity'\]"):
        plan(scored.drop(columns="capacity"))


def test_inputs_are_not_modified():
    scored = make_scored((10, 200, 0.5, 0.4, 0, 100))
    accounts = factories.accounts(1)
    before = scored.copy(), accounts.copy()
    plan(scored, accounts)
    pd.testing.assert_frame_equal(scored, before[0])
    pd.testing.assert_frame_equal(accounts, before[1])


# --- each step of assign_plans on its own -----------------------------------------


def test_assign_tier_gives_the_tiers_own_treatment():
    from pipeline.plan import assign_tier

    scored = make_scored((10, 100, 0.9, 0.9, 50, 100), (10, 100, 0.1, 0.9, 50, 100))
    steps = assign_tier(scored, make_policy())
    assert steps["tier"].tolist() == [0, 2]  # self_cure, able_unwilling
    assert steps["calls"].tolist() == [0, 6] and steps["sms"].tolist() == [2, 4]
    assert steps["source"].tolist() == steps["tier"].tolist()


def test_apply_stage_raises_intensity_and_swaps_the_late_offer():
    from pipeline.plan import apply_stage, assign_tier
    from pipeline.plan_inputs import OFFER_CODE

    policy = make_policy()
    scored = make_scored((10, 100, 0.1, 0.1, 50, 100), (100, 100, 0.1, 0.1, 50, 100))
    steps = apply_stage(assign_tier(scored, policy), scored["dpd"], policy)
    assert steps["stage"].tolist() == [0, 2]
    assert steps["intensity"].tolist() == [2, 3]  # medium, then high when late
    assert steps["calls"].tolist() == [3, 6]
    assert steps["offer"].tolist() == [OFFER_CODE["staged_repayment"], OFFER_CODE["settlement"]]


def test_assign_control_group_gives_the_baseline_to_every_drawn_account():
    from pipeline.plan import apply_stage, assign_control_group, assign_tier
    from pipeline.plan_inputs import OFFER_CODE

    policy = make_policy(control_share=0.5)
    scored, _ = _population(200)
    steps = apply_stage(assign_tier(scored, policy), scored["dpd"], policy)
    out = assign_control_group(steps, D, policy)
    control = out["control_group"].to_numpy()
    assert 0 < control.sum() < len(out)
    assert (out.loc[control, "offer"] == OFFER_CODE["reminder"]).all()
    assert (out.loc[control, "source"] == len(policy.tiers)).all()
    assert out.loc[~control, "offer"].equals(steps.loc[~control, "offer"])


def test_apply_compliance_cuts_calls_to_what_the_log_leaves():
    from pipeline.plan import apply_compliance, apply_stage, assign_control_group, assign_tier

    policy = make_policy()
    scored = make_scored((10, 100, 0.1, 0.9, 50, 100), (10, 100, 0.1, 0.9, 50, 100))
    at = D.tz_localize("UTC") - pd.Timedelta(days=2) + pd.Timedelta(hours=15)
    contacts = pd.DataFrame(
        {
            "account_id": ["A1"] * 3,
            "contact_at": pd.Series([at] * 3, dtype="datetime64[ns, UTC]"),
            "channel": ["call"] * 3,
            "direction": ["outbound"] * 3,
            "outcome": ["no_answer"] * 3,
        }
    )
    steps = assign_tier(scored, policy)
    steps = assign_control_group(apply_stage(steps, scored["dpd"], policy), D, policy)
    from pipeline.plan import account_history
    from pipeline.plan_inputs import accounts_rows

    accounts = factories.accounts(2)
    acc = accounts_rows(accounts, scored["account_id"], "us_reg_f")
    history = account_history(accounts, contacts, None, scored["account_id"], D, policy)
    out = apply_compliance(steps, scored, acc, history, D, policy)
    assert out["calls"].tolist() == [3, 6]  # the tier's 6 minus 3 made; 6 otherwise


def test_size_offers_sizes_only_plan_offers():
    from pipeline.plan import size_offers
    from pipeline.plan_inputs import OFFER_CODE

    scored = make_scored((10, 250, 0.9, 0.2, 80, 100), (10, 250, 0.9, 0.2, 80, 100))
    steps = pd.DataFrame({"offer": [OFFER_CODE["installment_plan"], OFFER_CODE["reminder"]]})
    out = size_offers(steps, scored, D, make_policy())
    assert out["offer_installment"].iloc[0] == 80.0 and np.isnan(out["offer_installment"].iloc[1])
    np.testing.assert_allclose(out["expected_recovery"], 250 * 0.9 * 0.2)


# --- per-account jurisdiction, broken promises ------------------------------------


def test_each_account_is_planned_under_its_own_jurisdiction():
    data_tiers = make_policy().model_dump()["tiers"]
    for tier in data_tiers:
        tier["max_calls_7d"] = 12  # lawful under the cn_2025 default, not for US or UK accounts
    policy = make_policy(
        jurisdiction="cn_2025", tiers=data_tiers, contact_hours={"start": "08:00", "end": "22:00"}
    )
    scored = make_scored(*[(10, 500, 0.2, 0.8, 50, 100)] * 3)
    accounts = factories.accounts(
        3,
        timezone=["America/New_York", "Asia/Shanghai", "Europe/London"],
        jurisdiction=pd.Series(["us_reg_f", None, "uk_conc"], dtype=object),
    )
    out = plan(scored, accounts, policy=policy)
    assert out["jurisdiction"].tolist() == ["us_reg_f", "cn_2025", "uk_conc"]
    assert out["max_calls_7d"].tolist() == [7, 12, 7]
    assert out["contact_window"].tolist() == ["08:00-21:00", "08:00-22:00", "08:00-21:00"]
    assert out["third_party_contact_allowed"].tolist() == [True, False, True]
    assert out["limit_reasons"].tolist() == ["reg_f_7in7", "", "uk_conc_7in7"]


def test_uk_accounts_get_the_difficulty_floor_whatever_the_default_jurisdiction():
    data_tiers = make_policy().model_dump()["tiers"]
    data_tiers[1]["offer"] = "reminder"  # willing_unable without a plan
    policy = make_policy(tiers=data_tiers, jurisdictions={"uk_conc": {"max_calls_7d": 2}})
    scored = make_scored(*[(10, 500, 0.9, 0.25, 50, 100)] * 2)  # willing, p_ability 0.25
    accounts = factories.accounts(2, jurisdiction=pd.Series(["uk_conc", "us_reg_f"], dtype=object))
    out = plan(scored, accounts, policy=policy)
    assert out["offer"].tolist() == ["installment_plan", "reminder"]
    assert out["max_calls_7d"].tolist() == [2, 3]
    assert out["limit_reasons"].tolist()[0] == "uk_conc_low_ability,jurisdiction_override"


def test_each_broken_promise_steps_the_intensity_up():
    from pipeline.plan import apply_broken_promises, assign_tier

    policy = make_policy()
    scored = make_scored(*[(10, 500, 0.9, 0.9, 50, 100)] * 3)  # self_cure: low, 0 calls
    steps = apply_broken_promises(assign_tier(scored, policy), pd.Series([0, 1, 2]), policy)
    assert steps["intensity"].tolist() == [1, 2, 3]
    assert steps["calls"].tolist() == [0, 3, 6]  # the caps of medium and high
    off = make_policy(promises={"broken_intensity_step": 0})
    assert apply_broken_promises(assign_tier(scored, off), pd.Series([0, 1, 2]), off)[
        "intensity"
    ].tolist() == [1, 1, 1]
