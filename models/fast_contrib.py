"""LightGBM's own SHAP contributions, computed once per distinct decision pattern.

LightGBM's ``predict(pred_contrib=True)`` runs TreeSHAP for every row and
every tree: about 2 microseconds per row and tree here, i.e. minutes for a
million accounts and two heads. But within one tree, a row's contributions
depend on the row only through the side it takes at each split of that
tree: which interval between the tree's thresholds each numeric feature
falls into (with missing and zero values kept apart, since LightGBM may send
them a default way), and the category of each categorical feature. Rows
with the same pattern get identical contributions from that tree.

So, tree by tree, rows are grouped by their pattern, LightGBM computes the
contributions of one representative row per group (``start_iteration=t,
num_iteration=1``), and the result is gathered back to every row. The sum
over trees is LightGBM's own ``pred_contrib`` (a test checks equality to
1e-9 on data with missing values, zeros, ties at thresholds and categories).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class _TreeSplits:
    """Features a tree splits on: numeric thresholds (sorted) and categorical features."""

    numeric: tuple[tuple[int, np.ndarray], ...]
    categorical: tuple[int, ...]

    @property
    def used(self) -> np.ndarray:
        return np.array(
            sorted({f for f, _ in self.numeric} | set(self.categorical)), dtype=np.int64
        )


def tree_splits(booster: lgb.Booster) -> list[_TreeSplits]:
    """Return, per tree, the features it splits on with their thresholds."""
    out = []
    for tree in booster.dump_model()["tree_info"]:
        numeric: dict[int, set[float]] = {}
        categorical: set[int] = set()
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node:
                continue
            f = int(node["split_feature"])
            if node.get("decision_type") == "==":
                categorical.add(f)
            else:
                numeric.setdefault(f, set()).add(float(node["threshold"]))
            stack.append(node["left_child"])
            stack.append(node["right_child"])
        out.append(
            _TreeSplits(
                numeric=tuple(
                    (f, np.array(sorted(th), dtype=np.float64)) for f, th in sorted(numeric.items())
                ),
                categorical=tuple(sorted(categorical)),
            )
        )
    return out


def _pattern_codes(columns: np.ndarray, splits: _TreeSplits) -> np.ndarray:
    """Return one integer per row that is equal exactly when the rows split alike.

    ``columns`` is the feature matrix transposed (features x rows, C order), so
    that each feature's values are contiguous.
    """
    codes = np.zeros(columns.shape[1], dtype=np.int64)
    for f, thresholds in splits.numeric:
        x = columns[f]
        # LightGBM sends x left when x <= threshold: the count of thresholds < x.
        code = np.searchsorted(thresholds, x, side="left")
        code = np.where(np.isnan(x), len(thresholds) + 1, code)
        code = np.where(x == 0, len(thresholds) + 2, code)
        codes *= len(thresholds) + 3
        codes += code
    for f in splits.categorical:
        # Equal values split alike whatever LightGBM makes of them (negative or
        # fractional codes, NaN): group by the exact value.
        code, uniques = pd.factorize(columns[f], use_na_sentinel=True)
        codes *= len(uniques) + 1
        codes += code.astype(np.int64) + 1
    return codes


def pred_contrib(
    booster: lgb.Booster,
    X: np.ndarray,
    num_threads: int = 0,
    splits: list[_TreeSplits] | None = None,
) -> np.ndarray:
    """Return ``booster.predict(X, pred_contrib=True)``, computed per distinct split pattern.

    Parameters
    ----------
    booster : lightgbm.Booster
        A binary model (one output per row).
    X : numpy.ndarray
        float64 matrix in the booster's feature order, categorical features as
        their integer codes and missing as NaN (what LightGBM itself sees).
    num_threads : int
        Threads for LightGBM (0: its default).
    splits : list, optional
        The output of :func:`tree_splits` for this booster (cached by callers).

    Returns
    -------
    numpy.ndarray
        rows x (features + 1); the last column is the expected value (bias).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, n_features = X.shape
    if n == 0:
        return np.zeros((0, n_features + 1), dtype=np.float64)
    splits = splits if splits is not None else tree_splits(booster)
    kwargs = {"num_threads": num_threads} if num_threads else {}
    columns = np.ascontiguousarray(X.T)
    # Accumulate feature by feature in rows of the transposed result (contiguous writes).
    out_t = np.zeros((n_features + 1, n), dtype=np.float64)
    bias = 0.0
    for t, tree in enumerate(splits):
        codes = _pattern_codes(columns, tree)
        inverse, uniques = pd.factorize(codes)
        first = np.empty(len(uniques), dtype=np.int64)
        first[inverse[::-1]] = np.arange(n - 1, -1, -1)
        phi = np.asarray(
            booster.predict(
                X[first], pred_contrib=True, start_iteration=t, num_iteration=1, **kwargs
            )
        )
        for f in tree.used:
            out_t[f] += phi[:, f].take(inverse)
        bias += phi[0, -1]
    out_t[-1] = bias
    return np.ascontiguousarray(out_t.T)


def lightgbm_matrix(X: pd.DataFrame) -> np.ndarray:
    """Return the float64 matrix LightGBM sees for a design matrix (categories as codes).

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1.5, None], "c": pd.Categorical(["y", None], categories=["x", "y"])})
    >>> lightgbm_matrix(df).tolist()
    [[1.5, 1.0], [nan, nan]]
    """
    cols = []
    for name in X.columns:
        s = X[name]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            cols.append(codes)
        else:
            cols.append(s.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(cols) if cols else np.empty((len(X), 0))
