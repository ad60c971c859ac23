"""Proof of point in time: events on or after D never change a feature for D.

Hypothesis draws a small random portfolio (three accounts, events on both
sides of D), then appends random payments, contacts, offers and installments
dated on or after D, shuffles the rows, and checks that the feature table for
D is identical. A second law: labels read only their horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import vocab
from features.build import build_features
from features.labels import build_labels

D = pd.Timestamp("2024-03-01")
DAY_S = 86_400
ACCOUNTS = ("A1", "A2", "A3")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

account = st.sampled_from(ACCOUNTS)
amount = st.sampled_from([0.5, 10.0, 45.5, 90.0, 100.0, 250.0, 1000.0])
# Seconds relative to D; 0 (exactly D midnight) and -1 are drawn often on purpose.
any_time = st.one_of(st.sampled_from([0, -1, -DAY_S]), st.integers(-400 * DAY_S, 60 * DAY_S))
after_d = st.one_of(st.just(0), st.integers(0, 90 * DAY_S))

payment = st.tuples(account, any_time, amount)
contact = st.tuples(
    account,
    any_time,
    st.sampled_from(vocab.CONTACT_CHANNELS),
    st.sampled_from(vocab.DIRECTIONS),
    st.sampled_from(vocab.OUTCOMES),
    amount,
    st.integers(0, 10),
)
offer = st.tuples(account, any_time, st.booleans())
schedule = st.tuples(account, st.integers(-400, -1), st.integers(1, 8), amount)


def ts(seconds: list[int]) -> pd.Series:
    values = [D.tz_localize("UTC") + pd.Timedelta(seconds=s) for s in seconds]
    return pd.Series(pd.DatetimeIndex(values, tz="UTC"), dtype="datetime64[ns, UTC]")


def payments_frame(rows, prefix="P") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "payment_id": [f"{prefix}{i}" for i in range(len(rows))],
            "account_id": pd.Series([r[0] for r in rows], dtype=object),
            "paid_at": ts([r[1] for r in rows]),
            "amount": pd.Series([r[2] for r in rows], dtype="float64"),
            "channel": pd.Series(["card"] * len(rows), dtype=object),
        }
    )


def contacts_frame(rows, prefix="K") -> pd.DataFrame:
    at = ts([r[1] for r in rows])
    promise = [r[4] == "promise_to_pay" for r in rows]
    promised_date = [
        (t.tz_localize(None).normalize() + pd.Timedelta(days=r[6])) if p else pd.NaT
        for t, r, p in zip(at, rows, promise, strict=True)
    ]
    return pd.DataFrame(
        {
            "contact_id": [f"{prefix}{i}" for i in range(len(rows))],
            "account_id": pd.Series([r[0] for r in rows], dtype=object),
            "contact_at": at,
            "channel": pd.Series([r[2] for r in rows], dtype=object),
            "direction": pd.Series([r[3] for r in rows], dtype=object),
            "outcome": pd.Series([r[4] for r in rows], dtype=object),
            "promised_amount": pd.Series(
                [r[5] if p else np.nan for r, p in zip(rows, promise, strict=True)], dtype="float64"
            ),
            "promised_date": pd.Series(promised_date, dtype="datetime64[ns]"),
            "agent_id": pd.Series([None] * len(rows), dtype=object),
        }
    )


def offers_frame(rows, prefix="O") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "offer_id": [f"{prefix}{i}" for i in range(len(rows))],
            "account_id": pd.Series([r[0] for r in rows], dtype=object),
            "offered_at": ts([r[1] for r in rows]),
            "offer_type": pd.Series(["extension"] * len(rows), dtype=object),
            "accepted": pd.Series([r[2] for r in rows], dtype=bool),
            "discount_pct": pd.Series([np.nan] * len(rows), dtype="float64"),
            "n_installments": pd.array([pd.NA] * len(rows), dtype="Int64"),
        }
    )


def installments_frame(rows) -> pd.DataFrame:
    """Monthly schedules from (account, first due in days from D, count, amount); one per account."""
    out = []
    for acc, start, count, amt in {r[0]: r for r in rows}.values():
        due = pd.date_range(D + pd.Timedelta(days=start), periods=count, freq="30D")
        out += [(acc, i + 1, d, amt) for i, d in enumerate(due)]
    return pd.DataFrame(
        {
            "account_id": pd.Series([r[0] for r in out], dtype=object),
            "installment_no": pd.Series([r[1] for r in out], dtype="int64"),
            "due_date": pd.Series([r[2] for r in out], dtype="datetime64[ns]"),
            "amount_due": pd.Series([r[3] for r in out], dtype="float64"),
        }
    )


def accounts_frame() -> pd.DataFrame:
    n = len(ACCOUNTS)
    return pd.DataFrame(
        {
            "account_id": pd.Series(ACCOUNTS, dtype=object),
            "customer_id": pd.Series(ACCOUNTS, dtype=object),
            "product": pd.Series(["microloan", "bnpl", "mortgage"], dtype=object),
            "opened_date": pd.Series([D - pd.Timedelta(days=500)] * n, dtype="datetime64[ns]"),
            "principal": [1000.0, 500.0, 90000.0],
            "monthly_income": [2000.0, np.nan, 5000.0],
            "age": [30.0, 45.0, np.nan],
        }
    )


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    order = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


@SETTINGS
@given(
    schedules=st.lists(schedule, min_size=1, max_size=3),
    pays=st.lists(payment, max_size=10),
    cons=st.lists(contact, max_size=12),
    offs=st.lists(offer, max_size=4),
    late_pays=st.lists(st.tuples(account, after_d, amount), max_size=5),
    late_cons=st.lists(
        st.tuples(
            account,
            after_d,
            st.sampled_from(vocab.CONTACT_CHANNELS),
            st.sampled_from(vocab.DIRECTIONS),
            st.sampled_from(vocab.OUTCOMES),
            amount,
            st.integers(0, 10),
        ),
        max_size=5,
    ),
    late_offs=st.lists(st.tuples(account, after_d, st.booleans()), max_size=3),
    late_inst=st.lists(st.tuples(account, st.integers(0, 120), amount), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_events_on_or_after_d_never_change_a_feature_for_d(
    schedules, pays, cons, offs, late_pays, late_cons, late_offs, late_inst, seed
):
    base = {
        "accounts": accounts_frame(),
        "installments": installments_frame(schedules),
        "payments": payments_frame(pays),
        "contacts": contacts_frame(cons),
        "offers": offers_frame(offs),
    }
    extra_inst = pd.DataFrame(
        {
            "account_id": pd.Series([r[0] for r in late_inst], dtype=object),
            "installment_no": pd.Series(range(100, 100 + len(late_inst)), dtype="int64"),
            "due_date": pd.Series(
                [D + pd.Timedelta(days=r[1]) for r in late_inst], dtype="datetime64[ns]"
            ),
            "amount_due": pd.Series([r[2] for r in late_inst], dtype="float64"),
        }
    )
    more = {
        "accounts": base["accounts"],
        "installments": shuffled(pd.concat([base["installments"], extra_inst]), seed),
        "payments": shuffled(pd.concat([base["payments"], payments_frame(late_pays, "LP")]), seed),
        "contacts": shuffled(pd.concat([base["contacts"], contacts_frame(late_cons, "LK")]), seed),
        "offers": shuffled(pd.concat([base["offers"], offers_frame(late_offs, "LO")]), seed),
    }
    before = build_features(base, D, overdue_only=False)
    after = build_features(more, D, overdue_only=False, validate=False)
    pd.testing.assert_frame_equal(before, after)
    assert len(before) == len(ACCOUNTS)


@SETTINGS
@given(
    schedules=st.lists(schedule, min_size=1, max_size=3),
    pays=st.lists(payment, max_size=10),
    cons=st.lists(contact, max_size=12),
    offs=st.lists(offer, max_size=4),
    materiality=st.sampled_from([0.0, 1.0, 50.0]),
    seed=st.integers(0, 2**16),
)
def test_the_overdue_population_has_the_features_computed_over_every_account(
    schedules, pays, cons, offs, materiality, seed
):
    # build_features prepares and computes only the accounts overdue at D; their rows must
    # equal the rows of the same accounts computed together with every other account.
    tables = {
        "accounts": accounts_frame(),
        "installments": shuffled(installments_frame(schedules), seed),
        "payments": shuffled(payments_frame(pays), seed),
        "contacts": shuffled(contacts_frame(cons), seed),
        "offers": shuffled(offers_frame(offs), seed),
    }
    everyone = build_features(tables, D, materiality=materiality, overdue_only=False)
    overdue = build_features(tables, D, materiality=materiality)
    expected = everyone[everyone["arrears"] > max(materiality, 1e-6)].reset_index(drop=True)
    pd.testing.assert_frame_equal(overdue, expected, check_exact=True)


@SETTINGS
@given(
    inside=st.lists(st.tuples(account, st.integers(0, 30 * DAY_S - 1), amount), max_size=6),
    outside=st.lists(
        st.tuples(
            account,
            st.one_of(st.integers(-400 * DAY_S, -1), st.integers(30 * DAY_S, 90 * DAY_S)),
            amount,
        ),
        max_size=6,
    ),
)
def test_labels_read_only_the_horizon(inside, outside):
    snaps = pd.DataFrame(
        {
            "account_id": pd.Series(ACCOUNTS, dtype=object),
            "as_of_date": pd.Series([D] * 3, dtype="datetime64[ns]"),
            "arrears": [100.0, 200.0, 300.0],
        }
    )
    lab = build_labels(snaps, payments_frame(inside))
    pd.testing.assert_frame_equal(lab, build_labels(snaps, payments_frame(inside + outside, "Q")))
    expected = [sum(r[2] for r in inside if r[0] == a) for a in ACCOUNTS]
    np.testing.assert_allclose(lab["paid_amount"], expected)
    assert lab["paid_any"].tolist() == [int(x > 0) for x in expected]
