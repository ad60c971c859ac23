"""Repayment-history features: arrears, DPD, episodes, payments, paid ratios."""

from __future__ import annotations

from functools import partial

import numpy as np

from features.catalogue.base import FeatureSpec, count_spec
from features.context import AsOfContext, safe_divide
from features.prepare import AMOUNT_TOL, DAY_NS, NAT_NS


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


def specs() -> list[FeatureSpec]:
    """Return the repayment features, in their fixed column order."""
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
        count_spec(
            "installments_overdue",
            "repayment",
            "Installments due before D still unpaid beyond materiality at D.",
            partial(_ledger, "installments_overdue"),
            "installment overdue",
            "installments overdue",
            "",
        ),
        count_spec(
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
    for name, days in (("dpd_max_180d", 180), ("dpd_max_365d", 365)):
        out.append(
            S(
                name,
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
    for name, min_dpd, days in (
        ("episodes_30plus_count_180d", 30, 180),
        ("episodes_60plus_count_180d", 60, 180),
        ("episodes_90plus_count_180d", 90, 180),
        ("episodes_30plus_count_365d", 30, 365),
        ("episodes_60plus_count_365d", 60, 365),
        ("episodes_90plus_count_365d", 90, 365),
    ):
        out.append(
            count_spec(
                name,
                "repayment",
                f"Delinquency episodes active in the last {days} days whose worst DPD reached {min_dpd}.",
                partial(_episode_count, min_dpd, days),
                f"episode of {min_dpd}+ days past due",
                f"episodes of {min_dpd}+ days past due",
                f"in the last {days} days",
            )
        )
    out += [
        count_spec(
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
    for name, days in (
        ("payment_count_30d", 30),
        ("payment_count_90d", 90),
        ("payment_count_180d", 180),
    ):
        out.append(
            count_spec(
                name,
                "repayment",
                f"Payments made in the last {days} days.",
                partial(_payment_count, days),
                "payment",
                "payments",
                f"in the last {days} days",
            )
        )
    for name, days in (("payment_sum_30d", 30), ("payment_sum_90d", 90), ("payment_sum_180d", 180)):
        out.append(
            S(
                name,
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
    for name, days in (("paid_ratio_90d", 90), ("paid_ratio_180d", 180), ("paid_ratio_365d", 365)):
        out.append(
            S(
                name,
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
        count_spec(
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
    return out
