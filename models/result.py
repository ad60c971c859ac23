"""What a training run produces, step by step: a fitted model, then its evaluation.

``models.training.fit`` returns a :class:`FitResult`,
``models.assessment.evaluate`` turns it into a :class:`TrainingResult` (the
evaluation result) and ``models.report.render_report`` renders that as HTML.
This module holds only the data classes, so the three steps import it and
never each other in a circle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from models.config import TrainingConfig
from models.gate import PromotionDecision
from models.propensity_model import PropensityModel
from models.spec import FeatureSpec
from models.splits import TimeSplit

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from models.effects import TreatmentEffects

KEY_COLUMNS: tuple[str, ...] = ("account_id", "as_of_date")
LABEL_COLUMNS: tuple[str, ...] = ("paid_any", "coverage")
BASELINE_NAMES: tuple[str, ...] = ("dpd_rule", "scorecard")
EVAL_SPLITS: tuple[str, ...] = ("validation", "test")
SCORE_COLUMNS: tuple[str, ...] = ("p_willingness", "p_ability", "expected_share")


@dataclass
class FitResult:
    """A fitted model and the split it was fitted on, before any evaluation.

    Attributes
    ----------
    model : PropensityModel
        Both heads, calibrators, share map and baselines (no reference yet).
    config, spec
        What it was fitted with (``spec`` after the fairness exclusions).
    split : TimeSplit
    split_summary : DataFrame
        Per split: months, rows, accounts, paid_any rate, payers, full-coverage rate.
    full_coverage : dict
        Per split, the ability target (0/1) of every row.
    fingerprint : str
        SHA-256 of the training set's content.
    data_window : dict
    timings : dict
        Seconds per stage.
    excluded : tuple of str
        Protected attributes left out of the features by the fairness settings.
    trained_at : str
        UTC time the fit finished (ISO 8601).
    """

    model: PropensityModel
    config: TrainingConfig
    spec: FeatureSpec
    split: TimeSplit
    split_summary: pd.DataFrame
    full_coverage: dict[str, np.ndarray]
    fingerprint: str
    data_window: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    trained_at: str = ""


@dataclass
class TrainingResult:
    """The evaluation result of a training run: everything a reviewer needs, free of MLflow.

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
        PSI, drift reference (the newest month fitted on) -> test, of every
        feature and of the scores, flagged.
    importance, shap_summary : dict
        Per head: gain importance; mean |SHAP| with the direction of effect.
    gate : PromotionDecision
        The no-champion gate (against the baselines) on the test months.
    calibration_by_month : dict
        ``"<head>_<split>"`` -> calibration in the large and ECE per month
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
    review : dict
        The validation tables of :mod:`models.review` by name (segments,
        bootstrap intervals, months, characteristics, policy bands, missing
        rates, fairness).
    identity : dict
        Model name and version, run id, git commit, package versions...;
        filled in when the run is logged (``models.tracking``).
    excluded : tuple of str
        Protected attributes left out of the features.
    trained_at : str
        UTC time the fit finished.
    images : dict
        Figure name -> PNG bytes, rendered once (the report and MLflow share them).
    effects : TreatmentEffects, optional
        The treatment-effect model fitted on randomised units and its
        evaluation (:mod:`models.effects`); None when the run was given no
        randomised data.
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
    review: dict[str, pd.DataFrame] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    trained_at: str = ""
    images: dict[str, bytes] = field(default_factory=dict, repr=False)
    effects: TreatmentEffects | None = None

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


class StageClock:
    """Context manager factory recording seconds per stage into a dict."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def __call__(self, stage: str) -> StageClock:
        """Name the stage the next ``with`` block times."""
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = time.perf_counter() - self.start
