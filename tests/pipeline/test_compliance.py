"""One test per compliance rule, each on a hand-built contact history.

The as-of date is D = 2024-03-15 (a Friday); "D-6" means 2024-03-09.
"""

from __future__ import annotations

import factories
import numpy as np
import pandas as pd
import pytest

from features.vocab import SUPPRESSING_STATUSES
from pipeline.compliance import (
    PROFILES,
    call_caps,
    contact_window,
    get_profile,
    is_contact_allowed,
    suppressed_reason,
    to_local,
)
from pipeline.policy import load_policy

D = pd.Timestamp("2024-03-15")
US, CN, UK = PROFILES["us_reg_f"], PROFILES["cn_2025"], PROFILES["uk_conc"]


def log(*rows: tuple) -> pd.DataFrame:
    """Contact log from (account_id, days before D, 'HH:MM' UTC, channel, direction, outcome)."""
    at = [
        D.tz_localize("UTC") - pd.Timedelta(days=days) + pd.Timedelta(hhmm + ":00")
        for _, days, hhmm, *_ in rows
    ]
    return pd.DataFrame(
        {
            "contact_id": [f"K{i}" for i in range(len(rows))],
            "account_id": [r[0] for r in rows],
            "contact_at": pd.Series(at, dtype="datetime64[ns, UTC]"),
            "channel": [r[3] for r in rows],
            "direction": [r[4] for r in rows],
            "outcome": [r[5] for r in rows],
        }
    )


def calls(account_id: str, days: list[int], outcome: str = "no_answer") -> list[tuple]:
    return [(account_id, d, "15:00", "call", "outbound", outcome) for d in days]


def caps_of(contacts: pd.DataFrame, ids: list[str], profile=US) -> pd.DataFrame:
    return call_caps(contacts, ids, D, profile).set_index("account_id")


# --- every profile: suppressing statuses -------------------------------------------


@pytest.mark.parametrize("status", SUPPRESSING_STATUSES)
def test_each_suppressing_status_is_named(status):
    accounts = factories.accounts(3, **{status: [False, True, False]})
    assert suppressed_reason(accounts).tolist() == [None, status, None]


def test_suppressed_reason_names_the_first_status_in_vocab_order():
    accounts = factories.accounts(
        3,
        do_not_contact=[True, True, False],
        deceased=[True, False, False],
        dispute_open=[False, True, False],
    )
    assert suppressed_reason(accounts).tolist() == ["deceased", "dispute_open", None]


def test_missing_status_flag_counts_as_suppressing():
    accounts = factories.accounts(2)
    accounts["bankruptcy"] = pd.array([pd.NA, False], dtype="boolean")
    assert suppressed_reason(accounts).tolist() == ["bankruptcy", None]


# --- us_reg_f: 7 calls in 7 days ---------------------------------------------------


def test_us_six_calls_in_the_window_leave_one():
    caps = caps_of(log(*calls("A1", [1, 2, 3, 4, 5, 6])), ["A1"])
    assert caps.loc["A1", "calls_7d_used"] == 6
    assert caps.loc["A1", "max_calls_7d_legal"] == 1


def test_us_seven_calls_in_the_window_leave_none():
    caps = caps_of(log(*calls("A1", [1, 1, 2, 3, 4, 5, 6])), ["A1"])
    assert caps.loc["A1", "max_calls_7d_legal"] == 0


def test_us_calls_seven_or_eight_days_ago_do_not_count():
    # D-7 and D-8 are outside [D-6, D]; D-6 is inside.
    caps = caps_of(log(*calls("A1", [6, 7, 8, 8, 8])), ["A1", "A2"])
    assert caps.loc["A1", "calls_7d_used"] == 1
    assert caps.loc["A1", "max_calls_7d_legal"] == 6
    assert caps.loc["A2", "calls_7d_used"] == 0  # no history at all
    assert caps.loc["A2", "max_calls_7d_legal"] == 7


def test_us_only_outbound_calls_count_as_attempts():
    contacts = log(
        ("A1", 1, "15:00", "sms", "outbound", "delivered"),
        ("A1", 1, "16:00", "email", "outbound", "delivered"),
        ("A1", 2, "15:00", "call", "inbound", "no_answer"),
        ("A1", 3, "15:00", "call", "outbound", "voicemail"),
    )
    assert caps_of(contacts, ["A1"]).loc["A1", "max_calls_7d_legal"] == 6


# --- us_reg_f: a conversation blocks 7 days, its own day being day 1 ---------------


def test_us_conversation_six_days_ago_blocks_today():
    caps = caps_of(log(*calls("A1", [6], outcome="right_party")), ["A1"])
    assert caps.loc["A1", "blocked_until"] == D
    assert caps.loc["A1", "max_calls_7d_legal"] == 0


def test_us_conversation_seven_days_ago_no_longer_blocks():
    caps = caps_of(log(*calls("A1", [7], outcome="promise_to_pay")), ["A1"])
    assert pd.isna(caps.loc["A1", "blocked_until"])  # the block ended on D-1
    assert caps.loc["A1", "calls_7d_used"] == 0
    assert caps.loc["A1", "max_calls_7d_legal"] == 7


def test_us_latest_conversation_sets_the_block_and_inbound_calls_count():
    contacts = log(
        ("A1", 9, "15:00", "call", "outbound", "refused"),
        ("A1", 3, "23:30", "call", "inbound", "hardship"),  # the debtor called in
        ("A2", 2, "15:00", "sms", "inbound", "replied"),  # a text reply is no phone call
        ("A3", 2, "15:00", "call", "outbound", "wrong_number"),  # no conversation with debtor
    )
    caps = caps_of(contacts, ["A1", "A2", "A3"])
    assert caps.loc["A1", "blocked_until"] == pd.Timestamp("2024-03-18")
    assert caps.loc["A1", "max_calls_7d_legal"] == 0
    assert pd.isna(caps.loc["A2", "blocked_until"])
    assert caps.loc["A2", "max_calls_7d_legal"] == 7
    assert pd.isna(caps.loc["A3", "blocked_until"])
    assert caps.loc["A3", "max_calls_7d_legal"] == 6


def test_call_caps_keep_the_order_of_the_ids_and_ignore_other_accounts():
    contacts = log(*calls("A9", [1, 2]), *calls("A2", [1]))
    caps = call_caps(contacts, ["A3", "A2", "A1"], D, US)
    assert caps["account_id"].tolist() == ["A3", "A2", "A1"]
    assert caps["calls_7d_used"].tolist() == [0, 1, 0]
    assert caps["max_calls_7d_legal"].dtype == "Int64"


# --- cn_2025: window 08:00-22:00, daily caps, debtor only ---------------------------


def test_cn_daily_unanswered_cap_on_the_day():
    # Six unanswered attempts logged on D use up D; each of D+1..D+6 allows 6.
    contacts = log(
        *[("A1", 0, f"0{h}:00", "call", "outbound", "no_answer") for h in range(1, 7)],
        *[("A2", 0, f"0{h}:00", "call", "outbound", "busy") for h in range(1, 3)],
        *[("A3", 1, f"0{h}:00", "call", "outbound", "no_answer") for h in range(1, 7)],
    )
    caps = caps_of(contacts, ["A1", "A2", "A3"], CN)
    assert caps.loc["A1", "unanswered_day_used"] == 6
    assert caps.loc["A1", "max_calls_7d_legal"] == 36
    assert caps.loc["A2", "max_calls_7d_legal"] == 4 + 36
    assert caps.loc["A3", "max_calls_7d_legal"] == 42  # yesterday's attempts do not count
    assert (caps["max_calls_day_legal"] == 6).all()
    assert caps["blocked_until"].isna().all()  # no Reg F style block in cn_2025


def test_cn_three_conversations_end_the_day():
    contacts = log(
        *[("A1", 0, f"0{h}:00", "call", "outbound", "right_party") for h in range(1, 4)],
        *[("A2", 0, f"0{h}:00", "call", "outbound", "right_party") for h in range(1, 3)],
    )
    caps = caps_of(contacts, ["A1", "A2"], CN)
    assert caps.loc["A1", "conversations_day_used"] == 3
    assert caps.loc["A1", "max_calls_7d_legal"] == 36
    assert caps.loc["A2", "max_calls_7d_legal"] == 42


def test_cn_contact_hours_are_eight_to_ten_in_local_time():
    assert not is_contact_allowed(pd.Timestamp("2024-03-15 07:59"), CN)
    assert is_contact_allowed(pd.Timestamp("2024-03-15 08:00"), CN)
    assert is_contact_allowed(pd.Timestamp("2024-03-15 21:30"), CN)
    assert is_contact_allowed(pd.Timestamp("2024-03-15 22:00"), CN)
    assert not is_contact_allowed(pd.Timestamp("2024-03-15 22:00:01"), CN)


def test_cn_forbids_third_parties():
    assert CN.third_party_contact_allowed is False
    assert US.third_party_contact_allowed is True


# --- contact window in the debtor's local time -----------------------------------


def test_same_utc_instant_is_lawful_in_one_zone_and_not_in_another():
    # 13:30 UTC in January: 08:30 in New York, 21:30 in Shanghai, 05:30 in Los Angeles.
    utc = pd.Series(pd.to_datetime(["2024-01-15 13:30"] * 3, utc=True))
    zones = pd.Series(["America/New_York", "Asia/Shanghai", "America/Los_Angeles"])
    local = to_local(utc, zones)
    assert local.dt.hour.tolist() == [8, 21, 5]
    assert is_contact_allowed(local, US).tolist() == [True, False, False]
    assert is_contact_allowed(local, CN).tolist() == [True, True, False]


def test_local_time_follows_daylight_saving():
    # 12:30 UTC is 08:30 in New York in July (EDT) but 07:30 in January (EST).
    utc = pd.Series(pd.to_datetime(["2024-07-15 12:30", "2024-01-15 12:30"], utc=True))
    local = to_local(utc, pd.Series(["America/New_York"] * 2))
    assert is_contact_allowed(local, US).tolist() == [True, False]


def test_us_window_ends_at_nine_pm_inclusive():
    assert is_contact_allowed(pd.Timestamp("2024-03-15 21:00"), US)
    assert not is_contact_allowed(pd.Timestamp("2024-03-15 21:00:01"), US)
    assert not is_contact_allowed(pd.Timestamp("2024-03-15 07:59:59"), UK)


def test_contact_window_string_per_profile_and_policy():
    zones = pd.Series(["America/New_York", "Asia/Shanghai"])
    assert contact_window(zones, US).tolist() == ["08:00-21:00"] * 2
    assert contact_window(zones, CN).tolist() == ["08:00-22:00"] * 2
    # The default policy (08:00-21:00) narrows cn_2025's window.
    assert contact_window(zones, CN, load_policy().hours).tolist() == ["08:00-21:00"] * 2


def test_contact_window_refuses_an_unknown_zone():
    with pytest.raises(ValueError, match="IANA time zone.*'Mars/Olympus'"):
        contact_window(pd.Series(["Asia/Shanghai", "Mars/Olympus"]), US)


# --- uk_conc --------------------------------------------------------------------


def test_uk_has_no_numeric_call_cap_but_forbearance_first():
    caps = caps_of(log(*calls("A1", [1, 2, 3, 4, 5, 6, 6, 6])), ["A1"], UK)
    assert caps.loc["A1", "calls_7d_used"] == 8
    assert pd.isna(caps.loc["A1", "max_calls_7d_legal"])
    assert UK.forbearance_for_low_ability and not US.forbearance_for_low_ability
    assert not is_contact_allowed(pd.Timestamp("2024-03-15 21:30"), UK)


def test_get_profile_refuses_an_unknown_name():
    assert get_profile("uk_conc") is UK
    with pytest.raises(ValueError, match="unknown jurisdiction 'xx'"):
        get_profile("xx")


def test_call_caps_handle_an_empty_log():
    empty = log()
    caps = call_caps(empty, ["A1", "A2"], D, US)
    assert caps["max_calls_7d_legal"].tolist() == [7, 7]
    assert np.issubdtype(caps["blocked_until"].dtype, np.datetime64)


def test_compliance_does_not_import_the_policy():
    import ast

    import pipeline.compliance as module

    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "pipeline.policy" not in imported and "pipeline.plan" not in imported
