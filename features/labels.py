"""Labels of a snapshot (account, D): what the debtor paid in the horizon after D.

Time is split with no gap and no overlap: the features of D read payments
with ``paid_at < D``; the labels read payments with
``D <= paid_at < D + H days`` (UTC), where D is the as-of date at midnight.
This is DESIGN.md's horizon "(D, D + H]" read on dates: it starts right after
the last moment known at D (the end of the day before D) and covers H whole
calendar days, D itself included. For D = 2024-01-31 and H = 30 the horizon
runs from 2024-01-31 00:00 to the end of 2024-02-29 (``horizon_end`` =
2024-03-01 00:00, exclusive).

* ``paid_any``: 1 when any payment falls in the horizon, else 0 (the
  willingness target).
* ``coverage``: the horizon's payments divided by the arrears at D, clipped
  to [0, 1] (the ability target); 1 when there were no arrears to cover.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.clearing import Paid, all_paid
from features.ledger import prepare_partial
from features.prepare import DAY_NS, to_ns


def horizon_payments(
    paid: Paid, codes: np.ndarray, d_ns: np.ndarray, horizon_days: int
) -> np.ndarray:
    """Sum of each snapshot's payments in ``[D, D + horizon_days)``.

    Parameters
    ----------
    paid : Paid
        All payments (not cut at any date), sorted by account and time.
    codes : numpy.ndarray
        Account code of each snapshot.
    d_ns : numpy.ndarray
        As-of date of each snapshot, int64 ns.
    horizon_days : int
        H.
    """
    end = d_ns + int(horizon_days) * DAY_NS
    return np.maximum(paid.total_before(codes, end) - paid.total_before(codes, d_ns), 0.0)


def label_frame(
    account_id: np.ndarray,
    as_of_date: np.ndarray,
    arrears: np.ndarray,
    paid_amount: np.ndarray,
    horizon_days: int,
) -> pd.DataFrame:
    """Assemble the label columns from the horizon payments and the arrears at D."""
    arrears = np.asarray(arrears, dtype=np.float64)
    paid_amount = np.asarray(paid_amount, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(arrears > 0, np.clip(paid_amount / arrears, 0.0, 1.0), 1.0)
    as_of = np.asarray(as_of_date, dtype="datetime64[ns]")
    return pd.DataFrame(
        {
            "account_id": np.asarray(account_id, dtype=object),
            "as_of_date": as_of,
            "paid_any": (paid_amount > 0).astype(np.int64),
            "coverage": coverage,
            "paid_amount": paid_amount,
            "horizon_end": as_of + np.timedelta64(int(horizon_days), "D"),
        }
    )


def build_labels(
    snapshots: pd.DataFrame, payments: pd.DataFrame, horizon_days: int = 30
) -> pd.DataFrame:
    """Return ``paid_any`` and ``coverage`` of each snapshot over ``[D, D + H days)``.

    Parameters
    ----------
    snapshots : DataFrame
        ``account_id``, ``as_of_date`` (tz-naive midnight D) and ``arrears`` at D.
    payments : DataFrame
        The contract's payments table (``account_id``, ``paid_at`` UTC, ``amount``).
    horizon_days : int
        H, 30 by default.

    Returns
    -------
    DataFrame
        One row per snapshot, in its order: ``account_id``, ``as_of_date``,
        ``paid_any`` (int 0/1), ``coverage`` (float in [0, 1]), ``paid_amount``
        (sum paid in the horizon) and ``horizon_end`` (D + H days, exclusive).

    Examples
    --------
    >>> snaps = pd.DataFrame({"account_id": ["A", "B"], "arrears": [200.0, 50.0],
    ...     "as_of_date": pd.to_datetime(["2024-01-31", "2024-01-31"])})
    >>> pay = pd.DataFrame({"account_id": ["A", "A", "B"], "amount": [100.0, 70.0, 80.0],
    ...     "paid_at": pd.to_datetime(["2024-01-30 23:59", "2024-01-31 00:00",
    ...                                "2024-03-02 00:00"], utc=True)})
    >>> build_labels(snaps, pay)[["paid_any", "coverage", "paid_amount"]].to_dict("list")
    {'paid_any': [1, 0], 'coverage': [0.35, 0.0], 'paid_amount': [70.0, 0.0]}
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    missing = {"account_id", "as_of_date", "arrears"} - set(snapshots.columns)
    if missing:
        raise KeyError(
            f"snapshots need columns {sorted(missing)} (account_id, as_of_date, arrears)"
        )
    # The same payment preparation as the training set (ordering, dropped rows).
    prep = prepare_partial(
        pd.unique(snapshots["account_id"].to_numpy(dtype=object)), payments=payments
    )
    codes = pd.Index(prep.account_ids).get_indexer(snapshots["account_id"])
    paid = all_paid(prep)
    d_ns = to_ns(snapshots["as_of_date"])
    amount = horizon_payments(paid, codes, d_ns, horizon_days)
    out = label_frame(
        snapshots["account_id"].to_numpy(dtype=object),
        d_ns.view("datetime64[ns]"),
        snapshots["arrears"].to_numpy(dtype=np.float64),
        amount,
        horizon_days,
    )
    out.index = snapshots.index
    return out
