"""Stability of variables and scores: PSI against a saved reference, drift tables, separability.

Conventions
-----------
* PSI: ``sum_b (a_b - e_b) * ln(a_b / e_b)`` over 10 bins cut at the deciles
  of the *expected* (training) distribution, plus one bin for missing values;
  categorical features use one bin per category. Empty bins get a share of
  1e-4 so the logarithm stays finite. Flags: < 0.10 stable, 0.10-0.25
  moderate shift, >= 0.25 major shift.
* Time separability: per feature, the AUC with which its value tells a late
  month's rows from an early month's, folded to ``|2 AUC - 1|``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from models.evaluation import auc

PSI_EMPTY_SHARE: float = 1e-4


def reference_profile(values, n_bins: int = 10) -> dict:
    """Return the binned distribution of a variable, the reference PSI compares against.

    Numeric: inner cut points at the quantiles (``n_bins`` bins, duplicates
    merged), the share of rows in each bin ``[cut_i, cut_i+1)``, then the
    share missing. Categorical or text: the share
    of each category, then the share of other (unseen) values, then missing.
    The profile is plain JSON, saved with the model for drift monitoring.

    Examples
    --------
    >>> reference_profile([1.0, 2.0, 3.0, np.nan], n_bins=2)
    {'kind': 'numeric', 'edges': [2.0], 'shares': [0.25, 0.5, 0.25]}
    """
    s = pd.Series(values)
    if _is_numeric(s):
        v = s.to_numpy(dtype="float64")
        ok = v[~np.isnan(v)]
        edges = (
            np.unique(np.quantile(ok, np.linspace(0, 1, n_bins + 1)[1:-1]))
            if ok.size
            else np.array([], dtype="float64")
        )
        counts = _numeric_counts(v, edges)
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "shares": [float(c) for c in counts / max(v.size, 1)],
        }
    obj = s.astype(object)
    present = obj[obj.notna()]
    cats = [str(c) for c in pd.unique(present)]
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in s.cat.categories]
    counts = _categorical_counts(obj, cats)
    return {
        "kind": "categorical",
        "categories": cats,
        "shares": [float(c) for c in counts / max(len(obj), 1)],
    }


def psi_against(profile: dict, actual) -> float:
    """Return the PSI of ``actual`` against a :func:`reference_profile`."""
    a = pd.Series(actual)
    if a.size == 0:
        return float("nan")
    if profile["kind"] == "numeric":
        counts = _numeric_counts(
            a.to_numpy(dtype="float64"), np.asarray(profile["edges"], dtype="float64")
        )
    else:
        counts = _categorical_counts(a.astype(object), profile["categories"])
    e_share = np.maximum(np.asarray(profile["shares"], dtype="float64"), PSI_EMPTY_SHARE)
    a_share = np.maximum(counts / counts.sum(), PSI_EMPTY_SHARE)
    value = float(np.sum((a_share - e_share) * np.log(a_share / e_share)))
    return 0.0 if abs(value) < 1e-15 else value


def psi(expected, actual, n_bins: int = 10) -> float:
    """Return the population stability index of ``actual`` against ``expected``.

    Bins are cut at the quantiles of ``expected`` (see the module notes);
    non-numeric values are binned by category; missing values have their own
    bin.

    Examples
    --------
    >>> psi([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    0.0
    >>> round(psi(["a", "a", "b", "b"], ["a", "a", "a", "b"]), 6)
    0.274653
    """
    e = pd.Series(expected)
    if e.size == 0:
        return float("nan")
    return psi_against(reference_profile(e, n_bins), actual)


def _is_numeric(s: pd.Series) -> bool:
    return not isinstance(s.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(s.dtype)


def _numeric_counts(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.where(np.isnan(v), edges.size + 1, np.searchsorted(edges, v, side="right"))
    return np.bincount(idx, minlength=edges.size + 2).astype("float64")


def _categorical_counts(obj: pd.Series, categories: Sequence[str]) -> np.ndarray:
    missing = obj.isna().to_numpy()
    codes = pd.Index(list(categories)).get_indexer(obj.astype(str))
    codes = np.where(codes < 0, len(categories), codes)  # unseen values: "other"
    codes = np.where(missing, len(categories) + 1, codes)
    return np.bincount(codes, minlength=len(categories) + 2).astype("float64")


def psi_flag(value: float, moderate: float = 0.10, major: float = 0.25) -> str:
    """Return the PSI flag: ``stable``, ``moderate`` or ``major`` (``n/a`` when NaN).

    Examples
    --------
    >>> [psi_flag(v) for v in (0.05, 0.10, 0.3)]
    ['stable', 'moderate', 'major']
    """
    if value is None or math.isnan(value):
        return "n/a"
    if value >= major:
        return "major"
    if value >= moderate:
        return "moderate"
    return "stable"


def psi_table(
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    columns: Sequence[str],
    n_bins: int = 10,
    moderate: float = 0.10,
    major: float = 0.25,
) -> pd.DataFrame:
    """Return the PSI and flag of each column between two frames, largest shift first."""
    rows = []
    for col in columns:
        value = psi(expected[col], actual[col], n_bins)
        rows.append({"variable": col, "psi": value, "flag": psi_flag(value, moderate, major)})
    table = pd.DataFrame(rows, columns=["variable", "psi", "flag"])
    return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def drift_table(
    reference: Mapping[str, dict],
    frame: pd.DataFrame,
    moderate: float = 0.10,
    major: float = 0.25,
) -> pd.DataFrame:
    """Return the PSI and flag of every referenced variable present in ``frame``."""
    rows = []
    for name, profile in reference.items():
        if name not in frame.columns:
            continue
        value = psi_against(profile, frame[name])
        rows.append({"variable": name, "psi": value, "flag": psi_flag(value, moderate, major)})
    table = pd.DataFrame(rows, columns=["variable", "psi", "flag"])
    return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def time_separability(
    frame: pd.DataFrame,
    columns: Sequence[str],
    early: Sequence,
    late: Sequence,
    date_column: str = "as_of_date",
) -> pd.DataFrame:
    """Return how well each feature alone tells late months from early ones (adversarial validation).

    For every numeric column, the AUC of the feature as a score of "this row
    is from a late month" on the rows of ``early`` and ``late`` months, folded
    to ``separability = |2 AUC - 1|`` (0: the feature's distribution is the
    same early and late; 1: it tells the months apart on its own, as a count
    of time does). Missing values are left out; categorical columns are skipped.

    Examples
    --------
    >>> f = pd.DataFrame({"as_of_date": [1, 1, 2, 2], "age": [1.0, 2.0, 3.0, 4.0],
    ...                   "x": [1.0, 2.0, 2.0, 1.0]})
    >>> time_separability(f, ["age", "x"], [1], [2])[["feature", "separability"]].values.tolist()
    [['age', 1.0], ['x', 0.0]]
    """
    rows = frame[date_column].isin(list(early)) | frame[date_column].isin(list(late))
    sub = frame.loc[rows]
    is_late = sub[date_column].isin(list(late)).to_numpy(dtype="float64")
    out = []
    for col in columns:
        if not _is_numeric(sub[col]):
            continue
        v = sub[col].to_numpy(dtype="float64")
        ok = ~np.isnan(v)
        a = auc(is_late[ok], v[ok])
        out.append({"feature": col, "auc_late": a, "separability": abs(2.0 * a - 1.0)})
    table = pd.DataFrame(out, columns=["feature", "auc_late", "separability"])
    return table.sort_values("separability", ascending=False, kind="stable").reset_index(drop=True)
