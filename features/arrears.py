"""Arrears, DPD and the overdue flag of every account as of D.

Rules (DATA_CONTRACT.md, "payments"; what is read before D and the order
payments are applied in are in :mod:`features.clearing`):

* ``arrears = max(due_to_date - paid_to_date, 0)``; the account is overdue when
  arrears exceed the materiality threshold (default 1.00).
* Materiality also decides DPD, so that a few cents left on an old installment
  never make an account look years past due: installment k counts as unpaid
  while the cumulative shortfall up to it, ``C_k - paid``, exceeds the
  threshold. DPD is the number of days since the due date of the oldest such
  installment (0 when there is none). Hence ``dpd > 0`` exactly when the
  account is overdue. With ``materiality=0`` this is the plain "oldest unpaid
  due date" of the contract (amounts within 1e-6 count as equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.clearing import Due, Paid
from features.groups import group_ends, group_starts
from features.prepare import AMOUNT_TOL, DAY_NS, NAT_NS, Prepared


@dataclass(frozen=True)
class LedgerArrays:
    """Per-account ledger at D (arrays of length n, indexed by account code)."""

    due_to_date: np.ndarray
    paid_to_date: np.ndarray
    arrears: np.ndarray
    dpd: np.ndarray
    installments_due: np.ndarray
    installments_overdue: np.ndarray
    oldest_unpaid_due: np.ndarray
    overdue: np.ndarray
    installment_amount: np.ndarray


def effective_threshold(materiality: float) -> float:
    """The amount above which arrears are material (never below the float tolerance)."""
    if not np.isfinite(materiality) or materiality < 0:
        raise ValueError(f"materiality must be a finite amount >= 0, got {materiality}")
    return max(float(materiality), AMOUNT_TOL)


def balances(
    n: int, due_code: np.ndarray, due_amount: np.ndarray, paid_code: np.ndarray, paid_amount
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-account amount due, amount paid and arrears (rows sorted by account, then time).

    Each account's sums add its own rows in order, so they do not depend on
    which other accounts are present (a subset of accounts gives the same sums).
    """
    due_to_date = np.bincount(due_code, weights=due_amount, minlength=n)
    paid_to_date = np.bincount(paid_code, weights=paid_amount, minlength=n)
    arrears = np.maximum(due_to_date - paid_to_date, 0.0)
    # Floating sums of cents leave residues like 1e-13: they are not arrears.
    arrears[arrears <= AMOUNT_TOL] = 0.0
    return due_to_date, paid_to_date, arrears


def overdue_at(prep: Prepared, d: int, threshold: float) -> np.ndarray:
    """Per account, whether its arrears at ``d`` exceed ``threshold`` (the ledger's ``overdue``).

    The same sums as :func:`ledger_arrays`, without clearing times, DPD or
    episodes: what deciding the population needs, at a fraction of the cost.
    """
    inst = prep.inst_due < d
    pay = prep.pay_ns < d
    _, _, arrears = balances(
        prep.n,
        prep.inst_code[inst],
        prep.inst_amount[inst],
        prep.pay_code[pay],
        prep.pay_amount[pay],
    )
    return arrears > threshold


def ledger_arrays(n: int, d: int, due: Due, paid: Paid, threshold: float) -> LedgerArrays:
    """Compute the per-account ledger at ``d`` from installments due and payments before it."""
    due_to_date, paid_to_date, arrears = balances(n, due.code, due.amount, paid.code, paid.amount)
    n_due = np.bincount(due.code, minlength=n).astype(np.int64)
    n_overdue = np.bincount(due.code[due.unpaid], minlength=n).astype(np.int64)
    # Unpaid installments are a suffix of each account's schedule (the
    # clearing time never decreases along the schedule), so the oldest unpaid
    # one is the unpaid row whose predecessor is paid or another account's.
    u = due.unpaid
    after_paid = np.ones(u.size, dtype=bool)
    after_paid[1:] = ~u[:-1]
    first = u & (after_paid | group_starts(due.code))
    oldest = np.full(n, NAT_NS, dtype=np.int64)
    oldest[due.code[first]] = due.due[first]
    dpd = np.zeros(n, dtype=np.int64)
    dpd[due.code[first]] = (d - due.due[first]) // DAY_NS
    last = group_ends(due.code)
    inst_amount = np.full(n, np.nan)
    inst_amount[due.code[last]] = due.amount[last]
    return LedgerArrays(
        due_to_date=due_to_date,
        paid_to_date=paid_to_date,
        arrears=arrears,
        dpd=dpd,
        installments_due=n_due,
        installments_overdue=n_overdue,
        oldest_unpaid_due=oldest,
        overdue=arrears > threshold,
        installment_amount=inst_amount,
    )
