"""Contact-log features: attempts by channel, right-party contacts, promises, outcomes."""

from __future__ import annotations

from functools import partial

import numpy as np

from features import vocab
from features.catalogue.base import FeatureSpec, count_spec
from features.context import AsOfContext, safe_divide
from features.prepare import DAY_NS

#: Per outcome code, whether it is a right-party contact; the last entry is an unknown outcome (-1).
_RPC = np.array([o in vocab.RPC_OUTCOMES for o in vocab.OUTCOMES] + [False])


def _con_window(days: int, ctx: AsOfContext) -> np.ndarray:
    return ctx.memo(("con_window", days), lambda: ctx.window(ctx.contacts.age, days))


def _rpc(ctx: AsOfContext) -> np.ndarray:
    return ctx.memo("rpc", lambda: _RPC[ctx.contacts.outcome])


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


def specs() -> list[FeatureSpec]:
    """Return the contact features, in their fixed column order."""
    S = FeatureSpec
    out: list[FeatureSpec] = []
    for name, days in (
        ("attempt_count_7d", 7),
        ("attempt_count_30d", 30),
        ("attempt_count_90d", 90),
    ):
        out.append(
            count_spec(
                name,
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
    for name, channel, days in (
        ("call_attempt_count_7d", "call", 7),
        ("call_attempt_count_30d", "call", 30),
        ("call_attempt_count_90d", "call", 90),
        ("sms_attempt_count_7d", "sms", 7),
        ("sms_attempt_count_30d", "sms", 30),
        ("sms_attempt_count_90d", "sms", 90),
        ("email_attempt_count_7d", "email", 7),
        ("email_attempt_count_30d", "email", 30),
        ("email_attempt_count_90d", "email", 90),
        ("letter_attempt_count_7d", "letter", 7),
        ("letter_attempt_count_30d", "letter", 30),
        ("letter_attempt_count_90d", "letter", 90),
        ("visit_attempt_count_7d", "visit", 7),
        ("visit_attempt_count_30d", "visit", 30),
        ("visit_attempt_count_90d", "visit", 90),
        ("app_push_attempt_count_7d", "app_push", 7),
        ("app_push_attempt_count_30d", "app_push", 30),
        ("app_push_attempt_count_90d", "app_push", 90),
    ):
        one, many = nouns[channel]
        out.append(
            count_spec(
                name,
                "contact",
                f"Outbound {channel} attempts in the last {days} days.",
                partial(_channel_attempt_count, channel, days),
                one,
                many,
                f"in the last {days} days",
            )
        )
    for name, days in (("rpc_count_30d", 30), ("rpc_count_90d", 90)):
        out.append(
            count_spec(
                name,
                "contact",
                f"Right-party contacts (either direction) in the last {days} days.",
                partial(_rpc_count, days),
                "conversation with the debtor",
                "conversations with the debtor",
                f"in the last {days} days",
            )
        )
    for name, days in (("rpc_rate_30d", 30), ("rpc_rate_90d", 90)):
        out.append(
            S(
                name,
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
    for name, days in (("inbound_count_30d", 30), ("inbound_count_90d", 90)):
        out.append(
            S(
                name,
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
        count_spec(
            "sms_reply_count_90d",
            "contact",
            "SMS replies from the debtor in the last 90 days.",
            partial(_sms_reply_count, 90),
            "SMS reply",
            "SMS replies",
            "in the last 90 days",
        )
    )
    for made, kept, broken, days in (
        ("promise_count_90d", "promise_kept_count_90d", "promise_broken_count_90d", 90),
        ("promise_count_180d", "promise_kept_count_180d", "promise_broken_count_180d", 180),
    ):
        out += [
            count_spec(
                made,
                "contact",
                f"Promises to pay made in the last {days} days.",
                partial(_promise_count, "made", days),
                "promise to pay",
                "promises to pay",
                f"in the last {days} days",
            ),
            count_spec(
                kept,
                "contact",
                f"Promises made in the last {days} days and kept by D.",
                partial(_promise_count, "kept", days),
                "kept promise",
                "kept promises",
                f"in the last {days} days",
            ),
            count_spec(
                broken,
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
        count_spec(
            "refusal_count_90d",
            "contact",
            "Contacts in the last 90 days where the debtor refused to pay.",
            partial(_outcome_count, "refused", 90),
            "refusal to pay",
            "refusals to pay",
            "in the last 90 days",
        ),
        count_spec(
            "wrong_number_count_90d",
            "contact",
            "Contacts in the last 90 days that reached a wrong number.",
            partial(_outcome_count, "wrong_number", 90),
            "wrong number",
            "wrong numbers",
            "in the last 90 days",
        ),
        count_spec(
            "dispute_count_365d",
            "contact",
            "Contacts in the last 365 days where the debtor disputed the debt.",
            partial(_outcome_count, "dispute", 365),
            "dispute raised",
            "disputes raised",
            "in the last 365 days",
        ),
        count_spec(
            "hardship_count_365d",
            "contact",
            "Contacts in the last 365 days where the debtor claimed hardship.",
            partial(_outcome_count, "hardship", 365),
            "hardship claim",
            "hardship claims",
            "in the last 365 days",
        ),
    ]
    return out
