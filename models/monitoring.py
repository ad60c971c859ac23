"""Nightly monitoring: when does a scoring run raise a drift alarm?

A drift alarm should mean "the model no longer describes this book", not "the
book is a month older". Two things drive it, both of which a model that still
works keeps stable:

* **score drift**: the PSI of ``p_willingness`` or ``p_ability`` against the
  model's drift reference (the newest months it was fitted on) is above
  :data:`PSI_ALERT`;
* **calibration in the large on the latest labelled month**: on the newest
  month-end snapshot whose label horizon has closed by the scoring date, the
  mean predicted probability of a head is more than :data:`CITL_ALERT` plus
  two standard errors of the observed rate (``sqrt(r (1 - r) / n)``) away
  from the rate that happened: material, and beyond what one month of a
  small book shows by chance.

Feature PSIs are still computed and logged (they say *where* a shift is), but
on their own they raise no alarm: a feature can drift for harmless reasons
(the book ages) and features that count time drift by construction.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.heads import HEADS, ability_target
from models.propensity_model import PropensityModel

#: PSI of a score above which a scoring run raises a drift alarm.
PSI_ALERT: float = 0.25
#: |mean prediction - observed rate| on the latest labelled month, beyond
#: CITL_NOISE_Z standard errors of that rate, above which it does too.
CITL_ALERT: float = 0.05
CITL_NOISE_Z: float = 2.0
#: The scores whose PSI drives the alarm.
ALERT_SCORES: tuple[str, ...] = ("p_willingness", "p_ability")


def predicted(
    model: PropensityModel, frame: pd.DataFrame, probs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return ``model.predict_proba(frame)``, or ``probs`` when the caller has scored it already.

    Raises
    ------
    ValueError
        ``probs`` is not one row per row of ``frame`` (same index, same order).
    """
    if probs is None:
        return model.predict_proba(frame)
    if not probs.index.equals(frame.index):
        raise ValueError(
            f"the predictions given are not those of the frame's rows ({len(probs):,} rows "
            f"for {len(frame):,}, or another index): pass model.predict_proba(frame)"
        )
    return probs


def calibration_in_the_large(
    model: PropensityModel,
    labelled: pd.DataFrame,
    threshold: float = 0.999,
    probs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return each head's mean prediction against the observed rate on a labelled frame.

    Parameters
    ----------
    model : PropensityModel
    labelled : DataFrame
        Features plus ``paid_any`` and ``coverage`` (a training-set slice).
    threshold : float
        Full-coverage threshold of the ability target.
    probs : DataFrame, optional
        ``model.predict_proba(labelled)`` when the caller has it (not predicted again).

    Returns
    -------
    DataFrame
        ``head``, ``rows``, ``observed_rate``, ``mean_prediction``,
        ``over_prediction`` (``mean_prediction - observed_rate``). The
        willingness head is judged on every row, the ability head on payers.
    """
    return citl_summary(citl_rows(model, labelled, threshold, probs))


def citl_rows(
    model: PropensityModel,
    labelled: pd.DataFrame,
    threshold: float = 0.999,
    probs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return per labelled row what :func:`citl_summary` adds up: predictions and outcomes.

    Columns ``p_willingness``, ``p_ability``, ``paid`` (bool: the row pays,
    so it judges the ability head) and ``full_coverage`` (the ability
    target, 0.0 or 1.0). Rows of parts of a book (shards) concatenate into
    the book's, in any order. ``probs``: as in :func:`calibration_in_the_large`.
    """
    n = len(labelled)
    probs = predicted(model, labelled, probs) if n else pd.DataFrame()
    paid = labelled["paid_any"].to_numpy() == 1
    return pd.DataFrame(
        {
            **{f"p_{h}": probs[f"p_{h}"].to_numpy(np.float64) if n else np.zeros(0) for h in HEADS},
            "paid": paid,
            "full_coverage": ability_target(labelled["coverage"], threshold).astype("float64"),
        }
    )


def citl_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Return :func:`calibration_in_the_large`'s table from :func:`citl_rows`.

    Sums are exact (``math.fsum``), so they do not depend on the order of the
    rows: a book scored in shards gets the figures of the book scored whole.

    Examples
    --------
    >>> rows = pd.DataFrame({"p_willingness": [0.2, 0.6], "p_ability": [0.5, 0.9],
    ...                      "paid": [False, True], "full_coverage": [0.0, 1.0]})
    >>> citl_summary(rows)[["head", "rows", "observed_rate", "mean_prediction"]].to_numpy().tolist()
    [['willingness', 2, 0.5, 0.4], ['ability', 1, 1.0, 0.9]]
    """
    paid = rows["paid"].to_numpy(bool)
    targets = {
        "willingness": (np.ones(len(rows), dtype=bool), paid.astype("float64")),
        "ability": (paid, rows["full_coverage"].to_numpy(np.float64)),
    }
    out = []
    for head in HEADS:
        mask, y = targets[head]
        n = int(mask.sum())
        obs = math.fsum(y[mask]) / n if n else float("nan")
        pred = math.fsum(rows[f"p_{head}"].to_numpy(np.float64)[mask]) / n if n else float("nan")
        out.append(
            {
                "head": head,
                "rows": n,
                "observed_rate": obs,
                "mean_prediction": pred,
                "over_prediction": pred - obs,
            }
        )
    return pd.DataFrame(out)


def drift_alarms(
    drift: pd.DataFrame,
    citl: pd.DataFrame | None = None,
    psi_alert: float = PSI_ALERT,
    citl_alert: float = CITL_ALERT,
) -> list[str]:
    """Return the reasons for a drift alarm (empty: no alarm).

    Parameters
    ----------
    drift : DataFrame
        ``variable``, ``psi`` (:meth:`PropensityModel.drift`).
    citl : DataFrame, optional
        :func:`calibration_in_the_large` on the latest labelled month.

    Examples
    --------
    >>> drift = pd.DataFrame({"variable": ["p_willingness", "dpd"], "psi": [0.31, 4.0]})
    >>> drift_alarms(drift)
    ['p_willingness PSI 0.310 > 0.25']
    >>> citl = pd.DataFrame({"head": ["ability"], "rows": [5000], "observed_rate": [0.5],
    ...                      "over_prediction": [-0.08]})
    >>> drift_alarms(drift.iloc[1:], citl)
    ['ability calibration in the large -0.080 (|.| > 0.064) on 5000 labelled rows']
    >>> drift_alarms(drift.iloc[1:], citl.assign(rows=100))  # within noise at 100 rows
    []
    """
    reasons = [
        f"{r.variable} PSI {r.psi:.3f} > {psi_alert:g}"
        for r in drift.itertuples(index=False)
        if r.variable in ALERT_SCORES and r.psi > psi_alert
    ]
    for r in citl.itertuples(index=False) if citl is not None else ():
        if not r.rows:
            continue
        limit = citl_alert + CITL_NOISE_Z * np.sqrt(
            r.observed_rate * (1 - r.observed_rate) / r.rows
        )
        if abs(r.over_prediction) > limit:
            reasons.append(
                f"{r.head} calibration in the large {r.over_prediction:+.3f} "
                f"(|.| > {limit:.3f}) on {r.rows} labelled rows"
            )
    return reasons


def alarm_role(variable: str, exempt: dict[str, str]) -> str:
    """Return how a variable of the drift table takes part in the alarm.

    Examples
    --------
    >>> [alarm_role(v, {"episode_days_current": "counts days"})
    ...  for v in ("p_ability", "dpd", "episode_days_current")]
    ['drives the alarm', 'reported', 'reported; trends by construction: counts days']
    """
    if variable in ALERT_SCORES:
        return "drives the alarm"
    if variable in exempt:
        return f"reported; trends by construction: {exempt[variable]}"
    return "reported"
