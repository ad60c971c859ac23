"""Benchmark: read and validate the input tables of a synthetic portfolio (speed and peak memory).

Usage::

    python benchmarks/bench_validate.py                       # 100k and 1M accounts
    python benchmarks/bench_validate.py --accounts 200000 [--out bench_out/validate]
    python benchmarks/bench_validate.py --accounts 1000000 --no-bad --profile read

The portfolio is generated with numpy and written as parquet with
:func:`pipeline.io.write_parquet`: per account about 24 installments, 10
contacts, 6 payments and 0.5 offers (ids like A0000001), every row valid by
the contract. A second copy has about 0.1% bad rows in every table (values
out of range, closed-vocabulary misses, orphans, duplicate keys, due dates out
of order, promise fields that disagree with the outcome) to time the failure
path. Both are cached under ``--out`` (default ``bench_out/validate`` in the
repository, which git ignores) and reused.

Each measurement runs in a fresh process, so the peak resident memory
(``ru_maxrss``) is that of reading and validating alone. Target for 1M
accounts (the scorer's budget for this stage): at most about 40 s and 4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2024-12-31")
DAY = np.int64(86_400 * 10**9)
NAT = np.iinfo(np.int64).min
#: Rows per account of each child table (installments are exactly this many).
PER_ACCOUNT = {"installments": 24, "contacts": 10.0, "payments": 6.0, "offers": 0.5}
BAD_SHARE = 0.001


def _peak_gb() -> float:
    """Peak resident memory of this process in GB (Linux reports kB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024**2 if sys.platform != "darwin" else kb / 1024**3


def _cpu_s() -> float:
    """User plus system CPU seconds of this process (less sensitive to a busy machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    """Return ids ``prefix + zero-padded 1..n`` as an object array of str."""
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")


def _naive(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.view("datetime64[ns]"))


def synthetic_tables(n: int, seed: int = 11):
    """Yield ``(table, frame)`` for the contract's five tables of ``n`` valid accounts.

    Tables are produced one at a time so that only one large frame is alive.
    """
    from features import vocab

    rng = np.random.default_rng(seed)
    d = AS_OF.value
    acc_ids = _ids("A", n, 7)
    opened = ((d // DAY) - rng.integers(60, 900, n)) * DAY
    principal = np.round(rng.lognormal(7.5, 0.8, n), 2)
    tz_names = np.array(
        ["America/New_York", "Europe/London", "Asia/Shanghai", "America/Sao_Paulo"], dtype=object
    )
    flags = {c: rng.random(n) < p for c, p in (("do_not_contact", 0.02), ("dispute_open", 0.01))}
    yield (
        "accounts",
        pd.DataFrame(
            {
                "account_id": acc_ids,
                "customer_id": _ids("C", n, 7),
                "product": np.array(vocab.PRODUCTS, dtype=object)[rng.integers(0, 6, n)],
                "opened_date": _naive(opened),
                "principal": principal,
                "currency": "USD",
                "timezone": tz_names[rng.integers(0, len(tz_names), n)],
                "do_not_contact": flags["do_not_contact"],
                "cease_communication": False,
                "dispute_open": flags["dispute_open"],
                "hardship": rng.random(n) < 0.03,
                "deceased": False,
                "bankruptcy": False,
                "monthly_income": np.round(rng.lognormal(8.0, 0.5, n), 2),
                "age": rng.integers(20, 75, n).astype(float),
            }
        ),
    )
    k = PER_ACCOUNT["installments"]
    code = np.repeat(np.arange(n), k)
    no = np.tile(np.arange(1, k + 1, dtype=np.int64), n)
    yield (
        "installments",
        pd.DataFrame(
            {
                "account_id": acc_ids[code],
                "installment_no": no,
                "due_date": _naive(opened[code] + no * 30 * DAY),
                "amount_due": np.round(principal[code] / k * 1.1, 2),
            }
        ),
    )
    del code, no
    pc = np.repeat(np.arange(n), rng.poisson(PER_ACCOUNT["payments"], n))
    span = (d + 60 * DAY) - opened[pc]
    yield (
        "payments",
        pd.DataFrame(
            {
                "payment_id": _ids("P", pc.size, 9),
                "account_id": acc_ids[pc],
                "paid_at": _utc(opened[pc] + (rng.random(pc.size) * span).astype(np.int64)),
                "amount": np.round(principal[pc] / k * rng.uniform(0.3, 2.5, pc.size), 2) + 0.01,
                "channel": np.array(vocab.PAYMENT_CHANNELS, dtype=object)[
                    rng.integers(0, 6, pc.size)
                ],
            }
        ),
    )
    del pc, span
    cc = np.repeat(np.arange(n), rng.poisson(PER_ACCOUNT["contacts"], n))
    m = cc.size
    c_ns = d - 365 * DAY + (rng.random(m) * 395 * DAY).astype(np.int64)
    outcome_p = np.array([20, 8, 4, 2, 2, 10, 8, 3, 1, 1, 25, 5, 11], dtype=float)
    outcome = rng.choice(len(vocab.OUTCOMES), m, p=outcome_p / outcome_p.sum())
    promise = outcome == vocab.OUTCOMES.index("promise_to_pay")
    agents = np.array([None, *[f"ag{i}" for i in range(1, 51)]], dtype=object)
    yield (
        "contacts",
        pd.DataFrame(
            {
                "contact_id": _ids("K", m, 9),
                "account_id": acc_ids[cc],
                "contact_at": _utc(c_ns),
                "channel": np.array(vocab.CONTACT_CHANNELS, dtype=object)[rng.integers(0, 6, m)],
                "direction": np.where(rng.random(m) < 0.9, "outbound", "inbound").astype(object),
                "outcome": np.array(vocab.OUTCOMES, dtype=object)[outcome],
                "promised_amount": np.where(promise, np.round(principal[cc] / k, 2), np.nan),
                "promised_date": _naive(
                    np.where(promise, (c_ns // DAY + rng.integers(0, 14, m)) * DAY, NAT)
                ),
                "agent_id": agents[rng.integers(0, len(agents), m)],
            }
        ),
    )
    del cc, c_ns, outcome, promise
    oc = np.repeat(np.arange(n), rng.poisson(PER_ACCOUNT["offers"], n))
    o = oc.size
    offer_type = rng.integers(0, 4, o)
    settlement = offer_type == vocab.OFFER_TYPES.index("settlement")
    plan = np.isin(
        offer_type,
        [vocab.OFFER_TYPES.index("installment_plan"), vocab.OFFER_TYPES.index("staged_repayment")],
    )
    yield (
        "offers",
        pd.DataFrame(
            {
                "offer_id": _ids("O", o, 9),
                "account_id": acc_ids[oc],
                "offered_at": _utc(d - (rng.random(o) * 365 * DAY).astype(np.int64)),
                "offer_type": np.array(vocab.OFFER_TYPES, dtype=object)[offer_type],
                "accepted": rng.random(o) < 0.4,
                "discount_pct": np.where(settlement, rng.integers(5, 60, o).astype(float), np.nan),
                "n_installments": pd.Series(rng.integers(2, 13, o), dtype="Int64").where(plan),
            }
        ),
    )


def inject_bad_rows(table: str, df: pd.DataFrame, share: float, seed: int = 5) -> pd.DataFrame:
    """Return ``df`` with about ``share`` of its rows broken, several rules per table."""
    rng = np.random.default_rng(seed + len(table))
    df = df.copy()
    n_bad = max(1, round(len(df) * share))
    rows = np.sort(rng.choice(len(df) - 1, n_bad, replace=False))
    kinds = np.array_split(rows, 4)
    col = df.columns.get_loc
    if table == "accounts":
        df.iloc[kinds[0], col("principal")] = -1.0
        df.iloc[kinds[1], col("product")] = "boat_loan"
        df.iloc[kinds[2], col("timezone")] = "Mars/Base"
        df.iloc[kinds[3], col("currency")] = "usd"
    elif table == "installments":
        df.iloc[kinds[0], col("amount_due")] = 0.0
        # Due date of installment k+1 set before that of k: both rows fail.
        nxt = kinds[1] + 1
        df.iloc[nxt, col("due_date")] = df["due_date"].to_numpy()[kinds[1]] - pd.Timedelta(days=1)
        df.iloc[kinds[2], col("account_id")] = "X" + df["account_id"].to_numpy()[kinds[2]]
        df.iloc[kinds[3], col("installment_no")] = df["installment_no"].to_numpy()[kinds[3] + 1]
    elif table == "payments":
        df.iloc[kinds[0], col("amount")] = -12.5
        df.iloc[kinds[1], col("channel")] = "cheque"
        df.iloc[kinds[2], col("account_id")] = "X" + df["account_id"].to_numpy()[kinds[2]]
        df.iloc[kinds[3], col("payment_id")] = df["payment_id"].to_numpy()[kinds[3] + 1]
    elif table == "contacts":
        df.iloc[kinds[0], col("outcome")] = "maybe"
        no_promise = df["outcome"].to_numpy()[kinds[1]] != "promise_to_pay"
        df.iloc[kinds[1][no_promise], col("promised_amount")] = 20.0
        day = df["contact_at"].dt.tz_localize(None).dt.normalize().to_numpy()[kinds[2]]
        df.iloc[kinds[2], col("outcome")] = "promise_to_pay"
        df.iloc[kinds[2], col("promised_amount")] = 20.0
        df.iloc[kinds[2], col("promised_date")] = day - np.timedelta64(2, "D")
        df.iloc[kinds[3], col("account_id")] = "X" + df["account_id"].to_numpy()[kinds[3]]
    elif table == "offers":
        df.iloc[kinds[0], col("offer_type")] = "amnesty"
        df.iloc[kinds[1], col("offer_type")] = "extension"
        df.iloc[kinds[2], col("account_id")] = "X" + df["account_id"].to_numpy()[kinds[2]]
        df.iloc[kinds[3], col("offer_id")] = df["offer_id"].to_numpy()[kinds[3] + 1]
    return df


def build(n: int, out: Path) -> tuple[Path, Path]:
    """Write (or reuse) the valid and the 0.1%-bad portfolios of ``n`` accounts; return folders."""
    from pipeline.io import write_parquet

    good, bad = out / f"n={n}", out / f"n={n}-bad"
    marker = out / f"n={n}.json"
    if marker.exists() and good.is_dir() and bad.is_dir():
        return good, bad
    t0 = time.perf_counter()
    rows = {}
    for table, df in synthetic_tables(n):
        rows[table] = len(df)
        write_parquet(df, good / f"{table}.parquet")
        write_parquet(inject_bad_rows(table, df, BAD_SHARE), bad / f"{table}.parquet")
    marker.write_text(json.dumps(rows), encoding="utf-8")
    print(f"generated {n:,} accounts in {time.perf_counter() - t0:.1f}s: {rows}", flush=True)
    return good, bad


def measure(data: Path, profile: str | None = None) -> dict[str, float]:
    """Time ``read_tables`` and ``validate_tables`` on ``data`` and print the figures."""
    from pipeline.io import file_checksum, read_tables
    from pipeline.validation import validate_tables

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    c0, t0 = _cpu_s(), time.perf_counter()
    if profiler and profile == "read":
        profiler.enable()
    raw = read_tables(data)
    if profiler and profile == "read":
        profiler.disable()
    c1, t1 = _cpu_s(), time.perf_counter()
    read_gb = _peak_gb()
    rows = sum(len(df) for df in raw.tables.values())
    if profiler and profile == "validate":
        profiler.enable()
    result = validate_tables(raw)
    if profiler and profile == "validate":
        profiler.disable()
    c2, t2 = _cpu_s(), time.perf_counter()
    # The checksums are part of read_tables; timed again here to show their share.
    t3 = time.perf_counter()
    for info in raw.files.values():
        file_checksum(Path(str(info["path"])))
    checksum_s = time.perf_counter() - t3
    figures = {
        "rows": rows,
        "read_s": t1 - t0,
        "validate_s": t2 - t1,
        "read_cpu_s": c1 - c0,
        "checksum_s": checksum_s,
        "validate_cpu_s": c2 - c1,
        "read_peak_gb": read_gb,
        "peak_gb": _peak_gb(),
        "rejects": len(result.rejects),
        "rejected_accounts": len(result.rejected_accounts),
    }
    print(
        f"{data.name}: rows={rows:,} read_s={t1 - t0:.1f} (cpu {c1 - c0:.1f}, "
        f"{rows / (t1 - t0):,.0f} rows/s, peak {read_gb:.2f} GB) validate_s={t2 - t1:.1f} "
        f"(cpu {c2 - c1:.1f}, {rows / (t2 - t1):,.0f} rows/s) total_s={t2 - t0:.1f} "
        f"peak_gb={_peak_gb():.2f} checksum_s={checksum_s:.2f} rejects={len(result.rejects):,} "
        f"rejected_accounts={len(result.rejected_accounts):,}",
        flush=True,
    )
    if profiler:
        import pstats

        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the cached portfolios, measure each in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, action="append", help="repeatable")
    default_out = Path(__file__).resolve().parents[1] / "bench_out" / "validate"
    parser.add_argument("--out", type=Path, default=default_out, help="cache of portfolios")
    parser.add_argument("--no-bad", action="store_true", help="skip the failure-path run")
    parser.add_argument("--profile", choices=("read", "validate"), help="cProfile one stage")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        measure(args.measure, args.profile)
        return 0
    for n in args.accounts or [100_000, 1_000_000]:
        print(f"== {n:,} accounts", flush=True)
        good, bad = build(n, args.out)
        for data in [good] if args.no_bad else [good, bad]:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", str(data)]
            cmd += ["--profile", args.profile] if args.profile else []
            rc = subprocess.call(cmd)
            if rc:
                return rc
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
