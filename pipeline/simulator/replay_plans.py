"""Logged plans from a replay: what a treatment-effect model learns from in the demo.

A lender's randomised data is its published runs (``as_of=D/scores.parquet``,
control group and explored arms) and the export that followed. A replay
makes the same on a simulated book: :func:`recording` keeps every plan a
strategy publishes, night by night, and :func:`publish_logged_plans` writes
them as published runs (``<out>/plans/as_of=D/scores.parquet``) and the
strategy's tables at the end of the replay as an export (``<out>/data/``), so
``propensity train --data <out>/data --as-of END --plans <out>/plans`` fits
the heads and the treatment-effect model as it would on a lender's book.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.simulator.strategies import Night, Strategy
from pipeline.simulator.tables import Portfolio, write_portfolio
from pipeline.uplift_units import UNIT_FEATURES

#: Columns of a plan kept in the logged runs (those present): keys, features, assignment.
LOGGED_COLUMNS: tuple[str, ...] = (
    "account_id", "as_of_date", "dpd", "arrears", "p_willingness", "p_ability",
    "expected_recovery", "risk_tier", "contact_intensity", "offer", "control_group",
    "control_probability", "arm", "arm_probability", "lawful_arms",
)  # fmt: skip


def recording(strategy: Strategy, sink: list[pd.DataFrame], model=None) -> Strategy:
    """Return the strategy, appending each night's published rows to ``sink``.

    A plan carries no scores; with ``model`` the night's
    :data:`pipeline.uplift_units.UNIT_FEATURES` (``dpd``, ``arrears`` and the
    probabilities, what ``train --plans`` reads) are computed as
    ``propensity score`` publishes them (features of that night's tables), so
    the logged rows read like a published run's.
    """

    def plan(night: Night) -> pd.DataFrame:
        rows = strategy(night)
        kept = rows.assign(as_of_date=night.as_of)
        if model is not None:
            kept = kept.drop(columns=[c for c in UNIT_FEATURES if c in kept.columns])
            kept = kept.merge(_scores(night, model), on="account_id", how="left")
        sink.append(kept[[c for c in LOGGED_COLUMNS if c in kept.columns]])
        return rows

    return plan


def _scores(night: Night, model) -> pd.DataFrame:
    """Return the night's ``account_id`` and unit features as the scorer computes them."""
    from features.build import build_features
    from pipeline.score import scored_frame

    feats = build_features(night.tables, night.as_of, validate=False)
    return scored_frame(feats, model.predict_proba(feats))[["account_id", *UNIT_FEATURES]]


def publish_logged_plans(
    nights: list[pd.DataFrame], tables: dict[str, pd.DataFrame], truth: pd.DataFrame, out: Path
) -> tuple[Path, Path]:
    """Write the recorded nights as published runs and the replayed tables as an export.

    Returns
    -------
    (plans, data) : Path
        ``<out>/plans`` (one ``as_of=D/scores.parquet`` per night) and
        ``<out>/data`` (the contract tables and ``truth.parquet``).
    """
    out = Path(out)
    plans_dir = out / "plans"
    for frame in nights:
        d = pd.Timestamp(frame["as_of_date"].iloc[0]) if len(frame) else None
        if d is None:
            continue
        folder = plans_dir / f"as_of={d.date()}"
        folder.mkdir(parents=True, exist_ok=True)
        frame.reset_index(drop=True).to_parquet(folder / "scores.parquet", index=False)
    write_portfolio(Portfolio(tables=tables, truth=truth), out / "data")
    return plans_dir, out / "data"
