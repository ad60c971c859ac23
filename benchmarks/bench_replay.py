"""Benchmark the closed-loop replay: nights per second per strategy at 20k accounts.

Run from the repository root::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_replay.py --accounts 20000 --nights 14

Simulates a portfolio, trains a model in-process on the year before ``--from``
(not timed in the replay figure), then replays the default policy (nightly
re-scoring: features, probabilities, plans) and the ``dpd_buckets`` baseline.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from pipeline.simulator import simulate_portfolio  # noqa: E402
from pipeline.simulator.replay import run_replay  # noqa: E402
from pipeline.simulator.replay_job import train_before  # noqa: E402
from pipeline.simulator.strategies import baseline_strategy, policy_strategy  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print the replay's speed per strategy and the peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--nights", type=int, default=14)
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args(argv)
    start = pd.Timestamp("2025-09-01")
    t0 = time.perf_counter()
    portfolio = simulate_portfolio(args.accounts, 24, args.seed, "2024-01-01")
    model = train_before(portfolio.tables, start)
    print(f"setup (simulate + train): {time.perf_counter() - t0:.1f}s")
    strategies = [policy_strategy(None, model), baseline_strategy("dpd_buckets")]
    runs = run_replay(portfolio.tables, portfolio.truth, start, args.nights, strategies, seed=1)
    for run in runs:
        print(
            f"{run.name:<16} {args.accounts:,} accounts x {args.nights} nights: "
            f"{run.seconds:.1f}s, {args.nights / run.seconds:.2f} nights/s"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
