"""The point-in-time ledger: arrears, DPD, installment states, episodes and promises as of D.

Rules (DATA_CONTRACT.md, "payments"):

* As of a date D (a tz-naive midnight) the ledger reads installments due
  strictly before D and payments with ``paid_at`` strictly before D (UTC).
  A payment at exactly D 00:00 belongs to the day D, not to the ledger of D.
* Payments are applied to the oldest installment first: installment k (in due
  order) is paid once the account's cumulative payments reach its cumulative
  amount due ``C_k``. Money paid beyond what is due is a credit that pays the
  next installments in advance.
* ``arrears = max(due_to_date - paid_to_date, 0)``; the account is overdue when
  arrears exceed the materiality threshold (default 1.00).
* Materiality also decides DPD, so that a few cents left on an old installment
  never make an account look years past due: installment k counts as unpaid
  while the cumulative shortfall up to it, ``C_k - paid``, exceeds the
  threshold. DPD is the number of days since the due date of the oldest such
  installment (0 when there is none). Hence ``dpd > 0`` exactly when the
  account is overdue. With ``materiality=0`` this is the plain "oldest unpaid
  due date" of the contract (amounts within 1e-6 count as equal).
* An account is delinquent on as-of day d when some installment due before d
  is unpaid (in the sense above) given the payments before d. A delinquency
  episode is a run of consecutive delinquent days: it starts the day after a
  missed due date and ends on the day of the payment that cured it (the
  account is current from the next day on); an episode still running at D is
  open (``end`` is NaT). Its worst DPD is the highest DPD on any of its days up
  to D.
* A promise to pay (a contact with outcome ``promise_to_pay`` before D) is kept
  when the payments from ``contact_at`` up to the end of the day
  ``promised_date + 3`` (the contract's grace) sum to at least 90% of
  ``promised_amount``; only payments before D count. Each promise is judged on
  its own (one payment can keep two overlapping promises). A promise not yet
  kept whose grace period ends after D is pending; otherwise it is broken.

Everything is vectorised over integer account codes (see
:mod:`features.prepare`): no Python loop over accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import vocab
from features.groups import group_bounds, group_ends, group_starts, segmented_searchsorted
from features.prepare import AMOUNT_TOL, DAY_NS, NAT_NS, Prepared, as_of_timestamp, prepare_tables

#: Clearing time of an installment that can never be unpaid (its whole
#: cumulative amount is within materiality): before any date.
_ALWAYS = np.iinfo(np.int64).min // 4
#: Clearing time of an installment still unpaid at D.
_NEVER = np.iinfo(np.int64).max // 4


def promise_deadline(promised_date: pd.Series | pd.Timestamp) -> pd.Series | pd.Timestamp:
    """Return the exclusive end of a promise's payment window: ``promised_date`` + 3 days + 1 day.

    Payments up to the end of the calendar day ``promised_date + 3`` count
    (the contract's grace of :data:`features.vocab.PROMISE_GRACE_DAYS` days).

    Examples
    --------
    >>> promise_deadline(pd.Timestamp("2024-02-10"))
    Timestamp('2024-02-14 00:00:00')
    """
    return promised_date + pd.Timedelta(days=vocab.PROMISE_GRACE_DAYS + 1)


@dataclass(frozen=True)
class Due:
    """Installments due before D, sorted by account then due date.

    ``cleared`` is when the account's payments first brought the cumulative
    shortfall up to this installment within materiality (``_ALWAYS`` when it
    never exceeded it, ``_NEVER`` when still unpaid at D); ``paid_at`` is the
    same with the strict tolerance (the installment fully paid).
    """

    code: np.ndarray
    due: np.ndarray
    amount: np.ndarray
    cum: np.ndarray
    cleared: np.ndarray
    unpaid: np.ndarray


@dataclass(frozen=True)
class Paid:
    """Payments before D sorted by account then time, with per-account slice bounds."""

    code: np.ndarray
    ns: np.ndarray
    amount: np.ndarray
    cum: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def total_before(self, codes: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Sum of each account's payments strictly before the given time (and before D)."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.ns.size == 0 or codes.size == 0:
            return np.zeros(codes.size)
        lo = self.starts[codes]
        idx = segmented_searchsorted(self.ns, lo, self.ends[codes], times, side="left")
        prev = np.maximum(idx - 1, 0)
        return np.where(idx > lo, self.cum[prev], 0.0)

    def first_reaching(self, codes: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Time of the first payment at which the account's running total reaches a threshold.

        ``_NEVER`` when it is not reached before D; ``_ALWAYS`` when the
        threshold is not positive (nothing needs paying).
        """
        codes = np.asarray(codes, dtype=np.int64)
        out = np.full(codes.size, _NEVER, dtype=np.int64)
        if self.ns.size:
            hi = self.ends[codes]
            idx = segmented_searchsorted(self.cum, self.starts[codes], hi, thresholds, "left")
            found = idx < hi
            out[found] = self.ns[idx[found]]
        out[thresholds <= 0] = _ALWAYS
        return out


def all_paid(prep: Prepared) -> Paid:
    """Every prepared payment as a :class:`Paid` (labels look after D as well)."""
    return paid_before(prep, np.iinfo(np.int64).max)


def paid_before(prep: Prepared, d: int) -> Paid:
    """Payments strictly before ``d`` (ns) as a :class:`Paid`."""
    keep = prep.pay_ns < d
    code = prep.pay_code[keep]
    starts, ends = group_bounds(code, prep.n)
    # Running sums only look back, so the prepared ones are valid before d.
    return Paid(code, prep.pay_ns[keep], prep.pay_amount[keep], prep.pay_cum[keep], starts, ends)


def due_before(prep: Prepared, d: int, paid: Paid, threshold: float) -> Due:
    """Installments due strictly before ``d`` with their clearing time at ``threshold``."""
    keep = prep.inst_due < d
    code = prep.inst_code[keep]
    cum = prep.inst_cum[keep]
    cleared = paid.first_reaching(code, cum - threshold)
    return Due(
        code=code,
        due=prep.inst_due[keep],
        amount=prep.inst_amount[keep],
        cum=cum,
        cleared=cleared,
        unpaid=cleared == _NEVER,
    )


@dataclass(frozen=True)
class LedgerArrays:
    """Per-account ledger at D (arrays of length n, indexed by account code)."""

    due_to_date: np.ndarray
    paid_to_date: np.ndarray
    arrears: np.ndarray
    dpd: np.ndarray
    installments_due: np.ndarray
    installments_overdue: np.ndarray
    oldest_unpaid_due: np.ndarray
    overdue: np.ndarray
    installment_amount: np.ndarray


def effective_threshold(materiality: float) -> float:
    """The amount above which arrears are material (never below the float tolerance)."""
    if not np.isfinite(materiality) or materiality < 0:
        raise ValueError(f"materiality must be a finite amount >= 0, got {materiality}")
    return max(float(materiality), AMOUNT_TOL)


def balances(
    n: int, due_code: np.ndarray, due_amount: np.ndarray, paid_code: np.ndarray, paid_amount
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-account amount due, amount paid and arrears (rows sorted by account, then time).

    Each account's sums add its own rows in order, so they do not depend on
    which other accounts are present (a subset of accounts gives the same sums).
    """
    due_to_date = np.bincount(due_code, weights=due_amount, minlength=n)
    paid_to_date = np.bincount(paid_code, weights=paid_amount, minlength=n)
    arrears = np.maximum(due_to_date - paid_to_date, 0.0)
    # Floating sums of cents leave residues like 1e-13: they are not arrears.
    arrears[arrears <= AMOUNT_TOL] = 0.0
    return due_to_date, paid_to_date, arrears


def overdue_at(prep: Prepared, d: int, threshold: float) -> np.ndarray:
    """Per account, whether its arrears at ``d`` exceed ``threshold`` (the ledger's ``overdue``).

    The same sums as :func:`ledger_arrays`, without clearing times, DPD or
    episodes: what deciding the population needs, at a fraction of the cost.
    """
    inst = prep.inst_due < d
    pay = prep.pay_ns < d
    _, _, arrears = balances(
        prep.n,
        prep.inst_code[inst],
        prep.inst_amount[inst],
        prep.pay_code[pay],
        prep.pay_amount[pay],
    )
    return arrears > threshold


def ledger_arrays(n: int, d: int, due: Due, paid: Paid, threshold: float) -> LedgerArrays:
    """Compute the per-account ledger at ``d`` from installments due and payments before it."""
    due_to_date, paid_to_date, arrears = balances(n, due.code, due.amount, paid.code, paid.amount)
    n_due = np.bincount(due.code, minlength=n).astype(np.int64)
    n_overdue = np.bincount(due.code[due.unpaid], minlength=n).astype(np.int64)
    # Unpaid installments are a suffix of each account's schedule (the
    # clearing time never decreases along the schedule), so the oldest unpaid
    # one is the unpaid row whose predecessor is paid or another account's.
    u = due.unpaid
    after_paid = np.ones(u.size, dtype=bool)
    after_paid[1:] = ~u[:-1]
    first = u & (after_paid | group_starts(due.code))
    oldest = np.full(n, NAT_NS, dtype=np.int64)
    oldest[due.code[first]] = due.due[first]
    dpd = np.zeros(n, dtype=np.int64)
    dpd[due.code[first]] = (d - due.due[first]) // DAY_NS
    last = group_ends(due.code)
    inst_amount = np.full(n, np.nan)
    inst_amount[due.code[last]] = due.amount[last]
    return LedgerArrays(
        due_to_date=due_to_date,
        paid_to_date=paid_to_date,
        arrears=arrears,
        dpd=dpd,
        installments_due=n_due,
        installments_overdue=n_overdue,
        oldest_unpaid_due=oldest,
        overdue=arrears > threshold,
        installment_amount=inst_amount,
    )


@dataclass(frozen=True)
class EpisodeArrays:
    """Delinquency episodes before D, sorted by account then start (``end`` = D when open)."""

    code: np.ndarray
    start: np.ndarray
    end: np.ndarray
    worst_dpd: np.ndarray
    is_open: np.ndarray
    # Per delinquent installment: last delinquent day and its DPD that day,
    # used by worst-DPD-in-window features.
    inst_code: np.ndarray
    inst_last_day: np.ndarray
    inst_dpd: np.ndarray


def episode_arrays(d: int, due: Due) -> EpisodeArrays:
    """Merge each installment's delinquent days into episodes per account.

    Installment k is unpaid on the as-of days ``due_k + 1 .. last_k`` where
    ``last_k`` is the day of the payment that cleared it (or D when it is
    still unpaid). Both ends increase along the schedule, so consecutive
    intervals merge into an episode unless a gap of at least one current day
    separates them. The DPD on day ``last_k`` is at least ``last_k - due_k``
    and no day of the interval exceeds it, so the worst DPD of a set of days
    is the maximum of ``last_k - due_k`` over the installments that reach it.
    """
    cleared = due.cleared
    last_day = np.where(
        due.unpaid, d, np.where(cleared == _ALWAYS, _ALWAYS, cleared - cleared % DAY_NS)
    )
    first_day = due.due + DAY_NS
    keep = last_day >= first_day
    code = due.code[keep]
    first_day = first_day[keep]
    last_day = last_day[keep]
    inst_dpd = (last_day - due.due[keep]) // DAY_NS
    new = group_starts(code)
    new[1:] |= first_day[1:] > last_day[:-1] + DAY_NS
    starts = np.flatnonzero(new)
    if starts.size:
        end = np.maximum.reduceat(last_day, starts)
        worst = np.maximum.reduceat(inst_dpd, starts)
    else:
        end = np.zeros(0, dtype=np.int64)
        worst = np.zeros(0, dtype=np.int64)
    return EpisodeArrays(
        code=code[starts],
        start=first_day[starts],
        end=end,
        worst_dpd=worst,
        is_open=end == d,
        inst_code=code,
        inst_last_day=last_day,
        inst_dpd=inst_dpd,
    )


@dataclass(frozen=True)
class PromiseArrays:
    """Promises made before D with their state as of D."""

    code: np.ndarray
    made: np.ndarray
    amount: np.ndarray
    promised_date: np.ndarray
    deadline: np.ndarray
    paid: np.ndarray
    kept: np.ndarray
    pending: np.ndarray
    broken: np.ndarray


def promise_arrays(prep: Prepared, d: int, paid: Paid) -> PromiseArrays:
    """Judge every promise made before ``d`` with the payments before ``d``."""
    keep = prep.prom_ns < d
    code = prep.prom_code[keep]
    made = prep.prom_ns[keep]
    amount = prep.prom_amount[keep]
    pdate = prep.prom_date[keep]
    deadline = pdate + (vocab.PROMISE_GRACE_DAYS + 1) * DAY_NS
    window_end = np.minimum(deadline, d)
    got = paid.total_before(code, window_end) - paid.total_before(code, made)
    got = np.maximum(got, 0.0)
    kept = got >= vocab.PROMISE_KEPT_SHARE * amount - AMOUNT_TOL
    pending = ~kept & (deadline > d)
    return PromiseArrays(
        code=code,
        made=made,
        amount=amount,
        promised_date=pdate,
        deadline=deadline,
        paid=got,
        kept=kept,
        pending=pending,
        broken=~kept & ~pending,
    )


# --------------------------------------------------------------------------
# Public DataFrame API
# --------------------------------------------------------------------------


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
    out = np.where((ns == _NEVER) | (ns == _ALWAYS), NAT_NS, ns).view("datetime64[ns]")
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
            "paid_on_time": (full != _NEVER) & (full < prep.inst_due + DAY_NS),
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
        :func:`promise_deadline`), ``paid_toward`` (payments in the window
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
