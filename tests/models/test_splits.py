"""Tests of the time split: by month, ordered, never random, nothing crossing."""

from __future__ import annotations

import pandas as pd
import pytest

from models.splits import time_split

MONTHS = pd.to_datetime(
    ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"]
)


def _frame() -> pd.DataFrame:
    # Account A is overdue every month: its rows must split by date only.
    dates = [MONTHS[i] for i in (0, 0, 1, 2, 3, 3, 4, 5, 5)]
    ids = ["A", "B", "A", "A", "A", "C", "A", "A", "B"]
    return pd.DataFrame({"account_id": ids, "as_of_date": dates, "x": range(9)})


def test_oldest_months_train_then_validation_then_newest_test():
    split = time_split(_frame(), validation_months=2, test_months=1)
    assert split.train["x"].tolist() == [0, 1, 2, 3]
    assert split.validation["x"].tolist() == [4, 5, 6]
    assert split.test["x"].tolist() == [7, 8]
    assert split.months["test"] == (MONTHS[5],)
    assert split.window("validation") == (MONTHS[3], MONTHS[4])


def test_no_date_crosses_a_boundary_and_every_row_is_used_once():
    frame = _frame()
    split = time_split(frame, validation_months=2, test_months=2)
    assert split.train["as_of_date"].max() < split.validation["as_of_date"].min()
    assert split.validation["as_of_date"].max() < split.test["as_of_date"].min()
    used = pd.concat([split.train, split.validation, split.test])
    assert sorted(used["x"]) == list(range(9))
    # An account's training rows are all older than its test rows.
    a_train = split.train.loc[split.train["account_id"] == "A", "as_of_date"]
    a_test = split.test.loc[split.test["account_id"] == "A", "as_of_date"]
    assert a_train.max() < a_test.min()


def test_gap_months_are_left_out_between_slices():
    split = time_split(_frame(), validation_months=1, test_months=1, gap_months=1)
    assert split.months["train"] == (MONTHS[0], MONTHS[1])
    assert split.months["validation"] == (MONTHS[3],)
    assert split.months["test"] == (MONTHS[5],)
    assert MONTHS[2] not in set(
        pd.concat([split.train, split.validation, split.test])["as_of_date"]
    )


def test_split_does_not_depend_on_row_order():
    frame = _frame()
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = time_split(frame, 2, 1)
    b = time_split(shuffled, 2, 1)
    assert sorted(a.test["x"]) == sorted(b.test["x"])
    assert sorted(a.train["x"]) == sorted(b.train["x"])


def test_too_few_months_is_refused_with_the_count():
    with pytest.raises(ValueError, match="needs at least 7 distinct as_of_date values"):
        time_split(_frame(), validation_months=4, test_months=2)
