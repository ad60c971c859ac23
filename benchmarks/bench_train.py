"""Benchmark: train, evaluate and log both heads on a portfolio-sized training set.

By default the training set is synthetic (``models.synthetic``), shaped like
100,000 accounts x 12 monthly snapshots with about 15% overdue at each month
end (about 180,000 rows) and as wide as the feature catalogue (88 features).
With ``--source simulated`` it is built the real way instead: the portfolio
simulator, then the feature jobs' training-set builder over the 12 month ends
whose 30-day horizon has closed, with the catalogue's feature spec.
It times training with evaluation, logging to a temporary SQLite MLflow
store, and scoring up to 200,000 rows with reason codes, and prints seconds.
Target: train + evaluate + log under 5 minutes on 2 cores.

Run: ``python benchmarks/bench_train.py [--accounts 100000 --months 12 --source simulated]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--overdue-share", type=float, default=0.15)
    parser.add_argument("--features", type=int, default=88, help="total feature columns")
    parser.add_argument("--score-rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--source", choices=("synthetic", "simulated"), default="synthetic")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # OpenMP threads that spin while waiting starve each other on a shared
    # 2-core machine; passive waiting must be set before LightGBM loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, cpus={os.cpu_count()}")

    from models.config import load_config

    t0 = time.perf_counter()
    if args.source == "synthetic":
        from models.synthetic import SYNTHETIC_SPEC, make_training_set

        data = make_training_set(
            n_accounts=args.accounts,
            n_months=args.months,
            seed=args.seed,
            overdue_share=args.overdue_share,
            extra_features=max(0, args.features - len(SYNTHETIC_SPEC.columns)),
        )
        frame, spec = data.frame, data.spec
    else:
        frame, spec = _simulated(args.accounts, args.months, args.seed)
    print(
        f"{args.source} training set: {len(frame):,} rows x {len(spec.columns)} features "
        f"({time.perf_counter() - t0:.1f}s to build)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        from models import tracking
        from models.training import train

        config = load_config()
        t1 = time.perf_counter()
        result = train(frame, config, spec, data_window={"source": f"bench_train {args.source}"})
        t_train = time.perf_counter() - t1
        t2 = time.perf_counter()
        run_id, version = tracking.log_training_run(result, experiment="bench")
        t_log = time.perf_counter() - t2

        rows = frame.sample(n=min(args.score_rows, len(frame)), random_state=0)
        t3 = time.perf_counter()
        result.model.predict(rows)
        t_predict = time.perf_counter() - t3
        t4 = time.perf_counter()
        result.model.predict_proba(rows)
        t_proba = time.perf_counter() - t4

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    trees = result.model.metadata["best_iteration"]
    print(f"train + evaluate: {t_train:.1f}s ({stages})")
    print(f"trees: willingness {trees['willingness']}, ability {trees['ability']}")
    print(f"log to MLflow (run {run_id[:8]}, version {version}): {t_log:.1f}s")
    print(f"TOTAL train + evaluate + log: {t_train + t_log:.1f}s (target < 300s on 2 cores)")
    print(
        f"predict with reason codes: {len(rows):,} rows in {t_predict:.1f}s "
        f"({len(rows) / t_predict:,.0f} rows/s); probabilities only: {t_proba:.2f}s"
    )
    print(
        f"willingness test AUC {result.metrics['willingness']['test']['auc']:.4f}, "
        f"ability test AUC {result.metrics['ability']['test']['auc']:.4f}; "
        f"peak memory {peak_mb:,.0f} MB"
    )


def _simulated(accounts: int, months: int, seed: int):
    """Simulate a portfolio and build the training set of its last ``months`` closed month ends."""
    import pandas as pd

    from features.training_set import build_training_set
    from models.spec import FeatureSpec
    from pipeline.simulator import simulate_portfolio

    t = time.perf_counter()
    # One month more than the snapshots, so the last one's 30-day horizon closes.
    portfolio = simulate_portfolio(accounts, months + 1, seed)
    print(
        f"simulated {accounts:,} accounts x {months + 1} months in {time.perf_counter() - t:.1f}s"
    )
    first = pd.Timestamp("2024-01-31")
    last = first + pd.offsets.MonthEnd(months - 1)
    t = time.perf_counter()
    frame = build_training_set(portfolio.tables, first, last, horizon_days=30)
    print(f"training set built in {time.perf_counter() - t:.1f}s")
    return frame, FeatureSpec.default()


if __name__ == "__main__":
    main()
