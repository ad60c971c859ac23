"""The runs besides training: recalibration, nightly scoring, a hand-fitted uplift model.

Split from :mod:`models.tracking` (the store, the lock and the training run);
importing these names from ``models.tracking`` still works.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models.effects import qini_figure
from models.gate import PromotionDecision
from models.monitoring import alarm_role, drift_alarms
from models.propensity_model import PropensityModel
from models.recalibrate import Recalibration
from models.tracking import (
    CHALLENGER,
    DEFAULT_EXPERIMENT,
    MODEL_NAME,
    SCORING_EXPERIMENT,
    UPLIFT_ARTIFACT,
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

log = logging.getLogger(__name__)

UPLIFT_EXPERIMENT = "repayment-propensity-uplift"


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
            log_frame(
                pd.concat([rec.before.assign(model="before"), rec.after.assign(model="after")]),
                "tables/calibration_in_the_large",
            )
            log_frame(pd.DataFrame([c.__dict__ for c in decision.checks]), "tables/gate")
            mlflow.log_text(rec.summary() + "\n\n" + decision.summary(), "recalibration.txt")
            version = log_pyfunc(rec.model, example_rows, model_name)
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
            log_frame(drift, "tables/drift")
            if citl is not None:
                log_frame(citl, "tables/calibration_latest_month")
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
                mlflow.log_params({k: param_text(v) for k, v in params.items()})
            mlflow.log_text(json.dumps(model.to_dict()), UPLIFT_ARTIFACT)
            log_frame(evaluation, "uplift/qini")
            for row in evaluation.to_dict("records"):
                for key in ("qini_coefficient", "observed_effect", "predicted_effect"):
                    name = "qini" if key == "qini_coefficient" else key
                    mlflow.log_metric(f"{name}_{row['arm']}", float(row[key]))
            for arm, curve in curves.items():
                figure = qini_figure(curve, arm, model.arms[0])
                mlflow.log_figure(figure, f"uplift/qini_{arm}.png")
            return run.info.run_id
