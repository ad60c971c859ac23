"""Tests of the uplift learning data: one unit per account-episode, outcome in [D, D + H)."""

from __future__ import annotations

import factories
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.uplift_data import episode_first_nights, uplift_units

END = pd.Timestamp("2024-03-10")


def _log(*rows):
    """Logged plan rows (account_id, as_of_date, arm, arrears, p_willingness)."""
    return pd.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "as_of_date": factories.dates(*[r[1] for r in rows]),
            "arm": [r[2] for r in rows],
            "arm_probability": [0.05 if r[2] == "control" else 0.0125 for r in rows],
            "arrears": [float(r[3]) for r in rows],
            "p_willingness": [float(r[4]) for r in rows],
        }
    )


LOG = _log(
    ("A", "2024-03-01", "low", 200, 0.3),
    ("A", "2024-03-02", "low", 180, 0.4),  # same episode: not a unit
    ("B", "2024-03-02", "control", 100, 0.6),
    ("B", "2024-03-03", "control", 90, 0.6),  # the log ran on 03-03
    ("A", "2024-03-04", "high", 150, 0.2),  # A missing on 03-03: a new episode
    ("C", "2024-03-02", "none", 80, 0.5),
)
PAY = factories.payment_rows(
    ("A", "2024-02-29 23:59", 500.0),  # before D: a feature's, never the outcome's
    ("A", "2024-03-01 00:00", 50.0),  # on D: counts
    ("A", "2024-03-07 23:59", 30.0),  # last minute of the horizon: counts
    ("A", "2024-03-08 00:00", 100.0),  # D + 7: never counts
    ("C", "2024-03-05 10:00", 200.0),  # more than the arrears: clipped to 1
)


def test_one_unit_per_episode_on_its_first_night_with_its_own_horizon():
    units = uplift_units(LOG, PAY, 7, END, features=("p_willingness",))
    by = units.set_index("account_id")
    assert sorted(by.index) == ["A", "B", "C"]  # A's second episode ends after END
    assert units.attrs["counts"] == {"rows": 6, "units": 4, "incomplete_horizon": 1}
    assert by.loc["A", "as_of_date"] == pd.Timestamp("2024-03-01")
    assert by.loc["A", "arm"] == "low" and by.loc["A", "p_willingness"] == 0.3
    assert by.loc["A", "outcome"] == pytest.approx(80 / 200)
    assert by.loc["A", "paid_amount"] == pytest.approx(80.0)
    assert by.loc["B", "outcome"] == 0.0 and by.loc["B", "arm_probability"] == 0.05
    assert by.loc["C", "outcome"] == 1.0


def test_a_longer_horizon_or_a_later_end_changes_only_what_it_should():
    units = uplift_units(LOG, PAY, 8, pd.Timestamp("2024-03-31"))
    by = units.set_index(["account_id", "as_of_date"])
    assert by.loc[("A", pd.Timestamp("2024-03-01")), "outcome"] == pytest.approx(180 / 200)
    assert by.loc[("A", pd.Timestamp("2024-03-04")), "arm"] == "high"  # now complete
    assert by.loc[("A", pd.Timestamp("2024-03-04")), "outcome"] == pytest.approx(130 / 150)


def test_episodes_follow_the_nights_of_the_log():
    first = episode_first_nights(LOG)
    assert first.tolist() == [True, False, True, False, True, True]
    assert episode_first_nights(LOG.iloc[::-1]).tolist() == first[::-1].tolist()


def test_older_logs_without_arm_use_the_control_group():
    old = LOG.drop(columns=["arm", "arm_probability"]).assign(
        control_group=[False, False, True, True, False, False]
    )
    units = uplift_units(old, PAY, 7, END)
    assert units.set_index("account_id")["arm"].to_dict() == {
        "A": "plan",
        "B": "control",
        "C": "plan",
    }
    assert units["arm_probability"].isna().all()


def test_bad_logs_are_refused_with_the_table_column_and_example():
    with pytest.raises(KeyError, match=r"table plans: missing columns \['arrears'\]"):
        uplift_units(LOG.drop(columns="arrears"), PAY, 7, END)
    with pytest.raises(KeyError, match="table plans: missing columns"):
        uplift_units(LOG, PAY, 7, END, features=("dpd",))
    twice = pd.concat([LOG, LOG.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="one row per account and night.*'account_id': 'A'"):
        uplift_units(twice, PAY, 7, END)
    with pytest.raises(ValueError, match="horizon_days must be >= 1"):
        uplift_units(LOG, PAY, 0, END)


@settings(max_examples=30, deadline=None)
@given(
    hours=st.lists(st.integers(min_value=7 * 24, max_value=40 * 24), max_size=5),
    amount=st.floats(min_value=0.01, max_value=1e4),
)
def test_payments_on_or_after_the_horizon_never_count(hours, amount):
    base = uplift_units(LOG, PAY, 7, END)
    late = [("A", str(pd.Timestamp("2024-03-01") + pd.Timedelta(hours=h)), amount) for h in hours]
    more = pd.concat([PAY, factories.payment_rows(*late)], ignore_index=True)
    again = uplift_units(LOG, more, 7, END)
    np.testing.assert_array_equal(again["outcome"].to_numpy(), base["outcome"].to_numpy())
