"""Baselines the heads must beat: a DPD-bucket rule and a logistic WOE scorecard.

Both are fitted on the training months only and scored on the same splits as
the heads, for each head's target. Both are saved as plain numbers (JSON) with
the model, so the promotion gate can score them on new out-of-time data.

* DPD-bucket rule: the training rate of the target per DPD bucket (1-29,
  30-59, 60-89, 90-119, 120+); a missing DPD gets the overall training rate.
* Logistic scorecard: each of a handful of numeric features cut into quantile
  bins on the training months (plus a bin for missing values), each bin
  replaced by its weight of evidence, then a logistic regression on the WOE
  columns: the classic credit scorecard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.evaluation import auc

#: Lower edges of the DPD buckets and their labels.
DPD_BUCKET_EDGES: tuple[int, ...] = (30, 60, 90, 120)
DPD_BUCKET_LABELS: tuple[str, ...] = ("1-29", "30-59", "60-89", "90-119", "120+")
#: Pseudo-count added to each bin's events and non-events in the WOE.
WOE_SMOOTHING: float = 0.5


def dpd_bucket(dpd) -> np.ndarray:
    """Return the DPD bucket label of each value (``""`` for missing).

    Examples
    --------
    >>> dpd_bucket([1, 29, 30, 119, 120, 400, np.nan]).tolist()
    ['1-29', '1-29', '30-59', '90-119', '120+', '120+', '']
    """
    d = np.asarray(dpd, dtype="float64")
    idx = np.searchsorted(np.asarray(DPD_BUCKET_EDGES, dtype="float64"), d, side="right")
    labels = np.asarray(DPD_BUCKET_LABELS, dtype=object)[
        np.minimum(idx, len(DPD_BUCKET_LABELS) - 1)
    ]
    return np.where(np.isnan(d), "", labels).astype(object)


@dataclass(frozen=True)
class DpdBucketRule:
    """Predict the training rate of the target in the account's DPD bucket."""

    dpd_column: str
    rates: dict[str, float]
    default_rate: float

    @classmethod
    def fit(cls, frame: pd.DataFrame, y, dpd_column: str = "dpd") -> DpdBucketRule:
        """Fit the rate per bucket on training rows.

        Examples
        --------
        >>> f = pd.DataFrame({"dpd": [5, 10, 45, 200]})
        >>> rule = DpdBucketRule.fit(f, [1, 0, 1, 0])
        >>> rule.rates["1-29"], rule.rates["30-59"], rule.rates["60-89"]
        (0.5, 1.0, 0.5)
        """
        _require(frame, [dpd_column], "DPD-bucket rule")
        y = np.asarray(y, dtype="float64")
        overall = float(y.mean())
        buckets = pd.Series(dpd_bucket(frame[dpd_column]))
        observed = pd.Series(y).groupby(buckets.to_numpy()).mean()
        rates = {b: float(observed.get(b, overall)) for b in DPD_BUCKET_LABELS}
        return cls(dpd_column=dpd_column, rates=rates, default_rate=overall)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the bucket rate of each row."""
        _require(frame, [self.dpd_column], "DPD-bucket rule")
        buckets = dpd_bucket(frame[self.dpd_column])
        lookup = {**self.rates, "": self.default_rate}
        return pd.Series(buckets).map(lookup).to_numpy(dtype="float64")

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as JSON-ready numbers."""
        return {
            "kind": "dpd_bucket_rule",
            "dpd_column": self.dpd_column,
            "rates": dict(self.rates),
            "default_rate": self.default_rate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DpdBucketRule:
        """Rebuild a rule from :meth:`to_dict` output."""
        return cls(
            dpd_column=data["dpd_column"],
            rates={k: float(v) for k, v in data["rates"].items()},
            default_rate=float(data["default_rate"]),
        )


@dataclass(frozen=True)
class WoeScorecard:
    """Logistic regression on weight-of-evidence bins of a few numeric features.

    ``edges[f]`` are the inner cut points of feature ``f`` (bins are
    ``(-inf, e0], (e0, e1], ..., (ek, inf)``); ``woe[f]`` holds one WOE per
    bin and a last one for missing values.
    """

    features: tuple[str, ...]
    edges: dict[str, tuple[float, ...]]
    woe: dict[str, tuple[float, ...]]
    coef: tuple[float, ...]
    intercept: float

    @classmethod
    def fit(cls, frame: pd.DataFrame, y, features: Sequence[str], n_bins: int = 5) -> WoeScorecard:
        """Bin each feature at training quantiles, compute WOE, fit the logistic regression."""
        _require(frame, features, "scorecard")
        y = np.asarray(y, dtype="float64")
        if not 0 < y.sum() < y.size:
            raise ValueError("scorecard: training target has one class only")
        edges: dict[str, tuple[float, ...]] = {}
        woe: dict[str, tuple[float, ...]] = {}
        columns = []
        for f in features:
            x = frame[f].to_numpy(dtype="float64")
            ok = ~np.isnan(x)
            cuts = (
                np.unique(np.quantile(x[ok], np.linspace(0, 1, n_bins + 1)[1:-1]))
                if ok.any()
                else np.array([], dtype="float64")
            )
            idx = _bin_index(x, cuts)
            n_slots = cuts.size + 2
            events = np.bincount(idx, weights=y, minlength=n_slots)
            totals = np.bincount(idx, minlength=n_slots).astype("float64")
            non_events = totals - events
            dist_e = (events + WOE_SMOOTHING) / (y.sum() + WOE_SMOOTHING * n_slots)
            dist_n = (non_events + WOE_SMOOTHING) / ((1 - y).sum() + WOE_SMOOTHING * n_slots)
            w = np.log(dist_e / dist_n)
            edges[f] = tuple(float(v) for v in cuts)
            woe[f] = tuple(float(v) for v in w)
            columns.append(w[idx])
        design = np.column_stack(columns)
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(design, y)
        return cls(
            features=tuple(features),
            edges=edges,
            woe=woe,
            coef=tuple(float(v) for v in lr.coef_[0]),
            intercept=float(lr.intercept_[0]),
        )

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the WOE design matrix of ``frame`` (rows x features)."""
        _require(frame, self.features, "scorecard")
        columns = []
        for f in self.features:
            x = frame[f].to_numpy(dtype="float64")
            idx = _bin_index(x, np.asarray(self.edges[f], dtype="float64"))
            columns.append(np.asarray(self.woe[f])[idx])
        return np.column_stack(columns)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the scorecard's probability of the target."""
        z = self.transform(frame) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        """Return the scorecard as JSON-ready numbers (bins, WOE, coefficients)."""
        return {
            "kind": "woe_scorecard",
            "features": list(self.features),
            "edges": {k: list(v) for k, v in self.edges.items()},
            "woe": {k: list(v) for k, v in self.woe.items()},
            "coef": list(self.coef),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WoeScorecard:
        """Rebuild a scorecard from :meth:`to_dict` output."""
        return cls(
            features=tuple(data["features"]),
            edges={k: tuple(float(x) for x in v) for k, v in data["edges"].items()},
            woe={k: tuple(float(x) for x in v) for k, v in data["woe"].items()},
            coef=tuple(float(v) for v in data["coef"]),
            intercept=float(data["intercept"]),
        )


def _bin_index(x: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Bin index of each value: 0..len(cuts) by ``(lo, hi]`` intervals, len(cuts)+1 if missing."""
    return np.where(np.isnan(x), cuts.size + 1, np.searchsorted(cuts, x, side="left"))


def select_scorecard_features(
    frame: pd.DataFrame, y, candidates: Sequence[str], max_features: int = 6
) -> tuple[str, ...]:
    """Pick the numeric features with the strongest univariate AUC (``|AUC - 0.5|``).

    Missing values are set to the feature's median for the ranking only.
    Ties keep the candidates' order, so the choice is deterministic.

    Examples
    --------
    >>> f = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [4.0, 3, 2, 1], "c": [1.0, 1, 2, 1]})
    >>> select_scorecard_features(f, [0, 0, 1, 1], ["c", "a", "b"], max_features=2)
    ('a', 'b')
    """
    y = np.asarray(y, dtype="float64")
    scores = []
    for pos, f in enumerate(candidates):
        x = frame[f].to_numpy(dtype="float64")
        if np.isnan(x).all():
            continue
        x = np.where(np.isnan(x), np.nanmedian(x), x)
        strength = abs(auc(y, x) - 0.5)
        if not np.isnan(strength):
            scores.append((-strength, pos, f))
    return tuple(f for _, _, f in sorted(scores)[:max_features])


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what} needs column(s) {missing}, absent from the frame")


def baseline_from_dict(data: dict[str, Any]) -> DpdBucketRule | WoeScorecard:
    """Rebuild a baseline (either kind) from its ``to_dict`` output."""
    kind = data.get("kind")
    if kind == "dpd_bucket_rule":
        return DpdBucketRule.from_dict(data)
    if kind == "woe_scorecard":
        return WoeScorecard.from_dict(data)
    raise ValueError(f"unknown baseline kind {kind!r}")
