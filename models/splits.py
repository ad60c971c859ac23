"""Time split of a training set: oldest months train, then validation, newest test.

Never random: every row of a month goes to the same split, and every
training month is strictly older than every validation month, which is
strictly older than every test month. An account seen in several months
therefore only ever has its past in training and its future in validation
or test, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class TimeSplit:
    """The three slices of a training set and the month ends each one holds."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    months: dict[str, tuple[pd.Timestamp, ...]]

    def frames(self) -> dict[str, pd.DataFrame]:
        """Return the slices by name, in time order."""
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def window(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Return the first and last as-of date of a slice."""
        months = self.months[name]
        return months[0], months[-1]


def time_split(
    frame: pd.DataFrame,
    validation_months: int = 2,
    test_months: int = 2,
    gap_months: int = 0,
    date_column: str = "as_of_date",
) -> TimeSplit:
    """Split a training set by as-of date into train, validation and test.

    Parameters
    ----------
    frame : DataFrame
        Training set with one as-of date per row (month ends).
    validation_months, test_months : int
        Number of distinct as-of dates in the validation and test slices.
    gap_months : int
        Distinct as-of dates dropped between train and validation and between
        validation and test (an embargo, so that no label horizon of an
        earlier slice overlaps the as-of dates of the next).
    date_column : str
        Column holding the as-of date.

    Returns
    -------
    TimeSplit

    Raises
    ------
    ValueError
        When there are too few distinct as-of dates to leave at least one
        month for training.

    Examples
    --------
    >>> df = pd.DataFrame({"as_of_date": pd.to_datetime(
    ...     ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-04-30"])})
    >>> s = time_split(df, validation_months=1, test_months=1)
    >>> len(s.train), len(s.validation), len(s.test)
    (2, 1, 2)
    """
    if date_column not in frame.columns:
        raise ValueError(f"training set has no {date_column!r} column to split on")
    dates = pd.DatetimeIndex(frame[date_column].unique()).sort_values()
    needed = validation_months + test_months + 2 * gap_months + 1
    if len(dates) < needed:
        raise ValueError(
            f"time split needs at least {needed} distinct {date_column} values "
            f"({test_months} test + {validation_months} validation + {2 * gap_months} gap "
            f"+ 1 train), the training set has {len(dates)}: "
            f"widen the training window or shorten the splits in the config"
        )
    test_dates = dates[len(dates) - test_months :]
    val_end = len(dates) - test_months - gap_months
    val_dates = dates[val_end - validation_months : val_end]
    train_dates = dates[: val_end - validation_months - gap_months]
    col = frame[date_column]
    return TimeSplit(
        train=frame.loc[col.isin(train_dates)],
        validation=frame.loc[col.isin(val_dates)],
        test=frame.loc[col.isin(test_dates)],
        months={
            "train": tuple(train_dates),
            "validation": tuple(val_dates),
            "test": tuple(test_dates),
        },
    )
