"""The simulation engine: set-up of customers and accounts and the month-by-month loop.

Everything is vectorised over accounts; the only Python loop is over months.
Internally ids are integer codes; the string ids (``A0000001``, ...) are
formatted once at the end (:mod:`pipeline.simulator.tables`). The output is
byte-for-byte deterministic per seed. What debtors and collectors do within a
month lives in :mod:`pipeline.simulator.conduct`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import pandas as pd

from features.vocab import DEFAULT_MATERIALITY, PRODUCTS
from pipeline.simulator.conduct import Conduct, MonthState
from pipeline.simulator.parameters import (
    CHANNEL,
    CURRENCY_SCALE,
    DAY,
    DEBTOR_TYPES,
    N_AGENTS,
    NEVER,
    SOPHISTICATED,
    TIMEZONES,
    TZ_CURRENCY,
    TZ_REGIONS,
    TZ_SHARE,
    Parameters,
)
from pipeline.simulator.tables import Portfolio, build_portfolio

log = logging.getLogger(__name__)


def simulate_portfolio(
    n_accounts: int,
    n_months: int,
    seed: int,
    start: str | dt.date = "2024-01-01",
    params: Parameters | None = None,
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
    params : Parameters, optional
        The rates of the simulated world; the documented defaults when None.

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
    sim = _Simulator(int(n_accounts), int(n_months), int(seed), first, params)
    sim.run()
    portfolio = build_portfolio(sim)
    rows = ", ".join(f"{k} {len(v):,}" for k, v in portfolio.tables.items())
    log.info(
        "simulated %s accounts x %s months in %.1fs: %s",
        f"{n_accounts:,}",
        n_months,
        time.perf_counter() - t_start,
        rows,
    )
    return portfolio


class _Simulator(Conduct):
    """Holds the state of one simulation; every array is indexed by account or customer."""

    def __init__(
        self, n: int, n_months: int, seed: int, start: pd.Timestamp, params: Parameters | None
    ) -> None:
        self.p = params if params is not None else Parameters()
        self.n = n
        self.n_months = n_months
        self.rng = np.random.default_rng(seed)
        # Scenario draws come from a stream of their own, so the stationary portfolio
        # of a seed is the same, byte for byte, whether or not the knobs exist.
        self.srng = np.random.default_rng([seed, 12])
        self.tp = {k: np.asarray(v) for k, v in self.p.type_table.items()}
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
        return day * DAY + sec - self.tz_off[self.tz[acct], day - self.off_day0]

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
        day = day + (t < d0 * DAY) - (t >= d1 * DAY)
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
        self.c_new = np.zeros(nc, dtype=bool)  # customers who join during the window
        if self.p.shifts:
            self.c_new = self.srng.random(nc) < self.p.opened_during_share
            if self.p.new_type_share is not None:
                share = np.asarray(self.p.new_type_share, dtype="float64")
                new_type = self.srng.choice(len(DEBTOR_TYPES), size=nc, p=share / share.sum())
                self.ctype = np.where(self.c_new, new_type, self.ctype)
        w_mean = tp["willingness"][self.ctype]
        conc = self.p.w_concentration
        self.w_base = rng.beta(w_mean * conc, (1 - w_mean) * conc)
        self.cap_base = tp["capacity"][self.ctype] * np.exp(rng.normal(0.0, 0.35, nc))
        # Shock state (0 none, 1 job loss, 2 illness), started near its stationary share.
        pj, pi = tp["job_loss"][self.ctype], tp["illness"][self.ctype]
        sj = pj / (pj + np.asarray(self.p.shock_recovery)[1])
        si = pi / (pi + np.asarray(self.p.shock_recovery)[2])
        u = rng.random(nc)
        self.shock = np.where(u < sj, 1, np.where(u < sj + si, 2, 0)).astype(np.int8)
        self.ctz = rng.choice(len(TIMEZONES), size=nc, p=TZ_SHARE)
        self.cregion = np.zeros(nc, dtype=np.int64)
        self.region_names: list[str] = []
        for k, regions in enumerate(TZ_REGIONS):
            sel = self.ctz == k
            self.cregion[sel] = len(self.region_names) + rng.integers(0, len(regions), sel.sum())
            self.region_names.extend(regions)
        self.cage = np.clip(np.rint(rng.normal(42, 13, nc)), 19, 85)
        scale = np.array([CURRENCY_SCALE[TZ_CURRENCY[k]] for k in range(len(TIMEZONES))])
        cny_income = np.where(self.ctz == 3, 0.35, 1.0)  # CNY incomes are lower in USD terms
        income = 4_500 * np.exp(rng.normal(0, 0.45, nc)) * np.sqrt(self.cap_base / 2.0)
        self.cincome = np.round(income * scale[self.ctz] * cny_income, -1)
        self.bad_phone_c = rng.random(nc) < tp["bad_number"][self.ctype]
        self.reach_c = np.exp(rng.normal(0.0, 0.35, nc))

    def _accounts(self) -> None:
        rng, n, nm = self.rng, self.n, self.n_months
        names = list(self.p.product_table)
        shares = np.array([self.p.product_table[p][0] for p in names])
        self.product = rng.choice(len(names), size=n, p=shares / shares.sum())
        if self.p.new_product_share is not None:
            new_share = np.asarray(self.p.new_product_share, dtype="float64")
            new_product = self.srng.choice(len(names), size=n, p=new_share / new_share.sum())
            self.product = np.where(self.c_new[self.cust], new_product, self.product)
        self.product_codes = np.array([PRODUCTS.index(p) for p in names])[self.product]
        self.typ = self.ctype[self.cust]
        self.tz = self.ctz[self.cust]
        currency_scale = np.array([CURRENCY_SCALE[TZ_CURRENCY[k]] for k in range(len(TIMEZONES))])
        median = np.array([self.p.product_table[p][1] for p in names])[self.product]
        sigma = np.array([self.p.product_table[p][2] for p in names])[self.product]
        principal = median * np.exp(rng.normal(0, 1, n) * sigma) * currency_scale[self.tz]
        self.principal = np.maximum(np.round(principal, -1), 50.0)
        term = np.empty(n, dtype=np.int64)
        for k, p in enumerate(names):
            sel = self.product == k
            term[sel] = rng.choice(np.array(self.p.product_table[p][3]), size=sel.sum())
        apr = np.array([self.p.product_table[p][4] for p in names])[self.product]
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
        before = (rng.random(n) < 1.0 - self.p.opened_during_share) | (nm < 2)
        if self.p.shifts:
            before = ~self.c_new[self.cust] | (nm < 2)
        back = np.minimum(term, self.p.opened_before_months)
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
        for name, (base, raised, typ) in self.p.status_table.items():
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
        t0, t1 = int(self.msd(m)) * DAY, int(self.msd(m + 1)) * DAY
        # Latent state: shocks (Markov), willingness and capacity of each customer.
        u = rng.random(self.n_cust)
        pj, pi = tp["job_loss"][self.ctype], tp["illness"][self.ctype]
        none = self.shock == 0
        start_j = none & (u < pj)
        start_i = none & (u >= pj) & (u < pj + pi)
        ends = ~none & (u < np.asarray(self.p.shock_recovery)[self.shock])
        self.shock = np.where(start_j, 1, np.where(start_i, 2, np.where(ends, 0, self.shock)))
        self.shock = self.shock.astype(np.int8)
        wc = np.clip(
            self.w_base + rng.normal(0, 0.04, self.n_cust) + self.p.willingness_trend * m, 0, 1
        )
        first, months, mult = self.p.macro_shock
        macro = mult if first <= m < first + months else 1.0
        cc = (
            self.cap_base
            * np.asarray(self.p.shock_mult)[self.shock]
            * np.exp(rng.normal(0, 0.15, self.n_cust))
            * macro
        )
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
        goes_dark = late_c & ~self.bad_phone_c & (v < self.p.skip_rate * (1 - wc))
        self.bad_phone_c = (self.bad_phone_c | goes_dark) & ~(
            self.bad_phone_c & (v < self.p.skip_traced)
        )
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
        if self.p.behaviour_noise > 0:
            # Behaviour follows the traits only up to noise; truth keeps the traits.
            noise = self.p.behaviour_noise
            w = np.clip(wc + self.srng.normal(0, noise, self.n_cust), 0, 1)[self.cust]
            cap_c = np.floor(cap_c * np.exp(self.srng.normal(0, noise, n))).astype(np.int64)
            ability = np.minimum(1.0, cap_c / np.maximum(owed, amt))
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
        boosted = (m > self.offer_month) & (m <= self.offer_month + self.p.offer_boost_months)
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
        due_t = self.due_day_abs(cur, m) * DAY
        p_on = tp["on_time"][typ[cur]] * (0.5 + 0.5 * w[cur]) * hab[cur] * pmult[cur]
        p_on = boost(p_on, cur)
        on = rng.random(len(cur)) < p_on
        on &= ~self.dd[cur] | (cap_c[cur] >= owed[cur])  # a direct debit fails without funds
        amount = np.minimum(owed[cur], cap_c[cur])
        over = on & (amount >= owed[cur]) & (rng.random(len(cur)) < 0.02)
        amount = np.where(over, (owed[cur] // 1000 + 1) * 1000, amount)
        lo = np.maximum(t0, due_t - 5 * DAY)
        t_on = lo + np.floor(rng.random(len(cur)) * (due_t + DAY - lo)).astype(np.int64)
        t_on = np.where(self.dd[cur], due_t + 6 * 3600, t_on)
        add_pay(cur[on], t_on[on], amount[on], self.dd[cur][on])
        # Missed: a reminder after the due date, and maybe a late payment within the month.
        missed = cur[~on]
        mdue = due_t[~on]
        remind = ~suppressed[missed] & (rng.random(len(missed)) < 0.85)
        r_day = mdue // DAY + rng.integers(1, 4, len(missed))
        r_t = self.utc_of_local(missed, r_day, rng.integers(9 * 3600, 20 * 3600, len(missed)))
        remind &= r_t < t1
        r_ch = rng.choice(
            [CHANNEL["sms"], CHANNEL["app_push"], CHANNEL["email"]],
            size=len(missed),
            p=[0.6, 0.3, 0.1],
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
        lo = np.maximum(mdue + DAY, np.where(remind, r_t, 0))
        # Late payers pay a few days late (exponential, mean 5 days); a payment that would
        # fall after the month end is not made this month (the account shows 1-29 DPD).
        t_late = lo + np.floor(rng.exponential(5 * DAY, len(missed))).astype(np.int64)
        late = (rng.random(len(missed)) < p_late) & (t_late < t1)
        late &= typ[missed] != SOPHISTICATED
        amt_late = np.minimum(owed[missed], cap_c[missed])
        add_pay(missed[late], t_late[late], amt_late[late], False)
        # Sophisticated debtors pay 15-27 days after the due date, before 30 DPD.
        soph = typ[missed] == SOPHISTICATED
        t_soph = mdue + rng.integers(15, 28, len(missed)) * DAY + rng.integers(0, DAY, len(missed))
        ok = soph & (t_soph < t1) & (rng.random(len(missed)) < w_m * hab_m * 0.95 * pmult[missed])
        add_pay(missed[ok], t_soph[ok], amt_late[ok], False)

        state = MonthState(
            m=m, t0=t0, t1=t1, a0=a0, owed=owed, cap=cap_c, w=w, hab=hab, in_shock=in_shock,
            suppressed=suppressed, no_pay=no_pay, hardship=hardship, pmult=pmult, boosted=boosted,
            wait_prev=wait_prev,
        )  # fmt: skip
        # Early collections of the accounts that missed this month's due date.
        paid_t = np.select([late, ok], [t_late, t_soph], NEVER)
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
                (chunk["ch"] == CHANNEL["call"]) | (chunk["ch"] == CHANNEL["visit"]),
                rng.integers(1, N_AGENTS + 1, len(chunk["acct"])),
                0,
            )
            small = {"acct": np.int32, "ch": np.int8, "dir": np.int8, "out": np.int8,
                     "pday": np.int32, "agent": np.int16}  # fmt: skip
            self.chunks["contacts"].append(
                {k: v.astype(small.get(k, np.int64)) for k, v in chunk.items()}
            )

    def take(
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
