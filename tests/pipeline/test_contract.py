"""The data contract in code: one bad row per rule is caught and named; readers agree."""

from __future__ import annotations

import factories as f
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import vocab
from pipeline.contract import COLUMNS
from pipeline.io import DataReadError, RawTables, coerce_table, read_tables, write_parquet
from pipeline.validation import format_report, validate_tables


def _validate(tables):
    return validate_tables(RawTables({k: v.copy() for k, v in tables.items()}))


def test_valid_tables_pass_untouched():
    tables = f.tables()
    result = _validate(tables)
    assert result.ok
    assert result.rejects.empty
    assert result.input_accounts == 3
    for name, df in tables.items():
        pd.testing.assert_frame_equal(result.tables[name], df)


# (table, row, column, bad value, expected check, expected column in the reject)
RULES = [
    ("accounts", 1, "account_id", "A1", "field_uniqueness", "account_id"),
    ("accounts", 0, "customer_id", None, "not_nullable", "customer_id"),
    ("accounts", 0, "product", "boat_loan", "isin(contract list)", "product"),
    ("accounts", 0, "principal", 0.0, "greater_than(0)", "principal"),
    ("accounts", 0, "currency", "usd", "str_matches", "currency"),
    ("accounts", 0, "timezone", "Mars/Base", "iana_timezone", "timezone"),
    ("accounts", 0, "opened_date", pd.NaT, "not_nullable", "opened_date"),
    ("installments", 1, "installment_no", 0, "greater_than_or_equal_to(1)", "installment_no"),
    (
        "installments",
        1,
        "installment_no",
        1,
        "multiple_fields_uniqueness",
        "account_id+installment_no",
    ),
    ("installments", 0, "amount_due", -1.0, "greater_than(0)", "amount_due"),
    (
        "installments",
        1,
        "due_date",
        pd.Timestamp("2023-12-01"),
        "due_date_non_decreasing_with_installment_no",
        "installment_no+due_date",
    ),
    ("installments", 0, "account_id", "A9", "foreign_key_accounts", "account_id"),
    ("payments", 1, "payment_id", "P1", "field_uniqueness", "payment_id"),
    ("payments", 0, "amount", -12.5, "greater_than(0)", "amount"),
    ("payments", 0, "channel", "cheque", "isin(contract list)", "channel"),
    ("payments", 0, "account_id", "A9", "foreign_key_accounts", "account_id"),
    ("payments", 0, "paid_at", pd.NaT, "not_nullable", "paid_at"),
    ("contacts", 1, "contact_id", "K1", "field_uniqueness", "contact_id"),
    ("contacts", 0, "channel", "pigeon", "isin(contract list)", "channel"),
    ("contacts", 0, "direction", "sideways", "isin(contract list)", "direction"),
    ("contacts", 0, "outcome", "maybe", "isin(contract list)", "outcome"),
    ("contacts", 0, "promised_amount", -5.0, "greater_than(0)", "promised_amount"),
    (
        "contacts",
        0,
        "promised_amount",
        np.nan,
        "promise_fields_iff_promise_to_pay",
        "outcome+promised_amount+promised_date",
    ),
    (
        "contacts",
        1,
        "promised_amount",
        20.0,
        "promise_fields_iff_promise_to_pay",
        "outcome+promised_amount+promised_date",
    ),
    (
        "contacts",
        0,
        "promised_date",
        pd.Timestamp("2024-02-01"),
        "promised_date_on_or_after_contact",
        "contact_at+promised_date",
    ),
    ("contacts", 2, "account_id", "A9", "foreign_key_accounts", "account_id"),
    ("offers", 1, "offer_id", "O1", "field_uniqueness", "offer_id"),
    ("offers", 0, "offer_type", "amnesty", "isin(contract list)", "offer_type"),
    ("offers", 1, "discount_pct", 120.0, "less_than_or_equal_to(100)", "discount_pct"),
    (
        "offers",
        0,
        "discount_pct",
        10.0,
        "discount_pct_for_settlement_only",
        "offer_type+discount_pct",
    ),
    (
        "offers",
        1,
        "n_installments",
        3,
        "n_installments_for_plans_only",
        "offer_type+n_installments",
    ),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "check", "reject_column"), RULES)
def test_each_contract_rule_catches_its_bad_row(table, row, column, value, check, reject_column):
    tables = f.tables()
    df = tables[table]
    if column == "n_installments":
        df[column] = pd.array([6, value], dtype="Int64")
    else:
        df.loc[row, column] = value
    result = _validate(tables)
    assert not result.ok
    hits = result.rejects[
        (result.rejects["table"] == table) & result.rejects["check"].str.startswith(check)
    ]
    assert not hits.empty, result.rejects
    assert reject_column in set(hits["column"])
    report = format_report(result)
    assert f"{table}.{reject_column}: {check}" in report
    if check == "foreign_key_accounts":
        # An orphan is listed but rejects no account (its account is not in accounts).
        assert result.rejected_accounts.empty
        assert len(result.tables[table]) == len(df) - 1
    else:
        bad_account = df.loc[row, "account_id"] if column != "account_id" else value
        assert bad_account in set(result.rejected_accounts)


def test_rejected_account_is_removed_from_every_table():
    tables = f.tables()
    tables["payments"].loc[0, "amount"] = -1.0  # a payment of A1
    result = _validate(tables)
    assert list(result.rejected_accounts) == ["A1"]
    for name, df in result.tables.items():
        assert "A1" not in set(df["account_id"]), name
    assert set(result.tables["accounts"]["account_id"]) == {"A2", "A3"}
    assert result.rejected_share == pytest.approx(1 / 3)
    # Every failing row is listed with its key, account and value.
    row = result.rejects.iloc[0]
    assert (row["table"], row["key"], row["account_id"], row["column"], row["value"]) == (
        "payments",
        "P1",
        "A1",
        "amount",
        "-1.0",
    )


def test_installment_key_names_account_and_number():
    tables = f.tables()
    tables["installments"].loc[4, "amount_due"] = 0.0  # A2, installment 2
    result = _validate(tables)
    assert result.rejects["key"].tolist() == ["A2/2"]


def _write_csv(df: pd.DataFrame, path) -> None:
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_datetime64_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map({True: "true", False: "false"})
    out.to_csv(path, index=False)


def test_csv_and_parquet_read_to_the_same_frames(tmp_path):
    tables = f.tables()
    (tmp_path / "pq").mkdir()
    (tmp_path / "csv").mkdir()
    for name, df in tables.items():
        write_parquet(df, tmp_path / "pq" / f"{name}.parquet")
        _write_csv(df, tmp_path / "csv" / f"{name}.csv")
    from_pq = validate_tables(read_tables(tmp_path / "pq"))
    from_csv = validate_tables(read_tables(tmp_path / "csv"))
    assert from_pq.ok and from_csv.ok
    for name in tables:
        pd.testing.assert_frame_equal(from_csv.tables[name], from_pq.tables[name])
        pd.testing.assert_frame_equal(from_pq.tables[name], tables[name])


def test_folder_of_parquet_parts_is_one_table(tmp_path):
    tables = f.tables()
    for name, df in tables.items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    (tmp_path / "payments.parquet").unlink()
    write_parquet(tables["payments"].iloc[:2], tmp_path / "payments" / "part-0.parquet")
    write_parquet(tables["payments"].iloc[2:], tmp_path / "payments" / "part-1.parquet")
    raw = read_tables(tmp_path)
    pd.testing.assert_frame_equal(raw.tables["payments"], tables["payments"])


def test_csv_export_coercion_booleans_numbers_and_empty_cells():
    raw = pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3", "A4"],
            "customer_id": ["C1", "C2", "C3", "C4"],
            "product": ["bnpl"] * 4,
            "opened_date": ["2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"],
            "principal": ["100", "250.5", "1e3", "abc"],
            "currency": ["EUR"] * 4,
            "timezone": ["Europe/London"] * 4,
            "do_not_contact": ["1", "0", "TRUE", None],
            "cease_communication": ["false"] * 4,
            "dispute_open": ["False"] * 4,
            "hardship": ["0"] * 4,
            "deceased": ["no"] * 4,
            "bankruptcy": ["false", "false", "false", "perhaps"],
        }
    )
    df, failures = coerce_table("accounts", raw)
    assert df["do_not_contact"].tolist() == [True, False, True, True]  # empty -> set (safe side)
    assert df["principal"].iloc[:3].tolist() == [100.0, 250.5, 1000.0]
    assert df["opened_date"].dtype == "datetime64[ns]"
    by_col = {fl.column: fl for fl in failures}
    assert by_col["principal"].values.tolist() == ["abc"]
    assert by_col["bankruptcy"].values.tolist() == ["perhaps"]
    result = validate_tables(
        RawTables(
            {"accounts": df, **{k: v for k, v in f.tables().items() if k != "accounts"}}, failures
        )
    )
    rej = result.rejects.set_index("column")
    assert rej.loc["principal", "check"] == "parse as a number"
    assert rej.loc["principal", "value"] == "abc"
    assert rej.loc["bankruptcy", "value"] == "perhaps"
    assert set(result.rejected_accounts) == {"A4"}


def test_timestamps_are_utc_and_offsets_converted():
    raw = f.payments().astype({"paid_at": str})
    raw["paid_at"] = ["2024-01-01T12:00:00+02:00", "2024-01-01 10:00:00", "2024-01-01T10:00:00Z"]
    df, failures = coerce_table("payments", raw)
    assert failures == []
    assert str(df["paid_at"].dt.tz) == "UTC"
    assert df["paid_at"].dt.hour.tolist() == [10, 10, 10]


def test_date_with_time_of_day_is_a_parse_failure():
    raw = f.installments().astype({"due_date": str})
    raw.loc[0, "due_date"] = "2024-01-01T13:00:00"
    _, failures = coerce_table("installments", raw)
    assert [fl.column for fl in failures] == ["due_date"]


def test_missing_required_table_is_a_read_error(tmp_path):
    for name, df in f.tables().items():
        if name != "contacts":
            write_parquet(df, tmp_path / f"{name}.parquet")
    with pytest.raises(DataReadError, match="required table 'contacts' is missing"):
        read_tables(tmp_path)


def test_offers_may_be_absent(tmp_path):
    for name, df in f.tables().items():
        if name != "offers":
            write_parquet(df, tmp_path / f"{name}.parquet")
    result = validate_tables(read_tables(tmp_path))
    assert result.ok and "offers" not in result.tables


def test_missing_columns_are_read_errors():
    with pytest.raises(DataReadError, match="lacks required column.*amount"):
        coerce_table("payments", f.payments().drop(columns="amount"), source="payments.csv")


def test_unreadable_file_is_a_read_error(tmp_path):
    for name, df in f.tables().items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    (tmp_path / "payments.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataReadError, match="payments.parquet: cannot read table 'payments'"):
        read_tables(tmp_path)


ids = st.integers(min_value=1, max_value=10_000)


@st.composite
def valid_tables(draw):
    """Generate small valid contract tables."""
    n = draw(st.integers(min_value=1, max_value=6))
    acc = f.accounts(
        n,
        product=draw(st.lists(st.sampled_from(vocab.PRODUCTS), min_size=n, max_size=n)),
        principal=draw(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=n, max_size=n)),
        hardship=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    )
    n_inst = draw(st.integers(min_value=1, max_value=4))
    inst = f.installments(acc["account_id"].tolist(), n=n_inst)
    inst["amount_due"] = draw(
        st.lists(st.floats(min_value=0.01, max_value=1e5), min_size=len(inst), max_size=len(inst))
    )
    m = draw(st.integers(min_value=0, max_value=6))
    pay = pd.DataFrame(
        {
            "payment_id": [f"P{i}" for i in range(m)],
            "account_id": draw(
                st.lists(st.sampled_from(acc["account_id"].tolist()), min_size=m, max_size=m)
            ),
            "paid_at": pd.Series(
                pd.to_datetime(
                    draw(st.lists(st.integers(0, 10**9), min_size=m, max_size=m)),
                    unit="s",
                    utc=True,
                ),
                dtype="datetime64[ns, UTC]",
            ),
            "amount": draw(
                st.lists(st.floats(min_value=0.01, max_value=1e5), min_size=m, max_size=m)
            ),
            "channel": draw(
                st.lists(st.sampled_from(vocab.PAYMENT_CHANNELS), min_size=m, max_size=m)
            ),
        }
    )
    k = draw(st.integers(min_value=0, max_value=6))
    outcomes = draw(st.lists(st.sampled_from(vocab.OUTCOMES), min_size=k, max_size=k))
    at = pd.Series(
        pd.to_datetime(
            draw(st.lists(st.integers(0, 10**9), min_size=k, max_size=k)), unit="s", utc=True
        ),
        dtype="datetime64[ns, UTC]",
    )
    is_ptp = pd.Series([o == "promise_to_pay" for o in outcomes], dtype=bool)
    con = pd.DataFrame(
        {
            "contact_id": [f"K{i}" for i in range(k)],
            "account_id": draw(
                st.lists(st.sampled_from(acc["account_id"].tolist()), min_size=k, max_size=k)
            ),
            "contact_at": at,
            "channel": draw(
                st.lists(st.sampled_from(vocab.CONTACT_CHANNELS), min_size=k, max_size=k)
            ),
            "direction": draw(st.lists(st.sampled_from(vocab.DIRECTIONS), min_size=k, max_size=k)),
            "outcome": outcomes,
            "promised_amount": np.where(is_ptp, 10.0, np.nan),
            "promised_date": (at.dt.tz_localize(None).dt.normalize() + pd.Timedelta(days=3)).where(
                is_ptp
            ),
            "agent_id": [None] * k,
        }
    )
    return {"accounts": acc, "installments": inst, "payments": pay, "contacts": con}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_tables())
def test_generated_valid_frames_pass(tables):
    result = _validate(tables)
    assert result.ok, result.rejects
    assert {k: len(v) for k, v in result.tables.items()} == {k: len(v) for k, v in tables.items()}


def test_contract_columns_match_the_contract_document():
    """The column lists here are the contract's, in its order (a drift guard)."""
    from pathlib import Path

    doc = Path(__file__).resolve().parents[3] / "shared" / "DATA_CONTRACT.md"
    if not doc.exists():
        pytest.skip("../shared/DATA_CONTRACT.md is not beside this checkout")
    text = doc.read_text(encoding="utf-8")
    for table, cols in COLUMNS.items():
        section = text.split(f"### {table}")[1].split("##")[0]
        documented = [
            line.split("|")[1].strip()
            for line in section.splitlines()
            if line.startswith("| ")
            and not line.startswith("| column")
            and not line.startswith("| ---")
        ]
        assert tuple(documented) == cols, table


def test_accounts_jurisdiction_is_optional_and_checked():
    from pipeline.contract import AccountsSchema

    accounts = f.accounts(3)
    AccountsSchema.validate(accounts)  # absent: the policy's default applies
    accounts["jurisdiction"] = pd.Series(["uk_conc", None, "mars_law"], dtype=object)
    with pytest.raises(Exception, match="mars_law"):
        AccountsSchema.validate(accounts, lazy=True)
    accounts.loc[2, "jurisdiction"] = "cn_2025"
    AccountsSchema.validate(accounts)
