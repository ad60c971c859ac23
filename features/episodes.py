"""Delinquency episodes before D: runs of days on which an account was delinquent.

Rule (DATA_CONTRACT.md, "payments"): an account is delinquent on as-of day d
when some installment due before d is unpaid (in the sense of
:mod:`features.arrears`) given the payments before d. A delinquency episode is
a run of consecutive delinquent days: it starts the day after a missed due
date and ends on the day of the payment that cured it (the account is current
from the next day on); an episode still running at D is open (``end`` is NaT
in :func:`features.ledger.delinquency_episodes`). Its worst DPD is the highest
DPD on any of its days up to D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.clearing import ALWAYS_NS, Due
from features.groups import group_starts
from features.prepare import DAY_NS


@dataclass(frozen=True)
class EpisodeArrays:
    """Delinquency episodes before D, sorted by account then start (``end`` = D when open)."""

    code: np.ndarray
    start: np.ndarray
    end: np.ndarray
    worst_dpd: np.ndarray
    is_open: np.ndarray
    # Per delinquent installment: last delinquent day and its DPD that day,
    # used by worst-DPD-in-window features.
    inst_code: np.ndarray
    inst_last_day: np.ndarray
    inst_dpd: np.ndarray


def episode_arrays(d: int, due: Due) -> EpisodeArrays:
    """Merge each installment's delinquent days into episodes per account.

    Installment k is unpaid on the as-of days ``due_k + 1 .. last_k`` where
    ``last_k`` is the day of the payment that cleared it (or D when it is
    still unpaid). Both ends increase along the schedule, so consecutive
    intervals merge into an episode unless a gap of at least one current day
    separates them. The DPD on day ``last_k`` is at least ``last_k - due_k``
    and no day of the interval exceeds it, so the worst DPD of a set of days
    is the maximum of ``last_k - due_k`` over the installments that reach it.
    """
    cleared = due.cleared
    last_day = np.where(
        due.unpaid, d, np.where(cleared == ALWAYS_NS, ALWAYS_NS, cleared - cleared % DAY_NS)
    )
    first_day = due.due + DAY_NS
    keep = last_day >= first_day
    code = due.code[keep]
    first_day = first_day[keep]
    last_day = last_day[keep]
    inst_dpd = (last_day - due.due[keep]) // DAY_NS
    new = group_starts(code)
    new[1:] |= first_day[1:] > last_day[:-1] + DAY_NS
    starts = np.flatnonzero(new)
    if starts.size:
        end = np.maximum.reduceat(last_day, starts)
        worst = np.maximum.reduceat(inst_dpd, starts)
    else:
        end = np.zeros(0, dtype=np.int64)
        worst = np.zeros(0, dtype=np.int64)
    return EpisodeArrays(
        code=code[starts],
        start=first_day[starts],
        end=end,
        worst_dpd=worst,
        is_open=end == d,
        inst_code=code,
        inst_last_day=last_day,
        inst_dpd=inst_dpd,
    )
