"""Recalibrate a model on the latest labelled month without retraining its trees.

When the payment rate of a book drifts, a model can keep ranking debtors well
(its AUC holds) while its probabilities drift away from what happens: the
calibration in the large goes wrong first. Retraining needs months of data
and a review; moving the calibrators' level does not. :func:`recalibrate`
keeps the boosters and the shape of every calibrator, and moves each level
(a shift on the log-odds scale, :func:`models.heads.fit_level_shift`) so that
the mean prediction on the latest labelled month equals what happened (less
two standard errors of sampling noise, so chance alone moves nothing):

* ``willingness``: P(any payment) on every snapshot of the month;
* ``ability``: P(full coverage) on the snapshots that paid;
* ``share``: E[coverage | pay] on the same payers.

The ranking is unchanged by construction (a monotone map of a monotone map),
so the new model's AUC equals the old one's on any data. The step refuses
(:class:`RecalibrationRefused`) when the month has too few rows of a head's
population to estimate a rate, or when a shift is larger than
``max_shift`` log-odds: a move that large means the book changed, which a
retrain and a review should look at, not a quiet recalibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from models.config import CalibrationConfig
from models.heads import ability_target, fit_level_shift
from models.monitoring import calibration_in_the_large
from models.propensity_model import PropensityModel


class RecalibrationRefused(ValueError):
    """The labelled month cannot support a recalibration (too few rows, too large a shift)."""


@dataclass
class Recalibration:
    """A recalibrated model and the figures behind it.

    Attributes
    ----------
    model : PropensityModel
        The same boosters with shifted calibrators (``metadata`` records the step).
    shifts : dict
        Calibrator name -> the log-odds shift added on this month.
    before, after : DataFrame
        Calibration in the large of each head on the month, old and new model.
    month : str
        The as-of date of the labelled snapshots.
    rows : int
        Snapshots in the month.
    probs_before, probs_after : DataFrame
        The old and the new model's ``predict_proba`` of the month, so that
        the gate judges them without predicting the month again.
    """

    model: PropensityModel
    shifts: dict[str, float]
    before: pd.DataFrame
    after: pd.DataFrame
    month: str
    rows: int
    probs_before: pd.DataFrame = field(repr=False, compare=False)
    probs_after: pd.DataFrame = field(repr=False, compare=False)

    def summary(self) -> str:
        """Return the step as printable lines."""
        lines = [f"Recalibration on the snapshots of {self.month} ({self.rows:,} rows):"]
        b = self.before.set_index("head")
        a = self.after.set_index("head")
        for head in b.index:
            lines.append(
                f"  {head:<12} observed {b.at[head, 'observed_rate']:.4f}: mean prediction "
                f"{b.at[head, 'mean_prediction']:.4f} -> {a.at[head, 'mean_prediction']:.4f}"
            )
        lines.append(
            "  level shifts (log-odds): "
            + ", ".join(f"{k} {v:+.4f}" for k, v in self.shifts.items())
        )
        return "\n".join(lines)


def recalibrate(
    model: PropensityModel,
    labelled: pd.DataFrame,
    settings: CalibrationConfig | None = None,
    *,
    min_rows: int | None = None,
    max_shift: float | None = None,
    z: float | None = None,
) -> Recalibration:
    """Return ``model`` with each calibrator's level moved to the rates of ``labelled``.

    Parameters
    ----------
    model : PropensityModel
    labelled : DataFrame
        One month of training-set snapshots: the model's feature columns,
        ``as_of_date``, ``paid_any`` and ``coverage``.
    settings : CalibrationConfig, optional
        The config's ``calibration`` section (defaults: the packaged config),
        whose ``recalibration_min_rows``, ``recalibration_max_shift`` and
        ``shift_z`` the next three arguments override.
    min_rows : int
        Fewest rows of each head's population.
    max_shift : float
        Largest |shift| accepted, in log-odds.
    z : float
        The shift is shrunk by ``z`` standard errors of the month's rate, so
        a month that differs from the model by chance moves nothing
        (:func:`models.heads.fit_level_shift`); 0 matches the month exactly.

    Returns
    -------
    Recalibration

    Raises
    ------
    RecalibrationRefused
        Several months, too few rows, or a shift above ``max_shift``.
    """
    settings = settings or CalibrationConfig()
    min_rows = settings.recalibration_min_rows if min_rows is None else min_rows
    max_shift = settings.recalibration_max_shift if max_shift is None else max_shift
    z = settings.shift_z if z is None else z
    months = pd.to_datetime(labelled["as_of_date"]).unique() if len(labelled) else []
    if len(months) != 1:
        raise RecalibrationRefused(
            f"recalibration needs the snapshots of exactly one month, got {len(months)}"
        )
    threshold = float(model.metadata.get("full_coverage_threshold", 0.999))
    paid = labelled["paid_any"].to_numpy() == 1
    for head, n in (("willingness", len(labelled)), ("ability", int(paid.sum()))):
        if n < min_rows:
            raise RecalibrationRefused(
                f"{head}: {n} labelled rows in {pd.Timestamp(months[0]).date()}, fewer than "
                f"{min_rows}; recalibrate on a month with more accounts"
            )
    probs = model.predict_proba(labelled)
    targets = {
        "willingness": (
            np.ones(len(labelled), dtype=bool),
            paid.astype("float64"),
            "p_willingness",
        ),
        "ability": (paid, ability_target(labelled["coverage"], threshold), "p_ability"),
        "share": (paid, labelled["coverage"].to_numpy(dtype="float64"), "expected_share"),
    }
    shifts: dict[str, float] = {}
    calibrators = dict(model.calibrators)
    for name, (rows, y, column) in targets.items():
        if name not in calibrators:
            continue
        delta = fit_level_shift(probs[column].to_numpy()[rows], np.asarray(y)[rows], z=z)
        if abs(delta) > max_shift:
            raise RecalibrationRefused(
                f"{name}: the level would move by {delta:+.3f} log-odds (limit {max_shift}); "
                "a shift that large means the book changed: retrain and review instead"
            )
        shifts[name] = delta
        calibrators[name] = calibrators[name].with_shift(calibrators[name].shift + delta)
    month = str(pd.Timestamp(months[0]).date())
    history = [*model.metadata.get("recalibrations", []), {"month": month, **shifts}]
    new = replace(
        model,
        calibrators=calibrators,
        metadata={
            **model.metadata,
            "recalibrated_from": model.version,
            "recalibrations": history,
        },
        version=None,
        _tree_splits={},
    )
    new_probs = new.predict_proba(labelled)
    return Recalibration(
        model=new,
        shifts=shifts,
        before=calibration_in_the_large(model, labelled, threshold, probs),
        after=calibration_in_the_large(new, labelled, threshold, new_probs),
        month=month,
        rows=len(labelled),
        probs_before=probs,
        probs_after=new_probs,
    )
