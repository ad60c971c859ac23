"""Benchmark: features for one as-of date on a synthetic portfolio (speed and peak memory).

Usage::

    python benchmarks/bench_features.py                  # 100k and 1M accounts, one process each
    python benchmarks/bench_features.py --accounts 200000 [--partitions 4] [--all-accounts]

The portfolio is generated here with numpy (about 24 installments, 10
contacts, 4 payments and 0.3 offers per account; ids like A0000001) so the
benchmark does not depend on the simulator. It prints the time of each stage,
rows per second and the peak resident memory of the process (``ru_maxrss``,
which includes the generated input tables). Targets (issue 3): 1M accounts in
under 60 s and under 8 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2024-12-31")
DAY = np.int64(86_400 * 10**9)


def _peak_gb() -> float:
    """Peak resident memory of this process in GB (Linux reports kB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024**2 if sys.platform != "darwin" else kb / 1024**3


def _rss_gb() -> float:
    """Current resident memory in GB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 1024**3
    except OSError:
        return float("nan")


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def synthetic_portfolio(n: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Generate the contract's five tables for ``n`` accounts around :data:`AS_OF`."""
    from features import vocab

    rng = np.random.default_rng(seed)
    d = AS_OF.value
    acc_ids = _ids("A", n, 7)
    opened_day = (d // DAY) - rng.integers(30, 730, n)
    opened = opened_day * DAY
    principal = np.round(rng.lognormal(7.5, 0.8, n), 2)
    accounts = pd.DataFrame(
        {
            "account_id": acc_ids,
            "customer_id": acc_ids,
            "product": np.array(vocab.PRODUCTS, dtype=object)[rng.integers(0, 6, n)],
            "opened_date": pd.Series(opened.view("datetime64[ns]")),
            "principal": principal,
            "currency": "USD",
            "timezone": "America/New_York",
            "do_not_contact": False,
            "cease_communication": False,
            "dispute_open": False,
            "hardship": False,
            "deceased": False,
            "bankruptcy": False,
            "monthly_income": np.round(rng.lognormal(8.0, 0.5, n), 2),
            "age": rng.integers(20, 75, n).astype(float),
        }
    )
    # Installments: 24 per account, every 30 days from 30 days after opening.
    k = 24
    code = np.repeat(np.arange(n), k)
    no = np.tile(np.arange(1, k + 1), n)
    installments = pd.DataFrame(
        {
            "account_id": acc_ids[code],
            "installment_no": no.astype(np.int64),
            "due_date": pd.Series((opened[code] + no * 30 * DAY).view("datetime64[ns]")),
            "amount_due": np.round(principal[code] / k * 1.1, 2),
        }
    )
    # Payments: Poisson(4) per account between opening and 60 days after D.
    n_pay = rng.poisson(4, n)
    pc = np.repeat(np.arange(n), n_pay)
    span = (d + 60 * DAY) - opened[pc]
    p_ns = opened[pc] + (rng.random(pc.size) * span).astype(np.int64)
    payments = pd.DataFrame(
        {
            "payment_id": _ids("P", pc.size, 9),
            "account_id": acc_ids[pc],
            "paid_at": _utc(p_ns),
            "amount": np.round(principal[pc] / k * rng.uniform(0.3, 2.5, pc.size), 2) + 0.01,
            "channel": np.array(vocab.PAYMENT_CHANNELS, dtype=object)[rng.integers(0, 6, pc.size)],
        }
    )
    # Contacts: Poisson(10) per account over the year before D and 30 days after.
    n_con = rng.poisson(10, n)
    cc = np.repeat(np.arange(n), n_con)
    m = cc.size
    c_ns = d - 365 * DAY + (rng.random(m) * 395 * DAY).astype(np.int64)
    outcome_p = np.array([20, 8, 4, 2, 2, 10, 8, 3, 1, 1, 25, 5, 11], dtype=float)
    outcome = rng.choice(len(vocab.OUTCOMES), m, p=outcome_p / outcome_p.sum())
    promise = outcome == vocab.OUTCOMES.index("promise_to_pay")
    promised_amount = np.where(promise, np.round(principal[cc] / k, 2), np.nan)
    promised_day = (c_ns // DAY + rng.integers(0, 14, m)) * DAY
    contacts = pd.DataFrame(
        {
            "contact_id": _ids("K", m, 9),
            "account_id": acc_ids[cc],
            "contact_at": _utc(c_ns),
            "channel": np.array(vocab.CONTACT_CHANNELS, dtype=object)[
                rng.choice(6, m, p=[0.5, 0.25, 0.1, 0.05, 0.02, 0.08])
            ],
            "direction": np.where(rng.random(m) < 0.9, "outbound", "inbound").astype(object),
            "outcome": np.array(vocab.OUTCOMES, dtype=object)[outcome],
            "promised_amount": promised_amount,
            "promised_date": pd.Series(
                np.where(promise, promised_day, np.iinfo(np.int64).min).view("datetime64[ns]")
            ),
            "agent_id": None,
        }
    )
    # Offers: Poisson(0.3) per account over the year before D.
    n_off = rng.poisson(0.3, n)
    oc = np.repeat(np.arange(n), n_off)
    o_ns = d - (rng.random(oc.size) * 365 * DAY).astype(np.int64)
    offers = pd.DataFrame(
        {
            "offer_id": _ids("O", oc.size, 9),
            "account_id": acc_ids[oc],
            "offered_at": _utc(o_ns),
            "offer_type": np.array(vocab.OFFER_TYPES, dtype=object)[rng.integers(0, 4, oc.size)],
            "accepted": rng.random(oc.size) < 0.4,
            "discount_pct": np.nan,
            "n_installments": pd.array([pd.NA] * oc.size, dtype="Int64"),
        }
    )
    return {
        "accounts": accounts,
        "installments": installments,
        "payments": payments,
        "contacts": contacts,
        "offers": offers,
    }


def run(n: int, partitions: int, overdue_only: bool, validate: bool) -> None:
    """Generate ``n`` accounts, build features once, print the figures."""
    from features.build import features_from_prepared
    from features.prepare import prepare_tables
    from features.schema import validate_features

    t0 = time.perf_counter()
    tables = synthetic_portfolio(n)
    gen_s = time.perf_counter() - t0
    rows_in = sum(len(t) for t in tables.values())
    print(
        f"accounts={n:,} installments={len(tables['installments']):,} "
        f"payments={len(tables['payments']):,} contacts={len(tables['contacts']):,} "
        f"offers={len(tables['offers']):,} generate_s={gen_s:.1f} "
        f"inputs_rss_gb={_rss_gb():.2f} peak_gb_so_far={_peak_gb():.2f}",
        flush=True,
    )
    t0 = time.perf_counter()
    prep = prepare_tables(tables)
    t1 = time.perf_counter()
    feats = features_from_prepared(prep, AS_OF, overdue_only=overdue_only, n_partitions=partitions)
    t2 = time.perf_counter()
    if validate:
        validate_features(feats)
    t3 = time.perf_counter()
    total = t3 - t0
    print(
        f"as_of={AS_OF.date()} partitions={partitions} overdue_only={overdue_only} "
        f"rows_out={len(feats):,} columns={feats.shape[1]}",
        flush=True,
    )
    print(
        f"prepare_s={t1 - t0:.1f} features_s={t2 - t1:.1f} validate_s={t3 - t2:.1f} "
        f"total_s={total:.1f}",
        flush=True,
    )
    print(
        f"accounts_per_s={n / total:,.0f} input_rows_per_s={rows_in / total:,.0f} "
        f"output_rows_per_s={len(feats) / total:,.0f} peak_gb={_peak_gb():.2f} "
        f"(process peak, generation of the inputs included)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; without ``--accounts`` run 100k and 1M in separate processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--all-accounts", action="store_true", help="not only the overdue ones")
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args(argv)
    if args.accounts is not None:
        run(args.accounts, args.partitions, not args.all_accounts, not args.no_validate)
        return 0
    for n in (100_000, 1_000_000):
        print(f"== {n:,} accounts", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--accounts", str(n)]
        cmd += ["--partitions", str(args.partitions)]
        cmd += ["--all-accounts"] * args.all_accounts + ["--no-validate"] * args.no_validate
        rc = subprocess.call(cmd)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
