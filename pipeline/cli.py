"""The ``propensity`` command line: one console script, one subcommand per job.

Heavy libraries are imported inside each command, so ``propensity --help`` is
fast and nothing runs at import time. Only this module resolves "today".
Exit codes: 0 success; 1 rows failed validation (or a run refused on data, a
promotion or rollback refused); 2 unreadable input, invalid configuration, an
implausible date or a promotion without --approver or --note; 3 no model (or
not this project's, or a folder holding a pickle) at the URI; 4 model store
unavailable. Every failure ends in one line ``<time> error: <message>`` on
stderr, never a traceback.
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

EXIT_OK, EXIT_DATA, EXIT_INPUT, EXIT_MODEL, EXIT_STORE = 0, 1, 2, 3, 4
#: Top-level packages whose log lines an operator reads; others go to the debug log.
PROJECT_LOGGERS = frozenset({"pipeline", "models", "features", "benchmarks", "__main__"})
#: Environment variable: file that receives every log line, third-party warnings included.
DEBUG_LOG_ENV = "PROPENSITY_DEBUG_LOG"
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
    int, typer.Option("--workers", min=1, help="Worker processes over the shards (local engine).")
]
EngineOpt = Annotated[
    str, typer.Option("--engine", help="local, or spark (one Spark task per shard).")
]


def _sharded(data: Path, shards: int | None, engine: str) -> bool:
    """True when a job runs shard by shard: asked for, on Spark, or on a partitioned folder."""
    from pipeline.shards import is_partitioned

    if engine not in ("local", "spark"):
        raise _fail(EXIT_INPUT, f"--engine must be local or spark, not {engine!r}")
    return shards is not None or engine == "spark" or is_partitioned(data)


def _run_sharded(task: str, data: Path, out: Path | None, params: dict, shards, workers, engine):
    """Run a sharded job, turning unreadable input into exit 2."""
    from pipeline.engine import run_sharded_to_file
    from pipeline.io import DataReadError

    try:
        return run_sharded_to_file(task, data, out, params, shards, workers, engine)
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    except ImportError as exc:
        raise _fail(
            EXIT_INPUT, f"{exc}; install the Spark extra (make setup-spark) for --engine spark"
        ) from None


def _fail(code: int, message: str) -> typer.Exit:
    from pipeline.text import printable

    stamp = time.strftime(ISO_FORMAT, time.gmtime())
    typer.echo(f"{stamp} error: {printable(str(message))}", err=True)
    return typer.Exit(code)


def _open_store(must_exist: bool) -> None:
    """Say "opening model store", pay MLflow's start-up once, exit 3 or 4 when it cannot be used."""
    from models.store import StoreUnavailableError, tracking_uri

    log.info("opening model store %s (loading MLflow) ...", tracking_uri())
    from models.tracking import ModelNotFoundError, open_store

    try:
        open_store(must_exist=must_exist, announce=False)
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise _fail(
            EXIT_MODEL, f"{exc}; train and promote a model first, or set MLFLOW_TRACKING_URI"
        ) from None


class _OperatorFilter(logging.Filter):
    """Keep the project's lines (INFO and up) and third-party errors; drop third-party chatter."""

    def __init__(self) -> None:
        super().__init__()
        self._root = str(Path(__file__).resolve().parents[1])

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in PROJECT_LOGGERS:
            return record.levelno >= logging.INFO
        if record.name == "py.warnings":  # warnings.warn: shown when raised by project code
            text = str(record.args[0]) if record.args else record.getMessage()
            return text.startswith(self._root) and "site-packages" not in text
        return record.levelno >= logging.ERROR


#: Libraries that install log handlers of their own; _setup_logging routes them through ours.
_THIRD_PARTY = frozenset({"mlflow", "alembic", "huey", "sqlalchemy"})


def _setup_logging() -> None:
    """ISO UTC time on every line; project lines on stderr; everything in the debug log if set."""
    import os

    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", ISO_FORMAT)
    formatter.converter = time.gmtime
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    stderr.addFilter(_OperatorFilter())
    handlers: list[logging.Handler] = [stderr]
    debug_path = os.environ.get(DEBUG_LOG_ENV)
    if debug_path:
        debug = logging.FileHandler(debug_path, encoding="utf-8")
        debug.setFormatter(formatter)
        handlers.append(debug)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    logging.captureWarnings(True)
    # MLflow, if imported already, gave its loggers (and alembic's, through its
    # migrations) their own stderr handlers: route every one of them through ours.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".", 1)[0] in _THIRD_PARTY:
            logger.handlers, logger.propagate, logger.disabled = [], True, False
    logging.getLogger("mlflow").setLevel(logging.INFO)
    # Chatty below WARNING even for the debug log.
    for name in ("alembic", "urllib3", "matplotlib", "sqlalchemy", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _parse_date(value: str, option: str):
    import datetime as dt
    import re

    import pandas as pd

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise _fail(EXIT_INPUT, f"{option} {value!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return pd.Timestamp(dt.date.fromisoformat(value.strip()))
    except ValueError as exc:
        raise _fail(EXIT_INPUT, f"{option} {value!r} is not a valid date: {exc}") from None


@app.callback()
def _main() -> None:
    """Repayment propensity scoring for loan collections."""
    import os

    # Batch jobs: no progress bars from MLflow's artifact downloads in the logs, and
    # LightGBM's OpenMP threads sleep instead of spinning when the cores are shared.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's own stderr handler would bypass the job's format and filter.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
    from pipeline.simulator import simulate_portfolio, write_portfolio

    if fmt not in ("parquet", "csv"):
        raise _fail(EXIT_INPUT, f"--format must be parquet or csv, not {fmt!r}")
    t0 = time.perf_counter()
    portfolio = simulate_portfolio(accounts, months, seed, _parse_date(start, "--start"))
    paths = write_portfolio(portfolio, out, fmt=fmt)
    for table, df in portfolio.tables.items():
        typer.echo(f"{table:<13} {len(df):>12,} rows -> {paths[table]}")
    typer.echo(
        f"simulated {accounts:,} accounts x {months} months in {time.perf_counter() - t0:.1f}s"
    )


@app.command()
def validate(
    data: DataOpt,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write the rejects table (parquet) here.")
    ] = None,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Validate the input tables against the data contract and report failing rows."""
    from pipeline.io import DataReadError, read_tables, write_parquet
    from pipeline.validation import format_report, validate_tables

    try:
        if _sharded(data, shards, engine):
            result = _run_sharded("validate", data, None, {}, shards, workers, engine)[0]
        else:
            result = validate_tables(read_tables(data))
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    typer.echo(format_report(result))
    if rejects is not None:
        write_parquet(result.rejects, rejects)
        typer.echo(f"rejects written to {rejects}")
    if not result.ok:
        raise typer.Exit(EXIT_DATA)


def _load_or_exit(data: Path):
    from pipeline.io import DataReadError
    from pipeline.jobs import load_valid_tables

    try:
        result = load_valid_tables(data, keep_categories=True)
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    _warn_rejected(result)
    return result


def _warn_rejected(result) -> None:
    if not result.ok:
        typer.echo(
            f"warning: {len(result.rejected_accounts):,} accounts rejected by validation are "
            "left out (run `propensity validate` for the report)",
            err=True,
        )


@app.command()
def features(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Date D (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Build the features of every account overdue at D (events strictly before D)."""
    from features.build import build_features
    from pipeline.io import write_parquet

    d = _parse_date(as_of, "--as-of")
    if _sharded(data, shards, engine):
        t0 = time.perf_counter()
        params = {"as_of": d.date().isoformat()}
        result, rows = _run_sharded("features", data, out, params, shards, workers, engine)
        _warn_rejected(result)
        typer.echo(f"stage features rows_out={rows:,} seconds={time.perf_counter() - t0:.2f}")
        typer.echo(f"{rows:,} rows -> {out}")
        return
    tables = _load_or_exit(data).tables
    t0 = time.perf_counter()
    frame = build_features(tables, d)
    typer.echo(
        f"stage features rows_in={len(tables['accounts']):,} rows_out={len(frame):,} "
        f"seconds={time.perf_counter() - t0:.2f}"
    )
    write_parquet(frame, out)
    typer.echo(f"{len(frame):,} rows x {frame.shape[1]} columns -> {out}")


@app.command("training-set")
def training_set(
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
    from features.training_set import build_training_set
    from pipeline.io import write_parquet

    d1, d2 = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    if d2 < d1:
        raise _fail(EXIT_INPUT, f"--to {date_to} is before --from {date_from}")
    end = _parse_date(data_end, "--data-end") if data_end is not None else None
    if _sharded(data, shards, engine):
        if end is None:
            raise _fail(EXIT_INPUT, "--data-end is required when the job runs shard by shard")
        t0 = time.perf_counter()
        params = {
            "from": d1.date().isoformat(),
            "to": d2.date().isoformat(),
            "horizon_days": horizon,
            "data_end": end.date().isoformat(),
        }
        result, rows = _run_sharded("training_set", data, out, params, shards, workers, engine)
        _warn_rejected(result)
        typer.echo(f"stage training_set rows_out={rows:,} seconds={time.perf_counter() - t0:.2f}")
        if rows == 0:
            raise _fail(
                EXIT_DATA,
                f"no snapshot between {date_from} and {date_to} has a complete {horizon}-day "
                "horizon in the data; choose earlier dates",
            )
        typer.echo(f"{rows:,} rows -> {out}")
        return
    tables = _load_or_exit(data).tables
    t0 = time.perf_counter()
    frame = build_training_set(tables, d1, d2, horizon_days=horizon, data_end=end)
    typer.echo(
        f"stage training_set rows_in={len(tables['accounts']):,} rows_out={len(frame):,} "
        f"seconds={time.perf_counter() - t0:.2f}"
    )
    if frame.empty:
        raise _fail(
            EXIT_DATA,
            f"no snapshot between {date_from} and {date_to} has a complete {horizon}-day "
            "horizon in the data; choose earlier dates",
        )
    write_parquet(frame, out)
    rate = frame["paid_any"].mean()
    typer.echo(f"{len(frame):,} rows (paid_any rate {rate:.3f}) -> {out}")


@app.command()
def train(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Training date D (YYYY-MM-DD).")],
    months: Annotated[int, typer.Option("--months", min=3, help="Monthly snapshots.")] = 12,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Label horizon, days.")] = 30,
    config: Annotated[
        Path | None, typer.Option("--config", help="Hyper-parameter YAML (default packaged).")
    ] = None,
    experiment: Annotated[str | None, typer.Option("--experiment")] = None,
    plans: Annotated[
        Path | None,
        typer.Option(
            "--plans",
            help="Published runs (as_of=D/scores.parquet) whose randomised arms fit the "
            "treatment-effect model, logged with the heads.",
        ),
    ] = None,
) -> None:
    """Train both heads on snapshots before D, log to MLflow, register a challenger."""
    from models.store import StoreUnavailableError
    from pipeline.io import DataReadError
    from pipeline.jobs import train_job

    d = _parse_date(as_of, "--as-of")
    if plans is not None and not plans.is_dir():  # before hours of training, not after
        raise _fail(EXIT_INPUT, f"--plans {plans}: no such folder of published runs")
    _open_store(must_exist=False)
    try:
        job = train_job(
            data, d, months=months, horizon_days=horizon, config_path=config,
            experiment=experiment, plans_dir=plans,
        )  # fmt: skip
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    except ValueError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    r = job.result
    typer.echo(
        f"trained on snapshots {job.window[0].date()}..{job.window[1].date()}: "
        f"registered repayment-propensity version {job.model_version} as challenger "
        f"(run {job.run_id})"
    )
    for head, splits in r.metrics.items():
        t = splits["test"]
        typer.echo(
            f"  {head:<12} out-of-time AUC {t['auc']:.4f}  KS {t['ks']:.4f}  "
            f"Brier {t['brier']:.4f}  ECE {t['ece']:.4f}"
        )
    typer.echo(f"  gate vs baselines: {'pass' if r.gate.accepted else 'fail'}")
    if r.effects is not None and r.effects.model is not None:
        for row in r.effects.table.itertuples():
            typer.echo(
                f"  effect {row.arm:<8} observed {row.observed_effect:+.4f} "
                f"(95% CI {row.ci_low:+.4f} to {row.ci_high:+.4f}), Qini {row.qini_coefficient:.4f}"
            )


ApproverOpt = Annotated[
    str | None, typer.Option("--approver", help="Who approves (recorded in the registry).")
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (recorded in the registry).")]


def _require_approval(approver: str | None, note: str | None, command: str) -> None:
    missing = [o for o, v in (("--approver NAME", approver), ("--note TEXT", note)) if not v]
    if missing:
        raise _fail(
            EXIT_INPUT,
            f"{command} needs {' and '.join(missing)}: nothing reaches the collections floor "
            "without a named reviewer and a reason, recorded in the registry",
        )


@app.command()
def promote(
    approver: ApproverOpt = None,
    note: NoteOpt = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Version to promote (default: challenger).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data folder (default: the version's own).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Evaluation date (default: the version's own).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config YAML whose gate section sets the tolerances."),
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option("--override-reason", help="Why a gate looser than the default is used."),
    ] = None,
) -> None:
    """Move alias champion to the challenger if it is no worse out of time; else refuse."""
    _require_approval(approver, note, "promote")
    from models.registry import PromotionRefused
    from models.store import StoreUnavailableError

    d = _parse_date(as_of, "--as-of") if as_of else None
    _open_store(must_exist=True)
    from models.tracking import ModelNotFoundError
    from pipeline.io import DataReadError
    from pipeline.jobs import promote_job

    try:
        decision = promote_job(
            version,
            data_dir=data,
            as_of=d,
            config_path=config,
            approver=approver,
            note=note,
            override_reason=override_reason,
        )
    except PromotionRefused as exc:
        raise _fail(EXIT_DATA, str(exc)) from None
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise _fail(EXIT_MODEL, str(exc)) from None
    except (DataReadError, ValueError) as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    typer.echo(decision.summary())
    already = decision.champion_version is not None and (
        decision.champion_version == decision.challenger_version
    )
    if decision.accepted:
        typer.echo(f"  champion is now v{decision.challenger_version}, approved by {approver}")
    if not decision.accepted and not already:
        raise typer.Exit(EXIT_DATA)


@app.command()
def rollback(
    to: Annotated[str, typer.Option("--to", help="Earlier version to make champion again.")],
    approver: ApproverOpt = None,
    note: NoteOpt = None,
) -> None:
    """Point alias champion back at an earlier, once-promoted version; record who and why."""
    _require_approval(approver, note, "rollback")
    from models.store import StoreUnavailableError

    _open_store(must_exist=True)
    from models.registry import Approval, PromotionRefused
    from models.registry import rollback as do_rollback
    from models.tracking import ModelNotFoundError

    try:
        done = do_rollback(to, approval=Approval(approver or "", note or ""))
    except PromotionRefused as exc:
        raise _fail(EXIT_DATA, str(exc)) from None
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise _fail(EXIT_MODEL, str(exc)) from None
    typer.echo(
        f"Rolled back: champion {done['from']} -> {done['to']} at {done['decided_at']}, "
        f"approved by {done['approver']} ({done['reason']})"
    )


@app.command()
def recalibrate(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Date D (YYYY-MM-DD).")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version to recalibrate (default: champion).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config YAML whose gate section applies.")
    ] = None,
) -> None:
    """Move a model's calibration to the newest labelled month (trees kept), gate and register it."""
    d = _parse_date(as_of, "--as-of")
    _open_store(must_exist=True)
    from models.recalibrate import RecalibrationRefused
    from models.store import StoreUnavailableError
    from models.tracking import ModelNotFoundError
    from pipeline.io import DataReadError
    from pipeline.jobs import recalibrate_job

    try:
        job = recalibrate_job(data, d, version=version, config_path=config)
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise _fail(EXIT_MODEL, str(exc)) from None
    except RecalibrationRefused as exc:
        raise _fail(EXIT_DATA, f"recalibration refused: {exc}") from None
    except (DataReadError, ValueError) as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    typer.echo(job.recalibration.summary())
    typer.echo(job.decision.summary())
    if job.model_version is None:
        raise _fail(EXIT_DATA, "the recalibrated model failed the gate: nothing registered")
    typer.echo(
        f"registered repayment-propensity version {job.model_version} as challenger "
        f"(run {job.run_id})"
    )


@app.command()
def report(
    version: Annotated[
        str | None, typer.Option("--version", help="Model version (default: challenger).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to copy the report into.")] = Path(
        "reports"
    ),
) -> None:
    """Copy a version's self-contained HTML model report to <out>/model_report_v<N>.html."""
    from models.store import StoreUnavailableError

    _open_store(must_exist=True)
    from models.registry import download_report
    from models.tracking import ModelNotFoundError

    try:
        path = download_report(version, out)
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except ModelNotFoundError as exc:
        raise _fail(EXIT_MODEL, str(exc)) from None
    typer.echo(f"model report: {path}")


@app.command()
def evaluate(
    accounts: Annotated[int, typer.Option("--accounts", min=500)] = 30000,
    months: Annotated[int, typer.Option("--months", min=12)] = 18,
    seed: Annotated[int, typer.Option("--seed")] = 90210,
    scenario: Annotated[
        str, typer.Option("--scenario", help="Simulated world: base or drift.")
    ] = "base",
) -> None:
    """Check the quality bar on a fresh simulated portfolio (reads the simulator's truth)."""
    from pipeline.quality import run_quality_bar

    try:
        text, passed = run_quality_bar(accounts, months, seed, scenario)
    except ValueError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    typer.echo(text)
    if not passed:
        raise typer.Exit(EXIT_DATA)


@app.command()
def partition(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the shard layout into.")],
    shards: Annotated[
        int, typer.Option("--shards", min=1, max=32_767, help="Number of shards.")
    ] = 16,
) -> None:
    """Lay an export out by shard once (a stable hash of customer_id), for sharded jobs."""
    from pipeline.io import DataReadError
    from pipeline.shards import partition_data

    t0 = time.perf_counter()
    try:
        layout = partition_data(data, out, shards)
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    except OSError as exc:
        raise _fail(
            EXIT_INPUT, f"cannot read or write {exc.filename or out}: {exc.strerror or exc}"
        ) from None
    for table, facts in layout["tables"].items():
        typer.echo(f"{table:<13} {facts['rows']:>12,} rows")
    typer.echo(
        f"{layout['n_shards']} shards by {layout['key']} -> {out} "
        f"in {time.perf_counter() - t0:.1f}s"
    )


@app.command()
def score(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring date D (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="Output root; writes <out>/as_of=D/.")],
    model_uri: Annotated[
        str | None,
        typer.Option("--model-uri", help="MLflow model URI (default: the champion)."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy YAML (default: the packaged one).")
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for a run of the same date.")
    ] = 0.0,
    no_mlflow: Annotated[
        bool, typer.Option("--no-mlflow", help="Do not log the monitoring run.")
    ] = False,
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale",
            help="Deliberate backfill: skip the check of D against the export's dates.",
        ),
    ] = False,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Score every account overdue at D and publish scores, rejects and a manifest."""
    from pipeline.asof import AsOfImplausibleError
    from pipeline.io import DataReadError
    from pipeline.policy import PolicyError
    from pipeline.publish import RunLockedError
    from pipeline.score import DEFAULT_MODEL_URI, RejectLimitError, run_scoring

    d = _parse_date(as_of, "--as-of")
    if not no_mlflow or (model_uri or DEFAULT_MODEL_URI).startswith(("models:/", "runs:/")):
        _open_store(must_exist=True)  # before reading the export: a store fault fails fast
    from models.store import StoreUnavailableError
    from models.tracking import ModelNotFoundError

    kwargs = {
        "model_uri": model_uri,
        "policy_path": policy,
        "wait_seconds": wait,
        "log_to_mlflow": not no_mlflow,
        "allow_stale": allow_stale,
    }
    try:
        if _sharded(data, shards, engine):
            from pipeline.shard_score import run_scoring_sharded

            outcome = run_scoring_sharded(
                data, d, out, n_shards=shards, workers=workers, engine=engine, **kwargs
            )
        else:
            outcome = run_scoring(data, d, out, **kwargs)
    except StoreUnavailableError as exc:
        raise _fail(EXIT_STORE, str(exc)) from None
    except AsOfImplausibleError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    except DataReadError as exc:
        raise _fail(EXIT_INPUT, f"{exc}; fix the input table and rerun") from None
    except PolicyError as exc:
        raise _fail(EXIT_INPUT, f"invalid policy: {exc}") from None
    except RunLockedError as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    except RejectLimitError as exc:
        raise _fail(EXIT_DATA, str(exc)) from None
    except ImportError as exc:
        raise _fail(
            EXIT_INPUT, f"{exc}; install the Spark extra (make setup-spark) for --engine spark"
        ) from None
    except ModelNotFoundError as exc:
        raise _fail(
            EXIT_MODEL,
            f"{exc}; train and promote a model (propensity train, propensity promote) "
            "or pass --model-uri",
        ) from None
    except OSError as exc:
        raise _fail(
            EXIT_INPUT, f"cannot read or write {exc.filename or out}: {exc.strerror or exc}"
        ) from None
    except Exception as exc:
        if type(exc).__name__ != "MlflowException":
            raise
        cause = (str(exc).strip().splitlines() or ["no detail"])[0]
        raise _fail(
            EXIT_STORE, f"model store unavailable or refused the request: {cause}"
        ) from None
    m = outcome.manifest
    c = m["counts"]
    typer.echo(
        f"published {outcome.output_dir}: {c['scored']:,} scored, {c['rejected']:,} rejected, "
        f"{c['out_of_scope']:,} out of scope (of {c['input_accounts']:,} accounts)"
    )
    o = m["outputs"]
    for title, key in (
        ("accounts per tier", "per_tier"),
        ("contact intensity", "per_intensity"),
        ("offer", "per_offer"),
        ("suppressed", "per_suppressed_reason"),
        ("approach", "per_approach"),
    ):
        typer.echo(f"  {title + ':':<19}" + ", ".join(f"{k} {v:,}" for k, v in o[key].items()))
    typer.echo(f"  {'control group:':<19}{o['control_group']:,} accounts")
    if "allocation" in m:  # value mode
        a = m["allocation"]
        typer.echo(
            f"  {'value allocation:':<19}calls {a['calls_used']:,}/{a['calls_capacity']:,}, "
            f"texts {a['sms_used']:,}/{a['sms_capacity']:,}, proven gap {a['gap']:.1e}"
        )
    typer.echo(f"  model version {m['model_version']}, policy version {m['policy_version']}")


@app.command()
def replay(
    data: DataOpt,
    start: Annotated[str, typer.Option("--from", help="First replayed day D1 (YYYY-MM-DD).")],
    nights: Annotated[int, typer.Option("--nights", min=1)] = 60,
    policy: Annotated[
        list[Path] | None,
        typer.Option("--policy", help="Policy YAML planned with the model (repeatable)."),
    ] = None,
    baseline: Annotated[
        list[str] | None, typer.Option("--baseline", help="Named baseline, e.g. dpd_buckets.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="First seed of the debtors' draws.")] = 0,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds.")] = 1,
    model_uri: Annotated[
        str | None, typer.Option("--model-uri", help="MLflow model URI (default: the champion).")
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Train a model in-process on the data before --from.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the HTML report here.")
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
    value: Annotated[
        bool,
        typer.Option(
            "--value", help="Also replay the first policy in value mode at its fixed capacity."
        ),
    ] = False,
    learn_nights: Annotated[
        int,
        typer.Option(
            "--learn-nights",
            min=0,
            help="Value mode explores this many nights, then plans with learned effects "
            "(default 0: the priors every night, which recovered more in the measured replay).",
        ),
    ] = 0,
    explore_share: Annotated[
        float,
        typer.Option(
            "--explore-share",
            min=0.0,
            max=1.0,
            help="Share of eligible episodes explored while learning (a short replay needs most).",
        ),
    ] = 1.0,
    publish_plans: Annotated[
        Path | None,
        typer.Option(
            "--publish-plans",
            help="Write the first seed's plans (value mode with --value, else the first policy) "
            "as published runs, and their tables, for train --plans.",
        ),
    ] = None,
) -> None:
    """Replay policies and baselines night after night on a simulated portfolio and compare."""
    from models.tracking import ModelNotFoundError
    from pipeline.io import DataReadError
    from pipeline.policy import PolicyError
    from pipeline.simulator.replay_job import ReplayInputError, run_replay_job

    d1 = _parse_date(start, "--from")
    baselines = list(baseline or [])
    policies: list[Path | None] = list(policy or [])
    if not policies:
        policies = [None]  # the packaged default policy
    try:
        result = run_replay_job(
            data, d1, nights, policies, baselines, list(range(seed, seed + seeds)),
            model_uri=model_uri, train=train, log_to_mlflow=not no_mlflow, value=value,
            learn_nights=learn_nights, explore_share=explore_share,
            publish_plans=publish_plans,
        )  # fmt: skip
    except (DataReadError, ReplayInputError) as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    except PolicyError as exc:
        raise _fail(EXIT_INPUT, f"invalid policy: {exc}") from None
    except KeyError as exc:
        raise _fail(EXIT_INPUT, str(exc.args[0])) from None
    except ModelNotFoundError as exc:
        raise _fail(EXIT_MODEL, f"{exc}; pass --train or --model-uri") from None
    typer.echo(result.text)
    if report is not None:
        report.write_text(result.page, encoding="utf-8")
        typer.echo(f"report written to {report}")
    if result.run_id:
        typer.echo(f"MLflow run {result.run_id} (experiment replay)")


@app.command()
def effect(
    scores: Annotated[Path, typer.Option("--scores", help="Output root of the scoring runs.")],
    data: DataOpt,
    start: Annotated[str, typer.Option("--from", help="First run date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last run date (YYYY-MM-DD).")],
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Days of outcome.")] = 30,
    n_boot: Annotated[int, typer.Option("--bootstrap", min=100)] = 1000,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the HTML report here.")
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
) -> None:
    """Estimate the incremental recovery of the plans over the control group from published runs."""
    from pipeline.effect import EffectInputError, run_effect
    from pipeline.io import DataReadError

    d1, d2 = _parse_date(start, "--from"), _parse_date(end, "--to")
    if d2 < d1:
        raise _fail(EXIT_INPUT, f"--to {end} is before --from {start}")
    try:
        result, page, run_id = run_effect(
            scores, data, d1, d2, horizon, n_boot, log_to_mlflow=not no_mlflow
        )
    except (DataReadError, EffectInputError) as exc:
        raise _fail(EXIT_INPUT, str(exc)) from None
    for title, table in (
        ("overall", result.overall),
        ("per tier", result.per_tier),
        ("per offer", result.per_offer),
    ):
        typer.echo(f"== {title}")
        typer.echo(table.T.to_string(float_format=lambda v: f"{v:,.3f}"))
    if report is not None:
        report.write_text(page, encoding="utf-8")
        typer.echo(f"report written to {report}")
    if run_id:
        typer.echo(f"MLflow run {run_id} (experiment effect)")


def main() -> None:  # pragma: no cover - console entry for ``python -m pipeline.cli``
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
