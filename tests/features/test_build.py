"""The feature table: population, column order, categories, nulls, partitions, schema."""

from __future__ import annotations

import factories
import numpy as np
import pandas as pd
import pandera.errors
import pytest

from features import vocab
from features.build import build_features, partition_of
from features.catalogue import FEATURE_COLUMNS, FEATURES
from features.schema import feature_schema, validate_features

D = "2024-03-01"


def test_columns_order_dtypes_and_values():
    feats = build_features(factories.tables(), D)
    assert list(feats.columns) == ["account_id", "as_of_date", *FEATURE_COLUMNS]
    assert feats["as_of_date"].dtype == "datetime64[ns]"
    assert (feats["as_of_date"] == pd.Timestamp(D)).all()
    assert isinstance(feats["product"].dtype, pd.CategoricalDtype)
    assert tuple(feats["product"].cat.categories) == vocab.PRODUCTS
    for name in FEATURE_COLUMNS:
        if FEATURES[name].dtype != "category":
            assert feats[name].dtype == FEATURES[name].dtype, name
    # factories: 100 due 1 Jan and 1 Feb; A1 paid 150, A2 100, A3 nothing.
    assert feats["account_id"].tolist() == ["A1", "A2", "A3"]
    assert feats["arrears"].tolist() == [50.0, 100.0, 200.0]
    assert feats["dpd"].tolist() == [29, 29, 60]


def test_overdue_only_keeps_accounts_above_materiality():
    tables = factories.tables()
    # On 15 Jan only the 1 Jan installment is due; A1 paid it on the day.
    feats = build_features(tables, "2024-01-15")
    assert feats["account_id"].tolist() == ["A2", "A3"]
    everyone = build_features(tables, "2024-01-15", overdue_only=False)
    assert everyone["account_id"].tolist() == ["A1", "A2", "A3"]
    assert everyone["arrears"].tolist() == [0.0, 100.0, 100.0]
    # A materiality above the arrears makes everyone current.
    assert build_features(tables, "2024-01-15", materiality=150).empty


def test_accounts_opened_after_d_are_left_out():
    tables = factories.tables()
    tables["accounts"]["opened_date"] = factories.dates("2023-01-15", "2024-03-02", "2024-03-01")
    feats = build_features(tables, D, overdue_only=False)
    # Opened on D is not "after D"; opened the day after is.
    assert feats["account_id"].tolist() == ["A1", "A3"]


def test_missing_offers_table_gives_null_offer_features():
    tables = factories.tables()
    del tables["offers"]
    feats = build_features(tables, D)
    offer_cols = [n for n in FEATURE_COLUMNS if FEATURES[n].group == "offer"]
    assert len(offer_cols) == 4
    assert feats[offer_cols].isna().all().all()
    with_offers = build_features(factories.tables(), D)
    assert with_offers["offer_count_365d"].tolist() == [1.0, 0.0, 1.0]


def test_optional_account_columns_are_used_when_present_and_null_when_absent():
    tables = factories.tables()
    feats = build_features(tables, D)
    assert feats[["monthly_income", "age", "installment_to_income"]].isna().all().all()
    tables["accounts"]["monthly_income"] = [1000.0, np.nan, 400.0]
    tables["accounts"]["age"] = [30.0, 41.0, 55.0]
    tables["accounts"]["region"] = ["N", "S", None]
    feats = build_features(tables, D)
    np.testing.assert_allclose(feats["installment_to_income"], [0.1, np.nan, 0.25])
    np.testing.assert_allclose(feats["arrears_to_income"], [0.05, np.nan, 0.5])
    assert feats["age"].tolist() == [30.0, 41.0, 55.0]


def test_orphan_rows_are_ignored():
    tables = factories.tables()
    extra = factories.payments().iloc[:1].assign(payment_id="PX", account_id="GHOST")
    tables["payments"] = pd.concat([tables["payments"], extra], ignore_index=True)
    pd.testing.assert_frame_equal(build_features(tables, D), build_features(factories.tables(), D))


def test_partitions_give_the_same_table():
    tables = factories.tables()
    tables["accounts"] = factories.accounts(5)
    tables["installments"] = factories.installments(["A1", "A2", "A3", "A4", "A5"])
    one = build_features(tables, D, overdue_only=False)
    for k in (2, 3, 7):
        pd.testing.assert_frame_equal(
            build_features(tables, D, overdue_only=False, n_partitions=k), one
        )


def test_partition_of_is_stable_and_in_range():
    ids = np.array([f"A{i:07d}" for i in range(1000)], dtype=object)
    p = partition_of(ids, 8)
    assert p.min() >= 0 and p.max() < 8
    assert len(np.unique(p)) == 8
    np.testing.assert_array_equal(p, partition_of(ids.copy(), 8))
    with pytest.raises(ValueError, match="n_partitions"):
        partition_of(ids, 0)


def test_inputs_are_not_modified():
    tables = factories.tables()
    before = {k: v.copy() for k, v in tables.items()}
    build_features(tables, D)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_missing_required_table_names_it():
    tables = factories.tables()
    del tables["contacts"]
    with pytest.raises(KeyError, match="contacts"):
        build_features(tables, D)


def test_schema_rejects_duplicate_keys_bad_ranges_and_missing_columns():
    feats = build_features(factories.tables(), D)
    before = feats.copy()
    assert validate_features(feats) is feats  # validated in place, without a copy
    pd.testing.assert_frame_equal(feats, before, check_exact=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="account_id"):
        validate_features(pd.concat([feats, feats.iloc[:1]], ignore_index=True))
    bad = feats.copy()
    bad.loc[0, "rpc_rate_30d"] = 1.5
    with pytest.raises(pandera.errors.SchemaErrors, match="rpc_rate_30d"):
        validate_features(bad)
    bad = feats.copy()
    bad.loc[0, "arrears"] = np.nan
    with pytest.raises(pandera.errors.SchemaErrors, match="arrears"):
        validate_features(bad)
    with pytest.raises(pandera.errors.SchemaErrors, match="dpd"):
        validate_features(feats.drop(columns=["dpd"]))
    assert list(feature_schema().columns) == ["account_id", "as_of_date", *FEATURE_COLUMNS]
