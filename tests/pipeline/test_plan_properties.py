"""Property: no published plan lets the next 7 days pass any legal or policy cap.

For random contact logs (several accounts per person, mixed jurisdictions and
time zones, Guam included) and random valid policies, a dialer that uses every
allowance of the plan -- ``max_calls_today`` today, then ``max_calls_day`` a day
from ``contact_hold_until`` on until ``max_calls_7d`` is spent, every text on the
first allowed day -- never exceeds, in any 7 consecutive local days:

- the plan the same policy gives with no history (the policy's caps, within
  the law), per account, for calls and texts;
- 7 calls per debt (us_reg_f) or per person (uk_conc);
- under cn_2025, 6 attempts a day per person, none today after 3 conversations
  or 6 unanswered attempts today;
- no call inside a Reg F conversation block, no contact before an open
  promise's deadline.

The local days here are computed row by row with ``zoneinfo``, independently of
the vectorised code under test.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import factories
import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import policy as policy_module
from pipeline.plan import assign_plans
from pipeline.policy import parse_policy

DEFAULT_FILE = Path(policy_module.__file__).with_name("default_policy.yaml")
D = pd.Timestamp("2024-03-15")
ZONES = {
    "us_reg_f": ["America/New_York", "Pacific/Guam", "America/Los_Angeles"],
    "uk_conc": ["Europe/London"],
    "cn_2025": ["Asia/Shanghai"],
}
CALL_OUTCOMES = ["no_answer", "busy", "voicemail", "right_party", "promise_to_pay", "refused"]
CALL_OUTCOMES += ["dispute", "hardship", "wrong_number"]


@st.composite
def policies(draw):
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data["jurisdiction"] = draw(st.sampled_from(sorted(ZONES)))
    calls = sorted(draw(st.lists(st.integers(0, 7), min_size=3, max_size=3)))
    sms = sorted(draw(st.lists(st.integers(0, 10), min_size=3, max_size=3)))
    for name, c, s in zip(("low", "medium", "high"), calls, sms, strict=True):
        data["intensity_caps"][name] = {"max_calls_7d": c, "max_sms_7d": s}
    for tier in data["tiers"]:
        tier["max_calls_7d"] = draw(st.integers(0, 7))
        tier["max_sms_7d"] = draw(st.integers(0, 10))
    data["control_share"] = draw(st.sampled_from([0.0, 0.3]))
    data["overrides"]["hardship"]["max_intensity"] = draw(st.sampled_from(["low", "medium"]))
    return parse_policy(data)


@st.composite
def books(draw):
    n = draw(st.integers(1, 5))
    jur = draw(st.lists(st.sampled_from([*ZONES, None]), min_size=n, max_size=n))
    customers = draw(st.lists(st.sampled_from(["C1", "C2"]), min_size=n, max_size=n))
    zones = [draw(st.sampled_from(ZONES[j or "us_reg_f"])) for j in jur]
    accounts = factories.accounts(
        n, customer_id=customers, timezone=zones, jurisdiction=pd.Series(jur, dtype=object)
    )
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.integers(-9 * 24 * 60, 24 * 60),  # minutes after D 00:00 UTC
                st.sampled_from(["call", "call", "call", "sms"]),
                st.sampled_from(["outbound", "outbound", "inbound"]),
                st.sampled_from(CALL_OUTCOMES),
                st.integers(0, 8),  # promised date: days after the contact
            ),
            max_size=40,
        )
    )
    at = [D.tz_localize("UTC") + pd.Timedelta(minutes=r[1]) for r in rows]
    outcome = [r[4] if r[2] == "call" else "delivered" for r in rows]
    promised = [
        (a.tz_localize(None).normalize() + pd.Timedelta(days=r[5]))
        if o == "promise_to_pay"
        else None
        for a, r, o in zip(at, rows, outcome, strict=True)
    ]
    contacts = pd.DataFrame(
        {
            "contact_id": [f"K{i}" for i in range(len(rows))],
            "account_id": [f"A{r[0] + 1}" for r in rows],
            "contact_at": pd.Series(at, dtype="datetime64[ns, UTC]"),
            "channel": [r[2] for r in rows],
            "direction": [r[3] for r in rows],
            "outcome": outcome,
            "promised_date": pd.Series(pd.to_datetime(promised), dtype="datetime64[ns]"),
        }
    )
    scored = pd.DataFrame(
        {
            "account_id": accounts["account_id"],
            "dpd": draw(st.lists(st.integers(1, 200), min_size=n, max_size=n)),
            "arrears": 500.0,
            "p_willingness": draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)),
            "p_ability": draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)),
            "capacity": 50.0,
            "installment_amount": 100.0,
        }
    )
    return accounts, contacts, scored


def _log_days(contacts: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Each contact's local day (D = 0), computed one row at a time with zoneinfo."""
    zone = dict(zip(accounts["account_id"], accounts["timezone"], strict=True))
    days = [
        (ts.astimezone(ZoneInfo(zone[a])).date() - D.date()).days
        for ts, a in zip(contacts["contact_at"], contacts["account_id"], strict=True)
    ]
    return contacts.assign(day=days)


def _dial(plan: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """Calls and texts per plan day (0..6) of a dialer that uses every allowance."""
    out = {}
    for row in plan.itertuples():
        hold = 0 if pd.isna(row.contact_hold_until) else (row.contact_hold_until - D).days
        calls, texts = np.zeros(7, int), np.zeros(7, int)
        left = row.max_calls_7d
        for day in range(max(hold, 0), 7):
            take = min(row.max_calls_today if day == 0 else row.max_calls_day, left)
            calls[day], left = take, left - take
        if hold < 7:
            texts[max(hold, 0)] = row.max_sms_7d
        out[row.account_id] = {"call": calls, "sms": texts}
    return out


def _window_ok(past: pd.Series, planned: np.ndarray, cap: int) -> bool:
    """Past uses (by local day) plus planned ones stay within cap in every 7-day window.

    A window the plan adds nothing to is the past's business, not the plan's.
    """
    for end in range(0, 13):
        lo = end - 6
        added = planned[max(lo, 0) : min(end, 6) + 1].sum()
        if added and past[(past >= lo) & (past <= end)].size + added > cap:
            return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), book=books())
def test_no_plan_lets_a_dialer_pass_any_cap(policy, book):
    accounts, contacts, scored = book
    plan = assign_plans(scored, accounts, contacts, D, policy, "v")
    # The policy's own caps: no history, and no sharing of a person's allowance.
    alone = accounts.assign(customer_id=accounts["account_id"])
    fresh = assign_plans(scored, alone, contacts.iloc[:0], D, policy, "v").set_index("account_id")
    dialed = _dial(plan)
    log = _log_days(contacts, accounts)
    out_calls = log[(log["channel"] == "call") & (log["direction"] == "outbound")]
    out_sms = log[(log["channel"] == "sms") & (log["direction"] == "outbound")]
    convs = log[
        (log["channel"] == "call")
        & log["outcome"].isin(["right_party", "promise_to_pay", "refused", "dispute", "hardship"])
    ]
    acc = accounts.set_index("account_id")
    juris = acc["jurisdiction"].fillna(policy.jurisdiction)
    for a, uses in dialed.items():
        mine = out_calls.loc[out_calls["account_id"] == a, "day"]
        # The policy's caps (what a fresh week allows) and the law per debt.
        assert _window_ok(mine, uses["call"], int(fresh.loc[a, "max_calls_7d"])), a
        sms = out_sms.loc[out_sms["account_id"] == a, "day"]
        assert _window_ok(sms, uses["sms"], int(fresh.loc[a, "max_sms_7d"])), a
        if juris[a] == "us_reg_f":
            assert _window_ok(mine, uses["call"], 7), a
            for c in convs.loc[convs["account_id"] == a, "day"]:
                assert uses["call"][max(c, 0) : max(c + 7, 0)].sum() == 0, (a, c)
        late = contacts[(contacts["account_id"] == a) & (contacts["outcome"] == "promise_to_pay")]
        late = late[late["contact_at"] >= D.tz_localize("UTC")]
        for promised in late["promised_date"]:
            resume = (promised - D).days + 4
            assert (
                uses["call"][: max(resume, 0)].sum() == 0
                and uses["sms"][: max(resume, 0)].sum() == 0
            )
    for cust in acc["customer_id"].unique():
        ids = acc.index[acc["customer_id"] == cust]
        for j in ("uk_conc", "cn_2025"):
            mine = [a for a in ids if juris[a] == j]
            if not mine:
                continue
            planned = sum(dialed[a]["call"] for a in mine)
            past = out_calls.loc[out_calls["account_id"].isin(mine), "day"]
            if j == "uk_conc":
                assert _window_ok(past, planned, 7), cust
                continue
            today = log[
                log["account_id"].isin(mine) & (log["day"] == 0) & (log["channel"] == "call")
            ]
            conv_today = (
                today["outcome"]
                .isin(["right_party", "promise_to_pay", "refused", "dispute", "hardship"])
                .sum()
            )
            unanswered = (
                (today["direction"] == "outbound")
                & ~today["outcome"].isin(
                    ["right_party", "promise_to_pay", "refused", "dispute", "hardship"]
                )
            ).sum()
            assert planned[0] + unanswered <= 6 and (conv_today < 3 or planned[0] == 0), cust
            assert (planned[1:] <= 6).all(), cust
