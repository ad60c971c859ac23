"""Evaluation of probability scores: ranking, calibration, plots.

MLflow's own evaluator does not produce AUC for these models, nor KS or Gini,
so they are computed here as plain functions of labels and scores; PSI and the
other stability measures are in :mod:`models.stability`.

Conventions
-----------
* Equal-count bins: rows sorted by score (stable sort, so ties keep their
  input order) and cut into ``n_bins`` slices of as equal size as possible
  (``numpy.array_split``). Used by the calibration error, the decile table and
  the calibration plot. Equal-count bins keep every bin populated however
  skewed the scores are, unlike equal-width bins.
* Expected calibration error (ECE): ``sum_b n_b / n * |mean(y_b) - mean(p_b)|``
  over those bins, 10 by default.

Plots are built on ``matplotlib.figure.Figure`` objects directly (no pyplot,
no global backend switch), which renders with the Agg canvas and never opens
a window, in a script, a test or a notebook alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOG_LOSS_EPS: float = 1e-15


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape} vs {p.shape}")
    return y, p


def _two_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < y.sum() < y.size


def auc(y, p) -> float:
    """Return the area under the ROC curve (NaN when only one class is present).

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, p = _arrays(y, p)
    if not _two_classes(y):
        return float("nan")
    return float(roc_auc_score(y, p))


def gini(y, p) -> float:
    """Return the Gini coefficient, ``2 * AUC - 1``.

    Examples
    --------
    >>> gini([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    return 2.0 * auc(y, p) - 1.0


def ks(y, p) -> float:
    """Return the Kolmogorov-Smirnov statistic: max distance between the classes' score CDFs.

    Examples
    --------
    >>> ks([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    1.0
    """
    y, p = _arrays(y, p)
    if not _two_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def brier(y, p) -> float:
    """Return the Brier score, the mean squared error of the probabilities.

    Examples
    --------
    >>> round(brier([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def log_loss(y, p) -> float:
    """Return the mean negative log-likelihood (probabilities clipped to [1e-15, 1 - 1e-15]).

    Examples
    --------
    >>> round(log_loss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    y, p = _arrays(y, p)
    if not y.size:
        return float("nan")
    p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def equal_count_bins(p, n_bins: int = 10) -> np.ndarray:
    """Return each row's equal-count bin (0 = lowest scores) after a stable sort by score.

    Examples
    --------
    >>> equal_count_bins([0.9, 0.1, 0.5, 0.3], n_bins=2).tolist()
    [1, 0, 1, 0]
    """
    p = np.asarray(p, dtype="float64")
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, dtype="int64")
    for b, idx in enumerate(np.array_split(order, n_bins)):
        bins[idx] = b
    return bins


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    """Return the ECE over ``n_bins`` equal-count bins of the score.

    Examples
    --------
    >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], n_bins=2), 6)
    0.15
    """
    y, p = _arrays(y, p)
    if not y.size:
        return float("nan")
    bins = equal_count_bins(p, n_bins)
    counts = np.bincount(bins, minlength=n_bins).astype("float64")
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    filled = counts > 0
    gap = np.abs(sum_y[filled] - sum_p[filled])
    return float(gap.sum() / y.size)


def binary_metrics(y, p, n_bins: int = 10) -> dict[str, float]:
    """Return every headline metric of a probability score on one labelled set.

    Returns
    -------
    dict
        ``n``, ``event_rate``, ``mean_prediction``, ``auc``, ``gini``, ``ks``,
        ``brier``, ``log_loss``, ``ece``.
    """
    y, p = _arrays(y, p)
    a = auc(y, p)
    return {
        "n": float(y.size),
        "event_rate": float(y.mean()) if y.size else float("nan"),
        "mean_prediction": float(p.mean()) if y.size else float("nan"),
        "auc": a,
        "gini": 2.0 * a - 1.0,
        "ks": ks(y, p),
        "brier": brier(y, p),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
    }


def calibration_by_month(months, y, p, n_bins: int = 10) -> pd.DataFrame:
    """Return calibration-in-the-large and ECE of a score for each month.

    Parameters
    ----------
    months : array-like
        The as-of date (or any month key) of each row.
    y, p : array-like
        Labels (0/1 or shares in [0, 1]) and predictions of the same rows.
    n_bins : int
        Equal-count bins of each month's ECE.

    Returns
    -------
    DataFrame
        One row per month in time order: ``month``, ``rows``,
        ``observed_rate``, ``mean_prediction``, ``over_prediction``
        (``mean_prediction - observed_rate``: positive when the model
        promises more than happened) and ``ece``.

    Examples
    --------
    >>> t = calibration_by_month(["2024-02", "2024-01", "2024-02"], [1, 0, 0], [0.5, 0.2, 0.7])
    >>> t[["month", "rows", "over_prediction"]].round(6).to_dict("list")
    {'month': ['2024-01', '2024-02'], 'rows': [1, 2], 'over_prediction': [0.2, 0.1]}
    """
    y, p = _arrays(y, p)
    keys = pd.Series(np.asarray(months))
    if len(keys) != y.size:
        raise ValueError(f"months and labels differ in length: {len(keys)} vs {y.size}")
    rows = []
    for month, idx in keys.groupby(keys, sort=True).indices.items():
        obs, pred = float(y[idx].mean()), float(p[idx].mean())
        rows.append(
            {
                "month": month,
                "rows": int(idx.size),
                "observed_rate": obs,
                "mean_prediction": pred,
                "over_prediction": pred - obs,
                "ece": expected_calibration_error(y[idx], p[idx], n_bins),
            }
        )
    columns = ["month", "rows", "observed_rate", "mean_prediction", "over_prediction", "ece"]
    return pd.DataFrame(rows, columns=columns)


def decile_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Return the gains table: equal-count bins from the highest score down.

    Columns: ``decile`` (1 = highest scores), ``count``, ``events``,
    ``observed_rate``, ``mean_prediction``, ``min_score``, ``max_score``,
    ``lift`` (observed rate over the overall rate) and ``cumulative_capture``
    (share of all events in this and the higher deciles).

    Examples
    --------
    >>> t = decile_table([1, 0, 1, 0], [0.9, 0.1, 0.6, 0.4], n_bins=2)
    >>> t[["decile", "events", "lift", "cumulative_capture"]].to_dict("list")
    {'decile': [1, 2], 'events': [2.0, 0.0], 'lift': [2.0, 0.0], 'cumulative_capture': [1.0, 1.0]}
    """
    y, p = _arrays(y, p)
    bins = n_bins - 1 - equal_count_bins(p, n_bins)
    frame = pd.DataFrame({"decile": bins + 1, "y": y, "p": p})
    table = (
        frame.groupby("decile", sort=True)
        .agg(
            count=("y", "size"),
            events=("y", "sum"),
            mean_prediction=("p", "mean"),
            min_score=("p", "min"),
            max_score=("p", "max"),
        )
        .reset_index()
    )
    table["observed_rate"] = table["events"] / table["count"]
    overall = y.mean() if y.size else float("nan")
    table["lift"] = table["observed_rate"] / overall if overall else float("nan")
    total = table["events"].sum()
    table["cumulative_capture"] = table["events"].cumsum() / total if total else float("nan")
    cols = [
        "decile",
        "count",
        "events",
        "observed_rate",
        "mean_prediction",
        "min_score",
        "max_score",
        "lift",
        "cumulative_capture",
    ]
    return table[cols]


def spearman(a, b) -> float:
    """Return Spearman's rank correlation over the pairs where both values are present.

    Examples
    --------
    >>> spearman([1, 2, 3, np.nan], [10, 30, 20, 5])
    0.5
    """
    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(stats.spearmanr(a[ok], b[ok]).statistic)


# --------------------------------------------------------------------- plots


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """Plot ROC curves of several scores of the same labels (name -> (y, p))."""
    fig = _figure()
    ax = fig.subplots()
    for name, (y, p) in curves.items():
        y = np.asarray(y)
        if not _two_classes(y.astype("float64")):
            continue
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_calibration(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str, n_bins: int = 10
) -> Figure:
    """Plot observed rate against mean prediction per equal-count bin (name -> (y, p))."""
    fig = _figure()
    ax = fig.subplots()
    for name, (y, p) in curves.items():
        y, p = _arrays(y, p)
        if not y.size:
            continue
        bins = equal_count_bins(p, n_bins)
        counts = np.bincount(bins, minlength=n_bins)
        ok = counts > 0
        mean_p = np.bincount(bins, weights=p, minlength=n_bins)[ok] / counts[ok]
        mean_y = np.bincount(bins, weights=y, minlength=n_bins)[ok] / counts[ok]
        ece = expected_calibration_error(y, p, n_bins)
        ax.plot(mean_p, mean_y, marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_gains(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """Plot cumulative capture of events against the share of accounts worked, best first."""
    fig = _figure()
    ax = fig.subplots()
    for name, (y, p) in curves.items():
        y, p = _arrays(y, p)
        if not y.sum():
            continue
        order = np.argsort(-p, kind="stable")
        captured = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
        share = np.linspace(0, 1, captured.size)
        ax.plot(share, captured, label=name)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="random")
    ax.set(xlabel="share of accounts (highest score first)", ylabel="share of events captured")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_importance(importance: pd.DataFrame, title: str, top: int = 20) -> Figure:
    """Plot a horizontal bar chart of ``importance`` (columns ``feature``, ``gain``)."""
    data = importance.nlargest(top, "gain").iloc[::-1]
    fig = _figure(6.0, max(2.5, 0.28 * len(data) + 1.0))
    ax = fig.subplots()
    ax.barh(data["feature"], data["gain"], color="#4472c4")
    ax.set(xlabel="total gain", title=title)
    ax.tick_params(axis="y", labelsize=8)
    return fig


def plot_shap_summary(
    contributions: np.ndarray, X: pd.DataFrame, title: str, top: int = 20
) -> Figure:
    """Plot a beeswarm-like SHAP summary: one row per feature, points coloured by value rank.

    Parameters
    ----------
    contributions : ndarray
        ``pred_contrib`` output without the bias column (rows x features).
    X : DataFrame
        The feature values of the same rows (colours: percentile of the value
        within its feature; grey for missing and categorical values).
    """
    mean_abs = np.abs(contributions).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")[:top][::-1]
    fig = _figure(7.0, max(2.5, 0.3 * len(order) + 1.2))
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    scatter = None
    for row, j in enumerate(order):
        col = X.columns[j]
        values = X[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            colour = np.full(len(values), np.nan)
        else:
            colour = values.rank(pct=True).to_numpy(dtype="float64")
        jitter = rng.uniform(-0.3, 0.3, len(values))
        missing = np.isnan(colour)
        ax.scatter(
            contributions[missing, j], row + jitter[missing], s=4, color="lightgrey", alpha=0.6
        )
        scatter = ax.scatter(
            contributions[~missing, j],
            row + jitter[~missing],
            c=colour[~missing],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            s=4,
            alpha=0.6,
        )
    ax.set_yticks(range(len(order)), [X.columns[j] for j in order], fontsize=8)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="contribution to the log-odds (SHAP)", title=title)
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="feature value (percentile)")
    return fig


#: The stability measures that lived here before :mod:`models.stability` (their home) was split off.
_MOVED_TO_STABILITY = (
    "reference_profile", "psi_against", "psi", "psi_flag", "psi_table", "drift_table",
    "time_separability",
)  # fmt: skip


def __getattr__(name: str) -> Any:
    """Resolve a stability measure from :mod:`models.stability` on first use (no import cycle).

    Notebooks written before the split import ``models.evaluation.psi`` and the like.

    Examples
    --------
    >>> from models import evaluation, stability
    >>> evaluation.psi is stability.psi
    True
    """
    if name in _MOVED_TO_STABILITY:
        import importlib

        return getattr(importlib.import_module("models.stability"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
