"""Plausibility of a run's as-of date against the export it reads.

A date D far after the export's latest event scores a stale export (every
account looks years overdue); a date before its first installment scores
nothing. Both are refused (exit 2) unless the operator says the run is a
deliberate backfill (``--allow-stale``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

#: Columns whose dates are events of the export (the schedule's due dates are not:
#: installments fall due in the future).
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("payments", "paid_at"),
    ("contacts", "contact_at"),
    ("offers", "offered_at"),
    ("accounts", "opened_date"),
)


class AsOfImplausibleError(ValueError):
    """The as-of date does not fit the export (after its latest event, before its schedule)."""


def _as_naive_day(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).normalize()


def latest_event(tables: Mapping[str, pd.DataFrame]) -> tuple[pd.Timestamp, str] | None:
    """Return the export's latest event date and the ``table.column`` it comes from (None if none).

    Examples
    --------
    >>> t = {"payments": pd.DataFrame({"paid_at": pd.to_datetime(["2025-01-03"], utc=True)}),
    ...      "accounts": pd.DataFrame({"opened_date": pd.to_datetime(["2024-05-01"])})}
    >>> latest_event(t)
    (Timestamp('2025-01-03 00:00:00'), 'payments.paid_at')
    """
    best: tuple[pd.Timestamp, str] | None = None
    for table, column in EVENT_COLUMNS:
        frame = tables.get(table)
        if frame is None or column not in frame.columns or not frame[column].notna().any():
            continue
        day = _as_naive_day(frame[column].max())
        if best is None or day > best[0]:
            best = (day, f"{table}.{column}")
    return best


def check_as_of(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, max_days_after: int
) -> None:
    """Refuse an as-of date more than ``max_days_after`` after the latest event or before the schedule.

    Raises
    ------
    AsOfImplausibleError
        With a one-line message naming the date, the export's dates and the way out.
    """
    label = as_of.strftime("%Y-%m-%d")
    hint = "pass --allow-stale for a deliberate backfill"
    due = tables["installments"]["due_date"] if "installments" in tables else pd.Series([])
    if not due.notna().any():
        raise AsOfImplausibleError(
            f"as-of {label}: the export has no installment with a due date, nothing can be "
            f"overdue; check the export ({hint})"
        )
    first_due = _as_naive_day(due.min())
    if as_of < first_due:
        raise AsOfImplausibleError(
            f"as-of {label} is before the export's first installment due {first_due.date()}: "
            f"nothing can be overdue; check --as-of ({hint})"
        )
    latest = latest_event(tables)
    if latest is None:
        return
    gap = (as_of - latest[0]).days
    if gap > max_days_after:
        raise AsOfImplausibleError(
            f"as-of {label} is {gap} days after the export's latest event ({latest[0].date()}, "
            f"{latest[1]}); the policy allows {max_days_after} (max_days_after_export): the "
            f"export looks stale or --as-of mistyped ({hint})"
        )
