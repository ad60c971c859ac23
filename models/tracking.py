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

from models.config import TrainingConfig, load_config
from models.gate import PromotionDecision, evaluate_gate
from models.propensity_model import PropensityModel
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
#: PSI above which a scoring run warns and is tagged ``drift_alert=true``.
PSI_ALERT = 0.25
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


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Return the id of experiment ``name``, creating it with the artifact root if needed."""
    uri = uri or tracking_uri()
    mlc = client(uri)
    existing = with_retry(mlc.get_experiment_by_name, name)
    if existing is not None:
        return existing.experiment_id
    return with_retry(mlc.create_experiment, name, artifact_location=artifact_location(uri))


# ---------------------------------------------------------------- the model


class PropensityPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of :class:`PropensityModel`.

    Its artifact ``model_dir`` is the folder written by
    :meth:`PropensityModel.save` (LightGBM text boosters, JSON calibrators
    and spec); ``load_context`` reads it back, no pickle of the boosters.
    """

    def load_context(self, context: Any) -> None:
        """Load the boosters, calibrators and spec from the model's artifacts."""
        self.model = PropensityModel.load(context.artifacts["model_dir"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """Return ``p_willingness``, ``p_ability`` and the reason codes of each row."""
        return self.model.predict(pd.DataFrame(model_input))


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in (
        "lightgbm",
        "pandas",
        "numpy",
        "scikit-learn",
        "scipy",
        "pyyaml",
        "pydantic",
        "mlflow",
    ):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            out.append(dist)
    return out


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
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment or DEFAULT_EXPERIMENT, uri)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, tags={WRITER_TAG: WRITER_LOCKED}
        ) as run:
            run_id = run.info.run_id
            _log_run_contents(result, window)
            if training_set is not None:
                _log_dataset(training_set, "training_set", "training_set")
            version = _log_model(result, model_name if register else None)
        if register and version is not None:
            mlc = client(uri)
            with_retry(mlc.set_registered_model_alias, model_name, CHALLENGER, version)
            tags = {
                "run_id": run_id,
                "feature_code_version": result.spec.code_version,
                "training_fingerprint": result.fingerprint,
                "data_window": json.dumps(window),
                "gate_vs_baselines": "pass" if result.gate.accepted else "fail",
            }
            for head in result.metrics:
                for metric in ("auc", "ece"):
                    tags[f"{head}_test_{metric}"] = f"{result.metrics[head]['test'][metric]:.6f}"
            for key, value in tags.items():
                with_retry(mlc.set_model_version_tag, model_name, version, key, value)
    log.info(
        "logged run %s (model version %s) in %.1fs", run_id, version, time.perf_counter() - started
    )
    return run_id, version


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
    for name, fig in result.figures.items():
        mlflow.log_figure(fig, f"plots/{name}.png")
    mlflow.log_text(result.report_html, "report/model_report.html")


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
    model = result.model
    example_rows = result.split.test.head(5)
    example = model.signature_frame(example_rows)
    signature = infer_signature(example, model.predict(example))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / "propensity_model")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=PropensityPyfunc(),
            artifacts={"model_dir": str(model_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=registered_name,
        )
    if registered_name is None:
        return None
    return str(info.registered_model_version)


# ----------------------------------------------------------------- registry


def load_model(uri: str = f"models:/{MODEL_NAME}@{CHAMPION}") -> PropensityModel:
    """Load a registered or logged model as a :class:`PropensityModel`.

    Parameters
    ----------
    uri : str
        Any MLflow model URI: ``models:/repayment-propensity@champion``,
        ``models:/repayment-propensity/3``, ``runs:/<run_id>/model``...

    Returns
    -------
    PropensityModel
        With ``version`` set to the registered version (the URI itself for
        an unregistered model).

    Raises
    ------
    ModelNotFoundError
        When no model, alias, version or run answers to ``uri``
        (:class:`ForeignModelError` when the model there is not this project's).
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
    _check_project_model(uri)
    try:
        model = getattr(load_pyfunc(uri).unwrap_python_model(), "model", None)
    except (ModelNotFoundError, StoreUnavailableError):
        raise
    except Exception as exc:
        raise ForeignModelError(
            f"the model at {uri} cannot be loaded as a {MODEL_NAME} model: {exc}"
        ) from None
    if not isinstance(model, PropensityModel):
        raise ForeignModelError(f"the model at {uri} is not a {MODEL_NAME} model")
    model.version = version
    return model


def _check_project_model(uri: str) -> None:
    """Refuse, before loading it, an MLflow model that is not one of this project's."""
    client()
    try:
        info = with_retry(mlflow.models.get_model_info, uri)
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            raise ModelNotFoundError(f"no model at {uri}: {exc.message}") from None
        raise
    conf = info.flavors.get("python_function") or {}
    if conf.get("loader_module") != "mlflow.pyfunc.model" or "model_dir" not in (
        conf.get("artifacts") or {}
    ):
        raise ForeignModelError(
            f"the model at {uri} is not a {MODEL_NAME} model (its flavors: "
            f"{', '.join(sorted(info.flavors)) or 'none'})"
        )


def load_pyfunc(uri: str = f"models:/{MODEL_NAME}@{CHAMPION}") -> Any:
    """Load a model as a generic MLflow pyfunc (signature-enforced ``predict``).

    Raises
    ------
    ModelNotFoundError
        When no model, alias, version or run answers to ``uri``.
    """
    client()
    try:
        return with_retry(mlflow.pyfunc.load_model, uri)
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            raise ModelNotFoundError(f"no model at {uri}: {exc.message}") from None
        raise


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


def promote(
    version: str | int | None = None,
    *,
    eval_frame: pd.DataFrame,
    tolerance: float | None = None,
    max_ece: float | None = None,
    threshold: float | None = None,
    model_name: str = MODEL_NAME,
    config: TrainingConfig | None = None,
) -> PromotionDecision:
    """Gate a challenger against the champion and move alias ``champion`` if it passes.

    Both models are scored on ``eval_frame`` (the most recent out-of-time
    months with labels, built by the caller with the current feature code).
    The decision and its figures are recorded as ``promotion.*`` tags on the
    challenger's version, whether accepted or refused.

    Parameters
    ----------
    version : str or int, optional
        Version to promote (default: the one aliased ``challenger``).
    eval_frame : DataFrame
        Features plus ``paid_any`` and ``coverage``.
    tolerance, max_ece, threshold : float, optional
        Gate settings; default from the config's ``gate`` and ``labels``.
    model_name : str
    config : TrainingConfig, optional
        Defaults to ``models/default_config.yaml``.

    Returns
    -------
    PromotionDecision
        ``accepted`` tells whether the alias moved; ``summary()`` prints the figures.
    """
    cfg = config or load_config()
    tolerance = cfg.gate.tolerance if tolerance is None else tolerance
    max_ece = cfg.gate.max_ece if max_ece is None else max_ece
    threshold = cfg.labels.full_coverage_threshold if threshold is None else threshold
    uri = tracking_uri()
    challenger_version = (
        str(version) if version is not None else alias_version(CHALLENGER, model_name)
    )
    if challenger_version is None:
        raise ModelNotFoundError(
            f"model {model_name!r} has no {CHALLENGER!r} alias: train a model first"
        )
    champion_version = alias_version(CHAMPION, model_name)
    if champion_version == challenger_version:
        return PromotionDecision(
            accepted=False,
            challenger_version=challenger_version,
            champion_version=champion_version,
            figures={},
            note=f"version {challenger_version} is already the champion: nothing to do",
        )
    challenger = load_model(f"models:/{model_name}/{challenger_version}")
    champion = load_model(f"models:/{model_name}/{champion_version}") if champion_version else None
    decision = evaluate_gate(
        challenger,
        champion,
        eval_frame,
        tolerance=tolerance,
        max_ece=max_ece,
        threshold=threshold,
        challenger_version=challenger_version,
        champion_version=champion_version,
    )
    with tracking_lock(uri):
        mlc = client(uri)
        if decision.accepted:
            with_retry(mlc.set_registered_model_alias, model_name, CHAMPION, challenger_version)
        tags = {
            **decision.tags(),
            "promotion.tolerance": str(tolerance),
            "promotion.max_ece": str(max_ece),
            "promotion.decided_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        }
        for key, value in tags.items():
            with_retry(mlc.set_model_version_tag, model_name, challenger_version, key, value)
    log.info(
        "promotion of v%s: %s", challenger_version, "accepted" if decision.accepted else "refused"
    )
    return decision


# ------------------------------------------------------------- scoring run


def log_scoring_run(
    scores: pd.DataFrame,
    features: pd.DataFrame,
    model: PropensityModel,
    manifest: Mapping[str, Any] | None = None,
    experiment: str | None = SCORING_EXPERIMENT,
) -> str:
    """Log a nightly scoring run: counts per tier, score distribution and drift.

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
    alerts = drift[drift["psi"] > PSI_ALERT] if len(drift) else drift
    if len(alerts):
        log.warning(
            "drift: PSI above %.2f against the training reference for %s",
            PSI_ALERT,
            ", ".join(f"{r.variable} ({r.psi:.3f})" for r in alerts.itertuples(index=False)),
        )
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment or SCORING_EXPERIMENT, uri)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"score {as_of}",
            tags={WRITER_TAG: WRITER_LOCKED},
        ) as run:
            mlflow.set_tags(
                {
                    "drift_alert": "true" if len(alerts) else "false",
                    "drift_variables": ",".join(alerts["variable"].astype(str))[:5000]
                    if len(alerts)
                    else "",
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


def download_report(version: str | int | None, dst: Path, model_name: str = MODEL_NAME) -> Path:
    """Copy the HTML model report of a registered version into folder ``dst``; return its path."""
    info = version_info(version, model_name)
    dst.mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(
        run_id=info["run_id"], artifact_path="report/model_report.html", dst_path=str(dst)
    )
    return Path(local)
