"""Turn the contract's tables into integer-coded, sorted numpy arrays, once.

Every computation in :mod:`features` works on these arrays: ``account_id`` is
factorised to an integer code (the row number in ``accounts``) once, event
tables are sorted by (account, time) once, and the per-account running sums
(cumulative amount due, cumulative amount paid) are computed once. Running sums
only ever look backwards in time, so computing them over the whole history and
then keeping the rows before an as-of date D gives exactly the sums a ledger
built at D would see: the preparation is shared by every as-of date of a
training set without leaking anything from after D.

Times are int64 nanoseconds since the epoch, UTC (tz-naive dates are read as
UTC midnights), so comparisons are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import pandas as pd

from features import vocab
from features.event_order import sorted_keys
from features.groups import grouped_cumsum
from features.population import Population, may_be_in

#: One day in nanoseconds.
DAY_NS: int = 86_400 * 10**9
#: Amounts closer than this are equal (float sums of cents are never exact).
AMOUNT_TOL: float = 1e-6
#: The int64 nanoseconds of NaT: a missing date or timestamp.
NAT_NS: int = np.iinfo(np.int64).min


def as_of_timestamp(as_of: object) -> pd.Timestamp:
    """Return ``as_of`` as a tz-naive midnight :class:`pandas.Timestamp`.

    Parameters
    ----------
    as_of : str, date or pandas.Timestamp
        The as-of date D.

    Returns
    -------
    pandas.Timestamp
        D at midnight, tz-naive.

    Raises
    ------
    ValueError
        When ``as_of`` is missing, carries a time zone or a time of day.

    Examples
    --------
    >>> as_of_timestamp("2024-01-31")
    Timestamp('2024-01-31 00:00:00')
    """
    ts = pd.Timestamp(as_of)
    if ts is pd.NaT:
        raise ValueError("as_of is missing: pass a date such as 2024-01-31")
    if ts.tzinfo is not None:
        raise ValueError(f"as_of must be a tz-naive date, got {ts}: pass e.g. {ts.date()}")
    if ts != ts.normalize():
        raise ValueError(f"as_of must be a date at midnight, got {ts}: pass {ts.date()}")
    return ts.as_unit("ns")


def to_ns(values: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Return timestamps or dates as int64 nanoseconds since the epoch in UTC.

    Tz-aware values are converted to UTC; tz-naive values (dates) are read as
    UTC. Missing values become ``numpy.iinfo(int64).min``.

    Parameters
    ----------
    values : Series, Index or array of datetimes
        The column to convert.

    Returns
    -------
    numpy.ndarray
        int64 nanoseconds.

    Examples
    --------
    >>> to_ns(pd.Series(pd.to_datetime(["1970-01-02"], utc=True))).tolist()
    [86400000000000]
    """
    s = pd.Series(values, copy=False)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        # A tz-aware column holds UTC instants: as datetime64 they are the UTC wall times.
        return s.to_numpy(dtype="datetime64[ns]").view(np.int64)
    if not pd.api.types.is_datetime64_dtype(s.dtype):
        s = pd.to_datetime(s, utc=True).dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _codes(index: pd.Index, column: pd.Series, recode: np.ndarray | None = None) -> np.ndarray:
    """Integer code of each row's account (-1 for an account not in ``index``).

    A categorical column is looked up once per distinct value, then mapped
    through its codes (a null has code -1 and maps to -1). ``recode`` maps a
    position in ``index`` to the code to return (-1 to leave the account out).

    Examples
    --------
    >>> idx = pd.Index(["A", "B"])
    >>> _codes(idx, pd.Series(["B", None, "C", "A"], dtype="category")).tolist()
    [1, -1, -1, 0]
    >>> _codes(idx, pd.Series(["B", "A"]), recode=np.array([-1, 0])).tolist()
    [0, -1]
    """
    dtype = np.int32 if len(index) < 2**31 else np.int64
    categorical = isinstance(column.dtype, pd.CategoricalDtype)
    found = index.get_indexer(column.cat.categories if categorical else column)
    if recode is not None:
        found = np.append(recode, -1)[found]
    if categorical:
        return np.append(found, -1).astype(dtype)[column.cat.codes.to_numpy()]
    return found.astype(dtype)


@dataclass(frozen=True)
class Prepared:
    """The input tables as integer-coded numpy arrays sorted by (account, time).

    Account-level arrays have one entry per account (code = position);
    event arrays are sorted by account code, then time. ``inst_cum`` and
    ``pay_cum`` are each account's running sums, computed on first use (a
    subset made by :meth:`take` computes only its own). ``has_offers`` is
    False when no offers table was given (the offer features are then null).
    """

    account_ids: np.ndarray
    opened_ns: np.ndarray
    product: np.ndarray
    principal: np.ndarray
    monthly_income: np.ndarray
    age: np.ndarray
    inst_code: np.ndarray
    inst_no: np.ndarray
    inst_due: np.ndarray
    inst_amount: np.ndarray
    pay_code: np.ndarray
    pay_ns: np.ndarray
    pay_amount: np.ndarray
    con_code: np.ndarray
    con_ns: np.ndarray
    con_channel: np.ndarray
    con_outbound: np.ndarray
    con_inbound: np.ndarray
    con_outcome: np.ndarray
    prom_code: np.ndarray
    prom_ns: np.ndarray
    prom_amount: np.ndarray
    prom_date: np.ndarray
    has_offers: bool
    off_code: np.ndarray
    off_ns: np.ndarray
    off_accepted: np.ndarray

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.account_ids.size)

    @cached_property
    def inst_cum(self) -> np.ndarray:
        """Each account's running sum of the amounts due (computed on first use)."""
        return grouped_cumsum(self.inst_code, self.inst_amount)

    @cached_property
    def pay_cum(self) -> np.ndarray:
        """Each account's running sum of the payments (computed on first use)."""
        return grouped_cumsum(self.pay_code, self.pay_amount)

    def take(self, keep: np.ndarray) -> Prepared:
        """Return the arrays of the accounts where ``keep`` is True, recoded 0..k-1.

        Used to process a portfolio in partitions or a population; the running
        sums of the subset are those of the whole, because they never cross accounts.
        """
        keep = np.asarray(keep, dtype=bool)
        new_code = np.cumsum(keep) - 1
        out: dict[str, object] = {}
        for prefix in ("inst", "pay", "con", "prom", "off"):
            code = getattr(self, f"{prefix}_code")
            rows = np.flatnonzero(keep[code]) if code.size else np.zeros(0, dtype=np.int64)
            for f in fields(self):
                if f.name.startswith(prefix + "_"):
                    out[f.name] = getattr(self, f.name)[rows]
            out[f"{prefix}_code"] = new_code[code[rows]].astype(code.dtype)
        for name in ("account_ids", "opened_ns", "product", "principal", "monthly_income", "age"):
            out[name] = getattr(self, name)[keep]
        return replace(self, **out)


def _optional_float(accounts: pd.DataFrame, column: str) -> np.ndarray:
    """An optional numeric accounts column as float64, all NaN when absent."""
    if column not in accounts.columns:
        return np.full(len(accounts), np.nan)
    return pd.to_numeric(accounts[column], errors="coerce").to_numpy(dtype=np.float64)


def _account_arrays(accounts: pd.DataFrame, index: pd.Index) -> dict[str, np.ndarray]:
    """The account-level arrays, one entry per row of ``accounts``."""
    return {
        "account_ids": index.to_numpy(dtype=object),
        "opened_ns": to_ns(accounts["opened_date"]),
        "product": pd.Categorical(accounts["product"], categories=vocab.PRODUCTS).codes.astype(
            np.int8
        ),
        "principal": accounts["principal"].to_numpy(dtype=np.float64),
        "monthly_income": _optional_float(accounts, "monthly_income"),
        "age": _optional_float(accounts, "age"),
    }


def _installment_rows(index: pd.Index, inst: pd.DataFrame) -> dict[str, np.ndarray]:
    """Installments of known accounts with a due date and a positive amount, in input order."""
    code = _codes(index, inst["account_id"])
    due = to_ns(inst["due_date"])
    amount = inst["amount_due"].to_numpy(dtype=np.float64)
    inst_no = inst["installment_no"].to_numpy(dtype=np.int64).astype(np.int32)
    # Non-positive amounts break the contract (validation rejects them); they
    # are dropped here so that running sums stay increasing.
    ok = (code >= 0) & (due != NAT_NS) & (amount > 0)
    if not ok.all():
        code, due, amount, inst_no = code[ok], due[ok], amount[ok], inst_no[ok]
    return {"inst_code": code, "inst_no": inst_no, "inst_due": due, "inst_amount": amount}


def _payment_rows(index: pd.Index, pay: pd.DataFrame) -> dict[str, np.ndarray]:
    """Payments of known accounts with a time and a positive amount, in input order."""
    code = _codes(index, pay["account_id"])
    ns = to_ns(pay["paid_at"])
    amount = pay["amount"].to_numpy(dtype=np.float64)
    ok = (code >= 0) & (ns != NAT_NS) & (amount > 0)
    if not ok.all():
        code, ns, amount = code[ok], ns[ok], amount[ok]
    return {"pay_code": code, "pay_ns": ns, "pay_amount": amount}


def _sort_installments(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Installments sorted by account, then due date; installment_no breaks ties (the contract's order)."""
    order, code, due, inst_no = sorted_keys(rows["inst_code"], rows["inst_due"], rows["inst_no"])
    amount = rows["inst_amount"] if order is None else rows["inst_amount"][order]
    return {"inst_code": code, "inst_no": inst_no, "inst_due": due, "inst_amount": amount}


def _sort_payments(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Payments sorted by account, then time; the amount breaks ties."""
    _, code, ns, amount = sorted_keys(rows["pay_code"], rows["pay_ns"], rows["pay_amount"])
    return {"pay_code": code, "pay_ns": ns, "pay_amount": amount}


def _keep_rows(rows: dict[str, np.ndarray], code: str, recode: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of the kept accounts (``recode`` >= 0), in their order, with their new codes."""
    new = recode[rows[code]]
    idx = np.flatnonzero(new >= 0)
    out = {name: values[idx] for name, values in rows.items()}
    out[code] = new[idx].astype(rows[code].dtype)
    return out


def _contact_arrays(
    index: pd.Index, con: pd.DataFrame, recode: np.ndarray | None, before: int | None
) -> dict[str, np.ndarray]:
    """Contacts of the kept accounts with a time before ``before`` (input order), and their valid promises."""
    c_code = _codes(index, con["account_id"], recode)
    c_ns = to_ns(con["contact_at"])
    # Only the rows kept are read further (a fraction of the log when a population is selected).
    ok = (c_code >= 0) & (c_ns != NAT_NS)
    if before is not None:
        ok &= c_ns < before
    rows = np.flatnonzero(ok)
    c_code, c_ns = c_code[rows], c_ns[rows]
    channel = pd.Categorical(con["channel"], categories=vocab.CONTACT_CHANNELS).codes[rows]
    direction = pd.Categorical(con["direction"], categories=vocab.DIRECTIONS).codes[rows]
    outcome = pd.Categorical(con["outcome"], categories=vocab.OUTCOMES).codes[rows]
    promise = np.flatnonzero(outcome == vocab.OUTCOMES.index("promise_to_pay"))
    prom_amount = con["promised_amount"].to_numpy(dtype=np.float64)[rows[promise]]
    prom_date = to_ns(con["promised_date"])[rows[promise]]
    complete = np.isfinite(prom_amount) & (prom_date != NAT_NS)
    valid = promise[complete]
    return {
        "con_code": c_code,
        "con_ns": c_ns,
        "con_channel": channel.astype(np.int8),
        "con_outbound": direction == vocab.DIRECTIONS.index("outbound"),
        "con_inbound": direction == vocab.DIRECTIONS.index("inbound"),
        "con_outcome": outcome.astype(np.int8),
        "prom_code": c_code[valid],
        "prom_ns": c_ns[valid],
        "prom_amount": prom_amount[complete],
        "prom_date": prom_date[complete],
    }


def _offer_arrays(
    index: pd.Index, offers: pd.DataFrame | None, recode: np.ndarray | None, before: int | None
) -> dict[str, object]:
    """Offers of the kept accounts with a time before ``before`` (input order); empty without a table."""
    if offers is None:
        return {
            "has_offers": False,
            "off_code": np.zeros(0, dtype=np.int32),
            "off_ns": np.zeros(0, dtype=np.int64),
            "off_accepted": np.zeros(0, dtype=bool),
        }
    o_code = _codes(index, offers["account_id"], recode)
    o_ns = to_ns(offers["offered_at"])
    o_acc = offers["accepted"].fillna(False).to_numpy(dtype=bool)
    ok = (o_code >= 0) & (o_ns != NAT_NS)
    if before is not None:
        ok &= o_ns < before
    return {
        "has_offers": True,
        "off_code": o_code[ok],
        "off_ns": o_ns[ok],
        "off_accepted": o_acc[ok],
    }


def prepare_tables(
    tables: dict[str, pd.DataFrame], population: Population | None = None
) -> Prepared:
    """Factorise, clean and sort the contract's tables for the feature code.

    Rows whose ``account_id`` is not in ``accounts``, event rows without a
    time and installments or payments whose amount is not positive are
    dropped (validation reports them; features never guess).

    Parameters
    ----------
    tables : dict of str to DataFrame
        ``accounts``, ``installments``, ``payments`` and ``contacts`` in the
        contract's columns and canonical dtypes; ``offers`` optional.
    population : Population, optional
        Prepare only the accounts that may be in it (see :func:`may_be_in`):
        a superset of the population, decided before sorting, so that the
        events of the other accounts are neither sorted nor copied. Contacts
        and offers from D on are left out too: the result serves as-of date D
        (or earlier), not later dates.

    Returns
    -------
    Prepared
        The arrays every feature is computed from.

    Raises
    ------
    KeyError
        When a required table or column is missing.
    ValueError
        When ``accounts.account_id`` is not unique.
    """
    for name in ("accounts", "installments", "payments", "contacts"):
        if name not in tables or tables[name] is None:
            raise KeyError(f"table '{name}' is required to build features; got {sorted(tables)}")
    accounts = tables["accounts"]
    index = pd.Index(accounts["account_id"].to_numpy(dtype=object))
    if not index.is_unique:
        dup = index[index.duplicated()][:3].tolist()
        raise ValueError(f"accounts.account_id must be unique: duplicates e.g. {dup}")
    acc = _account_arrays(accounts, index)
    inst = _installment_rows(index, tables["installments"])
    pay = _payment_rows(index, tables["payments"])
    recode = None
    # No feature at D reads a contact or an offer from D on: they are not kept.
    before = None if population is None else population.d
    if population is not None:
        keep = may_be_in(population, acc["opened_ns"], inst, pay)
        if not keep.all():
            # Codes stay in the accounts' order, so sorting the kept rows gives the
            # order they have among all rows sorted.
            recode = np.where(keep, np.cumsum(keep) - 1, -1)
            acc = {name: values[keep] for name, values in acc.items()}
            inst = _keep_rows(inst, "inst_code", recode)
            pay = _keep_rows(pay, "pay_code", recode)
    return Prepared(
        **acc,
        **_sort_installments(inst),
        **_sort_payments(pay),
        **_contact_arrays(index, tables["contacts"], recode, before),
        **_offer_arrays(index, tables.get("offers"), recode, before),
    )
