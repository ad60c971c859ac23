"""Offers people can keep: installment plans, extensions and staged repayments, sized.

:func:`size_offer_terms` sizes every plan offer from the monthly amount the
account has shown it can pay (its ``capacity``; without one, a share of the
usual installment), within the policy's ``offer_terms``:

- **installment_plan**: equal monthly installments, at most
  ``max_installments`` of them and none below ``min_installment``; at least
  two (a single installment covering the arrears is not a plan). Arrears too
  small for two installments of ``min_installment`` become an ``extension``.
- **extension**: the same sizing, one installment allowed (pay later).
- **staged_repayment** (阶梯式还款): the arrears in ``k`` rising steps
  ``1, 2, .., k`` parts of ``arrears / (k (k + 1) / 2)``, the first step
  within the capacity shown, ``2 <= k <= max_staged_steps``; the last step
  takes the rounding remainder. ``offer_step_amounts`` lists them.

Every sized offer's first payment falls due ``first_due_days`` after D
(``offer_first_due_date``); later ones monthly from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Offers that come with a sized monthly installment.
SIZED_OFFERS: frozenset[str] = frozenset({"installment_plan", "extension", "staged_repayment"})


def _floor_cent(x: np.ndarray) -> np.ndarray:
    return np.floor(x * 100.0 + 1e-6) / 100.0


def _ceil_cent(x: np.ndarray) -> np.ndarray:
    return np.ceil(x * 100.0 - 1e-6) / 100.0


def _int_array(n: np.ndarray) -> pd.arrays.IntegerArray:
    mask = ~np.isfinite(n)
    return pd.arrays.IntegerArray(np.where(mask, 0, n).astype(np.int64), mask)


def size_installments(
    offer: pd.Series | np.ndarray,
    arrears: pd.Series | np.ndarray,
    capacity: pd.Series | np.ndarray,
    installment_amount: pd.Series | np.ndarray,
    fallback_share: float = 0.5,
    max_installments: int = 24,
    min_installment: float = 0.01,
) -> tuple[np.ndarray, pd.arrays.IntegerArray]:
    """Size equal monthly installments within the capacity an account has shown.

    The installment is the shown capacity (NaN or 0 when none), or, without
    one, ``fallback_share`` of the usual contractual installment; never more
    than the arrears; rounded down to the cent. It is then raised, if need
    be, to ``min_installment`` and to what repays the arrears in
    ``max_installments``. The number of installments is
    ``ceil(arrears / installment)``. Offers other than installment_plan,
    extension and staged_repayment get NaN and NA.

    Returns
    -------
    installment : numpy.ndarray
        Monthly installment (float64, NaN when not a plan offer or not sizable).
    n_installments : pandas.arrays.IntegerArray
        Number of installments (Int64, NA when the installment is NaN).

    Examples
    --------
    >>> inst, n = size_installments(["installment_plan"], [250.0], [80.0], [100.0])
    >>> float(inst[0]), int(n[0])
    (80.0, 4)
    """
    offer = np.asarray(offer, dtype=object)
    arrears = np.asarray(arrears, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.float64)
    usual = np.asarray(installment_amount, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = np.where(capacity > 0, capacity, fallback_share * usual)
        base = np.where(np.isfinite(base) & (base > 0), base, np.nan)
        inst = _floor_cent(np.minimum(base, arrears))
        inst = np.maximum(inst, np.maximum(min_installment, 0.01))
        inst = np.maximum(inst, _ceil_cent(arrears / max_installments))
        inst = np.minimum(inst, _ceil_cent(arrears))
        inst = np.where(np.isin(offer, list(SIZED_OFFERS)), inst, np.nan)
        n = np.ceil(arrears / inst - 1e-9)
    return inst, _int_array(n)


def staged_steps(
    arrears: np.ndarray, base: np.ndarray, max_steps: int, min_installment: float
) -> tuple[np.ndarray, np.ndarray]:
    """Split arrears into ``k`` rising steps whose first is within ``base``.

    Returns
    -------
    k : numpy.ndarray
        Number of steps per account (int64, 2..max_steps).
    amounts : numpy.ndarray
        ``(n, max_steps)`` step amounts, rounded to the cent, NaN past ``k``;
        each row's steps sum to its arrears and rise (never fall).

    Examples
    --------
    >>> k, a = staged_steps(np.array([600.0]), np.array([100.0]), 6, 10.0)
    >>> int(k[0]), a[0, : k[0]].tolist()
    (3, [100.0, 200.0, 300.0])
    """
    arrears = np.asarray(arrears, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = np.ceil((np.sqrt(1.0 + 8.0 * arrears / base) - 1.0) / 2.0 - 1e-9)
        most = np.floor((np.sqrt(1.0 + 8.0 * arrears / max(min_installment, 0.01)) - 1.0) / 2.0)
    k = np.clip(np.minimum(np.nan_to_num(fit, nan=2.0), most), 2, max_steps).astype(np.int64)
    j = np.arange(1, max_steps + 1)
    unit = arrears / (k * (k + 1) / 2.0)
    amounts = _floor_cent(unit[:, None] * j[None, :])
    amounts = np.where(j[None, :] <= k[:, None], amounts, np.nan)
    before_last = np.where(j[None, :] < k[:, None], amounts, 0.0).sum(axis=1)
    last = np.round(arrears - before_last, 2)
    amounts[np.arange(len(k)), k - 1] = last
    return k, amounts


def _schedule_text(amounts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Comma-separated step amounts for ``rows`` (None elsewhere), built column by column."""
    text = np.full(len(amounts), None, dtype=object)
    if not rows.any():
        return text
    sub = amounts[rows]
    joined = np.char.mod("%.2f", np.nan_to_num(sub[:, 0])).astype(object)
    for col in range(1, sub.shape[1]):
        present = ~np.isnan(sub[:, col])
        piece = np.char.mod("%.2f", np.nan_to_num(sub[:, col])).astype(object)
        joined = np.where(present, joined + "," + piece, joined)
    text[rows] = joined
    return text


def size_offer_terms(
    offer: np.ndarray,
    arrears: np.ndarray,
    capacity: np.ndarray,
    installment_amount: np.ndarray,
    terms: dict,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Size every plan offer within the policy's terms (see the module docstring).

    Parameters
    ----------
    offer, arrears, capacity, installment_amount : numpy.ndarray
        Per account: the offer name, the overdue amount, the monthly amount
        shown payable (NaN if none) and the usual installment.
    terms : dict
        ``fallback_installment_share``, ``max_installments``,
        ``min_installment``, ``max_staged_steps``, ``first_due_days``.
    as_of : pandas.Timestamp
        The as-of date D.

    Returns
    -------
    pandas.DataFrame
        ``offer`` (installment plans too small for two installments become
        ``extension``), ``offer_installment`` (the first payment),
        ``offer_n_installments``, ``offer_first_due_date`` and
        ``offer_step_amounts`` (staged repayment only), aligned with ``offer``.
    """
    offer = np.asarray(offer, dtype=object).copy()
    arrears = np.asarray(arrears, dtype=np.float64)
    min_inst = float(terms["min_installment"])
    too_small = (offer == "installment_plan") & (arrears < 2 * min_inst)
    offer[too_small] = "extension"
    inst, n = size_installments(
        offer,
        arrears,
        capacity,
        installment_amount,
        terms["fallback_installment_share"],
        terms["max_installments"],
        min_inst,
    )
    n = n.to_numpy(dtype=np.float64, na_value=np.nan)
    # A plan is at least two installments: split a single one in two.
    single = (offer == "installment_plan") & (n == 1)
    inst = np.where(single, _ceil_cent(arrears / 2.0), inst)
    n = np.where(single, 2.0, n)

    staged = (offer == "staged_repayment") & np.isfinite(inst)
    base = np.where(
        np.asarray(capacity) > 0,
        capacity,
        terms["fallback_installment_share"] * np.asarray(installment_amount),
    )
    k, amounts = staged_steps(
        np.where(staged, arrears, 1.0),
        np.where(staged, base, 1.0),
        terms["max_staged_steps"],
        min_inst,
    )
    inst = np.where(staged, amounts[:, 0], inst)
    n = np.where(staged, k, n)
    sized = np.isfinite(inst)
    due = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=int(terms["first_due_days"]))
    return pd.DataFrame(
        {
            "offer": offer,
            "offer_installment": inst,
            "offer_n_installments": _int_array(n),
            "offer_first_due_date": np.where(
                sized, due.to_datetime64(), np.datetime64("NaT")
            ).astype("datetime64[ns]"),
            "offer_step_amounts": _schedule_text(amounts, staged),
        }
    )
