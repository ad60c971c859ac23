"""The treatment-effect model of a training run: fitted, held out, summarised for the report.

:func:`assess_effects` takes randomised units (features ``X``, the ``arm``
each was randomised to, the ``outcome``: share of arrears recovered in the
horizon), fits the T-learner of :mod:`models.uplift` on a random part and
evaluates it on the rest. Per arm against the baseline arm it reports:

* the randomised units of the arm and of the baseline;
* the observed average effect (difference of mean outcomes, all units of
  the two arms) with a normal 95% interval (unequal variances);
* the mean predicted effect and the Qini coefficient on the held-out units,
  with a bootstrap 95% interval of the coefficient (rows resampled), so
  "better than chance" is read from the interval, not from the sign alone.

The result (:class:`TreatmentEffects`) rides on the training result; the
model report renders it and ``models.tracking`` logs it in the heads' run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.uplift import (
    MIN_ARM_ROWS,
    UpliftModel,
    evaluate_uplift,
    fit_t_learner,
    qini_coefficient,
    qini_curve,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Share of the randomised units held out to evaluate the model.
HOLDOUT_SHARE = 0.3
#: Bootstrap replicates of the Qini coefficient.
QINI_BOOT = 200
#: Columns of :attr:`TreatmentEffects.table`, in order.
EFFECT_TABLE_COLUMNS: tuple[str, ...] = (
    "arm", "units", "baseline_units", "observed_effect", "ci_low", "ci_high",
    "heldout_units", "predicted_effect", "qini_coefficient", "qini_ci_low", "qini_ci_high",
)  # fmt: skip


@dataclass
class TreatmentEffects:
    """A training run's treatment-effect model and its evaluation, or why there is none.

    Attributes
    ----------
    source : str
        Where the randomised units came from (for the report).
    arms : tuple of str
        The arms, the baseline first.
    table : DataFrame
        One row per non-baseline arm (:data:`EFFECT_TABLE_COLUMNS`).
    curves : dict
        Arm -> held-out Qini curve (:func:`models.uplift.qini_curve`).
    model : UpliftModel or None
        None when there was not enough randomised data (``reason`` says why).
    reason : str
        Why there is no model; empty when there is one.
    dropped : dict
        Arms left out for too few units, with their unit counts.
    images : dict
        Arm -> Qini curve as PNG bytes, rendered once (the report and MLflow
        share them; :func:`models.report.qini_pngs`).
    """

    source: str
    arms: tuple[str, ...] = ()
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    model: UpliftModel | None = None
    reason: str = ""
    dropped: dict[str, int] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict, repr=False)


def no_effects(source: str, reason: str) -> TreatmentEffects:
    """Return the record of a run without a treatment-effect model, and why."""
    return TreatmentEffects(source=source, reason=reason)


def observed_effect(y: np.ndarray, treated: np.ndarray) -> tuple[float, float, float]:
    """Return the difference of mean outcomes (treated minus untreated) and its normal 95% CI.

    Examples
    --------
    >>> m, lo, hi = observed_effect(np.array([1.0, 0.0, 1.0, 0.0]), np.array([1, 1, 0, 0], bool))
    >>> m, round(lo, 3), round(hi, 3)
    (0.0, -1.386, 1.386)
    """
    y1, y0 = y[treated], y[~treated]
    diff = float(y1.mean() - y0.mean())
    var = y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0)
    half = 1.959963984540054 * float(np.sqrt(var))
    return diff, diff - half, diff + half


def qini_interval(
    effect: np.ndarray, treated: np.ndarray, y: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float]:
    """Return a percentile bootstrap 95% interval of the Qini coefficient (rows resampled)."""
    rng = np.random.default_rng(seed)
    n = len(effect)
    values = np.empty(n_boot)
    for b in range(n_boot):  # replicates, not accounts: each one is vectorised
        i = rng.integers(0, n, n)
        values[b] = qini_coefficient(qini_curve(effect[i], treated[i], y[i]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _too_few(arm: np.ndarray, fit: np.ndarray, arms: tuple[str, ...]) -> list[str]:
    """Return the arms with fewer than :data:`models.uplift.MIN_ARM_ROWS` fitting or 10 held-out units."""
    return [
        a for a in arms if ((arm == a) & fit).sum() < MIN_ARM_ROWS or ((arm == a) & ~fit).sum() < 10
    ]


def assess_effects(
    X: pd.DataFrame,
    arm: np.ndarray,
    outcome: np.ndarray,
    arms: tuple[str, ...],
    source: str,
    seed: int = 0,
    holdout: float = HOLDOUT_SHARE,
    n_boot: int = QINI_BOOT,
) -> TreatmentEffects:
    """Fit the T-learner on part of the randomised units and evaluate it on the rest.

    Parameters
    ----------
    X : pandas.DataFrame
        Features known before treatment, one row per randomised unit.
    arm : numpy.ndarray
        The arm each unit was randomised to.
    outcome : numpy.ndarray
        Share of arrears recovered in the horizon, per unit.
    arms : tuple of str
        The arms, the baseline first; units of other arms are left out.
    source : str
        Where the units came from (shown in the report).
    seed : int
        Seed of the held-out draw, the boosters and the bootstrap.
    holdout : float
        Share of the units held out.
    n_boot : int
        Bootstrap replicates of each Qini coefficient.

    Returns
    -------
    TreatmentEffects
        Arms with too few units are left out (``dropped``); without a model
        (and with the reason) when the baseline or every other arm is short.
    """
    arm = np.asarray(arm, dtype=object)
    y = np.asarray(outcome, dtype=np.float64)
    fit = np.random.default_rng(seed).random(len(y)) >= holdout
    short = _too_few(arm, fit, arms)
    dropped = {a: int((arm == a).sum()) for a in short}
    if arms[0] in short or len(short) >= len(arms) - 1:
        counts = {a: int((arm == a).sum()) for a in arms}
        return no_effects(
            source,
            f"too few randomised units to fit and hold out (per arm {counts}; at least "
            f"{MIN_ARM_ROWS / (1 - holdout):.0f} in the baseline and one other arm)",
        )
    arms = tuple(a for a in arms if a not in short)
    keep = np.isin(arm, arms) & np.isfinite(y)
    X, arm, y, fit = X.loc[keep].reset_index(drop=True), arm[keep], y[keep], fit[keep]
    model = fit_t_learner(X.loc[fit], arm[fit], y[fit], arms, seed=seed)
    effects = model.effects(X.loc[~fit])
    held, curves = evaluate_uplift(model, X.loc[~fit], arm[~fit], y[~fit], effects)
    rows = []
    for i, a in enumerate(arms[1:], start=1):
        pair = (arm == a) | (arm == arms[0])
        m, lo, hi = observed_effect(y[pair], arm[pair] == a)
        hpair = pair[~fit]
        qlo, qhi = qini_interval(
            effects[a].to_numpy()[hpair], arm[~fit][hpair] == a, y[~fit][hpair], n_boot, seed + i
        )
        h = held.set_index("arm").loc[a]
        rows.append(
            {
                "arm": a,
                "units": int((arm == a).sum()),
                "baseline_units": int((arm == arms[0]).sum()),
                "observed_effect": m,
                "ci_low": lo,
                "ci_high": hi,
                "heldout_units": int(h["rows"]),
                "predicted_effect": float(h["predicted_effect"]),
                "qini_coefficient": float(h["qini_coefficient"]),
                "qini_ci_low": qlo,
                "qini_ci_high": qhi,
            }  # fmt: skip
        )
    table = pd.DataFrame(rows, columns=list(EFFECT_TABLE_COLUMNS))
    return TreatmentEffects(source, arms, table, curves, model, dropped=dropped)


def ranking_sentence(row: pd.Series | dict, baseline: str) -> str:
    """Return one plain sentence: does the model rank this arm's effect better than chance?"""
    q, lo, hi = row["qini_coefficient"], row["qini_ci_low"], row["qini_ci_high"]
    figures = f"Qini coefficient {q:.4f} (95% CI {lo:.4f} to {hi:.4f})"
    arm = row["arm"]
    if lo > 0:
        verdict = "ranks accounts by the effect better than chance"
    elif hi < 0:
        verdict = "ranks accounts by the effect worse than chance: do not target with it"
    else:
        verdict = "does not rank accounts by the effect distinguishably from chance"
    return f"{arm} vs {baseline}: the model {verdict}; {figures} on held-out units."


def effects_metrics(effects: TreatmentEffects) -> dict[str, float]:
    """Return the run metrics of the effects: ``uplift_qini_<arm>`` and the effect per arm."""
    out: dict[str, float] = {}
    for row in effects.table.to_dict("records"):
        a = row["arm"]
        out[f"uplift_qini_{a}"] = row["qini_coefficient"]
        out[f"uplift_observed_effect_{a}"] = row["observed_effect"]
        out[f"uplift_predicted_effect_{a}"] = row["predicted_effect"]
        out[f"uplift_units_{a}"] = float(row["units"])
    return {k: float(v) for k, v in out.items()}


def qini_figure(curve: pd.DataFrame, arm: str, baseline: str) -> Figure:
    """Return the Qini curve of an arm against the straight line of a random order."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot(curve["share"], curve["qini"], label=f"model ({arm} vs {baseline})")
    ax.plot(curve["share"], curve["random"], linestyle="--", label="random order")
    ax.set_xlabel("share of accounts targeted, best predicted effect first")
    ax.set_ylabel("incremental outcome per account")
    ax.legend(fontsize=8)
    return fig


__all__ = [
    "EFFECT_TABLE_COLUMNS",
    "TreatmentEffects",
    "assess_effects",
    "effects_metrics",
    "no_effects",
    "observed_effect",
    "qini_figure",
    "qini_interval",
    "ranking_sentence",
]
