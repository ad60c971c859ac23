"""The ``propensity`` command line: one console script, one subcommand per job.

Heavy libraries are imported inside each command, so ``propensity --help`` is
fast and nothing runs at import time. Only this module resolves "today".
Exit codes: 0 success; 1 rows failed validation (or a run refused on data);
2 unreadable input or invalid configuration; 3 no model at the URI.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Repayment propensity scoring for loan collections.",
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_DATA, EXIT_INPUT, EXIT_MODEL = 0, 1, 2, 3

DataOpt = Annotated[Path, typer.Option("--data", help="Folder with the contract's input tables.")]


def _fail(code: int, message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # MLflow and alembic are chatty at INFO; keep the job's own lines readable.
    for name in ("alembic", "mlflow", "urllib3", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _parse_date(value: str, option: str):
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except ValueError as exc:
        raise _fail(EXIT_INPUT, f"{option} {value!r} is not an ISO date (YYYY-MM-DD)") from exc
    if ts.tzinfo is not None or ts != ts.normalize():
        raise _fail(EXIT_INPUT, f"{option} {value!r} must be a plain date (YYYY-MM-DD)")
    return ts


@app.callback()
def _main() -> None:
    """Repayment propensity scoring for loan collections."""
    _setup_logging()


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the tables into.")],
    accounts: Annotated[int, typer.Option("--accounts", min=1)] = 2000,
    months: Annotated[int, typer.Option("--months", min=1)] = 18,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    start: Annotated[str, typer.Option("--start", help="First month (YYYY-MM-DD).")] = "2024-01-01",
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Simulate a portfolio and write the contract's five tables plus truth.parquet."""
    from pipeline.simulate import simulate_portfolio, write_portfolio

    if fmt not in ("parquet", "csv"):
        raise _fail(EXIT_INPUT, f"--format must be parquet or csv, not {fmt!r}")
    t0 = time.perf_counter()
    portfolio = simulate_portfolio(accounts, months, seed, _parse_date(start, "--start"))
    paths = write_portfolio(portfolio, out, fmt=fmt)
    for table, df in portfolio.tables.items():
        typer.echo(f"{table:<13} {len(df):>12,} rows -> {paths[table]}")
    typer.echo(f"simulated {accounts:,} accounts x {months} months in {time.perf_counter() - t0:.1f}s")


@app.command()
def validate(
    data: DataOpt,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write the rejects table (parquet) here.")
    ] = None,
) -> None:
    """Validate the input tables against the data contract and report failing rows."""
    from pipeline.io import DataReadError, read_tables, write_parquet
    from pipeline.validation import format_report, validate_tables

    try:
        result = validate_tables(read_tables(data))
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    typer.echo(format_report(result))
    if rejects is not None:
        write_parquet(result.rejects, rejects)
        typer.echo(f"rejects written to {rejects}")
    if not result.ok:
        raise typer.Exit(EXIT_DATA)


def main() -> None:  # pragma: no cover - console entry for ``python -m pipeline.cli``
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
