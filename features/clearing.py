"""Payments and installments before D, and when each installment was cleared.

Rules (DATA_CONTRACT.md, "payments"):

* As of a date D (a tz-naive midnight) the ledger reads installments due
  strictly before D and payments with ``paid_at`` strictly before D (UTC).
  A payment at exactly D 00:00 belongs to the day D, not to the ledger of D.
* Payments are applied to the oldest installment first: installment k (in due
  order) is paid once the account's cumulative payments reach its cumulative
  amount due ``C_k``. Money paid beyond what is due is a credit that pays the
  next installments in advance.
* Installment k is cleared at the first payment that brings the cumulative
  shortfall up to it, ``C_k - paid``, within the materiality threshold (see
  :mod:`features.arrears`); the arrears, DPD and episodes are read from these
  clearing times.

Everything is vectorised over integer account codes (see
:mod:`features.prepare`): no Python loop over accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.groups import group_bounds, segmented_searchsorted
from features.prepare import Prepared

#: Clearing time of an installment that can never be unpaid (its whole
#: cumulative amount is within materiality): before any date.
ALWAYS_NS = np.iinfo(np.int64).min // 4
#: Clearing time of an installment still unpaid at D.
NEVER_NS = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class Due:
    """Installments due before D, sorted by account then due date.

    ``cleared`` is when the account's payments first brought the cumulative
    shortfall up to this installment within materiality (``ALWAYS_NS`` when it
    never exceeded it, ``NEVER_NS`` when still unpaid at D); ``unpaid`` marks
    the latter.
    """

    code: np.ndarray
    due: np.ndarray
    amount: np.ndarray
    cum: np.ndarray
    cleared: np.ndarray
    unpaid: np.ndarray


@dataclass(frozen=True)
class Paid:
    """Payments before D sorted by account then time, with per-account slice bounds."""

    code: np.ndarray
    ns: np.ndarray
    amount: np.ndarray
    cum: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def total_before(self, codes: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Sum of each account's payments strictly before the given time (and before D)."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.ns.size == 0 or codes.size == 0:
            return np.zeros(codes.size)
        lo = self.starts[codes]
        idx = segmented_searchsorted(self.ns, lo, self.ends[codes], times, side="left")
        prev = np.maximum(idx - 1, 0)
        return np.where(idx > lo, self.cum[prev], 0.0)

    def first_reaching(self, codes: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Time of the first payment at which the account's running total reaches a threshold.

        ``NEVER_NS`` when it is not reached before D; ``ALWAYS_NS`` when the
        threshold is not positive (nothing needs paying).
        """
        codes = np.asarray(codes, dtype=np.int64)
        out = np.full(codes.size, NEVER_NS, dtype=np.int64)
        if self.ns.size:
            hi = self.ends[codes]
            idx = segmented_searchsorted(self.cum, self.starts[codes], hi, thresholds, "left")
            found = idx < hi
            out[found] = self.ns[idx[found]]
        out[thresholds <= 0] = ALWAYS_NS
        return out


def all_paid(prep: Prepared) -> Paid:
    """Every prepared payment as a :class:`Paid` (labels look after D as well)."""
    return paid_before(prep, np.iinfo(np.int64).max)


def paid_before(prep: Prepared, d: int) -> Paid:
    """Payments strictly before ``d`` (ns) as a :class:`Paid`."""
    keep = prep.pay_ns < d
    code = prep.pay_code[keep]
    starts, ends = group_bounds(code, prep.n)
    # Running sums only look back, so the prepared ones are valid before d.
    return Paid(code, prep.pay_ns[keep], prep.pay_amount[keep], prep.pay_cum[keep], starts, ends)


def due_before(prep: Prepared, d: int, paid: Paid, threshold: float) -> Due:
    """Installments due strictly before ``d`` with their clearing time at ``threshold``."""
    keep = prep.inst_due < d
    code = prep.inst_code[keep]
    cum = prep.inst_cum[keep]
    cleared = paid.first_reaching(code, cum - threshold)
    return Due(
        code=code,
        due=prep.inst_due[keep],
        amount=prep.inst_amount[keep],
        cum=cum,
        cleared=cleared,
        unpaid=cleared == NEVER_NS,
    )
