"""Jurisdiction compliance profiles, enforced in code on top of any policy.

A policy YAML names a default profile (``jurisdiction``); the profile's limits are
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

Each account is planned under its own profile (``accounts.jurisdiction``,
else the policy's default). The counts from the contact log, in the debtor's
local days, are in :mod:`pipeline.contact_log`; the caps they leave are in
:mod:`pipeline.limits`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from features.vocab import SUPPRESSING_STATUSES

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
    min_low_ability_threshold : float
        Floor of the policy's ``low_ability_threshold`` under this profile
        (0: no floor); a policy may raise the threshold, never lower it.
    per_customer : bool
        The call limits are per person (``customer_id``), shared by all of a
        debtor's accounts, rather than per debt.
    limit_prefix : str
        Prefix of this profile's rule names in ``limit_reasons``.
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
    min_low_ability_threshold: float = 0.0
    per_customer: bool = False
    limit_prefix: str = ""
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
    limit_prefix="reg_f",
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
    per_customer=True,
    limit_prefix="cn",
)
UK_CONC = ComplianceProfile(
    name="uk_conc",
    reference=(
        "FCA CONC 7.3.4R (forbearance and due consideration for customers in arrears "
        "difficulties); CONC 7.3.10R (no pressure to pay in one or very few repayments); "
        "CONC 7.9.4R and 7.9.5G (no contact at unreasonable times or frequency); "
        "FCA PRIN 2A (Consumer Duty: avoid foreseeable harm). The regulator sets no number: "
        "the project caps calls at the US 7 in 7 days, per person, and always treats a "
        "p_ability below 0.3 as difficulty"
    ),
    contact_start="08:00",
    contact_end="21:00",
    max_calls_7d=7,
    forbearance_for_low_ability=True,
    min_low_ability_threshold=0.3,
    per_customer=True,
    limit_prefix="uk_conc",
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


def account_jurisdictions(accounts: pd.DataFrame, default: str) -> pd.Series:
    """Return each account's profile name: its ``jurisdiction``, else ``default``.

    Parameters
    ----------
    accounts : pandas.DataFrame
        Accounts, with an optional ``jurisdiction`` column (null: the default).
    default : str
        The policy's default jurisdiction.

    Returns
    -------
    pandas.Series
        Object Series aligned with ``accounts``.

    Raises
    ------
    ValueError
        If a value names no profile (validation should have rejected it).
    """
    if "jurisdiction" not in accounts.columns:
        return pd.Series(default, index=accounts.index, dtype=object)
    names = accounts["jurisdiction"].astype(object).where(accounts["jurisdiction"].notna(), default)
    bad = ~names.isin(list(PROFILES))
    if bad.any():
        raise ValueError(
            f"accounts.jurisdiction must be one of {sorted(PROFILES)}: {int(bad.sum())} accounts, "
            f"e.g. {names[bad].iloc[0]!r}; fix the accounts table or reject those accounts"
        )
    return names


#: Stand-in for "no numeric cap" in the integer arrays of :func:`profile_arrays`.
NO_CAP: int = 10**9


def profile_arrays(names: pd.Series) -> pd.DataFrame:
    """Spread each account's profile limits into columns (no cap: :data:`NO_CAP`).

    Parameters
    ----------
    names : pandas.Series
        Profile names, one per account (see :func:`account_jurisdictions`).

    Returns
    -------
    pandas.DataFrame
        Aligned with ``names``: ``max_calls_7d``, ``max_sms_7d``,
        ``conversation_block_days``, ``max_calls_day``, ``max_conversations_day``,
        ``max_unanswered_day`` (int64), ``third_party_contact_allowed``,
        ``forbearance_for_low_ability``, ``per_customer`` (bool),
        ``min_low_ability_threshold`` (float) and ``limit_prefix`` (str).
    """

    def cap(value: int | None) -> int:
        return NO_CAP if value is None else int(value)

    table = pd.DataFrame(
        [
            {
                "max_calls_7d": cap(p.max_calls_7d),
                "max_sms_7d": cap(p.max_sms_7d),
                "conversation_block_days": p.conversation_block_days,
                "max_calls_day": cap(p.max_calls_day),
                "max_conversations_day": cap(p.max_conversations_day),
                "max_unanswered_day": cap(p.max_unanswered_day),
                "third_party_contact_allowed": p.third_party_contact_allowed,
                "forbearance_for_low_ability": p.forbearance_for_low_ability,
                "per_customer": p.per_customer,
                "min_low_ability_threshold": p.min_low_ability_threshold,
                "limit_prefix": p.limit_prefix,
            }
            for p in PROFILES.values()
        ],
        index=list(PROFILES),
    )
    pos = table.index.get_indexer(names)
    return table.iloc[pos].set_index(names.index)


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
