"""The ``propensity`` command line: one console script, one subcommand per job.

Heavy libraries are imported inside each command, so ``propensity --help`` is
fast and nothing runs at import time. Only this module resolves "today".
Exit codes: 0 success; 1 rows failed validation (or a run refused on data, a
promotion or rollback refused); 2 unreadable input, invalid configuration, an
implausible date or a promotion without --approver or --note; 3 no model (or
not this project's, or a folder holding a pickle) at the URI; 4 model store
unavailable. Every failure ends in one line ``<time> error: <message>`` on
stderr, never a traceback.

This module is the group: its logging and the order of its subcommands, which
live by theme in :mod:`pipeline.cli_data` (simulate, validate, features,
training-set, partition), :mod:`pipeline.cli_models` (train, promote,
rollback, recalibrate, report, evaluate) and :mod:`pipeline.cli_runs` (score,
replay, effect); what they share (exit codes, options, dates, errors) is in
:mod:`pipeline.cli_common`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import typer

from pipeline import cli_data, cli_models, cli_runs
from pipeline.cli_common import ISO_FORMAT

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Repayment propensity scoring for loan collections.",
    pretty_exceptions_enable=False,
)

#: Top-level packages whose log lines an operator reads; others go to the debug log.
PROJECT_LOGGERS = frozenset({"pipeline", "models", "features", "benchmarks", "__main__"})
#: Environment variable: file that receives every log line, third-party warnings included.
DEBUG_LOG_ENV = "PROPENSITY_DEBUG_LOG"


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


# The subcommands, in the order `propensity --help` lists them.
app.command()(cli_data.simulate)
app.command()(cli_data.validate)
app.command()(cli_data.features)
app.command("training-set")(cli_data.training_set)
app.command()(cli_models.train)
app.command()(cli_models.promote)
app.command()(cli_models.rollback)
app.command()(cli_models.recalibrate)
app.command()(cli_models.report)
app.command()(cli_models.evaluate)
app.command()(cli_data.partition)
app.command()(cli_runs.score)
app.command()(cli_runs.replay)
app.command()(cli_runs.effect)


def main() -> None:  # pragma: no cover - console entry for ``python -m pipeline.cli``
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
