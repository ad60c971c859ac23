"""The fast paths of reading and validation keep the contract's behaviour.

The rules of :mod:`pipeline.contract` are computed with vectorised code (integer
keys instead of string sorts, arrow instead of pandas' object hash table,
failing rows of row rules read from the check output); these tests pin their
results on small hand-built frames, including the cases the fast paths hand to
the reference implementation.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import factories as f
import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.contract import ROW_RULE_EXAMPLES, due_dates_increase_pandas, table_schema
from pipeline.io import RawTables, coerce_table, file_checksum, read_tables, write_parquet
from pipeline.validation import validate_tables


def _validate(**overrides: pd.DataFrame):
    tables = f.tables()
    tables.update(overrides)
    return validate_tables(RawTables(tables))


def _hits(result, table: str, check: str) -> list[str]:
    r = result.rejects
    return sorted(r.loc[(r["table"] == table) & (r["check"] == check), "key"])


def _installments(rows: list[tuple[str | None, int, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": pd.Series([r[0] for r in rows], dtype=object),
            "installment_no": np.array([r[1] for r in rows], dtype=np.int64),
            "due_date": f.dates(*[r[2] for r in rows]),
            "amount_due": 100.0,
        }
    )


def test_due_date_rule_on_unsorted_rows_flags_both_rows_of_each_bad_pair():
    inst = _installments(
        [
            ("A2", 2, "2024-02-01"),
            ("A1", 2, "2024-01-15"),  # due before A1's first installment
            ("A1", 1, "2024-02-01"),
            ("A2", 1, "2024-01-01"),
            ("A3", 1, "2024-01-01"),
            ("A3", 2, None),  # no due date: not after the first one
        ]
    )
    result = _validate(installments=inst)
    assert _hits(result, "installments", "due_date_non_decreasing_with_installment_no") == [
        "A1/1",
        "A1/2",
        "A3/1",
        "A3/2",
    ]
    # The reference (pandas sort) implementation agrees row by row.
    fast = table_schema("installments").checks
    rule = next(c for c in fast if c.name == "due_date_non_decreasing_with_installment_no")
    pd.testing.assert_series_equal(
        rule._check_fn(inst), due_dates_increase_pandas(inst), check_names=False
    )
    assert set(result.rejected_accounts) == {"A1", "A3"}


def test_two_installments_due_on_the_same_day_pass_and_a_fall_still_fails():
    inst = _installments(
        [
            ("A1", 1, "2024-01-01"),
            ("A1", 2, "2024-01-01"),  # same day as installment 1: allowed (real schedules)
            ("A1", 3, "2024-02-01"),
            ("A2", 1, "2024-02-01"),
            ("A2", 2, "2024-01-31"),  # falls: rejected
        ]
    )
    result = _validate(installments=inst)
    assert _hits(result, "installments", "due_date_non_decreasing_with_installment_no") == [
        "A2/1",
        "A2/2",
    ]
    rule = next(
        c
        for c in table_schema("installments").checks
        if c.name == "due_date_non_decreasing_with_installment_no"
    )
    pd.testing.assert_series_equal(
        rule._check_fn(inst), due_dates_increase_pandas(inst), check_names=False
    )


def test_rows_without_account_follow_the_reference_implementation():
    inst = _installments(
        [("A1", 1, "2024-01-01"), (None, 2, "2024-03-01"), (None, 1, "2024-04-01")]
    )
    rule = next(
        c
        for c in table_schema("installments").checks
        if c.name == "due_date_non_decreasing_with_installment_no"
    )
    pd.testing.assert_series_equal(
        rule._check_fn(inst), due_dates_increase_pandas(inst), check_names=False
    )


def test_duplicate_installment_numbers_found_when_rows_are_not_sorted():
    inst = _installments(
        [
            ("A1", 1, "2024-01-01"),
            ("A2", 1, "2024-01-01"),
            ("A1", 2, "2024-02-01"),
            ("A1", 1, "2024-03-01"),  # same (account, number) as row 0
        ]
    )
    result = _validate(installments=inst)
    r = result.rejects
    dup = r[r["check"] == "multiple_fields_uniqueness"]
    assert dup["key"].tolist() == ["A1/1", "A1/1"]
    assert set(dup["column"]) == {"account_id+installment_no"}
    assert set(dup["value"]) == {
        "account_id=A1, installment_no=1",
    }


def test_field_uniqueness_sorted_unsorted_and_repeated():
    pay = f.payments()
    assert _validate(payments=pay).ok  # P1 < P2 < P3: unique by one comparison
    pay["payment_id"] = ["P3", "P1", "P3"]  # not sorted, P3 twice
    result = _validate(payments=pay)
    assert _hits(result, "payments", "field_uniqueness") == ["P3", "P3"]
    assert set(result.rejected_accounts) == {"A1", "A2"}


def test_null_ids_are_not_nullable_and_not_duplicates():
    pay = f.payments()
    pay["payment_id"] = pd.Series(["P1", None, None], dtype=object)
    result = _validate(payments=pay)
    r = result.rejects
    # One reject per failing cell; not_nullable comes first.
    assert r[["key", "column", "check"]].values.tolist() == [
        [None, "payment_id", "not_nullable"],
        [None, "payment_id", "not_nullable"],
    ]
    with pytest.raises(pandera.errors.SchemaErrors) as err:
        table_schema("payments").validate(pay, lazy=True)
    checks = set(err.value.failure_cases["check"])
    assert checks == {"not_nullable"}  # as pandera's unique=True, which drops null cases


def test_null_account_id_is_not_an_orphan():
    pay = f.payments()
    pay["account_id"] = pd.Series([None, "A1", "A2"], dtype=object)
    result = _validate(payments=pay)
    assert result.rejects[["key", "column", "check"]].values.tolist() == [
        ["P1", "account_id", "not_nullable"]
    ]
    assert result.rejected_accounts.empty


def test_promised_date_compared_with_the_utc_day_of_the_contact():
    con = f.contacts()
    con["contact_at"] = f.utc("2024-02-05T23:30:00", "2024-02-06T00:10:00", "2024-02-07T16:00:00")
    con["outcome"] = ["promise_to_pay", "promise_to_pay", "no_answer"]
    con["promised_amount"] = [50.0, 50.0, None]
    con["promised_date"] = f.dates("2024-02-05", "2024-02-05", None)
    result = _validate(contacts=con)
    assert _hits(result, "contacts", "promised_date_on_or_after_contact") == ["K2"]
    row = result.rejects.iloc[0]
    assert row["value"] == "contact_at=2024-02-06T00:10:00+00:00, promised_date=2024-02-05"


def test_row_rule_lists_every_failing_row_beyond_pandera_examples():
    n = ROW_RULE_EXAMPLES + 20
    con = pd.DataFrame(
        {
            "contact_id": [f"K{i:03d}" for i in range(n)],
            "account_id": "A1",
            "contact_at": pd.Series(pd.Timestamp("2024-02-05T14:00:00Z"), index=range(n)),
            "channel": "call",
            "direction": "outbound",
            "outcome": "delivered",
            "promised_amount": 5.0,  # a promise amount without a promise
            "promised_date": pd.Series(pd.Timestamp("2024-02-10"), index=range(n)),
            "agent_id": None,
        }
    ).astype({"contact_at": "datetime64[ns, UTC]", "promised_date": "datetime64[ns]"})
    result = _validate(contacts=con)
    hits = _hits(result, "contacts", "promise_fields_iff_promise_to_pay")
    assert hits == [f"K{i:03d}" for i in range(n)]


def test_non_text_cell_in_a_string_column_is_named():
    pay = f.payments()
    pay["payment_id"] = pd.Series(["P1", 7, "P3"], dtype=object)
    result = _validate(payments=pay)
    assert result.rejects[["key", "column", "check", "value"]].values.tolist() == [
        [7, "payment_id", "dtype('str')", "7"]
    ]


def test_clean_tables_replace_the_raw_ones():
    tables = f.tables()
    tables["payments"].loc[0, "amount"] = -1.0
    raw = RawTables(tables)
    result = validate_tables(raw)
    for name in tables:
        assert raw.tables[name] is result.tables[name]
    assert result.tables["payments"]["payment_id"].tolist() == ["P3"]
    assert result.tables["payments"].index.equals(pd.RangeIndex(1))


def test_parquet_with_a_pandas_index_and_parts_of_different_types(tmp_path):
    tables = f.tables()
    for name, df in tables.items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    # pandas stores a non-default index as an extra column: it is not data.
    tables["payments"].iloc[::-1].to_parquet(tmp_path / "payments.parquet", index=True)
    # Parts whose types differ (all-null agent_id is arrow's null type in one).
    (tmp_path / "contacts.parquet").unlink()
    (tmp_path / "contacts").mkdir()
    con = tables["contacts"]
    part0 = pa.Table.from_pandas(con.iloc[1:2].assign(agent_id=None), preserve_index=False)
    assert part0.schema.field("agent_id").type == pa.null()
    pq.write_table(part0, tmp_path / "contacts" / "part-0.parquet")
    write_parquet(con.iloc[[0, 2]], tmp_path / "contacts" / "part-1.parquet")
    raw = read_tables(tmp_path)
    assert raw.parse_failures == []
    pd.testing.assert_frame_equal(
        raw.tables["payments"], tables["payments"].iloc[::-1].reset_index(drop=True)
    )
    expected = con.iloc[[1, 0, 2]].reset_index(drop=True)
    expected.loc[0, "agent_id"] = None
    pd.testing.assert_frame_equal(raw.tables["contacts"], expected)
    assert validate_tables(raw).ok


def test_repeated_strings_are_one_object_each(tmp_path):
    for name, df in f.tables().items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    inst = read_tables(tmp_path).tables["installments"]
    assert inst["account_id"].tolist() == ["A1"] * 3 + ["A2"] * 3 + ["A3"] * 3
    assert len({id(v) for v in inst["account_id"]}) == 3


def test_coerce_table_shares_no_memory_with_its_input():
    raw = f.installments()
    df, failures = coerce_table("installments", raw)
    assert failures == []
    for col in df.columns:
        assert not np.shares_memory(df[col].to_numpy(), raw[col].to_numpy()), col
    df.loc[0, "amount_due"] = -5.0
    assert raw.loc[0, "amount_due"] == 100.0


def test_null_in_a_nullable_boolean_column_is_not_nullable():
    raw = f.accounts()
    raw["hardship"] = pd.array([True, None, False], dtype="boolean")
    df, failures = coerce_table("accounts", raw)
    assert [(fl.column, fl.check, list(fl.index)) for fl in failures] == [
        ("hardship", "not_nullable", [1])
    ]
    assert df["hardship"].tolist() == [True, False, False]


def test_file_checksum_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"abc" * 1000)
    assert file_checksum(path) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_read_tables_checksums_each_file_unless_told_not_to(tmp_path):
    for name, frame in f.tables().items():
        write_parquet(frame, tmp_path / f"{name}.parquet")
    with_sums = read_tables(tmp_path).files
    without = read_tables(tmp_path, checksums=False).files
    for name, facts in with_sums.items():
        assert facts["sha256"] == file_checksum(tmp_path / f"{name}.parquet")
        assert "sha256" not in without[name]
        assert {k: v for k, v in facts.items() if k != "sha256"} == without[name]


def test_benchmark_portfolio_is_valid_and_its_bad_rows_are_caught():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_validate.py"
    spec = importlib.util.spec_from_file_location("bench_validate", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tables = dict(bench.synthetic_tables(40))
    assert validate_tables(RawTables({k: v.copy() for k, v in tables.items()})).ok
    bad = {k: bench.inject_bad_rows(k, v, 0.01) for k, v in tables.items()}
    result = validate_tables(RawTables(bad))
    assert set(result.rejects["table"]) == set(tables)
