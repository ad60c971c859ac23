"""Small explicit factories of contract tables (3-10 rows) for unit tests."""

from __future__ import annotations

import pandas as pd


def utc(*values: str) -> pd.Series:
    """Timestamps in UTC from ISO strings."""
    return pd.Series(pd.to_datetime(list(values), utc=True), dtype="datetime64[ns, UTC]")


def dates(*values: str | None) -> pd.Series:
    """Tz-naive midnight dates from ISO strings (None -> NaT)."""
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


def accounts(n: int = 3, **overrides: list) -> pd.DataFrame:
    """``n`` valid accounts A1..An (all flags false), with column overrides."""
    df = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(1, n + 1)],
            "customer_id": [f"C{i}" for i in range(1, n + 1)],
            "product": ["personal_loan"] * n,
            "opened_date": dates(*["2023-01-15"] * n),
            "principal": [1200.0] * n,
            "currency": ["USD"] * n,
            "timezone": ["America/New_York"] * n,
            "do_not_contact": [False] * n,
            "cease_communication": [False] * n,
            "dispute_open": [False] * n,
            "hardship": [False] * n,
            "deceased": [False] * n,
            "bankruptcy": [False] * n,
        }
    )
    for col, values in overrides.items():
        df[col] = values
    return df


def installments(account_ids: list[str] | None = None, n: int = 3) -> pd.DataFrame:
    """``n`` monthly installments of 100.0 per account, due on the 1st from 2024-01-01."""
    account_ids = account_ids or ["A1", "A2", "A3"]
    due = pd.date_range("2024-01-01", periods=n, freq="MS")
    return pd.DataFrame(
        {
            "account_id": [a for a in account_ids for _ in range(n)],
            "installment_no": [i for _ in account_ids for i in range(1, n + 1)],
            "due_date": pd.Series(list(due) * len(account_ids), dtype="datetime64[ns]"),
            "amount_due": [100.0] * (n * len(account_ids)),
        }
    ).astype({"installment_no": "int64"})


def payments() -> pd.DataFrame:
    """Three valid payments."""
    return pd.DataFrame(
        {
            "payment_id": ["P1", "P2", "P3"],
            "account_id": ["A1", "A1", "A2"],
            "paid_at": utc("2024-01-01T10:00:00", "2024-02-03T09:30:00", "2024-01-20T12:00:00"),
            "amount": [100.0, 50.0, 100.0],
            "channel": ["bank_transfer", "card", "direct_debit"],
        }
    )


def contacts() -> pd.DataFrame:
    """Three valid contacts, one of them a promise to pay."""
    return pd.DataFrame(
        {
            "contact_id": ["K1", "K2", "K3"],
            "account_id": ["A1", "A2", "A3"],
            "contact_at": utc("2024-02-05T14:00:00", "2024-02-06T15:00:00", "2024-02-07T16:00:00"),
            "channel": ["call", "sms", "call"],
            "direction": ["outbound", "outbound", "outbound"],
            "outcome": ["promise_to_pay", "delivered", "no_answer"],
            "promised_amount": [50.0, None, None],
            "promised_date": dates("2024-02-10", None, None),
            "agent_id": ["ag1", None, "ag2"],
        }
    )


def offers() -> pd.DataFrame:
    """Two valid offers."""
    return pd.DataFrame(
        {
            "offer_id": ["O1", "O2"],
            "account_id": ["A1", "A3"],
            "offered_at": utc("2024-02-05T14:05:00", "2024-02-08T10:00:00"),
            "offer_type": ["installment_plan", "settlement"],
            "accepted": [True, False],
            "discount_pct": [None, 20.0],
            "n_installments": pd.array([6, None], dtype="Int64"),
        }
    )


def tables() -> dict[str, pd.DataFrame]:
    """A complete, valid set of the five contract tables."""
    return {
        "accounts": accounts(),
        "installments": installments(),
        "payments": payments(),
        "contacts": contacts(),
        "offers": offers(),
    }


def payment_rows(*rows: tuple[str, str, float]) -> pd.DataFrame:
    """Payments from (account_id, paid_at as an ISO string in UTC, amount), ids P0, P1, ..."""
    return pd.DataFrame(
        {
            "payment_id": [f"P{i}" for i in range(len(rows))],
            "account_id": [r[0] for r in rows],
            "paid_at": pd.Series(pd.to_datetime([r[1] for r in rows], utc=True)).astype(
                "datetime64[ns, UTC]"
            ),
            "amount": [float(r[2]) for r in rows],
            "channel": ["card"] * len(rows),
        }
    )
