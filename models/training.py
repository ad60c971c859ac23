"""Train both heads on a training set (no MLflow here): fit, then evaluate, then report.

``train`` takes the training set the feature jobs build (one row per overdue
account and month end: ``account_id``, ``as_of_date``, the feature columns,
``paid_any`` and ``coverage``) and runs three steps, each usable on its own:

1. :func:`fit` splits it by time, trains and calibrates the willingness and
   ability heads and fits the baselines on the same months
   (:class:`models.result.FitResult`);
2. :func:`models.assessment.evaluate` scores every split and computes what a
   reviewer needs: metrics per head and split, the baselines' metrics, decile
   tables, PSI, importance, SHAP summary, figures and the validation tables
   (:class:`models.result.TrainingResult`, the evaluation result);
3. :func:`models.report.render_report` renders the evaluation result as HTML.

``models.tracking.log_training_run`` sends the result to MLflow.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.assessment import evaluate
from models.baselines import DpdBucketRule, WoeScorecard, select_scorecard_features
from models.config import TrainingConfig
from models.heads import HEADS, ability_target, design_matrix, fit_calibrator, train_head
from models.propensity_model import PropensityModel
from models.provenance import git_commit, package_versions
from models.report import render_report
from models.result import (
    KEY_COLUMNS,
    LABEL_COLUMNS,
    FitResult,
    StageClock,
    TrainingResult,
)
from models.review import PolicyBands
from models.spec import FeatureSpec, ReasonText
from models.splits import TimeSplit, time_split

log = logging.getLogger(__name__)

__all__ = ["KEY_COLUMNS", "LABEL_COLUMNS", "TrainingResult", "fingerprint", "fit", "train"]


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


def fit(
    training_set: pd.DataFrame,
    config: TrainingConfig | None = None,
    spec: FeatureSpec | None = None,
    *,
    data_window: Mapping[str, Any] | None = None,
    reason_text: ReasonText | None = None,
) -> FitResult:
    """Split by time, train and calibrate both heads and fit the baselines.

    Parameters
    ----------
    training_set : DataFrame
        ``account_id``, ``as_of_date`` (month ends), the spec's feature
        columns, ``paid_any`` (0/1) and ``coverage`` ([0, 1]). Other columns
        (``age``, ``jurisdiction``...) are kept for the review tables.
    config : TrainingConfig, optional
        Defaults to ``models/default_config.yaml``.
    spec : FeatureSpec, optional
        Defaults to :meth:`FeatureSpec.default` (the feature catalogue). The
        protected attributes of ``config.fairness`` are removed from it
        unless listed in ``include_protected``.
    data_window : mapping, optional
        Facts to record about the data (data folder, as-of date, horizon...).
    reason_text : callable, optional
        Reason-code renderer kept on the model (default: the catalogue's).

    Returns
    -------
    FitResult
    """
    from models.config import load_config

    config = config or load_config()
    spec, excluded = _without_protected(spec or FeatureSpec.default(), config)
    timings: dict[str, float] = {}
    clock = StageClock(timings)
    _check_training_set(training_set, spec, config.baselines.dpd_column)
    threshold = config.labels.full_coverage_threshold

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
        )
    with clock("ability"):
        heads["ability"] = train_head(
            "ability",
            matrices["train"].loc[payers["train"]],
            y_abil["train"][payers["train"]],
            matrices["validation"].loc[payers["validation"]],
            y_abil["validation"][payers["validation"]],
            config.lightgbm,
            spec,
            config.calibration.method,
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
            "full_coverage_threshold": threshold,
            "splits": {k: [str(d.date()) for d in v] for k, v in split.months.items()},
        },
        reason_text=reason_text,
        num_threads=config.lightgbm.num_threads,
    )
    window = {
        "first_as_of": str(split.months["train"][0].date()),
        "last_as_of": str(split.months["test"][-1].date()),
        **{f"{k}_window": f"{v[0].date()}..{v[-1].date()}" for k, v in split.months.items()},
        **{k: str(v) for k, v in (data_window or {}).items()},
    }
    return FitResult(
        model=model,
        config=config,
        spec=spec,
        split=split,
        split_summary=summary,
        full_coverage=y_abil,
        fingerprint=fingerprint(training_set[[*KEY_COLUMNS, *spec.columns, *LABEL_COLUMNS]]),
        data_window=window,
        timings=timings,
        excluded=excluded,
        trained_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    )


def train(
    training_set: pd.DataFrame,
    config: TrainingConfig | None = None,
    spec: FeatureSpec | None = None,
    *,
    data_window: Mapping[str, Any] | None = None,
    reason_text: ReasonText | None = None,
    bands: PolicyBands | None = None,
) -> TrainingResult:
    """Fit, evaluate and report: :func:`fit`, then ``evaluate``, then ``render_report``.

    Parameters
    ----------
    training_set, config, spec, data_window, reason_text
        As for :func:`fit`.
    bands : PolicyBands, optional
        The policy's tiers and DPD stages, for the report's segment and
        calibration tables (default: :meth:`PolicyBands.default`).

    Returns
    -------
    TrainingResult
        The evaluation result, with ``report_html`` rendered.
    """
    fitted = fit(training_set, config, spec, data_window=data_window, reason_text=reason_text)
    result = evaluate(fitted, bands=bands)
    result.identity = {"git_commit": git_commit(), "package_versions": package_versions()}
    clock = StageClock(result.timings)
    with clock("report"):
        result.report_html = render_report(result)
    log.info(
        "trained: willingness test AUC %.4f, ability test AUC %.4f (%s)",
        result.metrics["willingness"]["test"]["auc"],
        result.metrics["ability"]["test"]["auc"],
        ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()),
    )
    return result


def _without_protected(spec: FeatureSpec, config: TrainingConfig) -> tuple[FeatureSpec, tuple]:
    """Return the spec without the protected attributes the config excludes, and those removed."""
    drop = tuple(c for c in config.fairness.excluded if c in spec.columns)
    if not drop:
        return spec, ()
    log.info("fairness: protected attribute(s) %s left out of the features", ", ".join(drop))
    return spec.subset([c for c in spec.columns if c not in drop]), drop


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
