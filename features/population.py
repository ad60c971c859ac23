"""Which accounts a feature table may be for, decided before the event rows are sorted.

:func:`may_be_in` leaves out the accounts that are certainly not in the
population (opened after D, or arrears at D certainly at or below the
threshold), so that :func:`features.prepare.prepare_tables` neither sorts nor
copies their events; the population is then decided exactly on the rows
kept (:func:`features.build.in_population`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Population:
    """The accounts a feature table at D is for: opened by D and, with a threshold, overdue at D.

    ``d`` is D in nanoseconds; ``threshold`` the amount arrears must exceed
    (None: every account opened by D).
    """

    d: int
    threshold: float | None = None


def _before(rows: dict[str, np.ndarray], time: str, amount: str, d: int) -> np.ndarray:
    """The amounts of the rows before ``d``, 0 for the others (no copy when all are before)."""
    before = rows[time] < d
    return rows[amount] if before.all() else np.where(before, rows[amount], 0.0)


def may_be_in(
    population: Population,
    opened_ns: np.ndarray,
    inst: dict[str, np.ndarray],
    pay: dict[str, np.ndarray],
) -> np.ndarray:
    """Per account, False only when it is certainly not in ``population``.

    ``inst`` and ``pay`` are the coded installment and payment rows in input
    order (``inst_code``, ``inst_due``, ``inst_amount``; ``pay_code``,
    ``pay_ns``, ``pay_amount``). The exact rule
    (:func:`features.arrears.overdue_at`) adds each account's amounts in
    (account, time) order; adding them in input order instead moves the
    arrears ``due - paid`` by less than ``(rows + 1) * 2**-52 * (due + paid)``,
    ``rows`` being the rows of both tables (a bound on any order of a sum of
    positive terms, and on the subtraction). Accounts whose arrears fall below
    the threshold by more than four times that bound are left out; the others
    are decided exactly once sorted.

    Examples
    --------
    >>> rows = {"inst_code": np.array([0, 1]), "inst_due": np.array([0, 0]),
    ...         "inst_amount": np.array([100.0, 100.0])}
    >>> pay = {"pay_code": np.array([0]), "pay_ns": np.array([5]), "pay_amount": np.array([99.5])}
    >>> may_be_in(Population(10, 1.0), np.zeros(2, dtype=np.int64), rows, pay).tolist()
    [False, True]
    """
    keep = opened_ns <= population.d
    if population.threshold is None:
        return keep
    n = opened_ns.size
    due = np.bincount(
        inst["inst_code"],
        weights=_before(inst, "inst_due", "inst_amount", population.d),
        minlength=n,
    )
    paid = np.bincount(
        pay["pay_code"], weights=_before(pay, "pay_ns", "pay_amount", population.d), minlength=n
    )
    rows = inst["inst_code"].size + pay["pay_code"].size + 1
    margin = rows * 2.0**-50 * (due + paid)
    # NaN (an infinite amount) is kept: the exact rule decides it.
    return keep & ~(due - paid <= population.threshold - margin)
