"""The point-in-time ledger as DataFrames: arrears, DPD, installments, episodes, promises at D.

The rules, and the arrays that apply them to every account at once, live in
:mod:`features.clearing` (what is read before D, payments applied oldest
installment first), :mod:`features.arrears` (arrears, materiality, DPD),
:mod:`features.episodes` (delinquency episodes) and :mod:`features.promises`
(promises kept, pending or broken). This module turns them into the
DataFrames the notebooks, the simulator and the tests read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import vocab
from features.arrears import effective_threshold, ledger_arrays
from features.clearing import ALWAYS_NS, NEVER_NS, due_before, paid_before
from features.episodes import episode_arrays
from features.groups import group_starts
from features.prepare import AMOUNT_TOL, DAY_NS, NAT_NS, Prepared, as_of_timestamp, prepare_tables
from features.promises import promise_arrays


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


_EMPTY_INSTALLMENTS = {
    "account_id": "object",
    "installment_no": "int64",
    "due_date": "datetime64[ns]",
    "amount_due": "float64",
}
_EMPTY_PAYMENTS = {"account_id": "object", "paid_at": "datetime64[ns, UTC]", "amount": "float64"}
_EMPTY_CONTACTS = {
    "account_id": "object",
    "contact_at": "datetime64[ns, UTC]",
    "channel": "object",
    "direction": "object",
    "outcome": "object",
    "promised_amount": "float64",
    "promised_date": "datetime64[ns]",
}


def prepare_partial(
    account_ids: pd.Series | np.ndarray,
    installments: pd.DataFrame | None = None,
    payments: pd.DataFrame | None = None,
    contacts: pd.DataFrame | None = None,
) -> Prepared:
    """Prepare the tables a ledger function needs; the others are empty."""
    ids = pd.Series(account_ids, dtype=object).reset_index(drop=True)
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "product": pd.Series([None] * len(ids), dtype=object),
            "opened_date": pd.Series(pd.NaT, index=ids.index, dtype="datetime64[ns]"),
            "principal": np.nan,
        }
    )
    return prepare_tables(
        {
            "accounts": accounts,
            "installments": installments
            if installments is not None
            else _empty(_EMPTY_INSTALLMENTS),
            "payments": payments if payments is not None else _empty(_EMPTY_PAYMENTS),
            "contacts": contacts if contacts is not None else _empty(_EMPTY_CONTACTS),
        }
    )


def _ids_of(*frames: pd.DataFrame) -> pd.Series:
    ids = pd.concat([f["account_id"] for f in frames], ignore_index=True)
    return pd.Series(pd.unique(ids.dropna().to_numpy(dtype=object)), dtype=object)


def _to_datetime(ns: np.ndarray, utc: bool = False) -> pd.Series:
    out = np.where((ns == NEVER_NS) | (ns == ALWAYS_NS), NAT_NS, ns).view("datetime64[ns]")
    s = pd.Series(out)
    return s.dt.tz_localize("UTC") if utc else s


def build_ledger(
    accounts: pd.DataFrame,
    installments: pd.DataFrame,
    payments: pd.DataFrame,
    as_of: object,
    materiality: float = vocab.DEFAULT_MATERIALITY,
) -> pd.DataFrame:
    """Return each account's ledger as of D: due, paid, arrears, DPD and overdue flag.

    Parameters
    ----------
    accounts : DataFrame
        The accounts table (only ``account_id`` is read); one output row per account, in its order.
    installments, payments : DataFrame
        The contract's tables; only installments due before D and payments before D are read.
    as_of : date-like
        The as-of date D (tz-naive midnight).
    materiality : float
        Arrears at or below this amount count as current.

    Returns
    -------
    DataFrame
        ``account_id`` as a column (RangeIndex), then ``due_to_date``,
        ``paid_to_date``, ``arrears``, ``dpd`` (int), ``installments_due``,
        ``installments_overdue``, ``oldest_unpaid_due`` (date, NaT when
        current) and ``overdue`` (arrears > materiality).

    Examples
    --------
    >>> inst = pd.DataFrame({"account_id": ["A", "A"], "installment_no": [1, 2],
    ...     "due_date": pd.to_datetime(["2024-01-01", "2024-02-01"]), "amount_due": [100.0, 100.0]})
    >>> pay = pd.DataFrame({"account_id": ["A"], "amount": [150.0],
    ...     "paid_at": pd.to_datetime(["2024-01-05 10:00"], utc=True)})
    >>> acc = pd.DataFrame({"account_id": ["A"]})
    >>> row = build_ledger(acc, inst, pay, "2024-02-11").iloc[0]
    >>> float(row.arrears), int(row.dpd), row.oldest_unpaid_due.date().isoformat()
    (50.0, 10, '2024-02-01')
    """
    d_ts = as_of_timestamp(as_of)
    d = d_ts.value
    threshold = effective_threshold(materiality)
    prep = prepare_partial(accounts["account_id"], installments, payments)
    paid = paid_before(prep, d)
    led = ledger_arrays(prep.n, d, due_before(prep, d, paid, threshold), paid, threshold)
    return pd.DataFrame(
        {
            "account_id": prep.account_ids,
            "due_to_date": led.due_to_date,
            "paid_to_date": led.paid_to_date,
            "arrears": led.arrears,
            "dpd": led.dpd,
            "installments_due": led.installments_due,
            "installments_overdue": led.installments_overdue,
            "oldest_unpaid_due": _to_datetime(led.oldest_unpaid_due),
            "overdue": led.overdue,
        }
    )


def installment_states(
    installments: pd.DataFrame, payments: pd.DataFrame, as_of: object
) -> pd.DataFrame:
    """Return each installment's paid amount, paid state and the time it was fully paid, as of D.

    Payments before D are applied oldest installment first; money beyond what
    is due pays later installments in advance, so an installment due on or
    after D can already be paid (``is_due`` tells them apart). An installment
    is ``paid`` when its paid amount is within 1e-6 of ``amount_due``
    (materiality plays no part here: see :func:`build_ledger` for DPD).

    Parameters
    ----------
    installments, payments : DataFrame
        The contract's tables.
    as_of : date-like
        The as-of date D.

    Returns
    -------
    DataFrame
        One row per installment sorted by account and due date: ``account_id``,
        ``installment_no``, ``due_date``, ``amount_due``, ``is_due`` (due before D),
        ``paid_amount``, ``state`` (paid, partial or unpaid), ``fully_paid_at``
        (UTC timestamp of the payment that completed it, NaT if not yet) and
        ``paid_on_time`` (fully paid by the end of its due date).

    Examples
    --------
    >>> inst = pd.DataFrame({"account_id": ["A", "A"], "installment_no": [1, 2],
    ...     "due_date": pd.to_datetime(["2024-01-01", "2024-02-01"]), "amount_due": [100.0, 100.0]})
    >>> pay = pd.DataFrame({"account_id": ["A"], "amount": [150.0],
    ...     "paid_at": pd.to_datetime(["2024-01-01 10:00"], utc=True)})
    >>> installment_states(inst, pay, "2024-03-01")[["paid_amount", "state", "paid_on_time"]]
       paid_amount    state  paid_on_time
    0        100.0     paid          True
    1         50.0  partial         False
    """
    d = as_of_timestamp(as_of).value
    prep = prepare_partial(_ids_of(installments, payments), installments, payments)
    paid = paid_before(prep, d)
    code = prep.inst_code
    cum = prep.inst_cum
    amount = prep.inst_amount
    total = np.bincount(paid.code, weights=paid.amount, minlength=prep.n)[code]
    paid_amount = np.clip(total - (cum - amount), 0.0, amount)
    full = paid.first_reaching(code, cum - AMOUNT_TOL)
    state = np.where(
        paid_amount >= amount - AMOUNT_TOL,
        "paid",
        np.where(paid_amount > AMOUNT_TOL, "partial", "unpaid"),
    )
    return pd.DataFrame(
        {
            "account_id": prep.account_ids[code],
            "installment_no": prep.inst_no.astype(np.int64),
            "due_date": prep.inst_due.view("datetime64[ns]"),
            "amount_due": amount,
            "is_due": prep.inst_due < d,
            "paid_amount": paid_amount,
            "state": state,
            "fully_paid_at": _to_datetime(full, utc=True),
            "paid_on_time": (full != NEVER_NS) & (full < prep.inst_due + DAY_NS),
        }
    )


def delinquency_episodes(
    installments: pd.DataFrame,
    payments: pd.DataFrame,
    as_of: object,
    materiality: float = vocab.DEFAULT_MATERIALITY,
) -> pd.DataFrame:
    """Return the delinquency episodes of every account before D.

    Parameters
    ----------
    installments, payments : DataFrame
        The contract's tables.
    as_of : date-like
        The as-of date D.
    materiality : float
        Shortfalls at or below this amount do not make an installment unpaid.

    Returns
    -------
    DataFrame
        ``account_id``, ``episode_no`` (1, 2, ... per account), ``start`` (the
        first day past due), ``end`` (the day of the payment that cured it,
        NaT while open), ``worst_dpd`` (up to D) and ``is_open``.

    Examples
    --------
    >>> inst = pd.DataFrame({"account_id": ["A", "A"], "installment_no": [1, 2],
    ...     "due_date": pd.to_datetime(["2024-01-01", "2024-02-01"]), "amount_due": [100.0, 100.0]})
    >>> pay = pd.DataFrame({"account_id": ["A"], "amount": [100.0],
    ...     "paid_at": pd.to_datetime(["2024-01-11 09:00"], utc=True)})
    >>> ep = delinquency_episodes(inst, pay, "2024-02-21")
    >>> ep[["episode_no", "worst_dpd", "is_open"]].to_dict("list")
    {'episode_no': [1, 2], 'worst_dpd': [10, 20], 'is_open': [False, True]}
    """
    d = as_of_timestamp(as_of).value
    threshold = effective_threshold(materiality)
    prep = prepare_partial(_ids_of(installments, payments), installments, payments)
    paid = paid_before(prep, d)
    ep = episode_arrays(d, due_before(prep, d, paid, threshold))
    pos = np.arange(ep.code.size)
    first = group_starts(ep.code)
    episode_no = pos - np.maximum.accumulate(np.where(first, pos, 0)) + 1
    return pd.DataFrame(
        {
            "account_id": prep.account_ids[ep.code],
            "episode_no": episode_no,
            "start": ep.start.view("datetime64[ns]"),
            "end": np.where(ep.is_open, NAT_NS, ep.end).view("datetime64[ns]"),
            "worst_dpd": ep.worst_dpd.astype(np.int64),
            "is_open": ep.is_open,
        }
    )


def promise_states(contacts: pd.DataFrame, payments: pd.DataFrame, as_of: object) -> pd.DataFrame:
    """Return every promise to pay made before D with its state as of D.

    Parameters
    ----------
    contacts, payments : DataFrame
        The contract's tables; contacts other than ``promise_to_pay`` are ignored.
    as_of : date-like
        The as-of date D.

    Returns
    -------
    DataFrame
        ``account_id``, ``contact_at``, ``promised_amount``, ``promised_date``,
        ``deadline`` (exclusive end of the payment window, see
        :func:`features.promises.promise_deadline`), ``paid_toward`` (payments in the window
        before D) and ``state``: kept, broken or pending.

    Examples
    --------
    >>> con = pd.DataFrame({"account_id": ["A", "A"], "outcome": ["promise_to_pay"] * 2,
    ...     "contact_at": pd.to_datetime(["2024-01-02 10:00", "2024-01-20 10:00"], utc=True),
    ...     "promised_amount": [100.0, 100.0],
    ...     "promised_date": pd.to_datetime(["2024-01-05", "2024-01-30"]),
    ...     "channel": ["call"] * 2, "direction": ["outbound"] * 2})
    >>> pay = pd.DataFrame({"account_id": ["A"], "amount": [90.0],
    ...     "paid_at": pd.to_datetime(["2024-01-08 12:00"], utc=True)})
    >>> promise_states(con, pay, "2024-02-01")["state"].tolist()
    ['kept', 'pending']
    """
    d = as_of_timestamp(as_of).value
    prep = prepare_partial(_ids_of(contacts, payments), payments=payments, contacts=contacts)
    pr = promise_arrays(prep, d, paid_before(prep, d))
    state = np.where(pr.kept, "kept", np.where(pr.pending, "pending", "broken"))
    return pd.DataFrame(
        {
            "account_id": prep.account_ids[pr.code],
            "contact_at": _to_datetime(pr.made, utc=True),
            "promised_amount": pr.amount,
            "promised_date": pr.promised_date.view("datetime64[ns]"),
            "deadline": pr.deadline.view("datetime64[ns]"),
            "paid_toward": pr.paid,
            "state": state,
        }
    )
