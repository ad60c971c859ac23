"""Simulate a loan-collections portfolio whose debtors have known ability and willingness.

Real collections data is private, so the project ships this simulator: it
writes the five input tables of the data contract (accounts, installments,
payments, contacts, offers) plus a ``truth`` table that holds, per account and
month, the debtor's latent type, ability (share of the amount due the debtor
could pay) and willingness. The tests, the demo and the benchmarks run on it,
and because it knows the truth it can measure how well the two model heads
recover ability and willingness.

Everything is vectorised over accounts; the only Python loop is over months.
Internally ids are integer codes; the string ids (``A0000001``, ...) are
formatted once at the end. The output is byte-for-byte deterministic per seed.
Every rate and mechanism is documented in ``docs/simulator.md``;
:func:`portfolio_rates` measures the headline rates from the tables alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.ledger import promise_deadline, promise_states
from features.vocab import (
    CONTACT_CHANNELS,
    DEFAULT_MATERIALITY,
    DIRECTIONS,
    OFFER_TYPES,
    OUTCOMES,
    PAYMENT_CHANNELS,
    PRODUCTS,
    PROMISE_GRACE_DAYS,
    RPC_OUTCOMES,
    TABLES,
)
from pipeline.contract import COLUMNS, OPTIONAL_COLUMNS

log = logging.getLogger(__name__)

#: Latent debtor types: ordinary good payers and the seven types collectors describe.
DEBTOR_TYPES: tuple[str, ...] = (
    "good_payer",
    "provocative",
    "evasive",
    "victim",
    "confident",
    "stubborn",
    "sophisticated",
    "serial_promiser",
)
GOOD, PROVOCATIVE, EVASIVE, VICTIM, CONFIDENT, STUBBORN, SOPHISTICATED, SERIAL = range(8)

#: Time zones of the simulated debtors, with their share, currency and regions.
TIMEZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "Europe/London",
    "Asia/Shanghai",
)
_TZ_SHARE = (0.45, 0.30, 0.12, 0.13)
_TZ_CURRENCY = ("USD", "USD", "GBP", "CNY")
#: The legal profile of a debtor in each time zone (accounts.jurisdiction).
_TZ_JURISDICTION = ("us_reg_f", "us_reg_f", "uk_conc", "cn_2025")
_TZ_REGIONS = (
    ("US-NY", "US-NJ", "US-PA", "US-FL", "US-GA"),
    ("US-IL", "US-TX", "US-MN", "US-MO"),
    ("GB-ENG", "GB-SCT", "GB-WLS"),
    ("CN-SH", "CN-JS", "CN-ZJ"),
)
#: Money scale of each currency relative to USD (principal, income).
_CURRENCY_SCALE = {"USD": 1.0, "GBP": 0.8, "CNY": 6.5}

# Per debtor type (columns in DEBTOR_TYPES order). Documented in docs/simulator.md.
_TYPE_TABLE: dict[str, tuple[float, ...]] = {
    #                   good   prov   evas   vict   conf   stub   soph   seri
    "share": (0.840, 0.020, 0.025, 0.030, 0.025, 0.020, 0.015, 0.025),
    "willingness": (0.95, 0.45, 0.45, 0.85, 0.80, 0.40, 0.75, 0.60),
    "capacity": (3.50, 2.50, 2.20, 0.80, 3.00, 2.80, 2.50, 1.50),
    "job_loss": (0.003, 0.010, 0.012, 0.030, 0.006, 0.008, 0.006, 0.012),
    "illness": (0.002, 0.006, 0.006, 0.020, 0.004, 0.005, 0.004, 0.006),
    "start_late": (0.03, 0.35, 0.35, 0.30, 0.20, 0.35, 0.90, 0.30),
    "on_time": (0.950, 0.93, 0.92, 0.95, 0.85, 0.93, 0.10, 0.92),
    "late_pay": (0.95, 0.45, 0.45, 0.85, 0.35, 0.40, 0.00, 0.30),
    "answer": (0.30, 0.35, 0.05, 0.30, 0.25, 0.30, 0.20, 0.35),
    "contact_boost": (0.50, 0.10, 0.30, 0.40, 0.80, 0.10, 0.20, 0.20),
    "keep": (0.92, 0.60, 0.65, 0.85, 0.90, 0.60, 0.85, 0.20),
    "inbound": (0.15, 0.02, 0.01, 0.20, 0.08, 0.03, 0.05, 0.05),
    "accept": (0.60, 0.10, 0.25, 0.60, 0.50, 0.10, 0.35, 0.60),
    "token": (0.25, 0.25, 0.25, 0.35, 0.25, 0.20, 0.25, 0.06),
    "bad_number": (0.03, 0.10, 0.30, 0.05, 0.03, 0.08, 0.03, 0.10),
}
#: Outcome of a right-party call per type: right_party, promise_to_pay, refused, dispute, hardship.
_RPC_MIX = np.array(
    [
        [0.45, 0.45, 0.03, 0.02, 0.05],
        [0.25, 0.15, 0.50, 0.07, 0.03],
        [0.45, 0.35, 0.10, 0.05, 0.05],
        [0.30, 0.30, 0.03, 0.02, 0.35],
        [0.40, 0.55, 0.02, 0.01, 0.02],
        [0.30, 0.15, 0.15, 0.37, 0.03],
        [0.45, 0.40, 0.08, 0.04, 0.03],
        [0.30, 0.65, 0.02, 0.01, 0.02],
    ]
)
#: How a paying delinquent debtor pays, per type: all it can, one installment, a part.
_PAY_MODE = np.array(
    [
        [0.90, 0.07, 0.03],
        [0.50, 0.25, 0.25],
        [0.50, 0.25, 0.25],
        [0.50, 0.20, 0.30],
        [0.90, 0.05, 0.05],
        [0.50, 0.25, 0.25],
        [0.00, 1.00, 0.00],
        [0.30, 0.30, 0.40],
    ]
)
# Products: share, median principal (USD), sigma of log principal, terms (months), APR.
_PRODUCT_TABLE: dict[str, tuple[float, float, float, tuple[int, ...], float]] = {
    "credit_card": (0.30, 5_000.0, 0.6, (1200,), 0.0),
    "personal_loan": (0.22, 10_000.0, 0.6, (12, 24, 36, 48, 60), 0.12),
    "microloan": (0.12, 600.0, 0.5, (3, 6, 9, 12), 0.36),
    "auto_loan": (0.12, 22_000.0, 0.4, (36, 48, 60, 72), 0.07),
    "mortgage": (0.06, 250_000.0, 0.5, (240, 300, 360), 0.05),
    "bnpl": (0.18, 300.0, 0.6, (3, 4, 6), 0.0),
}
# Special statuses: base rate per account, raised rate for one type, that type.
_STATUS_TABLE: dict[str, tuple[float, float, int]] = {
    "deceased": (0.002, 0.002, GOOD),
    "bankruptcy": (0.005, 0.005, GOOD),
    "dispute_open": (0.006, 0.12, STUBBORN),
    "cease_communication": (0.004, 0.05, PROVOCATIVE),
    "do_not_contact": (0.010, 0.010, GOOD),
    "hardship": (0.022, 0.15, VICTIM),
}
#: Mean outbound attempts per delinquent account-month, by DPD bucket at the month start.
_CONTACT_MEANS = {
    # channel:   1-29  30-59 60-89  90+
    "call": (3.0, 6.0, 8.0, 5.0),
    "sms": (2.0, 2.0, 1.5, 1.0),
    "email": (0.5, 1.0, 1.0, 0.5),
    "letter": (0.0, 0.5, 1.0, 1.5),
    "visit": (0.0, 0.0, 0.05, 0.10),
    "app_push": (1.0, 0.5, 0.3, 0.2),
}
_NO_CONTACT_SHARE = 0.08  # delinquent account-months left uncontacted (capacity), at random
_DPD_FACTOR = np.array([1.2, 0.7, 0.45, 0.25])  # organic payment propensity by DPD bucket
_SHOCK_MULT = np.array([1.0, 0.25, 0.50])  # capacity: no shock, job loss, illness
_SHOCK_RECOVERY = np.array([0.0, 0.20, 0.30])  # monthly chance a shock ends
_OFFER_BOOST_MONTHS = 3
_W_CONCENTRATION = 8.0  # Beta concentration of the base willingness around the type's mean
_KEEP_W = (0.3, 0.6)  # a promise is kept with keep x (a + b willingness) x affordability
_NEGOTIATE = 0.9  # share of debtors (not serial promisers) who promise only what they can pay
_AGAIN_KEEP = 0.25  # a new promise in the month of a broken one: kept x this
_PAYDAY_SHARE = 0.45  # promises made for the next payday (the 1st or the 15th)
_EARLY_START_DAYS = 3  # early collections start this many days after a missed due date
_SKIP_RATE = 0.06  # monthly: a delinquent debtor changes number with P = this x (1 - w)
_SKIP_TRACED = 0.10  # monthly: skip tracing finds a working number again
_NEVER = np.iinfo(np.int64).max
_N_AGENTS = 120
_DAY = 86_400

_CH = {name: i for i, name in enumerate(CONTACT_CHANNELS)}
_OUT = {name: i for i, name in enumerate(OUTCOMES)}
_PCH = {name: i for i, name in enumerate(PAYMENT_CHANNELS)}
_RPC_CODES = np.array(
    [_OUT[o] for o in ("right_party", "promise_to_pay", "refused", "dispute", "hardship")]
)
_RPC_SET = np.array(sorted(_OUT[o] for o in RPC_OUTCOMES))


@dataclass(frozen=True)
class Portfolio:
    """A simulated portfolio: the contract's input tables and the latent truth.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``accounts``, ``installments``, ``payments``, ``contacts``, ``offers`` in
        the canonical dtypes and the contract's column order (accounts also
        carries ``monthly_income``, ``age``, ``region``).
    truth : pandas.DataFrame
        One row per account and month the account is open: ``account_id``,
        ``month`` (month-start date), ``debtor_type``, ``ability`` (0..1, share
        of the amount due the debtor can pay) and ``willingness`` (0..1).
    """

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame


def simulate_portfolio(
    n_accounts: int, n_months: int, seed: int, start: str | dt.date = "2024-01-01"
) -> Portfolio:
    """Simulate ``n_accounts`` loan accounts over ``n_months`` months from ``start``.

    Parameters
    ----------
    n_accounts : int
        Number of accounts (>= 1).
    n_months : int
        Number of simulated months (>= 1); the window starts on the first day
        of the month of ``start``.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same
        tables, byte for byte once written.
    start : str or date, default "2024-01-01"
        Any day of the first simulated month (ISO string, date or Timestamp).

    Returns
    -------
    Portfolio
        The five contract tables and the truth table.

    Raises
    ------
    ValueError
        When a count is below 1 or ``start`` is not a date.

    Examples
    --------
    >>> p = simulate_portfolio(200, 3, seed=1)
    >>> sorted(p.tables)
    ['accounts', 'contacts', 'installments', 'offers', 'payments']
    >>> len(p.tables["accounts"]), p.tables["accounts"]["account_id"].iloc[0]
    (200, 'A0000001')
    >>> p.truth.columns.tolist()
    ['account_id', 'month', 'debtor_type', 'ability', 'willingness']
    """
    if not isinstance(n_accounts, int | np.integer) or n_accounts < 1:
        raise ValueError(f"n_accounts must be an integer >= 1, got {n_accounts!r}")
    if not isinstance(n_months, int | np.integer) or n_months < 1:
        raise ValueError(f"n_months must be an integer >= 1, got {n_months!r}")
    try:
        first = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"start must be an ISO date such as 2024-01-01, got {start!r}") from exc
    if first.tzinfo is not None:
        raise ValueError(f"start must be a plain date without time zone, got {start!r}")
    t_start = time.perf_counter()
    sim = _Simulator(int(n_accounts), int(n_months), int(seed), first)
    sim.run()
    portfolio = sim.build()
    rows = ", ".join(f"{k} {len(v):,}" for k, v in portfolio.tables.items())
    log.info(
        "simulated %s accounts x %s months in %.1fs: %s",
        f"{n_accounts:,}",
        n_months,
        time.perf_counter() - t_start,
        rows,
    )
    return portfolio


# --------------------------------------------------------------------------------------
# The simulation
# --------------------------------------------------------------------------------------


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category per row of a (n, k) matrix of probabilities."""
    if len(probs) == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(probs))[:, None]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


def _first_per_group(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first row of each group in a sorted array, -1 where a group is absent."""
    first = np.full(n_groups, -1, dtype=np.int64)
    uniq, idx = np.unique(groups, return_index=True)
    first[uniq] = idx
    return first


@dataclass
class _MonthState:
    """Per-account quantities of one month (arrays indexed by account), shared by its steps."""

    m: int
    t0: int  # month start, epoch seconds (UTC)
    t1: int  # next month start
    a0: np.ndarray  # arrears at the month start, cents
    owed: np.ndarray  # a0 + this month's installment, cents
    cap: np.ndarray  # capacity this month, cents
    w: np.ndarray  # willingness
    hab: np.ndarray  # h(ability) = 0.5 + 0.5 min(1, ability / 0.4)
    in_shock: np.ndarray
    suppressed: np.ndarray  # no outbound contact
    no_pay: np.ndarray  # deceased or bankrupt
    hardship: np.ndarray
    pmult: np.ndarray  # multiplier of payment propensities (0 no_pay, 0.2 disputed)
    boosted: np.ndarray  # an offer was accepted in the last 3 months
    wait_prev: np.ndarray  # end of the collectors' wait after last month's promise, seconds


def _first_rows(groups: np.ndarray, mask: np.ndarray, n_groups: int):
    """For each group, whether a masked row exists and the first such row (0 if none)."""
    rows = np.flatnonzero(mask)
    first = _first_per_group(groups[rows], n_groups)
    has = first >= 0
    return has, (rows[np.maximum(first, 0)] if len(rows) else np.zeros(n_groups, np.int64))


def _last_rows(groups: np.ndarray, mask: np.ndarray, n_groups: int):
    """For each group, whether a masked row exists and the last such row (0 if none)."""
    rows = np.flatnonzero(mask)[::-1]
    last = _first_per_group(groups[rows], n_groups)
    has = last >= 0
    return has, (rows[np.maximum(last, 0)] if len(rows) else np.zeros(n_groups, np.int64))


def _take(values: np.ndarray, has: np.ndarray, rows: np.ndarray, default: int) -> np.ndarray:
    """``values[rows]`` where ``has``, else ``default``."""
    if len(values) == 0:
        return np.full(len(has), default, dtype=np.int64)
    return np.where(has, values[rows], default)


class _Simulator:
    """Holds the state of one simulation; every array is indexed by account or customer."""

    def __init__(self, n: int, n_months: int, seed: int, start: pd.Timestamp) -> None:
        self.n = n
        self.n_months = n_months
        self.rng = np.random.default_rng(seed)
        self.tp = {k: np.asarray(v) for k, v in _TYPE_TABLE.items()}
        # Month starts as days since the epoch, for months -38 .. n_months.
        self.m_min = -38
        first_month = np.datetime64(start.strftime("%Y-%m"), "M")
        months = first_month + np.arange(self.m_min, n_months + 1)
        self.ms_days = months.astype("datetime64[D]").astype(np.int64)
        # Local-time offsets (seconds, at local noon) per time zone and day.
        self.off_day0 = int(self.ms_days[0]) - 2
        n_days = int(self.ms_days[-1]) + 40 - self.off_day0
        noon = pd.DatetimeIndex(
            (self.off_day0 + np.arange(n_days)).astype("datetime64[D]").astype("datetime64[ns]")
        ) + pd.Timedelta(hours=12)
        self.tz_off = np.empty((len(TIMEZONES), n_days), dtype=np.int64)
        for k, tz in enumerate(TIMEZONES):
            local = noon.tz_localize(tz)
            self.tz_off[k] = (noon.asi8 - local.asi8) // 1_000_000_000
        self.chunks: dict[str, list[dict[str, np.ndarray]]] = {
            "payments": [],
            "contacts": [],
            "offers": [],
            "truth": [],
        }

    # ---- calendar helpers ---------------------------------------------------------
    def msd(self, m: np.ndarray | int) -> np.ndarray:
        """First day (days since epoch) of relative month ``m``."""
        return self.ms_days[np.asarray(m) - self.m_min]

    def due_day_abs(self, acct: np.ndarray, m: np.ndarray | int) -> np.ndarray:
        """Due date (days since epoch) of ``acct``'s installment in relative month ``m``."""
        return self.msd(m) + self.due_day[acct] - 1

    def utc_of_local(self, acct: np.ndarray, day: np.ndarray, sec: np.ndarray) -> np.ndarray:
        """UTC epoch seconds of a local day and second of day in each account's time zone."""
        return day * _DAY + sec - self.tz_off[self.tz[acct], day - self.off_day0]

    def local_times(
        self, acct: np.ndarray, m: int, h_lo: np.ndarray | int, h_hi: np.ndarray | int
    ) -> np.ndarray:
        """Random UTC times within month ``m`` at local hours [h_lo, h_hi) of each account."""
        rng, n = self.rng, len(acct)
        d0, d1 = int(self.msd(m)), int(self.msd(m + 1))
        day = d0 + rng.integers(0, d1 - d0, n)
        sec = rng.integers(np.asarray(h_lo) * 3600, np.asarray(h_hi) * 3600, n)
        t = self.utc_of_local(acct, day, sec)
        # Keep the instant inside the UTC month by moving a day, which keeps the local hour.
        day = day + (t < d0 * _DAY) - (t >= d1 * _DAY)
        return self.utc_of_local(acct, day, sec)

    # ---- set-up ------------------------------------------------------------------
    def _customers(self) -> None:
        rng, n = self.rng, self.n
        # About 7% of accounts are a customer's second account.
        second = rng.random(n) < 0.075
        second[0] = False
        second[1:] &= ~second[:-1]  # at most two accounts per customer
        self.cust = np.cumsum(~second) - 1
        nc = int(self.cust[-1]) + 1
        self.n_cust = nc
        tp = self.tp
        self.ctype = rng.choice(len(DEBTOR_TYPES), size=nc, p=tp["share"] / tp["share"].sum())
        w_mean = tp["willingness"][self.ctype]
        conc = _W_CONCENTRATION
        self.w_base = rng.beta(w_mean * conc, (1 - w_mean) * conc)
        self.cap_base = tp["capacity"][self.ctype] * np.exp(rng.normal(0.0, 0.35, nc))
        # Shock state (0 none, 1 job loss, 2 illness), started near its stationary share.
        pj, pi = tp["job_loss"][self.ctype], tp["illness"][self.ctype]
        sj = pj / (pj + _SHOCK_RECOVERY[1])
        si = pi / (pi + _SHOCK_RECOVERY[2])
        u = rng.random(nc)
        self.shock = np.where(u < sj, 1, np.where(u < sj + si, 2, 0)).astype(np.int8)
        self.ctz = rng.choice(len(TIMEZONES), size=nc, p=_TZ_SHARE)
        self.cregion = np.zeros(nc, dtype=np.int64)
        self.region_names: list[str] = []
        for k, regions in enumerate(_TZ_REGIONS):
            sel = self.ctz == k
            self.cregion[sel] = len(self.region_names) + rng.integers(0, len(regions), sel.sum())
            self.region_names.extend(regions)
        self.cage = np.clip(np.rint(rng.normal(42, 13, nc)), 19, 85)
        scale = np.array([_CURRENCY_SCALE[_TZ_CURRENCY[k]] for k in range(len(TIMEZONES))])
        cny_income = np.where(self.ctz == 3, 0.35, 1.0)  # CNY incomes are lower in USD terms
        income = 4_500 * np.exp(rng.normal(0, 0.45, nc)) * np.sqrt(self.cap_base / 2.0)
        self.cincome = np.round(income * scale[self.ctz] * cny_income, -1)
        self.bad_phone_c = rng.random(nc) < tp["bad_number"][self.ctype]
        self.reach_c = np.exp(rng.normal(0.0, 0.35, nc))

    def _accounts(self) -> None:
        rng, n, nm = self.rng, self.n, self.n_months
        names = list(_PRODUCT_TABLE)
        shares = np.array([_PRODUCT_TABLE[p][0] for p in names])
        self.product = rng.choice(len(names), size=n, p=shares / shares.sum())
        self.product_codes = np.array([PRODUCTS.index(p) for p in names])[self.product]
        self.typ = self.ctype[self.cust]
        self.tz = self.ctz[self.cust]
        currency_scale = np.array([_CURRENCY_SCALE[_TZ_CURRENCY[k]] for k in range(len(TIMEZONES))])
        median = np.array([_PRODUCT_TABLE[p][1] for p in names])[self.product]
        sigma = np.array([_PRODUCT_TABLE[p][2] for p in names])[self.product]
        principal = median * np.exp(rng.normal(0, 1, n) * sigma) * currency_scale[self.tz]
        self.principal = np.maximum(np.round(principal, -1), 50.0)
        term = np.empty(n, dtype=np.int64)
        for k, p in enumerate(names):
            sel = self.product == k
            term[sel] = rng.choice(np.array(_PRODUCT_TABLE[p][3]), size=sel.sum())
        apr = np.array([_PRODUCT_TABLE[p][4] for p in names])[self.product]
        r = apr / 12
        with np.errstate(divide="ignore", invalid="ignore"):
            annuity = np.where(r > 0, self.principal * r / (1 - (1 + r) ** -term), 0.0)
        annuity = np.where(r > 0, annuity, self.principal / term)
        card = self.product == names.index("credit_card")
        util = rng.uniform(0.3, 0.9, n)
        card_min = np.maximum(25.0 * currency_scale[self.tz], 0.03 * self.principal * util)
        self.amt = np.rint(np.where(card, card_min, annuity) * 100).astype(np.int64)
        self.amt = np.maximum(self.amt, 500)
        # Opening month relative to the window; 80% before it, 20% during it.
        before = (rng.random(n) < 0.8) | (nm < 2)
        back = np.minimum(term, 36)
        o_before = -1 - np.floor(rng.random(n) * back).astype(np.int64)
        o_during = np.floor(rng.random(n) * max(nm - 1, 1)).astype(np.int64)
        self.o = np.where(before, o_before, o_during)
        self.due_day = rng.integers(1, 29, n)
        # Warm start: some accounts enter the window with whole installments unpaid.
        in_shock = self.shock[self.cust] > 0
        p_late = np.minimum(self.tp["start_late"][self.typ] + 0.4 * in_shock, 0.95)
        k = np.minimum(rng.geometric(0.5, n), 6)
        k = np.where(self.typ == SOPHISTICATED, 1, k)
        k = np.where(before & (rng.random(n) < p_late), np.minimum(k, -self.o - 1), 0)
        self.fe = np.where(before, -k, self.o + 1)  # first emitted installment month
        self.ld = np.minimum(self.o + term, nm - 1)  # last due month in the window
        self.paid = np.zeros(n, dtype=np.int64)
        # Payment channel preference (direct debit accounts pay on time by debit).
        self.dd = rng.random(n) < np.where(self.tz == 3, 0.05, 0.22)
        pref_us = np.array([0.40, 0.30, 0.07, 0.0, 0.18, 0.05])
        pref_cn = np.array([0.25, 0.20, 0.03, 0.0, 0.50, 0.02])
        self.pref = np.where(
            self.tz == 3,
            rng.choice(6, size=n, p=pref_cn),
            rng.choice(6, size=n, p=pref_us),
        )
        self.offer_month = np.full(n, -10_000, dtype=np.int64)
        # Payments promised or agreed late in a month that land early in the next one, and
        # the end of the collectors' wait after a promise whose date is in the next month.
        empty = np.zeros(0, dtype=np.int64)
        self.carry: tuple[np.ndarray, np.ndarray, np.ndarray] = (empty, empty, empty)
        self.carry_out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.wait_until = np.zeros(n, dtype=np.int64)
        # Special statuses: a flag and the month it starts (-6 .. n_months - 1).
        self.status: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, (base, raised, typ) in _STATUS_TABLE.items():
            p = np.where(self.typ == typ, raised, base)
            flag = rng.random(n) < p
            start = rng.integers(-6, nm, n)
            self.status[name] = (flag, start)

    # ---- one month -----------------------------------------------------------------
    def run(self) -> None:
        """Set up accounts and simulate every month."""
        self._customers()
        self._accounts()
        for m in range(self.n_months):
            self._month(m)

    def _active(self, name: str, m: int) -> np.ndarray:
        flag, start = self.status[name]
        return flag & (start <= m)

    def _month(self, m: int) -> None:
        rng, n, tp = self.rng, self.n, self.tp
        mat = int(round(DEFAULT_MATERIALITY * 100))
        t0, t1 = int(self.msd(m)) * _DAY, int(self.msd(m + 1)) * _DAY
        # Latent state: shocks (Markov), willingness and capacity of each customer.
        u = rng.random(self.n_cust)
        pj, pi = tp["job_loss"][self.ctype], tp["illness"][self.ctype]
        none = self.shock == 0
        start_j = none & (u < pj)
        start_i = none & (u >= pj) & (u < pj + pi)
        ends = ~none & (u < _SHOCK_RECOVERY[self.shock])
        self.shock = np.where(start_j, 1, np.where(start_i, 2, np.where(ends, 0, self.shock)))
        self.shock = self.shock.astype(np.int8)
        wc = np.clip(self.w_base + rng.normal(0, 0.04, self.n_cust), 0, 1)
        cc = self.cap_base * _SHOCK_MULT[self.shock] * np.exp(rng.normal(0, 0.15, self.n_cust))
        w, cap = wc[self.cust], cc[self.cust]
        in_shock = self.shock[self.cust] > 0
        typ, amt = self.typ, self.amt

        opened = self.o <= m
        has_due = (self.fe <= m) & (m <= self.ld)
        n_before = np.clip(np.minimum(m - 1, self.ld) - self.fe + 1, 0, None)
        a0 = n_before * amt - self.paid
        owed = np.maximum(a0 + has_due * amt, 0)
        cap_c = np.floor(cap * amt).astype(np.int64)
        ability = np.minimum(1.0, cap_c / np.maximum(owed, amt))
        # Skips: a delinquent debtor may change number to dodge the collectors (the less
        # willing, the likelier); skip tracing finds a working number again.
        late_c = np.bincount(self.cust, weights=a0 > mat, minlength=self.n_cust) > 0
        v = rng.random(self.n_cust)
        goes_dark = late_c & ~self.bad_phone_c & (v < _SKIP_RATE * (1 - wc))
        self.bad_phone_c = (self.bad_phone_c | goes_dark) & ~(self.bad_phone_c & (v < _SKIP_TRACED))
        op = np.flatnonzero(opened)
        self.chunks["truth"].append(
            {
                "acct": op.astype(np.int32),
                "month": np.full(len(op), m, dtype=np.int16),
                # ten-thousandths: compact now, exact 4-decimal floats at the end
                "ability": np.rint(ability[op] * 10_000).astype(np.int16),
                "willingness": np.rint(w[op] * 10_000).astype(np.int16),
            }
        )
        # Payments carried over from last month land now; that money is not spendable again.
        c_acct, c_t, c_cents = self.carry
        cap_c = np.maximum(cap_c - np.bincount(c_acct, c_cents, minlength=n).astype(np.int64), 0)
        self.carry_out = [(c_acct[:0], c_t[:0], c_cents[:0])]
        wait_prev, self.wait_until = self.wait_until, np.zeros(n, dtype=np.int64)
        no_pay = self._active("deceased", m) | self._active("bankruptcy", m)
        suppressed = no_pay | self._active("dispute_open", m)
        suppressed |= self._active("cease_communication", m) | self._active("do_not_contact", m)
        hardship = self._active("hardship", m)
        pmult = np.where(self._active("dispute_open", m), 0.2, 1.0) * ~no_pay
        boosted = (m > self.offer_month) & (m <= self.offer_month + _OFFER_BOOST_MONTHS)
        hab = 0.5 + 0.5 * np.minimum(1.0, ability / 0.4)

        def boost(p: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return np.where(boosted[idx], p + (1 - p) * 0.25, p)

        pay: dict[str, list[np.ndarray]] = {"acct": [], "t": [], "cents": [], "dd": []}
        con: dict[str, list[np.ndarray]] = {
            k: [] for k in ("acct", "t", "ch", "dir", "out", "pamt", "pday")
        }

        def add_pay(acct: np.ndarray, t: np.ndarray, cents: np.ndarray, dd: np.ndarray) -> None:
            keep = cents >= mat
            pay["acct"].append(acct[keep])
            pay["t"].append(t[keep].astype(np.int64))
            pay["cents"].append(cents[keep].astype(np.int64))
            pay["dd"].append(np.broadcast_to(dd, acct.shape)[keep])

        add_pay(c_acct, c_t, c_cents, np.zeros(len(c_acct), dtype=bool))

        # ---- accounts current at the month start with an installment due ------------
        cur = np.flatnonzero(opened & (a0 <= mat) & has_due & (owed > mat))
        due_t = self.due_day_abs(cur, m) * _DAY
        p_on = tp["on_time"][typ[cur]] * (0.5 + 0.5 * w[cur]) * hab[cur] * pmult[cur]
        p_on = boost(p_on, cur)
        on = rng.random(len(cur)) < p_on
        on &= ~self.dd[cur] | (cap_c[cur] >= owed[cur])  # a direct debit fails without funds
        amount = np.minimum(owed[cur], cap_c[cur])
        over = on & (amount >= owed[cur]) & (rng.random(len(cur)) < 0.02)
        amount = np.where(over, (owed[cur] // 1000 + 1) * 1000, amount)
        lo = np.maximum(t0, due_t - 5 * _DAY)
        t_on = lo + np.floor(rng.random(len(cur)) * (due_t + _DAY - lo)).astype(np.int64)
        t_on = np.where(self.dd[cur], due_t + 6 * 3600, t_on)
        add_pay(cur[on], t_on[on], amount[on], self.dd[cur][on])
        # Missed: a reminder after the due date, and maybe a late payment within the month.
        missed = cur[~on]
        mdue = due_t[~on]
        remind = ~suppressed[missed] & (rng.random(len(missed)) < 0.85)
        r_day = mdue // _DAY + rng.integers(1, 4, len(missed))
        r_t = self.utc_of_local(missed, r_day, rng.integers(9 * 3600, 20 * 3600, len(missed)))
        remind &= r_t < t1
        r_ch = rng.choice(
            [_CH["sms"], _CH["app_push"], _CH["email"]], size=len(missed), p=[0.6, 0.3, 0.1]
        )
        rm = missed[remind]
        con["acct"].append(rm)
        con["t"].append(r_t[remind])
        con["ch"].append(r_ch[remind])
        con["dir"].append(np.zeros(len(rm), dtype=np.int64))
        con["out"].append(self._message_outcomes(rm, r_ch[remind], w))
        con["pamt"].append(np.zeros(len(rm), dtype=np.int64))
        con["pday"].append(np.zeros(len(rm), dtype=np.int64))
        w_m, hab_m = w[missed], hab[missed]
        p_late = 0.35 * w_m * hab_m * pmult[missed]
        p_late = np.where(remind, p_late + (1 - p_late) * 0.2 * w_m, p_late)
        p_late = boost(p_late, missed)
        lo = np.maximum(mdue + _DAY, np.where(remind, r_t, 0))
        # Late payers pay a few days late (exponential, mean 5 days); a payment that would
        # fall after the month end is not made this month (the account shows 1-29 DPD).
        t_late = lo + np.floor(rng.exponential(5 * _DAY, len(missed))).astype(np.int64)
        late = (rng.random(len(missed)) < p_late) & (t_late < t1)
        late &= typ[missed] != SOPHISTICATED
        amt_late = np.minimum(owed[missed], cap_c[missed])
        add_pay(missed[late], t_late[late], amt_late[late], False)
        # Sophisticated debtors pay 15-27 days after the due date, before 30 DPD.
        soph = typ[missed] == SOPHISTICATED
        t_soph = (
            mdue + rng.integers(15, 28, len(missed)) * _DAY + rng.integers(0, _DAY, len(missed))
        )
        ok = soph & (t_soph < t1) & (rng.random(len(missed)) < w_m * hab_m * 0.95 * pmult[missed])
        add_pay(missed[ok], t_soph[ok], amt_late[ok], False)

        state = _MonthState(
            m=m, t0=t0, t1=t1, a0=a0, owed=owed, cap=cap_c, w=w, hab=hab, in_shock=in_shock,
            suppressed=suppressed, no_pay=no_pay, hardship=hardship, pmult=pmult, boosted=boosted,
            wait_prev=wait_prev,
        )  # fmt: skip
        # Early collections of the accounts that missed this month's due date.
        paid_t = np.select([late, ok], [t_late, t_soph], _NEVER)
        self._early_collections(state, missed, mdue, paid_t, add_pay, con)

        # ---- accounts delinquent at the month start -----------------------------------
        dl = np.flatnonzero(opened & (a0 > mat))
        self._delinquent(state, dl, add_pay, con)

        # ---- record the month ---------------------------------------------------------
        self.carry = tuple(np.concatenate(parts) for parts in zip(*self.carry_out, strict=True))
        if pay["acct"]:
            p_acct = np.concatenate(pay["acct"])
            p_t = np.concatenate(pay["t"])
            p_c = np.concatenate(pay["cents"])
            p_dd = np.concatenate(pay["dd"])
            p_acct, p_t, p_c, p_dd = self._split_some(p_acct, p_t, p_c, p_dd, t1)
            self.paid += np.bincount(p_acct, weights=p_c, minlength=n).astype(np.int64)
            self.chunks["payments"].append(
                {
                    "acct": p_acct.astype(np.int32),
                    "t": p_t,
                    "cents": p_c,
                    "ch": self._pay_channels(p_acct, p_dd).astype(np.int8),
                }
            )
        if con["acct"]:
            chunk = {k: np.concatenate(v) for k, v in con.items()}
            chunk["agent"] = np.where(
                (chunk["ch"] == _CH["call"]) | (chunk["ch"] == _CH["visit"]),
                rng.integers(1, _N_AGENTS + 1, len(chunk["acct"])),
                0,
            )
            small = {"acct": np.int32, "ch": np.int8, "dir": np.int8, "out": np.int8,
                     "pday": np.int32, "agent": np.int16}  # fmt: skip
            self.chunks["contacts"].append(
                {k: v.astype(small.get(k, np.int64)) for k, v in chunk.items()}
            )

    def _message_outcomes(self, acct: np.ndarray, ch: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Outcomes of sms, email, letter and app_push: delivered, undelivered, replied."""
        rng = self.rng
        bad = self.bad_phone_c[self.cust[acct]]
        p_undel = np.select(
            [ch == _CH["sms"], ch == _CH["email"], ch == _CH["letter"]],
            [np.where(bad, 0.7, 0.05), 0.08, 0.03],
            0.10,
        )
        p_reply = (
            np.select(
                [ch == _CH["sms"], ch == _CH["email"], ch == _CH["letter"]],
                [0.03, 0.02, 0.005],
                0.0,
            )
            * w[acct]
        )
        u = rng.random(len(acct))
        return np.where(
            u < p_undel,
            _OUT["undelivered"],
            np.where(u < p_undel + p_reply, _OUT["replied"], _OUT["delivered"]),
        )

    def _keep_prob(self, acct, st: _MonthState, amount: np.ndarray) -> np.ndarray:
        """Probability that each debtor keeps a promise of ``amount`` cents."""
        afford = np.sqrt(np.minimum(1.0, st.cap[acct] / np.maximum(amount, 1)))
        w = st.w[acct]
        return (
            self.tp["keep"][self.typ[acct]]
            * (_KEEP_W[0] + _KEEP_W[1] * w)
            * afford
            * st.pmult[acct]
        )

    def _promises(self, acct, t, asked, st: _MonthState, is_p) -> tuple[np.ndarray, np.ndarray]:
        """Promised amount (cents) and date (days since epoch) of promise rows (0 elsewhere).

        The collector asks for ``asked``; a debtor who cannot pay it usually negotiates it
        down to what it can pay (serial promisers promise whatever is asked). The date is
        often the next payday (the 1st or the 15th), else 1-14 days ahead.
        """
        rng, n = self.rng, len(acct)
        mat = int(round(DEFAULT_MATERIALITY * 100))
        cap = st.cap[acct]
        afford = (cap * 9 // 10) // 1000 * 1000  # 90% of what it can pay, in whole tens
        honest = (self.typ[acct] != SERIAL) & (rng.random(n) < _NEGOTIATE)
        amount = np.where(honest & (cap < asked) & (afford > mat), afford, asked)
        amount = np.maximum(amount, mat + 1) * is_p
        day = t // _DAY
        ahead = rng.choice([1, 2, 3, 5, 7, 10, 14], size=n,
                           p=[0.10, 0.15, 0.15, 0.20, 0.20, 0.10, 0.10])  # fmt: skip
        month = day.astype("datetime64[D]").astype("datetime64[M]")
        fifteenth = (month.astype("datetime64[D]") + 14).astype(np.int64)
        first_next = (month + 1).astype("datetime64[D]").astype(np.int64)
        payday = np.where(fifteenth >= day + 2, fifteenth, first_next)
        payday = np.where(payday >= day + 2, payday, first_next + 14)
        use = (rng.random(n) < _PAYDAY_SHARE) & (payday - day <= 14)
        return amount, np.where(use, payday, day + ahead) * is_p

    def _times_between(self, acct, lo, t1, h_lo, h_hi) -> np.ndarray:
        """Random UTC times in ``[lo, t1)`` at local hours ``[h_lo, h_hi)``; -1 when none fits."""
        rng, n = self.rng, len(acct)
        d_lo, d1 = lo // _DAY, t1 // _DAY
        day = d_lo + np.floor(rng.random(n) * np.maximum(d1 - d_lo, 1)).astype(np.int64)
        sec = rng.integers(np.asarray(h_lo) * 3600, np.asarray(h_hi) * 3600, n)
        t = self.utc_of_local(acct, day, sec)
        t = np.where(t < lo, self.utc_of_local(acct, day + 1, sec), t)  # same local hour
        return np.where((t >= lo) & (t < t1), t, -1)

    def _settle(self, acct, pay_t, pay_c, paying, t1, add_pay) -> None:
        """Record payments: this month's now, those landing after the month end next month."""
        now = paying & (pay_t < t1)
        add_pay(acct[now], pay_t[now], pay_c[now], False)
        later = paying & ~now  # after the last month: outside the window, never seen
        self.carry_out.append((acct[later], pay_t[later], pay_c[later]))

    def _early_collections(self, st: _MonthState, missed, mdue, paid_t, add_pay, con) -> None:
        """Contacts of accounts that missed this month's due date, from 3 days past due.

        The 1-29 DPD plan of ``_CONTACT_MEANS`` pro rata of the days left in the month;
        collectors stop once the debtor pays. A debtor who has not paid gets a second
        chance from a promise (to pay the missed installment) or a positive conversation;
        the payment may land early next month.
        """
        rng, tp, nm = self.rng, self.tp, len(missed)
        if nm == 0:
            return
        t1, w = st.t1, st.w
        mat = int(round(DEFAULT_MATERIALITY * 100))
        lo = mdue + _EARLY_START_DAYS * _DAY
        frac = np.clip((t1 - lo) / (30 * _DAY), 0, None)
        contactable = ~st.suppressed[missed] & (rng.random(nm) >= _NO_CONTACT_SHARE)
        mult = rng.gamma(2.0, 0.5, nm) * np.where(st.hardship[missed], 0.5, 1.0) * contactable
        rows_pos, rows_ch = [], []
        for name, means in _CONTACT_MEANS.items():
            cnt = rng.poisson(means[0] * mult * frac)
            rows_pos.append(np.repeat(np.arange(nm), cnt))
            rows_ch.append(np.full(cnt.sum(), _CH[name]))
        pos = np.concatenate(rows_pos)
        ch = np.concatenate(rows_ch)
        acct = missed[pos]
        h_lo = np.select([ch == _CH["email"], ch == _CH["letter"]], [7, 10], 9)
        h_hi = np.select([ch == _CH["email"], ch == _CH["letter"]], [22, 11], 20)
        t = self._times_between(acct, lo[pos], t1, h_lo, h_hi)
        direction = np.zeros(len(pos), dtype=np.int64)
        out = self._contact_outcomes(acct, ch, direction, w, st.in_shock)
        is_p = out == _OUT["promise_to_pay"]
        pamt, pday = self._promises(acct, t, st.owed[acct], st, is_p)
        keep = (t >= 0) & (t < paid_t[pos])  # collectors stop once the debtor has paid
        order = np.flatnonzero(keep)[np.lexsort((t[keep], pos[keep]))]
        pos, ch, direction, acct, t, out, pamt, pday = (
            a[order] for a in (pos, ch, direction, acct, t, out, pamt, pday)
        )
        has_p, fp = _first_rows(pos, out == _OUT["promise_to_pay"], nm)
        tp_t, tp_amt, tp_day = (_take(a, has_p, fp, 0) for a in (t, pamt, pday))
        has_r, fr = _first_rows(pos, np.isin(out, _RPC_SET), nm)
        r_t, r_out = _take(t, has_r, fr, 0), _take(out, has_r, fr, -1)
        positive = has_r & ~np.isin(r_out, [_OUT["refused"], _OUT["dispute"]])

        typ, capm = self.typ[missed], st.cap[missed]
        free = (paid_t == _NEVER) & (typ != SOPHISTICATED)
        u = rng.random(nm)
        kept = free & has_p & (u < self._keep_prob(missed, st, tp_amt))
        k_lo = tp_t + 600
        k_t = k_lo + np.floor(rng.random(nm) * np.maximum(tp_day * _DAY + _DAY - k_lo, 1))
        p_talk = tp["contact_boost"][typ] * w[missed] * st.pmult[missed]
        talk = free & ~has_p & positive & (u < p_talk)
        g_t = r_t + np.floor(rng.random(nm) * 7 * _DAY)
        pay_t = np.select([kept, talk], [k_t, g_t], -1).astype(np.int64)
        pay_c = np.minimum(np.where(kept, tp_amt, st.owed[missed]), capm)
        paying = (pay_t >= 0) & (pay_c >= mat)
        self._settle(missed, pay_t, pay_c, paying, t1, add_pay)

        wait_end = (tp_day + 1 + PROMISE_GRACE_DAYS) * _DAY
        drop = t > np.where(paying, pay_t, _NEVER)[pos]
        drop |= has_p[pos] & (t > tp_t[pos]) & (t < wait_end[pos])
        self.wait_until[missed[has_p]] = wait_end[has_p]
        for key, arr in (("acct", acct), ("t", t), ("ch", ch), ("dir", direction), ("out", out),
                         ("pamt", pamt), ("pday", pday)):  # fmt: skip
            con[key].append(arr[~drop])

    def _delinquent(self, st: _MonthState, dl: np.ndarray, add_pay, con) -> None:
        """Contacts, promises, payments and offers of the accounts delinquent at the month start."""
        rng, tp, nd = self.rng, self.tp, len(dl)
        if nd == 0:
            return
        m, t0, t1, a0, w = st.m, st.t0, st.t1, st.a0, st.w
        suppressed, hardship = st.suppressed, st.hardship
        typ, amt = self.typ[dl], self.amt[dl]
        mat = int(round(DEFAULT_MATERIALITY * 100))
        j = self.paid[dl] // amt  # oldest unpaid installment, counted from the first emitted
        od_day = self.due_day_abs(dl, self.fe[dl] + j)
        dpd0 = int(self.msd(m)) - od_day
        bucket = (dpd0 >= 30).astype(np.int64) + (dpd0 >= 60) + (dpd0 >= 90)

        # Outbound attempts: a DPD-dependent mean times a random account-month intensity.
        contactable = ~suppressed[dl] & (rng.random(nd) >= _NO_CONTACT_SHARE)
        mult = rng.gamma(2.0, 0.5, nd) * np.where(hardship[dl], 0.5, 1.0) * contactable
        rows_pos, rows_ch = [], []
        for ch, means in _CONTACT_MEANS.items():
            cnt = rng.poisson(np.asarray(means)[bucket] * mult)
            rows_pos.append(np.repeat(np.arange(nd), cnt))
            rows_ch.append(np.full(cnt.sum(), _CH[ch]))
        pos = np.concatenate(rows_pos)
        ch = np.concatenate(rows_ch)
        direction = np.zeros(len(pos), dtype=np.int64)
        # Inbound calls from willing debtors.
        inbound = (rng.random(nd) < tp["inbound"][typ] * w[dl]) & ~st.no_pay[dl]
        ib = np.flatnonzero(inbound)
        pos = np.concatenate([pos, ib])
        ch = np.concatenate([ch, np.full(len(ib), _CH["call"])])
        direction = np.concatenate([direction, np.ones(len(ib), dtype=np.int64)])
        acct = dl[pos]
        hours_lo = np.select([ch == _CH["email"], ch == _CH["letter"]], [7, 10], 9)
        hours_hi = np.select([ch == _CH["email"], ch == _CH["letter"]], [22, 11], 20)
        hours_lo = np.where(direction == 1, 8, hours_lo)
        hours_hi = np.where(direction == 1, 21, hours_hi)
        t = self.local_times(acct, m, hours_lo, hours_hi)
        out = self._contact_outcomes(acct, ch, direction, w, st.in_shock)

        # Promises: amount and date for every promise_to_pay.
        is_p = out == _OUT["promise_to_pay"]
        arrears = a0[acct]
        kind = rng.choice(3, size=len(acct), p=[0.55, 0.35, 0.10])
        pamt = np.select(
            [kind == 0, kind == 1], [arrears, np.minimum(self.amt[acct], arrears)], arrears // 2
        )
        pamt, pday = self._promises(acct, t, pamt, st, is_p)

        order = np.lexsort((t, pos))
        pos, ch, direction, acct, t, out, pamt, pday = (
            a[order] for a in (pos, ch, direction, acct, t, out, pamt, pday)
        )
        # The first promise and the first right-party contact of each account this month.
        has_p, fp = _first_rows(pos, out == _OUT["promise_to_pay"], nd)
        tp_t, tp_amt, tp_day = (_take(a, has_p, fp, 0) for a in (t, pamt, pday))
        has_r, fr = _first_rows(pos, np.isin(out, _RPC_SET), nd)
        r_t, r_out = _take(t, has_r, fr, 0), _take(out, has_r, fr, -1)
        positive = has_r & ~np.isin(r_out, [_OUT["refused"], _OUT["dispute"]])

        # Payment decisions.
        wd, habd, pm = w[dl], st.hab[dl], st.pmult[dl]
        p0 = tp["late_pay"][typ] * wd * _DPD_FACTOR[bucket] * habd * pm
        p0 = np.where(st.boosted[dl], p0 + (1 - p0) * 0.25, p0)
        u = rng.random(nd)
        capd, owedd, a0d = st.cap[dl], st.owed[dl], a0[dl]
        mode = _choice_rows(rng, _PAY_MODE[typ])
        full = np.minimum(owedd, capd)
        part = np.floor(rng.uniform(0.2, 0.8, nd) * full).astype(np.int64)
        amount = np.select([mode == 0, mode == 1], [full, np.minimum(amt, capd)], part)
        pay_t = np.full(nd, -1, dtype=np.int64)
        pay_c = np.zeros(nd, dtype=np.int64)
        rand_t = t0 + np.floor(rng.random(nd) * (t1 - t0)).astype(np.int64)
        # (a) no promise: organic payment, raised after a positive right-party contact.
        p_r = np.where(positive, p0 + (1 - p0) * tp["contact_boost"][typ] * wd * pm, p0)
        pays = ~has_p & (u < p_r) & (typ != SOPHISTICATED)
        organic = u < p0
        trig_t = r_t + np.floor(rng.random(nd) * 7 * _DAY).astype(np.int64)  # maybe next month
        pay_t = np.where(pays, np.where(organic | ~positive, rand_t, trig_t), pay_t)
        pay_c = np.where(pays, amount, pay_c)
        # (b) sophisticated: one behind, paid 15-27 days after the oldest due date.
        s = ~has_p & (typ == SOPHISTICATED) & (u < wd * habd * 0.95 * pm)
        ts = od_day * _DAY + rng.integers(15, 28, nd) * _DAY + rng.integers(0, _DAY, nd)
        ts = np.where(ts < t0, t0 + rng.integers(0, 3 * _DAY, nd), ts)
        s &= ts < t1
        pay_t = np.where(s, ts, pay_t)
        s_all = rng.random(nd) < 0.3  # now and then it clears everything
        pay_c = np.where(s, np.where(s_all, full, np.minimum(a0d, capd)), pay_c)
        # (c) a promise: kept (promised amount by the promised date) or broken.
        kept = has_p & (u < self._keep_prob(dl, st, tp_amt))
        k_lo = tp_t + 600
        k_hi = tp_day * _DAY + _DAY  # the end of the promised date, maybe next month
        k_t = k_lo + np.floor(rng.random(nd) * np.maximum(k_hi - k_lo, 1)).astype(np.int64)
        pay_t = np.where(kept, k_t, pay_t)
        # A kept promise pays at least the promised amount; a debtor paying all it can pays more.
        pay_c = np.where(kept, np.maximum(tp_amt, np.where(mode == 0, full, 0)), pay_c)
        broken_part = has_p & ~kept & (rng.random(nd) < tp["token"][typ])
        b_t = tp_t + np.floor(rng.random(nd) * np.maximum(t1 - tp_t, 1)).astype(np.int64)
        b_c = np.floor(rng.uniform(0.2, 0.7, nd) * tp_amt).astype(np.int64)
        pay_t = np.where(broken_part, b_t, pay_t)
        pay_c = np.where(broken_part, b_c, pay_c)
        paying = (pay_t >= 0) & (pay_c >= mat)

        # Collectors stop after a kept promise or a payment that clears the arrears, and
        # wait for the promised date (plus grace) after a promise, also one of last month.
        cutoff = np.where(kept, tp_t, _NEVER)
        clears = paying & (pay_c >= a0d - mat)
        cutoff = np.where(clears, np.minimum(cutoff, pay_t), cutoff)
        wait_end = (tp_day + 1 + PROMISE_GRACE_DAYS) * _DAY
        outbound = direction == 0
        drop = outbound & (t > cutoff[pos])
        drop |= outbound & has_p[pos] & (t > tp_t[pos]) & (t < wait_end[pos])
        drop |= outbound & (t < st.wait_prev[acct])
        # After a broken promise the collectors call again and the debtor may promise again:
        # the month's last new promise is kept less often; its payment may land next month.
        again = ~drop & (out == _OUT["promise_to_pay"]) & ~kept[pos] & (t > tp_t[pos])
        has_l, fl = _last_rows(pos, again, nd)
        l_t, l_amt, l_day = (_take(a, has_l, fl, 0) for a in (t, pamt, pday))
        kept2 = has_l & (rng.random(nd) < _AGAIN_KEEP * self._keep_prob(dl, st, l_amt))
        l_lo = l_t + 600
        l_pt = l_lo + np.floor(rng.random(nd) * np.maximum(l_day * _DAY + _DAY - l_lo, 1))
        pay_t = np.where(kept2, l_pt.astype(np.int64), pay_t)
        pay_c = np.where(kept2, np.maximum(pay_c, l_amt), pay_c)
        paying |= kept2 & (pay_c >= mat)
        wait2 = (l_day + 1 + PROMISE_GRACE_DAYS) * _DAY
        drop |= outbound & has_l[pos] & (t > l_t[pos]) & (kept2[pos] | (t < wait2[pos]))
        self.wait_until[dl[has_p]] = np.where(has_l, wait2, wait_end)[has_p]
        self._settle(dl, pay_t, pay_c, paying, t1, add_pay)
        keep_rows = ~drop
        con["acct"].append(acct[keep_rows])
        con["t"].append(t[keep_rows])
        con["ch"].append(ch[keep_rows])
        con["dir"].append(direction[keep_rows])
        con["out"].append(out[keep_rows])
        con["pamt"].append(pamt[keep_rows])
        con["pday"].append(pday[keep_rows])

        # Offers of arrangements to delinquent accounts (30+ DPD or in hardship).
        elig = ~suppressed[dl] & ((bucket >= 1) | hardship[dl])
        p_off = np.where(has_r, np.where(hardship[dl], 0.30, 0.12), 0.02)
        offered = elig & (rng.random(nd) < p_off)
        oi = np.flatnonzero(offered)
        if len(oi):
            o_acct = dl[oi]
            o_t = np.where(
                has_r[oi],
                np.minimum(r_t[oi] + rng.integers(60, 1800, len(oi)), t1 - 1),
                self.local_times(o_acct, m, 9, 20),
            )
            plan_mix = np.where(
                hardship[o_acct][:, None],
                np.array([[0.6, 0.4, 0.0, 0.0]]),
                np.where(
                    (bucket[oi] >= 3)[:, None],
                    np.array([[0.2, 0.0, 0.5, 0.3]]),
                    np.array([[0.5, 0.3, 0.0, 0.2]]),
                ),
            )
            o_type = _choice_rows(rng, plan_mix)  # order of vocab.OFFER_TYPES
            discount = rng.choice([10.0, 20.0, 30.0, 40.0, 50.0], size=len(oi),
                                  p=[0.15, 0.25, 0.30, 0.20, 0.10])  # fmt: skip
            n_plan = rng.choice([3, 6, 9, 12], size=len(oi))
            n_staged = rng.choice([2, 3, 4, 6], size=len(oi))
            n_inst = np.select([o_type == 0, o_type == 3], [n_plan, n_staged], 0)
            accepted = rng.random(len(oi)) < tp["accept"][typ[oi]] * (0.5 + 0.5 * wd[oi])
            self.offer_month[o_acct[accepted]] = m
            self.chunks["offers"].append(
                {
                    "acct": o_acct,
                    "t": o_t.astype(np.int64),
                    "type": o_type,
                    "accepted": accepted,
                    "discount": np.where(o_type == 2, discount, np.nan),
                    "n_inst": n_inst,
                }
            )

    def _contact_outcomes(self, acct, ch, direction, w, in_shock) -> np.ndarray:
        """Outcome of each contact attempt, consistent with its channel and the debtor type."""
        rng, tp, n = self.rng, self.tp, len(acct)
        typ = self.typ[acct]
        c = self.cust[acct]
        bad = self.bad_phone_c[c]
        out = np.full(n, _OUT["delivered"], dtype=np.int64)
        # Right-party contact on an outbound call or visit.
        call = (ch == _CH["call"]) & (direction == 0)
        visit = ch == _CH["visit"]
        answer = tp["answer"][typ] * self.reach_c[c] * (0.5 + 0.6 * w[acct])  # the willing answer
        p_rpc = np.where(call, np.clip(answer, 0, 0.9) * ~bad, np.clip(1.5 * answer, 0, 0.9))
        rpc = (call | visit) & (rng.random(n) < p_rpc)
        mix = _RPC_MIX[typ].copy()
        mix[:, 4] += 0.25 * in_shock[acct]
        rpc_out = _RPC_CODES[_choice_rows(rng, mix)]
        # Non-RPC outcomes of calls and visits.
        miss_call = _choice_rows(
            rng,
            np.where(
                bad[:, None],
                np.array([[0.4, 0.0, 0.0, 0.6, 0.0]]),
                np.array([[0.57, 0.26, 0.08, 0.02, 0.07]]),
            ),
        )
        miss_codes = np.array(
            [_OUT[o] for o in ("no_answer", "voicemail", "busy", "wrong_number", "third_party")]
        )
        miss_visit = np.where(rng.random(n) < 0.7, _OUT["no_answer"], _OUT["third_party"])
        out = np.where(call & ~rpc, miss_codes[miss_call], out)
        out = np.where(visit & ~rpc, miss_visit, out)
        out = np.where(rpc, rpc_out, out)
        # Inbound calls: the debtor calls to promise, to declare hardship or to talk.
        inb = direction == 1
        p_hard = np.where((typ == VICTIM) | in_shock[acct], 0.4, 0.05)
        u = rng.random(n)
        inb_out = np.where(
            u < 0.5,
            _OUT["promise_to_pay"],
            np.where(u < 0.5 + p_hard * 0.5, _OUT["hardship"], _OUT["right_party"]),
        )
        out = np.where(inb, inb_out, out)
        msg = ~(call | visit | inb)
        out = np.where(msg, self._message_outcomes(acct, ch, w), out)
        return out

    def _split_some(self, acct, t, cents, dd, t1):
        """Split about 8% of payments in two parts a few days apart (partial payments)."""
        rng = self.rng
        split = ~dd & (cents >= 4 * 100) & (rng.random(len(acct)) < 0.08)
        t2 = t + rng.integers(1, 11, len(acct)) * _DAY
        split &= t2 < t1
        first = np.where(split, cents // 2, cents)
        second = cents - first
        idx = np.flatnonzero(split)
        return (
            np.concatenate([acct, acct[idx]]),
            np.concatenate([t, t2[idx]]),
            np.concatenate([first, second[idx]]),
            np.concatenate([dd, dd[idx]]),
        )

    def _pay_channels(self, acct: np.ndarray, dd: np.ndarray) -> np.ndarray:
        """Channel of each payment: direct debit, else the preferred channel 85% of the time."""
        rng = self.rng
        other = rng.choice(
            [_PCH[c] for c in ("bank_transfer", "card", "cash", "wallet", "other")],
            size=len(acct),
        )
        ch = np.where(rng.random(len(acct)) < 0.85, self.pref[acct], other)
        return np.where(dd, _PCH["direct_debit"], ch)

    # ---- output --------------------------------------------------------------------
    def _take(
        self, name: str, keys: tuple[str, ...], sort_by: tuple[str, str]
    ) -> dict[str, np.ndarray]:
        """Concatenate the monthly chunks of ``name`` (freeing them), sorted stably by two keys."""
        chunks = self.chunks.pop(name)
        out: dict[str, np.ndarray] = {}
        for k in keys:
            parts = [c.pop(k) for c in chunks]
            out[k] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        # np.lexsort sorts by the last key first and is stable.
        order = np.lexsort((out[sort_by[0]], out[sort_by[1]]))
        for k in keys:
            out[k] = out[k][order]
        return out

    def build(self) -> Portfolio:
        """Assemble the contract tables and the truth table from the simulated state."""
        n = self.n
        acct_ids = _format_ids("A", np.arange(1, n + 1))
        accounts = pd.DataFrame(
            {
                "account_id": acct_ids,
                "customer_id": _format_ids("C", self.cust + 1),
                "product": np.array(PRODUCTS, dtype=object)[self.product_codes],
                "opened_date": _dates(self.msd(self.o) + self.due_day - 1),
                "principal": self.principal.astype(np.float64),
                "currency": np.array(_TZ_CURRENCY, dtype=object)[self.tz],
                "timezone": np.array(TIMEZONES, dtype=object)[self.tz],
            }
        )
        for name in COLUMNS["accounts"][7:]:
            accounts[name] = self.status[name][0]
        accounts["monthly_income"] = self.cincome[self.cust].astype(np.float64)
        accounts["age"] = self.cage[self.cust].astype(np.float64)
        accounts["region"] = np.array(self.region_names, dtype=object)[self.cregion[self.cust]]
        accounts["jurisdiction"] = np.array(_TZ_JURISDICTION, dtype=object)[self.tz]
        accounts = accounts[[*COLUMNS["accounts"], *OPTIONAL_COLUMNS["accounts"]]]

        # Installments: every emitted month fe .. ld of each account.
        count = np.maximum(self.ld - self.fe + 1, 0)
        ia = np.repeat(np.arange(n), count)
        offsets = np.arange(len(ia)) - np.repeat(np.cumsum(count) - count, count)
        im = self.fe[ia] + offsets
        installments = pd.DataFrame(
            {
                "account_id": acct_ids[ia],
                "installment_no": (im - self.o[ia]).astype(np.int64),
                "due_date": _dates(self.due_day_abs(ia, im)),
                "amount_due": self.amt[ia] / 100.0,
            }
        )

        pay = self._take("payments", ("acct", "t", "cents", "ch"), ("acct", "t"))
        payments = pd.DataFrame(
            {
                "payment_id": _format_ids("P", np.arange(1, len(pay["t"]) + 1)),
                "account_id": acct_ids[pay["acct"]],
                "paid_at": _timestamps(pay["t"]),
                "amount": pay["cents"] / 100.0,
                "channel": np.array(PAYMENT_CHANNELS, dtype=object)[pay["ch"]],
            }
        )
        del pay

        con = self._take(
            "contacts", ("acct", "t", "ch", "dir", "out", "pamt", "pday", "agent"), ("acct", "t")
        )
        is_p = con["out"] == _OUT["promise_to_pay"]
        agents = np.array([None, *_format_ids("G", np.arange(1, _N_AGENTS + 1), width=3)])
        contacts = pd.DataFrame(
            {
                "contact_id": _format_ids("K", np.arange(1, len(con["t"]) + 1)),
                "account_id": acct_ids[con["acct"]],
                "contact_at": _timestamps(con["t"]),
                "channel": np.array(CONTACT_CHANNELS, dtype=object)[con["ch"]],
                "direction": np.array(DIRECTIONS, dtype=object)[con["dir"]],
                "outcome": np.array(OUTCOMES, dtype=object)[con["out"]],
                "promised_amount": np.where(is_p, con["pamt"] / 100.0, np.nan),
                "promised_date": _dates(np.where(is_p, con["pday"], -1), null=~is_p),
                "agent_id": agents[con["agent"]],
            }
        )
        del con, is_p

        off = self._take(
            "offers", ("acct", "t", "type", "accepted", "discount", "n_inst"), ("acct", "t")
        )
        offers = pd.DataFrame(
            {
                "offer_id": _format_ids("O", np.arange(1, len(off["t"]) + 1)),
                "account_id": acct_ids[off["acct"]],
                "offered_at": _timestamps(off["t"]),
                "offer_type": np.array(OFFER_TYPES, dtype=object)[off["type"]],
                "accepted": off["accepted"].astype(bool),
                "discount_pct": off["discount"].astype(np.float64),
                "n_installments": pd.arrays.IntegerArray(
                    off["n_inst"].astype(np.int64), off["n_inst"] <= 0
                ),
            }
        )

        tr = self._take("truth", ("acct", "month", "ability", "willingness"), ("month", "acct"))
        types = np.array(DEBTOR_TYPES, dtype=object)
        truth = pd.DataFrame(
            {
                "account_id": acct_ids[tr["acct"]],
                "month": _dates(self.msd(tr["month"])),
                "debtor_type": types[self.typ[tr["acct"]]],
                "ability": tr["ability"] / 10_000,
                "willingness": tr["willingness"] / 10_000,
            }
        )
        tables = {
            "accounts": accounts,
            "installments": installments,
            "payments": payments,
            "contacts": contacts,
            "offers": offers,
        }
        return Portfolio(tables={t: tables[t] for t in TABLES}, truth=truth)


def _format_ids(prefix: str, numbers: np.ndarray, width: int | None = None) -> np.ndarray:
    """Format integers as fixed-width ids (``A0000001``) in an object array of str."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if width is None:
        width = max(7, len(str(int(numbers.max())))) if len(numbers) else 7
    digits = np.empty((len(numbers), width), dtype=np.uint8)
    x = numbers.copy()
    for k in range(width - 1, -1, -1):
        digits[:, k] = x % 10 + 48
        x //= 10
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    buf = np.concatenate([np.broadcast_to(pre, (len(numbers), len(pre))), digits], axis=1)
    size = len(pre) + width
    return np.ascontiguousarray(buf).view(f"S{size}").ravel().astype(f"U{size}").astype(object)


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    """Days since the epoch as tz-naive midnight ``datetime64[ns]`` (NaT where ``null``)."""
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    if null is not None:
        values[null] = np.datetime64("NaT")
    return pd.Series(values, dtype="datetime64[ns]")


def _timestamps(seconds: np.ndarray) -> pd.Series:
    """Epoch seconds as ``datetime64[ns, UTC]``."""
    values = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[ns]")
    return pd.Series(values).dt.tz_localize("UTC")


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def write_portfolio(
    portfolio: Portfolio, out_dir: Path | str, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Path]:
    """Write the portfolio's tables as ``<table>.parquet`` (or ``.csv``) and ``truth.parquet``.

    Parameters
    ----------
    portfolio : Portfolio
        The output of :func:`simulate_portfolio`.
    out_dir : path
        Folder to write into (created if missing); existing files are replaced.
    fmt : {"parquet", "csv"}
        Parquet (pyarrow, no index, zstd) or CSV (UTF-8, header row, ISO dates,
        ISO UTC timestamps ending in ``Z``, ``true``/``false``, empty cells for
        null). ``truth`` is always parquet.

    Returns
    -------
    dict of str to Path
        The file written for each table and for ``truth``.

    Raises
    ------
    ValueError
        When ``fmt`` is neither parquet nor csv.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in portfolio.tables.items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            _write_parquet(df, path)
        else:
            _csv_frame(df).to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        paths[name] = path
    paths["truth"] = out_dir / "truth.parquet"
    _write_parquet(portfolio.truth, paths["truth"])
    return paths


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame with pyarrow, no index, fixed settings, so the bytes depend on data only."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd", row_group_size=1_000_000, write_statistics=True)


def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Text form of a table for CSV: ISO dates and timestamps, true/false, empty nulls."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_datetime64_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = np.where(s.to_numpy(dtype=bool), "true", "false")
        else:
            out[col] = s
    return out


# --------------------------------------------------------------------------------------
# Measured rates
# --------------------------------------------------------------------------------------


def _bucket(dpd: np.ndarray) -> np.ndarray:
    """DPD bucket: -1 no installment due yet, 0 current, 1 1-29, 2 30-59, 3 60-89, 4 90+."""
    return np.select([dpd < 0, dpd == 0, dpd < 30, dpd < 60, dpd < 90], [-1, 0, 1, 2, 3], 4).astype(
        np.int64
    )


def portfolio_rates(
    tables: dict[str, pd.DataFrame],
    month_ends: list | pd.DatetimeIndex,
    materiality: float = DEFAULT_MATERIALITY,
) -> dict[str, float]:
    """Measure the headline collection rates of a portfolio from its tables alone.

    Arrears and DPD are derived at each date ``D`` of ``month_ends`` from the
    installments due strictly before ``D`` and the payments strictly before
    ``D``, applied to the oldest installment first; an account is overdue when
    its arrears exceed ``materiality``.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        At least ``installments``, ``payments`` and ``contacts`` in the
        canonical dtypes (e.g. :attr:`Portfolio.tables`, or a subset of its
        accounts).
    month_ends : sequence of dates
        Consecutive as-of dates, one month apart (e.g. the first day of each
        month: the state at the end of the previous month).
    materiality : float, default 1.00
        Arrears at or below this amount count as current.

    Returns
    -------
    dict of str to float
        ``overdue_share`` (mean over the dates of overdue / accounts with an
        installment due); ``cure_<bucket>`` (overdue at ``D`` in the bucket,
        current at the next date) and ``roll_<bucket>`` (moved to the next
        bucket) for buckets ``1_29``, ``30_59``, ``60_89``, ``90p``;
        ``paid_any_rate`` and ``full_cover_rate`` (overdue at ``D``: any
        payment before the next date, payments covering the arrears at ``D``);
        ``rpc_rate`` (right-party outcomes per outbound call), ``promise_rate``
        (promises per right-party contact), both over contacts before the last
        date; ``promise_kept_rate`` (the contract's rule, over promises whose
        grace period ends before the last date). NaN where a denominator is 0.

    Examples
    --------
    >>> p = simulate_portfolio(300, 4, seed=3)
    >>> r = portfolio_rates(p.tables, pd.date_range("2024-02-01", periods=3, freq="MS"))
    >>> 0.0 <= r["overdue_share"] <= 1.0
    True
    """
    ends = pd.DatetimeIndex(month_ends)
    inst = tables["installments"]
    pays = tables["payments"]
    ids = pd.Index(pd.unique(pd.concat([inst["account_id"], pays["account_id"]])))
    n = len(ids)
    i_code = ids.get_indexer(inst["account_id"])
    order = np.lexsort((inst["due_date"].to_numpy(), i_code))
    i_code = i_code[order]
    i_due = inst["due_date"].to_numpy()[order]
    i_amt = np.rint(inst["amount_due"].to_numpy()[order] * 100).astype(np.int64)
    i_cum = pd.Series(i_amt).groupby(i_code).cumsum().to_numpy()
    p_code = ids.get_indexer(pays["account_id"])
    p_t = pays["paid_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    p_amt = np.rint(pays["amount"].to_numpy() * 100).astype(np.int64)
    mat = int(round(materiality * 100))

    dpd_at, arrears_at, paid_at = [], [], []
    for d in ends:
        d64 = np.datetime64(d.to_datetime64())
        paid = np.bincount(p_code[p_t < d64], weights=p_amt[p_t < d64], minlength=n)
        paid = np.rint(paid).astype(np.int64)
        due_mask = i_due < d64
        due = np.bincount(i_code[due_mask], weights=i_amt[due_mask], minlength=n)
        due = np.rint(due).astype(np.int64)
        arrears = due - paid
        unpaid = due_mask & (i_cum > paid[i_code])
        oldest = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        first = _first_per_group(i_code[unpaid], n)
        rows = np.flatnonzero(unpaid)
        has = first >= 0
        oldest[has] = i_due[rows[first[has]]]
        dpd = np.where(due > 0, 0, -1)
        over = (arrears > mat) & has
        dpd = np.where(over, (d64 - oldest).astype("timedelta64[D]").astype(np.int64), dpd)
        dpd_at.append(dpd)
        arrears_at.append(arrears)
        paid_at.append(paid)

    out: dict[str, float] = {}

    def ratio(num: float, den: float) -> float:
        return float(num / den) if den else float("nan")

    buckets = [_bucket(x) for x in dpd_at]
    shares = [ratio((b >= 1).sum(), (b >= 0).sum()) for b in buckets]
    out["overdue_share"] = float(np.nanmean(shares)) if shares else float("nan")
    labels = {1: "1_29", 2: "30_59", 3: "60_89", 4: "90p"}
    counts = {k: np.zeros(3) for k in labels}
    pay_any = pay_full = n_over = 0
    for j in range(len(ends) - 1):
        b0, b1 = _bucket(dpd_at[j]), _bucket(dpd_at[j + 1])
        for k in labels:
            sel = b0 == k
            counts[k] += [sel.sum(), (sel & (b1 == 0)).sum(), (sel & (b1 == min(k + 1, 4))).sum()]
        over = b0 >= 1
        paid_next = paid_at[j + 1] - paid_at[j]
        n_over += over.sum()
        pay_any += (over & (paid_next > 0)).sum()
        pay_full += (over & (paid_next >= arrears_at[j])).sum()
    for k, name in labels.items():
        out[f"cure_{name}"] = ratio(counts[k][1], counts[k][0])
        if k < 4:
            out[f"roll_{name}"] = ratio(counts[k][2], counts[k][0])
    out["paid_any_rate"] = ratio(pay_any, n_over)
    out["full_cover_rate"] = ratio(pay_full, n_over)

    con = tables["contacts"]
    last = ends.max().tz_localize("UTC") if len(ends) else pd.Timestamp.max.tz_localize("UTC")
    con = con[con["contact_at"] < last]
    calls = con[(con["channel"] == "call") & (con["direction"] == "outbound")]
    out["rpc_rate"] = ratio(calls["outcome"].isin(RPC_OUTCOMES).sum(), len(calls))
    is_rpc = con["outcome"].isin(RPC_OUTCOMES)
    promises = con[con["outcome"] == "promise_to_pay"]
    out["promise_rate"] = ratio(len(promises), is_rpc.sum())
    promises = promises[promise_deadline(promises["promised_date"]) <= ends.max()]
    kept = promise_kept(promises, pays)
    out["promise_kept_rate"] = ratio(kept.sum(), len(kept))
    return out


def promise_kept(promises: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """Apply the contract's promise-kept rule to each promise.

    A promise is kept when the account's payments from ``contact_at`` up to the
    end of ``promised_date + 3 days`` (UTC) sum to at least 90% of
    ``promised_amount``.

    Parameters
    ----------
    promises : pandas.DataFrame
        Contact rows with ``account_id``, ``contact_at``, ``promised_amount``,
        ``promised_date``.
    payments : pandas.DataFrame
        ``account_id``, ``paid_at``, ``amount``.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``promises``.

    Examples
    --------
    >>> promises = pd.DataFrame({"account_id": ["A1", "A2"],
    ...     "contact_at": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 10:00"], utc=True),
    ...     "promised_amount": [100.0, 100.0],
    ...     "promised_date": pd.to_datetime(["2024-01-05", "2024-01-05"])})
    >>> payments = pd.DataFrame({"account_id": ["A1", "A2"],
    ...     "paid_at": pd.to_datetime(["2024-01-08 23:00", "2024-01-09 00:00"], utc=True),
    ...     "amount": [95.0, 100.0]})
    >>> promise_kept(promises, payments).tolist()
    [True, False]
    """
    if promises.empty:
        return pd.Series(False, index=promises.index, dtype=bool)
    # The rule lives in features.ledger; judge every promise once all windows closed.
    keys = ["account_id", "contact_at", "promised_amount", "promised_date"]
    contacts = promises.assign(outcome="promise_to_pay")
    for col, value in (("channel", "call"), ("direction", "outbound")):
        if col not in contacts.columns:
            contacts[col] = value
    states = promise_states(
        contacts, payments, promise_deadline(promises["promised_date"].max())
    ).drop_duplicates(keys)
    merged = promises[keys].merge(states[[*keys, "state"]], on=keys, how="left")
    return pd.Series(merged["state"].eq("kept").to_numpy(), index=promises.index, dtype=bool)
