"""The shared error helpers of the command line: one line on stderr and a documented exit code."""

from __future__ import annotations

import errno
from concurrent.futures.process import BrokenProcessPool
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


@pytest.mark.parametrize("sharded", [False, True])
def test_an_output_the_disk_refuses_ends_in_exit_2_and_one_line(tmp_path, sharded):
    import factories as f
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.io import write_parquet

    for name, df in f.tables().items():
        write_parquet(df, tmp_path / "data" / f"{name}.parquet")
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / "features.parquet"  # its parent is a file: NotADirectoryError
    args = ["features", "--data", str(tmp_path / "data"), "--as-of", "2024-06-30"]
    args += ["--out", str(out), *(["--shards", "2"] if sharded else [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_INPUT, result.output
    errors = [line for line in result.output.splitlines() if " error: " in line]
    assert len(errors) == 1 and "cannot read or write" in errors[0] and "a-file" in errors[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("error", [BrokenProcessPool("a child process terminated"), MemoryError()])
def test_a_lost_worker_or_memory_ends_in_exit_5_and_one_line(error, monkeypatch, tmp_path, capsys):
    from pipeline import engine
    from pipeline.cli_common import EXIT_RESOURCES, run_sharded

    def die(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(engine, "run_sharded_to_file", die)
    with pytest.raises(typer.Exit) as caught:
        run_sharded("features", tmp_path, tmp_path / "f.parquet", {}, 2, 2, "local")
    assert caught.value.exit_code == EXIT_RESOURCES == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing was published" in err and "--workers" in err


def test_workers_that_cannot_be_started_end_in_exit_5_and_one_line(tmp_path, monkeypatch):
    """The workers start first thing in a command, outside the job's own error handling."""
    import multiprocessing.popen_spawn_posix as popen

    import factories as f
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.io import write_parquet
    from pipeline.shard_pool import _STARTED

    def no_process(self, process_obj):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    for name, df in f.tables().items():
        write_parquet(df, tmp_path / "data" / f"{name}.parquet")
    monkeypatch.setattr(popen.Popen, "_launch", no_process)  # fork refused: the process limit
    args = ["validate", "--data", str(tmp_path / "data"), "--shards", "2", "--workers", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 5, result.output
    errors = [line for line in result.output.splitlines() if " error: " in line]
    assert len(errors) == 1 and "worker process" in errors[0] and "--workers" in errors[0]
    assert "Traceback" not in result.output and _STARTED == {}
