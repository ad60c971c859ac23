"""Step 2 of training: evaluate a fitted model out of time (no MLflow here).

:func:`evaluate` scores every split of a :class:`models.result.FitResult`
and returns the evaluation result (:class:`models.result.TrainingResult`):
metrics per head and split, the baselines' figures, decile tables, PSI,
importance, SHAP summary, figures, the no-champion gate and the validation
tables of :mod:`models.review` (segments, bootstrap intervals, months,
characteristics, policy bands, missing rates, fair lending).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models import evaluation as ev
from models import review as rv
from models.config import TrainingConfig
from models.gate import evaluate_gate
from models.heads import HEADS, design_matrix
from models.propensity_model import PropensityModel
from models.result import (
    BASELINE_NAMES,
    EVAL_SPLITS,
    KEY_COLUMNS,
    LABEL_COLUMNS,
    SCORE_COLUMNS,
    FitResult,
    StageClock,
    TrainingResult,
)
from models.splits import SPLIT_NAMES, TimeSplit
from models.stability import reference_profile

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Columns carried from the training set into the predictions for the review tables.
SEGMENT_COLUMNS: tuple[str, ...] = ("product", "jurisdiction", "region", "age")
#: Top features (per head, by mean |SHAP|) given a characteristic analysis.
CHARACTERISTIC_FEATURES = 5


def evaluate(fitted: FitResult, bands: rv.PolicyBands | None = None) -> TrainingResult:
    """Score every split of a fitted model and compute every figure a reviewer needs.

    Parameters
    ----------
    fitted : FitResult
        The output of :func:`models.training.fit`.
    bands : PolicyBands, optional
        The policy's tiers and DPD stages (segments and calibration by band).

    Returns
    -------
    TrainingResult
        The evaluation result (``report_html`` still empty).
    """
    model, config, spec = fitted.model, fitted.config, fitted.spec
    bands = bands or rv.PolicyBands()
    timings = dict(fitted.timings)
    clock = StageClock(timings)
    frames = fitted.split.frames()
    threshold = config.labels.full_coverage_threshold
    n_bins = config.evaluation.n_bins
    with clock("evaluate"):
        predictions = _predictions(model, frames, fitted.full_coverage, config)
        metrics, baseline_metrics = _metrics(predictions, n_bins)
        deciles = {
            f"{head}_{split_name}": ev.decile_table(*_target(predictions[split_name], head), n_bins)
            for head in HEADS
            for split_name in EVAL_SPLITS
        }
        model.reference = drift_reference(
            fitted.split, predictions, spec.columns, config.evaluation.reference_months, n_bins
        )
        model.metadata["drift_reference_months"] = [
            str(d.date())
            for d in reference_months(fitted.split, config.evaluation.reference_months)
        ]
        by_month = _calibration_by_month(predictions, n_bins)
        for head in HEADS:
            last = by_month[f"{head}_test"].iloc[-1]
            metrics[head]["test"]["last_month_ece"] = float(last["ece"])
            metrics[head]["test"]["last_month_over_prediction"] = float(last["over_prediction"])
        test_view = pd.concat(
            [frames["test"][list(spec.columns)], predictions["test"][list(SCORE_COLUMNS)]], axis=1
        )
        psi = model.drift(test_view, config.evaluation.psi_moderate, config.evaluation.psi_major)
        gate = evaluate_gate(
            model,
            None,
            frames["test"],
            config.gate.tolerance,
            config.gate.max_ece,
            threshold,
            stability=(config.gate.stability_top_features, config.gate.max_top_feature_psi),
            challenger_probs=predictions["test"],  # the test months, scored above
        )

    with clock("explain"):
        importance, shap_summary, shap_samples = _explain(model, frames["test"], config)

    with clock("review"):
        review = review_tables(fitted, predictions, shap_summary, bands)

    with clock("figures"):
        figures = _figures(predictions, model, importance, shap_samples, config)

    return TrainingResult(
        model=model,
        config=config,
        spec=spec,
        split=fitted.split,
        split_summary=fitted.split_summary,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        predictions=predictions,
        deciles=deciles,
        psi=psi,
        importance=importance,
        shap_summary=shap_summary,
        gate=gate,
        calibration_by_month=by_month,
        figures=figures,
        fingerprint=fitted.fingerprint,
        data_window={
            **fitted.data_window,
            **({"policy_bands": bands.source} if bands.tiers else {}),
        },
        timings=timings,
        review=review,
        excluded=fitted.excluded,
        trained_at=fitted.trained_at,
    )


def reference_months(split: TimeSplit, months: int) -> tuple[pd.Timestamp, ...]:
    """Return the newest ``months`` months before the test slice (validation, then train)."""
    fitted = (*split.months["train"], *split.months["validation"])
    return fitted[-months:]


def drift_reference(
    split: TimeSplit,
    predictions: dict[str, pd.DataFrame],
    columns: tuple[str, ...],
    months: int = 1,
    n_bins: int = 10,
) -> dict[str, dict]:
    """Return the drift reference: every feature and score on the newest months fitted on.

    The newest ``months`` months before the test slice (the end of the
    validation slice, whose scores are out of sample), not the whole pool: a
    portfolio that trends over the training window would otherwise read as
    drifted on the first scoring night.
    """
    chosen = reference_months(split, months)
    fitted = pd.concat([split.train, split.validation])
    rows = fitted["as_of_date"].isin(chosen)
    scored = pd.concat([predictions["train"], predictions["validation"]])
    scored = scored.loc[scored["as_of_date"].isin(chosen)]
    return {
        **{c: reference_profile(fitted.loc[rows, c], n_bins) for c in columns},
        **{c: reference_profile(scored[c], n_bins) for c in SCORE_COLUMNS},
    }


def _calibration_by_month(
    predictions: dict[str, pd.DataFrame], n_bins: int
) -> dict[str, pd.DataFrame]:
    """Calibration in the large and ECE per month, ``"<head>_<split>"``, validation and test."""
    out = {}
    for head in HEADS:
        for split_name in EVAL_SPLITS:
            pred = predictions[split_name]
            rows = pred if head == "willingness" else pred.loc[pred["paid_any"].to_numpy() == 1]
            out[f"{head}_{split_name}"] = ev.calibration_by_month(
                rows["as_of_date"].dt.date.astype(str), *_target(pred, head), n_bins
            )
    return out


def _predictions(
    model: PropensityModel,
    frames: dict[str, pd.DataFrame],
    full_coverage: dict[str, np.ndarray],
    config: TrainingConfig,
) -> dict[str, pd.DataFrame]:
    """Return per split the keys, labels, segment columns, scores and baselines' scores."""
    dpd = config.baselines.dpd_column
    predictions = {}
    for name, f in frames.items():
        probs = model.predict_proba(f)
        carried = [c for c in (*SEGMENT_COLUMNS, dpd) if c in f.columns]
        pred = f[[*KEY_COLUMNS, *LABEL_COLUMNS, *dict.fromkeys(carried)]].copy()
        pred["full_coverage"] = full_coverage[name]
        pred[list(SCORE_COLUMNS)] = probs[list(SCORE_COLUMNS)]
        for head in HEADS:
            for bname, baseline in model.baselines[head].items():
                pred[f"{bname}_{head}"] = baseline.predict(f)
        predictions[name] = pred
    return predictions


def review_tables(
    fitted: FitResult,
    predictions: dict[str, pd.DataFrame],
    shap_summary: dict[str, pd.DataFrame],
    bands: rv.PolicyBands,
) -> dict[str, pd.DataFrame]:
    """Return the validation tables of :mod:`models.review` for a fitted model, by name."""
    config, spec = fitted.config, fitted.spec
    test = predictions["test"]
    dpd = config.baselines.dpd_column
    stages = bands.stage(test[dpd].to_numpy())
    tiers = bands.tier(test["p_willingness"].to_numpy(), test["p_ability"].to_numpy())
    test = test.assign(
        dpd_stage=pd.Categorical(stages, categories=list(bands.dpd_stages) or None),
        tier=pd.Categorical(tiers, categories=list(bands.tiers) or None),
    )
    out: dict[str, pd.DataFrame] = {}
    for seg in ("product", "jurisdiction", "region", "dpd_stage", "tier"):
        if seg in test.columns and (seg != "tier" or bands.tiers):
            out[f"segment_{seg}"] = rv.performance_by(test, seg, HEADS)
    out["bootstrap"] = pd.DataFrame(
        [
            {
                "head": head,
                **rv.bootstrap_intervals(rows["y"], rows["p"], seed=config.lightgbm.seed),
            }
            for head in HEADS
            for rows in [rv.head_rows(test, head)]
        ]
    )
    every = pd.concat([p.assign(split=name) for name, p in predictions.items()], ignore_index=True)
    months = every["as_of_date"].dt.date.astype(str)
    monthly = rv.performance_by(every, months, HEADS).rename(columns={"group": "month"})
    split_of = every.groupby(months)["split"].first()
    monthly.insert(2, "split", monthly["month"].map(split_of))
    out["monthly"] = monthly
    if bands.tiers:
        out["band_calibration"] = rv.performance_by(test, "tier", HEADS)[
            ["head", "group", "rows", "events", "mean_prediction", "observed_rate"]
        ].rename(columns={"group": "tier"})
    frames = fitted.split.frames()
    dev, oot = frames["train"], frames["test"]
    y_dev = {"willingness": dev["paid_any"].to_numpy(), "ability": fitted.full_coverage["train"]}
    y_oot = {"willingness": oot["paid_any"].to_numpy(), "ability": fitted.full_coverage["test"]}
    for feature in shap_summary["willingness"]["feature"].head(CHARACTERISTIC_FEATURES):
        out[f"characteristic_{feature}"] = rv.characteristic_table(
            dev[feature], oot[feature], y_dev["willingness"], y_oot["willingness"]
        )
    protected = [c for c in config.fairness.protected if c in dev.columns]
    out["missing"] = rv.missing_rates(
        {"train": dev, "test": oot},
        [*spec.columns, *(c for c in protected if c not in spec.columns)],
    )
    out.update(_fairness(fitted, test))
    return out


def _fairness(fitted: FitResult, test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Score distribution by age band, the proxy check and the features most tied to age."""
    if "age" not in test.columns or test["age"].isna().all():
        return {}
    config, spec = fitted.config, fitted.spec
    edges = config.fairness.age_bands
    dev, oot = fitted.split.train, fitted.split.test
    features = [c for c in spec.columns if c != "age"]
    x_dev, x_oot = design_matrix(dev, spec)[features], design_matrix(oot, spec)[features]
    proxy, drivers = rv.proxy_check(
        x_dev,
        rv.age_band(dev["age"], edges),
        x_oot,
        rv.age_band(oot["age"], edges),
        seed=config.lightgbm.seed,
        num_threads=config.lightgbm.num_threads,
        order=rv.age_band_order(edges),
    )
    return {
        "age_band_scores": rv.score_by_band(
            test, rv.age_band(test["age"], edges), rv.age_band_order(edges)
        ),
        "age_proxy": proxy,
        "age_proxy_drivers": drivers.head(8),
        "age_correlation": rv.correlation_with(oot, oot["age"], features).head(8),
    }


def _target(
    pred: pd.DataFrame, head: str, score: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a head's population (all rows; payers for ability)."""
    score = score or f"p_{head}"
    if head == "willingness":
        return pred["paid_any"].to_numpy(dtype="float64"), pred[score].to_numpy(dtype="float64")
    paid = pred["paid_any"].to_numpy() == 1
    return (
        pred["full_coverage"].to_numpy(dtype="float64")[paid],
        pred[score].to_numpy(dtype="float64")[paid],
    )


def _metrics(predictions: dict[str, pd.DataFrame], n_bins: int):
    metrics: dict[str, dict[str, dict[str, float]]] = {h: {} for h in HEADS}
    baseline_metrics: dict[str, dict[str, dict[str, dict[str, float]]]] = {
        h: {b: {} for b in BASELINE_NAMES} for h in HEADS
    }
    for head in HEADS:
        for split_name in SPLIT_NAMES:
            pred = predictions[split_name]
            metrics[head][split_name] = ev.binary_metrics(*_target(pred, head), n_bins)
            if head == "ability":
                metrics[head][split_name].update(_share_metrics(pred))
            for b in BASELINE_NAMES:
                baseline_metrics[head][b][split_name] = ev.binary_metrics(
                    *_target(pred, head, f"{b}_{head}"), n_bins
                )
    return metrics, baseline_metrics


def _share_metrics(pred: pd.DataFrame) -> dict[str, float]:
    """Mean absolute error and bias of expected_share against coverage, on payers."""
    paid = pred["paid_any"].to_numpy() == 1
    if not paid.any():
        return {"share_mae": float("nan"), "share_bias": float("nan")}
    cov = pred["coverage"].to_numpy(dtype="float64")[paid]
    share = pred["expected_share"].to_numpy(dtype="float64")[paid]
    return {
        "share_mae": float(np.abs(cov - share).mean()),
        "share_bias": float(share.mean() - cov.mean()),
    }


def _explain(model: PropensityModel, test: pd.DataFrame, config: TrainingConfig):
    """Gain importance and a SHAP summary (on a seeded sample of test rows) per head."""
    importance, summary, samples = {}, {}, {}
    for head in HEADS:
        population = test if head == "willingness" else test.loc[test["paid_any"] == 1]
        n = min(len(population), config.evaluation.shap_sample_rows)
        sample = population.sample(n=n, random_state=config.lightgbm.seed) if n else population
        X = design_matrix(sample, model.spec)
        contrib = model.contributions(head, X)[:, :-1]
        samples[head] = (contrib, X)
        mono = (
            model.spec.monotone_willingness
            if head == "willingness"
            else model.spec.monotone_ability
        )
        rows = []
        for j, col in enumerate(model.spec.columns):
            if col in model.spec.categorical:
                direction = "by category"
            else:
                rho = ev.spearman(X[col].to_numpy(dtype="float64"), contrib[:, j])
                if np.isnan(rho) or abs(rho) < 0.1:
                    direction = "mixed or none"
                else:
                    direction = "higher raises" if rho > 0 else "higher lowers"
            rows.append(
                {
                    "feature": col,
                    "mean_abs_shap": float(np.abs(contrib[:, j]).mean()) if len(X) else 0.0,
                    "mean_shap": float(contrib[:, j].mean()) if len(X) else 0.0,
                    "direction": direction,
                    "monotone": {1: "increasing", -1: "decreasing"}.get(mono.get(col, 0), "none"),
                    "description": model.spec.describe(col),
                }
            )
        summary[head] = (
            pd.DataFrame(rows)
            .sort_values("mean_abs_shap", ascending=False, kind="stable")
            .reset_index(drop=True)
        )
        imp = model.feature_importance(head)
        imp["share"] = imp["gain"] / imp["gain"].sum() if imp["gain"].sum() else 0.0
        importance[head] = imp
    return importance, summary, samples


def _figures(
    predictions, model, importance, shap_samples, config: TrainingConfig
) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    n_bins = config.evaluation.n_bins
    for head in HEADS:
        for split_name in EVAL_SPLITS:
            pred = predictions[split_name]
            curves = {"model": _target(pred, head)}
            for b in BASELINE_NAMES:
                curves[b.replace("_", " ")] = _target(pred, head, f"{b}_{head}")
            label = f"{head}, {split_name}"
            figures[f"roc_{head}_{split_name}"] = ev.plot_roc(curves, f"ROC: {label}")
            figures[f"calibration_{head}_{split_name}"] = ev.plot_calibration(
                {"model": curves["model"]}, f"Calibration: {label}", n_bins
            )
            figures[f"gains_{head}_{split_name}"] = ev.plot_gains(curves, f"Gains: {label}")
        figures[f"importance_{head}"] = ev.plot_importance(
            importance[head], f"Feature importance (gain): {head}", config.evaluation.top_features
        )
        contrib, X = shap_samples[head]
        figures[f"shap_{head}"] = ev.plot_shap_summary(
            contrib, X, f"SHAP summary (out of time): {head}", config.evaluation.top_features
        )
    return figures
