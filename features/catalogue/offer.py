"""Offer features: arrangements offered, accepted and broken (null without an offers table)."""

from __future__ import annotations

from functools import partial

import numpy as np

from features.catalogue.base import FeatureSpec, count_spec
from features.context import AsOfContext
from features.prepare import AMOUNT_TOL, DAY_NS

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


def specs() -> list[FeatureSpec]:
    """Return the offer features, in their fixed column order."""
    S = FeatureSpec
    out: list[FeatureSpec] = [
        count_spec(
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
        count_spec(
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
        count_spec(
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
