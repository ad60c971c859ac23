"""Text read compactly (``read_tables(categories=True)``: repeated text as categoricals, ids as
arrow strings) validates and builds features exactly as the ``object`` read does: same rejects
(table, key, column, rule, value), same clean tables, same features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.factories as f
from features.build import build_features
from features.prepare import _codes
from features.training_set import build_training_set
from pipeline.io import RawTables, read_tables, write_parquet
from pipeline.jobs import load_valid_tables
from pipeline.simulator import simulate_portfolio, write_portfolio
from pipeline.validation import as_object, validate_tables


def _defective_tables() -> dict[str, pd.DataFrame]:
    """The factory tables with one defect per rule that reads a repeated text column."""
    t = f.tables()
    inst = f.installments(["A1", "A2", "A3"], n=3)
    inst.loc[4, "due_date"] = pd.Timestamp("2025-06-01")  # A2 #2 due after A2 #3
    inst.loc[8, "installment_no"] = 2  # A3 #2 twice
    extra = pd.DataFrame(
        {
            "account_id": [None, "A9"],
            "installment_no": [1, 1],
            "due_date": f.dates("2024-01-01", "2024-01-01"),
            "amount_due": [100.0, 100.0],
        }
    ).astype({"installment_no": "int64"})
    t["installments"] = pd.concat([inst, extra], ignore_index=True)
    pay = pd.concat([t["payments"]] * 2, ignore_index=True)
    pay["payment_id"] = [f"P{i}" for i in range(len(pay))]
    pay.loc[1, "channel"] = "cash_in_envelope"
    pay.loc[2, "account_id"] = None
    pay.loc[3, "account_id"] = "A8"
    pay.loc[4, "payment_id"] = None
    t["payments"] = pay
    con = t["contacts"].copy()
    con.loc[1, "outcome"] = "promise_to_pay"  # without amount or date
    con.loc[2, "direction"] = "sideways"
    con.loc[2, "channel"] = None
    con.loc[0, "contact_id"] = "K3"  # twice
    t["contacts"] = con
    off = t["offers"].copy()
    off.loc[0, "discount_pct"] = 10.0  # a discount on a plan
    off.loc[1, "account_id"] = None
    t["offers"] = off
    return t


def test_categorical_read_rejects_and_cleans_like_the_object_read(tmp_path):
    for name, df in _defective_tables().items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    raw = read_tables(tmp_path, categories=True)
    for table, column in [("installments", "account_id"), ("contacts", "outcome")]:
        assert isinstance(raw.tables[table][column].dtype, pd.CategoricalDtype)
    assert isinstance(raw.tables["payments"]["payment_id"].dtype, pd.StringDtype)  # arrow
    assert raw.tables["accounts"]["account_id"].dtype == object
    plain = validate_tables(read_tables(tmp_path))
    cats = validate_tables(raw)
    assert len(plain.rejects) >= 10
    assert {"None/1", "A9/1"} <= set(plain.rejects["key"])
    assert {
        "isin(contract list)",
        "promise_fields_iff_promise_to_pay",
        "field_uniqueness",
        "not_nullable",
    } <= set(plain.rejects["check"])
    pd.testing.assert_frame_equal(cats.rejects, plain.rejects)
    assert list(cats.rejected_accounts) == list(plain.rejected_accounts)
    assert cats.rows_read == plain.rows_read
    for table, df in plain.tables.items():
        pd.testing.assert_frame_equal(cats.tables[table], df)


def test_kept_categories_hold_the_same_cells(tmp_path):
    for name, df in _defective_tables().items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    plain = validate_tables(read_tables(tmp_path))
    kept = validate_tables(read_tables(tmp_path, categories=True), keep_categories=True)
    assert isinstance(kept.tables["contacts"]["channel"].dtype, pd.CategoricalDtype)
    for table, df in plain.tables.items():
        back = pd.DataFrame({c: as_object(s) for c, s in kept.tables[table].items()})
        pd.testing.assert_frame_equal(back, df)


def test_load_valid_tables_reads_compactly_and_hands_back_the_object_tables(tmp_path):
    for name, df in _defective_tables().items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    plain = validate_tables(read_tables(tmp_path))
    loaded = load_valid_tables(tmp_path)
    pd.testing.assert_frame_equal(loaded.rejects, plain.rejects)
    assert list(loaded.rejected_accounts) == list(plain.rejected_accounts)
    assert loaded.files == plain.files
    for table, df in plain.tables.items():
        pd.testing.assert_frame_equal(loaded.tables[table], df)
    kept = load_valid_tables(tmp_path, keep_categories=True).tables
    assert isinstance(kept["contacts"]["channel"].dtype, pd.CategoricalDtype)


def test_features_and_training_set_from_categories_equal_the_object_ones(tmp_path):
    write_portfolio(simulate_portfolio(400, 12, seed=8, start="2024-01-01"), tmp_path)
    plain = validate_tables(read_tables(tmp_path)).tables
    cats = validate_tables(read_tables(tmp_path, categories=True), keep_categories=True).tables
    assert isinstance(cats["payments"]["account_id"].dtype, pd.CategoricalDtype)
    a = build_features(plain, "2024-11-30")
    assert len(a) > 20
    pd.testing.assert_frame_equal(build_features(cats, "2024-11-30"), a)
    kwargs = {"horizon_days": 30, "data_end": "2024-12-31"}
    pd.testing.assert_frame_equal(
        build_training_set(cats, "2024-06-30", "2024-10-31", **kwargs),
        build_training_set(plain, "2024-06-30", "2024-10-31", **kwargs),
    )


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["A1", "A2", "A3", "B7", None]), max_size=30),
    known=st.lists(st.sampled_from(["A1", "A2", "A3", "Z"]), unique=True, max_size=4),
)
def test_account_codes_of_a_categorical_equal_those_of_its_strings(ids, known):
    index = pd.Index(known, dtype=object)
    text = pd.Series(ids, dtype=object)
    expected = _codes(index, text)
    assert np.array_equal(_codes(index, text.astype("category")), expected)
    assert as_object(text.astype("category")).tolist() == ids


def test_currency_rule_keeps_pandera_name_and_rejects_each_bad_cell():
    t = f.tables()
    t["accounts"] = f.accounts(5, currency=["USD", "usd", "US", "USDX", "usd"])
    rejects = validate_tables(RawTables(tables=t)).rejects
    assert rejects[["key", "check", "value"]].values.tolist() == [
        ["A2", "str_matches('^[A-Z]{3}$')", "usd"],
        ["A3", "str_matches('^[A-Z]{3}$')", "US"],
        ["A4", "str_matches('^[A-Z]{3}$')", "USDX"],
        ["A5", "str_matches('^[A-Z]{3}$')", "usd"],
    ]
