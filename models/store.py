"""Where the MLflow store is and how its faults are met: paths, locks, retries, probes.

No MLflow here (that stays in :mod:`models.tracking`): this module knows the
store as a URI and, for SQLite, as a file. Every fault that makes the store
unusable for now -- busy past the retry budget, a corrupt or foreign file, a
directory, a folder that does not exist, the project's lock held past its
timeout -- is raised as :class:`StoreUnavailableError`, whose one-line message
names the store and the cause (exit code 4 of the command line).

Retries
-------
SQLite allows one writer at a time and MLflow waits up to 20 s per statement
for a busy database. On top of that, a call that still fails with ``database is
locked`` is retried with back-off (0.25 s, 0.5 s, 1 s, ... each logged) until the
retry budget is spent: ``PROPENSITY_STORE_RETRY_SECONDS``, default 60.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
LOCK_TIMEOUT_S = 900.0
#: Environment variable: seconds of back-off spent on a busy SQLite store before giving up.
RETRY_ENV = "PROPENSITY_STORE_RETRY_SECONDS"
DEFAULT_RETRY_S = 60.0
FIRST_DELAY_S = 0.25

T = TypeVar("T")


class StoreUnavailableError(RuntimeError):
    """The model store cannot be used now (busy, corrupt, missing folder, lock held); exit 4."""


def tracking_uri() -> str:
    """Return the tracking URI: ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` URI (None for other stores).

    Examples
    --------
    >>> sqlite_path("sqlite:///mlflow.db"), sqlite_path("http://host:5000")
    (PosixPath('mlflow.db'), None)
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


def artifact_location(uri: str) -> str | None:
    """Return the artifact root for new experiments: ``mlartifacts/`` beside a SQLite file."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.resolve().parent / "mlartifacts").as_uri()


def retry_budget() -> float:
    """Return the seconds of back-off allowed on a busy store (``PROPENSITY_STORE_RETRY_SECONDS``)."""
    value = os.environ.get(RETRY_ENV, "").strip()
    if not value:
        return DEFAULT_RETRY_S
    try:
        return max(0.0, float(value))
    except ValueError:
        raise StoreUnavailableError(
            f"{RETRY_ENV}={value!r} is not a number of seconds; unset it or give e.g. 60"
        ) from None


def backoff_delays(budget: float) -> Iterator[float]:
    """Yield doubling delays from 0.25 s whose sum is ``budget`` (the last one cut to fit).

    Examples
    --------
    >>> list(backoff_delays(2.0))
    [0.25, 0.5, 1.0, 0.25]
    """
    spent, delay = 0.0, FIRST_DELAY_S
    while spent < budget - 1e-9:
        step = min(delay, budget - spent)
        yield step
        spent += step
        delay *= 2


def is_locked(exc: BaseException | None) -> bool:
    """Tell whether an exception (or one it was raised from) is SQLite's ``database is locked``."""
    while exc is not None:
        if "database is locked" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def with_retry(fn: Callable[..., T], *args: Any, store_uri: str | None = None, **kwargs: Any) -> T:
    """Call ``fn``, retrying with logged back-off while SQLite answers ``database is locked``.

    ``store_uri`` names the store in the error (default :func:`tracking_uri`);
    the other arguments go to ``fn``.

    Raises
    ------
    StoreUnavailableError
        When the store is still locked after the retry budget.
    """
    budget = retry_budget()
    delays = backoff_delays(budget)
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_locked(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise StoreUnavailableError(
                    f"model store {store_uri or tracking_uri()} unavailable: the database stayed "
                    f"locked by another process through {budget:g}s of retries; rerun when that job "
                    f"ends, or raise {RETRY_ENV}"
                ) from None
            log.warning("model store busy (database is locked); retrying in %.2fs", delay)
            time.sleep(delay)


def check_sqlite_store(uri: str) -> bool:
    """Check a ``sqlite:///`` store's file before MLflow opens it; return whether the file exists.

    A folder that does not exist is refused (MLflow would create an empty store
    elsewhere than meant); a directory, a file that is not a SQLite database,
    or a database locked past the retry budget raise :class:`StoreUnavailableError`.
    Other URIs pass unchecked (True).
    """
    db = sqlite_path(uri)
    if db is None:
        return True
    folder = db.resolve().parent
    if not folder.is_dir():
        raise StoreUnavailableError(
            f"model store {uri} unavailable: folder {folder} does not exist; "
            "fix MLFLOW_TRACKING_URI or create the folder (no new empty store is made)"
        )
    if db.is_dir():
        raise StoreUnavailableError(
            f"model store {uri} unavailable: {db} is a directory, not a SQLite database file"
        )
    if not db.exists():
        return False
    try:
        with_retry(_probe_sqlite, db, store_uri=uri)
    except sqlite3.Error as exc:
        raise StoreUnavailableError(
            f"model store {uri} unavailable: {db} cannot be read as a SQLite database ({exc}); "
            "restore it from a backup or point MLFLOW_TRACKING_URI elsewhere"
        ) from None
    return True


def _probe_sqlite(db: Path) -> None:
    """Read the schema of a SQLite file without waiting: raises at once when locked or corrupt."""
    con = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=0.0)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        con.close()


@contextlib.contextmanager
def tracking_lock(uri: str | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the store's write lock (a file lock next to a SQLite database; no-op otherwise).

    Logs a line when another job holds it, then waits.

    Parameters
    ----------
    uri : str, optional
        Tracking URI (default :func:`tracking_uri`).
    timeout : float
        Seconds to wait for another writer before failing with a clear error.

    Raises
    ------
    StoreUnavailableError
        When the lock is still held after ``timeout``.
    """
    uri = uri or tracking_uri()
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    check_sqlite_store(uri)
    lock_path = db.resolve().with_name(db.name + ".lock")
    lock = FileLock(str(lock_path), timeout=timeout)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if timeout <= 0:
            raise StoreUnavailableError(
                f"model store {uri} unavailable: another job holds the lock {lock_path}"
            ) from None
        log.info(
            "waiting for the model store lock %s: another job is writing (up to %.0fs)",
            lock_path,
            timeout,
        )
        try:
            lock.acquire()
        except Timeout:
            raise StoreUnavailableError(
                f"model store {uri} unavailable: another job has held the MLflow store lock "
                f"{lock_path} for over {timeout:.0f}s; wait for it to finish, or remove the "
                "lock file if no job is running"
            ) from None
    try:
        yield
    finally:
        lock.release()
