"""Headline collection rates of a portfolio measured from its tables alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.arrears import effective_threshold, ledger_arrays
from features.clearing import due_before, paid_before
from features.ledger import prepare_partial, promise_states
from features.prepare import as_of_timestamp
from features.promises import promise_deadline
from features.vocab import DEFAULT_MATERIALITY, RPC_OUTCOMES


def _bucket(dpd: np.ndarray) -> np.ndarray:
    """DPD bucket: -1 no installment due yet, 0 current, 1 1-29, 2 30-59, 3 60-89, 4 90+."""
    return np.select([dpd < 0, dpd == 0, dpd < 30, dpd < 60, dpd < 90], [-1, 0, 1, 2, 3], 4).astype(
        np.int64
    )


def portfolio_rates(
    tables: dict[str, pd.DataFrame],
    month_ends: list | pd.DatetimeIndex,
    materiality: float = DEFAULT_MATERIALITY,
) -> dict[str, float]:
    """Measure the headline collection rates of a portfolio from its tables alone.

    Arrears and DPD at each date ``D`` of ``month_ends`` are those of
    :mod:`features.ledger` (the project's one ledger): installments due and
    payments strictly before ``D``, oldest installment first, and DPD counted
    from the oldest installment whose cumulative shortfall exceeds
    ``materiality`` (a few cents left on an old installment are not arrears).

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        At least ``installments``, ``payments`` and ``contacts`` in the
        canonical dtypes (e.g. :attr:`Portfolio.tables`, or a subset of its
        accounts).
    month_ends : sequence of dates
        Consecutive as-of dates, one month apart (e.g. the first day of each
        month: the state at the end of the previous month).
    materiality : float, default 1.00
        Arrears at or below this amount count as current.

    Returns
    -------
    dict of str to float
        ``overdue_share`` (mean over the dates of overdue / accounts with an
        installment due); ``cure_<bucket>`` (overdue at ``D`` in the bucket,
        current at the next date) and ``roll_<bucket>`` (moved to the next
        bucket) for buckets ``1_29``, ``30_59``, ``60_89``, ``90p``;
        ``paid_any_rate`` and ``full_cover_rate`` (overdue at ``D``: any
        payment before the next date, payments covering the arrears at ``D``);
        ``rpc_rate`` (right-party outcomes per outbound call), ``promise_rate``
        (promises per right-party contact), both over contacts before the last
        date; ``promise_kept_rate`` (the contract's rule, over promises whose
        grace period ends before the last date). NaN where a denominator is 0.

    Examples
    --------
    >>> from pipeline.simulator import simulate_portfolio
    >>> p = simulate_portfolio(300, 4, seed=3)
    >>> r = portfolio_rates(p.tables, pd.date_range("2024-02-01", periods=3, freq="MS"))
    >>> 0.0 <= r["overdue_share"] <= 1.0
    True
    """
    ends = pd.DatetimeIndex(month_ends)
    inst = tables["installments"]
    pays = tables["payments"]
    ids = pd.unique(pd.concat([inst["account_id"], pays["account_id"]]).to_numpy(dtype=object))
    prep = prepare_partial(ids, installments=inst, payments=pays)
    threshold = effective_threshold(materiality)
    dpd_at, arrears_at, paid_at = [], [], []
    for d in ends:
        d_ns = as_of_timestamp(d).value
        paid = paid_before(prep, d_ns)
        led = ledger_arrays(prep.n, d_ns, due_before(prep, d_ns, paid, threshold), paid, threshold)
        dpd_at.append(np.where(led.installments_due > 0, led.dpd, -1))
        arrears_at.append(led.arrears)
        paid_at.append(led.paid_to_date)

    out: dict[str, float] = {}

    def ratio(num: float, den: float) -> float:
        return float(num / den) if den else float("nan")

    buckets = [_bucket(x) for x in dpd_at]
    shares = [ratio((b >= 1).sum(), (b >= 0).sum()) for b in buckets]
    out["overdue_share"] = float(np.nanmean(shares)) if shares else float("nan")
    labels = {1: "1_29", 2: "30_59", 3: "60_89", 4: "90p"}
    counts = {k: np.zeros(3) for k in labels}
    pay_any = pay_full = n_over = 0
    for j in range(len(ends) - 1):
        b0, b1 = _bucket(dpd_at[j]), _bucket(dpd_at[j + 1])
        for k in labels:
            sel = b0 == k
            counts[k] += [sel.sum(), (sel & (b1 == 0)).sum(), (sel & (b1 == min(k + 1, 4))).sum()]
        over = b0 >= 1
        paid_next = paid_at[j + 1] - paid_at[j]
        n_over += over.sum()
        pay_any += (over & (paid_next > 0)).sum()
        pay_full += (over & (paid_next >= arrears_at[j])).sum()
    for k, name in labels.items():
        out[f"cure_{name}"] = ratio(counts[k][1], counts[k][0])
        if k < 4:
            out[f"roll_{name}"] = ratio(counts[k][2], counts[k][0])
    out["paid_any_rate"] = ratio(pay_any, n_over)
    out["full_cover_rate"] = ratio(pay_full, n_over)

    con = tables["contacts"]
    last = ends.max().tz_localize("UTC") if len(ends) else pd.Timestamp.max.tz_localize("UTC")
    con = con[con["contact_at"] < last]
    calls = con[(con["channel"] == "call") & (con["direction"] == "outbound")]
    out["rpc_rate"] = ratio(calls["outcome"].isin(RPC_OUTCOMES).sum(), len(calls))
    is_rpc = con["outcome"].isin(RPC_OUTCOMES)
    promises = con[con["outcome"] == "promise_to_pay"]
    out["promise_rate"] = ratio(len(promises), is_rpc.sum())
    promises = promises[promise_deadline(promises["promised_date"]) <= ends.max()]
    kept = promise_kept(promises, pays)
    out["promise_kept_rate"] = ratio(kept.sum(), len(kept))
    return out


def promise_kept(promises: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """Apply the contract's promise-kept rule to each promise.

    A promise is kept when the account's payments from ``contact_at`` up to the
    end of ``promised_date + 3 days`` (UTC) sum to at least 90% of
    ``promised_amount``.

    Parameters
    ----------
    promises : pandas.DataFrame
        Contact rows with ``account_id``, ``contact_at``, ``promised_amount``,
        ``promised_date``.
    payments : pandas.DataFrame
        ``account_id``, ``paid_at``, ``amount``.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``promises``.

    Examples
    --------
    >>> promises = pd.DataFrame({"account_id": ["A1", "A2"],
    ...     "contact_at": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 10:00"], utc=True),
    ...     "promised_amount": [100.0, 100.0],
    ...     "promised_date": pd.to_datetime(["2024-01-05", "2024-01-05"])})
    >>> payments = pd.DataFrame({"account_id": ["A1", "A2"],
    ...     "paid_at": pd.to_datetime(["2024-01-08 23:00", "2024-01-09 00:00"], utc=True),
    ...     "amount": [95.0, 100.0]})
    >>> promise_kept(promises, payments).tolist()
    [True, False]
    """
    if promises.empty:
        return pd.Series(False, index=promises.index, dtype=bool)
    # The rule lives in features.promises; judge every promise once all windows closed.
    keys = ["account_id", "contact_at", "promised_amount", "promised_date"]
    contacts = promises.assign(outcome="promise_to_pay")
    for col, value in (("channel", "call"), ("direction", "outbound")):
        if col not in contacts.columns:
            contacts[col] = value
    states = promise_states(
        contacts, payments, promise_deadline(promises["promised_date"].max())
    ).drop_duplicates(keys)
    merged = promises[keys].merge(states[[*keys, "state"]], on=keys, how="left")
    return pd.Series(merged["state"].eq("kept").to_numpy(), index=promises.index, dtype=bool)
