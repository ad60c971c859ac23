"""The learning data of the treatment-effect model: one unit per account and delinquency episode.

The nightly plans (``scores.parquet`` rows, or the replay's plans) log each
account's randomised arm every night it is overdue (``arm``: ``control``,
an explored intensity, or ``plan``; :mod:`pipeline.control`). The arm is drawn
once per delinquency episode, so the unit is the episode, taken on its
**first logged night** D: features as of D (the row's own columns, computed
from events strictly before D), and the outcome

    ``outcome`` = payments in ``[D, D + horizon_days)`` / arrears at D, clipped to [0, 1]

(:func:`features.labels.build_labels`, the labels' "(D, D + H]" read on
dates). A payment at or after ``D + horizon_days`` never counts, and a unit
whose horizon is not complete by ``data_end`` is left out (counted).

An episode is a run of consecutive logged nights of an account: it ends on
the first night the account is not logged (cured or out of the book); the
next logged night starts a new one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.labels import build_labels
from features.vocab import CONTACT_INTENSITIES

#: Columns every logged plan row needs.
UNIT_KEYS: tuple[str, ...] = ("account_id", "as_of_date", "arrears")


def _arms(plans: pd.DataFrame) -> pd.Series:
    """The logged arm; where none is logged (older logs), ``control`` / ``plan`` from ``control_group``.

    Examples
    --------
    >>> _arms(pd.DataFrame({"control_group": [True, False, False],
    ...                     "arm": ["control", "high", None]})).tolist()
    ['control', 'high', 'plan']
    """
    if "control_group" in plans.columns:
        control = plans["control_group"].astype("boolean").fillna(False).to_numpy(bool)
        fallback = pd.Series(np.where(control, "control", "plan"), index=plans.index, dtype=object)
    elif "arm" in plans.columns:
        fallback = pd.Series(None, index=plans.index, dtype=object)
    else:
        raise KeyError("table plans: give column arm (or control_group) to tell the arms apart")
    if "arm" not in plans.columns:
        return fallback
    return plans["arm"].astype(object).where(plans["arm"].notna(), fallback)


def episode_first_nights(plans: pd.DataFrame) -> np.ndarray:
    """Return a bool per row: the row is the first logged night of its account's episode.

    Nights are the distinct ``as_of_date`` values of the log; an account's
    row starts an episode when the account was not logged on the previous
    night of the log.

    Examples
    --------
    >>> log = pd.DataFrame({"account_id": ["A", "A", "A", "B", "B"], "as_of_date": pd.to_datetime(
    ...     ["2024-03-01", "2024-03-02", "2024-03-04", "2024-03-02", "2024-03-03"])})
    >>> episode_first_nights(log).tolist()
    [True, False, True, True, False]
    """
    nights = np.sort(pd.unique(pd.to_datetime(plans["as_of_date"]).to_numpy()))
    night = np.searchsorted(nights, pd.to_datetime(plans["as_of_date"]).to_numpy())
    ids = plans["account_id"].astype(str).to_numpy()
    order = np.lexsort((night, ids))
    first = np.ones(len(plans), dtype=bool)
    same = ids[order][1:] == ids[order][:-1]
    follows = night[order][1:] - night[order][:-1] == 1
    first[order[1:]] = ~(same & follows)
    return first


def uplift_units(
    plans: pd.DataFrame,
    payments: pd.DataFrame,
    horizon_days: int,
    data_end: pd.Timestamp,
    features: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Return one unit per account-episode: its first night's arm, features and outcome.

    Parameters
    ----------
    plans : pandas.DataFrame
        Logged plan rows: ``account_id``, ``as_of_date`` (tz-naive midnight D),
        ``arrears`` at D, ``arm`` (or ``control_group``), optionally
        ``arm_probability``, ``lawful_arms`` and the ``features`` columns.
    payments : pandas.DataFrame
        The contract's payments (``account_id``, ``paid_at`` UTC, ``amount``).
    horizon_days : int
        Days of the outcome window from D.
    data_end : pandas.Timestamp
        The payments are known strictly before this date; a unit counts only
        when ``D + horizon_days <= data_end``.
    features : tuple of str
        Columns of ``plans`` carried into the units (as of D).

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``as_of_date``, ``arm``, ``arm_probability`` (NaN when
        not logged), ``lawful_arms`` (Int64, null when not logged), ``arrears``,
        the features, ``outcome``, ``paid_amount``;
        ``attrs["counts"]`` says how many rows were read, how many units
        found and how many left out because their horizon is not complete.

    Raises
    ------
    KeyError
        If a needed column is missing.
    ValueError
        If an account is logged twice on one night, or ``horizon_days`` < 1.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    missing = [c for c in (*UNIT_KEYS, *features) if c not in plans.columns]
    if missing:
        raise KeyError(f"table plans: missing columns {missing} (needs {list(UNIT_KEYS)})")
    dup = plans.duplicated(["account_id", "as_of_date"], keep=False)
    if dup.any():
        example = plans.loc[dup, ["account_id", "as_of_date"]].head(3).to_dict("records")
        raise ValueError(
            f"table plans: rule one row per account and night broken by {int(dup.sum())} "
            f"rows, e.g. {example}"
        )
    arm = _arms(plans)
    first = episode_first_nights(plans)
    prob = plans["arm_probability"] if "arm_probability" in plans.columns else np.nan
    lawful = plans["lawful_arms"] if "lawful_arms" in plans.columns else np.full(len(plans), np.nan)
    units = pd.DataFrame(
        {
            "account_id": plans["account_id"].astype(object),
            "as_of_date": pd.to_datetime(plans["as_of_date"]),
            "arm": arm,
            "arm_probability": prob,
            "lawful_arms": pd.array(lawful, dtype="Int64"),
            "arrears": plans["arrears"].astype(np.float64),
            **{c: plans[c] for c in features},
        }
    )[first]
    end = units["as_of_date"] + pd.Timedelta(days=int(horizon_days))
    complete = (end <= pd.Timestamp(data_end)).to_numpy()
    units = units[complete].reset_index(drop=True)
    labels = build_labels(units[list(UNIT_KEYS)], payments, horizon_days)
    out = units.assign(outcome=labels["coverage"].to_numpy(), paid_amount=labels["paid_amount"])
    out.attrs["counts"] = {
        "rows": int(len(plans)),
        "units": int(first.sum()),
        "incomplete_horizon": int(first.sum() - len(out)),
    }
    return out


def lawful_draws(units: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return per unit whether its explored intensity was drawn among all four, and among fewer.

    A unit is explored when its ``arm`` is an intensity; it was drawn among
    ``lawful_arms`` of them. A unit whose law, hardship or open promise left
    fewer is drawn among the low arms only (a promise holder only gets
    ``none``), so comparing arms over such units confounds the effects.
    Where the count was not logged (runs from before it was published) a
    unit is neither.

    Examples
    --------
    >>> units = pd.DataFrame({"arm": ["low", "none", "control", "high"],
    ...                       "lawful_arms": pd.array([4, 1, None, None], dtype="Int64")})
    >>> [m.tolist() for m in lawful_draws(units)]
    [[True, False, False, False], [False, True, False, False]]
    """
    explored = units["arm"].isin(CONTACT_INTENSITIES).to_numpy()
    count = pd.array(units["lawful_arms"], dtype="Int64").to_numpy(np.float64, na_value=np.nan)
    k = len(CONTACT_INTENSITIES)
    return explored & (count == k), explored & (count < k)


__all__ = ["UNIT_KEYS", "episode_first_nights", "lawful_draws", "uplift_units"]
