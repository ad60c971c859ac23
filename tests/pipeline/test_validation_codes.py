"""Rules answered once per distinct value (vocabularies, the foreign key) reject exactly as
pandera's own checks do, on text read as objects, categoricals or arrow strings, and on a
corrupted portfolio read from parquet parts of many row groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import vocab
from pipeline.contract import (
    ContactsSchema,
    InstallmentsSchema,
    PaymentsSchema,
    due_dates_increase_pandas,
    table_schema,
)
from pipeline.contract_rules import _in_vocabulary
from pipeline.io import read_tables
from pipeline.parquet_read import _dictionary_to_pandas, _utc_to_pandas
from pipeline.simulator import simulate_portfolio
from pipeline.validation import _account_index, validate_tables

TABLES = ("accounts", "installments", "payments", "contacts", "offers")


@settings(max_examples=80, deadline=None)
@given(
    cells=st.lists(st.sampled_from(["sms", "call", "fax", "SMS", "", None]), max_size=25),
    unused=st.lists(st.sampled_from(["pigeon", "sms", "zz"]), unique=True, max_size=3),
)
def test_vocabulary_rule_equals_isin_with_nulls_passing(cells, unused):
    allowed = ("sms", "call")
    text = pd.Series(cells, dtype=object)
    expected = (text.isin(allowed) | text.isna()).tolist()
    assert _in_vocabulary(text, allowed).tolist() == expected
    # Categories in another order, some of them unused, give the same answer.
    categories = list(dict.fromkeys([*unused, *[c for c in cells if c is not None]]))[::-1]
    cat = pd.Series(pd.Categorical(cells, categories=categories))
    assert _in_vocabulary(cat, allowed).tolist() == expected
    assert _in_vocabulary(text.astype("string[pyarrow]"), allowed).tolist() == expected


def _reference_schema(table: str, account_ids: pd.Index) -> pa.DataFrameSchema:
    """The contract's schema with pandera's built-in ``isin`` for the vocabularies and the key."""
    schema = table_schema(table, account_ids)
    for name, column in schema.columns.items():
        checks = []
        for check in column.checks:
            if check.name == "isin":
                check = pa.Check.isin(check.statistics["allowed_values"])
            elif check.name == "foreign_key_accounts":
                check = pa.Check(
                    lambda s: s.isin(account_ids) | s.isna(),
                    name="foreign_key_accounts",
                    ignore_na=False,
                )
            checks.append(check)
        schema = schema.update_column(name, checks=checks)
    return schema


def _failures(schema: pa.DataFrameSchema, df: pd.DataFrame) -> list[tuple]:
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        fc = err.failure_cases
        return sorted(
            zip(
                fc["column"].astype(str),
                fc["check"].astype(str),
                fc["index"].astype("Int64").astype(str),
                fc["failure_case"].astype(str),
                strict=True,
            )
        )
    return []


def _corrupt(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One of each defect the distinct-value rules see, at a few rows of each table."""
    rng = np.random.default_rng(4)
    t = {k: v.copy() for k, v in tables.items()}

    def rows(df: pd.DataFrame, n: int) -> np.ndarray:
        return rng.choice(len(df), n, replace=False)

    acc = t["accounts"]
    r = rows(acc, 4)
    acc.loc[r[0], "product"] = "boat_loan"
    acc.loc[r[1], "product"] = None
    acc["jurisdiction"] = pd.Series([None] * len(acc), dtype=object)
    acc.loc[r[2], "jurisdiction"] = "atlantis"
    acc.loc[r[3], "jurisdiction"] = "uk_conc"
    for name, defects in [
        ("payments", {"channel": ["cheque", None], "account_id": ["X1", None]}),
        ("contacts", {"direction": ["sideways"], "outcome": [None, "maybe"], "account_id": ["X2"]}),
        ("installments", {"account_id": ["X3", None]}),
    ]:
        df = t[name]
        for column, values in defects.items():
            df.loc[rows(df, len(values)), column] = values
    return t


def test_distinct_value_rules_fail_the_cells_pandera_isin_fails(tmp_path):
    clean = simulate_portfolio(150, 8, seed=12, start="2024-01-01").tables
    tables = _corrupt({k: clean[k] for k in TABLES if k in clean})
    for name, df in tables.items():
        # Small row groups: each holds its own dictionary of the repeated text.
        pq.write_table(
            pa_arrow.Table.from_pandas(df, preserve_index=False),
            tmp_path / f"{name}.parquet",
            row_group_size=97,
        )
    for categories in (False, True):
        raw = read_tables(tmp_path, categories=categories)
        if categories:
            assert isinstance(raw.tables["contacts"]["outcome"].dtype, pd.CategoricalDtype)
        ids = pd.Index(raw.tables["accounts"]["account_id"].dropna().unique())
        n_failures = 0
        for name, df in raw.tables.items():
            fast = _failures(table_schema(name, ids if name != "accounts" else None), df)
            reference = _failures(_reference_schema(name, ids if name != "accounts" else None), df)
            assert fast == reference, name
            n_failures += len(fast)
        assert n_failures >= 12
    plain = validate_tables(read_tables(tmp_path))
    cats = validate_tables(read_tables(tmp_path, categories=True))
    checks = set(plain.rejects["check"])
    assert {"isin(contract list)", "foreign_key_accounts", "not_nullable"} <= checks
    pd.testing.assert_frame_equal(cats.rejects, plain.rejects)
    for table, df in plain.tables.items():
        pd.testing.assert_frame_equal(cats.tables[table], df)


def test_vocabulary_checks_read_as_pandera_isin():
    column = table_schema("contacts").columns["channel"]
    (check,) = [c for c in column.checks if c.name == "isin"]
    assert check.error == f"isin({vocab.CONTACT_CHANNELS})"
    assert check.statistics["allowed_values"] == vocab.CONTACT_CHANNELS


@settings(max_examples=80, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.sampled_from(["A7", "A1", "B", "", None]), max_size=8), min_size=0, max_size=5
    ),
    unused=st.booleans(),
)
def test_dictionary_columns_convert_as_arrow_converts_them(chunks, unused):
    parts = []
    for cells in chunks:
        part = pa_arrow.array(cells, type=pa_arrow.string()).dictionary_encode()
        if unused:  # a dictionary entry no row uses (parquet keeps such entries)
            extra = pa_arrow.array(["zz", *part.dictionary.to_pylist()], type=pa_arrow.string())
            shifted = pa_arrow.compute.add(part.indices, pa_arrow.scalar(1, pa_arrow.int32()))
            part = pa_arrow.DictionaryArray.from_arrays(shifted, extra)
        parts.append(part)
    arr = pa_arrow.chunked_array(
        parts, type=pa_arrow.dictionary(pa_arrow.int32(), pa_arrow.string())
    )
    pd.testing.assert_series_equal(_dictionary_to_pandas(arr), arr.to_pandas())


@pytest.mark.parametrize(
    "account_ids",
    [
        ["A1", "A1", "A2", None],  # strings: the dtype rule passes on the categories alone
        ["A1", 7, "A2", None],  # a number among the ids: pandera's own dtype rule names it
        [1.0, 2.0, 2.0, None],  # no strings at all
    ],
)
def test_text_dtype_rule_of_categoricals_fails_as_pandera_does(account_ids):
    payments = pd.DataFrame(
        {
            "payment_id": ["P1", "P2", "P3", "P4"],
            "account_id": pd.Series(account_ids, dtype=object),
            "paid_at": pd.Series(pd.to_datetime(["2024-01-01"] * 4, utc=True)),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "channel": ["card"] * 4,
        }
    )
    schema = table_schema("payments")
    assert type(schema.columns["account_id"]) is not pa.Column  # the categorical-aware backend
    reference = PaymentsSchema.to_schema()
    for frame in (payments, payments.astype({"account_id": "category"})):
        assert _failures(schema, frame) == _failures(reference, frame)
    failures = _failures(schema, payments.astype({"account_id": "category"}))
    dtype_failures = [case for case in failures if case[1].startswith("dtype")]
    strings = all(isinstance(a, str) or a is None for a in account_ids)
    assert (dtype_failures == []) == strings


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=6), max_size=4
    )
)
def test_utc_timestamps_convert_as_arrow_converts_them(chunks):
    utc = pa_arrow.timestamp("ns", tz="UTC")
    arr = pa_arrow.chunked_array([pa_arrow.array(c, type=utc) for c in chunks], type=utc)
    pd.testing.assert_series_equal(_utc_to_pandas(arr), arr.to_pandas())


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["A1", "A2", "B9", None]),
            st.integers(1, 4),
            st.integers(0, 5),  # due month
        ),
        max_size=14,
    ),
    reverse=st.booleans(),
)
def test_schedule_rules_on_categorical_codes_equal_the_reference(rows, reverse):
    inst = pd.DataFrame(
        {
            "account_id": pd.Series([r[0] for r in rows], dtype=object),
            "installment_no": np.array([r[1] for r in rows], dtype=np.int64),
            "due_date": pd.Series(
                pd.to_datetime([f"2024-{r[2] + 1:02d}-01" for r in rows]), dtype="datetime64[ns]"
            ),
            "amount_due": 1.0,
        }
    )
    ids = sorted({r[0] for r in rows if r[0] is not None}, reverse=reverse)
    cat = inst.assign(account_id=pd.Categorical(inst["account_id"], categories=[*ids, "unused"]))
    due = InstallmentsSchema._due_dates_increase(inst)
    if len(inst) > 1:  # (the rule's reference, for the frames of more than one row)
        assert due.tolist() == due_dates_increase_pandas(inst).tolist()
    pairs = (~inst.duplicated(["account_id", "installment_no"], keep=False)).tolist()
    assert InstallmentsSchema._due_dates_increase(cat).tolist() == due.tolist()
    assert InstallmentsSchema._unique_installment(cat).tolist() == pairs
    assert InstallmentsSchema._unique_installment(inst).tolist() == pairs


@settings(max_examples=80, deadline=None)
@given(
    cells=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 4 * 86_400)),  # contact, seconds
            st.one_of(st.none(), st.integers(-2, 4)),  # promised day
        ),
        max_size=12,
    )
)
def test_promised_date_rule_on_promised_rows_equals_the_datetime_rule(cells):
    base = pd.Timestamp("2024-03-01")
    contacts = pd.DataFrame(
        {
            "contact_at": pd.Series(
                [None if c is None else base + pd.Timedelta(seconds=c) for c, _ in cells],
                dtype="datetime64[ns]",
            ).dt.tz_localize("UTC"),
            "promised_date": pd.Series(
                [None if d is None else base + pd.Timedelta(days=d) for _, d in cells],
                dtype="datetime64[ns]",
            ),
        }
    )
    fast = ContactsSchema._promise_after_contact(contacts).tolist()
    # In another time zone the frame takes the rule's plain datetime path.
    other = contacts.assign(contact_at=contacts["contact_at"].dt.tz_convert("Asia/Tokyo"))
    assert fast == ContactsSchema._promise_after_contact(other).tolist()


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.sampled_from(["A1", "A2", "A3", "B7", None]), max_size=8))
def test_account_index_is_the_distinct_ids_in_order(ids):
    column = pd.Series(ids, dtype=object)
    expected = pd.Index(column.dropna().unique())
    pd.testing.assert_index_equal(_account_index(column), expected)
