"""The closed-loop replay's day: a dialer follows the night's plans and debtors respond.

A :class:`Book` is the portfolio at the replay's start (schedules, payments
so far, the latent truth); a :class:`DayState` is one strategy's copy of what
changes (money paid, promises, arrangements, contact counts). :func:`step`
plays one day: the ledger at the start of the day (the rule of
:mod:`features.ledger`: oldest installment first, materiality for DPD), the
contacts the plans allow, the debtors' answers and payments, and the rows
appended to the contract's tables.

Behaviour (``docs/simulator.md``, "Closed-loop replay"):

* Willing debtors pay more after a conversation (``contact_boost`` x
  willingness); unwilling ones barely move.
* Only the willing promise (the promise share of a conversation is scaled
  by willingness, the rest refuse), and a promise is kept with ``keep`` x
  (0.1 + 0.9 willingness) x sqrt(affordability): asking an unable debtor for the whole arrears gets a
  promise that breaks, while a forbearance offer (installment plan,
  extension, staged repayment) asks for an installment sized to what it can
  pay and, when accepted, becomes a monthly arrangement.
* Pressure on the unable (ability < 0.3) or on hardship cases raises
  complaints, not payments: payments never exceed the month's capacity.

Every random number comes from a per-day stream of fixed shape
(:func:`day_uniforms`), so two strategies replayed with the same seed see the
same draws for the same account, day and purpose (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.groups import segmented_searchsorted
from features.vocab import PROMISE_GRACE_DAYS
from pipeline.simulator.parameters import DAY, OUTCOME, SERIAL, SOPHISTICATED, Parameters

#: Call attempts one account can get in a day (slots of random numbers drawn daily).
CALL_SLOTS = 7
#: Purposes of the per-day uniforms, one column each (plus CALL_SLOTS per call purpose).
_U1 = ("on_time", "organic", "mode", "part", "outcome", "promise", "ahead", "when", "accept",
       "token", "boost", "sms", "sms_time", "complaint_sms", "arrangement", "pay_time")  # fmt: skip
_U = {name: i for i, name in enumerate(_U1)}
_SLOT0 = len(_U1)  # then answer[CALL_SLOTS], time[CALL_SLOTS], complaint[CALL_SLOTS]
_N_U = _SLOT0 + 3 * CALL_SLOTS
_AHEAD = np.array([1, 2, 3, 5, 7, 10, 14])
_FORBEARANCE = ("installment_plan", "extension", "staged_repayment")
#: Complaint chance per outbound call, and per call already made in the last 7 days,
#: for a debtor unable to pay (ability < 0.3) or in hardship.
_COMPLAINT_BASE, _COMPLAINT_PRESSURE, _UNABLE = 0.0005, 0.004, 0.3


def day_uniforms(seed: int, day: int, n: int) -> np.ndarray:
    """Return the day's uniforms, shape (n, purposes): the same for every strategy."""
    return np.random.default_rng([int(seed), int(day)]).random((n, _N_U))


@dataclass
class Book:
    """The portfolio at the replay's start, shared by every strategy (read only).

    Day numbers are days since the epoch; money is in integer cents. The
    installment arrays are sorted by account code then due day, with
    ``inst_lo``/``inst_hi`` bounding each account's rows.
    """

    n: int
    typ: np.ndarray
    tz: np.ndarray  # time-zone code per account
    tz_offset: np.ndarray  # (zones, days) local minus UTC, seconds, from day0
    day0: int
    ability: np.ndarray  # (months, n)
    willingness: np.ndarray  # (months, n)
    month0: int  # months since epoch of row 0 of ability/willingness
    inst_due: np.ndarray
    inst_cum: np.ndarray
    inst_amount: np.ndarray
    inst_lo: np.ndarray
    inst_hi: np.ndarray
    suppressed: np.ndarray
    hardship: np.ndarray
    pmult: np.ndarray  # payment propensity multiplier: 0 deceased/bankrupt, 0.2 disputed
    paid0: np.ndarray  # cents paid before the replay
    reach: np.ndarray  # answering propensity multiplier
    bad_phone: np.ndarray
    mat: int = 100
    params: Parameters = field(default_factory=Parameters)

    def latent(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Ability and willingness of every account in the month of ``day``."""
        month = int(np.datetime64(day, "D").astype("datetime64[M]").astype(np.int64))
        row = int(np.clip(month - self.month0, 0, len(self.ability) - 1))
        return self.ability[row], self.willingness[row]


@dataclass
class DayState:
    """One strategy's mutable state (arrays indexed by account code)."""

    paid: np.ndarray
    cap_left: np.ndarray
    cap_month: int = -1
    pay_day: np.ndarray = None  # scheduled payment day (-1 none)
    pay_cents: np.ndarray = None
    promise_until: np.ndarray = None  # no calls before this day (a promise is pending)
    arr_cents: np.ndarray = None  # monthly arrangement installment (0 none)
    arr_next: np.ndarray = None
    last_talk: np.ndarray = None  # day of the last conversation
    calls: np.ndarray = None  # (n, 7) ring of outbound calls per day
    sms: np.ndarray = None
    counts: dict = field(default_factory=dict)

    @classmethod
    def start(cls, book: Book) -> DayState:
        """A fresh state at the replay's start."""
        n = book.n
        zeros = np.zeros(n, dtype=np.int64)
        return cls(
            paid=book.paid0.copy(),
            cap_left=zeros.copy(),
            pay_day=np.full(n, -1, dtype=np.int64),
            pay_cents=zeros.copy(),
            promise_until=zeros.copy(),
            arr_cents=zeros.copy(),
            arr_next=zeros.copy(),
            last_talk=np.full(n, -(10**6), dtype=np.int64),
            calls=np.zeros((n, 7), dtype=np.int64),
            sms=np.zeros((n, 7), dtype=np.int64),
            counts={k: 0 for k in ("plan_cap_violations", "complaints", "recovered_cents")},
        )


@dataclass
class Ledger:
    """Each account's ledger at the start of a day (cents, days)."""

    due: np.ndarray
    arrears: np.ndarray
    overdue: np.ndarray
    dpd: np.ndarray
    due_today: np.ndarray
    installment: np.ndarray


def ledger_at(book: Book, paid: np.ndarray, day: int) -> Ledger:
    """Arrears and DPD at the start of ``day`` with the contract's rule (see features.ledger)."""
    n = book.n
    d = np.full(n, day, dtype=np.int64)
    idx = segmented_searchsorted(book.inst_due, book.inst_lo, book.inst_hi, d, "left")
    has = idx > book.inst_lo
    prev = np.maximum(idx - 1, 0)
    due = np.where(has, book.inst_cum[prev], 0)
    arrears = np.maximum(due - paid, 0)
    overdue = arrears > book.mat
    k = segmented_searchsorted(book.inst_cum, book.inst_lo, idx, paid + book.mat, "right")
    dpd = np.where(
        overdue & (k < idx), day - book.inst_due[np.minimum(k, len(book.inst_due) - 1)], 0
    )
    nxt = np.minimum(idx, len(book.inst_due) - 1)
    today = (idx < book.inst_hi) & (book.inst_due[nxt] == day)
    due_today = np.where(today, book.inst_amount[nxt], 0)
    installment = np.where(has, book.inst_amount[prev], book.inst_amount[nxt])
    return Ledger(due, arrears, overdue, dpd, due_today, installment)


@dataclass
class Plans:
    """The night's plans as arrays by account code (0 caps where an account has no plan)."""

    calls_7d: np.ndarray
    sms_7d: np.ndarray
    calls_day: np.ndarray
    offer: np.ndarray  # object array of offer names ("none" without a plan)
    installment: np.ndarray  # cents, 0 when not sized
    window_lo: np.ndarray  # local contact window, minutes after midnight
    window_hi: np.ndarray
    hold_until: np.ndarray | None = None  # no contact before this day (a legal or promise hold)


def _capacity(book: Book, st: DayState, led: Ledger, ability: np.ndarray, day: int) -> None:
    """Reset each account's spendable money at the start of a month."""
    month = int(np.datetime64(day, "D").astype("datetime64[M]").astype(np.int64))
    if month == st.cap_month:
        return
    first = int(np.datetime64(month, "M").astype("datetime64[D]").astype(np.int64))
    led_m = ledger_at(book, st.paid, first) if first != day else led
    month_end = int(np.datetime64(month + 1, "M").astype("datetime64[D]").astype(np.int64))
    owed = ledger_at(book, st.paid, month_end).due - st.paid
    base = np.maximum(np.maximum(owed, led_m.installment), 0)
    rich = np.where(ability >= 0.999, 1.5, 1.0)
    st.cap_left = np.floor(ability * base * rich).astype(np.int64)
    st.cap_month = month


def _schedule(st: DayState, who: np.ndarray, day: np.ndarray, cents: np.ndarray) -> None:
    """Schedule a payment unless an earlier one is already due."""
    take = who & ((st.pay_day < 0) | (day < st.pay_day))
    st.pay_day = np.where(take, day, st.pay_day)
    st.pay_cents = np.where(take, cents, st.pay_cents)


def step(book: Book, st: DayState, plans: Plans, day: int, u: np.ndarray) -> dict[str, np.ndarray]:
    """Play one day; return the day's new rows as arrays (payments, contacts, offers)."""
    p = book.params
    tp = {k: np.asarray(v) for k, v in p.type_table.items()}
    typ = book.typ
    ability, w = book.latent(day)
    led = ledger_at(book, st.paid, day)
    _capacity(book, st, led, ability, day)
    hab = 0.5 + 0.5 * np.minimum(1.0, ability / 0.4)
    pmult = book.pmult
    slot = day % 7
    st.calls[:, slot] = 0
    st.sms[:, slot] = 0
    over = led.overdue
    amt = np.maximum(led.installment, 1)

    # Current accounts with an installment due today pay it on time, or miss it.
    cur = ~over & (led.due_today > 0)
    p_on = tp["on_time"][typ] * (0.5 + 0.5 * w) * hab * pmult
    owed_today = np.maximum(led.due + led.due_today - st.paid, 0)
    _schedule(st, cur & (u[:, _U["on_time"]] < p_on), np.full(book.n, day), owed_today)

    # Overdue accounts: organic payments at a daily hazard, by DPD bucket.
    bucket = np.clip((led.dpd >= 30).astype(int) + (led.dpd >= 60) + (led.dpd >= 90), 0, 3)
    p0 = tp["late_pay"][typ] * w * np.asarray(p.dpd_factor)[bucket] * hab * pmult
    boosted = st.arr_cents > 0
    p0 = np.where(boosted, p0 + (1 - p0) * 0.25, p0)
    daily = 1 - (1 - np.clip(p0, 0, 0.999)) ** (1 / 30)
    soph = (typ == SOPHISTICATED) & (led.dpd >= 15) & (led.dpd <= 27)
    daily = np.where(soph, 0.25 * w * hab * pmult, daily)
    full = np.minimum(led.arrears, st.cap_left)
    mode = np.minimum((u[:, _U["mode"]][:, None] >= np.cumsum(p.pay_mode[typ], 1)).sum(1), 2)
    part = np.floor((0.2 + 0.6 * u[:, _U["part"]]) * full).astype(np.int64)
    organic_amount = np.select([mode == 0, mode == 1], [full, np.minimum(amt, st.cap_left)], part)
    organic = over & (u[:, _U["organic"]] < daily)
    _schedule(st, organic, np.full(book.n, day), organic_amount)

    # Arrangements: the monthly installment of an accepted forbearance offer.
    arr_due = over & (st.arr_cents > 0) & (st.arr_next == day)
    keep_arr = tp["keep"][typ] * (0.1 + 0.9 * w) * np.sqrt(_afford(st.cap_left, st.arr_cents))
    _schedule(
        st, arr_due & (u[:, _U["arrangement"]] < keep_arr), np.full(book.n, day), st.arr_cents
    )
    st.arr_next = np.where(arr_due, day + 30, st.arr_next)
    st.arr_cents = np.where(~over, 0, st.arr_cents)

    rows = _contacts(book, st, plans, led, day, u, tp, w, ability, hab, pmult, organic_amount)
    rows["payments"] = _pay(book, st, led, day, u)
    return rows


def _afford(cap: np.ndarray, amount: np.ndarray) -> np.ndarray:
    return np.minimum(1.0, cap / np.maximum(amount, 1))


def _contacts(book, st, plans, led, day, u, tp, w, ability, hab, pmult, organic_amount):
    """The dialer's calls and texts within the plans' caps, and the debtors' answers."""
    n, p = book.n, book.params
    over = led.overdue
    reachable = over & ~book.suppressed & (day >= st.promise_until)
    if plans.hold_until is not None:
        reachable &= day >= plans.hold_until
    used_c = st.calls.sum(1)  # today's slot was cleared: the last 6 days
    used_s = st.sms.sum(1)
    # The dialer spreads a 7-day cap evenly over the week (each account on its own phase).
    k = (day + np.arange(n)) % 7
    pace_c = (k + 1) * plans.calls_7d // 7 - k * plans.calls_7d // 7
    n_calls = np.minimum(
        np.minimum(pace_c, plans.calls_day), np.maximum(plans.calls_7d - used_c, 0)
    )
    n_calls = np.where(reachable, np.minimum(n_calls, CALL_SLOTS), 0)
    pace_s = (k + 1) * plans.sms_7d // 7 - k * plans.sms_7d // 7
    n_sms = np.where(reachable, np.minimum(pace_s, np.maximum(plans.sms_7d - used_s, 0)), 0)

    p_rpc = tp["answer"][book.typ] * book.reach * (0.5 + 0.6 * w) * ~book.bad_phone
    p_rpc = np.clip(p_rpc, 0, 0.9)
    unable = (ability < _UNABLE) | book.hardship
    temper = np.where(np.isin(book.typ, (1, 5)), 2.0, 1.0)  # provocative, stubborn
    talked = np.zeros(n, dtype=bool)
    c_acct, c_slot, c_rpc, complaints = [], [], [], 0
    for j in range(CALL_SLOTS):
        dial = (n_calls > j) & ~talked
        if not dial.any():
            break
        rpc = dial & (u[:, _SLOT0 + j] < p_rpc)
        pressure = used_c + j
        p_comp = _COMPLAINT_BASE + unable * _COMPLAINT_PRESSURE * pressure * temper
        complaints += int((dial & (u[:, _SLOT0 + 2 * CALL_SLOTS + j] < p_comp)).sum())
        idx = np.flatnonzero(dial)
        c_acct.append(idx)
        c_slot.append(np.full(idx.size, j))
        c_rpc.append(rpc[idx])
        talked |= rpc
    made = np.bincount(np.concatenate(c_acct) if c_acct else np.zeros(0, np.int64), minlength=n)
    st.calls[:, day % 7] = made
    st.sms[:, day % 7] = n_sms
    # Checked from the counts, apart from the dialer's rule: the 7 days ending today stay
    # within today's plan, for calls and texts, and today's calls within its daily cap.
    bad_c = (made > 0) & ((st.calls.sum(1) > plans.calls_7d) | (made > plans.calls_day))
    bad_s = (n_sms > 0) & (st.sms.sum(1) > plans.sms_7d)
    st.counts["plan_cap_violations"] += int((bad_c | bad_s).sum())
    complaints += int(((n_sms > 0) & (u[:, _U["complaint_sms"]] < _COMPLAINT_BASE)).sum())

    # The conversation: what the debtor says and does.
    offer = plans.offer
    sized = np.isin(offer, _FORBEARANCE) & (plans.installment > 0)
    ask = np.where(sized, plans.installment, led.arrears)
    ask = np.where(offer == "settlement", led.arrears * 6 // 10, ask)
    afford = _afford(st.cap_left, ask)
    mix = p.rpc_mix[book.typ].copy()
    mix[:, 4] += 0.25 * unable
    # Only the willing promise (the rest refuse), and only what they can afford: asked for
    # more, an unable debtor declares hardship instead (serial promisers promise anyway).
    mix[:, 2] += mix[:, 1] * (1 - w)
    mix[:, 1] *= w
    # Diminishing returns: an unable debtor already spoken to this month has nothing to add.
    fresh = ~unable | (day - st.last_talk >= 30)
    can = np.where(book.typ == SERIAL, 1.0, np.where(unable, afford, 1.0)) * fresh
    mix[:, 4] += mix[:, 1] * (1 - can)
    mix[:, 1] *= can
    cum = np.cumsum(mix, 1)
    cum /= cum[:, -1:]
    kind = np.minimum((u[:, _U["outcome"]][:, None] >= cum).sum(1), 4)
    out_code = np.array([OUTCOME[o] for o in ("right_party", "promise_to_pay", "refused", "dispute",
                                           "hardship")])[kind]  # fmt: skip
    promise = talked & (kind == 1)
    keep = tp["keep"][book.typ] * (0.1 + 0.9 * w) * np.sqrt(afford) * pmult
    ahead = _AHEAD[np.minimum((u[:, _U["ahead"]] * len(_AHEAD)).astype(int), len(_AHEAD) - 1)]
    kept = promise & (u[:, _U["promise"]] < keep)
    when = day + 1 + np.floor(u[:, _U["when"]] * ahead).astype(np.int64)
    _schedule(st, kept, when, ask)
    token = promise & ~kept & (u[:, _U["token"]] < tp["token"][book.typ] * w)
    _schedule(st, token, when, np.floor(ask * (0.2 + 0.5 * u[:, _U["part"]])).astype(np.int64))
    st.promise_until = np.where(promise, day + ahead + PROMISE_GRACE_DAYS + 1, st.promise_until)
    # Offers made in the conversation (forbearance and settlement); accepted ones hold.
    offered = talked & (sized | (offer == "settlement"))
    accepted = offered & (u[:, _U["accept"]] < tp["accept"][book.typ] * (0.5 + 0.5 * w))
    new_arr = accepted & sized & (st.arr_cents == 0)
    st.arr_cents = np.where(new_arr, plans.installment, st.arr_cents)
    st.arr_next = np.where(new_arr, day + ahead + 30, st.arr_next)
    _schedule(st, accepted & ~promise, when, np.where(sized, plans.installment, ask))
    # A positive conversation moves the willing; legal review moves the able, angers the unable.
    positive = talked & (kind == 0)
    # Talking moves the willing who can pay; the unable pay what they can anyway.
    p_boost = tp["contact_boost"][book.typ] * w * np.minimum(1.0, ability / 0.4) ** 2 * pmult
    p_boost = p_boost * fresh
    legal = talked & (offer == "legal_review") & ~promise
    p_boost = np.where(legal, np.maximum(p_boost, 0.3 * ability), p_boost)
    moved = (positive | legal) & (u[:, _U["boost"]] < p_boost)
    _schedule(st, moved, day + 1 + np.floor(u[:, _U["when"]] * 7).astype(np.int64), organic_amount)
    complaints += int((legal & unable & (u[:, _U["complaint_sms"]] < 0.15)).sum())
    st.last_talk = np.where(talked, day, st.last_talk)
    nudged = (n_sms > 0) & (u[:, _U["sms"]] < 0.03 * w * hab)
    _schedule(st, nudged, day + 1 + np.floor(u[:, _U["when"]] * 3).astype(np.int64), organic_amount)
    st.counts["complaints"] += complaints

    acct = np.concatenate(c_acct) if c_acct else np.zeros(0, np.int64)
    slot = np.concatenate(c_slot) if c_slot else np.zeros(0, np.int64)
    rpc = np.concatenate(c_rpc) if c_rpc else np.zeros(0, bool)
    call_out = np.where(rpc, out_code[acct], np.where(book.bad_phone[acct], OUTCOME["wrong_number"],
                                                      OUTCOME["no_answer"]))  # fmt: skip
    s_acct = np.flatnonzero(n_sms > 0)
    t_call = _contact_time(book, plans, acct, day, u[acct, _SLOT0 + CALL_SLOTS + slot])
    t_sms = _contact_time(book, plans, s_acct, day, u[s_acct, _U["sms_time"]])
    is_p = call_out == OUTCOME["promise_to_pay"]
    o_acct = np.flatnonzero(offered)
    t_rpc = np.zeros(n, dtype=np.int64)
    t_rpc[acct[rpc]] = t_call[rpc]
    return {
        "contacts": {
            "acct": np.concatenate([acct, s_acct]),
            "t": np.concatenate([t_call, t_sms]),
            "channel": np.concatenate([np.zeros(acct.size, int), np.ones(s_acct.size, int)]),
            "outcome": np.concatenate([call_out, np.full(s_acct.size, OUTCOME["delivered"])]),
            "pamt": np.concatenate([np.where(is_p, ask[acct], 0), np.zeros(s_acct.size, int)]),
            "pday": np.concatenate(
                [np.where(is_p, day + ahead[acct], 0), np.zeros(s_acct.size, int)]
            ),
        },
        "offers": {
            "acct": o_acct,
            "t": t_rpc[o_acct] + 60,
            "offer": offer[o_acct],
            "accepted": accepted[o_acct],
            "n_inst": np.where(
                sized[o_acct],
                -(-led.arrears[o_acct] // np.maximum(plans.installment[o_acct], 1)),
                0,
            ),
        },
    }


def _contact_time(book: Book, plans: Plans, acct: np.ndarray, day: int, u: np.ndarray):
    """A UTC time (seconds) on UTC day ``day`` inside each debtor's local contact window."""
    off = book.tz_offset[book.tz[acct], day - book.day0]
    lo = np.maximum(plans.window_lo[acct] * 60 - off, 0)
    hi = np.minimum(plans.window_hi[acct] * 60 - off, DAY - 1)
    hi = np.maximum(hi, lo)
    return day * DAY + lo + np.floor(u * (hi - lo)).astype(np.int64)


def _pay(book: Book, st: DayState, led: Ledger, day: int, u: np.ndarray) -> dict[str, np.ndarray]:
    """Make today's scheduled payments within the month's capacity."""
    due = st.pay_day == day
    cents = np.minimum(st.pay_cents, st.cap_left)
    pays = due & (cents >= book.mat)
    acct = np.flatnonzero(pays)
    st.paid[acct] += cents[acct]
    st.cap_left[acct] -= cents[acct]
    st.pay_day[due] = -1
    # Collections money: paid by accounts overdue at the start of the day, up to what is owed.
    owed = led.arrears + led.due_today
    st.counts["recovered_cents"] += int(np.minimum(cents, owed)[pays & led.overdue].sum())
    return {"acct": acct, "t": day * DAY + np.floor(u[acct, _U["pay_time"]] * DAY).astype(np.int64),
            "cents": cents[acct]}  # fmt: skip
