"""Treatment-effect models: what each contact intensity or offer adds over the baseline.

:func:`fit_t_learner` fits one LightGBM regressor per treatment arm on
randomised data (each arm's outcome model ``mu_t(x) = E[Y | x, T = t]``); the
incremental effect of arm ``t`` is ``mu_t(x) - mu_baseline(x)``. Randomised
assignment (the control group and randomised plans) makes the arms
comparable, so the difference estimates the causal effect.

:func:`qini_curve` and :func:`qini_coefficient` evaluate it on held-out
randomised data: sort accounts by predicted effect and count the extra
outcome the treated collect over what the untreated of the same top share
collect, scaled to the treated count. A model that ranks well rises above the
straight line of a random order; the coefficient is the area between.

:func:`planted_randomised_data` draws randomised data with a known effect per
account, for tests and the demo. The fitted model saves as booster text and
JSON (:meth:`UpliftModel.to_dict`), never a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

#: Booster settings of each arm's outcome model (small: arms have few rows).
UPLIFT_PARAMS: dict[str, object] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
}
UPLIFT_ROUNDS = 200
#: Fewest randomised rows an arm needs to fit its outcome model.
MIN_ARM_ROWS = 50


@dataclass(frozen=True)
class UpliftModel:
    """One outcome booster per arm; the first arm is the baseline."""

    arms: tuple[str, ...]
    columns: tuple[str, ...]
    boosters: dict[str, lgb.Booster]

    def outcomes(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the expected outcome under every arm (columns named after the arms)."""
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"uplift model needs the columns {missing}, missing from the input")
        data = X[list(self.columns)]
        return pd.DataFrame(
            {arm: self.boosters[arm].predict(data, num_threads=2) for arm in self.arms},
            index=X.index,
        )

    def effects(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return each arm's expected outcome minus the baseline's (the baseline's column is 0)."""
        mu = self.outcomes(X)
        return mu.sub(mu[self.arms[0]], axis=0)

    def to_dict(self) -> dict:
        """Return a JSON-ready form: arms, columns and each booster's text."""
        return {
            "arms": list(self.arms),
            "columns": list(self.columns),
            "boosters": {arm: b.model_to_string() for arm, b in self.boosters.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> UpliftModel:
        """Rebuild a model from :meth:`to_dict` output."""
        return cls(
            arms=tuple(data["arms"]),
            columns=tuple(data["columns"]),
            boosters={a: lgb.Booster(model_str=t) for a, t in data["boosters"].items()},
        )


def fit_t_learner(
    X: pd.DataFrame,
    treatment: pd.Series | np.ndarray,
    outcome: pd.Series | np.ndarray,
    arms: tuple[str, ...],
    seed: int = 0,
    rounds: int = UPLIFT_ROUNDS,
) -> UpliftModel:
    """Fit one LightGBM outcome model per arm on randomised data (a T-learner).

    Parameters
    ----------
    X : pandas.DataFrame
        Features known before treatment (numeric or categorical columns).
    treatment : array-like
        The arm each row was randomised to; every value must be in ``arms``.
    outcome : array-like
        The outcome to explain (e.g. share of arrears recovered in the horizon).
    arms : tuple of str
        The arms, the baseline first.
    seed : int
        LightGBM seed.
    rounds : int
        Boosting rounds per arm.

    Returns
    -------
    UpliftModel

    Raises
    ------
    ValueError
        If a treatment is not an arm, an arm has fewer than 50 rows, or the
        outcome has missing values.
    """
    t = np.asarray(treatment, dtype=object)
    y = np.asarray(outcome, dtype=np.float64)
    unknown = sorted(set(pd.unique(t)) - set(arms))
    if unknown:
        raise ValueError(f"treatment values {unknown[:5]} are not among the arms {list(arms)}")
    if np.isnan(y).any():
        raise ValueError(f"outcome has {int(np.isnan(y).sum())} missing values; drop or fill them")
    params = {**UPLIFT_PARAMS, "seed": seed}
    boosters = {}
    for arm in arms:
        rows = t == arm
        if rows.sum() < MIN_ARM_ROWS:
            raise ValueError(
                f"arm {arm!r} has {int(rows.sum())} randomised rows; "
                f"at least {MIN_ARM_ROWS} are needed"
            )
        data = lgb.Dataset(X.loc[rows], label=y[rows], free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=rounds)
        boosters[arm] = lgb.Booster(model_str=booster.model_to_string())
    return UpliftModel(arms=tuple(arms), columns=tuple(X.columns), boosters=boosters)


def qini_curve(
    effect: np.ndarray, treated: np.ndarray, outcome: np.ndarray, points: int = 101
) -> pd.DataFrame:
    """Return the Qini curve of a predicted effect on randomised data.

    Parameters
    ----------
    effect : numpy.ndarray
        Predicted incremental outcome of the treatment, per row.
    treated : numpy.ndarray
        Bool per row: randomised to the treatment (else to the baseline).
    outcome : numpy.ndarray
        Observed outcome per row.
    points : int
        Number of points from 0 to 1 of the population, sorted by effect.

    Returns
    -------
    pandas.DataFrame
        ``share`` (of rows targeted, best first), ``qini`` (extra outcome of
        the treated in the top share over the untreated there, scaled to the
        treated count, per row of the population) and ``random`` (the same
        for a random order: a straight line).
    """
    effect = np.asarray(effect, dtype=np.float64)
    treated = np.asarray(treated, dtype=bool)
    outcome = np.asarray(outcome, dtype=np.float64)
    n = len(effect)
    order = np.argsort(-effect, kind="stable")
    t, y = treated[order], outcome[order]
    yt = np.cumsum(np.where(t, y, 0.0))
    yc = np.cumsum(np.where(t, 0.0, y))
    nt = np.cumsum(t)
    nc = np.cumsum(~t)
    gain = yt - np.divide(yc * nt, nc, out=np.zeros(n), where=nc > 0)
    cut = np.clip(np.round(np.linspace(0, 1, points) * n).astype(np.int64) - 1, -1, n - 1)
    qini = np.where(cut >= 0, gain[np.maximum(cut, 0)], 0.0) / max(n, 1)
    share = np.linspace(0, 1, points)
    return pd.DataFrame({"share": share, "qini": qini, "random": share * qini[-1]})


def qini_coefficient(curve: pd.DataFrame) -> float:
    """Return the area between a Qini curve and its random line (trapezoid rule)."""
    diff = (curve["qini"] - curve["random"]).to_numpy()
    x = curve["share"].to_numpy()
    return float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(x)))


def evaluate_uplift(
    model: UpliftModel,
    X: pd.DataFrame,
    treatment: np.ndarray,
    outcome: np.ndarray,
    effects: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Return per arm the Qini coefficient and the observed average effect, and the curves.

    Each non-baseline arm is compared with the baseline on the rows
    randomised to either. ``qini_coefficient`` above 0 means the model ranks
    accounts by effect better than chance. ``effects``: the model's
    :meth:`UpliftModel.effects` on ``X`` when the caller has them already.
    """
    t = np.asarray(treatment, dtype=object)
    y = np.asarray(outcome, dtype=np.float64)
    effects = model.effects(X) if effects is None else effects
    base = model.arms[0]
    rows, curves = [], {}
    for arm in model.arms[1:]:
        keep = (t == arm) | (t == base)
        curve = qini_curve(effects[arm].to_numpy()[keep], t[keep] == arm, y[keep])
        curves[arm] = curve
        rows.append(
            {
                "arm": arm,
                "rows": int(keep.sum()),
                "observed_effect": float(y[t == arm].mean() - y[t == base].mean()),
                "predicted_effect": float(effects[arm].to_numpy()[keep].mean()),
                "qini_coefficient": qini_coefficient(curve),
            }
        )
    return pd.DataFrame(rows), curves


def planted_randomised_data(
    n: int, seed: int, arms: tuple[str, ...] = ("none", "low", "medium", "high")
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """Draw randomised data whose true effect per account and arm is known.

    The baseline share of arrears recovered falls with ``dpd`` and rises with
    ``paid_ratio_180d``; contact helps most the debtors in the middle
    (``p_willingness`` near 0.5: persuadable), little the sure payers and the
    lost, with diminishing returns in intensity (arm ``j`` gets ``j / (j + 1)``
    of the full effect, scaled by ``0.3``).

    Returns
    -------
    (X, treatment, outcome, true_effect)
        Features, the randomised arm, the observed share recovered (with
        noise) and the true effect of every arm over the first.
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "p_willingness": rng.beta(2, 2, n),
            "dpd": rng.integers(1, 180, n).astype(np.float64),
            "paid_ratio_180d": rng.beta(2, 3, n),
            "noise": rng.normal(size=n),
        }
    )
    base = 0.5 * X["paid_ratio_180d"].to_numpy() * np.exp(-X["dpd"].to_numpy() / 120)
    persuadable = 4 * X["p_willingness"].to_numpy() * (1 - X["p_willingness"].to_numpy())
    steps = np.arange(len(arms))
    true = pd.DataFrame(
        {arm: 0.3 * persuadable * j / (j + 1) for arm, j in zip(arms, steps, strict=True)}
    )
    t_idx = rng.integers(0, len(arms), n)
    treatment = np.array(arms, dtype=object)[t_idx]
    mean = base + true.to_numpy()[np.arange(n), t_idx]
    outcome = np.clip(mean + rng.normal(0, 0.1, n), 0.0, 1.0)
    return X, treatment, outcome, true


__all__ = [
    "MIN_ARM_ROWS",
    "UpliftModel",
    "evaluate_uplift",
    "fit_t_learner",
    "planted_randomised_data",
    "qini_coefficient",
    "qini_curve",
]
