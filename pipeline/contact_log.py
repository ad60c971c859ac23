"""What the whole contact log says about each account on the as-of date D.

Compliance reads the log differently from the features: the features read
only events strictly before D (point in time), while these counts use every
contact in the log, including any at or after D, because a contact that
happened counts against the law whenever it was exported (the safe side).

Days are the debtor's **local calendar days** (``accounts.timezone``): a
contact's day is its local date, and day 0 is the local date equal to D. The
plan covers local days 0..6. A contact whose account is not in ``accounts``
is ignored (validation lists it as an orphan).

- :func:`log_usage`: what was used in the 7-day window that overlaps the plan
  (outbound calls and texts on local days -6 and later, per account and per
  customer), today's conversations and unanswered attempts per customer, and
  the latest telephone conversation.
- :func:`log_statuses`: a ``dispute`` or ``hardship`` outcome acts like the
  flag until a later right-party outcome of another kind.
- :func:`promise_holds`: open promises hold contact until their date plus the
  contract's grace; broken ones are counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocab import CONVERSATION_OUTCOMES, PROMISE_GRACE_DAYS, RPC_OUTCOMES

DAY_NS: int = 86_400 * 10**9
#: Days of the window before D that can overlap a 7-day plan (local days -6..-1).
WINDOW_DAYS: int = 6
USAGE_COLUMNS: tuple[str, ...] = (
    "calls_7d",
    "sms_7d",
    "last_conversation_day",
    "customer_calls_7d",
    "customer_conversations_today",
    "customer_unanswered_today",
    "customer_calls_after_today",
)


def local_day(at_utc: pd.Series, zones: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """Return each instant's local calendar date in its zone, as days after D (D is 0).

    One conversion per distinct zone (a handful), vectorised within each.

    Examples
    --------
    >>> at = pd.Series(pd.to_datetime(["2024-03-08 15:30"], utc=True))
    >>> local_day(at, np.array(["Pacific/Guam"]), pd.Timestamp("2024-03-15")).tolist()
    [-6]
    """
    at = pd.DatetimeIndex(pd.to_datetime(at_utc, utc=True))
    local_ns = np.zeros(len(at), dtype=np.int64)
    codes, uniques = pd.factorize(np.asarray(zones, dtype=object))
    for k, zone in enumerate(uniques):
        sel = codes == k
        local_ns[sel] = at[sel].tz_convert(zone).tz_localize(None).asi8
    d0 = pd.Timestamp(as_of).normalize().value
    return np.floor_divide(local_ns - d0, DAY_NS)


def log_usage(
    contacts: pd.DataFrame, accounts: pd.DataFrame, ids: pd.Series, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Count what the log already used of the 7-day window overlapping the plan.

    Parameters
    ----------
    contacts : pandas.DataFrame
        The whole contact log (``account_id``, ``contact_at``, ``channel``,
        ``direction``, ``outcome``).
    accounts : pandas.DataFrame
        Every account (``account_id``, ``customer_id``, ``timezone``), so that
        contacts on a customer's other accounts count too; must hold ``ids``.
    ids : pandas.Series
        The accounts to report, in this order.
    as_of : pandas.Timestamp
        The as-of date D.

    Returns
    -------
    pandas.DataFrame
        One row per id (RangeIndex), columns :data:`USAGE_COLUMNS`:
        outbound calls and texts of the account on local days -6 and later
        (``calls_7d``, ``sms_7d``), the latest local day of a telephone
        conversation (a call in or out whose outcome is in
        :data:`features.vocab.CONVERSATION_OUTCOMES`) on days -6 and later
        (``last_conversation_day``, NaN if none), and per customer: outbound
        calls on days -6 and later, conversations and unanswered outbound
        calls on day 0, and outbound calls after day 0.
    """
    # Local day -6 starts at most 14 hours before UTC day -6 (UTC+14 zones).
    since = pd.Timestamp(as_of).normalize() - pd.Timedelta(days=WINDOW_DAYS + 1)
    at = pd.DatetimeIndex(pd.to_datetime(contacts["contact_at"], utc=True)).asi8
    rows = np.flatnonzero(at >= since.tz_localize("UTC").value)
    index = pd.Index(accounts["account_id"])
    pos = index.get_indexer(contacts["account_id"].to_numpy(dtype=object)[rows])
    rows, pos = rows[pos >= 0], pos[pos >= 0]  # orphans are validation's business
    customer = pd.factorize(accounts["customer_id"].to_numpy(dtype=object))[0]
    zone = accounts["timezone"].to_numpy(dtype=object)[pos]
    day = local_day(at[rows], zone, as_of)
    call = contacts["channel"].to_numpy(dtype=object)[rows] == "call"
    sms = contacts["channel"].to_numpy(dtype=object)[rows] == "sms"
    out = contacts["direction"].to_numpy(dtype=object)[rows] == "outbound"
    conv = np.isin(contacts["outcome"].to_numpy(dtype=object)[rows], list(CONVERSATION_OUTCOMES))
    in_window = day >= -WINDOW_DAYS

    def per_account(mask: np.ndarray) -> np.ndarray:
        return np.bincount(pos[mask], minlength=len(index))

    def per_customer(mask: np.ndarray) -> np.ndarray:
        return np.bincount(customer[pos[mask]], minlength=customer.max(initial=-1) + 1)

    last = np.full(len(index), -np.inf)
    talk = call & conv & in_window
    np.maximum.at(last, pos[talk], day[talk].astype(np.float64))
    target = index.get_indexer(pd.Series(ids, dtype=object).to_numpy())
    who = customer[target]
    return pd.DataFrame(
        {
            "calls_7d": per_account(call & out & in_window)[target],
            "sms_7d": per_account(sms & out & in_window)[target],
            "last_conversation_day": np.where(np.isinf(last), np.nan, last)[target],
            "customer_calls_7d": per_customer(call & out & in_window)[who],
            "customer_conversations_today": per_customer(call & conv & (day == 0))[who],
            "customer_unanswered_today": per_customer(call & out & ~conv & (day == 0))[who],
            "customer_calls_after_today": per_customer(call & out & (day > 0))[who],
        },
        columns=list(USAGE_COLUMNS),
    ).astype({c: np.int64 for c in USAGE_COLUMNS if c != "last_conversation_day"})


def log_statuses(contacts: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Tell which accounts the log puts in dispute or hardship.

    The latest right-party outcome of an account decides (every contact in
    the log, at or after D too): ``dispute`` sets ``dispute_log``,
    ``hardship`` sets ``hardship_log``. A later right-party outcome of any
    other kind (a promise, a conversation about paying) ends it; the account
    flags can only add to it.

    Returns
    -------
    pandas.DataFrame
        ``dispute_log`` and ``hardship_log`` (bool), one row per id (RangeIndex).

    Examples
    --------
    >>> log = pd.DataFrame({"account_id": ["A", "A", "B"],
    ...     "contact_at": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-01"], utc=True),
    ...     "outcome": ["promise_to_pay", "dispute", "hardship"]})
    >>> log_statuses(log, pd.Series(["A", "B", "C"])).to_dict("list")
    {'dispute_log': [True, False, False], 'hardship_log': [False, True, False]}
    """
    ids = pd.Series(ids, dtype=object).to_numpy()
    none = np.zeros(len(ids), dtype=bool)
    outcomes = contacts["outcome"].to_numpy(dtype=object)
    # Two cheap equality passes over the log; the rest works on the few status rows.
    rows = np.flatnonzero((outcomes == "dispute") | (outcomes == "hardship"))
    if not len(rows):
        return pd.DataFrame({"dispute_log": none, "hardship_log": none.copy()})
    at = pd.DatetimeIndex(pd.to_datetime(contacts["contact_at"], utc=True)).asi8
    acc = contacts["account_id"].to_numpy(dtype=object)
    status = pd.DataFrame({"account_id": acc[rows], "at": at[rows], "outcome": outcomes[rows]})
    status = status.sort_values("at", kind="stable").drop_duplicates("account_id", keep="last")
    # A later right-party outcome of another kind ends the status.
    later = np.flatnonzero(at > status["at"].min())
    kind = outcomes[later]
    other = np.zeros(len(later), dtype=bool)
    for name in sorted(RPC_OUTCOMES - {"dispute", "hardship"}):
        other |= kind == name  # equality passes: cheaper than hashing every row
    later = later[other]
    later = later[pd.Series(acc[later]).isin(status["account_id"]).to_numpy()]
    index = pd.Index(status["account_id"])
    pos = index.get_indexer(acc[later])
    ended = np.zeros(len(status), dtype=bool)
    np.logical_or.at(ended, pos, at[later] > status["at"].to_numpy()[pos])
    outcome = pd.Series(np.where(ended, None, status["outcome"].to_numpy()), index=index)
    outcome = outcome.reindex(ids)
    return pd.DataFrame(
        {
            "dispute_log": (outcome == "dispute").to_numpy(),
            "hardship_log": (outcome == "hardship").to_numpy(),
        }
    )


def recent_promises(
    contacts: pd.DataFrame, payments: pd.DataFrame, as_of: pd.Timestamp, lookback_days: int
) -> pd.DataFrame:
    """Judge only the promises that can matter on D: still open, or due in the lookback.

    :func:`features.ledger.promise_states` on the promises whose
    ``promised_date`` is at most ``lookback_days`` + grace before D, with the
    payments of their accounts only (a small share of a large log).
    """
    from features.ledger import promise_states

    since = pd.Timestamp(as_of).normalize() - pd.Timedelta(
        days=lookback_days + PROMISE_GRACE_DAYS + 1
    )
    promised = pd.to_datetime(contacts["promised_date"]).to_numpy()
    rows = np.flatnonzero(promised >= since.to_datetime64())
    rows = rows[contacts["outcome"].to_numpy(dtype=object)[rows] == "promise_to_pay"]
    few = contacts.iloc[rows]
    # Only payments after the earliest of these promises can keep one of them.
    paid_at = pd.DatetimeIndex(pd.to_datetime(payments["paid_at"], utc=True)).asi8
    first = pd.DatetimeIndex(pd.to_datetime(few["contact_at"], utc=True)).asi8.min(initial=0)
    late = np.flatnonzero(paid_at >= first)
    late = late[payments["account_id"].iloc[late].isin(pd.unique(few["account_id"])).to_numpy()]
    paid = payments.iloc[late]
    return promise_states(few, paid, as_of)


def promise_holds(
    promises: pd.DataFrame | None,
    contacts: pd.DataFrame,
    ids: pd.Series,
    as_of: pd.Timestamp,
    broken_lookback_days: int,
) -> pd.DataFrame:
    """Give each account its promise hold and its count of recently broken promises.

    A promise still open on D (``state`` pending: not kept, payment window
    not over) holds contact until its ``deadline``, the day after
    ``promised_date`` + the contract's grace, when contact resumes at once if
    it was not kept. A promise logged at or after D is open (it cannot be
    judged yet). A promise whose deadline fell in the ``broken_lookback_days``
    before D and was not kept counts as broken.

    Parameters
    ----------
    promises : pandas.DataFrame or None
        :func:`features.ledger.promise_states` as of D (``account_id``,
        ``promised_date``, ``deadline``, ``state``); None: no judged promises.
    contacts : pandas.DataFrame
        The contact log, for promises logged at or after D.
    ids : pandas.Series
        The accounts to report, in this order.
    as_of : pandas.Timestamp
        The as-of date D.
    broken_lookback_days : int
        How far back a broken promise still counts.

    Returns
    -------
    pandas.DataFrame
        ``promise_hold_until`` (datetime64, NaT when no open promise) and
        ``broken_promises`` (int64), one row per id (RangeIndex).
    """
    d = pd.Timestamp(as_of).normalize()
    grace = pd.Timedelta(days=PROMISE_GRACE_DAYS + 1)
    at = pd.DatetimeIndex(pd.to_datetime(contacts["contact_at"], utc=True)).asi8
    late = contacts.loc[at >= d.tz_localize("UTC").value]
    late = late.loc[(late["outcome"] == "promise_to_pay").to_numpy()]
    # A promise logged without its date (the contract requires one) holds the whole week.
    promised = pd.to_datetime(late.get("promised_date", pd.Series(pd.NaT, index=late.index)))
    promised = promised.fillna(d + pd.Timedelta(days=7))
    open_until = [pd.Series(promised.to_numpy() + grace, index=late["account_id"].to_numpy())]
    broken = pd.Series(dtype=np.int64)
    if promises is not None and len(promises):
        pending = promises["state"].to_numpy() == "pending"
        open_until.append(
            pd.Series(
                promises["deadline"].to_numpy()[pending],
                index=promises["account_id"].to_numpy()[pending],
            )
        )
        deadline = pd.to_datetime(promises["deadline"])
        recent = (promises["state"] == "broken") & (
            deadline > d - pd.Timedelta(days=broken_lookback_days)
        )
        broken = recent.groupby(promises["account_id"].to_numpy()).sum()
    until = pd.concat(open_until).astype("datetime64[ns]")
    ids = pd.Series(ids, dtype=object).to_numpy()
    return pd.DataFrame(
        {
            "promise_hold_until": until.groupby(level=0).max().reindex(ids).to_numpy(),
            "broken_promises": broken.reindex(ids, fill_value=0).to_numpy(dtype=np.int64),
        }
    )
