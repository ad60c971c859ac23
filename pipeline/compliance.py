"""Jurisdiction compliance profiles, enforced in code on top of any policy.

A policy YAML names one profile (``jurisdiction``); the profile's limits are
hard limits that the policy may tighten but never loosen. A policy that asks
for more is refused at load (see :mod:`pipeline.policy`), and the plan
(:mod:`pipeline.plan`) applies the profile again to every account, control
group included.

Rules common to every profile:

- no contact at all for an account that is deceased, bankrupt, has an open
  dispute, asked in writing to cease communication, or is flagged do not
  contact (``suppressed_reason`` names the first that applies, in the order
  of :data:`features.vocab.SUPPRESSING_STATUSES`);
- hardship routes to forbearance offers (installment plan, extension), never
  to a settlement or a legal review.

Profile-specific rules are fields of :class:`ComplianceProfile`; the three
profiles are in :data:`PROFILES`.

Call caps (:func:`call_caps`) count calls from the contact log in **calendar
days in UTC**: the as-of date ``D`` is a UTC midnight and "day ``d``" means
``[d 00:00 UTC, d+1 00:00 UTC)``. Local calendar days differ from UTC days by
at most one day near midnight, and lawful calls only happen between 08:00 and
22:00 local time, so the difference rarely matters; a lender who needs local
days should pass contacts already shifted to local wall-clock time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from features.vocab import CONVERSATION_OUTCOMES, SUPPRESSING_STATUSES

#: Local contact hours as ``("HH:MM", "HH:MM")``, both ends included (a policy's ``contact_hours``).
Hours = tuple[str, str]

#: Offers that count as forbearance (a plan the debtor can keep).
FORBEARANCE_OFFERS: frozenset[str] = frozenset({"installment_plan", "extension"})
#: Offers never made to a debtor in hardship, whatever the tier or stage says.
HARDSHIP_FORBIDDEN_OFFERS: frozenset[str] = frozenset({"settlement", "legal_review"})

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def hhmm_to_minutes(text: str) -> int:
    """Convert a local clock time ``"HH:MM"`` to minutes after midnight.

    Parameters
    ----------
    text : str
        A 24-hour clock time such as ``"08:00"`` or ``"21:30"``.

    Returns
    -------
    int
        Minutes after midnight.

    Raises
    ------
    ValueError
        If ``text`` is not a valid ``HH:MM`` time.

    Examples
    --------
    >>> hhmm_to_minutes("21:30")
    1290
    """
    match = _HHMM.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a clock time HH:MM (00:00 to 23:59)")
    return int(match.group(1)) * 60 + int(match.group(2))


@dataclass(frozen=True)
class ComplianceProfile:
    """Hard limits of one jurisdiction, which a policy may tighten only.

    Attributes
    ----------
    name : str
        Profile key, as written in the policy's ``jurisdiction``.
    reference : str
        The legal texts the limits come from.
    contact_start, contact_end : str
        Earliest and latest local clock time of any contact, ``HH:MM``; both
        ends are allowed (21:00:00 is lawful under Reg F, 21:00:01 is not).
    max_calls_7d : int or None
        Legal cap on outbound call attempts in any 7 consecutive days for one
        debt (None: no such rolling cap in this profile).
    max_sms_7d : int or None
        Legal cap on text messages over the next 7 days (None: no numeric cap).
    conversation_block_days : int
        After a telephone conversation on day ``c``, no call on days
        ``c .. c + conversation_block_days - 1`` (0: no such rule).
    max_calls_day : int or None
        Cap on outbound call attempts on one day (None: none beyond the 7-day cap).
    max_conversations_day : int or None
        Cap on effective conversations on one day; the dialer stops calling
        for the day once it is reached (None: no such rule).
    max_unanswered_day : int or None
        Cap on unanswered attempts on one day to one number (None: no such rule).
    third_party_contact_allowed : bool
        False when only the debtor may be contacted (no relatives, employers,
        references). True means the profile does not forbid it outright; the
        law's other limits on third-party contact still apply.
    forbearance_for_low_ability : bool
        Treat a debtor whose ability to pay is low as in difficulty and offer
        forbearance first, as for hardship.
    """

    name: str
    reference: str
    contact_start: str
    contact_end: str
    max_calls_7d: int | None
    max_sms_7d: int | None = None
    conversation_block_days: int = 0
    max_calls_day: int | None = None
    max_conversations_day: int | None = None
    max_unanswered_day: int | None = None
    third_party_contact_allowed: bool = True
    forbearance_for_low_ability: bool = False
    suppressing_statuses: tuple[str, ...] = field(default=SUPPRESSING_STATUSES)

    @property
    def planning_cap_7d(self) -> int | None:
        """Return the most calls a 7-day plan may ever hold (None: no numeric cap)."""
        if self.max_calls_7d is not None:
            return self.max_calls_7d
        if self.max_calls_day is not None:
            return 7 * self.max_calls_day
        return None

    @property
    def window_minutes(self) -> tuple[int, int]:
        """Return the lawful local contact window as minutes after midnight."""
        return hhmm_to_minutes(self.contact_start), hhmm_to_minutes(self.contact_end)


US_REG_F = ComplianceProfile(
    name="us_reg_f",
    reference=(
        "12 CFR 1006.14(b)(2) (at most 7 calls in 7 consecutive days per debt; none within "
        "7 days after a telephone conversation, its date counting as day 1); "
        "12 CFR 1006.6(b)(1)(i) (no contact before 8 a.m. or after 9 p.m. local time)"
    ),
    contact_start="08:00",
    contact_end="21:00",
    max_calls_7d=7,
    conversation_block_days=7,
)
CN_2025 = ComplianceProfile(
    name="cn_2025",
    reference=(
        "2025 national guideline on online consumer credit collection and the China Banking "
        "Association's 2026 collection guideline (no contact 22:00-08:00 local time; at most "
        "3 effective conversations a day; at most 6 unanswered attempts a day to one number; "
        "debtor only, no third parties)"
    ),
    contact_start="08:00",
    contact_end="22:00",
    # Planning 6 attempts a day keeps unanswered ones within 6 whatever the answers.
    max_calls_7d=None,
    max_calls_day=6,
    max_conversations_day=3,
    max_unanswered_day=6,
    third_party_contact_allowed=False,
)
UK_CONC = ComplianceProfile(
    name="uk_conc",
    reference=(
        "FCA CONC 7.3.4R (forbearance and due consideration for customers in arrears "
        "difficulties); CONC 7.3.10R (no pressure to pay in one or very few repayments); "
        "CONC 7.9.4R and 7.9.5G (no contact at unreasonable times or frequency)"
    ),
    contact_start="08:00",
    contact_end="21:00",
    max_calls_7d=None,
    forbearance_for_low_ability=True,
)

#: Every profile, by the name a policy uses in ``jurisdiction``.
PROFILES: dict[str, ComplianceProfile] = {p.name: p for p in (US_REG_F, CN_2025, UK_CONC)}


def get_profile(name: str) -> ComplianceProfile:
    """Return the compliance profile named ``name``.

    Parameters
    ----------
    name : str
        One of ``us_reg_f``, ``cn_2025``, ``uk_conc``.

    Returns
    -------
    ComplianceProfile
        The profile.

    Raises
    ------
    ValueError
        If no profile has that name.

    Examples
    --------
    >>> get_profile("us_reg_f").max_calls_7d
    7
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown jurisdiction {name!r}: use one of {known}") from None


def suppressed_reason(accounts: pd.DataFrame) -> pd.Series:
    """Name the first suppressing status of each account, or None if contact is allowed.

    Parameters
    ----------
    accounts : pandas.DataFrame
        Has the boolean status columns of :data:`features.vocab.SUPPRESSING_STATUSES`
        (a missing value counts as True: when in doubt, do not contact).

    Returns
    -------
    pandas.Series
        Object Series aligned with ``accounts``: the status name or None.
    """
    missing = [c for c in SUPPRESSING_STATUSES if c not in accounts.columns]
    if missing:
        raise ValueError(f"accounts is missing the status columns {missing}")
    flags = np.column_stack(
        [
            accounts[c].astype("boolean").fillna(True).to_numpy(dtype=bool)
            for c in SUPPRESSING_STATUSES
        ]
    )
    any_flag = flags.any(axis=1)
    first = flags.argmax(axis=1)
    names = np.array(SUPPRESSING_STATUSES, dtype=object)[first]
    return pd.Series(np.where(any_flag, names, None), index=accounts.index, dtype=object)


def call_caps(
    contacts: pd.DataFrame,
    account_ids: Iterable[str],
    as_of: pd.Timestamp,
    profile: ComplianceProfile,
) -> pd.DataFrame:
    """Compute each account's legal call cap for the 7 days starting at ``as_of``.

    The plan covers days ``D .. D+6`` (``D`` = ``as_of``) and may place its
    calls on any of them, so every 7-day window that overlaps the plan must
    stay within the profile:

    - ``calls_7d_used`` counts outbound call attempts (any outcome) on the
      UTC calendar days ``D-6 .. D``. The log normally holds nothing on ``D``
      (features read only events before ``D``), but a call logged on ``D``
      did happen, so it counts. A call on ``D-7`` or earlier does not.
    - Under a 7-in-7 cap (``us_reg_f``) the calls left are ``7 - calls_7d_used``:
      every window ``[D-k, D+6-k]`` holds past calls from ``[D-6, D]`` only.
    - A telephone conversation (a call, in or out, whose outcome is in
      :data:`features.vocab.CONVERSATION_OUTCOMES`) on day ``c`` blocks calls
      on days ``c .. c+6`` (the conversation day is day 1), so
      ``blocked_until = c + 6`` for the latest conversation. A block still in
      force on ``D`` sets the whole 7-day cap to 0: simple and safe, at the
      cost of calls that would be lawful after the block ends inside the plan.
      Inbound conversations count too, the cautious reading of the rule.
    - Under per-day caps (``cn_2025``) each day allows ``max_calls_day``
      attempts; day ``D`` allows none once ``max_conversations_day``
      conversations or ``max_unanswered_day`` unanswered attempts are logged
      on it, else what is left of ``max_unanswered_day``. The dialer must
      apply the per-day conversation cap live as answers come in.

    Parameters
    ----------
    contacts : pandas.DataFrame
        The contact log (contract columns ``account_id``, ``contact_at`` in
        UTC, ``channel``, ``direction``, ``outcome``).
    account_ids : iterable of str
        The accounts to compute caps for (one output row each, in this order).
    as_of : pandas.Timestamp
        The as-of date ``D``, a tz-naive midnight.
    profile : ComplianceProfile
        The jurisdiction profile.

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``calls_7d_used`` (int64), ``conversations_day_used``
        and ``unanswered_day_used`` (int64, on day ``D``), ``blocked_until``
        (datetime64, tz-naive date, always on or after ``D``; NaT when no
        conversation blocks day ``D``),
        ``max_calls_7d_legal`` and ``max_calls_day_legal`` (nullable Int64;
        NA when the profile has no numeric cap).
    """
    ids = pd.Index(pd.Series(list(account_ids), dtype=object), name="account_id")
    day0 = pd.Timestamp(as_of)
    if day0.tzinfo is not None:
        day0 = day0.tz_convert("UTC").tz_localize(None)
    day0 = day0.normalize()
    d = day0.to_datetime64()
    one_day = np.timedelta64(1, "D")
    # A conversation up to (block - 1) days before D still blocks D; older ones have lapsed.
    lookback = max(6, profile.conversation_block_days - 1)

    # Naive UTC datetime64 arrays: fast comparisons on large logs.
    at = pd.to_datetime(contacts["contact_at"], utc=True).dt.tz_localize(None).to_numpy()
    keep = (
        (contacts["channel"].to_numpy() == "call")
        & (at >= d - lookback * one_day)
        & (at < d + one_day)
        & contacts["account_id"].isin(ids).to_numpy()
    )
    at = at[keep]
    acc = contacts["account_id"].to_numpy()[keep]
    out = contacts["direction"].to_numpy()[keep] == "outbound"
    conv = contacts["outcome"].isin(CONVERSATION_OUTCOMES).to_numpy()[keep]
    in_7d = at >= d - 6 * one_day
    on_d = at >= d
    counts = (
        pd.DataFrame(
            {
                "account_id": acc,
                "calls_7d_used": (out & in_7d).astype(np.int64),
                "conversations_day_used": (conv & on_d).astype(np.int64),
                "unanswered_day_used": (out & ~conv & on_d).astype(np.int64),
            }
        )
        .groupby("account_id", sort=False)
        .sum()
        .reindex(ids, fill_value=0)
    )

    if profile.conversation_block_days > 0:
        conv_day = pd.Series(at[conv], index=acc[conv]).dt.normalize()
        blocked_until = conv_day.groupby(level=0).max().reindex(ids) + pd.Timedelta(
            days=profile.conversation_block_days - 1
        )
    else:
        blocked_until = pd.Series(pd.NaT, index=ids)
    blocked_until = blocked_until.astype("datetime64[ns]")
    blocked = (blocked_until >= day0).to_numpy(dtype=bool)  # NaT compares False

    used = counts["calls_7d_used"].to_numpy(dtype=np.int64)
    conv_d = counts["conversations_day_used"].to_numpy(dtype=np.int64)
    unans_d = counts["unanswered_day_used"].to_numpy(dtype=np.int64)
    n = len(ids)
    no_cap = np.iinfo(np.int64).max
    legal_7d = np.full(n, no_cap, dtype=np.int64)
    legal_day = np.full(n, no_cap, dtype=np.int64)
    if profile.max_calls_day is not None:
        day_left = np.full(n, profile.max_calls_day, dtype=np.int64)
        if profile.max_unanswered_day is not None:
            day_left = np.minimum(day_left, profile.max_unanswered_day - unans_d)
        if profile.max_conversations_day is not None:
            day_left = np.where(conv_d >= profile.max_conversations_day, 0, day_left)
        legal_7d = np.clip(day_left, 0, None) + 6 * profile.max_calls_day
        legal_day = np.full(n, profile.max_calls_day, dtype=np.int64)
    if profile.max_calls_7d is not None:
        legal_7d = np.minimum(legal_7d, np.clip(profile.max_calls_7d - used, 0, None))
    legal_7d = np.where(blocked, 0, legal_7d)
    legal_day = np.minimum(legal_day, legal_7d)

    return pd.DataFrame(
        {
            "account_id": ids.to_numpy(),
            "calls_7d_used": used,
            "conversations_day_used": conv_d,
            "unanswered_day_used": unans_d,
            "blocked_until": blocked_until.to_numpy(),
            "max_calls_7d_legal": _capped(legal_7d, no_cap),
            "max_calls_day_legal": _capped(legal_day, no_cap),
        }
    )


def _capped(values: np.ndarray, no_cap: int) -> pd.arrays.IntegerArray:
    """Turn the 'no cap' sentinel into NA in a nullable Int64 array."""
    mask = values == no_cap
    return pd.arrays.IntegerArray(np.where(mask, 0, values).astype(np.int64), mask)


def allowed_window(profile: ComplianceProfile, hours: Hours | None = None) -> tuple[int, int]:
    """Return the contact window in local minutes: the profile's, narrowed by ``hours``."""
    start, end = profile.window_minutes
    if hours is not None:
        start = max(start, hhmm_to_minutes(hours[0]))
        end = min(end, hhmm_to_minutes(hours[1]))
    return start, end


def contact_window(
    timezones: pd.Series, profile: ComplianceProfile, hours: Hours | None = None
) -> pd.Series:
    """Give each account's lawful contact window as local hours, e.g. ``"08:00-21:00"``.

    The window is the profile's, narrowed by the policy's contact hours
    (a policy cannot widen it; :func:`pipeline.policy.load_policy` refuses
    that). It is in the account's local time zone, so the string is the same
    for every valid zone; the dialer converts it with the account's
    ``timezone``.

    Parameters
    ----------
    timezones : pandas.Series
        IANA time zone names, one per account.
    profile : ComplianceProfile
        The jurisdiction profile.
    hours : tuple of str, optional
        Local ``(start, end)`` hours that may narrow the window (the policy's).

    Returns
    -------
    pandas.Series
        Object Series aligned with ``timezones``.

    Raises
    ------
    ValueError
        If a time zone is not a known IANA name (local hours would be
        meaningless); validation should have rejected such accounts.
    """
    start, end = allowed_window(profile, hours)
    bad = [tz for tz in pd.unique(timezones) if not _is_zone(tz)]
    if bad:
        n_bad = int(timezones.isin(bad).sum())
        raise ValueError(
            f"accounts.timezone must be an IANA time zone name: {n_bad} accounts, "
            f"e.g. {bad[0]!r}; fix the accounts table or reject those accounts"
        )
    text = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    return pd.Series(text, index=timezones.index, dtype=object)


def _is_zone(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def to_local(utc_ts: pd.Series, timezones: pd.Series) -> pd.Series:
    """Convert UTC timestamps to each row's local wall-clock time (tz-naive).

    Parameters
    ----------
    utc_ts : pandas.Series
        Timestamps, tz-aware (any zone) or tz-naive UTC.
    timezones : pandas.Series
        IANA zone names aligned with ``utc_ts``.

    Returns
    -------
    pandas.Series
        Tz-naive local times aligned with ``utc_ts``.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2024-01-15 13:30"], utc=True))
    >>> to_local(ts, pd.Series(["Asia/Shanghai"]))[0]
    Timestamp('2024-01-15 21:30:00')
    """
    ts = pd.to_datetime(utc_ts, utc=True)
    out = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ns]")
    # One conversion per zone: a handful of zones, not one per account.
    for tz, idx in ts.groupby(timezones.to_numpy(), sort=False).groups.items():
        out.loc[idx] = ts.loc[idx].dt.tz_convert(tz).dt.tz_localize(None).to_numpy()
    return out


def is_contact_allowed(
    local_ts: pd.Timestamp | pd.Series, profile: ComplianceProfile, hours: Hours | None = None
) -> bool | pd.Series:
    """Tell whether a contact at a local wall-clock time is within the lawful window.

    Both ends of the window are allowed: under ``us_reg_f`` 08:00:00 and
    21:00:00 are lawful, 07:59:59 and 21:00:01 are not.

    Parameters
    ----------
    local_ts : pandas.Timestamp or pandas.Series
        The debtor's local time: tz-naive local wall-clock time, or tz-aware
        in the debtor's own zone (its wall-clock reading is used). Convert
        UTC times with :func:`to_local` first.
    profile : ComplianceProfile
        The jurisdiction profile.
    hours : tuple of str, optional
        Local ``(start, end)`` hours that narrow the window (the policy's).

    Returns
    -------
    bool or pandas.Series
        Scalar for a scalar input, else a boolean Series.

    Examples
    --------
    >>> is_contact_allowed(pd.Timestamp("2024-01-15 21:30"), PROFILES["us_reg_f"])
    False
    >>> is_contact_allowed(pd.Timestamp("2024-01-15 21:30"), PROFILES["cn_2025"])
    True
    """
    start, end = allowed_window(profile, hours)
    series = local_ts if isinstance(local_ts, pd.Series) else pd.Series([pd.Timestamp(local_ts)])
    t = series.dt
    seconds = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
    allowed = (seconds >= start * 60) & (seconds <= end * 60)
    return allowed if isinstance(local_ts, pd.Series) else bool(allowed.iloc[0])
