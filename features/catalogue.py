"""The feature catalogue: every feature's name, meaning, type, range, reason text and code.

Features are named ``measure_aggregation_window`` (``dpd_max_180d``,
``rpc_rate_30d``). Each one is a :class:`FeatureSpec` whose ``compute`` is a
pure function of an :class:`~features.context.AsOfContext` (the portfolio seen
from D, with every event table already cut at D) returning one value per
account. Calling a spec on the tables and an as-of date gives a Series
indexed by ``account_id``::

    FEATURES["dpd_max_180d"](tables, "2024-06-30")

Windows: an event feature over ``w`` days reads events in ``[D - w days, D)``;
a state feature over ``w`` days (worst DPD, episodes) reads the as-of days
``D - w .. D``. Whole days are counted from the calendar day (UTC) of an event
to D, so an event yesterday is 1 day old.

The column order (:data:`FEATURE_COLUMNS`), the category lists
(:data:`CATEGORICAL_FEATURES`), the known monotone directions and the reason
texts are defined here once and shared by training and scoring;
``docs/features.md`` is generated from this module by
:func:`catalogue_markdown`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from features import vocab
from features.context import AsOfContext, safe_divide
from features.prepare import AMOUNT_TOL, DAY_NS, NAT_NS, prepare_tables

GROUPS: dict[str, str] = {
    "repayment": "Repayment history (installments and payments)",
    "contact": "Contact log",
    "account": "Account",
    "offer": "Offers (null when no offers table is given)",
}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it means, its type and range, how to say it, how to compute it.

    Attributes
    ----------
    name : str
        Column name, ``measure_aggregation_window``.
    group : str
        One of :data:`GROUPS`.
    kind : str
        How a value reads: count, days, money, ratio, share, delta, flag, years, category.
    description : str
        One line for the catalogue.
    compute : callable
        ``compute(ctx) -> numpy.ndarray`` of one value per account.
    dtype : str
        ``int64``, ``float64`` or ``category``.
    nullable : bool
        Whether the value may be missing.
    minimum, maximum : float or None
        The range the schema checks.
    reason : str
        Reason text with ``{v}`` for the formatted value.
    reason_one, reason_zero, reason_null : str or None
        Texts used instead of ``reason`` when the value is 1, 0 or missing.
    """

    name: str
    group: str
    kind: str
    description: str
    compute: Callable[[AsOfContext], np.ndarray]
    dtype: str = "float64"
    nullable: bool = False
    minimum: float | None = 0.0
    maximum: float | None = None
    reason: str = ""
    reason_one: str | None = None
    reason_zero: str | None = None
    reason_null: str | None = None

    def __call__(
        self,
        tables: dict[str, pd.DataFrame] | AsOfContext,
        as_of: object = None,
        materiality: float = vocab.DEFAULT_MATERIALITY,
    ) -> pd.Series:
        """Compute this feature for every account as of D, as a Series indexed by account_id.

        Parameters
        ----------
        tables : dict of DataFrame or AsOfContext
            The contract's tables, or a context already built for D.
        as_of : date-like
            The as-of date D (ignored when a context is given).
        materiality : float
            Arrears at or below this amount count as current.
        """
        if isinstance(tables, AsOfContext):
            ctx = tables
        else:
            ctx = AsOfContext(prepare_tables(tables), as_of, materiality)
        values = self.compute(ctx)
        if self.dtype == "category":
            values = pd.Categorical.from_codes(values, categories=CATEGORICAL_FEATURES[self.name])
        return ctx.series(values, self.name)


# --------------------------------------------------------------------------
# Computations (pure functions of the context)
# --------------------------------------------------------------------------

_RPC = np.array(sorted(vocab.OUTCOMES.index(o) for o in vocab.RPC_OUTCOMES), dtype=np.int8)


def _ledger(field: str, ctx: AsOfContext) -> np.ndarray:
    return getattr(ctx.ledger, field)


def _arrears_to_installment(ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.arrears, ctx.ledger.installment_amount)


def _arrears_to_principal(ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.arrears, ctx.prep.principal)


def _paid_ratio_all(ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.paid_to_date, ctx.ledger.due_to_date)


def _dpd_max(days: int, ctx: AsOfContext) -> np.ndarray:
    ep = ctx.episodes
    out = ctx.ledger.dpd.copy()
    m = ep.inst_last_day >= ctx.d - days * DAY_NS
    np.maximum.at(out, ep.inst_code[m], ep.inst_dpd[m])
    return out


def _episode_count(min_dpd: int, days: int, ctx: AsOfContext) -> np.ndarray:
    ep = ctx.episodes
    m = (ep.end >= ctx.d - days * DAY_NS) & (ep.worst_dpd >= min_dpd)
    return ctx.count(ep.code[m])


def _cure_count(days: int, ctx: AsOfContext) -> np.ndarray:
    ep = ctx.episodes
    m = ~ep.is_open & (ep.end >= ctx.d - days * DAY_NS)
    return ctx.count(ep.code[m])


def _episode_days_current(ctx: AsOfContext) -> np.ndarray:
    ep = ctx.episodes
    out = np.zeros(ctx.n, dtype=np.int64)
    m = ep.is_open
    out[ep.code[m]] = (ctx.d - ep.start[m]) // DAY_NS + 1
    return out


def _pay_window(days: int, ctx: AsOfContext) -> np.ndarray:
    return ctx.memo(("pay_window", days), lambda: ctx.window(ctx.d - ctx.paid.ns, days))


def _payment_count(days: int, ctx: AsOfContext) -> np.ndarray:
    return ctx.count(ctx.paid.code[_pay_window(days, ctx)])


def _payment_sum(days: int, ctx: AsOfContext) -> np.ndarray:
    m = _pay_window(days, ctx)
    return ctx.count(ctx.paid.code[m], ctx.paid.amount[m])


def _last_payment_index(ctx: AsOfContext) -> tuple[np.ndarray, np.ndarray]:
    """Accounts with a payment before D and the row of their latest one."""
    p = ctx.paid
    has = p.ends > p.starts
    return has, p.ends[has] - 1


def _days_since_last_payment(ctx: AsOfContext) -> np.ndarray:
    has, last = _last_payment_index(ctx)
    latest = np.full(ctx.n, NAT_NS, dtype=np.int64)
    latest[has] = ctx.paid.ns[last]
    return ctx.days_since(latest)


def _last_payment_to_installment(ctx: AsOfContext) -> np.ndarray:
    has, last = _last_payment_index(ctx)
    amount = np.full(ctx.n, np.nan)
    amount[has] = ctx.paid.amount[last]
    return safe_divide(amount, ctx.ledger.installment_amount)


def _due_between(ctx: AsOfContext, older: int, newer: int) -> np.ndarray:
    """Amount due on installments with due dates in ``[D - older, D - newer)`` days."""
    due = ctx.due
    m = (due.due >= ctx.d - older * DAY_NS) & (due.due < ctx.d - newer * DAY_NS)
    return ctx.count(due.code[m], due.amount[m])


def _paid_between(ctx: AsOfContext, older: int, newer: int) -> np.ndarray:
    """Payments made in ``[D - older, D - newer)`` days."""
    p = ctx.paid
    m = (p.ns >= ctx.d - older * DAY_NS) & (p.ns < ctx.d - newer * DAY_NS)
    return ctx.count(p.code[m], p.amount[m])


def _paid_ratio(days: int, ctx: AsOfContext) -> np.ndarray:
    return safe_divide(_paid_between(ctx, days, 0), _due_between(ctx, days, 0))


def _paid_ratio_trend(days: int, ctx: AsOfContext) -> np.ndarray:
    recent = _paid_ratio(days, ctx)
    older = safe_divide(_paid_between(ctx, 2 * days, days), _due_between(ctx, 2 * days, days))
    return recent - older


def _ontime_share(days: int, ctx: AsOfContext) -> np.ndarray:
    due = ctx.due
    m = due.due >= ctx.d - days * DAY_NS
    on_time = m & (due.cleared < due.due + DAY_NS)
    return safe_divide(ctx.count(due.code[on_time]), ctx.count(due.code[m]))


def _partial_mask(days: int, ctx: AsOfContext) -> np.ndarray:
    p = ctx.paid
    installment = ctx.ledger.installment_amount[p.code]
    with np.errstate(invalid="ignore"):
        partial_ = p.amount < installment - AMOUNT_TOL
    return _pay_window(days, ctx) & partial_


def _partial_payment_count(days: int, ctx: AsOfContext) -> np.ndarray:
    return ctx.count(ctx.paid.code[_partial_mask(days, ctx)])


def _partial_payment_share(days: int, ctx: AsOfContext) -> np.ndarray:
    return safe_divide(_partial_payment_count(days, ctx), _payment_count(days, ctx))


def _tenure_days(ctx: AsOfContext) -> np.ndarray:
    opened = ctx.prep.opened_ns
    out = ((ctx.d - opened) // DAY_NS).astype(np.float64)
    out[opened == NAT_NS] = np.nan
    return out


# -- contacts ----------------------------------------------------------------


def _con_window(days: int, ctx: AsOfContext) -> np.ndarray:
    return ctx.memo(("con_window", days), lambda: ctx.window(ctx.contacts.age, days))


def _rpc(ctx: AsOfContext) -> np.ndarray:
    return ctx.memo("rpc", lambda: np.isin(ctx.contacts.outcome, _RPC))


def _attempt_matrix(days: int, ctx: AsOfContext) -> np.ndarray:
    """Outbound attempts per account and channel (n x 6) in the window."""

    def compute() -> np.ndarray:
        c = ctx.contacts
        m = c.outbound & _con_window(days, ctx) & (c.channel >= 0)
        k = len(vocab.CONTACT_CHANNELS)
        key = c.code[m].astype(np.int64) * k + c.channel[m]
        return np.bincount(key, minlength=ctx.n * k).reshape(ctx.n, k).astype(np.int64)

    return ctx.memo(("attempts", days), compute)


def _attempt_count(days: int, ctx: AsOfContext) -> np.ndarray:
    c = ctx.contacts
    return ctx.count(c.code[c.outbound & _con_window(days, ctx)])


def _channel_attempt_count(channel: str, days: int, ctx: AsOfContext) -> np.ndarray:
    return _attempt_matrix(days, ctx)[:, vocab.CONTACT_CHANNELS.index(channel)]


def _rpc_count(days: int, ctx: AsOfContext) -> np.ndarray:
    return ctx.count(ctx.contacts.code[_rpc(ctx) & _con_window(days, ctx)])


def _rpc_rate(days: int, ctx: AsOfContext) -> np.ndarray:
    c = ctx.contacts
    reached = ctx.count(c.code[_rpc(ctx) & c.outbound & _con_window(days, ctx)])
    return safe_divide(reached, _attempt_count(days, ctx))


def _days_since_last(which: str, ctx: AsOfContext) -> np.ndarray:
    c = ctx.contacts
    m = _rpc(ctx) if which == "rpc" else c.outbound
    return ctx.days_since(ctx.latest(c.code[m], c.ns[m]))


def _inbound_count(days: int, ctx: AsOfContext) -> np.ndarray:
    c = ctx.contacts
    return ctx.count(c.code[c.inbound & _con_window(days, ctx)])


def _sms_reply_count(days: int, ctx: AsOfContext) -> np.ndarray:
    c = ctx.contacts
    m = (
        (c.outcome == vocab.OUTCOMES.index("replied"))
        & (c.channel == vocab.CONTACT_CHANNELS.index("sms"))
        & _con_window(days, ctx)
    )
    return ctx.count(c.code[m])


def _outcome_count(outcome: str, days: int, ctx: AsOfContext) -> np.ndarray:
    c = ctx.contacts
    m = (c.outcome == vocab.OUTCOMES.index(outcome)) & _con_window(days, ctx)
    return ctx.count(c.code[m])


def _promise_count(state: str, days: int, ctx: AsOfContext) -> np.ndarray:
    pr = ctx.promises
    m = ctx.d - pr.made <= days * DAY_NS
    if state != "made":
        m &= getattr(pr, state)
    return ctx.count(pr.code[m])


def _promise_kept_rate(days: int, ctx: AsOfContext) -> np.ndarray:
    kept = _promise_count("kept", days, ctx)
    return safe_divide(kept, kept + _promise_count("broken", days, ctx))


def _promise_pending(ctx: AsOfContext) -> np.ndarray:
    pr = ctx.promises
    return (ctx.count(pr.code[pr.pending]) > 0).astype(np.int64)


def _promise_pending_to_arrears(ctx: AsOfContext) -> np.ndarray:
    pr = ctx.promises
    amount = ctx.count(pr.code[pr.pending], pr.amount[pr.pending])
    return safe_divide(amount, ctx.ledger.arrears)


# -- accounts ----------------------------------------------------------------


def _account(field: str, ctx: AsOfContext) -> np.ndarray:
    return getattr(ctx.prep, field)


def _installment_to(field: str, ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.installment_amount, getattr(ctx.prep, field))


def _arrears_to_income(ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.arrears, ctx.prep.monthly_income)


# -- offers ------------------------------------------------------------------

#: Days after acceptance within which an arrangement must see a payment.
OFFER_FIRST_PAYMENT_DAYS: int = 30


def _offer_count(accepted: bool, days: int, ctx: AsOfContext) -> np.ndarray:
    o = ctx.offers
    if o is None:
        return np.full(ctx.n, np.nan)
    m = ctx.window(o.age, days)
    if accepted:
        m &= o.accepted
    return ctx.count(o.code[m]).astype(np.float64)


def _offer_broken_count(days: int, ctx: AsOfContext) -> np.ndarray:
    o = ctx.offers
    if o is None:
        return np.full(ctx.n, np.nan)
    grace = OFFER_FIRST_PAYMENT_DAYS * DAY_NS
    # Only arrangements whose first-payment window closed before D can be broken.
    m = o.accepted & ctx.window(o.age, days) & (o.age >= grace)
    code, start = o.code[m], o.ns[m]
    got = ctx.paid.total_before(code, start + grace) - ctx.paid.total_before(code, start)
    broken = got <= AMOUNT_TOL
    return ctx.count(code[broken]).astype(np.float64)


def _days_since_last_offer(ctx: AsOfContext) -> np.ndarray:
    o = ctx.offers
    if o is None:
        return np.full(ctx.n, np.nan)
    return ctx.days_since(ctx.latest(o.code, o.ns))


# --------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------


def _counted(singular: str, plural: str, tail: str) -> dict[str, str]:
    """Reason texts of a count: none, one, many."""
    tail = f" {tail}" if tail else ""
    return {
        "reason_zero": f"no {singular}{tail}",
        "reason_one": f"1 {singular}{tail}",
        "reason": f"{{v}} {plural}{tail}",
    }


def _count_spec(name, group, description, compute, singular, plural, tail, **kw) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        group=group,
        kind="count",
        description=description,
        compute=compute,
        dtype=kw.pop("dtype", "int64"),
        **_counted(singular, plural, tail),
        **kw,
    )


def _specs() -> list[FeatureSpec]:
    """Build the catalogue in its fixed column order."""
    S = FeatureSpec
    out: list[FeatureSpec] = [
        S(
            "arrears",
            "repayment",
            "money",
            "Overdue amount at D: amount due on installments due before D minus payments before D, floored at 0.",
            partial(_ledger, "arrears"),
            reason="arrears of {v}",
        ),
        S(
            "dpd",
            "repayment",
            "days",
            "Days past due at D: days since the due date of the oldest installment still unpaid beyond materiality (0 when current).",
            partial(_ledger, "dpd"),
            dtype="int64",
            reason="{v} days past due",
            reason_zero="not past due",
            reason_one="1 day past due",
        ),
        _count_spec(
            "installments_overdue",
            "repayment",
            "Installments due before D still unpaid beyond materiality at D.",
            partial(_ledger, "installments_overdue"),
            "installment overdue",
            "installments overdue",
            "",
        ),
        _count_spec(
            "installments_due_count",
            "repayment",
            "Installments due before D since the account opened.",
            partial(_ledger, "installments_due"),
            "installment due so far",
            "installments due so far",
            "",
        ),
        S(
            "installment_amount",
            "repayment",
            "money",
            "Amount of the latest installment due before D (the regular installment).",
            partial(_ledger, "installment_amount"),
            nullable=True,
            reason="installment of {v}",
            reason_null="no installment due yet",
        ),
        S(
            "arrears_to_installment",
            "repayment",
            "ratio",
            "Arrears divided by the latest installment amount.",
            _arrears_to_installment,
            nullable=True,
            reason="arrears {v} the monthly installment",
            reason_zero="no arrears",
            reason_null="no installment due yet",
        ),
        S(
            "arrears_to_principal",
            "repayment",
            "share",
            "Arrears divided by the principal (the credit limit for revolving products).",
            _arrears_to_principal,
            nullable=True,
            reason="arrears {v} of the principal",
            reason_null="principal unknown",
        ),
        S(
            "paid_ratio_all",
            "repayment",
            "share",
            "Payments before D divided by the amount due before D, since opening.",
            _paid_ratio_all,
            nullable=True,
            reason="paid {v} of everything due since opening",
            reason_null="nothing due yet",
        ),
    ]
    for days in (180, 365):
        out.append(
            S(
                f"dpd_max_{days}d",
                "repayment",
                "days",
                f"Worst DPD on any as-of day of the last {days} days, D included.",
                partial(_dpd_max, days),
                dtype="int64",
                reason=f"worst {{v}} days past due in the last {days} days",
                reason_zero=f"never past due in the last {days} days",
                reason_one=f"worst 1 day past due in the last {days} days",
            )
        )
    for days in (180, 365):
        for min_dpd in (30, 60, 90):
            out.append(
                _count_spec(
                    f"episodes_{min_dpd}plus_count_{days}d",
                    "repayment",
                    f"Delinquency episodes active in the last {days} days whose worst DPD reached {min_dpd}.",
                    partial(_episode_count, min_dpd, days),
                    f"episode of {min_dpd}+ days past due",
                    f"episodes of {min_dpd}+ days past due",
                    f"in the last {days} days",
                )
            )
    out += [
        _count_spec(
            "cure_count_365d",
            "repayment",
            "Delinquency episodes cured (arrears cleared) in the last 365 days.",
            partial(_cure_count, 365),
            "cure of arrears",
            "cures of arrears",
            "in the last 365 days",
        ),
        S(
            "episode_days_current",
            "repayment",
            "days",
            "Days since the current delinquency episode began, D included (0 when current).",
            _episode_days_current,
            dtype="int64",
            reason="in arrears for {v} days in a row",
            reason_zero="not in arrears",
            reason_one="in arrears since yesterday",
        ),
    ]
    for days in (30, 90, 180):
        out.append(
            _count_spec(
                f"payment_count_{days}d",
                "repayment",
                f"Payments made in the last {days} days.",
                partial(_payment_count, days),
                "payment",
                "payments",
                f"in the last {days} days",
            )
        )
    for days in (30, 90, 180):
        out.append(
            S(
                f"payment_sum_{days}d",
                "repayment",
                "money",
                f"Amount paid in the last {days} days.",
                partial(_payment_sum, days),
                reason=f"paid {{v}} in the last {days} days",
                reason_zero=f"no payment in the last {days} days",
            )
        )
    out += [
        S(
            "days_since_last_payment",
            "repayment",
            "days",
            "Days since the last payment before D (null when none).",
            _days_since_last_payment,
            nullable=True,
            reason="no payment for {v} days",
            reason_one="paid yesterday",
            reason_null="no payment on record",
        ),
        S(
            "last_payment_to_installment",
            "repayment",
            "ratio",
            "Amount of the last payment divided by the latest installment amount.",
            _last_payment_to_installment,
            nullable=True,
            reason="last payment {v} the installment",
            reason_null="no payment on record",
        ),
    ]
    for days in (90, 180, 365):
        out.append(
            S(
                f"paid_ratio_{days}d",
                "repayment",
                "share",
                f"Payments in the last {days} days divided by the amount falling due in them.",
                partial(_paid_ratio, days),
                nullable=True,
                reason=f"paid {{v}} of the amount due in the last {days} days",
                reason_null=f"nothing fell due in the last {days} days",
            )
        )
    out += [
        S(
            "paid_ratio_trend_90d",
            "repayment",
            "delta",
            "Paid-to-due ratio of the last 90 days minus that of the 90 days before.",
            partial(_paid_ratio_trend, 90),
            nullable=True,
            minimum=None,
            reason="paid-to-due ratio {v} on the previous 90 days",
            reason_null="not enough history for a trend",
        ),
        S(
            "ontime_share_365d",
            "repayment",
            "share",
            "Share of the installments due in the last 365 days that were paid by the end of their due date.",
            partial(_ontime_share, 365),
            nullable=True,
            maximum=1.0,
            reason="{v} of installments in the last 365 days paid on time",
            reason_null="no installment due in the last 365 days",
        ),
        _count_spec(
            "partial_payment_count_180d",
            "repayment",
            "Payments in the last 180 days smaller than the latest installment.",
            partial(_partial_payment_count, 180),
            "partial payment",
            "partial payments",
            "in the last 180 days",
        ),
        S(
            "partial_payment_share_180d",
            "repayment",
            "share",
            "Share of the payments in the last 180 days smaller than the latest installment.",
            partial(_partial_payment_share, 180),
            nullable=True,
            maximum=1.0,
            reason="{v} of payments in the last 180 days were partial",
            reason_null="no payment in the last 180 days",
        ),
        S(
            "tenure_days",
            "repayment",
            "days",
            "Days from the opening date to D.",
            _tenure_days,
            reason="account open for {v} days",
        ),
    ]
    # -- contact log -------------------------------------------------------
    for days in (7, 30, 90):
        out.append(
            _count_spec(
                f"attempt_count_{days}d",
                "contact",
                f"Outbound contact attempts (all channels) in the last {days} days.",
                partial(_attempt_count, days),
                "contact attempt",
                "contact attempts",
                f"in the last {days} days",
            )
        )
    nouns = {
        "call": ("call", "calls"),
        "sms": ("SMS", "SMS"),
        "email": ("email", "emails"),
        "letter": ("letter", "letters"),
        "visit": ("visit", "visits"),
        "app_push": ("app notification", "app notifications"),
    }
    for channel in vocab.CONTACT_CHANNELS:
        for days in (7, 30, 90):
            one, many = nouns[channel]
            out.append(
                _count_spec(
                    f"{channel}_attempt_count_{days}d",
                    "contact",
                    f"Outbound {channel} attempts in the last {days} days.",
                    partial(_channel_attempt_count, channel, days),
                    one,
                    many,
                    f"in the last {days} days",
                )
            )
    for days in (30, 90):
        out.append(
            _count_spec(
                f"rpc_count_{days}d",
                "contact",
                f"Right-party contacts (either direction) in the last {days} days.",
                partial(_rpc_count, days),
                "conversation with the debtor",
                "conversations with the debtor",
                f"in the last {days} days",
            )
        )
    for days in (30, 90):
        out.append(
            S(
                f"rpc_rate_{days}d",
                "contact",
                "share",
                f"Outbound attempts in the last {days} days that reached the debtor, over all outbound attempts.",
                partial(_rpc_rate, days),
                nullable=True,
                maximum=1.0,
                reason=f"reached the debtor on {{v}} of attempts in the last {days} days",
                reason_null=f"no contact attempt in the last {days} days",
            )
        )
    out += [
        S(
            "days_since_last_rpc",
            "contact",
            "days",
            "Days since the last right-party contact (null when none).",
            partial(_days_since_last, "rpc"),
            nullable=True,
            reason="debtor last reached {v} days ago",
            reason_one="debtor reached yesterday",
            reason_null="debtor never reached",
        ),
        S(
            "days_since_last_attempt",
            "contact",
            "days",
            "Days since the last outbound contact attempt (null when none).",
            partial(_days_since_last, "attempt"),
            nullable=True,
            reason="last contact attempt {v} days ago",
            reason_one="contacted yesterday",
            reason_null="never contacted",
        ),
    ]
    for days in (30, 90):
        out.append(
            S(
                f"inbound_count_{days}d",
                "contact",
                "count",
                f"Contacts initiated by the debtor in the last {days} days.",
                partial(_inbound_count, days),
                dtype="int64",
                reason=f"the debtor got in touch {{v}} times in the last {days} days",
                reason_one=f"the debtor got in touch once in the last {days} days",
                reason_zero=f"the debtor did not get in touch in the last {days} days",
            )
        )
    out.append(
        _count_spec(
            "sms_reply_count_90d",
            "contact",
            "SMS replies from the debtor in the last 90 days.",
            partial(_sms_reply_count, 90),
            "SMS reply",
            "SMS replies",
            "in the last 90 days",
        )
    )
    for days in (90, 180):
        out += [
            _count_spec(
                f"promise_count_{days}d",
                "contact",
                f"Promises to pay made in the last {days} days.",
                partial(_promise_count, "made", days),
                "promise to pay",
                "promises to pay",
                f"in the last {days} days",
            ),
            _count_spec(
                f"promise_kept_count_{days}d",
                "contact",
                f"Promises made in the last {days} days and kept by D.",
                partial(_promise_count, "kept", days),
                "kept promise",
                "kept promises",
                f"in the last {days} days",
            ),
            _count_spec(
                f"promise_broken_count_{days}d",
                "contact",
                f"Promises made in the last {days} days and broken by D (grace over, not kept).",
                partial(_promise_count, "broken", days),
                "broken promise",
                "broken promises",
                f"in the last {days} days",
            ),
        ]
    out += [
        S(
            "promise_kept_rate_180d",
            "contact",
            "share",
            "Kept over kept plus broken promises made in the last 180 days (pending ones left out).",
            partial(_promise_kept_rate, 180),
            nullable=True,
            maximum=1.0,
            reason="kept {v} of promises made in the last 180 days",
            reason_null="no promise judged in the last 180 days",
        ),
        S(
            "promise_pending",
            "contact",
            "flag",
            "1 when a promise to pay is pending at D (its grace period not over, not yet kept).",
            _promise_pending,
            dtype="int64",
            maximum=1.0,
            reason="a promise to pay is pending",
            reason_one="a promise to pay is pending",
            reason_zero="no promise pending",
        ),
        S(
            "promise_pending_to_arrears",
            "contact",
            "share",
            "Amount of the pending promises divided by the arrears.",
            _promise_pending_to_arrears,
            nullable=True,
            reason="pending promise worth {v} of the arrears",
            reason_zero="no promise pending",
            reason_null="no arrears",
        ),
        _count_spec(
            "refusal_count_90d",
            "contact",
            "Contacts in the last 90 days where the debtor refused to pay.",
            partial(_outcome_count, "refused", 90),
            "refusal to pay",
            "refusals to pay",
            "in the last 90 days",
        ),
        _count_spec(
            "wrong_number_count_90d",
            "contact",
            "Contacts in the last 90 days that reached a wrong number.",
            partial(_outcome_count, "wrong_number", 90),
            "wrong number",
            "wrong numbers",
            "in the last 90 days",
        ),
        _count_spec(
            "dispute_count_365d",
            "contact",
            "Contacts in the last 365 days where the debtor disputed the debt.",
            partial(_outcome_count, "dispute", 365),
            "dispute raised",
            "disputes raised",
            "in the last 365 days",
        ),
        _count_spec(
            "hardship_count_365d",
            "contact",
            "Contacts in the last 365 days where the debtor claimed hardship.",
            partial(_outcome_count, "hardship", 365),
            "hardship claim",
            "hardship claims",
            "in the last 365 days",
        ),
        # -- account -------------------------------------------------------
        S(
            "product",
            "account",
            "category",
            "Product of the account (categories: features.vocab.PRODUCTS).",
            partial(_account, "product"),
            dtype="category",
            minimum=None,
            reason="product: {v}",
        ),
        S(
            "principal",
            "account",
            "money",
            "Principal of the loan (credit limit for revolving products).",
            partial(_account, "principal"),
            reason="principal of {v}",
        ),
        S(
            "installment_to_principal",
            "account",
            "share",
            "Latest installment amount divided by the principal.",
            partial(_installment_to, "principal"),
            nullable=True,
            reason="installment is {v} of the principal",
            reason_null="no installment due yet",
        ),
        S(
            "monthly_income",
            "account",
            "money",
            "Declared monthly income (optional column; null when absent).",
            partial(_account, "monthly_income"),
            nullable=True,
            reason="monthly income of {v}",
            reason_null="income not known",
        ),
        S(
            "age",
            "account",
            "years",
            "Age of the debtor in years (optional column; null when absent).",
            partial(_account, "age"),
            nullable=True,
            reason="aged {v}",
            reason_null="age not known",
        ),
        S(
            "installment_to_income",
            "account",
            "share",
            "Latest installment amount divided by the monthly income.",
            partial(_installment_to, "monthly_income"),
            nullable=True,
            reason="installment takes {v} of monthly income",
            reason_null="income not known",
        ),
        S(
            "arrears_to_income",
            "account",
            "ratio",
            "Arrears divided by the monthly income.",
            _arrears_to_income,
            nullable=True,
            reason="arrears {v} the monthly income",
            reason_zero="no arrears",
            reason_null="income not known",
        ),
        # -- offers --------------------------------------------------------
        _count_spec(
            "offer_count_365d",
            "offer",
            "Arrangements offered in the last 365 days.",
            partial(_offer_count, False, 365),
            "arrangement offered",
            "arrangements offered",
            "in the last 365 days",
            dtype="float64",
            nullable=True,
            reason_null="no offer history",
        ),
        _count_spec(
            "offer_accepted_count_365d",
            "offer",
            "Arrangements accepted in the last 365 days.",
            partial(_offer_count, True, 365),
            "arrangement accepted",
            "arrangements accepted",
            "in the last 365 days",
            dtype="float64",
            nullable=True,
            reason_null="no offer history",
        ),
        _count_spec(
            "offer_broken_count_365d",
            "offer",
            f"Arrangements accepted in the last 365 days with no payment in the {OFFER_FIRST_PAYMENT_DAYS} days after acceptance.",
            partial(_offer_broken_count, 365),
            "broken arrangement",
            "broken arrangements",
            "in the last 365 days",
            dtype="float64",
            nullable=True,
            reason_null="no offer history",
        ),
        S(
            "days_since_last_offer",
            "offer",
            "days",
            "Days since the last arrangement offered (null when none or no offers table).",
            _days_since_last_offer,
            nullable=True,
            reason="last offer made {v} days ago",
            reason_one="offer made yesterday",
            reason_null="no offer on record",
        ),
    ]
    return out


#: Every feature by name, in the fixed column order.
FEATURES: dict[str, FeatureSpec] = {spec.name: spec for spec in _specs()}
#: The feature columns, in the order shared by training and scoring.
FEATURE_COLUMNS: tuple[str, ...] = tuple(FEATURES)
#: One line per feature.
FEATURE_DESCRIPTIONS: dict[str, str] = {s.name: s.description for s in FEATURES.values()}
#: Categorical features and their fixed category lists.
CATEGORICAL_FEATURES: dict[str, tuple[str, ...]] = {"product": vocab.PRODUCTS}

#: Features that count time since the account opened. In a book opened over
#: a few months they grow one for one with the calendar, so a model learns the
#: date from them (and the date stands in for whatever drifted over the
#: training window) and their PSI fires on every scoring night. They stay in
#: the feature table for analysis but are left out of the model's columns.
CALENDAR_PROXIES: dict[str, str] = {
    "tenure_days": "days since opening: in a book opened over a few months it counts the "
    "calendar, not the debtor",
    "installments_due_count": "installments due since opening: one more each month for every "
    "account, a count of months since the book opened",
}
#: The columns the models are trained and scored on: the catalogue without the calendar proxies.
MODEL_COLUMNS: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in CALENDAR_PROXIES)
#: Model features whose distribution moves by construction as the book ages:
#: their PSI is reported but raises no drift alarm and is left out of the
#: gate's stability check (the score's own PSI and calibration still watch them).
DRIFT_EXEMPT: dict[str, str] = {
    "episode_days_current": "days in the current arrears episode: grows by one a day for every "
    "account that has not cured, so an ageing book shifts it month after month",
    "paid_ratio_all": "paid over due since opening: its distribution follows the book's age "
    "(more installments behind every account each month), not only its behaviour",
}

#: Known directions for the willingness head (P(any payment)): -1 = more of it never raises it.
MONOTONE_WILLINGNESS: dict[str, int] = {
    "dpd": -1,
    "dpd_max_180d": -1,
    "dpd_max_365d": -1,
    "episode_days_current": -1,
    "days_since_last_payment": -1,
    "promise_broken_count_90d": -1,
    "promise_broken_count_180d": -1,
    "refusal_count_90d": -1,
    "promise_kept_rate_180d": 1,
    "payment_count_90d": 1,
    "ontime_share_365d": 1,
}
#: Known directions for the ability head (P(covering the arrears | paying)).
MONOTONE_ABILITY: dict[str, int] = {
    "arrears": -1,
    "arrears_to_installment": -1,
    "arrears_to_income": -1,
    "installments_overdue": -1,
    "installment_to_income": -1,
    "monthly_income": 1,
}


def _fmt(kind: str, v: float) -> str:
    if kind == "money":
        return f"{v:,.2f}"
    if kind == "ratio":
        return f"{v:.1f}x"
    if kind == "share":
        return f"{v:.0%}"
    if kind == "delta":
        return f"{'up' if v >= 0 else 'down'} {abs(v) * 100:.0f} points"
    if kind == "years":
        return f"{v:.0f}"
    return f"{round(v):,d}"


def reason_text(feature: str, value: object) -> str:
    """Render a feature's value in words a collector understands.

    Parameters
    ----------
    feature : str
        A name from :data:`FEATURE_COLUMNS`.
    value : object
        The feature's value for one account (NaN/None when missing).

    Returns
    -------
    str
        For example "3 broken promises in the last 90 days".

    Raises
    ------
    KeyError
        When ``feature`` is not in the catalogue.

    Examples
    --------
    >>> reason_text("promise_broken_count_90d", 3)
    '3 broken promises in the last 90 days'
    >>> reason_text("days_since_last_payment", 74.0)
    'no payment for 74 days'
    >>> reason_text("arrears_to_installment", 2.4)
    'arrears 2.4x the monthly installment'
    >>> reason_text("days_since_last_payment", float("nan"))
    'no payment on record'
    """
    try:
        spec = FEATURES[feature]
    except KeyError:
        raise KeyError(
            f"unknown feature {feature!r}: see features.catalogue.FEATURE_COLUMNS"
        ) from None
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return spec.reason_null or f"{feature} unknown"
    if spec.kind == "category":
        return spec.reason.format(v=value)
    v = float(value)
    if spec.reason_zero is not None and abs(v) < 1e-12:
        return spec.reason_zero
    if spec.reason_one is not None and spec.kind in ("count", "days", "flag") and v == 1:
        return spec.reason_one
    return spec.reason.format(v=_fmt(spec.kind, v))


def catalogue_markdown() -> str:
    """Return the feature catalogue as Markdown (the source of ``docs/features.md``).

    Examples
    --------
    >>> catalogue_markdown().splitlines()[0]
    '# Feature catalogue'
    """
    lines = [
        "# Feature catalogue",
        "",
        "Generated by `features.catalogue.catalogue_markdown()`; do not edit by hand",
        '(regenerate with `python -c "from features.catalogue import catalogue_markdown; '
        "print(catalogue_markdown(), end='')\" > docs/features.md`).",
        "",
        "Every feature of an account for as-of date D reads only events strictly",
        "before D: payments with `paid_at < D`, contacts with `contact_at < D`, offers",
        "with `offered_at < D`, installments due before D. An event feature over `w` days",
        "reads events in `[D - w days, D)`; a state feature over `w` days (worst DPD,",
        "episodes) reads the as-of days `D - w .. D`. Payments are applied to the oldest",
        "installment first; an installment counts as unpaid while the shortfall up to it",
        f"exceeds the materiality threshold (default {vocab.DEFAULT_MATERIALITY:.2f}).",
        "Features that use an optional column or the optional offers table are null when",
        "it is absent.",
        "",
        f"{len(FEATURE_COLUMNS)} features, in the column order shared by training and scoring.",
    ]
    for group, title in GROUPS.items():
        lines += ["", f"## {title}", "", "| # | feature | type | range | description |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for i, name in enumerate(FEATURE_COLUMNS, start=1):
            spec = FEATURES[name]
            if spec.group != group:
                continue
            lo = "-inf" if spec.minimum is None else f"{spec.minimum:g}"
            hi = "inf" if spec.maximum is None else f"{spec.maximum:g}"
            rng = "categories" if spec.dtype == "category" else f"[{lo}, {hi}]"
            null = ", nullable" if spec.nullable else ""
            lines.append(f"| {i} | `{name}` | {spec.dtype}{null} | {rng} | {spec.description} |")
    lines += ["", "## Categories", ""]
    for name, cats in CATEGORICAL_FEATURES.items():
        lines.append(f"- `{name}`: " + ", ".join(f"`{c}`" for c in cats))
    for title, table in (
        ("willingness", MONOTONE_WILLINGNESS),
        ("ability", MONOTONE_ABILITY),
    ):
        lines += ["", f"## Monotone directions, {title} head", ""]
        lines += [
            f"- `{name}`: {'increasing' if sign > 0 else 'decreasing'}"
            for name, sign in table.items()
        ]
    lines += ["", "## Reason texts (examples)", ""]
    for name, value in (
        ("promise_broken_count_90d", 3),
        ("days_since_last_payment", 74),
        ("arrears_to_installment", 2.4),
        ("rpc_rate_30d", 0.25),
        ("paid_ratio_trend_90d", -0.4),
    ):
        lines.append(f'- `{name}` = {value}: "{reason_text(name, value)}"')
    return "\n".join(lines) + "\n"
