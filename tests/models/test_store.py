"""Store faults: a busy, corrupt, misplaced or foreign MLflow store fails with one clear error."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from filelock import FileLock

from models import store, tracking


@pytest.fixture()
def small_budget(monkeypatch):
    """Half a second of retries: a busy store gives up quickly in tests."""
    monkeypatch.setenv(store.RETRY_ENV, "0.5")


def _uri(path) -> str:
    return f"sqlite:///{path}"


def _sqlite_file(path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.commit()
    con.close()


def test_backoff_is_bounded_by_the_budget():
    assert list(store.backoff_delays(0.0)) == []
    assert sum(store.backoff_delays(10.0)) == pytest.approx(10.0)
    assert list(store.backoff_delays(1.0)) == [0.25, 0.5, 0.25]


def test_budget_must_be_a_number(monkeypatch):
    monkeypatch.setenv(store.RETRY_ENV, "soon")
    with pytest.raises(store.StoreUnavailableError, match="PROPENSITY_STORE_RETRY_SECONDS"):
        store.retry_budget()


def test_store_locked_by_another_process_fails_within_the_budget(tmp_path, small_budget, caplog):
    db = tmp_path / "mlflow.db"
    _sqlite_file(db)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, sys
                con = sqlite3.connect({str(db)!r}, isolation_level=None)
                con.execute("BEGIN EXCLUSIVE")
                print("locked", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="models.store"):
            with pytest.raises(store.StoreUnavailableError) as err:
                tracking.open_store(_uri(db))
        assert time.perf_counter() - started < 3.0
    finally:
        holder.communicate("\n", timeout=30)
    message = str(err.value)
    assert _uri(db) in message and "locked by another process" in message
    assert "\n" not in message
    assert sum("retrying in" in r.getMessage() for r in caplog.records) >= 2


def test_store_busy_for_a_moment_is_retried_then_opened(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(store.RETRY_ENV, "10")
    db = tmp_path / "mlflow.db"
    _sqlite_file(db)
    locked = threading.Event()

    def hold():
        con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        con.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(0.6)
        con.execute("ROLLBACK")
        con.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(5)
    with caplog.at_level(logging.WARNING, logger="models.store"):
        assert store.check_sqlite_store(_uri(db)) is True
    thread.join()
    assert any("model store busy" in r.getMessage() for r in caplog.records)


def test_corrupt_database_file_is_refused(tmp_path, small_budget):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database, it is a text file that lost its way " * 40)
    with pytest.raises(store.StoreUnavailableError, match="cannot be read as a SQLite database"):
        tracking.open_store(_uri(db))


def test_directory_as_the_store_is_refused(tmp_path):
    (tmp_path / "mlflow.db").mkdir()
    with pytest.raises(store.StoreUnavailableError, match="is a directory"):
        tracking.open_store(_uri(tmp_path / "mlflow.db"))


def test_missing_folder_is_refused_and_no_store_is_created(tmp_path):
    uri = _uri(tmp_path / "typo" / "mlflow.db")
    with pytest.raises(store.StoreUnavailableError, match="does not exist"):
        tracking.open_store(uri)
    assert not (tmp_path / "typo").exists()


def test_a_reader_finds_no_model_instead_of_creating_a_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _uri(tmp_path / "mistyped.db"))
    with pytest.raises(tracking.ModelNotFoundError, match="does not exist"):
        tracking.load_model()
    assert list(tmp_path.iterdir()) == []


def test_waiting_for_the_store_lock_is_logged(tmp_path, caplog):
    uri = _uri(tmp_path / "mlflow.db")
    held = threading.Event()

    def other_job():
        with FileLock(str(tmp_path / "mlflow.db.lock")):
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=other_job)
    thread.start()
    held.wait(5)
    with caplog.at_level(logging.INFO, logger="models.store"):
        with store.tracking_lock(uri, timeout=10):
            pass
    thread.join()
    assert any("waiting for the model store lock" in r.getMessage() for r in caplog.records)


@pytest.fixture(scope="module")
def mlstore(tmp_path_factory):
    """One real MLflow SQLite store for the tests that need MLflow's tables (slow to create)."""
    root = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", _uri(root / "mlflow.db"))
    mp.chdir(root)
    tracking.client()
    yield root
    mp.undo()


def test_run_left_running_by_a_killed_job_is_marked_failed(mlstore, monkeypatch):
    mlc = tracking.client()
    exp = tracking.ensure_experiment("killed")
    dead = mlc.create_run(exp, tags={tracking.WRITER_TAG: tracking.WRITER_LOCKED}).info.run_id
    foreign = mlc.create_run(exp).info.run_id  # not written under the lock: left alone
    with tracking.tracking_lock():
        pass
    assert mlc.get_run(dead).info.status == "FAILED"
    assert mlc.get_run(foreign).info.status == "RUNNING"
    # The next process to open the store reaps too, before it writes anything.
    dead = mlc.create_run(exp, tags={tracking.WRITER_TAG: tracking.WRITER_LOCKED}).info.run_id
    monkeypatch.setattr(tracking, "_OPENED", set())
    tracking.open_store()
    assert mlc.get_run(dead).info.status == "FAILED"


def test_a_foreign_model_is_refused_clearly(mlstore):
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    exp = tracking.ensure_experiment("foreign")
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.sklearn.log_model(
            model, name="model", pip_requirements=["scikit-learn"], serialization_format="skops"
        )
    with pytest.raises(tracking.ForeignModelError, match="is not a repayment-propensity model"):
        tracking.load_model(f"runs:/{run.info.run_id}/model")
