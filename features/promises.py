"""Promises to pay made before D, judged kept, pending or broken as of D.

Rule (DATA_CONTRACT.md, "payments"): a promise to pay (a contact with outcome
``promise_to_pay`` before D) is kept when the payments from ``contact_at`` up to
the end of the day ``promised_date + 3`` (the contract's grace) sum to at least
90% of ``promised_amount``; only payments before D count. Each promise is
judged on its own (one payment can keep two overlapping promises). A promise
not yet kept whose grace period ends after D is pending; otherwise it is broken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import vocab
from features.clearing import Paid
from features.prepare import AMOUNT_TOL, DAY_NS, Prepared


def promise_deadline(promised_date: pd.Series | pd.Timestamp) -> pd.Series | pd.Timestamp:
    """Return the exclusive end of a promise's payment window: ``promised_date`` + 3 days + 1 day.

    Payments up to the end of the calendar day ``promised_date + 3`` count
    (the contract's grace of :data:`features.vocab.PROMISE_GRACE_DAYS` days).

    Examples
    --------
    >>> promise_deadline(pd.Timestamp("2024-02-10"))
    Timestamp('2024-02-14 00:00:00')
    """
    return promised_date + pd.Timedelta(days=vocab.PROMISE_GRACE_DAYS + 1)


@dataclass(frozen=True)
class PromiseArrays:
    """Promises made before D with their state as of D."""

    code: np.ndarray
    made: np.ndarray
    amount: np.ndarray
    promised_date: np.ndarray
    deadline: np.ndarray
    paid: np.ndarray
    kept: np.ndarray
    pending: np.ndarray
    broken: np.ndarray


def promise_arrays(prep: Prepared, d: int, paid: Paid) -> PromiseArrays:
    """Judge every promise made before ``d`` with the payments before ``d``."""
    keep = prep.prom_ns < d
    code = prep.prom_code[keep]
    made = prep.prom_ns[keep]
    amount = prep.prom_amount[keep]
    pdate = prep.prom_date[keep]
    deadline = pdate + (vocab.PROMISE_GRACE_DAYS + 1) * DAY_NS
    window_end = np.minimum(deadline, d)
    got = paid.total_before(code, window_end) - paid.total_before(code, made)
    got = np.maximum(got, 0.0)
    kept = got >= vocab.PROMISE_KEPT_SHARE * amount - AMOUNT_TOL
    pending = ~kept & (deadline > d)
    return PromiseArrays(
        code=code,
        made=made,
        amount=amount,
        promised_date=pdate,
        deadline=deadline,
        paid=got,
        kept=kept,
        pending=pending,
        broken=~kept & ~pending,
    )
