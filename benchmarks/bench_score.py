"""Benchmark: the nightly scoring run end to end on 1,000,000 overdue accounts.

Usage::

    python benchmarks/bench_score.py                 # 1M overdue accounts
    python benchmarks/bench_score.py --overdue 100000

Steps: (1) train a model on a simulated portfolio and register it in a
throw-away MLflow store under ``bench_out/score/``; (2) generate a synthetic
portfolio with numpy (about 24 installments, 10 contacts and 4 payments per
account; see ``bench_features.synthetic_portfolio``) sized so that about
``--overdue`` accounts are overdue at D, and write it as parquet; (3) run
``pipeline.score.run_scoring`` (read, validate, features, both heads, reason
codes for every account, policy, publish, monitoring run) in a fresh process
and print its seconds per stage, the total and the peak resident memory.
Targets (issue 5): under 3 minutes and under 8 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OVERDUE_SHARE = 0.872  # share of synthetic accounts overdue at D (measured by bench_features)


def _prepare(work: Path, overdue: int) -> tuple[Path, str]:
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from bench_features import AS_OF, synthetic_portfolio

    from pipeline.io import write_parquet

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.chdir(work)
    from pipeline.jobs import train_job
    from pipeline.simulator import simulate_portfolio, write_portfolio

    sim = work / "train_data"
    if not (sim / "accounts.parquet").exists():
        write_portfolio(simulate_portfolio(20_000, 24, seed=3, start="2024-01-01"), sim)
    t0 = time.perf_counter()
    job = train_job(sim, pd.Timestamp("2025-12-31"), months=12)
    print(f"model: version {job.model_version} trained in {time.perf_counter() - t0:.0f}s")
    n_accounts = int(round(overdue / OVERDUE_SHARE))
    data = work / f"data_{n_accounts}"
    if not (data / "accounts.parquet").exists():
        t0 = time.perf_counter()
        tables = synthetic_portfolio(n_accounts)
        for name, df in tables.items():
            write_parquet(df, data / f"{name}.parquet")
        rows = {k: len(v) for k, v in tables.items()}
        print(
            f"portfolio: {n_accounts:,} accounts {rows} written in {time.perf_counter() - t0:.0f}s"
        )
        del tables
    return data, f"models:/repayment-propensity/{job.model_version}", AS_OF


def _measure(work: Path, data: Path, uri: str, as_of: str) -> None:
    """Run in a fresh process: one scoring run, timings and peak memory as JSON."""
    import pandas as pd

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.chdir(work)
    from pipeline.score import run_scoring

    t0 = time.perf_counter()
    outcome = run_scoring(data, pd.Timestamp(as_of), work / "out", model_uri=uri)
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        json.dumps(
            {
                "total_s": round(total, 1),
                "peak_gb": round(peak, 2),
                "scored": outcome.manifest["counts"]["scored"],
                "input_accounts": outcome.manifest["counts"]["input_accounts"],
                "stages": outcome.manifest["timings_seconds"],
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Prepare the model and data, then measure one scoring run in a child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overdue", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=ROOT / "bench_out" / "score")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.measure:
        _measure(work, Path(args.measure[0]), args.measure[1], args.measure[2])
        return 0
    data, uri, as_of = _prepare(work, args.overdue)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--work",
            str(work),
            "--measure",
            str(data),
            uri,
            str(as_of.date()),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
        return proc.returncode
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result["stages"].items())
    n = result["scored"]
    print(
        f"score: {n:,} overdue accounts scored (of {result['input_accounts']:,}) in "
        f"{result['total_s']:.1f}s ({n / result['total_s']:,.0f} accounts/s), "
        f"peak {result['peak_gb']:.2f} GB  [target < 180 s, < 8 GB]"
    )
    print(f"  stages: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
