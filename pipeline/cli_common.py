"""What every ``propensity`` subcommand shares: exit codes, options, dates, errors.

A failure ends in :func:`fail`'s one line ``<time> error: <message>`` on
stderr and an exit code of :mod:`pipeline.cli`'s list, never a traceback.
Heavy libraries are imported inside the functions, so importing this module
costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from pipeline.layout_file import is_partitioned

EXIT_OK, EXIT_DATA, EXIT_INPUT, EXIT_MODEL, EXIT_STORE = 0, 1, 2, 3, 4
#: The machine ran out: a worker process died (killed for memory) or memory ran out.
EXIT_RESOURCES = 5
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

log = logging.getLogger("pipeline.cli")

DataOpt = Annotated[Path, typer.Option("--data", help="Folder with the contract's input tables.")]
ShardsOpt = Annotated[
    int | None,
    typer.Option(
        "--shards",
        min=1,
        help="Process the accounts in this many shards (bounded memory); a folder laid out by "
        "`propensity partition` is always read shard by shard.",
    ),
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Shards at a time: this process and N-1 worker processes (local engine).",
    ),
]
EngineOpt = Annotated[
    str, typer.Option("--engine", help="local, or spark (one Spark task per shard).")
]

ApproverOpt = Annotated[
    str | None, typer.Option("--approver", help="Who approves (recorded in the registry).")
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (recorded in the registry).")]


def fail(code: int, message: str) -> typer.Exit:
    """Print ``<time> error: <message>`` on stderr and return the exit to raise with ``code``."""
    from pipeline.text import printable

    stamp = time.strftime(ISO_FORMAT, time.gmtime())
    typer.echo(f"{stamp} error: {printable(str(message))}", err=True)
    return typer.Exit(code)


def no_spark(exc: ImportError) -> typer.Exit:
    """Exit 2 saying how to install Spark, which ``--engine spark`` could not import."""
    return fail(EXIT_INPUT, f"{exc}; install the Spark extra (make setup-spark) for --engine spark")


def unreadable(exc: OSError, path: Path) -> typer.Exit:
    """Exit 2 naming the file a job could not read or write (``path`` when the error names none)."""
    return fail(EXIT_INPUT, f"cannot read or write {exc.filename or path}: {exc.strerror or exc}")


def out_of_resources(exc: BaseException) -> typer.Exit:
    """Exit 5 saying the job ran out of memory or lost a worker process, and what to change."""
    what = "ran out of memory" if isinstance(exc, MemoryError) else "lost a worker process"
    return fail(
        EXIT_RESOURCES,
        f"the job {what} (the system may have killed it for memory); nothing was published: "
        "rerun with fewer --workers or more --shards, or on a larger machine",
    )


def write_or_exit(frame, path: Path) -> None:
    """Write ``frame`` as parquet at ``path``; exit 2 naming the file when the disk refuses it."""
    from pipeline.io import write_parquet

    try:
        write_parquet(frame, path)
    except OSError as exc:
        raise unreadable(exc, path) from None


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn an unavailable model store into exit 4 and a model not found into exit 3."""
    from models.store import StoreUnavailableError
    from models.tracking import ModelNotFoundError

    try:
        yield
    except StoreUnavailableError as exc:
        raise fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise fail(EXIT_MODEL, str(exc)) from None


def parse_date(value: str, option: str):
    """Return an ISO date option as a midnight ``pandas.Timestamp``, or exit 2 naming the option."""
    import datetime as dt
    import re

    import pandas as pd

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise fail(EXIT_INPUT, f"{option} {value!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return pd.Timestamp(dt.date.fromisoformat(value.strip()))
    except ValueError as exc:
        raise fail(EXIT_INPUT, f"{option} {value!r} is not a valid date: {exc}") from None


def open_store_or_exit(must_exist: bool) -> None:
    """Say "opening model store", pay MLflow's start-up once, exit 3 or 4 when it cannot be used."""
    from models.store import StoreUnavailableError, tracking_uri

    log.info("opening model store %s (loading MLflow) ...", tracking_uri())
    from models.tracking import ModelNotFoundError, open_store

    try:
        open_store(must_exist=must_exist, announce=False)
    except StoreUnavailableError as exc:
        raise fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise fail(
            EXIT_MODEL, f"{exc}; train and promote a model first, or set MLFLOW_TRACKING_URI"
        ) from None


def is_sharded(data: Path, shards: int | None, engine: str) -> bool:
    """True when a job runs shard by shard: asked for, on Spark, or on a partitioned folder."""
    if engine not in ("local", "spark"):
        raise fail(EXIT_INPUT, f"--engine must be local or spark, not {engine!r}")
    return shards is not None or engine == "spark" or is_partitioned(data)


def workers_ahead(
    ctx: typer.Context, task: str, data: Path, shards: int | None, workers: int, engine: str
) -> None:
    """Start a sharded job's worker processes now, before its own imports, to warm up meanwhile.

    Called first thing in a command (pandas is not imported yet): each
    worker spawns, imports and builds what ``task``'s first shard would
    (:func:`pipeline.shard_tasks.warm_up`) while this process imports, checks its
    inputs and loads its model; the job's shards then run on them
    (:func:`pipeline.shard_pool.workers_started`), and they stop with the command
    (its context ``ctx``). This process's memory and threads are set for shards
    as theirs are (:func:`pipeline.shard_pool.keep_freed_memory`,
    :func:`pipeline.shard_pool.share_cores`).
    """
    from pipeline.shard_pool import keep_freed_memory, share_cores, workers_started

    if engine != "local" or not is_sharded(data, shards, engine):
        return
    keep_freed_memory()  # before numpy and arrow are loaded: their allocators too
    share_cores(workers)
    if workers < 2:
        return
    try:
        ctx.with_resource(workers_started(workers, ("pipeline.shard_tasks", "warm_up", (task,))))
    except OSError as exc:  # the system refused a process: its limit, or memory
        raise fail(
            EXIT_RESOURCES,
            f"cannot start the job's worker processes: {exc.strerror or exc}; "
            "rerun with fewer --workers",
        ) from None


def run_sharded(task: str, data: Path, out: Path | None, params: dict, shards, workers, engine):
    """Run a sharded job, turning unreadable input or an unwritable output into exit 2."""
    from concurrent.futures.process import BrokenProcessPool

    from pipeline.engine import run_sharded_to_file
    from pipeline.io import DataReadError

    try:
        return run_sharded_to_file(task, data, out, params, shards, workers, engine)
    except DataReadError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    except ImportError as exc:
        raise no_spark(exc) from None
    except OSError as exc:  # the output or the work folder beside it: no space, no permission
        raise unreadable(exc, out or data) from None
    except (BrokenProcessPool, MemoryError) as exc:
        raise out_of_resources(exc) from None


def load_or_exit(data: Path):
    """Read and validate ``data`` (exit 2 when unreadable), warning of the accounts left out."""
    from pipeline.io import DataReadError
    from pipeline.jobs import load_valid_tables

    try:
        result = load_valid_tables(data, keep_categories=True)
    except DataReadError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    warn_rejected(result)
    return result


def warn_rejected(result) -> None:
    """Warn on stderr when validation rejected accounts, which a job then leaves out."""
    if not result.ok:
        typer.echo(
            f"warning: {len(result.rejected_accounts):,} accounts rejected by validation are "
            "left out (run `propensity validate` for the report)",
            err=True,
        )


def require_approval(approver: str | None, note: str | None, command: str) -> None:
    """Exit 2 unless a registry change names its approver and a note."""
    missing = [o for o, v in (("--approver NAME", approver), ("--note TEXT", note)) if not v]
    if missing:
        raise fail(
            EXIT_INPUT,
            f"{command} needs {' and '.join(missing)}: nothing reaches the collections floor "
            "without a named reviewer and a reason, recorded in the registry",
        )
