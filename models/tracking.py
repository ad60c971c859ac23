"""MLflow tracking and registry: the store, its lock, experiments, and what runs log alike.

With :mod:`models.tracking_train` (the training run), :mod:`models.tracking_load`
(reading models back) and :mod:`models.tracking_runs` (recalibration, scoring
and uplift runs), and :mod:`models.registry` on top, the only modules of
``models`` that import MLflow. Every public name of those three is still
importable from here.

Where things go
---------------
* Tracking URI: the ``MLFLOW_TRACKING_URI`` environment variable, else
  ``sqlite:///mlflow.db`` in the working folder. Read at each call, never at
  import.
* Artifacts: for a SQLite store, under ``mlartifacts/`` beside the database
  file (set as the experiment's artifact location when the experiment is
  created); a tracking server decides for itself.
* Registered model ``repayment-propensity``: aliases ``challenger`` (set by
  every training run) and ``champion`` (moved only by :func:`models.registry.promote`).

Concurrency
-----------
SQLite allows one writer at a time. Every write here (a training run's
logging, a promotion) holds a file lock next to the database
(``mlflow.db.lock``), so a nightly scoring job and a notebook training at
once take turns instead of interleaving, and each registry call is retried
with back-off when SQLite still answers ``database is locked`` (see
:mod:`models.store` for the budget and the faults, raised as
:class:`~models.store.StoreUnavailableError`). Runs are written only under the
lock, so a run found RUNNING by the next holder was left by a killed job: it is
marked FAILED. Other jobs that write to the same store should use
:func:`tracking_lock` too. When
several machines or many concurrent writers share the registry, move to a
tracking server backed by PostgreSQL (``mlflow server
--backend-store-uri postgresql://...``) and point ``MLFLOW_TRACKING_URI`` at
it; nothing else changes.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from models.packaging import entry_script, stage_code
from models.propensity_model import PropensityModel
from models.provenance import pinned_requirements
from models.store import (  # noqa: F401 - DEFAULT_TRACKING_URI re-exported for callers
    DEFAULT_TRACKING_URI,
    LOCK_TIMEOUT_S,
    StoreUnavailableError,
    artifact_location,
    check_sqlite_store,
    sqlite_path,
    tracking_uri,
    with_retry,
)
from models.store import tracking_lock as _store_lock

log = logging.getLogger(__name__)

MODEL_NAME = "repayment-propensity"
DEFAULT_EXPERIMENT = "repayment-propensity"
CHALLENGER = "challenger"
CHAMPION = "champion"

SCORING_EXPERIMENT = "repayment-propensity-scoring"
#: Tag of every run written under :func:`tracking_lock` (so a RUNNING one was left by a killed job).
WRITER_TAG = "propensity.writer"
WRITER_LOCKED = "under-store-lock"


class ModelNotFoundError(LookupError):
    """No model at the given URI (no such registered model, alias, version or run)."""


class ForeignModelError(ModelNotFoundError):
    """The URI holds an MLflow model, but not one of this project's (exit 3 too)."""


# ------------------------------------------------------------ where and how


_OPENED: set[str] = set()


def open_store(uri: str | None = None, *, must_exist: bool = False, announce: bool = True) -> str:
    """Open the store once per process: check it, build MLflow's store, log the time taken.

    Parameters
    ----------
    uri : str, optional
        Tracking URI (default :func:`tracking_uri`).
    must_exist : bool
        For readers: a SQLite file that does not exist means no model
        (:class:`ModelNotFoundError`) instead of a new empty store.
    announce : bool
        Log "opening model store ..." (the command line says it before importing MLflow).

    Raises
    ------
    StoreUnavailableError
        Folder missing, not a database, busy past the retry budget, or MLflow refuses it.

    Runs left RUNNING by a killed job are marked FAILED here when no other job
    holds the store's lock (see :func:`tracking_lock`).
    """
    uri = uri or tracking_uri()
    if uri in _OPENED:
        return uri
    if announce:
        log.info("opening model store %s ...", uri)
    started = time.perf_counter()
    if not check_sqlite_store(uri) and must_exist:
        raise ModelNotFoundError(
            f"no model store at {sqlite_path(uri).resolve()} (the file does not exist)"
        )
    mlc = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        with_retry(mlc.search_experiments, max_results=1, store_uri=uri)
    except StoreUnavailableError:
        raise
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise StoreUnavailableError(f"model store {uri} unavailable: {cause}") from None
    _OPENED.add(uri)
    if sqlite_path(uri) is not None:
        try:  # at the next start, unless another job is writing now (it reaps then)
            with tracking_lock(uri, timeout=0):
                pass
        except (StoreUnavailableError, OSError):  # busy, or a store we may only read
            pass
    log.info("model store open in %.1fs", time.perf_counter() - started)
    return uri


def client(uri: str | None = None) -> MlflowClient:
    """Point MLflow at the tracking URI (now, not at import), open it once, return a client."""
    uri = open_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def tracking_lock(uri: str | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the store's write lock (see :func:`models.store.tracking_lock`), then reap killed runs."""
    uri = uri or tracking_uri()
    with _store_lock(uri, timeout):
        if sqlite_path(uri) is not None:
            mark_killed_runs_failed(uri)
        yield


def mark_killed_runs_failed(uri: str | None = None) -> list[str]:
    """Mark FAILED the runs left RUNNING by a killed job; return their ids.

    Only runs tagged as written under the store lock are touched: the caller
    holds that lock, so no live job is writing them.
    """
    mlc = client(uri)
    ids = [e.experiment_id for e in with_retry(mlc.search_experiments)]
    if not ids:
        return []
    runs = with_retry(
        mlc.search_runs,
        ids,
        filter_string=f"attributes.status = 'RUNNING' and tags.`{WRITER_TAG}` = '{WRITER_LOCKED}'",
    )
    for run in runs:
        rid = run.info.run_id
        with_retry(mlc.set_tag, rid, "propensity.marked_failed", "killed job, found at next start")
        with_retry(mlc.set_terminated, rid, "FAILED")
        log.warning(
            "run %s (%s) was left RUNNING by a killed job: marked FAILED", rid, run.info.run_name
        )
    return [r.info.run_id for r in runs]


#: Experiment tag that tells the MLflow UI the kind of experiment (machine learning, not GenAI).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: Experiment and run descriptions are the note tag the UI shows and edits.
NOTE_TAG = "mlflow.note.content"
EXPERIMENT_DESCRIPTIONS = {
    DEFAULT_EXPERIMENT: "Training runs of the repayment propensity model (willingness and "
    "ability heads). Each run registers a challenger version of 'repayment-propensity' and "
    "holds its model report under report/. See docs/risk-review.md.",
    SCORING_EXPERIMENT: "Nightly scoring runs: counts per tier and offer, score distributions "
    "and drift against the champion's training data. See docs/operations.md.",
    "replay": "Closed-loop replays on simulated portfolios (propensity replay, make replay): "
    "per-strategy totals, paired 95% CIs over the seeds against dpd_buckets and the fixed "
    "tiers, the capacity planned; comparison.html. See docs/simulator.md.",
}


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Return the id of experiment ``name``, creating it with the artifact root if needed.

    The experiment is marked as a machine-learning experiment (so the MLflow
    UI opens on its runs, not on a GenAI dashboard) and given a description.
    """
    uri = uri or tracking_uri()
    mlc = client(uri)
    existing = with_retry(mlc.get_experiment_by_name, name)
    tags = {
        EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
        NOTE_TAG: EXPERIMENT_DESCRIPTIONS.get(name, "Repayment propensity runs."),
    }
    if existing is None:
        return with_retry(
            mlc.create_experiment, name, artifact_location=artifact_location(uri), tags=tags
        )
    for key, value in tags.items():
        if key not in (existing.tags or {}):
            with_retry(mlc.set_experiment_tag, existing.experiment_id, key, value)
    return existing.experiment_id


# ------------------------------------------------------------ what runs log alike


def param_text(value: Any) -> str:
    """Return a config value as an MLflow param: a list or tuple as comma-separated text."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def log_frame(frame: pd.DataFrame, stem: str) -> None:
    """Log a table to the active run twice: ``<stem>.json`` (MLflow's table view) and ``.csv``."""
    mlflow.log_table(frame, f"{stem}.json")
    mlflow.log_text(frame.to_csv(index=False), f"{stem}.csv")


def log_pyfunc(
    model: PropensityModel, example_rows: pd.DataFrame, registered_name: str | None
) -> str | None:
    """Log the model from code: entry script, project code, text/JSON model folder; no pickle."""
    example = model.signature_frame(example_rows)
    signature = infer_signature(example, model.predict(example))
    # Models from code: MLflow stores the entry script's path and source, never an object.
    script_path = str(entry_script())
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / "propensity_model")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=script_path,
            artifacts={"model_dir": str(model_dir)},
            code_paths=stage_code(Path(tmp) / "code"),
            signature=signature,
            input_example=example,
            pip_requirements=pinned_requirements(),
            registered_model_name=registered_name,
        )
    if registered_name is None:
        return None
    return str(info.registered_model_version)


#: Artifact of the treatment-effect model in a run, and the run and version tag naming it.
UPLIFT_ARTIFACT = "uplift/uplift_model.json"
UPLIFT_TAG = "uplift_model"


#: Names that live in :mod:`models.tracking_train`, :mod:`models.tracking_load` and
#: :mod:`models.tracking_runs`.
_MOVED = {
    "models.tracking_train": ("log_training_run",),
    "models.tracking_load": (
        "UnsafeModelError", "alias_version", "load_model", "load_pyfunc", "load_uplift",
        "resolve_version", "version_info",
    ),
    "models.tracking_runs": (
        "UPLIFT_EXPERIMENT", "log_recalibration", "log_scoring_run", "log_uplift_run",
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """Resolve a name moved to a sibling module on first use (no import cycle at import)."""
    import importlib

    for module, names in _MOVED.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
