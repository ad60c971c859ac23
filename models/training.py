"""Train both heads on a training set and evaluate them out of time (no MLflow here).

``train`` takes the training set the feature jobs build (one row per overdue
account and month end: ``account_id``, ``as_of_date``, the feature columns,
``paid_any`` and ``coverage``), splits it by time, trains and calibrates the
willingness and ability heads, fits the baselines on the same months and
returns everything a reviewer needs: metrics per head and split, the
baselines' metrics, decile tables, PSI, importance, SHAP summary, figures and
the HTML report. ``models.tracking.log_training_run`` sends it to MLflow.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models import evaluation as ev
from models.baselines import DpdBucketRule, WoeScorecard, select_scorecard_features
from models.config import TrainingConfig
from models.gate import PromotionDecision, evaluate_gate
from models.heads import (
    HEADS,
    ability_target,
    design_matrix,
    fit_calibrator,
    fit_level_shift,
    train_head,
)
from models.propensity_model import PropensityModel
from models.spec import FeatureSpec, ReasonText
from models.splits import SPLIT_NAMES, TimeSplit, time_split

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

KEY_COLUMNS: tuple[str, ...] = ("account_id", "as_of_date")
LABEL_COLUMNS: tuple[str, ...] = ("paid_any", "coverage")
BASELINE_NAMES: tuple[str, ...] = ("dpd_rule", "scorecard")
EVAL_SPLITS: tuple[str, ...] = ("validation", "test")
SCORE_COLUMNS: tuple[str, ...] = ("p_willingness", "p_ability", "expected_share")


@dataclass
class TrainingResult:
    """Everything a training run produced, free of MLflow.

    Attributes
    ----------
    model : PropensityModel
    config : TrainingConfig
    spec : FeatureSpec
    split : TimeSplit
        The three slices of the training set.
    split_summary : DataFrame
        Per split: months, rows, accounts, paid_any rate, payers, full-coverage rate.
    metrics : dict
        ``metrics[head][split][metric]`` (see :func:`models.evaluation.binary_metrics`).
    baseline_metrics : dict
        ``baseline_metrics[head][baseline][split][metric]``.
    predictions : dict
        Per split a frame of keys, labels, both probabilities and the baselines' scores.
    deciles : dict
        ``"<head>_<split>"`` -> decile table.
    psi : DataFrame
        PSI train -> test of every feature and of both scores, flagged.
    importance, shap_summary : dict
        Per head: gain importance; mean |SHAP| with the direction of effect.
    gate : PromotionDecision
        The no-champion gate (against the baselines) on the test months.
    calibration_by_month : dict
        ``"<head>_<split>"`` -> calibration-in-the-large and ECE per month
        (:func:`models.evaluation.calibration_by_month`), validation and test.
    figures : dict
        Name -> matplotlib Figure.
    report_html : str
        The self-contained model report.
    fingerprint : str
        SHA-256 of the training set's content.
    data_window : dict
        Facts about the data (as-of range, split windows, caller's extras).
    timings : dict
        Seconds per stage.
    """

    model: PropensityModel
    config: TrainingConfig
    spec: FeatureSpec
    split: TimeSplit
    split_summary: pd.DataFrame
    metrics: dict[str, dict[str, dict[str, float]]]
    baseline_metrics: dict[str, dict[str, dict[str, dict[str, float]]]]
    predictions: dict[str, pd.DataFrame]
    deciles: dict[str, pd.DataFrame]
    psi: pd.DataFrame
    importance: dict[str, pd.DataFrame]
    shap_summary: dict[str, pd.DataFrame]
    gate: PromotionDecision
    calibration_by_month: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    report_html: str = ""
    fingerprint: str = ""
    data_window: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """Return every figure as flat MLflow metric names.

        ``<head>_<split>_<metric>`` for the heads,
        ``baseline_<name>_<head>_<split>_<metric>`` for the baselines,
        ``rows_<split>``, ``paid_any_rate_<split>``, ``full_coverage_rate_<split>``.
        """
        out: dict[str, float] = {}
        for head, splits in self.metrics.items():
            for split, figs in splits.items():
                for k, v in figs.items():
                    out[f"{head}_{split}_{k}"] = v
        for head, baselines in self.baseline_metrics.items():
            for name, splits in baselines.items():
                for split, figs in splits.items():
                    for k, v in figs.items():
                        if k in ("n", "event_rate"):
                            continue
                        out[f"baseline_{name}_{head}_{split}_{k}"] = v
        for row in self.split_summary.itertuples(index=False):
            out[f"rows_{row.split}"] = float(row.rows)
            out[f"paid_any_rate_{row.split}"] = float(row.paid_any_rate)
            out[f"full_coverage_rate_{row.split}"] = float(row.full_coverage_rate)
        return {k: float(v) for k, v in out.items()}


def fingerprint(frame: pd.DataFrame) -> str:
    """Return a SHA-256 of a frame's columns, dtypes and values (row order matters).

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1.0, 2.0]})
    >>> fingerprint(a) == fingerprint(a.copy()), fingerprint(a) == fingerprint(a * 2)
    (True, False)
    """
    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(hashed.tobytes())
    return digest.hexdigest()


def _check_training_set(frame: pd.DataFrame, spec: FeatureSpec, dpd_column: str) -> None:
    needed = [*KEY_COLUMNS, *LABEL_COLUMNS, *spec.columns, dpd_column]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise KeyError(f"training set lacks column(s) {missing}")
    paid = frame["paid_any"]
    if not paid.isin([0, 1]).all():
        raise ValueError("training set: paid_any must be 0 or 1 on every row")
    cov = frame["coverage"]
    if cov.isna().any() or (cov < 0).any() or (cov > 1).any():
        raise ValueError("training set: coverage must be within [0, 1] on every row")
    dupes = frame.duplicated(list(KEY_COLUMNS)).sum()
    if dupes:
        raise ValueError(f"training set has {dupes} duplicate (account_id, as_of_date) rows")


def train(
    training_set: pd.DataFrame,
    config: TrainingConfig | None = None,
    spec: FeatureSpec | None = None,
    *,
    data_window: Mapping[str, Any] | None = None,
    reason_text: ReasonText | None = None,
) -> TrainingResult:
    """Train, calibrate and evaluate both heads and the baselines on a training set.

    Parameters
    ----------
    training_set : DataFrame
        ``account_id``, ``as_of_date`` (month ends), the spec's feature
        columns, ``paid_any`` (0/1) and ``coverage`` ([0, 1]).
    config : TrainingConfig, optional
        Defaults to ``models/default_config.yaml``.
    spec : FeatureSpec, optional
        Defaults to :meth:`FeatureSpec.default` (the feature catalogue).
    data_window : mapping, optional
        Facts to record about the data (data folder, as-of date, horizon...).
    reason_text : callable, optional
        Reason-code renderer kept on the model (default: the catalogue's).

    Returns
    -------
    TrainingResult
    """
    from models.config import load_config
    from models.report import render_report

    config = config or load_config()
    spec = spec or FeatureSpec.default()
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    _check_training_set(training_set, spec, config.baselines.dpd_column)
    threshold = config.labels.full_coverage_threshold
    coverage_target = config.labels.ability_target == "coverage"

    with clock("split"):
        split = time_split(
            training_set,
            validation_months=config.splits.validation_months,
            test_months=config.splits.test_months,
            gap_months=config.splits.gap_months,
        )
        frames = split.frames()
        matrices = {name: design_matrix(f, spec) for name, f in frames.items()}
        y_will = {n: f["paid_any"].to_numpy(dtype="int64") for n, f in frames.items()}
        payers = {n: y_will[n] == 1 for n in frames}
        y_abil = {n: ability_target(f["coverage"], threshold) for n, f in frames.items()}
        summary = _split_summary(split, threshold)
    log.info("split: %s", ", ".join(f"{r.split} {r.rows} rows" for r in summary.itertuples()))

    recent = _recent_rows(split, config.calibration.recent_months)
    abil_fit = {
        n: (f["coverage"].to_numpy(dtype="float64") if coverage_target else y_abil[n])
        for n, f in frames.items()
    }
    heads = {}
    with clock("willingness"):
        heads["willingness"] = train_head(
            "willingness",
            matrices["train"],
            y_will["train"],
            matrices["validation"],
            y_will["validation"],
            config.lightgbm,
            spec,
            config.calibration.method,
            recent=recent,
            shift_z=config.calibration.shift_z,
        )
    with clock("ability"):
        heads["ability"] = train_head(
            "ability",
            matrices["train"].loc[payers["train"]],
            abil_fit["train"][payers["train"]],
            matrices["validation"].loc[payers["validation"]],
            abil_fit["validation"][payers["validation"]],
            config.lightgbm,
            spec,
            config.calibration.method,
            recent=recent[payers["validation"]],
            y_calibrate=y_abil["validation"][payers["validation"]],
            objective="cross_entropy" if coverage_target else "binary",
            shift_z=config.calibration.shift_z,
        )
    raw_validation = {}
    for head in HEADS:
        log.info("%s head: %d trees", head, heads[head].best_iteration)
        raw = raw_validation[head] = heads[head].booster.predict(
            matrices["validation"], num_threads=config.lightgbm.num_threads
        )
        if len(raw) and np.ptp(raw) == 0:
            # A head that gives every account the same score ranks nobody and
            # explains nothing: refuse it rather than register it.
            raise ValueError(
                f"the {head} head learned nothing (one score for every account): too "
                f"little data ({len(frames['train']):,} training rows); use more accounts "
                "or months, or lower lightgbm.min_data_in_leaf in the config"
            )

    with clock("share"):
        # E[coverage | pay] as a monotone function of the ability score.
        paid_val = payers["validation"]
        raw_val = raw_validation["ability"][np.asarray(paid_val)]
        cov_val = frames["validation"]["coverage"].to_numpy(dtype="float64")[paid_val]
        share = fit_calibrator(raw_val, cov_val, "isotonic")
        if recent[paid_val].any():
            level = fit_level_shift(
                share.transform(raw_val[recent[paid_val]]),
                cov_val[recent[paid_val]],
                z=config.calibration.shift_z,
            )
            share = share.with_shift(level)

    with clock("baselines"):
        baselines = _fit_baselines(
            frames["train"], y_will["train"], y_abil["train"], payers["train"], spec, config
        )

    model = PropensityModel(
        boosters={h: heads[h].booster for h in HEADS},
        calibrators={**{h: heads[h].calibrator for h in HEADS}, "share": share},
        spec=spec,
        baselines=baselines,
        metadata={
            "best_iteration": {h: heads[h].best_iteration for h in HEADS},
            "calibration": config.calibration.method,
            "calibration_recent_months": config.calibration.recent_months,
            "ability_target": config.labels.ability_target,
            "horizon_days": int((data_window or {}).get("horizon_days", 30)),
            "full_coverage_threshold": threshold,
            "splits": {k: [str(d.date()) for d in v] for k, v in split.months.items()},
        },
        reason_text=reason_text,
        num_threads=config.lightgbm.num_threads,
    )

    with clock("evaluate"):
        predictions = {}
        for name, f in frames.items():
            probs = model.predict_proba(f)
            pred = f[[*KEY_COLUMNS, *LABEL_COLUMNS]].copy()
            pred["full_coverage"] = y_abil[name]
            pred[list(SCORE_COLUMNS)] = probs[list(SCORE_COLUMNS)]
            for head in HEADS:
                for bname, baseline in baselines[head].items():
                    pred[f"{bname}_{head}"] = baseline.predict(f)
            predictions[name] = pred
        metrics, baseline_metrics = _metrics(predictions, config.evaluation.n_bins)
        deciles = {
            f"{head}_{split_name}": ev.decile_table(
                *_target(predictions[split_name], head), config.evaluation.n_bins
            )
            for head in HEADS
            for split_name in EVAL_SPLITS
        }
        n_bins = config.evaluation.n_bins
        model.reference = drift_reference(
            split, predictions, spec.columns, config.evaluation.reference_months, n_bins
        )
        model.metadata["drift_reference_months"] = [
            str(d.date()) for d in _reference_months(split, config.evaluation.reference_months)
        ]
        by_month = {
            f"{head}_{split_name}": ev.calibration_by_month(
                _head_rows(predictions[split_name], head)["as_of_date"].dt.date.astype(str),
                *_target(predictions[split_name], head),
                n_bins,
            )
            for head in HEADS
            for split_name in EVAL_SPLITS
        }
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
        )

    with clock("explain"):
        importance, shap_summary, shap_samples = _explain(model, frames["test"], config)

    with clock("figures"):
        figures = _figures(predictions, model, importance, shap_samples, config)

    window = {
        "first_as_of": str(split.months["train"][0].date()),
        "last_as_of": str(split.months["test"][-1].date()),
        **{f"{k}_window": f"{v[0].date()}..{v[-1].date()}" for k, v in split.months.items()},
        **{k: str(v) for k, v in (data_window or {}).items()},
    }
    result = TrainingResult(
        model=model,
        config=config,
        spec=spec,
        split=split,
        split_summary=summary,
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
        fingerprint=fingerprint(training_set[[*KEY_COLUMNS, *spec.columns, *LABEL_COLUMNS]]),
        data_window=window,
        timings=timings,
    )
    with clock("report"):
        result.report_html = render_report(result)
    log.info(
        "trained: willingness test AUC %.4f, ability test AUC %.4f (%s)",
        metrics["willingness"]["test"]["auc"],
        metrics["ability"]["test"]["auc"],
        ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
    )
    return result


class _Clock:
    """Context manager factory recording seconds per stage into a dict."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def __call__(self, stage: str) -> _Clock:
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = time.perf_counter() - self.start


def _reference_months(split: TimeSplit, months: int) -> tuple[pd.Timestamp, ...]:
    """The newest ``months`` months before the test slice (validation first, then train)."""
    fitted = (*split.months["train"], *split.months["validation"])
    return fitted[-months:]


def _recent_rows(split: TimeSplit, months: int) -> np.ndarray:
    """Mask of the validation rows in its newest ``months`` months (all False when 0)."""
    if months <= 0:
        return np.zeros(len(split.validation), dtype=bool)
    newest = split.months["validation"][-months:]
    return split.validation["as_of_date"].isin(newest).to_numpy()


def drift_reference(
    split: TimeSplit,
    predictions: Mapping[str, pd.DataFrame],
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
    chosen = _reference_months(split, months)
    fitted = pd.concat([split.train, split.validation])
    rows = fitted["as_of_date"].isin(chosen)
    scored = pd.concat([predictions["train"], predictions["validation"]])
    scored = scored.loc[scored["as_of_date"].isin(chosen)]
    return {
        **{c: ev.reference_profile(fitted.loc[rows, c], n_bins) for c in columns},
        **{c: ev.reference_profile(scored[c], n_bins) for c in SCORE_COLUMNS},
    }


def _split_summary(split: TimeSplit, threshold: float) -> pd.DataFrame:
    rows = []
    for name, f in split.frames().items():
        paid = f["paid_any"].to_numpy() == 1
        full = ability_target(f["coverage"], threshold)[paid]
        start, end = split.window(name)
        rows.append(
            {
                "split": name,
                "first_as_of": str(start.date()),
                "last_as_of": str(end.date()),
                "months": len(split.months[name]),
                "rows": len(f),
                "accounts": int(f["account_id"].nunique()),
                "paid_any_rate": float(paid.mean()) if len(f) else float("nan"),
                "payers": int(paid.sum()),
                "full_coverage_rate": float(full.mean()) if full.size else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _fit_baselines(
    train_frame: pd.DataFrame,
    y_will: np.ndarray,
    y_abil: np.ndarray,
    payers: np.ndarray,
    spec: FeatureSpec,
    config: TrainingConfig,
) -> dict[str, dict[str, DpdBucketRule | WoeScorecard]]:
    cfg = config.baselines
    out: dict[str, dict[str, DpdBucketRule | WoeScorecard]] = {}
    targets = {
        "willingness": (train_frame, y_will),
        "ability": (train_frame.loc[payers], y_abil[payers]),
    }
    for head, (frame, y) in targets.items():
        if cfg.scorecard_features:
            unknown = [f for f in cfg.scorecard_features if f not in frame.columns]
            if unknown:
                raise KeyError(f"baselines.scorecard_features names unknown columns {unknown}")
            features = tuple(cfg.scorecard_features)
        else:
            features = select_scorecard_features(frame, y, spec.numeric, cfg.scorecard_max_features)
        out[head] = {
            "dpd_rule": DpdBucketRule.fit(frame, y, cfg.dpd_column),
            "scorecard": WoeScorecard.fit(frame, y, features, cfg.scorecard_bins),
        }
    return out


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


def _head_rows(pred: pd.DataFrame, head: str) -> pd.DataFrame:
    """Rows of a head's population (all rows; payers for ability)."""
    return pred if head == "willingness" else pred.loc[pred["paid_any"].to_numpy() == 1]


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
