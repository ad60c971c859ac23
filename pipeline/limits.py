"""The caps a contact log leaves: every rule, per account, in the debtor's local days.

:func:`lawful_limits` takes the caps a plan would have without any history
(the policy's, after tier, stage, control group and hardship) and cuts them
to what is left under each applicable rule, recording which rule cut what
(``limit_reasons``, names in :data:`LIMIT_REASONS`):

- ``policy_calls_7d``, ``policy_sms_7d``: the policy's caps are caps over any
  7 consecutive days, so calls and texts already made on local days -6..0
  (and any logged later) count against them.
- ``reg_f_7in7`` (per debt), ``uk_conc_7in7`` (per person, across accounts):
  the profile's rolling 7-day call cap minus the calls already made.
- ``reg_f_conversation_block``: a telephone conversation on day ``c`` blocks
  calls on days ``c .. c+6``; contact resumes on ``c + 7``.
- ``promise_hold``: an open promise holds contact until its deadline.
- ``cn_daily_attempts``, ``cn_daily_conversations``: under cn_2025 today's
  calls stop once the person (``customer_id``, all accounts) had 3
  conversations today, else are at most 6 minus today's unanswered attempts;
  every later day allows 6 attempts per person.
- ``cn_customer_share``: a per-person allowance is split between the
  person's contactable accounts (in account_id order, the remainder to the
  first), so that the accounts together never pass it.

A hold (conversation block or promise) sets ``contact_hold_until``, the first
local date contact may resume, on every channel: no contact today, and none
this week when the hold reaches past day 6. The plan's ``max_calls_7d`` is
what may be placed on the plan's days from the hold on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.compliance import NO_CAP

#: Every rule that can cut a plan below its tier, in the order ``limit_reasons`` lists them.
LIMIT_REASONS: tuple[str, ...] = (
    "deceased",
    "bankruptcy",
    "dispute_open",
    "dispute_log",
    "cease_communication",
    "do_not_contact",
    "hardship",
    "hardship_log",
    "uk_conc_low_ability",
    "jurisdiction_override",
    "policy_calls_7d",
    "policy_sms_7d",
    "reg_f_7in7",
    "uk_conc_7in7",
    "reg_f_conversation_block",
    "promise_hold",
    "cn_daily_conversations",
    "cn_daily_attempts",
    "cn_customer_share",
)
PLAN_DAYS: int = 7


def customer_ranks(
    customer: np.ndarray, account_id: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rank each eligible account within its customer's eligible accounts, by account_id.

    Returns
    -------
    rank : numpy.ndarray
        0 for the first account of its customer (account_id order), 1 for the next, ...
    size : numpy.ndarray
        The customer's number of eligible accounts (1 for an ineligible row).
    """
    n = len(customer)
    rank, size = np.zeros(n, np.int64), np.ones(n, np.int64)
    rows = np.flatnonzero(eligible)
    if not len(rows):
        return rank, size
    codes = pd.factorize(np.asarray(customer, dtype=object)[rows])[0]
    size[rows] = np.bincount(codes)[codes]
    multi = rows[size[rows] > 1]  # only people with several accounts need an order
    if len(multi):
        mcodes = codes[size[rows] > 1]
        order = np.lexsort((np.asarray(account_id, dtype=object)[multi].astype(str), mcodes))
        sorted_codes = mcodes[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
        first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        rank[multi[order]] = np.arange(len(order)) - first
    return rank, size


def split_per_customer(
    total: np.ndarray, customer: np.ndarray, account_id: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Split a per-person allowance between the person's eligible accounts.

    Each eligible account of a customer gets ``total // k`` (``k`` eligible
    accounts), the first ``total % k`` in account_id order one more; the
    shares add up to ``total``. Ineligible rows get 0.

    Returns
    -------
    share : numpy.ndarray
        Int64 share per row.
    shared : numpy.ndarray
        True where the customer has more than one eligible account.

    Examples
    --------
    >>> share, _ = split_per_customer(np.array([5, 5, 5, 3]), np.array(["C", "C", "C", "D"]),
    ...     np.array(["A2", "A1", "A3", "A4"]), np.array([True, True, False, True]))
    >>> share.tolist()
    [2, 3, 0, 3]
    """
    rank, size = customer_ranks(customer, account_id, eligible)
    return _share(total, rank, size, eligible), eligible & (size > 1)


def _share(
    total: np.ndarray, rank: np.ndarray, size: np.ndarray, eligible: np.ndarray
) -> np.ndarray:
    total = np.maximum(np.asarray(total, dtype=np.int64), 0)
    return np.where(eligible, total // size + (rank < total % size), 0).astype(np.int64)


def lawful_limits(
    plan: pd.DataFrame,
    usage: pd.DataFrame,
    profiles: pd.DataFrame,
    promise_hold_until: pd.Series,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Cut each account's caps to what its rules leave after the contact log.

    Parameters
    ----------
    plan : pandas.DataFrame
        ``account_id``, ``customer_id``, ``calls``, ``sms`` (the 7-day caps
        before history) and ``contactable`` (bool), one row per account.
    usage : pandas.DataFrame
        :func:`pipeline.contact_log.log_usage`, aligned with ``plan``.
    profiles : pandas.DataFrame
        :func:`pipeline.compliance.profile_arrays`, aligned with ``plan``.
    promise_hold_until : pandas.Series
        First date after an open promise's hold (NaT: none), aligned.
    as_of : pandas.Timestamp
        The as-of date D (local day 0).

    Returns
    -------
    pandas.DataFrame
        Aligned with ``plan``: ``calls``, ``sms``, ``calls_today``,
        ``calls_day`` (int64), ``contact_hold_until`` (datetime64, NaT when
        no hold reaches day 0 or later) and one bool column per rule of
        :data:`LIMIT_REASONS` that this step checks (True where it cut).
    """
    calls0, sms0 = plan["calls"].to_numpy(np.int64), plan["sms"].to_numpy(np.int64)
    live = plan["contactable"].to_numpy(bool)
    prefix = profiles["limit_prefix"].to_numpy(dtype=object)
    per_customer = profiles["per_customer"].to_numpy(bool)
    cap7 = profiles["max_calls_7d"].to_numpy(np.int64)
    day_cap = profiles["max_calls_day"].to_numpy(np.int64)
    u = {c: usage[c].to_numpy() for c in usage.columns}

    policy_calls = np.clip(calls0 - u["calls_7d"], 0, None)
    used_legal = np.where(per_customer, u["customer_calls_7d"], u["calls_7d"])
    rolling = np.where(cap7 < NO_CAP, np.clip(cap7 - used_legal, 0, None), NO_CAP)

    daily = day_cap < NO_CAP
    conv_full = u["customer_conversations_today"] >= profiles["max_conversations_day"].to_numpy()
    unanswered_left = profiles["max_unanswered_day"].to_numpy() - u["customer_unanswered_today"]
    today_left = np.where(conv_full, 0, np.clip(np.minimum(day_cap, unanswered_left), 0, None))
    week_left = np.where(
        daily, today_left + (PLAN_DAYS - 1) * day_cap - u["customer_calls_after_today"], NO_CAP
    )
    person_week = np.clip(np.minimum(np.where(per_customer, rolling, NO_CAP), week_left), 0, None)

    d = pd.Timestamp(as_of).normalize()
    block = profiles["conversation_block_days"].to_numpy(np.int64)
    last_conv = u["last_conversation_day"]
    conv_resume = np.where((block > 0) & ~np.isnan(last_conv), np.nan_to_num(last_conv) + block, 0)
    promise_resume = ((pd.to_datetime(promise_hold_until) - d).dt.days).fillna(0).to_numpy()
    resume = np.maximum(conv_resume, promise_resume).astype(np.int64)
    held_week = resume >= PLAN_DAYS

    calls = np.minimum(policy_calls, np.where(per_customer, NO_CAP, rolling))
    eligible = live & (calls > 0) & ~held_week & per_customer
    cust = plan["customer_id"].to_numpy(dtype=object)
    acc = plan["account_id"].to_numpy(dtype=object)
    rank, size = customer_ranks(cust, acc, eligible)
    shared = eligible & (size > 1)
    week_share = _share(person_week, rank, size, eligible)
    today_share = _share(today_left, rank, size, eligible)
    day_share = _share(day_cap, rank, size, eligible)
    calls = np.where(per_customer, np.minimum(calls, week_share), calls)
    calls = np.where(live & ~held_week, calls, 0)
    today = np.where(daily, np.minimum(calls, today_share), calls)
    today = np.where(resume > 0, 0, today)
    calls_day = np.where(daily, np.minimum(calls, day_share), calls)
    sms_legal = profiles["max_sms_7d"].to_numpy(np.int64) - u["sms_7d"]
    sms = np.clip(np.minimum(sms0 - u["sms_7d"], sms_legal), 0, None)
    sms = np.where(live & ~held_week, sms, 0)

    had_calls = live & (calls0 > 0)
    out = pd.DataFrame(
        {
            "calls": calls.astype(np.int64),
            "sms": sms.astype(np.int64),
            "calls_today": today.astype(np.int64),
            "calls_day": calls_day.astype(np.int64),
            "contact_hold_until": np.where(
                resume > 0, (d + pd.to_timedelta(resume, unit="D")).to_numpy(), np.datetime64("NaT")
            ).astype("datetime64[ns]"),
            "policy_calls_7d": had_calls & (u["calls_7d"] > 0),
            "policy_sms_7d": live & (sms0 > 0) & (u["sms_7d"] > 0),
            "reg_f_7in7": had_calls & (prefix == "reg_f") & (rolling < calls0),
            "uk_conc_7in7": had_calls & (prefix == "uk_conc") & (person_week < calls0),
            "reg_f_conversation_block": live & (conv_resume > 0),
            "promise_hold": live & (promise_resume > 0),
            "cn_daily_conversations": had_calls & daily & conv_full,
            "cn_daily_attempts": had_calls & daily & ~conv_full & (today_left < day_cap),
            "cn_customer_share": had_calls & shared,
        }
    )
    return out


def limit_reasons(steps: pd.DataFrame) -> np.ndarray:
    """Join the rules that cut each plan (``r_<rule>`` columns) into ``"rule,rule"`` ("" if none)."""
    bits = np.zeros(len(steps), dtype=np.int64)
    for i, name in enumerate(LIMIT_REASONS):
        col = f"r_{name}"
        if col in steps.columns:
            bits |= steps[col].to_numpy(dtype=bool).astype(np.int64) << i
    codes, inverse = np.unique(bits, return_inverse=True)
    texts = [",".join(n for i, n in enumerate(LIMIT_REASONS) if (code >> i) & 1) for code in codes]
    return np.array(texts, dtype=object)[inverse.reshape(-1)]
