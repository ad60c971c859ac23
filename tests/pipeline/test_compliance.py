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
    contact_window,
    get_profile,
    is_contact_allowed,
    suppressed_reason,
    to_local,
)
from pipeline.contact_log import log_usage
from pipeline.limits import lawful_limits
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


ZONE = {"us_reg_f": "America/New_York", "cn_2025": "Asia/Shanghai", "uk_conc": "Europe/London"}


def caps_of(
    contacts: pd.DataFrame, ids: list[str], profile=US, customers: list[str] | None = None
) -> pd.DataFrame:
    """The legal caps of a plan allowing 100 calls, and the log's counts, per account."""
    from pipeline.compliance import profile_arrays

    accounts = factories.accounts(
        len(ids),
        account_id=ids,
        customer_id=customers or [f"C{a}" for a in ids],
        timezone=[ZONE[profile.name]] * len(ids),
    )
    ids_s = pd.Series(ids, dtype=object)
    usage = log_usage(contacts, accounts, ids_s, D)
    plan = pd.DataFrame(
        {
            "account_id": ids,
            "customer_id": accounts["customer_id"],
            "calls": 100,
            "sms": 100,
            "contactable": True,
        }
    )
    juris = pd.Series([profile.name] * len(ids))
    holds = pd.Series(pd.NaT, index=range(len(ids)), dtype="datetime64[ns]")
    limits = lawful_limits(plan, usage, profile_arrays(juris), holds, D)
    return pd.concat([usage, limits], axis=1).set_index(ids_s)


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
    assert caps.loc["A1", "calls_7d"] == 6
    assert caps.loc["A1", "calls"] == 1 and caps.loc["A1", "calls_today"] == 1
    assert caps.loc["A1", "reg_f_7in7"]


def test_us_seven_calls_in_the_window_leave_none():
    caps = caps_of(log(*calls("A1", [1, 1, 2, 3, 4, 5, 6])), ["A1"])
    assert caps.loc["A1", "calls"] == 0 and caps.loc["A1", "calls_today"] == 0


def test_us_calls_seven_or_eight_days_ago_do_not_count():
    # D-7 and D-8 are outside [D-6, D]; D-6 is inside.
    caps = caps_of(log(*calls("A1", [6, 7, 8, 8, 8])), ["A1", "A2"])
    assert caps.loc["A1", "calls_7d"] == 1
    assert caps.loc["A1", "calls"] == 6
    assert caps.loc["A2", "calls_7d"] == 0  # no history at all
    assert caps.loc["A2", "calls"] == 7


def test_us_only_outbound_calls_count_as_attempts():
    contacts = log(
        ("A1", 1, "15:00", "sms", "outbound", "delivered"),
        ("A1", 1, "16:00", "email", "outbound", "delivered"),
        ("A1", 2, "15:00", "call", "inbound", "no_answer"),
        ("A1", 3, "15:00", "call", "outbound", "voicemail"),
    )
    assert caps_of(contacts, ["A1"]).loc["A1", "calls"] == 6


def test_calls_logged_on_or_after_d_count_too():
    contacts = log(*calls("A1", [0, -1]))  # today and (an odd export) tomorrow
    assert caps_of(contacts, ["A1"]).loc["A1", "calls"] == 5


# --- us_reg_f: a conversation blocks 7 days, its own day being day 1 ---------------


def test_us_conversation_six_days_ago_blocks_today():
    caps = caps_of(log(*calls("A1", [6], outcome="right_party")), ["A1"])
    assert caps.loc["A1", "contact_hold_until"] == D + pd.Timedelta(days=1)
    assert caps.loc["A1", "calls_today"] == 0
    assert caps.loc["A1", "calls"] == 6  # from D+1 on, within the 7 in 7
    assert caps.loc["A1", "reg_f_conversation_block"]


def test_us_conversation_seven_days_ago_no_longer_blocks():
    caps = caps_of(log(*calls("A1", [7], outcome="promise_to_pay")), ["A1"])
    assert pd.isna(caps.loc["A1", "contact_hold_until"])  # the block ended on D-1
    assert caps.loc["A1", "calls_7d"] == 0
    assert caps.loc["A1", "calls"] == 7 and caps.loc["A1", "calls_today"] == 7


def test_us_latest_conversation_sets_the_block_and_inbound_calls_count():
    contacts = log(
        ("A1", 9, "15:00", "call", "outbound", "refused"),
        ("A1", 3, "23:30", "call", "inbound", "hardship"),  # the debtor called in
        ("A2", 2, "15:00", "sms", "inbound", "replied"),  # a text reply is no phone call
        ("A3", 2, "15:00", "call", "outbound", "wrong_number"),  # no conversation with debtor
    )
    caps = caps_of(contacts, ["A1", "A2", "A3"])
    assert caps.loc["A1", "contact_hold_until"] == pd.Timestamp("2024-03-19")
    assert caps.loc["A1", "calls_today"] == 0
    assert pd.isna(caps.loc["A2", "contact_hold_until"])
    assert caps.loc["A2", "calls"] == 7
    assert pd.isna(caps.loc["A3", "contact_hold_until"])
    assert caps.loc["A3", "calls"] == 6


def test_guam_counts_in_local_days():
    # 15:30 UTC on D-7 is 01:30 on local D-6 in Guam (UTC+10): inside the window.
    contacts = log(*[("A1", 7, "15:30", "call", "outbound", "no_answer")] * 7)
    contacts = pd.concat(
        [contacts, log(("A2", 7, "23:30", "call", "outbound", "right_party"))], ignore_index=True
    )
    accounts = factories.accounts(2, timezone=["Pacific/Guam"] * 2)
    usage = log_usage(contacts, accounts, accounts["account_id"], D)
    assert usage["calls_7d"].tolist() == [7, 1]
    # The conversation at 09:30 local on D-6 blocks local days D-6..D.
    assert usage["last_conversation_day"].tolist()[1] == -6


def test_usage_keeps_the_order_of_the_ids_and_ignores_other_accounts():
    contacts = log(*calls("A9", [1, 2]), *calls("A2", [1]))
    caps = caps_of(contacts, ["A3", "A2", "A1"])
    assert caps.index.tolist() == ["A3", "A2", "A1"]
    assert caps["calls_7d"].tolist() == [0, 1, 0]


# --- cn_2025: window 08:00-22:00, daily caps per person, debtor only ----------------


def test_cn_daily_unanswered_cap_on_the_day():
    # Six unanswered attempts logged on D use up D; each of D+1..D+6 allows 6.
    contacts = log(
        *[("A1", 0, f"0{h}:00", "call", "outbound", "no_answer") for h in range(1, 7)],
        *[("A2", 0, f"0{h}:00", "call", "outbound", "busy") for h in range(1, 3)],
        *[("A3", 1, f"0{h}:00", "call", "outbound", "no_answer") for h in range(1, 7)],
    )
    caps = caps_of(contacts, ["A1", "A2", "A3"], CN)
    assert caps.loc["A1", "customer_unanswered_today"] == 6
    assert caps.loc["A1", "calls"] == 36 and caps.loc["A1", "calls_today"] == 0
    assert caps.loc["A2", "calls"] == 4 + 36 and caps.loc["A2", "calls_today"] == 4
    assert caps.loc["A3", "calls"] == 42  # yesterday's attempts do not count
    assert (caps["calls_day"] == 6).all()
    assert caps["contact_hold_until"].isna().all()  # no Reg F style block in cn_2025
    assert caps["cn_daily_attempts"].tolist() == [True, True, False]


def test_cn_three_conversations_end_the_day():
    contacts = log(
        *[("A1", 0, f"0{h}:00", "call", "outbound", "right_party") for h in range(1, 4)],
        *[("A2", 0, f"0{h}:00", "call", "outbound", "right_party") for h in range(1, 3)],
    )
    caps = caps_of(contacts, ["A1", "A2"], CN)
    assert caps.loc["A1", "customer_conversations_today"] == 3
    assert caps.loc["A1", "calls"] == 36 and caps.loc["A1", "calls_today"] == 0
    assert caps.loc["A2", "calls"] == 42 and caps.loc["A2", "calls_today"] == 6
    assert caps["cn_daily_conversations"].tolist() == [True, False]


def test_cn_daily_limits_are_per_person_across_accounts():
    # Two accounts of one customer, 6 unanswered attempts each today: nothing left today,
    # and the 6 a day of the coming days are shared, not given to each.
    contacts = log(
        *[("A1", 0, f"0{h}:00", "call", "outbound", "no_answer") for h in range(1, 7)],
        *[("A2", 0, f"0{h}:30", "call", "outbound", "no_answer") for h in range(1, 7)],
    )
    caps = caps_of(contacts, ["A1", "A2", "A3"], CN, customers=["C1", "C1", "C1"])
    assert caps["calls_today"].tolist() == [0, 0, 0]
    assert caps["calls_day"].tolist() == [2, 2, 2]
    assert caps["calls"].sum() == 36
    assert caps["cn_customer_share"].all()


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


def test_uk_caps_calls_at_seven_in_seven_days_per_person():
    contacts = log(*calls("A1", [1, 2, 3, 4, 5, 6, 6, 6]), *calls("A2", [1, 2]))
    caps = caps_of(contacts, ["A1", "A2", "A3"], UK, customers=["C1", "C2", "C2"])
    assert caps.loc["A1", "calls"] == 0 and caps.loc["A1", "uk_conc_7in7"]
    # C2 made 2 calls: 5 left for the person, shared by the two accounts.
    assert caps.loc["A2", "calls"] + caps.loc["A3", "calls"] == 5
    assert UK.forbearance_for_low_ability and not US.forbearance_for_low_ability
    assert not is_contact_allowed(pd.Timestamp("2024-03-15 21:30"), UK)


def test_get_profile_refuses_an_unknown_name():
    assert get_profile("uk_conc") is UK
    with pytest.raises(ValueError, match="unknown jurisdiction 'xx'"):
        get_profile("xx")


def test_limits_handle_an_empty_log():
    caps = caps_of(log(), ["A1", "A2"])
    assert caps["calls"].tolist() == [7, 7]
    assert np.issubdtype(caps["contact_hold_until"].dtype, np.datetime64)


def test_compliance_does_not_import_the_policy():
    import ast

    import pipeline.compliance as module

    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "pipeline.policy" not in imported and "pipeline.plan" not in imported


# --- what the log says: statuses and promises ---------------------------------------


def test_a_dispute_or_hardship_in_the_log_holds_until_a_later_right_party_outcome():
    from pipeline.contact_log import log_statuses

    contacts = log(
        ("A1", 3, "15:00", "call", "inbound", "dispute"),
        ("A2", 3, "15:00", "call", "inbound", "dispute"),
        ("A2", 1, "15:00", "call", "outbound", "promise_to_pay"),  # resolved: a promise
        ("A3", 2, "15:00", "call", "outbound", "hardship"),
        ("A3", 1, "15:00", "call", "outbound", "no_answer"),  # not a right-party outcome
        ("A4", 40, "15:00", "call", "inbound", "hardship"),
        ("A4", 0, "15:00", "sms", "inbound", "replied"),  # a reply after D ends it too
    )
    out = log_statuses(contacts, pd.Series(["A1", "A2", "A3", "A4", "A5"]))
    assert out["dispute_log"].tolist() == [True, False, False, False, False]
    assert out["hardship_log"].tolist() == [False, False, True, False, False]


def test_open_promises_hold_and_broken_ones_count():
    from pipeline.contact_log import promise_holds

    promises = pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A2", "A3"],
            "promised_date": pd.to_datetime(
                ["2024-03-18", "2024-02-01", "2024-03-01", "2023-10-01"]
            ),
            "deadline": pd.to_datetime(["2024-03-22", "2024-02-05", "2024-03-05", "2023-10-05"]),
            "state": ["pending", "broken", "broken", "broken"],
        }
    )
    late = log(("A4", -1, "02:00", "call", "outbound", "promise_to_pay"))
    late["promised_date"] = pd.to_datetime(["2024-03-20"])
    out = promise_holds(promises, late, pd.Series(["A1", "A2", "A3", "A4"]), D, 60)
    assert out["promise_hold_until"].tolist()[0] == pd.Timestamp("2024-03-22")
    assert out["promise_hold_until"].tolist()[3] == pd.Timestamp("2024-03-24")  # logged after D
    assert out["promise_hold_until"].isna().tolist() == [False, True, True, False]
    assert out["broken_promises"].tolist() == [0, 2, 0, 0]  # A3's is older than 60 days
