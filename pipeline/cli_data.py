"""The data jobs of ``propensity``: simulate, validate, features, training-set, partition."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli_common import (
    EXIT_DATA,
    EXIT_INPUT,
    DataOpt,
    EngineOpt,
    ShardsOpt,
    WorkersOpt,
    fail,
    is_sharded,
    load_or_exit,
    parse_date,
    run_sharded,
    unreadable,
    warn_rejected,
    workers_ahead,
    write_or_exit,
)


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the tables into.")],
    accounts: Annotated[int, typer.Option("--accounts", min=1)] = 2000,
    months: Annotated[int, typer.Option("--months", min=1)] = 18,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    start: Annotated[str, typer.Option("--start", help="First month (YYYY-MM-DD).")] = "2024-01-01",
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Simulate a portfolio and write the contract's five tables plus truth.parquet."""
    from pipeline.simulator import simulate_portfolio, write_portfolio

    if fmt not in ("parquet", "csv"):
        raise fail(EXIT_INPUT, f"--format must be parquet or csv, not {fmt!r}")
    t0 = time.perf_counter()
    portfolio = simulate_portfolio(accounts, months, seed, parse_date(start, "--start"))
    paths = write_portfolio(portfolio, out, fmt=fmt)
    for table, df in portfolio.tables.items():
        typer.echo(f"{table:<13} {len(df):>12,} rows -> {paths[table]}")
    typer.echo(
        f"simulated {accounts:,} accounts x {months} months in {time.perf_counter() - t0:.1f}s"
    )


def validate(
    ctx: typer.Context,
    data: DataOpt,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write the rejects table (parquet) here.")
    ] = None,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Validate the input tables against the data contract and report failing rows."""
    workers_ahead(ctx, "validate", data, shards, workers, engine)
    from pipeline.io import DataReadError, read_tables
    from pipeline.validation import format_report, validate_tables

    try:
        if is_sharded(data, shards, engine):
            result = run_sharded("validate", data, None, {}, shards, workers, engine)[0]
        else:
            result = validate_tables(read_tables(data))
    except DataReadError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    typer.echo(format_report(result))
    if rejects is not None:
        write_or_exit(result.rejects, rejects)
        typer.echo(f"rejects written to {rejects}")
    if not result.ok:
        raise typer.Exit(EXIT_DATA)


def features(
    ctx: typer.Context,
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Date D (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Build the features of every account overdue at D (events strictly before D)."""
    workers_ahead(ctx, "features", data, shards, workers, engine)
    from features.build import build_features

    d = parse_date(as_of, "--as-of")
    if is_sharded(data, shards, engine):
        t0 = time.perf_counter()
        params = {"as_of": d.date().isoformat()}
        result, rows = run_sharded("features", data, out, params, shards, workers, engine)
        warn_rejected(result)
        typer.echo(f"stage features rows_out={rows:,} seconds={time.perf_counter() - t0:.2f}")
        typer.echo(f"{rows:,} rows -> {out}")
        return
    tables = load_or_exit(data).tables
    t0 = time.perf_counter()
    frame = build_features(tables, d)
    typer.echo(
        f"stage features rows_in={len(tables['accounts']):,} rows_out={len(frame):,} "
        f"seconds={time.perf_counter() - t0:.2f}"
    )
    write_or_exit(frame, out)
    typer.echo(f"{len(frame):,} rows x {frame.shape[1]} columns -> {out}")


def training_set(
    ctx: typer.Context,
    data: DataOpt,
    date_from: Annotated[str, typer.Option("--from", help="First month end (YYYY-MM-DD).")],
    date_to: Annotated[str, typer.Option("--to", help="Last month end (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Label horizon in days.")] = 30,
    data_end: Annotated[
        str | None,
        typer.Option(
            "--data-end",
            help="First date the data does not cover (default: the latest payment or contact; "
            "required with --shards, where each shard would infer its own).",
        ),
    ] = None,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Build month-end snapshots with features and labels; incomplete horizons are left out."""
    workers_ahead(ctx, "training_set", data, shards, workers, engine)
    from features.training_set import build_training_set

    d1, d2 = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if d2 < d1:
        raise fail(EXIT_INPUT, f"--to {date_to} is before --from {date_from}")
    end = parse_date(data_end, "--data-end") if data_end is not None else None
    if is_sharded(data, shards, engine):
        if end is None:
            raise fail(EXIT_INPUT, "--data-end is required when the job runs shard by shard")
        t0 = time.perf_counter()
        params = {
            "from": d1.date().isoformat(),
            "to": d2.date().isoformat(),
            "horizon_days": horizon,
            "data_end": end.date().isoformat(),
        }
        result, rows = run_sharded("training_set", data, out, params, shards, workers, engine)
        warn_rejected(result)
        typer.echo(f"stage training_set rows_out={rows:,} seconds={time.perf_counter() - t0:.2f}")
        if rows == 0:
            raise fail(
                EXIT_DATA,
                f"no snapshot between {date_from} and {date_to} has a complete {horizon}-day "
                "horizon in the data; choose earlier dates",
            )
        typer.echo(f"{rows:,} rows -> {out}")
        return
    tables = load_or_exit(data).tables
    t0 = time.perf_counter()
    frame = build_training_set(tables, d1, d2, horizon_days=horizon, data_end=end)
    typer.echo(
        f"stage training_set rows_in={len(tables['accounts']):,} rows_out={len(frame):,} "
        f"seconds={time.perf_counter() - t0:.2f}"
    )
    if frame.empty:
        raise fail(
            EXIT_DATA,
            f"no snapshot between {date_from} and {date_to} has a complete {horizon}-day "
            "horizon in the data; choose earlier dates",
        )
    write_or_exit(frame, out)
    rate = frame["paid_any"].mean()
    typer.echo(f"{len(frame):,} rows (paid_any rate {rate:.3f}) -> {out}")


def partition(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the shard layout into.")],
    shards: Annotated[
        int, typer.Option("--shards", min=1, max=32_767, help="Number of shards.")
    ] = 16,
) -> None:
    """Lay an export out by shard once (a stable hash of customer_id), for sharded jobs."""
    from pipeline.io import DataReadError
    from pipeline.partition import partition_data

    t0 = time.perf_counter()
    try:
        layout = partition_data(data, out, shards)
    except DataReadError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    except OSError as exc:
        raise unreadable(exc, out) from None
    for table, facts in layout["tables"].items():
        typer.echo(f"{table:<13} {facts['rows']:>12,} rows")
    typer.echo(
        f"{layout['n_shards']} shards by {layout['key']} -> {out} "
        f"in {time.perf_counter() - t0:.1f}s"
    )
