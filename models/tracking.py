"""MLflow tracking and registry: the only module of ``models`` that imports MLflow.

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
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from models.effects import TreatmentEffects, effects_metrics, qini_figure
from models.gate import PromotionDecision
from models.monitoring import alarm_role, drift_alarms
from models.packaging import entry_script, saved_model_dir, stage_code, unsafe_files
from models.propensity_model import PropensityModel
from models.provenance import git_commit, package_versions, pinned_requirements
from models.recalibrate import Recalibration
from models.report import figure_pngs, render_report
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
from models.uplift import UpliftModel

log = logging.getLogger(__name__)

MODEL_NAME = "repayment-propensity"
DEFAULT_EXPERIMENT = "repayment-propensity"
CHALLENGER = "challenger"
CHAMPION = "champion"

SCORING_EXPERIMENT = "repayment-propensity-scoring"
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
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


# ---------------------------------------------------------------- the model


class UnsafeModelError(ForeignModelError):
    """The model folder holds a file that would run code when read (a pickle) or is foreign."""


def _refuse_unsafe(folder: Path, uri: str) -> None:
    """Refuse a downloaded model folder before anything in it is read or executed."""
    bad = unsafe_files(folder)
    if bad:
        names = ", ".join(str(p.relative_to(folder)) for p in bad[:5])
        raise UnsafeModelError(
            f"refusing the model at {uri}: it contains {len(bad)} pickle-like file(s) ({names}); "
            "models of this project are text and JSON only"
        )


def _saved_model_dir(folder: Path, uri: str) -> Path:
    """Return the saved model inside a model folder; ForeignModelError when it is not ours."""
    try:
        return saved_model_dir(folder)
    except ValueError as exc:
        raise ForeignModelError(f"the model at {uri} is not a {MODEL_NAME} model: {exc}") from None


def _download_model(uri: str, dst: Path) -> Path:
    """Download a model's folder (no loading), mapping a missing model to ModelNotFoundError."""
    local = Path(uri)
    if local.is_dir():
        return local
    if ":/" not in uri:
        raise ModelNotFoundError(f"no model at {uri}: no such folder")
    client()
    try:
        return Path(
            with_retry(mlflow.artifacts.download_artifacts, artifact_uri=uri, dst_path=str(dst))
        )
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            raise ModelNotFoundError(f"no model at {uri}: {exc.message}") from None
        raise
    except OSError as exc:
        raise ModelNotFoundError(f"no model at {uri}: {exc}") from None


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
    mlflow.log_params({k: _param(v) for k, v in cfg.flat().items()})
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

    _log_frame(result.split_summary, "tables/splits")
    for name, table in result.deciles.items():
        _log_frame(table, f"tables/deciles_{name}")
    _log_frame(result.psi, "tables/psi")
    for name, table in result.calibration_by_month.items():
        _log_frame(table, f"tables/calibration_by_month_{name}")
    for head in result.importance:
        _log_frame(result.importance[head], f"tables/importance_{head}")
        _log_frame(result.shap_summary[head], f"tables/shap_summary_{head}")
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
    _log_frame(baselines, "tables/model_vs_baselines")
    gate = pd.DataFrame([c.__dict__ for c in result.gate.checks])
    _log_frame(gate, "tables/gate_vs_baselines")
    for name, table in result.review.items():
        _log_frame(table, f"tables/review_{name}")
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


def _param(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _log_frame(frame: pd.DataFrame, stem: str) -> None:
    mlflow.log_table(frame, f"{stem}.json")
    mlflow.log_text(frame.to_csv(index=False), f"{stem}.csv")


def _log_model(result: TrainingResult, registered_name: str | None) -> str | None:
    """Log the training result's model (see :func:`_log_pyfunc`)."""
    return _log_pyfunc(result.model, result.split.test.head(5), registered_name)


def _log_pyfunc(
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


# ----------------------------------------------------------------- registry


def load_model(uri: str = f"models:/{MODEL_NAME}@{CHAMPION}") -> PropensityModel:
    """Load a registered or logged model as a :class:`PropensityModel`, reading text and JSON only.

    The model folder is downloaded, refused if it holds a pickle-like file
    or is not this project's models-from-code model, and its saved model
    (LightGBM text boosters, JSON calibrators and spec) is read with the
    installed project code: nothing shipped in the folder is executed.

    Parameters
    ----------
    uri : str
        Any MLflow model URI: ``models:/repayment-propensity@champion``,
        ``models:/repayment-propensity/3``, ``runs:/<run_id>/model``, or a
        local model folder.

    Returns
    -------
    PropensityModel
        With ``version`` set to the registered version (the URI itself for
        an unregistered model).

    Raises
    ------
    ModelNotFoundError
        When no model, alias, version or run answers to ``uri``
        (:class:`ForeignModelError` when the model there is not this project's,
        :class:`UnsafeModelError` when its folder holds a pickle-like file).
    StoreUnavailableError
        When the store cannot be opened.
    """
    if uri.startswith(("models:/", "runs:/")):
        try:
            open_store(must_exist=True)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"no model at {uri}: {exc}") from None
    version = resolve_version(uri)
    if uri.startswith("models:/") and "@" in uri:
        # Load the version the alias pointed to when resolved, so a promotion
        # landing in between cannot stamp scores with the wrong version.
        uri = f"models:/{uri[len('models:/') :].split('@', 1)[0]}/{version}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = _download_model(uri, Path(tmp))
        _refuse_unsafe(folder, uri)
        try:
            model = PropensityModel.load(_saved_model_dir(folder, uri))
        except (ValueError, FileNotFoundError, KeyError) as exc:
            raise ForeignModelError(
                f"the model at {uri} cannot be loaded as a {MODEL_NAME} model: {exc}"
            ) from None
    model.version = version
    return model


def load_pyfunc(uri: str = f"models:/{MODEL_NAME}@{CHAMPION}") -> Any:
    """Load a model as a generic MLflow pyfunc (signature-enforced ``predict``).

    The folder is checked like :func:`load_model` before MLflow reads it;
    MLflow then runs the model's entry script with the project code shipped
    in the model (``code/``).

    Raises
    ------
    ModelNotFoundError
        When no model, alias, version or run answers to ``uri``.
    UnsafeModelError
        When the folder holds a pickle-like file or is not a propensity model.
    """
    dst = Path(tempfile.mkdtemp(prefix="propensity_model_"))
    folder = _download_model(uri, dst)
    _refuse_unsafe(folder, uri)
    _saved_model_dir(folder, uri)
    return with_retry(mlflow.pyfunc.load_model, str(folder))


def alias_version(alias: str, model_name: str = MODEL_NAME) -> str | None:
    """Return the version an alias points to, or None when the alias (or model) is unset."""
    mlc = client()
    try:
        return str(with_retry(mlc.get_model_version_by_alias, model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            return None
        raise


def resolve_version(uri: str) -> str:
    """Return a model URI's registered version (``models:/name@alias`` or ``models:/name/V``).

    Other URIs are returned unchanged, so the result can always be recorded
    as the ``model_version`` of a score.
    """
    prefix = "models:/"
    if not uri.startswith(prefix):
        return uri
    rest = uri[len(prefix) :]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        version = alias_version(alias, name)
        if version is None:
            raise ModelNotFoundError(
                f"model {name!r} has no alias {alias!r}: train or promote first"
            )
        return version
    if "/" in rest:
        return rest.rsplit("/", 1)[1]
    return uri


# ------------------------------------------------------------ recalibration


def log_recalibration(
    rec: Recalibration,
    decision: PromotionDecision,
    data_window: Mapping[str, Any],
    example_rows: pd.DataFrame,
    experiment: str | None = DEFAULT_EXPERIMENT,
    model_name: str = MODEL_NAME,
) -> tuple[str, str]:
    """Log a recalibration and register its model as a new version aliased ``challenger``.

    The run (in the training experiment) holds the level shifts, calibration
    in the large before and after, the gate's checks and the model; the new
    version's tags name the version it was recalibrated from
    (``recalibrated_from``) and the month (``recalibration_month``).

    Returns
    -------
    run_id, version : str
    """
    uri = tracking_uri()
    source = str(rec.model.metadata.get("recalibrated_from"))
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment or DEFAULT_EXPERIMENT, uri)
        run_name = f"recalibrate v{source} on {rec.month}"
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            run_id = run.info.run_id
            mlflow.set_tags(
                {
                    "step": "recalibration",
                    "recalibrated_from": source,
                    "recalibration_month": rec.month,
                    "feature_code_version": rec.model.spec.code_version,
                    **{f"data.{k}": str(v) for k, v in data_window.items()},
                }
            )
            metrics = {f"shift_{k}": v for k, v in rec.shifts.items()}
            for stage, table in (("before", rec.before), ("after", rec.after)):
                for row in table.itertuples(index=False):
                    metrics[f"{row.head}_over_prediction_{stage}"] = float(row.over_prediction)
            metrics.update({k: v for k, v in decision.figures.items() if not np.isnan(v)})
            mlflow.log_metrics(metrics)
            _log_frame(
                pd.concat([rec.before.assign(model="before"), rec.after.assign(model="after")]),
                "tables/calibration_in_the_large",
            )
            _log_frame(pd.DataFrame([c.__dict__ for c in decision.checks]), "tables/gate")
            mlflow.log_text(rec.summary() + "\n\n" + decision.summary(), "recalibration.txt")
            version = _log_pyfunc(rec.model, example_rows, model_name)
        mlc = client(uri)
        with_retry(mlc.set_registered_model_alias, model_name, CHALLENGER, version)
        tags = {
            "run_id": run_id,
            "recalibrated_from": source,
            "recalibration_month": rec.month,
            "feature_code_version": rec.model.spec.code_version,
            "data_window": json.dumps(dict(data_window)),
            "recalibration.gate": "pass" if decision.accepted else "fail",
        }
        for key, value in tags.items():
            with_retry(mlc.set_model_version_tag, model_name, version, key, value)
    log.info("logged recalibration run %s (model version %s)", run_id, version)
    return run_id, str(version)


# ------------------------------------------------------------- scoring run


def log_scoring_run(
    scores: pd.DataFrame,
    features: pd.DataFrame,
    model: PropensityModel,
    manifest: Mapping[str, Any] | None = None,
    experiment: str | None = SCORING_EXPERIMENT,
    citl: pd.DataFrame | None = None,
) -> str:
    """Log a nightly scoring run: counts per tier, score distribution and drift.

    The run is tagged ``drift_alert=true`` when the scores drift or the
    latest labelled month is miscalibrated (:func:`models.monitoring.drift_alarms`);
    ``drift_reasons`` says why. Feature PSIs are logged, not alarmed on.

    Parameters
    ----------
    scores : DataFrame
        The published ``scores`` (contract columns: ``risk_tier``,
        ``contact_intensity``, ``offer``, ``p_willingness``, ``p_ability``,
        ``expected_recovery``, ``suppressed_reason``...; absent ones are skipped).
    features : DataFrame
        The features the model scored (for the PSI of each feature against
        the model's training reference).
    model : PropensityModel
        The model that scored (its ``version`` and ``reference``).
    manifest : mapping, optional
        The run's manifest, logged as ``manifest.json``.
    experiment : str
        Experiment of the scoring runs.
    citl : DataFrame, optional
        Calibration in the large of each head on the latest labelled month
        (:func:`models.monitoring.calibration_in_the_large`).

    Returns
    -------
    str
        The MLflow run id.
    """
    uri = tracking_uri()
    manifest = dict(manifest or {})
    as_of = manifest.get("as_of") or manifest.get("as_of_date")
    if as_of is None and "as_of_date" in scores.columns and len(scores):
        as_of = str(pd.Timestamp(scores["as_of_date"].max()).date())
    # Only the variables with a training reference are compared: no copy of the whole table.
    drift_frame = features[[c for c in model.reference if c in features.columns]].reset_index(
        drop=True
    )
    for col in ("p_willingness", "p_ability", "expected_share"):
        if col in scores.columns and len(scores) == len(drift_frame):
            drift_frame[col] = scores[col].to_numpy()
    drift = model.drift(drift_frame)
    metrics: dict[str, float] = {"scored_accounts": float(len(scores))}
    for col in ("risk_tier", "contact_intensity", "offer", "suppressed_reason"):
        if col in scores.columns:
            for value, count in scores[col].fillna("none").value_counts().sort_index().items():
                metrics[f"count_{col}_{_metric_key(value)}"] = float(count)
    for col in ("p_willingness", "p_ability", "expected_share", "expected_recovery"):
        if col in scores.columns and len(scores):
            values = scores[col].to_numpy(dtype="float64")
            metrics[f"{col}_mean"] = float(np.nanmean(values))
            for q in (10, 50, 90):
                metrics[f"{col}_p{q}"] = float(np.nanpercentile(values, q))
    if "expected_recovery" in scores.columns:
        metrics["expected_recovery_sum"] = float(scores["expected_recovery"].sum())
    if len(drift):
        metrics["psi_max"] = float(drift["psi"].max())
        metrics["psi_moderate_count"] = float((drift["flag"] == "moderate").sum())
        metrics["psi_major_count"] = float((drift["flag"] == "major").sum())
        for row in drift.itertuples(index=False):
            metrics[f"psi_{row.variable}"] = float(row.psi)
    if citl is not None:
        for row in citl.itertuples(index=False):
            metrics[f"citl_{row.head}_over_prediction"] = float(row.over_prediction)
            metrics[f"citl_{row.head}_rows"] = float(row.rows)
    drift["alarm"] = [alarm_role(v, model.spec.drift_exempt) for v in drift["variable"]]
    reasons = drift_alarms(drift, citl)
    if reasons:
        log.warning("drift alarm: %s", "; ".join(reasons))
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment or SCORING_EXPERIMENT, uri)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"score {as_of}",
            tags={WRITER_TAG: WRITER_LOCKED},
        ) as run:
            mlflow.set_tags(
                {
                    "drift_alert": "true" if reasons else "false",
                    "drift_reasons": "; ".join(reasons)[:5000],
                    "as_of": str(as_of),
                    "model_version": str(model.version),
                    "feature_code_version": model.spec.code_version,
                    **{
                        k: str(manifest[k])
                        for k in ("policy_version", "model_uri", "status")
                        if k in manifest
                    },
                }
            )
            mlflow.log_metrics(metrics)
            _log_frame(drift, "tables/drift")
            if citl is not None:
                _log_frame(citl, "tables/calibration_latest_month")
            if manifest:
                mlflow.log_dict(manifest, "manifest.json")
            if {"p_willingness", "p_ability"} <= set(scores.columns) and len(scores):
                mlflow.log_figure(_score_histograms(scores), "plots/score_distribution.png")
            run_id = run.info.run_id
    log.info("logged scoring run %s (%d accounts)", run_id, len(scores))
    return run_id


def _metric_key(value: Any) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in str(value))


def _score_histograms(scores: pd.DataFrame):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, col in zip(axes, ("p_willingness", "p_ability"), strict=True):
        ax.hist(scores[col].dropna(), bins=20, range=(0, 1), color="#4472c4")
        ax.set(title=col, xlabel="probability", ylabel="accounts")
    return fig


# ------------------------------------------------------------- review helpers


def version_info(version: str | int | None = None, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """Return a registered version's tags, aliases and run id (default: the challenger).

    Raises
    ------
    ModelNotFoundError
        When the version (or the challenger alias) does not exist.
    """
    if version is None:
        version = alias_version(CHALLENGER, model_name)
        if version is None:
            raise ModelNotFoundError(
                f"model {model_name!r} has no {CHALLENGER!r} alias: train a model first"
            )
    mlc = client()
    try:
        mv = with_retry(mlc.get_model_version, model_name, str(version))
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            raise ModelNotFoundError(f"model {model_name!r} has no version {version}") from None
        raise
    return {
        "version": str(mv.version),
        "run_id": mv.run_id,
        "aliases": list(mv.aliases or []),
        "tags": dict(mv.tags or {}),
    }


UPLIFT_EXPERIMENT = "repayment-propensity-uplift"
#: Artifact of the treatment-effect model in a run, and the run and version tag naming it.
UPLIFT_ARTIFACT = "uplift/uplift_model.json"
UPLIFT_TAG = "uplift_model"


def log_uplift_run(
    model: Any,
    evaluation: pd.DataFrame,
    curves: Mapping[str, pd.DataFrame],
    experiment: str | None = UPLIFT_EXPERIMENT,
    run_name: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Log a treatment-effect model and its Qini evaluation to MLflow; return the run id.

    Logs ``uplift/uplift_model.json`` (the arms, columns and each arm's
    booster text: :meth:`models.uplift.UpliftModel.to_dict`), the evaluation
    table (``uplift/qini``), a Qini-curve plot per arm and the metrics
    ``qini_<arm>``, ``observed_effect_<arm>`` and ``predicted_effect_<arm>``.

    Parameters
    ----------
    model : models.uplift.UpliftModel
    evaluation : pandas.DataFrame
        The table of :func:`models.uplift.evaluate_uplift`.
    curves : mapping of str to DataFrame
        Its Qini curves per arm.
    experiment : str, optional
        Experiment name (created when new).
    run_name : str, optional
    params : mapping, optional
        Extra parameters (data window, rows, seed).
    """
    uri = tracking_uri()
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment or UPLIFT_EXPERIMENT, uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params({"arms": ",".join(model.arms), "learner": "t_learner_lightgbm"})
            if params:
                mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_text(json.dumps(model.to_dict()), UPLIFT_ARTIFACT)
            _log_frame(evaluation, "uplift/qini")
            for row in evaluation.to_dict("records"):
                for key in ("qini_coefficient", "observed_effect", "predicted_effect"):
                    name = "qini" if key == "qini_coefficient" else key
                    mlflow.log_metric(f"{name}_{row['arm']}", float(row[key]))
            _log_qini_plots(curves, model.arms[0])
            return run.info.run_id


def _log_qini_plots(curves: Mapping[str, pd.DataFrame], baseline: str) -> None:
    """Log each arm's Qini curve as ``uplift/qini_<arm>.png`` in the active run."""
    for arm, curve in curves.items():
        mlflow.log_figure(qini_figure(curve, arm, baseline), f"uplift/qini_{arm}.png")


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
    _log_frame(effects.table, "uplift/qini")
    curves = pd.concat([c.assign(arm=a) for a, c in effects.curves.items()], ignore_index=True)
    _log_frame(curves, "uplift/qini_curves")
    mlflow.log_metrics(effects_metrics(effects))
    mlflow.log_params({"uplift.arms": ",".join(effects.arms), "uplift.source": effects.source})
    _log_qini_plots(effects.curves, effects.arms[0])


def load_uplift(
    version: str | int | None = None, model_name: str = MODEL_NAME
) -> UpliftModel | None:
    """Return the treatment-effect model logged with a registered version (default: champion).

    None when the version was trained without one (its ``uplift_model`` tag
    says why); the model is read from its JSON artifact, never a pickle.

    Raises
    ------
    ModelNotFoundError
        When the version (or the champion alias) does not exist.
    """
    if version is None:
        version = alias_version(CHAMPION, model_name)
        if version is None:
            raise ModelNotFoundError(f"model {model_name!r} has no {CHAMPION!r} alias")
    info = version_info(version, model_name)
    artifact = info["tags"].get(UPLIFT_TAG, "")
    if not artifact.startswith("uplift/"):
        return None
    text = with_retry(mlflow.artifacts.load_text, artifact_uri=f"runs:/{info['run_id']}/{artifact}")
    return UpliftModel.from_dict(json.loads(text))
