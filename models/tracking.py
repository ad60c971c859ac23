"""MLflow tracking and registry: the store, its lock, experiments and the training run.

With :mod:`models.tracking_load` (reading models back) and
:mod:`models.tracking_runs` (recalibration, scoring and uplift runs), and
:mod:`models.registry` on top, the only modules of ``models`` that import
MLflow. Every public name of those two is still importable from here.

Where things go
---------------
* Tracking URI: the ``MLFLOW_TRACKING_URI`` environment variable, else
  ``sqlite:///mlflow.db`` in the working folder. Read at each call, never at
  import.
* Artifacts: for a SQLite store, under ``mlartifacts/`` beside the database
  file (set as the experiment's artifact location when the experiment is
  created); a tracking server decides for itself.
* Registered model ``repayment-propensity``: aliases ``challenger`` (set by
  every training run) and ``champion`` (moved only by :func:`promote`).

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
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from models.effects import TreatmentEffects, effects_metrics
from models.packaging import entry_script, stage_code
from models.propensity_model import PropensityModel
from models.provenance import git_commit, package_versions, pinned_requirements
from models.report import figure_pngs, qini_pngs, render_report
from models.report_sections import summary_lines
from models.result import KEY_COLUMNS, LABEL_COLUMNS, TrainingResult
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
from models.training import fingerprint

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


# ------------------------------------------------------------ training run


def log_training_run(
    result: TrainingResult,
    data_window: Mapping[str, Any] | None = None,
    experiment: str | None = DEFAULT_EXPERIMENT,
    *,
    model_name: str = MODEL_NAME,
    register: bool = True,
    run_name: str | None = None,
    training_set: pd.DataFrame | None = None,
) -> tuple[str, str | None]:
    """Log a training run to MLflow and register its model as the challenger.

    Logs: the config (params and YAML), the spec, the data window and a
    fingerprint of each split (``mlflow.data``), row counts and label rates,
    per head and split AUC, Gini, KS, Brier, log loss and ECE, the
    baselines' figures, decile tables, PSI, importance and SHAP tables, every
    plot, the HTML report (``report/model_report.html``) and the pyfunc model
    with its signature and input example.

    Parameters
    ----------
    result : TrainingResult
    data_window : mapping, optional
        Extra facts recorded as tags (merged over ``result.data_window``).
    experiment : str, optional
        Experiment name (created with the artifact root when new); None
        means ``repayment-propensity``.
    model_name : str
        Registered model name.
    register : bool
        Register the model and set alias ``challenger``.
    run_name : str, optional
    training_set : DataFrame, optional
        The whole training set as built (all its columns); logged as one
        more ``mlflow.data`` input (context ``training_set``) with its
        fingerprint.

    Returns
    -------
    run_id : str
    version : str or None
        The registered model version (None when ``register`` is False).
    """
    uri = tracking_uri()
    started = time.perf_counter()
    window = {**result.data_window, **{k: str(v) for k, v in (data_window or {}).items()}}
    as_of = window.get("as_of") or window.get("last_as_of", "")
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment or DEFAULT_EXPERIMENT, uri)
        name = run_name or f"train {as_of}".strip()
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=name, tags={WRITER_TAG: WRITER_LOCKED}
        ) as run:
            run_id = run.info.run_id
            _log_run_contents(result, window)
            if training_set is not None:
                _log_dataset(training_set, "training_set", "training_set")
            version = _log_model(result, model_name if register else None)
            _log_effects(result.effects)
            result.identity = _identity(result, model_name, version, run_id)
            result.report_html = render_report(result)
            mlflow.log_text(result.report_html, "report/model_report.html")
            summary = " ".join(summary_lines(result))
            mlflow.set_tag(NOTE_TAG, summary)
        if register and version is not None:
            _register(result, model_name, version, run_id, window, summary)
    log.info(
        "logged run %s (model version %s) in %.1fs", run_id, version, time.perf_counter() - started
    )
    return run_id, version


def _identity(
    result: TrainingResult, model_name: str, version: str | None, run_id: str
) -> dict[str, Any]:
    """Return the identity block of the report: name, version, run, commit, packages."""
    return {
        "model_name": model_name,
        "model_version": version,
        "run_id": run_id,
        "git_commit": git_commit(),
        "package_versions": package_versions(),
    }


def _register(
    result: TrainingResult,
    model_name: str,
    version: str,
    run_id: str,
    window: Mapping[str, Any],
    summary: str,
) -> None:
    """Alias the new version challenger; tag it and describe it (and the registered model)."""
    mlc = client()
    with_retry(mlc.set_registered_model_alias, model_name, CHALLENGER, version)
    tags = {
        "run_id": run_id,
        "feature_code_version": result.spec.code_version,
        "training_fingerprint": result.fingerprint,
        "data_window": json.dumps(window),
        "gate_vs_baselines": "pass" if result.gate.accepted else "fail",
        "git_commit": result.identity.get("git_commit", "unknown"),
        "trained_at": result.trained_at,
        "excluded_protected": ",".join(result.excluded) or "none",
        UPLIFT_TAG: _uplift_tag(result.effects),
    }
    for head in result.metrics:
        for metric in ("auc", "ece"):
            tags[f"{head}_test_{metric}"] = f"{result.metrics[head]['test'][metric]:.6f}"
    for key, value in tags.items():
        with_retry(mlc.set_model_version_tag, model_name, version, key, value)
    with_retry(mlc.update_model_version, model_name, version, description=summary)
    registered = with_retry(mlc.get_registered_model, model_name)
    if not registered.description:
        with_retry(
            mlc.update_registered_model,
            model_name,
            description="Repayment propensity: calibrated willingness and ability heads scoring "
            "overdue accounts nightly. Alias 'challenger' = newest trained version, 'champion' "
            "= the version the nightly job scores with, moved only by an approved promotion "
            "(propensity promote --approver NAME --note TEXT). See docs/risk-review.md.",
        )


def _log_run_contents(result: TrainingResult, window: Mapping[str, Any]) -> None:
    cfg = result.config
    mlflow.log_params({k: param_text(v) for k, v in cfg.flat().items()})
    mlflow.log_params(
        {
            "spec.n_features": len(result.spec.columns),
            "spec.code_version": result.spec.code_version,
            "spec.categorical": ",".join(result.spec.categorical),
            **{
                f"best_iteration.{h}": n for h, n in result.model.metadata["best_iteration"].items()
            },
        }
    )
    mlflow.set_tags(
        {
            **{f"data.{k}": str(v) for k, v in window.items()},
            "data.fingerprint": result.fingerprint,
            "feature_code_version": result.spec.code_version,
        }
    )
    mlflow.log_text(cfg.to_yaml(), "config.yaml")
    mlflow.log_dict(result.spec.to_dict(), "spec.json")
    mlflow.log_dict(window, "data_window.json")

    columns = [*KEY_COLUMNS, *result.spec.columns, *LABEL_COLUMNS]
    for split_name, frame in result.split.frames().items():
        _log_dataset(frame[columns], f"training_set_{split_name}", split_name)

    mlflow.log_metrics(result.flat_metrics())
    mlflow.log_metrics({f"seconds_{k}": v for k, v in result.timings.items()})

    log_frame(result.split_summary, "tables/splits")
    for name, table in result.deciles.items():
        log_frame(table, f"tables/deciles_{name}")
    log_frame(result.psi, "tables/psi")
    for name, table in result.calibration_by_month.items():
        log_frame(table, f"tables/calibration_by_month_{name}")
    for head in result.importance:
        log_frame(result.importance[head], f"tables/importance_{head}")
        log_frame(result.shap_summary[head], f"tables/shap_summary_{head}")
    baselines = pd.DataFrame(
        [
            {"head": head, "model": name, "split": split, **figs}
            for head, models in result.baseline_metrics.items()
            for name, splits in models.items()
            for split, figs in splits.items()
        ]
        + [
            {"head": head, "model": "lightgbm", "split": split, **figs}
            for head, splits in result.metrics.items()
            for split, figs in splits.items()
        ]
    )
    log_frame(baselines, "tables/model_vs_baselines")
    gate = pd.DataFrame([c.__dict__ for c in result.gate.checks])
    log_frame(gate, "tables/gate_vs_baselines")
    for name, table in result.review.items():
        log_frame(table, f"tables/review_{name}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, png in figure_pngs(result).items():
            (Path(tmp) / f"{name}.png").write_bytes(png)
        mlflow.log_artifacts(tmp, "plots")


def _log_dataset(frame: pd.DataFrame, name: str, context: str) -> None:
    """Log a frame's schema, size and fingerprint as an ``mlflow.data`` input."""
    portable = frame.copy()
    for col in portable.columns:
        if isinstance(portable[col].dtype, pd.CategoricalDtype):
            portable[col] = portable[col].astype(object)
    with warnings.catch_warnings():
        # Integer labels have no missing values: MLflow's hint about them does not apply.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        dataset = mlflow.data.from_pandas(
            portable,
            targets="paid_any" if "paid_any" in portable.columns else None,
            name=name,
            digest=fingerprint(frame)[:16],
        )
        mlflow.log_input(dataset, context=context)


def param_text(value: Any) -> str:
    """Return a config value as an MLflow param: a list or tuple as comma-separated text."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def log_frame(frame: pd.DataFrame, stem: str) -> None:
    """Log a table to the active run twice: ``<stem>.json`` (MLflow's table view) and ``.csv``."""
    mlflow.log_table(frame, f"{stem}.json")
    mlflow.log_text(frame.to_csv(index=False), f"{stem}.csv")


def _log_model(result: TrainingResult, registered_name: str | None) -> str | None:
    """Log the training result's model (see :func:`log_pyfunc`)."""
    return log_pyfunc(result.model, result.split.test.head(5), registered_name)


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


def _uplift_tag(effects: TreatmentEffects | None) -> str:
    """Return the ``uplift_model`` tag: the model's artifact path, or ``none: <why>``."""
    if effects is None or effects.model is None:
        why = effects.reason if effects is not None else "no randomised data given"
        return f"none: {why}"[:5000]
    return UPLIFT_ARTIFACT


def _log_effects(effects: TreatmentEffects | None) -> None:
    """Log a training run's treatment-effect model under ``uplift/`` (and tag the run)."""
    mlflow.set_tag(UPLIFT_TAG, _uplift_tag(effects))
    if effects is None or effects.model is None:
        return
    mlflow.log_text(json.dumps(effects.model.to_dict()), UPLIFT_ARTIFACT)
    log_frame(effects.table, "uplift/qini")
    curves = pd.concat([c.assign(arm=a) for a, c in effects.curves.items()], ignore_index=True)
    log_frame(curves, "uplift/qini_curves")
    mlflow.log_metrics(effects_metrics(effects))
    mlflow.log_params({"uplift.arms": ",".join(effects.arms), "uplift.source": effects.source})
    with tempfile.TemporaryDirectory() as tmp:  # the report's own renderings
        for arm, png in qini_pngs(effects).items():
            (Path(tmp) / f"qini_{arm}.png").write_bytes(png)
        mlflow.log_artifacts(tmp, "uplift")


#: Names that live in :mod:`models.tracking_load` and :mod:`models.tracking_runs`.
_MOVED = {
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
