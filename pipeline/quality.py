"""``make evaluate``: the quality bar on a fresh simulated portfolio.

The portfolio's seed and size differ from the ones the code was developed
and tested on, so the figures are not tuned to them. This is the only place
outside the simulator's tests where ``truth`` (the latent ability and
willingness) is read: features and models never see it.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

log = logging.getLogger(__name__)


def run_quality_bar(n_accounts: int, n_months: int, seed: int) -> tuple[str, bool]:
    """Simulate, build the training set, train both heads, and check the quality bar.

    Returns
    -------
    (str, bool)
        The printable figures and whether every criterion passed.
    """
    from features.training_set import build_training_set
    from models.config import load_config
    from models.quality import format_quality, quality_figures
    from models.spec import FeatureSpec
    from models.training import train
    from pipeline.jobs import training_window
    from pipeline.simulator import simulate_portfolio

    t0 = time.perf_counter()
    portfolio = simulate_portfolio(n_accounts, n_months, seed, "2024-01-01")
    tables = portfolio.tables
    data_end = (pd.Timestamp("2024-01-01") + pd.DateOffset(months=n_months)).normalize()
    start, end = training_window(data_end, n_months - 2, 30)
    training_set = build_training_set(tables, start, end, horizon_days=30, data_end=data_end)
    result = train(training_set, load_config(), FeatureSpec.default())
    figures = quality_figures(result, portfolio.truth)
    header = (
        f"portfolio: {n_accounts:,} accounts x {n_months} months, seed {seed}; "
        f"snapshots {start.date()}..{end.date()}, {len(training_set):,} rows; "
        f"{time.perf_counter() - t0:.0f}s"
    )
    passed = bool(figures["passes"])
    return header + "\n" + format_quality(figures), passed
