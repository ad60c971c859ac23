"""The training run: its parameters, metrics, tables, plots, report and model, and the registry.

:func:`log_training_run` logs a :class:`~models.result.TrainingResult` to
MLflow under the store's lock (:func:`models.tracking.tracking_lock`) and
registers its model as the challenger; it is importable from
:mod:`models.tracking` too.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from models.effects import TreatmentEffects, effects_metrics
from models.provenance import git_commit, package_versions
from models.report import figure_pngs, qini_pngs, render_report
from models.report_sections import summary_lines
from models.result import KEY_COLUMNS, LABEL_COLUMNS, TrainingResult
from models.tracking import (
    CHALLENGER,
    DEFAULT_EXPERIMENT,
    MODEL_NAME,
    NOTE_TAG,
    UPLIFT_ARTIFACT,
    UPLIFT_TAG,
    WRITER_LOCKED,
    WRITER_TAG,
    client,
    ensure_experiment,
    log_frame,
    log_pyfunc,
    param_text,
    tracking_lock,
    tracking_uri,
    with_retry,
)
from models.training import fingerprint

#: The training run's log line keeps the name operators read before the split.
log = logging.getLogger("models.tracking")


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


def _log_model(result: TrainingResult, registered_name: str | None) -> str | None:
    """Log the training result's model (see :func:`log_pyfunc`)."""
    return log_pyfunc(result.model, result.split.test.head(5), registered_name)


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
