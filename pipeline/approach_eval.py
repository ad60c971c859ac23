"""How well the approach rules recover the simulator's debtor types (evaluation code only).

This module reads the simulator's ``truth`` (the latent debtor type); the
scorer and :mod:`pipeline.approach` never do. The simulator's ``good_payer``
has no collector type, so its right answer is ``unknown``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.approach import APPROACH_TYPES, classify_debtors

#: Simulator types that are not one of the seven collector types.
_NO_COLLECTOR_TYPE = {"good_payer": "unknown"}


def approach_confusion(features: pd.DataFrame, truth: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Return accuracy figures and the confusion matrix (true type x assigned type).

    Parameters
    ----------
    features : pandas.DataFrame
        Feature table of the scored accounts.
    truth : pandas.DataFrame
        The simulator's truth (``account_id``, ``debtor_type``; the type is
        fixed per debtor, so any month will do).

    Returns
    -------
    (dict, pandas.DataFrame)
        ``accounts``, ``accuracy`` (all accounts), ``accuracy_typed`` (the
        seven types only), ``majority_baseline`` (share of the commonest true
        class), and per type ``precision``/``recall``; the matrix has the true
        types as rows, the assigned types as columns, in
        :data:`pipeline.approach.APPROACH_TYPES` order.
    """
    types = truth.drop_duplicates("account_id").set_index("account_id")["debtor_type"]
    true = types.reindex(features["account_id"]).replace(_NO_COLLECTOR_TYPE).to_numpy(dtype=object)
    known = pd.notna(true)
    got = classify_debtors(features)["debtor_type"].to_numpy(dtype=object)
    true, got = true[known], got[known]
    matrix = pd.crosstab(
        pd.Categorical(true, APPROACH_TYPES), pd.Categorical(got, APPROACH_TYPES), dropna=False
    )
    matrix.index.name, matrix.columns.name = "true", "assigned"
    hits = np.diag(matrix.to_numpy())
    typed = true != "unknown"
    figures = {
        "accounts": int(len(true)),
        "accuracy": float((true == got).mean()) if len(true) else float("nan"),
        "accuracy_typed": float((true[typed] == got[typed]).mean())
        if typed.any()
        else float("nan"),
        "majority_baseline": float(pd.Series(true).value_counts(normalize=True).max()),
        "precision": dict(zip(APPROACH_TYPES, _ratio(hits, matrix.sum(axis=0)), strict=True)),
        "recall": dict(zip(APPROACH_TYPES, _ratio(hits, matrix.sum(axis=1)), strict=True)),
    }
    return figures, matrix


def _ratio(hits: np.ndarray, totals: pd.Series) -> list[float]:
    tot = totals.to_numpy(dtype=np.float64)
    return [round(float(h / t), 3) if t else float("nan") for h, t in zip(hits, tot, strict=True)]


def evaluate_approach_simulated(
    n_accounts: int, n_months: int, seeds: tuple[int, ...]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate one portfolio per seed, classify the accounts overdue at its end, compare.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        One row of figures per seed (accounts, accuracy, accuracy_typed,
        majority_baseline) and the confusion matrix summed over the seeds.
    """
    from features.build import build_features
    from pipeline.simulator import simulate_portfolio

    rows, total = [], None
    for seed in seeds:
        portfolio = simulate_portfolio(n_accounts, n_months, seed, "2024-01-01")
        as_of = (pd.Timestamp("2024-01-01") + pd.DateOffset(months=n_months)).normalize()
        feats = build_features(portfolio.tables, as_of, overdue_only=True)
        figures, matrix = approach_confusion(feats, portfolio.truth)
        rows.append({"seed": seed, **{k: v for k, v in figures.items() if not isinstance(v, dict)}})
        total = matrix if total is None else total + matrix
    return pd.DataFrame(rows), total


def format_approach(per_seed: pd.DataFrame, matrix: pd.DataFrame) -> str:
    """Return the figures and the confusion matrix as printable text."""
    acc = per_seed["accuracy"]
    lines = [
        f"approach per debtor: accuracy {acc.mean():.3f} (min {acc.min():.3f}, max "
        f"{acc.max():.3f}) over {len(per_seed)} portfolios; seven types only "
        f"{per_seed['accuracy_typed'].mean():.3f}; majority-class baseline "
        f"{per_seed['majority_baseline'].mean():.3f}",
        "confusion matrix (rows true type, columns assigned):",
        matrix.to_string(),
    ]
    return "\n".join(lines)


__all__ = ["approach_confusion", "evaluate_approach_simulated", "format_approach"]
