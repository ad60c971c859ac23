"""Labels over [D, D + H days) and the month-end training set."""

from __future__ import annotations

import factories
import pandas as pd
import pytest
from factories import payment_rows as payments

from features.catalogue import FEATURE_COLUMNS
from features.labels import build_labels
from features.schema import LABEL_COLUMNS, validate_labels
from features.training_set import build_training_set, month_ends

SNAPSHOTS = pd.DataFrame(
    {
        "account_id": ["A", "B", "C", "A"],
        "as_of_date": pd.to_datetime(["2024-01-31", "2024-01-31", "2024-01-31", "2024-02-29"]),
        "arrears": [200.0, 50.0, 100.0, 300.0],
    }
)


def test_labels_read_only_the_horizon_window():
    pay = payments(
        ("A", "2024-01-30T23:59:59", 1000),  # before D: a feature, not a label
        ("A", "2024-01-31T00:00:00", 70),  # at D: first moment of the horizon
        ("A", "2024-02-29T23:59:59", 30),  # last second of day D + 29
        ("B", "2024-03-01T00:00:00", 80),  # D + 30 days: outside
        ("C", "2024-02-10T12:00:00", 150),  # more than the arrears
    )
    lab = build_labels(SNAPSHOTS, pay, horizon_days=30)
    assert lab["paid_amount"].tolist() == [100.0, 0.0, 150.0, 30.0]
    assert lab["paid_any"].tolist() == [1, 0, 1, 1]
    assert lab["coverage"].tolist() == [0.5, 0.0, 1.0, 0.1]
    assert lab["horizon_end"].tolist() == list(pd.to_datetime(["2024-03-01"] * 3 + ["2024-03-30"]))
    assert lab["paid_any"].dtype == "int64"
    validate_labels(lab)


def test_labels_do_not_change_when_payments_outside_the_horizon_are_added():
    base = payments(("A", "2024-02-05T10:00", 70))
    outside = payments(
        ("A", "2024-02-05T10:00", 70),
        ("A", "2024-01-30T10:00", 500),
        ("A", "2024-03-30T00:00", 500),
        ("B", "2024-01-01T00:00", 500),
    )
    snaps = SNAPSHOTS.iloc[:2]
    pd.testing.assert_frame_equal(build_labels(snaps, base), build_labels(snaps, outside))


def test_shorter_horizon():
    lab = build_labels(SNAPSHOTS.iloc[:1], payments(("A", "2024-02-07T10:00", 70)), horizon_days=7)
    assert lab["paid_any"].tolist() == [0]
    lab = build_labels(SNAPSHOTS.iloc[:1], payments(("A", "2024-02-06T23:00", 70)), horizon_days=7)
    assert lab["paid_any"].tolist() == [1]
    with pytest.raises(ValueError, match="horizon_days"):
        build_labels(SNAPSHOTS, payments(), horizon_days=0)


def test_month_ends_are_last_calendar_days_at_midnight():
    assert month_ends("2023-12-31", "2024-03-30") == list(
        pd.to_datetime(["2023-12-31", "2024-01-31", "2024-02-29"])
    )
    assert month_ends("2024-01-01", "2024-01-30") == []


def test_training_set_snapshots_features_and_labels():
    tables = factories.tables()
    # factories: 100 due on the 1st of Jan, Feb, Mar per account; A1 paid 100 on 1 Jan
    # and 50 on 3 Feb, A2 100 on 20 Jan, A3 nothing.
    ts = build_training_set(tables, "2024-01-01", "2024-03-31", data_end="2024-05-01")
    assert list(ts.columns) == ["account_id", "as_of_date", *FEATURE_COLUMNS, *LABEL_COLUMNS]
    got = ts[["account_id", "as_of_date", "arrears", "paid_any", "coverage"]]
    assert (
        got["as_of_date"].dt.strftime("%m-%d").tolist() == ["01-31"] + ["02-29"] * 3 + ["03-31"] * 3
    )
    assert got["account_id"].tolist() == ["A3", "A1", "A2", "A3", "A1", "A2", "A3"]
    assert got["arrears"].tolist() == [100.0, 50.0, 100.0, 200.0, 150.0, 200.0, 300.0]
    # Only A1 pays in a horizon: 50 on 3 Feb, inside [31 Jan, 1 Mar), but A1 was
    # current on 31 Jan; so every snapshot is a non-payer.
    assert got["paid_any"].tolist() == [0] * 7


def test_training_set_labels_a_payment_in_the_horizon():
    tables = factories.tables()
    tables["payments"] = pd.concat(
        [tables["payments"], payments(("A3", "2024-02-10T08:00", 40))], ignore_index=True
    )
    ts = build_training_set(tables, "2024-01-31", "2024-01-31", data_end="2024-03-01")
    assert ts[["account_id", "paid_any", "coverage", "paid_amount"]].to_dict("list") == {
        "account_id": ["A3"],
        "paid_any": [1],
        "coverage": [0.4],
        "paid_amount": [40.0],
    }


def test_incomplete_horizons_are_left_out_not_labelled_as_non_payers():
    tables = factories.tables()
    # Horizon of 31 Jan ends 1 Mar (exclusive): complete with data to 1 Mar.
    ts = build_training_set(tables, "2024-01-01", "2024-03-31", data_end="2024-03-01")
    assert ts["as_of_date"].unique().tolist() == [pd.Timestamp("2024-01-31")]
    ts = build_training_set(tables, "2024-01-01", "2024-03-31", data_end="2024-02-29")
    assert ts.empty
    assert list(ts.columns) == ["account_id", "as_of_date", *FEATURE_COLUMNS, *LABEL_COLUMNS]
    # Default data end: the latest event in the data (a contact on 7 Feb).
    assert build_training_set(tables, "2024-01-01", "2024-03-31").empty


def test_training_set_schema_enforces_paid_any_against_paid_amount():
    import pandera.pandas as pa

    from features.schema import validate_training_set

    tables = factories.tables()
    ts = build_training_set(tables, "2024-01-01", "2024-03-31", data_end="2024-05-01")
    validate_training_set(ts)
    ts.loc[ts.index[0], "paid_any"] = 1  # paid_amount stays 0
    with pytest.raises(pa.errors.SchemaErrors, match="paid_any_iff_paid_amount"):
        validate_training_set(ts)
