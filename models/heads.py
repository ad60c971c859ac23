"""The two LightGBM heads and their calibrators.

* willingness: ``paid_any`` on every overdue snapshot ("will this debtor pay?");
* ability: full coverage (``coverage >= threshold``) on the snapshots that
  paid ("can a paying debtor cover the whole arrears?").

Each head is a LightGBM binary booster with the spec's monotone constraints
and fixed category lists, early-stopped on the validation months, then
calibrated on the same months by an isotonic or Platt step saved as plain
numbers (JSON), so a reviewer can read the mapping from score to probability.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from models.config import LightGBMConfig
from models.spec import FeatureSpec

log = logging.getLogger(__name__)

HEADS: tuple[str, ...] = ("willingness", "ability")
#: LightGBM objectives a head may use and the validation metric each one stops on.
OBJECTIVE_METRICS: dict[str, str] = {"binary": "binary_logloss", "cross_entropy": "cross_entropy"}
#: Calibrated probabilities are kept inside [PROB_CLIP, 1 - PROB_CLIP]: an
#: isotonic step can reach exactly 0 or 1, which no debtor deserves.
PROB_CLIP: float = 1e-6


def design_matrix(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Return the feature matrix the boosters see: spec columns, order and categories.

    Numeric columns become float64; categorical columns become pandas
    Categorical with the spec's fixed category list, so LightGBM's integer
    codes are the same at training and scoring. A value outside the list
    becomes missing (and is logged).

    Parameters
    ----------
    frame : DataFrame
        Holds at least the spec's columns (other columns are ignored).
    spec : FeatureSpec

    Returns
    -------
    DataFrame
        Same index as ``frame``, columns exactly ``spec.columns``.

    Raises
    ------
    KeyError
        When a spec column is missing; the message lists them.

    Examples
    --------
    >>> spec = FeatureSpec(columns=("dpd", "product"), categorical={"product": ("a", "b")})
    >>> X = design_matrix(pd.DataFrame({"product": ["b", "z"], "dpd": [3, 40]}), spec)
    >>> X["product"].cat.codes.tolist(), X["dpd"].dtype.name
    ([1, -1], 'float64')
    """
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"feature frame lacks {len(missing)} model column(s): {missing[:10]}; "
            f"the model expects the columns of feature code {spec.code_version}"
        )
    out = {}
    for col in spec.columns:
        values = frame[col]
        if col in spec.categorical:
            cats = list(spec.categorical[col])
            if (
                isinstance(values.dtype, pd.CategoricalDtype)
                and list(values.cat.categories) == cats
            ):
                out[col] = values
                continue
            as_obj = values.astype(object).where(values.notna(), None)
            cat = pd.Categorical(as_obj, categories=cats)
            unknown = int(((cat.codes == -1) & values.notna().to_numpy()).sum())
            if unknown:
                log.warning(
                    "%s: %d value(s) outside the fixed categories, set missing", col, unknown
                )
            out[col] = pd.Series(cat, index=frame.index)
        else:
            out[col] = pd.to_numeric(values, errors="raise").astype("float64")
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from a booster's raw probability to a calibrated one.

    ``isotonic``: piecewise-linear interpolation through the knots
    ``x`` -> ``y`` of a centred isotonic regression (flat beyond the ends). ``platt``:
    ``sigmoid(a * logit(raw) + b)``. ``identity``: no change. Then, when
    ``shift`` is not 0, the level is moved on the log-odds scale,
    ``sigmoid(logit(p) + shift)``: the shape comes from all the calibration
    months, the level from the most recent ones (see :func:`fit_level_shift`).
    """

    method: str
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    shift: float = 0.0

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw booster probabilities.

        Examples
        --------
        >>> Calibrator("isotonic", x=(0.2, 0.6), y=(0.1, 0.5)).transform(np.array([0.0, 0.4, 1.0]))
        array([0.1, 0.3, 0.5])
        >>> Calibrator("identity", shift=np.log(3)).transform(np.array([0.5])).round(6)
        array([0.75])
        """
        raw = np.asarray(raw, dtype="float64")
        if self.method == "isotonic":
            out = np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        elif self.method == "platt":
            z = _logit(raw)
            out = 1.0 / (1.0 + np.exp(-(self.a * z + self.b)))
        elif self.method == "identity":
            out = raw
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        if self.shift:
            out = _shifted(out, self.shift)
        return np.clip(out, PROB_CLIP, 1.0 - PROB_CLIP)

    def with_shift(self, shift: float) -> Calibrator:
        """Return a copy whose level shift is ``shift`` (the mapping's shape unchanged)."""
        return replace(self, shift=float(shift))

    def to_dict(self) -> dict[str, Any]:
        """Return the calibrator as JSON-ready numbers."""
        if self.method == "isotonic":
            out: dict[str, Any] = {"method": "isotonic", "x": list(self.x), "y": list(self.y)}
        elif self.method == "platt":
            out = {"method": "platt", "a": self.a, "b": self.b}
        else:
            out = {"method": self.method}
        if self.shift:
            out["shift"] = self.shift
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild a calibrator from :meth:`to_dict` output."""
        return cls(
            method=data["method"],
            x=tuple(float(v) for v in data.get("x", ())),
            y=tuple(float(v) for v in data.get("y", ())),
            a=float(data.get("a", 1.0)),
            b=float(data.get("b", 0.0)),
            shift=float(data.get("shift", 0.0)),
        )


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str = "isotonic") -> Calibrator:
    """Fit an isotonic or Platt calibrator of raw probabilities on held-out labels.

    Parameters
    ----------
    raw : ndarray
        The booster's raw probabilities on the validation months.
    y : ndarray
        0/1 labels of the same rows.
    method : {"isotonic", "platt"}

    Returns
    -------
    Calibrator
    """
    raw = np.asarray(raw, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if len(np.unique(y)) < 2:
        log.warning("calibration set has one class only: calibration left as identity")
        return Calibrator("identity")
    if method == "isotonic":
        x, fitted = _centered_isotonic(raw, y)
        return Calibrator("isotonic", x=tuple(map(float, x)), y=tuple(map(float, fitted)))
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw).reshape(-1, 1), y)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"unknown calibration method {method!r}: expected 'isotonic' or 'platt'")


def _centered_isotonic(raw: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit isotonic regression and return its knots at the centre of each constant block.

    Plain isotonic regression is a step function: every row of a block gets
    the same probability, so ranking ties appear and the AUC drops a little.
    Interpolating linearly between block centres (centred isotonic
    regression) keeps the fitted level of every block, stays monotone, and
    is strictly increasing between the outer centres, so the calibrated
    score ranks rows exactly as the booster does. Below the first and above
    the last centre the map is flat.
    """
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
    xs = np.sort(raw, kind="stable")
    fitted = iso.predict(xs)
    starts = np.r_[0, np.flatnonzero(np.diff(fitted) != 0) + 1]
    counts = np.diff(np.r_[starts, xs.size])
    centres = np.add.reduceat(xs, starts) / counts
    levels = fitted[starts]
    knots_x = np.r_[xs[0], centres, xs[-1]]
    knots_y = np.r_[levels[0], levels, levels[-1]]
    knots_x, first = np.unique(knots_x, return_index=True)
    return knots_x, knots_y[first]


def fit_level_shift(p: np.ndarray, y: np.ndarray, bound: float = 4.0, z: float = 0.0) -> float:
    """Return the log-odds shift that makes the mean calibrated probability equal the observed rate.

    Solves ``mean(sigmoid(logit(p) + s)) = mean(y)`` for ``s`` (the mean is
    increasing in ``s``, so the root is unique), kept within ``[-bound,
    bound]``. ``y`` may be 0/1 labels or shares in [0, 1].

    With ``z > 0`` the shift is shrunk towards 0 by ``z`` standard errors of
    the observed rate on the log-odds scale (``1 / sqrt(n r (1 - r))``) and
    is 0 when smaller: one month of a small book moves by chance, and the
    level should only follow what the month shows beyond that noise.

    Examples
    --------
    >>> p = np.array([0.2, 0.4, 0.6, 0.8])
    >>> s = fit_level_shift(p, np.array([0.0, 1.0, 1.0, 1.0]))
    >>> round(float(_shifted(p, s).mean()), 6)
    0.75
    """
    p = np.asarray(p, dtype="float64")
    target = float(np.mean(np.asarray(y, dtype="float64"))) if len(p) else float("nan")
    if not len(p) or not 0.0 < target < 1.0:
        return 0.0
    lo, hi = -bound, bound
    for _ in range(60):  # bisection: 60 halvings of 8 log-odds reach 1e-17
        mid = 0.5 * (lo + hi)
        if _shifted(p, mid).mean() < target:
            lo = mid
        else:
            hi = mid
    shift = 0.5 * (lo + hi)
    noise = z / np.sqrt(len(p) * target * (1.0 - target))
    return float(np.sign(shift) * max(abs(shift) - noise, 0.0))


def _shifted(p: np.ndarray, shift: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(_logit(p) + shift)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


@dataclass
class TrainedHead:
    """One fitted head: its booster, calibrator and training figures."""

    name: str
    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int
    evals: dict[str, list[float]] = field(default_factory=dict)

    def predict_raw(self, X: pd.DataFrame, num_threads: int | None = None) -> np.ndarray:
        """Return the booster's uncalibrated probabilities."""
        kwargs = {"num_threads": num_threads} if num_threads else {}
        return self.booster.predict(X, **kwargs)

    def predict(self, X: pd.DataFrame, num_threads: int | None = None) -> np.ndarray:
        """Return calibrated probabilities."""
        return self.calibrator.transform(self.predict_raw(X, num_threads))


def fit_booster(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    params: LightGBMConfig,
    spec: FeatureSpec,
    head: str,
    objective: str = "binary",
) -> tuple[lgb.Booster, int, dict[str, list[float]]]:
    """Train one LightGBM booster with early stopping on validation.

    The returned booster is rebuilt from its own text truncated at the best
    iteration, so the in-memory model is exactly what ``save_model`` writes.
    ``objective`` is ``binary`` (0/1 targets) or ``cross_entropy`` (targets
    anywhere in [0, 1], e.g. the share of the arrears paid); both predict a
    number in [0, 1].

    Returns
    -------
    booster : lightgbm.Booster
    best_iteration : int
    evals : dict
        Validation loss per round (``{"validation": [...]}``).
    """
    booster_params = params.booster_params()
    metric = OBJECTIVE_METRICS[objective]
    booster_params.update(objective=objective, metric=metric)
    booster_params["monotone_constraints"] = spec.monotone_vector(head)
    categorical = [c for c in spec.columns if c in spec.categorical]
    dtrain = lgb.Dataset(
        X_train,
        label=np.asarray(y_train, dtype="float64"),
        categorical_feature=categorical or "auto",
        free_raw_data=True,
    )
    dval = lgb.Dataset(
        X_val,
        label=np.asarray(y_val, dtype="float64"),
        reference=dtrain,
        categorical_feature=categorical or "auto",
    )
    record: dict[str, Any] = {}
    booster = lgb.train(
        booster_params,
        dtrain,
        num_boost_round=params.n_estimators,
        valid_sets=[dval],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.record_evaluation(record),
        ],
    )
    best = int(booster.best_iteration) or booster.current_iteration()
    text = booster.model_to_string(num_iteration=best)
    evals = {"validation": [float(v) for v in record["validation"][metric]]}
    return lgb.Booster(model_str=text), best, evals


def train_head(
    name: str,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    params: LightGBMConfig,
    spec: FeatureSpec,
    calibration: str = "isotonic",
    *,
    recent: np.ndarray | None = None,
    y_calibrate: np.ndarray | None = None,
    objective: str = "binary",
    shift_z: float = 2.0,
) -> TrainedHead:
    """Train and calibrate one head (booster on train, early stopping and calibration on validation).

    Parameters
    ----------
    name : {"willingness", "ability"}
        The head, which picks its monotone constraints from the spec.
    X_train, X_val : DataFrame
        Design matrices (:func:`design_matrix`).
    y_train, y_val : ndarray
        Targets: 0/1, or shares in [0, 1] with ``objective="cross_entropy"``.
    params : LightGBMConfig
    spec : FeatureSpec
    calibration : {"isotonic", "platt"}
    recent : ndarray of bool, optional
        The validation rows of the most recent months: the calibrator's level
        is re-anchored on them (:func:`fit_level_shift`), its shape fitted on
        every validation row. None: no shift.
    shift_z : float
        Standard errors of noise the shift must exceed (see :func:`fit_level_shift`).
    y_calibrate : ndarray, optional
        0/1 labels the calibrator maps to (default ``y_val``), e.g. full
        coverage when the booster learned the coverage share.
    objective : {"binary", "cross_entropy"}

    Returns
    -------
    TrainedHead
    """
    y_cal = np.asarray(y_val if y_calibrate is None else y_calibrate)
    for split, y in (("train", y_train), ("validation", y_val), ("validation", y_cal)):
        classes = np.unique(np.asarray(y))
        if len(classes) < 2:
            raise ValueError(
                f"{name} head: the {split} rows have one class only ({classes.tolist()[:5]}); "
                f"widen the training window"
            )
    booster, best, evals = fit_booster(
        X_train, y_train, X_val, y_val, params, spec, name, objective
    )
    raw_val = booster.predict(X_val, num_threads=params.num_threads)
    calibrator = fit_calibrator(raw_val, y_cal, calibration)
    if recent is not None and np.any(recent):
        recent = np.asarray(recent, dtype=bool)
        shift = fit_level_shift(calibrator.transform(raw_val[recent]), y_cal[recent], z=shift_z)
        calibrator = calibrator.with_shift(shift)
    return TrainedHead(
        name=name, booster=booster, calibrator=calibrator, best_iteration=best, evals=evals
    )


def ability_target(coverage: pd.Series | np.ndarray, threshold: float = 0.999) -> np.ndarray:
    """Return the ability head's 0/1 target: full coverage of the arrears.

    Examples
    --------
    >>> ability_target(np.array([1.0, 0.9995, 0.5]), 0.999).tolist()
    [1, 1, 0]
    """
    return (np.asarray(coverage, dtype="float64") >= threshold).astype("int64")
