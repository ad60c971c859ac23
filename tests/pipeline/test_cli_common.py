"""The shared error helpers of the command line: one line on stderr and a documented exit code."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import typer

from models.store import StoreUnavailableError
from models.tracking import ModelNotFoundError
from pipeline.cli_common import EXIT_INPUT, EXIT_MODEL, EXIT_STORE, store_errors, unreadable


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StoreUnavailableError("model store sqlite:///x.db unavailable"), EXIT_STORE),
        (ModelNotFoundError("no version 9 of repayment-propensity"), EXIT_MODEL),
    ],
)
def test_store_errors_end_in_their_exit_code_and_one_line(error, code, capsys):
    with pytest.raises(typer.Exit) as caught, store_errors():
        raise error
    assert caught.value.exit_code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {error}" in err


def test_store_errors_let_other_failures_and_exits_through():
    with pytest.raises(KeyError), store_errors():
        raise KeyError("not a store error")
    with pytest.raises(typer.Exit) as caught, store_errors():
        raise typer.Exit(EXIT_INPUT)
    assert caught.value.exit_code == EXIT_INPUT


def test_unreadable_names_the_file_else_the_path(capsys):
    named = OSError(errno.EACCES, "Permission denied", "/data/accounts.parquet")
    assert unreadable(named, Path("out")).exit_code == EXIT_INPUT
    assert "cannot read or write /data/accounts.parquet: Permission denied" in (
        capsys.readouterr().err
    )
    unreadable(OSError("disk full"), Path("out"))
    assert "cannot read or write out: disk full" in capsys.readouterr().err
