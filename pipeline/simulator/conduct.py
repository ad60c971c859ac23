"""What debtors and collectors do within a simulated month: contacts, promises, payments, offers.

A mixin of the engine's simulator class: every method reads the simulator's
per-account arrays and the month's :class:`MonthState`, and appends the
month's rows to its chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.vocab import DEFAULT_MATERIALITY, PROMISE_GRACE_DAYS
from pipeline.simulator.parameters import (
    CHANNEL,
    DAY,
    NEVER,
    OUTCOME,
    PAY_CHANNEL,
    RPC_CODES,
    RPC_SET,
    SERIAL,
    SOPHISTICATED,
    VICTIM,
)


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
class MonthState:
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


@dataclass(frozen=True)
class _FirstContacts:
    """Per account of a month: its first promise (time, amount, day) and first right-party contact."""

    has_promise: np.ndarray
    promise_t: np.ndarray
    promise_amount: np.ndarray
    promise_day: np.ndarray
    has_rpc: np.ndarray
    rpc_t: np.ndarray
    positive: np.ndarray  # the first right-party contact was neither a refusal nor a dispute


def _first_contacts(pos, out, t, pamt, pday, n: int) -> _FirstContacts:
    """The first promise and the first right-party contact of each of ``n`` accounts (rows sorted)."""
    has_p, fp = _first_rows(pos, out == OUTCOME["promise_to_pay"], n)
    has_r, fr = _first_rows(pos, np.isin(out, RPC_SET), n)
    r_out = _take(out, has_r, fr, -1)
    return _FirstContacts(
        has_p,
        *(_take(a, has_p, fp, 0) for a in (t, pamt, pday)),
        has_r,
        _take(t, has_r, fr, 0),
        has_r & ~np.isin(r_out, [OUTCOME["refused"], OUTCOME["dispute"]]),
    )


class Conduct:
    """Within-month behaviour of the simulator (mixed into the engine's class)."""

    def _message_outcomes(self, acct: np.ndarray, ch: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Outcomes of sms, email, letter and app_push: delivered, undelivered, replied."""
        rng = self.rng
        bad = self.bad_phone_c[self.cust[acct]]
        p_undel = np.select(
            [ch == CHANNEL["sms"], ch == CHANNEL["email"], ch == CHANNEL["letter"]],
            [np.where(bad, 0.7, 0.05), 0.08, 0.03],
            0.10,
        )
        p_reply = (
            np.select(
                [ch == CHANNEL["sms"], ch == CHANNEL["email"], ch == CHANNEL["letter"]],
                [0.03, 0.02, 0.005],
                0.0,
            )
            * w[acct]
        )
        u = rng.random(len(acct))
        return np.where(
            u < p_undel,
            OUTCOME["undelivered"],
            np.where(u < p_undel + p_reply, OUTCOME["replied"], OUTCOME["delivered"]),
        )

    def _keep_prob(self, acct, st: MonthState, amount: np.ndarray) -> np.ndarray:
        """Probability that each debtor keeps a promise of ``amount`` cents."""
        afford = np.sqrt(np.minimum(1.0, st.cap[acct] / np.maximum(amount, 1)))
        w = st.w[acct]
        return (
            self.tp["keep"][self.typ[acct]]
            * (self.p.keep_w[0] + self.p.keep_w[1] * w)
            * afford
            * st.pmult[acct]
        )

    def _promises(self, acct, t, asked, st: MonthState, is_p) -> tuple[np.ndarray, np.ndarray]:
        """Promised amount (cents) and date (days since epoch) of promise rows (0 elsewhere).

        The collector asks for ``asked``; a debtor who cannot pay it usually negotiates it
        down to what it can pay (serial promisers promise whatever is asked). The date is
        often the next payday (the 1st or the 15th), else 1-14 days ahead.
        """
        rng, n = self.rng, len(acct)
        mat = int(round(DEFAULT_MATERIALITY * 100))
        cap = st.cap[acct]
        afford = (cap * 9 // 10) // 1000 * 1000  # 90% of what it can pay, in whole tens
        honest = (self.typ[acct] != SERIAL) & (rng.random(n) < self.p.negotiate)
        amount = np.where(honest & (cap < asked) & (afford > mat), afford, asked)
        amount = np.maximum(amount, mat + 1) * is_p
        day = t // DAY
        ahead = rng.choice([1, 2, 3, 5, 7, 10, 14], size=n,
                           p=[0.10, 0.15, 0.15, 0.20, 0.20, 0.10, 0.10])  # fmt: skip
        month = day.astype("datetime64[D]").astype("datetime64[M]")
        fifteenth = (month.astype("datetime64[D]") + 14).astype(np.int64)
        first_next = (month + 1).astype("datetime64[D]").astype(np.int64)
        payday = np.where(fifteenth >= day + 2, fifteenth, first_next)
        payday = np.where(payday >= day + 2, payday, first_next + 14)
        use = (rng.random(n) < self.p.payday_share) & (payday - day <= 14)
        return amount, np.where(use, payday, day + ahead) * is_p

    def _times_between(self, acct, lo, t1, h_lo, h_hi) -> np.ndarray:
        """Random UTC times in ``[lo, t1)`` at local hours ``[h_lo, h_hi)``; -1 when none fits."""
        rng, n = self.rng, len(acct)
        d_lo, d1 = lo // DAY, t1 // DAY
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

    def _early_collections(self, st: MonthState, missed, mdue, paid_t, add_pay, con) -> None:
        """Contacts of accounts that missed this month's due date, from 3 days past due.

        The 1-29 DPD plan of ``Parameters.contact_means`` pro rata of the days left in the month;
        collectors stop once the debtor pays. A debtor who has not paid gets a second
        chance from a promise (to pay the missed installment) or a positive conversation;
        the payment may land early next month.
        """
        rng, tp, nm = self.rng, self.tp, len(missed)
        if nm == 0:
            return
        t1, w = st.t1, st.w
        mat = int(round(DEFAULT_MATERIALITY * 100))
        lo = mdue + self.p.early_start_days * DAY
        frac = np.clip((t1 - lo) / (30 * DAY), 0, None)
        contactable = ~st.suppressed[missed] & (rng.random(nm) >= self.p.no_contact_share)
        mult = rng.gamma(2.0, 0.5, nm) * np.where(st.hardship[missed], 0.5, 1.0) * contactable
        rows_pos, rows_ch = [], []
        for name, means in self.p.contact_means.items():
            cnt = rng.poisson(means[0] * mult * frac)
            rows_pos.append(np.repeat(np.arange(nm), cnt))
            rows_ch.append(np.full(cnt.sum(), CHANNEL[name]))
        pos = np.concatenate(rows_pos)
        ch = np.concatenate(rows_ch)
        acct = missed[pos]
        h_lo = np.select([ch == CHANNEL["email"], ch == CHANNEL["letter"]], [7, 10], 9)
        h_hi = np.select([ch == CHANNEL["email"], ch == CHANNEL["letter"]], [22, 11], 20)
        t = self._times_between(acct, lo[pos], t1, h_lo, h_hi)
        direction = np.zeros(len(pos), dtype=np.int64)
        out = self._contact_outcomes(acct, ch, direction, w, st.in_shock)
        is_p = out == OUTCOME["promise_to_pay"]
        pamt, pday = self._promises(acct, t, st.owed[acct], st, is_p)
        keep = (t >= 0) & (t < paid_t[pos])  # collectors stop once the debtor has paid
        order = np.flatnonzero(keep)[np.lexsort((t[keep], pos[keep]))]
        pos, ch, direction, acct, t, out, pamt, pday = (
            a[order] for a in (pos, ch, direction, acct, t, out, pamt, pday)
        )
        fc = _first_contacts(pos, out, t, pamt, pday, nm)
        has_p, tp_t, tp_amt, tp_day = (
            fc.has_promise,
            fc.promise_t,
            fc.promise_amount,
            fc.promise_day,
        )
        r_t, positive = fc.rpc_t, fc.positive

        typ, capm = self.typ[missed], st.cap[missed]
        free = (paid_t == NEVER) & (typ != SOPHISTICATED)
        u = rng.random(nm)
        kept = free & has_p & (u < self._keep_prob(missed, st, tp_amt))
        k_lo = tp_t + 600
        k_t = k_lo + np.floor(rng.random(nm) * np.maximum(tp_day * DAY + DAY - k_lo, 1))
        p_talk = tp["contact_boost"][typ] * w[missed] * st.pmult[missed]
        talk = free & ~has_p & positive & (u < p_talk)
        g_t = r_t + np.floor(rng.random(nm) * 7 * DAY)
        pay_t = np.select([kept, talk], [k_t, g_t], -1).astype(np.int64)
        pay_c = np.minimum(np.where(kept, tp_amt, st.owed[missed]), capm)
        paying = (pay_t >= 0) & (pay_c >= mat)
        self._settle(missed, pay_t, pay_c, paying, t1, add_pay)

        wait_end = (tp_day + 1 + PROMISE_GRACE_DAYS) * DAY
        drop = t > np.where(paying, pay_t, NEVER)[pos]
        drop |= has_p[pos] & (t > tp_t[pos]) & (t < wait_end[pos])
        self.wait_until[missed[has_p]] = wait_end[has_p]
        for key, arr in (("acct", acct), ("t", t), ("ch", ch), ("dir", direction), ("out", out),
                         ("pamt", pamt), ("pday", pday)):  # fmt: skip
            con[key].append(arr[~drop])

    def _delinquent(self, st: MonthState, dl: np.ndarray, add_pay, con) -> None:
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
        contactable = ~suppressed[dl] & (rng.random(nd) >= self.p.no_contact_share)
        mult = rng.gamma(2.0, 0.5, nd) * np.where(hardship[dl], 0.5, 1.0) * contactable
        rows_pos, rows_ch = [], []
        for ch, means in self.p.contact_means.items():
            cnt = rng.poisson(np.asarray(means)[bucket] * mult)
            rows_pos.append(np.repeat(np.arange(nd), cnt))
            rows_ch.append(np.full(cnt.sum(), CHANNEL[ch]))
        pos = np.concatenate(rows_pos)
        ch = np.concatenate(rows_ch)
        direction = np.zeros(len(pos), dtype=np.int64)
        # Inbound calls from willing debtors.
        inbound = (rng.random(nd) < tp["inbound"][typ] * w[dl]) & ~st.no_pay[dl]
        ib = np.flatnonzero(inbound)
        pos = np.concatenate([pos, ib])
        ch = np.concatenate([ch, np.full(len(ib), CHANNEL["call"])])
        direction = np.concatenate([direction, np.ones(len(ib), dtype=np.int64)])
        acct = dl[pos]
        hours_lo = np.select([ch == CHANNEL["email"], ch == CHANNEL["letter"]], [7, 10], 9)
        hours_hi = np.select([ch == CHANNEL["email"], ch == CHANNEL["letter"]], [22, 11], 20)
        hours_lo = np.where(direction == 1, 8, hours_lo)
        hours_hi = np.where(direction == 1, 21, hours_hi)
        t = self.local_times(acct, m, hours_lo, hours_hi)
        out = self._contact_outcomes(acct, ch, direction, w, st.in_shock)

        # Promises: amount and date for every promise_to_pay.
        is_p = out == OUTCOME["promise_to_pay"]
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
        fc = _first_contacts(pos, out, t, pamt, pday, nd)
        has_p, tp_t, tp_amt, tp_day = (
            fc.has_promise,
            fc.promise_t,
            fc.promise_amount,
            fc.promise_day,
        )
        has_r, r_t, positive = fc.has_rpc, fc.rpc_t, fc.positive

        # Payment decisions.
        wd, habd, pm = w[dl], st.hab[dl], st.pmult[dl]
        p0 = tp["late_pay"][typ] * wd * np.asarray(self.p.dpd_factor)[bucket] * habd * pm
        p0 = np.where(st.boosted[dl], p0 + (1 - p0) * 0.25, p0)
        u = rng.random(nd)
        capd, owedd, a0d = st.cap[dl], st.owed[dl], a0[dl]
        mode = _choice_rows(rng, self.p.pay_mode[typ])
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
        trig_t = r_t + np.floor(rng.random(nd) * 7 * DAY).astype(np.int64)  # maybe next month
        pay_t = np.where(pays, np.where(organic | ~positive, rand_t, trig_t), pay_t)
        pay_c = np.where(pays, amount, pay_c)
        # (b) sophisticated: one behind, paid 15-27 days after the oldest due date.
        s = ~has_p & (typ == SOPHISTICATED) & (u < wd * habd * 0.95 * pm)
        ts = od_day * DAY + rng.integers(15, 28, nd) * DAY + rng.integers(0, DAY, nd)
        ts = np.where(ts < t0, t0 + rng.integers(0, 3 * DAY, nd), ts)
        s &= ts < t1
        pay_t = np.where(s, ts, pay_t)
        s_all = rng.random(nd) < 0.3  # now and then it clears everything
        pay_c = np.where(s, np.where(s_all, full, np.minimum(a0d, capd)), pay_c)
        # (c) a promise: kept (promised amount by the promised date) or broken.
        kept = has_p & (u < self._keep_prob(dl, st, tp_amt))
        k_lo = tp_t + 600
        k_hi = tp_day * DAY + DAY  # the end of the promised date, maybe next month
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
        cutoff = np.where(kept, tp_t, NEVER)
        clears = paying & (pay_c >= a0d - mat)
        cutoff = np.where(clears, np.minimum(cutoff, pay_t), cutoff)
        wait_end = (tp_day + 1 + PROMISE_GRACE_DAYS) * DAY
        outbound = direction == 0
        drop = outbound & (t > cutoff[pos])
        drop |= outbound & has_p[pos] & (t > tp_t[pos]) & (t < wait_end[pos])
        drop |= outbound & (t < st.wait_prev[acct])
        # After a broken promise the collectors call again and the debtor may promise again:
        # the month's last new promise is kept less often; its payment may land next month.
        again = ~drop & (out == OUTCOME["promise_to_pay"]) & ~kept[pos] & (t > tp_t[pos])
        has_l, fl = _last_rows(pos, again, nd)
        l_t, l_amt, l_day = (_take(a, has_l, fl, 0) for a in (t, pamt, pday))
        kept2 = has_l & (rng.random(nd) < self.p.again_keep * self._keep_prob(dl, st, l_amt))
        l_lo = l_t + 600
        l_pt = l_lo + np.floor(rng.random(nd) * np.maximum(l_day * DAY + DAY - l_lo, 1))
        pay_t = np.where(kept2, l_pt.astype(np.int64), pay_t)
        pay_c = np.where(kept2, np.maximum(pay_c, l_amt), pay_c)
        paying |= kept2 & (pay_c >= mat)
        wait2 = (l_day + 1 + PROMISE_GRACE_DAYS) * DAY
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
        out = np.full(n, OUTCOME["delivered"], dtype=np.int64)
        # Right-party contact on an outbound call or visit.
        call = (ch == CHANNEL["call"]) & (direction == 0)
        visit = ch == CHANNEL["visit"]
        answer = tp["answer"][typ] * self.reach_c[c] * (0.5 + 0.6 * w[acct])  # the willing answer
        p_rpc = np.where(call, np.clip(answer, 0, 0.9) * ~bad, np.clip(1.5 * answer, 0, 0.9))
        rpc = (call | visit) & (rng.random(n) < p_rpc)
        mix = self.p.rpc_mix[typ].copy()
        mix[:, 4] += 0.25 * in_shock[acct]
        rpc_out = RPC_CODES[_choice_rows(rng, mix)]
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
            [OUTCOME[o] for o in ("no_answer", "voicemail", "busy", "wrong_number", "third_party")]
        )
        miss_visit = np.where(rng.random(n) < 0.7, OUTCOME["no_answer"], OUTCOME["third_party"])
        out = np.where(call & ~rpc, miss_codes[miss_call], out)
        out = np.where(visit & ~rpc, miss_visit, out)
        out = np.where(rpc, rpc_out, out)
        # Inbound calls: the debtor calls to promise, to declare hardship or to talk.
        inb = direction == 1
        p_hard = np.where((typ == VICTIM) | in_shock[acct], 0.4, 0.05)
        u = rng.random(n)
        inb_out = np.where(
            u < 0.5,
            OUTCOME["promise_to_pay"],
            np.where(u < 0.5 + p_hard * 0.5, OUTCOME["hardship"], OUTCOME["right_party"]),
        )
        out = np.where(inb, inb_out, out)
        msg = ~(call | visit | inb)
        out = np.where(msg, self._message_outcomes(acct, ch, w), out)
        return out

    def _split_some(self, acct, t, cents, dd, t1):
        """Split about 8% of payments in two parts a few days apart (partial payments)."""
        rng = self.rng
        split = ~dd & (cents >= 4 * 100) & (rng.random(len(acct)) < 0.08)
        t2 = t + rng.integers(1, 11, len(acct)) * DAY
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
            [PAY_CHANNEL[c] for c in ("bank_transfer", "card", "cash", "wallet", "other")],
            size=len(acct),
        )
        ch = np.where(rng.random(len(acct)) < 0.85, self.pref[acct], other)
        return np.where(dd, PAY_CHANNEL["direct_debit"], ch)

    # ---- output --------------------------------------------------------------------
