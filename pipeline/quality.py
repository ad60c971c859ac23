"""``make evaluate``: the quality bar on a fresh simulated portfolio.

The portfolio's seed and size differ from the ones the code was developed
and tested on, so the figures are not tuned to them. This is the only place
outside the simulator's tests where ``truth`` (the latent ability and
willingness) is read: features and models never see it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def run_quality_bar(
    n_accounts: int,
    n_months: int,
    seed: int,
    scenario: str = "base",
    config_overrides: dict | None = None,
) -> tuple[str, bool]:
    """Simulate, build the training set, train both heads, and check the quality bar.

    Parameters
    ----------
    n_accounts, n_months, seed : int
        The simulated portfolio.
    scenario : str
        A name of :data:`pipeline.simulator.SCENARIOS` (``base``: the
        stationary portfolio; ``drift``: a book whose payment rate, mix and
        products shift, with a macro shock and noisier behaviour).
    config_overrides : dict, optional
        Training-config values to change (dotted keys), e.g. the ability target.

    Returns
    -------
    (str, bool)
        The printable figures and whether every criterion passed.
    """
    from features.build import build_features
    from features.training_set import build_training_set
    from models.config import load_config
    from models.quality import format_quality, quality_figures
    from models.spec import FeatureSpec
    from models.training import train
    from pipeline.approach_eval import approach_confusion, format_approach
    from pipeline.jobs import training_window
    from pipeline.simulator import SCENARIOS, simulate_portfolio

    if scenario not in SCENARIOS:
        raise ValueError(f"--scenario {scenario!r} is unknown: expected one of {sorted(SCENARIOS)}")
    t0 = time.perf_counter()
    params = SCENARIOS[scenario]()
    portfolio = simulate_portfolio(n_accounts, n_months, seed, "2024-01-01", params=params)
    tables = portfolio.tables
    data_end = (pd.Timestamp("2024-01-01") + pd.DateOffset(months=n_months)).normalize()
    start, end = training_window(data_end, n_months - 2, 30)
    training_set = build_training_set(tables, start, end, horizon_days=30, data_end=data_end)
    result = train(training_set, load_config(overrides=config_overrides), FeatureSpec.default())
    figures = quality_figures(result, portfolio.truth)
    alarms = monitoring_check(result)
    figures["passes"] = bool(figures["passes"] and alarms["passes"])
    rates = training_set.groupby("as_of_date")["paid_any"].mean()
    header = (
        f"scenario {scenario}: payment rate by month {rates.iloc[0]:.3f} (first) .. "
        f"{rates.iloc[-1]:.3f} (last)\n"
        f"portfolio: {n_accounts:,} accounts x {n_months} months, seed {seed}; "
        f"snapshots {start.date()}..{end.date()}, {len(training_set):,} rows; "
        f"{time.perf_counter() - t0:.0f}s"
    )
    passed = bool(figures["passes"])
    feats = build_features(tables, data_end, overdue_only=True)
    approach, matrix = approach_confusion(feats, portfolio.truth)
    per_seed = pd.DataFrame([{"seed": seed, **{k: approach[k] for k in _APPROACH_KEYS}}])
    text = (
        format_quality(figures) + "\n" + alarms["text"] + "\n" + format_approach(per_seed, matrix)
    )
    return header + "\n" + text, passed


_APPROACH_KEYS = ("accounts", "accuracy", "accuracy_typed", "majority_baseline")


def monitoring_check(result, planted_drop: float = 0.4, seed: int = 0) -> dict:
    """Check the drift alarm on the model's own test window and on a planted shift.

    Inside the window: a scoring night on the last test month (its features
    and scores against the drift reference), with the first test month as the
    latest labelled month, must raise no alarm. Planted: the same night where
    ``planted_drop`` of the labelled month's payers did not pay must raise one.

    Returns
    -------
    dict
        ``inside`` and ``planted`` (lists of alarm reasons), ``passes`` and ``text``.
    """
    from models.monitoring import calibration_in_the_large, drift_alarms

    model, test = result.model, result.split.test
    months = result.split.months["test"]
    threshold = result.config.labels.full_coverage_threshold
    night = test.loc[test["as_of_date"] == months[-1]]
    scores = model.predict_proba(night)
    drift = model.drift(pd.concat([night[list(model.spec.columns)], scores], axis=1))
    labelled = test.loc[test["as_of_date"] == months[0]]
    inside = drift_alarms(drift, calibration_in_the_large(model, labelled, threshold))
    rng = np.random.default_rng(seed)
    flip = (labelled["paid_any"].to_numpy() == 1) & (rng.random(len(labelled)) < planted_drop)
    shifted = labelled.assign(
        paid_any=np.where(flip, 0, labelled["paid_any"]),
        coverage=np.where(flip, 0.0, labelled["coverage"]),
    )
    planted = drift_alarms(drift, calibration_in_the_large(model, shifted, threshold))
    passes = not inside and bool(planted)
    text = "\n".join(
        [
            "Drift alarm:",
            f"  [{'PASS' if not inside else 'FAIL'}] none on {months[-1].date()} (inside the test "
            f"window): {'; '.join(inside) or 'no alarm'}",
            f"  [{'PASS' if planted else 'FAIL'}] one on a planted shift ({planted_drop:.0%} of "
            f"the labelled payers stop paying): {'; '.join(planted) or 'no alarm'}",
        ]
    )
    return {"inside": inside, "planted": planted, "passes": passes, "text": text}
