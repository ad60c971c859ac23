"""Everything known about every account as of D, computed once and shared by the features.

An :class:`AsOfContext` holds the prepared arrays (:mod:`features.prepare`)
and an as-of date D. Its properties (the ledger, the episodes, the promises,
the payments and contacts before D) are computed on first use and cached, so
that each feature function is a cheap, pure function of the context. Every
event array it exposes is already cut at D: a feature cannot read the future
because the context never hands it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from features import vocab
from features.arrears import LedgerArrays, effective_threshold, ledger_arrays
from features.clearing import Due, Paid, due_before, paid_before
from features.episodes import EpisodeArrays, episode_arrays
from features.prepare import DAY_NS, NAT_NS, Prepared, as_of_timestamp
from features.promises import PromiseArrays, promise_arrays


@dataclass(frozen=True)
class ContactsBefore:
    """Contacts before D: account code, age (D - contact_at, ns), channel, direction, outcome."""

    code: np.ndarray
    ns: np.ndarray
    age: np.ndarray
    channel: np.ndarray
    outbound: np.ndarray
    inbound: np.ndarray
    outcome: np.ndarray


@dataclass(frozen=True)
class OffersBefore:
    """Offers made before D: account code, time, age and acceptance."""

    code: np.ndarray
    ns: np.ndarray
    age: np.ndarray
    accepted: np.ndarray


class AsOfContext:
    """The prepared portfolio seen from as-of date D.

    Parameters
    ----------
    prep : Prepared
        The prepared tables.
    as_of : date-like
        The as-of date D (tz-naive midnight).
    materiality : float
        Arrears at or below this amount count as current.
    """

    def __init__(
        self, prep: Prepared, as_of: object, materiality: float = vocab.DEFAULT_MATERIALITY
    ) -> None:
        self.prep = prep
        self.as_of = as_of_timestamp(as_of)
        self.d = int(self.as_of.value)
        self.threshold = effective_threshold(materiality)
        self.n = prep.n
        self._memo: dict[object, np.ndarray] = {}

    def memo(self, key: object, compute) -> np.ndarray:
        """Return ``compute()`` cached under ``key`` (shared work between features)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # -- ledger ---------------------------------------------------------
    @cached_property
    def paid(self) -> Paid:
        """Payments before D."""
        return paid_before(self.prep, self.d)

    @cached_property
    def due(self) -> Due:
        """Installments due before D with their clearing times."""
        return due_before(self.prep, self.d, self.paid, self.threshold)

    @cached_property
    def ledger(self) -> LedgerArrays:
        """The per-account ledger at D."""
        return ledger_arrays(self.n, self.d, self.due, self.paid, self.threshold)

    @cached_property
    def episodes(self) -> EpisodeArrays:
        """Delinquency episodes before D."""
        return episode_arrays(self.d, self.due)

    @cached_property
    def promises(self) -> PromiseArrays:
        """Promises made before D and their state at D."""
        return promise_arrays(self.prep, self.d, self.paid)

    @cached_property
    def contacts(self) -> ContactsBefore:
        """Contacts before D."""
        p = self.prep
        keep = p.con_ns < self.d
        # A log that ends before D (the nightly case) is used as it is, not copied.
        rows = slice(None) if keep.all() else np.flatnonzero(keep)
        ns = p.con_ns[rows]
        return ContactsBefore(
            code=p.con_code[rows],
            ns=ns,
            age=self.d - ns,
            channel=p.con_channel[rows],
            outbound=p.con_outbound[rows],
            inbound=p.con_inbound[rows],
            outcome=p.con_outcome[rows],
        )

    @cached_property
    def offers(self) -> OffersBefore | None:
        """Offers before D, or None when no offers table was given."""
        p = self.prep
        if not p.has_offers:
            return None
        keep = p.off_ns < self.d
        ns = p.off_ns[keep]
        return OffersBefore(p.off_code[keep], ns, self.d - ns, p.off_accepted[keep])

    # -- helpers --------------------------------------------------------
    def count(self, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-account count (or sum of ``weights``) of the given rows."""
        out = np.bincount(codes, weights=weights, minlength=self.n)
        return out if weights is not None else out.astype(np.int64)

    def latest(self, codes: np.ndarray, ns: np.ndarray) -> np.ndarray:
        """Per-account latest time (ns) among the given rows; NaT sentinel when none."""
        out = np.full(self.n, NAT_NS, dtype=np.int64)
        np.maximum.at(out, codes, ns)
        return out

    def days_since(self, ns: np.ndarray) -> np.ndarray:
        """Whole days from the calendar day of each time to D (>= 1); NaN for the NaT sentinel."""
        missing = ns == NAT_NS
        day = ns - ns % DAY_NS
        out = ((self.d - day) // DAY_NS).astype(np.float64)
        out[missing] = np.nan
        return out

    def window(self, age: np.ndarray, days: int) -> np.ndarray:
        """Rows whose time lies in ``[D - days, D)`` (their age is at most ``days`` days)."""
        return age <= days * DAY_NS

    def series(self, values: np.ndarray, name: str) -> pd.Series:
        """Wrap a per-account array as a Series indexed by account_id."""
        return pd.Series(
            values, index=pd.Index(self.prep.account_ids, name="account_id"), name=name
        )


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float, NaN where the denominator is 0 or missing."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = np.isfinite(den) & (den != 0)
    np.divide(num, den, out=out, where=ok)
    return out
