"""Plausibility of a run's as-of date against the export it reads.

A date D far after the export's latest event scores a stale export (every
account looks years overdue); a date before its first installment scores
nothing. Both are refused (exit 2) unless the operator says the run is a
deliberate backfill (``--allow-stale``).

The check reads only the export's *date extremes*: the first installment due
date and the latest date of each event column (:func:`export_dates`). A
sharded run takes them over the whole export (recorded by ``propensity
partition``, or scanned from the files' column statistics), so it checks once
and refuses with the same sentence as the unsharded run.
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
#: The schedule column whose first date bounds the as-of date from below.
DUE_COLUMN: tuple[str, str] = ("installments", "due_date")
#: Every column :func:`export_dates` records, as ``table.column``.
DATE_COLUMNS: tuple[str, ...] = tuple(f"{t}.{c}" for t, c in (DUE_COLUMN, *EVENT_COLUMNS))


class AsOfImplausibleError(ValueError):
    """The as-of date does not fit the export (after its latest event, before its schedule)."""


def _as_naive_day(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).normalize()


def day_text(value) -> str:
    """Return a date or timestamp as its UTC calendar day ``YYYY-MM-DD``.

    Examples
    --------
    >>> day_text(pd.Timestamp("2025-01-03 23:30", tz="America/New_York"))
    '2025-01-04'
    """
    return _as_naive_day(value).strftime("%Y-%m-%d")


def export_dates(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    """Return the first and last day of each date column of :data:`DATE_COLUMNS` present.

    The record is small and JSON-ready: ``{"payments.paid_at": {"min": day,
    "max": day}, ...}``; a column that is absent or all null is left out.
    Records of parts of one export combine with :func:`combine_dates`.

    Examples
    --------
    >>> t = {"payments": pd.DataFrame({"paid_at": pd.to_datetime(["2025-01-03"], utc=True)})}
    >>> export_dates(t)
    {'payments.paid_at': {'min': '2025-01-03', 'max': '2025-01-03'}}
    """
    out: dict[str, dict[str, str]] = {}
    for name in DATE_COLUMNS:
        table, column = name.split(".")
        frame = tables.get(table)
        if frame is None or column not in frame.columns or not frame[column].notna().any():
            continue
        out[name] = {"min": day_text(frame[column].min()), "max": day_text(frame[column].max())}
    return out


def combine_dates(records) -> dict[str, dict[str, str]]:
    """Combine :func:`export_dates` records of parts of one export into the export's.

    Examples
    --------
    >>> a = {"payments.paid_at": {"min": "2025-01-03", "max": "2025-02-01"}}
    >>> b = {"payments.paid_at": {"min": "2024-12-30", "max": "2025-01-09"}}
    >>> combine_dates([a, b, {}])
    {'payments.paid_at': {'min': '2024-12-30', 'max': '2025-02-01'}}
    """
    out: dict[str, dict[str, str]] = {}
    for record in records:
        for name, span in record.items():
            have = out.get(name)
            out[name] = (
                dict(span)
                if have is None
                else {"min": min(have["min"], span["min"]), "max": max(have["max"], span["max"])}
            )
    return {name: out[name] for name in DATE_COLUMNS if name in out}


def _latest(dates: Mapping[str, Mapping[str, str]]) -> tuple[pd.Timestamp, str] | None:
    """Return the latest event day of an :func:`export_dates` record and its ``table.column``.

    None when the record has no event column; the first column wins a tie.

    Examples
    --------
    >>> t = {"payments": pd.DataFrame({"paid_at": pd.to_datetime(["2025-01-03"], utc=True)}),
    ...      "accounts": pd.DataFrame({"opened_date": pd.to_datetime(["2024-05-01"])})}
    >>> _latest(export_dates(t))
    (Timestamp('2025-01-03 00:00:00'), 'payments.paid_at')
    """
    best: tuple[pd.Timestamp, str] | None = None
    for table, column in EVENT_COLUMNS:
        span = dates.get(f"{table}.{column}")
        if span is None:
            continue
        day = pd.Timestamp(span["max"])
        if best is None or day > best[0]:
            best = (day, f"{table}.{column}")
    return best


def check_export_dates(
    dates: Mapping[str, Mapping[str, str]], as_of: pd.Timestamp, max_days_after: int
) -> None:
    """Refuse an as-of date more than ``max_days_after`` after the latest event or before the schedule.

    ``dates`` is an :func:`export_dates` record (the whole export's, when sharded).

    Raises
    ------
    AsOfImplausibleError
        With a one-line message naming the date, the export's dates and the way out.
    """
    label = as_of.strftime("%Y-%m-%d")
    hint = "pass --allow-stale for a deliberate backfill"
    due = dates.get(".".join(DUE_COLUMN))
    if due is None:
        raise AsOfImplausibleError(
            f"as-of {label}: the export has no installment with a due date, nothing can be "
            f"overdue; check the export ({hint})"
        )
    first_due = pd.Timestamp(due["min"])
    if as_of < first_due:
        raise AsOfImplausibleError(
            f"as-of {label} is before the export's first installment due {first_due.date()}: "
            f"nothing can be overdue; check --as-of ({hint})"
        )
    latest = _latest(dates)
    if latest is None:
        return
    gap = (as_of - latest[0]).days
    if gap > max_days_after:
        raise AsOfImplausibleError(
            f"as-of {label} is {gap} days after the export's latest event ({latest[0].date()}, "
            f"{latest[1]}); the policy allows {max_days_after} (max_days_after_export): the "
            f"export looks stale or --as-of mistyped ({hint})"
        )
