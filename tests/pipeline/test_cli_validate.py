"""``propensity validate``: report, rejects file and exit codes 0, 1 and 2."""

from __future__ import annotations

import factories as f
import pandas as pd
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import write_parquet

runner = CliRunner()


def _write(tables, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        write_parquet(df, folder / f"{name}.parquet")
    return folder


def test_valid_folder_exits_0(tmp_path):
    data = _write(f.tables(), tmp_path / "data")
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "all rows valid" in result.output
    assert "payments" in result.output and "3" in result.output


def test_broken_rows_exit_1_with_report_and_rejects(tmp_path):
    tables = f.tables()
    tables["payments"].loc[0, "amount"] = -12.5
    tables["payments"].loc[1, "amount"] = -3.0
    tables["contacts"].loc[2, "account_id"] = "A404"
    data = _write(tables, tmp_path / "data")
    rejects = tmp_path / "rejects.parquet"
    result = runner.invoke(app, ["validate", "--data", str(data), "--rejects", str(rejects)])
    assert result.exit_code == 1, result.output
    assert "payments.amount: greater_than(0): 2 rows, e.g. P1 (-12.5), P2 (-3.0)" in result.output
    assert "contacts.account_id: foreign_key_accounts: 1 rows, e.g. K3 (A404)" in result.output
    written = pd.read_parquet(rejects)
    assert list(written.columns) == ["table", "key", "account_id", "column", "check", "value"]
    assert len(written) == 3
    assert "Traceback" not in result.output


def test_missing_table_exits_2_with_one_line(tmp_path):
    tables = f.tables()
    del tables["installments"]
    data = _write(tables, tmp_path / "data")
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 2
    assert "required table 'installments' is missing" in result.output
    assert "Traceback" not in result.output


def test_missing_column_exits_2(tmp_path):
    tables = f.tables()
    tables["accounts"] = tables["accounts"].drop(columns="timezone")
    data = _write(tables, tmp_path / "data")
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 2
    assert "accounts.parquet: table 'accounts' lacks required column(s) timezone" in result.output


def test_csv_folder_validates(tmp_path):
    data = tmp_path / "csv"
    data.mkdir()
    for name, df in f.tables().items():
        out = df.copy()
        for col in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[col]):
                out[col] = out[col].astype(str).replace("NaT", "")
        out.to_csv(data / f"{name}.csv", index=False)
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 0, result.output
