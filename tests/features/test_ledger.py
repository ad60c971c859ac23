"""The point-in-time ledger on hand-built schedules, every figure worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import payment_rows as pays

from features.ledger import (
    build_ledger,
    delinquency_episodes,
    installment_states,
    promise_states,
)
from features.promises import promise_deadline


def schedule(*rows: tuple[str, int, str, float]) -> pd.DataFrame:
    """Installments from (account, installment_no, due_date, amount_due)."""
    return pd.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "installment_no": pd.Series([r[1] for r in rows], dtype="int64"),
            "due_date": pd.Series(pd.to_datetime([r[2] for r in rows]), dtype="datetime64[ns]"),
            "amount_due": [float(r[3]) for r in rows],
        }
    )


def accounts(*ids: str) -> pd.DataFrame:
    return pd.DataFrame({"account_id": list(ids)})


THREE = schedule(
    ("A", 1, "2024-01-01", 100), ("A", 2, "2024-02-01", 100), ("A", 3, "2024-03-01", 100)
)


def test_oldest_first_allocation_with_a_partial_payment():
    # 100 paid on the first due date, then 60 on 10 Feb: installment 1 is paid,
    # installment 2 carries 60 of its 100, installment 3 nothing.
    payments = pays(("A", "2024-01-01T10:00", 100), ("A", "2024-02-10T12:00", 60))
    led = build_ledger(accounts("A"), THREE, payments, "2024-03-15").iloc[0]
    assert led.due_to_date == 300.0
    assert led.paid_to_date == 160.0
    assert led.arrears == 140.0
    # Oldest unpaid is installment 2, due 1 Feb: 29 days of February 2024 + 14 of March.
    assert led.dpd == 43
    assert led.oldest_unpaid_due == pd.Timestamp("2024-02-01")
    assert led.installments_overdue == 2
    assert led.overdue
    states = installment_states(THREE, payments, "2024-03-15")
    assert states["paid_amount"].tolist() == [100.0, 60.0, 0.0]
    assert states["state"].tolist() == ["paid", "partial", "unpaid"]
    assert states["fully_paid_at"].iloc[0] == pd.Timestamp("2024-01-01T10:00", tz="UTC")
    assert states["fully_paid_at"].iloc[1:].isna().all()
    # Paid on its due date (10:00) is on time.
    assert states["paid_on_time"].tolist() == [True, False, False]


def test_overpayment_pays_the_next_installments_in_advance():
    payments = pays(("A", "2024-01-01T10:00", 250))
    led = build_ledger(accounts("A"), THREE, payments, "2024-02-15").iloc[0]
    assert (led.due_to_date, led.paid_to_date, led.arrears, led.dpd) == (200.0, 250.0, 0.0, 0)
    assert not led.overdue
    assert pd.isna(led.oldest_unpaid_due)
    states = installment_states(THREE, payments, "2024-02-15")
    assert states["is_due"].tolist() == [True, True, False]
    assert states["paid_amount"].tolist() == [100.0, 100.0, 50.0]
    assert states["state"].tolist() == ["paid", "paid", "partial"]
    assert states["fully_paid_at"].iloc[1] == pd.Timestamp("2024-01-01T10:00", tz="UTC")


def test_payment_at_exactly_d_midnight_belongs_to_d_not_to_the_ledger_of_d():
    sched = schedule(("A", 1, "2024-01-01", 100))
    at_midnight = pays(("A", "2024-02-01T00:00:00", 100))
    led = build_ledger(accounts("A"), sched, at_midnight, "2024-02-01").iloc[0]
    assert (led.arrears, led.dpd) == (100.0, 31)
    led = build_ledger(accounts("A"), sched, at_midnight, "2024-02-02").iloc[0]
    assert (led.arrears, led.dpd) == (0.0, 0)
    just_before = pays(("A", "2024-01-31T23:59:59", 100))
    led = build_ledger(accounts("A"), sched, just_before, "2024-02-01").iloc[0]
    assert (led.arrears, led.dpd) == (0.0, 0)


def test_installment_due_on_d_is_not_yet_due_and_due_the_day_before_is_one_day_past_due():
    sched = schedule(("A", 1, "2024-01-31", 100), ("B", 1, "2024-02-01", 100))
    led = build_ledger(accounts("A", "B"), sched, pays(), "2024-02-01")
    assert led["arrears"].tolist() == [100.0, 0.0]
    assert led["dpd"].tolist() == [1, 0]


def test_materiality_residue_is_current_and_zero_materiality_follows_oldest_first():
    sched = schedule(("A", 1, "2024-01-01", 100), ("A", 2, "2024-02-01", 100))
    payments = pays(("A", "2024-01-01T09:00", 99.5), ("A", "2024-02-01T09:00", 100))
    led = build_ledger(accounts("A"), sched, payments, "2024-03-01").iloc[0]
    assert led.arrears == pytest.approx(0.5)
    assert (led.dpd, led.installments_overdue, led.overdue) == (0, 0, False)
    # Without materiality the second payment completes installment 1 and leaves
    # 0.50 on installment 2: DPD counts from 1 Feb, not from 1 Jan.
    led = build_ledger(accounts("A"), sched, payments, "2024-03-01", materiality=0).iloc[0]
    assert (led.dpd, led.installments_overdue, bool(led.overdue)) == (29, 1, True)


def test_accounts_without_schedule_or_payments_are_current_and_kept_in_order():
    led = build_ledger(accounts("Z", "A"), THREE, pays(), "2024-02-15")
    assert led["account_id"].tolist() == ["Z", "A"]
    assert led["arrears"].tolist() == [0.0, 200.0]
    assert led["dpd"].tolist() == [0, 45]


def test_negative_materiality_is_refused():
    with pytest.raises(ValueError, match="materiality"):
        build_ledger(accounts("A"), THREE, pays(), "2024-02-15", materiality=-1)


def test_as_of_with_a_time_of_day_is_refused():
    with pytest.raises(ValueError, match="midnight"):
        build_ledger(accounts("A"), THREE, pays(), "2024-02-15 12:00")


def test_episodes_start_end_and_worst_dpd():
    sched = schedule(
        ("A", 1, "2024-01-01", 100),
        ("A", 2, "2024-02-01", 100),
        ("A", 3, "2024-03-01", 100),
        ("A", 4, "2024-04-01", 100),
    )
    payments = pays(("A", "2024-01-11T09:00", 100), ("A", "2024-03-20T10:00", 200))
    ep = delinquency_episodes(sched, payments, "2024-04-20")
    # 1: installment 1 late 2 Jan .. 11 Jan (10 days). 2: installments 2 and 3,
    # 2 Feb .. 20 Mar, worst on 20 Mar = 29 + 19 = 48 days after 1 Feb.
    # 3: installment 4 unpaid since 2 Apr, 19 days past due on 20 Apr.
    assert ep["episode_no"].tolist() == [1, 2, 3]
    assert ep["start"].dt.strftime("%m-%d").tolist() == ["01-02", "02-02", "04-02"]
    assert ep["end"].iloc[:2].dt.strftime("%m-%d").tolist() == ["01-11", "03-20"]
    assert pd.isna(ep["end"].iloc[2])
    assert ep["worst_dpd"].tolist() == [10, 48, 19]
    assert ep["is_open"].tolist() == [False, False, True]


def test_a_cure_the_day_before_the_next_missed_due_date_continues_the_episode():
    sched = schedule(("A", 1, "2024-01-01", 100), ("A", 2, "2024-02-01", 100))
    # Paid 1 Feb 10:00: as of 1 Feb installment 1 is still unpaid, as of 2 Feb
    # installment 2 is: no current day between, one episode.
    payments = pays(("A", "2024-02-01T10:00", 100))
    ep = delinquency_episodes(sched, payments, "2024-02-20")
    assert len(ep) == 1
    assert ep["start"].iloc[0] == pd.Timestamp("2024-01-02")
    assert ep["worst_dpd"].iloc[0] == 31
    assert bool(ep["is_open"].iloc[0])


def test_episodes_ignore_events_on_or_after_d():
    sched = schedule(("A", 1, "2024-01-01", 100), ("A", 2, "2024-02-01", 100))
    payments = pays(("A", "2024-01-21T00:00", 100))
    ep = delinquency_episodes(sched, payments, "2024-01-21")
    assert ep["worst_dpd"].tolist() == [20]
    assert ep["is_open"].tolist() == [True]


def promises(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    """Promise-to-pay contacts from (account, contact_at UTC, promised_amount, promised_date)."""
    n = len(rows)
    return pd.DataFrame(
        {
            "contact_id": [f"K{i}" for i in range(n)],
            "account_id": [r[0] for r in rows],
            "contact_at": pd.Series(pd.to_datetime([r[1] for r in rows], utc=True)).astype(
                "datetime64[ns, UTC]"
            ),
            "channel": ["call"] * n,
            "direction": ["outbound"] * n,
            "outcome": ["promise_to_pay"] * n,
            "promised_amount": [float(r[2]) for r in rows],
            "promised_date": pd.Series(
                pd.to_datetime([r[3] for r in rows]), dtype="datetime64[ns]"
            ),
            "agent_id": [None] * n,
        }
    )


def test_promise_deadline_is_the_end_of_promised_date_plus_three_days():
    assert promise_deadline(pd.Timestamp("2024-02-05")) == pd.Timestamp("2024-02-09")


def test_promise_states_kept_at_ninety_percent_broken_and_pending():
    con = promises(
        ("K", "2024-02-01T10:00", 100, "2024-02-05"),  # 90.00 on 8 Feb 23:00: kept
        ("B", "2024-02-01T10:00", 100, "2024-02-05"),  # 89.99: broken
        ("P", "2024-02-10T10:00", 100, "2024-02-18"),  # grace ends 22 Feb > D: pending
        ("L", "2024-02-01T10:00", 100, "2024-02-05"),  # paid at the deadline itself: broken
        ("E", "2024-02-01T10:00", 100, "2024-02-05"),  # paid before the promise: broken
        ("Q", "2024-02-15T10:00", 100, "2024-02-25"),  # kept early, before its date
        ("F", "2024-02-15T10:00", 100, "2024-02-19"),  # paid on D: not seen yet, pending
    )
    payments = pays(
        ("K", "2024-02-08T23:00", 90.0),
        ("B", "2024-02-08T23:00", 89.99),
        ("L", "2024-02-09T00:00", 100),
        ("E", "2024-02-01T09:00", 100),
        ("Q", "2024-02-19T08:00", 100),
        ("F", "2024-02-20T10:00", 100),
    )
    st = promise_states(con, payments, "2024-02-20")
    assert st["state"].tolist() == [
        "kept",
        "broken",
        "pending",
        "broken",
        "broken",
        "kept",
        "pending",
    ]
    np.testing.assert_allclose(st["paid_toward"], [90.0, 89.99, 0.0, 0.0, 0.0, 100.0, 0.0])


def test_a_pending_promise_becomes_broken_once_its_grace_has_passed():
    con = promises(("P", "2024-02-10T10:00", 100, "2024-02-18"))
    # The window runs to the end of 21 Feb (18 Feb + 3 days).
    assert promise_states(con, pays(), "2024-02-21")["state"].tolist() == ["pending"]
    assert promise_states(con, pays(), "2024-02-22")["state"].tolist() == ["broken"]
    # A promise made on D is not known at D.
    assert promise_states(con, pays(), "2024-02-10").empty
