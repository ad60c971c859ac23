"""Validation tables a model-risk reviewer expects, as pure functions of scored frames.

Each function takes a frame of out-of-time (or development) rows with labels
and scores and returns a small table with integer counts: performance by
segment, bootstrap confidence intervals on AUC and KS, performance by month,
characteristic analysis of a feature, calibration by the policy's bands,
missing-value rates and the fair-lending tables (score distribution by age
band and a proxy check: how well the model's features predict the age band).

Population of each head: willingness on every row against ``paid_any``;
ability on the rows that paid against ``full_coverage``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models import evaluation as ev
from models.baselines import dpd_bucket

HEAD_TARGETS: dict[str, str] = {"willingness": "paid_any", "ability": "full_coverage"}
#: Resamples of the bootstrap confidence intervals.
BOOTSTRAP_SAMPLES = 200


@dataclass(frozen=True)
class PolicyBands:
    """The contact policy's tiers and DPD stages, as the report segments by them.

    Parameters
    ----------
    tiers : dict
        Tier name -> ((willingness lo, hi), (ability lo, hi)), ranges [lo, hi)
        with hi 1.0 including 1.0.
    dpd_stages : dict
        Stage name -> (lowest DPD, first DPD past the stage or None).
    source : str
        Where the bands come from (policy version), printed in the report.
    """

    tiers: Mapping[str, tuple[tuple[float, float], tuple[float, float]]] = field(
        default_factory=dict
    )
    dpd_stages: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)
    source: str = "not given"

    def tier(self, p_will: np.ndarray, p_abil: np.ndarray) -> np.ndarray:
        """Return the tier name of each (p_willingness, p_ability) pair ("" when none)."""
        out = np.full(len(p_will), "", dtype=object)
        for name, ((wlo, whi), (alo, ahi)) in self.tiers.items():
            w_in = (p_will >= wlo) & ((p_will < whi) | (whi >= 1.0))
            a_in = (p_abil >= alo) & ((p_abil < ahi) | (ahi >= 1.0))
            out[w_in & a_in & (out == "")] = name
        return out

    def stage(self, dpd: np.ndarray) -> np.ndarray:
        """Return the DPD stage of each value (the DPD bucket when no stages are given)."""
        dpd = np.asarray(dpd, dtype="float64")
        if not self.dpd_stages:
            return dpd_bucket(dpd).astype(object)
        out = np.full(len(dpd), "", dtype=object)
        for name, (lo, hi) in self.dpd_stages.items():
            out[(dpd >= lo) & ((dpd < hi) if hi is not None else True)] = name
        return out


def fast_auc_ks(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None):
    """Return (AUC, KS) of labels ``y`` and scores ``p`` with optional row weights.

    Ties share their average rank, as in :func:`models.evaluation.auc`.

    Examples
    --------
    >>> fast_auc_ks(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    (0.75, 0.5)
    """
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype="float64")
    order = np.argsort(p, kind="stable")
    return _auc_ks_sorted(y[order], p[order], w[order])


def _auc_ks_sorted(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    pos, neg = w * y, w * (1 - y)
    n1, n0 = pos.sum(), neg.sum()
    if n1 == 0 or n0 == 0:
        return float("nan"), float("nan")
    # Tie groups: one entry per distinct score, in increasing order.
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    g_pos, g_neg = np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)
    neg_below = np.cumsum(g_neg) - g_neg
    auc = float((g_pos * (neg_below + 0.5 * g_neg)).sum() / (n1 * n0))
    # As models.evaluation.ks: max(TPR - FPR) over thresholds, 0 at the strictest one.
    ks = float(max(0.0, np.max(np.cumsum(g_neg) / n0 - np.cumsum(g_pos) / n1)))
    return auc, ks


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    n_boot: int = BOOTSTRAP_SAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Return AUC and KS with percentile bootstrap confidence intervals.

    Rows are resampled with replacement ``n_boot`` times (multinomial row
    weights over one sort of the scores).

    Returns
    -------
    dict
        ``auc``, ``auc_lo``, ``auc_hi``, ``auc_se``, ``ks``, ``ks_lo``, ``ks_hi``, ``n``.
    """
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    order = np.argsort(p, kind="stable")
    ys, ps = y[order], p[order]
    auc, ks = _auc_ks_sorted(ys, ps, np.ones(len(ys)))
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            _auc_ks_sorted(ys, ps, rng.multinomial(len(ys), np.full(len(ys), 1 / len(ys))))
            for _ in range(n_boot if len(ys) else 0)
        ]
    ).reshape(-1, 2)
    alpha = (1 - level) / 2
    out = {"n": int(len(ys)), "auc": auc, "ks": ks}
    for j, name in enumerate(("auc", "ks")):
        col = draws[:, j][~np.isnan(draws[:, j])]
        lo, hi = np.quantile(col, [alpha, 1 - alpha]) if col.size else (math.nan, math.nan)
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
        out[f"{name}_se"] = float(col.std(ddof=1)) if col.size > 1 else math.nan
    return out


def head_rows(pred: pd.DataFrame, head: str) -> pd.DataFrame:
    """Return the rows of a head's population (payers for ability) with ``y`` and ``p``."""
    rows = pred if head == "willingness" else pred.loc[pred["paid_any"] == 1]
    return rows.assign(y=rows[HEAD_TARGETS[head]].astype("float64"), p=rows[f"p_{head}"])


def performance_by(pred: pd.DataFrame, by: str | pd.Series, heads: Sequence[str]) -> pd.DataFrame:
    """Return rows, events, observed rate, mean prediction, AUC and KS per group and head.

    Examples
    --------
    >>> pred = pd.DataFrame({"g": ["a", "a", "b", "b"], "paid_any": [0, 1, 0, 1],
    ...                      "full_coverage": [0, 1, 0, 0], "p_willingness": [.2, .7, .4, .6]})
    >>> performance_by(pred, "g", ["willingness"])[["group", "rows", "events", "auc"]]
      group  rows  events  auc
    0     a     2       1  1.0
    1     b     2       1  1.0
    """
    tables = []
    key = pred[by] if isinstance(by, str) else by
    if not isinstance(key.dtype, pd.CategoricalDtype):
        key = key.astype(str)
    for head in heads:
        rows = head_rows(pred.assign(_group=key.array), head)
        stats = [
            {
                "head": head,
                "group": group,
                "rows": int(len(g)),
                "events": int(g["y"].sum()),
                "observed_rate": float(g["y"].mean()),
                "mean_prediction": float(g["p"].mean()),
                **dict(
                    zip(
                        ("auc", "ks"),
                        fast_auc_ks(g["y"].to_numpy(), g["p"].to_numpy()),
                        strict=True,
                    )
                ),
            }
            for group, g in rows.groupby("_group", sort=True, observed=True)
        ]
        tables.append(pd.DataFrame(stats))
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return out if len(heads) > 1 else out.drop(columns="head")


def characteristic_table(
    dev: pd.Series, oot: pd.Series, y_dev: np.ndarray, y_oot: np.ndarray, n_bins: int = 5
) -> pd.DataFrame:
    """Return the binned event rate of one feature in development and out of time.

    Numeric features are cut at the development quantiles (plus a bin for
    missing values); categorical ones one bin per category.
    """
    if isinstance(dev.dtype, pd.CategoricalDtype) or dev.dtype == object:
        b_dev, b_oot = dev.astype(str), oot.astype(str)
    else:
        v = dev.to_numpy(dtype="float64")
        edges = (
            np.unique(np.nanquantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
            if np.isfinite(v).any()
            else np.array([])
        )
        b_dev, b_oot = (_bin_labels(s.to_numpy(dtype="float64"), edges) for s in (dev, oot))
    parts = {}
    for name, bins, y in (("dev", b_dev, y_dev), ("oot", b_oot, y_oot)):
        g = pd.DataFrame({"bin": np.asarray(bins), "y": np.asarray(y, dtype="float64")})
        agg = g.groupby("bin", sort=False)["y"].agg(["size", "mean"])
        parts[name] = agg.rename(columns={"size": f"rows_{name}", "mean": f"event_rate_{name}"})
    table = parts["dev"].join(parts["oot"], how="outer").reset_index()
    for col in ("rows_dev", "rows_oot"):
        table[col] = table[col].fillna(0).astype("int64")
    return table.sort_values("bin", key=_bin_order, kind="stable").reset_index(drop=True)


def _bin_labels(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, v, side="right")
    bounds = [-np.inf, *edges, np.inf]
    labels = np.array(
        [f"{i:02d} [{_fmt(bounds[i])}, {_fmt(bounds[i + 1])})" for i in range(len(bounds) - 1)],
        dtype=object,
    )
    out = labels[np.minimum(idx, len(labels) - 1)]
    out[np.isnan(v)] = "99 missing"
    return out


def _bin_order(s: pd.Series) -> pd.Series:
    return s.astype(str)


def _fmt(x: float) -> str:
    return "-inf" if x == -np.inf else "inf" if x == np.inf else f"{x:.4g}"


def missing_rates(frames: Mapping[str, pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """Return each column's count and share of missing values per named frame."""
    out = pd.DataFrame({"feature": list(columns)})
    for name, frame in frames.items():
        present = [c for c in columns if c in frame.columns]
        counts = frame[present].isna().sum().reindex(columns)
        out[f"missing_{name}"] = counts.fillna(len(frame)).astype("int64").to_numpy()
        out[f"missing_share_{name}"] = out[f"missing_{name}"] / max(len(frame), 1)
    return out


def age_band(age: pd.Series, edges: Sequence[float]) -> np.ndarray:
    """Return the age band of each age (``"unknown"`` when missing).

    Examples
    --------
    >>> age_band(pd.Series([19.0, 25.0, 70.0, None]), [25, 65]).tolist()
    ['under 25', '25-64', '65 and over', 'unknown']
    """
    edges = list(edges)
    labels = [f"under {edges[0]:g}"]
    labels += [f"{lo:g}-{hi - 1:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f"{edges[-1]:g} and over")
    v = age.to_numpy(dtype="float64")
    out = np.asarray(labels, dtype=object)[np.searchsorted(edges, v, side="right")]
    out[np.isnan(v)] = "unknown"
    return out


def age_band_order(edges: Sequence[float]) -> list[str]:
    """Return the labels of :func:`age_band`, youngest first, then ``"unknown"``."""
    return age_band(pd.Series([-1.0, *edges, math.nan]), edges).tolist()


def score_by_band(pred: pd.DataFrame, bands: np.ndarray, order: Sequence[str]) -> pd.DataFrame:
    """Return rows, mean scores and observed rates per age band (or any grouping), in order."""
    g = pred.assign(band=pd.Categorical(bands, categories=list(order)), payer=pred["paid_any"] == 1)
    rows = []
    for band, part in g.groupby("band", sort=True, observed=True):
        payers = part.loc[part["payer"]]
        rows.append(
            {
                "band": band,
                "rows": int(len(part)),
                "mean_p_willingness": float(part["p_willingness"].mean()),
                "observed_paid_any": float(part["paid_any"].mean()),
                "mean_p_ability": float(part["p_ability"].mean()),
                "observed_full_coverage": float(payers["full_coverage"].mean())
                if len(payers)
                else math.nan,
                "p_willingness_p10": float(part["p_willingness"].quantile(0.1)),
                "p_willingness_p90": float(part["p_willingness"].quantile(0.9)),
            }
        )
    return pd.DataFrame(rows)


def proxy_check(
    train_x: pd.DataFrame,
    train_band: np.ndarray,
    test_x: pd.DataFrame,
    test_band: np.ndarray,
    seed: int = 0,
    num_threads: int = 1,
    order: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return how well the model's features predict each age band, out of time, and through what.

    A small LightGBM multiclass model (30 rounds, 7 leaves) is trained on the
    development rows with a known age and scored on the out-of-time rows.

    Returns
    -------
    auc : DataFrame
        Per band (in ``order``): out-of-time rows and one-vs-rest AUC (0.5: the
        features carry no information about the band; near 1: they act as a
        proxy for age).
    drivers : DataFrame
        The features the proxy model relies on: share of its total gain, largest first.
    """
    import lightgbm as lgb

    known_tr, known_te = train_band != "unknown", test_band != "unknown"
    present = set(train_band[known_tr])
    classes = [c for c in order if c in present] if order is not None else sorted(present)
    if len(classes) < 2 or not known_te.any():
        return (
            pd.DataFrame(columns=["band", "rows_oot", "proxy_auc"]),
            pd.DataFrame(columns=["feature", "gain_share"]),
        )
    code = {c: i for i, c in enumerate(classes)}
    y_tr = np.array([code[b] for b in train_band[known_tr]])
    params = {
        "objective": "multiclass",
        "num_class": len(classes),
        "num_leaves": 7,
        "learning_rate": 0.1,
        "min_data_in_leaf": 50,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "num_threads": num_threads,
    }
    booster = lgb.train(params, lgb.Dataset(train_x.loc[known_tr], y_tr), num_boost_round=30)
    probs = booster.predict(test_x.loc[known_te], num_threads=num_threads)
    bands_te = test_band[known_te]
    auc_table = pd.DataFrame(
        [
            {
                "band": c,
                "rows_oot": int((bands_te == c).sum()),
                "proxy_auc": ev.auc((bands_te == c).astype(float), probs[:, i]),
            }
            for c, i in code.items()
        ]
    )
    gain = booster.feature_importance("gain")
    drivers = pd.DataFrame(
        {"feature": booster.feature_name(), "gain_share": gain / gain.sum() if gain.sum() else gain}
    )
    drivers = drivers.sort_values("gain_share", ascending=False, kind="stable")
    return auc_table, drivers.reset_index(drop=True)


def correlation_with(
    frame: pd.DataFrame, target: pd.Series, columns: Sequence[str]
) -> pd.DataFrame:
    """Return the Spearman correlation of each numeric column with ``target``, strongest first."""
    t = target.to_numpy(dtype="float64")
    rows = [
        {"feature": c, "spearman": ev.spearman(frame[c].to_numpy(dtype="float64"), t)}
        for c in columns
        if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])
    ]
    table = pd.DataFrame(rows, columns=["feature", "spearman"])
    order = table["spearman"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order].reset_index(drop=True)
