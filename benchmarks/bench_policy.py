"""Benchmark: the policy stage (assign_plans, with promise judging) on a synthetic book.

Usage::

    python benchmarks/bench_policy.py --accounts 200000 --contacts-per-account 20

Builds ``--accounts`` accounts (two accounts per person for a tenth of them,
mixed jurisdictions and time zones), a contact log of about
``--contacts-per-account`` contacts each spread over the 120 days before D (so
the 7-day window holds several per account), and times
``pipeline.contact_log.recent_promises`` and ``pipeline.plan.assign_plans``. Target
(issue 9): the policy stage under about 15 s at 1M accounts and 20M contacts
on 2 cores; measure at 200k and scale linearly.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

D = pd.Timestamp("2025-06-30")
ZONES = np.array(["America/New_York", "America/Chicago", "Europe/London", "Asia/Shanghai"])
JURIS = np.array(["us_reg_f", "us_reg_f", "uk_conc", "cn_2025"])
OUTCOMES = np.array(["no_answer", "busy", "right_party", "promise_to_pay", "delivered", "dispute"])


def book(n: int, per_account: int, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    """Accounts, scored rows, contacts and payments for ``n`` accounts."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("A", np.arange(n).astype(str)).astype(object)
    person = np.where(rng.uniform(size=n) < 0.1, np.maximum(np.arange(n) - 1, 0), np.arange(n))
    z = rng.choice(4, size=n, p=[0.45, 0.3, 0.12, 0.13])
    flags = {
        c: rng.uniform(size=n) < 0.01
        for c in (
            "do_not_contact",
            "cease_communication",
            "dispute_open",
            "hardship",
            "deceased",
            "bankruptcy",
        )
    }
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "customer_id": np.char.add("C", person.astype(str)).astype(object),
            "timezone": ZONES[z],
            "jurisdiction": JURIS[z],
            **flags,
        }
    )
    scored = pd.DataFrame(
        {
            "account_id": ids,
            "dpd": rng.integers(1, 200, n),
            "arrears": rng.uniform(20, 5000, n),
            "p_willingness": rng.uniform(size=n),
            "p_ability": rng.uniform(size=n),
            "capacity": np.where(rng.uniform(size=n) < 0.5, np.nan, rng.uniform(5, 400, n)),
            "installment_amount": rng.uniform(30, 500, n),
        }
    )
    m = n * per_account
    acc = rng.integers(0, n, m)
    at = D.tz_localize("UTC") - pd.to_timedelta(rng.integers(0, 120 * 86400, m), unit="s")
    outcome = OUTCOMES[rng.choice(len(OUTCOMES), size=m, p=[0.45, 0.15, 0.15, 0.05, 0.19, 0.01])]
    promise = outcome == "promise_to_pay"
    contacts = pd.DataFrame(
        {
            "contact_id": np.arange(m).astype(str),
            "account_id": ids[acc],
            "contact_at": at,
            "channel": np.where(outcome == "delivered", "sms", "call").astype(object),
            "direction": "outbound",
            "outcome": outcome,
            "promised_amount": np.where(promise, 100.0, np.nan),
            "promised_date": np.where(
                promise, (at.tz_localize(None).normalize() + pd.Timedelta(days=5)), pd.NaT
            ),
        }
    )
    contacts["promised_date"] = pd.to_datetime(contacts["promised_date"])
    k = n * 3
    payments = pd.DataFrame(
        {
            "payment_id": np.arange(k).astype(str),
            "account_id": ids[rng.integers(0, n, k)],
            "paid_at": D.tz_localize("UTC")
            - pd.to_timedelta(rng.integers(0, 200 * 86400, k), unit="s"),
            "amount": rng.uniform(10, 300, k),
            "channel": "card",
        }
    )
    return accounts, scored, contacts, payments


def main() -> None:
    """Time the policy stage and print seconds per step."""
    from pipeline.contact_log import recent_promises
    from pipeline.plan import assign_plans
    from pipeline.policy import load_policy

    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--contacts-per-account", type=int, default=20)
    args = parser.parse_args()
    accounts, scored, contacts, payments = book(args.accounts, args.contacts_per_account)
    policy = load_policy()
    t0 = time.perf_counter()
    promises = recent_promises(contacts, payments, D, policy.promises.broken_lookback_days)
    t1 = time.perf_counter()
    plans = assign_plans(scored, accounts, contacts, D, policy, "bench", promises)
    t2 = time.perf_counter()
    print(
        f"accounts {args.accounts:,} contacts {len(contacts):,}: recent_promises {t1 - t0:.2f}s, "
        f"assign_plans {t2 - t1:.2f}s; plans {len(plans):,}, "
        f"with limit reasons {int((plans['limit_reasons'] != '').sum()):,}"
    )


if __name__ == "__main__":
    main()
