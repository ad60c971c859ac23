"""Real exports: extra columns, every boolean spelling, empty suppression flags."""

from __future__ import annotations

import logging

import factories as f
import pandas as pd
import pytest

from pipeline.io import coerce_table, read_tables, write_parquet
from pipeline.validation import format_report, validate_tables


def test_extra_columns_are_ignored_with_a_warning_and_listed(tmp_path, caplog):
    for name, df in f.tables().items():
        write_parquet(df, tmp_path / f"{name}.parquet")
    f.payments().assign(colour="red", branch=1).to_csv(tmp_path / "payments.csv", index=False)
    (tmp_path / "payments.parquet").unlink()
    with caplog.at_level(logging.WARNING, logger="pipeline.io"):
        raw = read_tables(tmp_path)
    assert "colour" not in raw.tables["payments"].columns
    assert raw.files["payments"]["ignored_columns"] == ["colour", "branch"]
    assert raw.files["accounts"]["ignored_columns"] == []
    assert any("colour, branch" in r.getMessage() for r in caplog.records)
    assert validate_tables(raw).ok


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[(t, True) for t in ("true", "TRUE", "True", "1", "yes", "YES", "y", "Y", "t", "T")],
        *[(t, False) for t in ("false", "FALSE", "0", "no", "No", "n", "N", "f", "F", " no ")],
    ],
)
def test_every_documented_boolean_spelling_is_read(text, value):
    raw = f.accounts(1).astype({"deceased": object})
    raw["deceased"] = [text]
    df, failures = coerce_table("accounts", raw)
    assert failures == [] and df["deceased"].tolist() == [value]


def test_empty_suppression_flags_count_as_set_and_other_booleans_still_fail():
    raw = f.accounts(2).astype(object)
    raw["deceased"] = [None, "no"]
    raw["do_not_contact"] = ["n", None]
    raw["hardship"] = [None, "no"]  # not a suppression flag: an empty cell is rejected
    df, failures = coerce_table("accounts", raw)
    assert df["deceased"].tolist() == [True, False]
    assert df["do_not_contact"].tolist() == [False, True]
    assert [(fl.table, fl.column, fl.check) for fl in failures] == [
        ("accounts", "hardship", "not_nullable")
    ]


def test_control_characters_in_ids_stay_on_one_report_line():
    accounts = f.accounts(3)
    accounts.loc[0, "account_id"] = "A1\nINJECTED rows read: 0"
    accounts.loc[0, "principal"] = -1.0
    tables = {**f.tables(), "accounts": accounts}
    from pipeline.io import RawTables

    report = format_report(validate_tables(RawTables(tables)))
    principal = [line for line in report.splitlines() if "principal" in line]
    assert len(principal) == 1 and "A1\\nINJECTED" in principal[0]
    assert not any(line.startswith("INJECTED") for line in report.splitlines())


def test_manifest_inputs_list_the_ignored_columns(tmp_path):
    from pipeline.score_outputs import _manifest_base

    for name, df in f.tables().items():
        write_parquet(
            df.assign(extra=1) if name == "contacts" else df, tmp_path / f"{name}.parquet"
        )
    manifest = _manifest_base(validate_tables(read_tables(tmp_path)), "2024-06-30")
    assert manifest["inputs"]["contacts"]["ignored_columns"] == ["extra"]
    assert manifest["inputs"]["payments"]["ignored_columns"] == []
    assert isinstance(pd.Timestamp(manifest["as_of_date"]), pd.Timestamp)


def test_sharded_manifest_inputs_list_the_ignored_columns_as_unsharded(tmp_path):
    from pipeline.engine import run_sharded_to_file

    data = tmp_path / "data"
    for name, df in f.tables().items():
        write_parquet(df.assign(extra=1) if name == "contacts" else df, data / f"{name}.parquet")
    plain = validate_tables(read_tables(data)).files
    sharded, _ = run_sharded_to_file("validate", data, None, {}, n_shards=2)
    for table, facts in plain.items():
        assert sharded.files[table]["ignored_columns"] == facts["ignored_columns"], table
        assert sharded.files[table]["sha256"] == facts["sha256"], table
    assert sharded.files["contacts"]["ignored_columns"] == ["extra"]
