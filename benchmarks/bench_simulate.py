"""Benchmark the portfolio simulator: seconds, rows per table, rows per second, peak memory.

Run from the repository root::

    python benchmarks/bench_simulate.py --accounts 100000 --months 24

``--write DIR`` also times writing the tables as parquet into ``DIR``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.simulator import simulate_portfolio, write_portfolio  # noqa: E402


def _peak_mb() -> float:
    """Peak resident memory of this process in MB (ru_maxrss is in KB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 1024 / 1024


def main(argv: list[str] | None = None) -> int:
    """Simulate one portfolio and print its timing, row counts and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", type=Path, default=None, help="also write parquet here")
    parser.add_argument("--write-tmp", action="store_true", help="also write to a temp folder")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    portfolio = simulate_portfolio(args.accounts, args.months, args.seed)
    seconds = time.perf_counter() - t0
    rows = {name: len(df) for name, df in portfolio.tables.items()}
    rows["truth"] = len(portfolio.truth)
    total = sum(rows.values())
    print(f"simulate_portfolio({args.accounts:,} accounts, {args.months} months): {seconds:.1f} s")
    for name, n in rows.items():
        print(f"  {name:<13} {n:>13,} rows")
    print(f"  {'total':<13} {total:>13,} rows, {total / seconds:,.0f} rows/s")
    print(f"peak memory (ru_maxrss) after simulate: {_peak_mb():,.0f} MB")
    if args.write is not None or args.write_tmp:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.write if args.write is not None else Path(tmp)
            t1 = time.perf_counter()
            paths = write_portfolio(portfolio, out)
            size = sum(p.stat().st_size for p in paths.values()) / 1e6
            print(f"write_portfolio (parquet): {time.perf_counter() - t1:.1f} s, {size:,.0f} MB")
            print(f"peak memory (ru_maxrss) after write: {_peak_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
