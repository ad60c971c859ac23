"""The closed-loop replay: strategies plan night after night on copies of the same portfolio.

:func:`run_replay` starts from a simulated portfolio's tables cut at ``start``
(every event before it; the schedule as it is, extended monthly for loans
still running) and its ``truth``. Each night it hands each strategy the
tables so far (:class:`~pipeline.simulator.strategies.Night`), takes the
plans it returns, and plays the next day (:func:`pipeline.simulator.daily.step`):
the dialer stays within the plans' caps and windows, debtors answer and pay
by their latent type, ability and willingness, and the day's payments,
contacts and offers are appended to that strategy's tables. Every strategy
sees the same random draws for the same account and day, so their
differences come from the plans, not from luck.

Measured per strategy (:data:`METRICS`): money recovered from accounts
while overdue, cure rate of the accounts overdue at ``start``, outbound
calls and SMS, recovery per contact, complaints, broken promises and
violations (plan caps, the law's 7-day call cap and conversation block,
contact of suppressed accounts, contact outside the local window), which
must be 0.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.groups import group_bounds
from features.vocab import SUPPRESSING_STATUSES
from pipeline.simulator.daily import Book, DayState, Plans, day_uniforms, ledger_at, step
from pipeline.simulator.parameters import DAY, DEBTOR_TYPES, Parameters
from pipeline.simulator.replay_tables import day_frames, extend_schedule, violations
from pipeline.simulator.strategies import Night, Strategy

log = logging.getLogger(__name__)

#: The figures reported per strategy, in order.
METRICS: tuple[str, ...] = (
    "recovered",
    "overdue_at_start",
    "cure_rate",
    "calls",
    "sms",
    "contacts",
    "recovery_per_contact",
    "complaints",
    "promises",
    "broken_promises",
    "violations",
)

#: Plan columns kept per night in :attr:`StrategyRun.plans`.
_KEPT_PLAN = ("account_id", "risk_tier", "dpd_stage", "contact_intensity", "max_calls_7d", "max_sms_7d", "max_calls_day", "offer",
              "control_group")  # fmt: skip


@dataclass
class StrategyRun:
    """One strategy's replay: its figures, daily recovery and the tables it produced."""

    name: str
    metrics: dict[str, float]
    daily: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(repr=False)
    seconds: float = 0.0
    plans: pd.DataFrame | None = field(default=None, repr=False)


def cut_tables(tables: dict[str, pd.DataFrame], start: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Keep every event before ``start`` (UTC midnight); the schedule and accounts stay whole."""
    t0 = pd.Timestamp(start).tz_localize("UTC")
    out = dict(tables)
    out["payments"] = tables["payments"][tables["payments"]["paid_at"] < t0]
    out["contacts"] = tables["contacts"][tables["contacts"]["contact_at"] < t0]
    out["offers"] = tables["offers"][tables["offers"]["offered_at"] < t0]
    return {k: v.reset_index(drop=True) for k, v in out.items()}


def build_book(
    tables: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    start: pd.Timestamp,
    nights: int,
    seed: int,
    params: Parameters | None = None,
) -> tuple[Book, dict[str, pd.DataFrame]]:
    """Return the replay's starting book and the cut tables (schedules extended)."""
    params = params or Parameters()
    accounts = tables["accounts"].reset_index(drop=True)
    ids = pd.Index(accounts["account_id"])
    n = len(ids)
    day0 = int(pd.Timestamp(start).value // (DAY * 10**9))
    tables = cut_tables(tables, start)
    tables["installments"] = extend_schedule(tables["installments"], start, nights)
    inst = tables["installments"]
    code = ids.get_indexer(inst["account_id"])
    due = inst["due_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    cents = np.rint(inst["amount_due"].to_numpy() * 100).astype(np.int64)
    order = np.lexsort((due, code))
    code, due, cents = code[order], due[order], cents[order]
    cum = pd.Series(cents).groupby(code).cumsum().to_numpy()
    lo, hi = group_bounds(code, n)
    pay = tables["payments"]
    paid0 = np.bincount(
        ids.get_indexer(pay["account_id"]),
        weights=np.rint(pay["amount"].to_numpy() * 100),
        minlength=n,
    ).astype(np.int64)
    ability, willingness, month0, typ = _latent(truth, ids)
    zones = sorted(accounts["timezone"].unique())
    flags = {c: accounts[c].fillna(True).to_numpy(dtype=bool) for c in SUPPRESSING_STATUSES}
    no_pay = flags["deceased"] | flags["bankruptcy"]
    rng = np.random.default_rng([int(seed), 2**31])
    tp = {k: np.asarray(v) for k, v in params.type_table.items()}
    book = Book(
        n=n,
        typ=typ,
        tz=np.searchsorted(zones, accounts["timezone"].to_numpy()),
        tz_offset=_tz_offsets(zones, day0, nights + 2),
        day0=day0,
        ability=ability,
        willingness=willingness,
        month0=month0,
        inst_due=due,
        inst_cum=cum,
        inst_amount=cents,
        inst_lo=lo,
        inst_hi=hi,
        suppressed=np.logical_or.reduce(list(flags.values())),
        hardship=accounts["hardship"].fillna(True).to_numpy(dtype=bool),
        pmult=np.where(no_pay, 0.0, np.where(flags["dispute_open"], 0.2, 1.0)),
        paid0=paid0,
        reach=np.exp(rng.normal(0.0, 0.35, n)),
        bad_phone=rng.random(n) < tp["bad_number"][typ],
        params=params,
    )
    return book, tables


def _latent(truth: pd.DataFrame, ids: pd.Index):
    """Ability and willingness as (months, accounts) matrices, and each account's type."""
    month = truth["month"].to_numpy().astype("datetime64[M]").astype(np.int64)
    month0 = int(month.min())
    rows = month - month0
    cols = ids.get_indexer(truth["account_id"])
    shape = (int(rows.max()) + 1, len(ids))
    out = []
    for col in ("ability", "willingness"):
        m = np.full(shape, np.nan)
        m[rows, cols] = truth[col].to_numpy()
        m = pd.DataFrame(m).ffill().bfill().fillna(1.0 if col == "ability" else 0.9)
        out.append(m.to_numpy())
    typ = np.zeros(len(ids), dtype=np.int64)
    typ[cols] = pd.Index(DEBTOR_TYPES).get_indexer(truth["debtor_type"])
    return out[0], out[1], month0, typ


def _tz_offsets(zones: list[str], day0: int, days: int) -> np.ndarray:
    """Local minus UTC, seconds, at local noon, per zone and day from ``day0``."""
    noon = pd.DatetimeIndex(
        (day0 + np.arange(days)).astype("datetime64[D]").astype("datetime64[ns]")
    ) + pd.Timedelta(hours=12)
    out = np.empty((len(zones), days), dtype=np.int64)
    for k, tz in enumerate(zones):
        out[k] = (noon.asi8 - noon.tz_localize(tz).asi8) // 1_000_000_000
    return out


def _plans(book: Book, ids: pd.Index, plans: pd.DataFrame) -> Plans:
    """Spread plan rows over arrays by account code (no plan: no contact)."""
    n = book.n
    code = ids.get_indexer(plans["account_id"])

    def arr(col: str, fill, dtype) -> np.ndarray:
        out = np.full(n, fill, dtype=dtype)
        out[code] = plans[col].to_numpy(dtype=dtype, na_value=fill)
        return out

    window = plans["contact_window"].fillna("00:00-00:00").astype(str)
    lo = window.str.slice(0, 2).astype(int) * 60 + window.str.slice(3, 5).astype(int)
    hi = window.str.slice(6, 8).astype(int) * 60 + window.str.slice(9, 11).astype(int)
    win_lo, win_hi = np.zeros(n, np.int64), np.zeros(n, np.int64)
    win_lo[code], win_hi[code] = lo.to_numpy(), hi.to_numpy()
    offer = np.full(n, "none", dtype=object)
    offer[code] = plans["offer"].to_numpy(dtype=object)
    inst = arr("offer_installment", np.nan, np.float64)
    # Holds (conversation block, open promise) and today's allowance, when the plans give them.
    hold = np.zeros(n, dtype=np.int64)
    if "contact_hold_until" in plans.columns:
        until = pd.to_datetime(plans["contact_hold_until"]).to_numpy().astype("datetime64[D]")
        hold[code] = np.where(np.isnat(until), 0, until.astype(np.int64))
    today = arr("max_calls_today", 0, np.int64) if "max_calls_today" in plans.columns else None
    calls_day = arr("max_calls_day", 0, np.int64)
    return Plans(
        calls_7d=arr("max_calls_7d", 0, np.int64),
        sms_7d=arr("max_sms_7d", 0, np.int64),
        calls_day=calls_day if today is None else np.minimum(calls_day, today),
        offer=offer,
        installment=np.where(np.isfinite(inst), np.rint(inst * 100), 0).astype(np.int64),
        window_lo=win_lo,
        window_hi=win_hi,
        hold_until=hold,
    )


def _night_ledger(book: Book, st: DayState, ids: pd.Index, day: int, pay: pd.DataFrame):
    """The ledger frame of the accounts overdue at ``day`` (what a baseline plans from)."""
    led = ledger_at(book, st.paid, day)
    over = np.flatnonzero(led.overdue)
    since = pd.Timestamp(day - 180, unit="D").tz_localize("UTC")
    recent = pay[pay["paid_at"] >= since]
    paid = recent.groupby("account_id")["amount"].sum().reindex(ids[over]).to_numpy()
    return pd.DataFrame(
        {
            "account_id": ids[over],
            "dpd": led.dpd[over],
            "arrears": led.arrears[over] / 100.0,
            "installment_amount": led.installment[over] / 100.0,
            "capacity": np.where(paid > 0, paid / 6.0, np.nan),
        }
    )


def replay_strategy(
    book: Book,
    tables: dict[str, pd.DataFrame],
    name: str,
    strategy: Strategy,
    start: pd.Timestamp,
    nights: int,
    seed: int,
    profile,
) -> StrategyRun:
    """Replay one strategy for ``nights`` days from ``start`` on its own copy of the book."""
    t0 = time.perf_counter()
    ids = pd.Index(tables["accounts"]["account_id"])
    st = DayState.start(book)
    base = {k: v for k, v in tables.items()}
    new: dict[str, list[pd.DataFrame]] = {"payments": [], "contacts": [], "offers": []}
    counters = {k: len(base[k]) for k in new}
    daily, kept_plans = [], []
    over0 = ledger_at(book, st.paid, book.day0).overdue
    for i in range(nights):
        day = book.day0 + i
        as_of = pd.Timestamp(day, unit="D")
        night_tables = {
            k: (
                pd.concat([base[k], *new[k]], ignore_index=True) if k in new and new[k] else base[k]
            )
            for k in base
        }
        ledger = _night_ledger(book, st, ids, day, night_tables["payments"])
        plan_rows = strategy(Night(as_of, night_tables, ledger))
        plans = _plans(book, ids, plan_rows)
        kept_plans.append(plan_rows[[c for c in _KEPT_PLAN if c in plan_rows]].assign(as_of=as_of))
        before = st.counts["recovered_cents"]
        rows = step(book, st, plans, day, day_uniforms(seed, day, book.n))
        frames = day_frames(rows, ids, counters)
        if "plan_id" in plan_rows.columns:  # the dialer logs which plan each contact served
            pid = pd.Series(plan_rows["plan_id"].to_numpy(), index=plan_rows["account_id"])
            frames["contacts"]["plan_id"] = frames["contacts"]["account_id"].map(pid)
        for k, frame in frames.items():
            new[k].append(frame)
            counters[k] += len(frame)
        daily.append(
            {
                "day": as_of,
                "recovered": (st.counts["recovered_cents"] - before) / 100.0,
                "calls": int((frames["contacts"]["channel"] == "call").sum()),
                "sms": int((frames["contacts"]["channel"] == "sms").sum()),
                "planned": len(plan_rows),
            }
        )
    final = {k: (pd.concat([base[k], *new[k]], ignore_index=True) if k in new else base[k])
             for k in base}  # fmt: skip
    end = book.day0 + nights
    over_end = ledger_at(book, st.paid, end).overdue
    metrics = _metrics(st, over0, over_end, new, final, tables, profile, end)
    run = StrategyRun(name, metrics, pd.DataFrame(daily), final, time.perf_counter() - t0,
                      pd.concat(kept_plans, ignore_index=True))  # fmt: skip
    log.info("replayed %s: %d nights in %.1fs: %s", name, nights, run.seconds, metrics)
    return run


def _metrics(st, over0, over_end, new, final, tables, profile, end) -> dict[str, float]:
    from features.ledger import promise_states

    contacts = pd.concat(new["contacts"], ignore_index=True) if new["contacts"] else None
    calls = int((contacts["channel"] == "call").sum()) if contacts is not None else 0
    sms = int((contacts["channel"] == "sms").sum()) if contacts is not None else 0
    recovered = st.counts["recovered_cents"] / 100.0
    if contacts is not None and (contacts["outcome"] == "promise_to_pay").any():
        states = promise_states(contacts, final["payments"], pd.Timestamp(end, unit="D"))
        promises, broken = len(states), int((states["state"] == "broken").sum())
    else:
        promises = broken = 0
    bad = violations(final["contacts"], contacts, tables["accounts"], profile.name)
    bad["plan_caps"] = st.counts["plan_cap_violations"]
    n0 = int(over0.sum())
    return {
        "recovered": round(recovered, 2),
        "overdue_at_start": n0,
        "cure_rate": float((over0 & ~over_end).sum() / n0) if n0 else float("nan"),
        "calls": calls,
        "sms": sms,
        "contacts": calls + sms,
        "recovery_per_contact": recovered / (calls + sms) if calls + sms else float("nan"),
        "complaints": st.counts["complaints"],
        "promises": promises,
        "broken_promises": broken,
        "violations": int(sum(bad.values())),
        **{f"violations_{k}": v for k, v in bad.items()},
    }


def run_replay(
    tables: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    start: pd.Timestamp,
    nights: int,
    strategies: list[tuple[str, Strategy]],
    seed: int = 0,
    params: Parameters | None = None,
    jurisdiction: str = "us_reg_f",
) -> list[StrategyRun]:
    """Replay every strategy from the same state with the same random draws.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        A simulated portfolio's contract tables (events after ``start`` are dropped).
    truth : pandas.DataFrame
        Its latent truth (``account_id``, ``month``, ``debtor_type``, ``ability``,
        ``willingness``).
    start : pandas.Timestamp
        The first replayed day D1 (its plans are made on the night before it).
    nights : int
        Number of days replayed.
    strategies : list of (name, strategy)
        Named strategies (see :mod:`pipeline.simulator.strategies`).
    seed : int
        Seed of the debtors' random draws, shared by the strategies.
    params : Parameters, optional
        The simulated world's rates.
    jurisdiction : str
        Compliance profile the violations are counted against.

    Returns
    -------
    list of StrategyRun
        One per strategy, in order.

    Raises
    ------
    ValueError
        When ``nights`` < 1, a name repeats, or ``start`` is outside the truth's months.
    """
    from pipeline.compliance import get_profile

    if nights < 1:
        raise ValueError(f"nights must be >= 1, got {nights}")
    names = [n for n, _ in strategies]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must differ, got {names}")
    months = pd.to_datetime(truth["month"])
    if not months.min() <= start <= months.max() + pd.offsets.MonthEnd(1):
        raise ValueError(
            f"start {start.date()} is outside the truth's months "
            f"{months.min().date()}..{months.max().date()}"
        )
    book, cut = build_book(tables, truth, start, nights, seed, params)
    profile = get_profile(jurisdiction)
    return [
        replay_strategy(book, cut, name, fn, start, nights, seed, profile)
        for name, fn in strategies
    ]


def metrics_table(runs: list[StrategyRun]) -> pd.DataFrame:
    """One row per strategy, the columns of :data:`METRICS` then the violation detail."""
    return pd.DataFrame([{"strategy": r.name, **r.metrics} for r in runs]).set_index("strategy")
