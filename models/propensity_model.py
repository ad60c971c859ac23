"""The model that scores accounts: both heads, their calibrators, the feature spec.

``PropensityModel.predict`` returns, for every row of a feature frame, the
calibrated ``p_willingness`` and ``p_ability``, the ``expected_share`` of the
arrears a paying debtor covers (E[coverage | pay], an isotonic map of the
ability score fitted on the validation months, so that expected recovery =
arrears x p_willingness x expected_share) and readable reason codes.

Reason codes
------------
For each head, the three features with the largest *absolute* SHAP
contribution to that row's log-odds (LightGBM's own ``pred_contrib``; the
calibrators are monotone, so a contribution that raises the log-odds raises
the calibrated probability too), in decreasing order, each rendered by the
feature catalogue's ``reason_text(feature, value)`` and followed by
``(raises)`` or ``(lowers)``: the direction in which it moved this
account's probability against the average account. Features with a zero
contribution are never listed. Example::

    no payment for 74 days (lowers); 3 broken promises in the last 90 days (lowers); ...

Rendering is vectorised: the top three are picked with one ``argsort`` over
the contribution matrix, and ``reason_text`` is called once per distinct
(feature, value) among the chosen cells, not once per row.

Saved form (``save``/``load``): a folder with ``willingness.txt`` and
``ability.txt`` (LightGBM text models), ``calibrators.json`` (isotonic
thresholds or Platt coefficients), ``spec.json`` (columns, category lists,
monotone directions, descriptions, feature code version), ``baselines.json``
(the DPD rule and scorecard, used by the promotion gate), ``reference.json``
(the training distribution of every feature and score, binned, for drift
monitoring) and ``metadata.json``. No pickle: every file is readable text.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.baselines import DpdBucketRule, WoeScorecard, baseline_from_dict
from models.fast_contrib import lightgbm_matrix, pred_contrib, tree_splits
from models.heads import HEADS, Calibrator, design_matrix
from models.spec import (
    FeatureSpec,
    ReasonText,
    default_reason_text,
    fallback_reason_text,
)
from models.stability import drift_table

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
OUTPUT_COLUMNS: tuple[str, ...] = (
    "p_willingness",
    "p_ability",
    "expected_share",
    "reason_codes_willingness",
    "reason_codes_ability",
    "reason_codes",
)
#: Reason text when no feature moves a row's score away from the average.
NO_REASON = "no single feature stands out (score close to the portfolio average)"
#: Rows scored per chunk: bounds the memory of the contribution matrices.
CHUNK_ROWS = 200_000


@dataclass
class PropensityModel:
    """Both heads, their calibrators and the feature spec, scoring as one model.

    Parameters
    ----------
    boosters : dict
        ``{"willingness": Booster, "ability": Booster}``.
    calibrators : dict
        ``{"willingness": Calibrator, "ability": Calibrator, "share": Calibrator}``;
        ``share`` maps the raw ability score to E[coverage | pay].
    spec : FeatureSpec
    baselines : dict, optional
        ``{head: {"dpd_rule": DpdBucketRule, "scorecard": WoeScorecard}}``
        fitted on the same training months (the promotion gate scores them).
    metadata : dict, optional
        Free JSON-ready facts (training window, best iterations, config).
    reference : dict, optional
        Variable -> binned training distribution
        (:func:`models.stability.reference_profile`), for drift.
    reason_text : callable, optional
        ``reason_text(feature, value) -> str``; by default the feature
        catalogue's, else "<description>: <value>".
    num_threads : int
        Threads LightGBM uses to predict.
    version : str, optional
        Registered version, set when loaded from the registry.
    """

    boosters: dict[str, lgb.Booster]
    calibrators: dict[str, Calibrator]
    spec: FeatureSpec
    baselines: dict[str, dict[str, DpdBucketRule | WoeScorecard]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, dict] = field(default_factory=dict)
    reason_text: ReasonText | None = None
    num_threads: int = 2
    version: str | None = None
    _tree_splits: dict[str, list] = field(default_factory=dict, repr=False, compare=False)

    # ----------------------------------------------------------- prediction

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return calibrated ``p_willingness`` and ``p_ability`` (no reason codes; fast).

        Parameters
        ----------
        frame : DataFrame
            Holds the spec's feature columns (others are ignored).

        Returns
        -------
        DataFrame
            Same index as ``frame``.
        """
        X = design_matrix(frame, self.spec)
        return pd.DataFrame(self._probabilities(X), index=frame.index)

    def _probabilities(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        raw = {head: self._raw(head, X) for head in HEADS}
        out = {f"p_{head}": self.calibrators[head].transform(raw[head]) for head in HEADS}
        share = self.calibrators.get("share")
        out["expected_share"] = (
            share.transform(raw["ability"]) if share is not None else out["p_ability"]
        )
        return out

    def predict(
        self, frame: pd.DataFrame, n_reasons: int = 3, progress: bool = False
    ) -> pd.DataFrame:
        """Return both calibrated probabilities and the reason codes of every row.

        Parameters
        ----------
        frame : DataFrame
            Holds the spec's feature columns (others are ignored).
        n_reasons : int
            Reason codes per head.
        progress : bool
            Show a progress bar over chunks of rows.

        Returns
        -------
        DataFrame
            Same index as ``frame``; columns ``p_willingness``, ``p_ability``,
            ``reason_codes_willingness``, ``reason_codes_ability`` and
            ``reason_codes`` ("willingness: ... | ability: ...").
        """
        X = design_matrix(frame, self.spec)
        starts = range(0, max(len(X), 1), CHUNK_ROWS)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="scoring", unit="chunk")
        parts = [self._predict_chunk(X.iloc[s : s + CHUNK_ROWS], n_reasons) for s in starts]
        out = pd.concat(parts) if len(parts) > 1 else parts[0]
        out.index = frame.index
        return out

    def _predict_chunk(self, X: pd.DataFrame, n_reasons: int) -> pd.DataFrame:
        # Probabilities come from predict(), not from the contributions' sum,
        # so that scores never depend on whether reasons were asked for.
        out: dict[str, Any] = self._probabilities(X)
        for head in HEADS:
            contrib = self.contributions(head, X)
            out[f"reason_codes_{head}"] = self._render_reasons(X, contrib[:, :-1], n_reasons)
        out["reason_codes"] = (
            "willingness: "
            + out["reason_codes_willingness"]
            + " | ability: "
            + out["reason_codes_ability"]
        )
        return pd.DataFrame(out, index=X.index, columns=list(OUTPUT_COLUMNS))

    def _raw(self, head: str, X: pd.DataFrame) -> np.ndarray:
        if len(X) == 0:
            return np.empty(0, dtype="float64")
        return self.boosters[head].predict(X, num_threads=self.num_threads)

    def contributions(self, head: str, frame: pd.DataFrame) -> np.ndarray:
        """Return the SHAP contributions (log-odds) of a head: rows x (features + bias)."""
        X = (
            frame
            if list(frame.columns) == list(self.spec.columns)
            else design_matrix(frame, self.spec)
        )
        if len(X) == 0:
            return np.empty((0, len(self.spec.columns) + 1), dtype="float64")
        # LightGBM's own TreeSHAP, run once per distinct split pattern of each tree
        # (identical to predict(pred_contrib=True); see models.fast_contrib).
        splits = self._tree_splits.get(head)
        if splits is None:
            splits = self._tree_splits[head] = tree_splits(self.boosters[head])
        return pred_contrib(
            self.boosters[head], lightgbm_matrix(X), num_threads=self.num_threads, splits=splits
        )

    def _render_reasons(self, X: pd.DataFrame, contrib: np.ndarray, n_reasons: int) -> np.ndarray:
        return reason_codes(contrib, X, self._renderer(), n_reasons)

    def _renderer(self) -> ReasonText:
        primary = self.reason_text or default_reason_text()
        fallback = fallback_reason_text(self.spec)
        if primary is None:
            return fallback
        warned: set[str] = set()

        def render(feature: str, value: Any) -> str:
            try:
                return str(primary(feature, value))
            except KeyError:  # a feature the catalogue does not know (older spec)
                return fallback(feature, value)
            except Exception as exc:  # a reason text must never stop scoring
                if feature not in warned:
                    warned.add(feature)
                    log.warning("reason_text failed for %s (%s); using fallback", feature, exc)
                return fallback(feature, value)

        return render

    # ---------------------------------------------------------- persistence

    def save(self, path: str | Path) -> Path:
        """Write the model as readable files into folder ``path`` (created if needed).

        Returns
        -------
        Path
            The folder.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for head in HEADS:
            (folder / f"{head}.txt").write_text(
                self.boosters[head].model_to_string(), encoding="utf-8"
            )
        _write_json(
            folder / "calibrators.json", {h: c.to_dict() for h, c in self.calibrators.items()}
        )
        _write_json(folder / "spec.json", self.spec.to_dict())
        _write_json(
            folder / "baselines.json",
            {h: {k: b.to_dict() for k, b in d.items()} for h, d in self.baselines.items()},
        )
        _write_json(folder / "reference.json", self.reference)
        meta = {**self.metadata, "format_version": FORMAT_VERSION, "num_threads": self.num_threads}
        _write_json(folder / "metadata.json", meta)
        return folder

    @classmethod
    def load(cls, path: str | Path, reason_text: ReasonText | None = None) -> PropensityModel:
        """Read a model written by :meth:`save`."""
        folder = Path(path)
        if not (folder / "spec.json").exists():
            raise FileNotFoundError(f"{folder} holds no saved PropensityModel (no spec.json)")
        boosters = {
            head: lgb.Booster(model_str=(folder / f"{head}.txt").read_text(encoding="utf-8"))
            for head in HEADS
        }
        calibrators = {
            h: Calibrator.from_dict(d) for h, d in _read_json(folder / "calibrators.json").items()
        }
        spec = FeatureSpec.from_dict(_read_json(folder / "spec.json"))
        baselines_path = folder / "baselines.json"
        baselines = (
            {
                h: {k: baseline_from_dict(v) for k, v in d.items()}
                for h, d in _read_json(baselines_path).items()
            }
            if baselines_path.exists()
            else {}
        )
        reference_path = folder / "reference.json"
        reference = _read_json(reference_path) if reference_path.exists() else {}
        meta = _read_json(folder / "metadata.json")
        version = meta.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{folder} was saved in model format {version}, newer than this code reads "
                f"({FORMAT_VERSION}): upgrade the package"
            )
        return cls(
            boosters=boosters,
            calibrators=calibrators,
            spec=spec,
            baselines=baselines,
            metadata=meta,
            reference=reference,
            reason_text=reason_text,
            num_threads=int(meta.get("num_threads", 2)),
        )

    # -------------------------------------------------------------- helpers

    def feature_importance(self, head: str) -> pd.DataFrame:
        """Return the gain and split count of every feature of a head, by gain."""
        booster = self.boosters[head]
        table = pd.DataFrame(
            {
                "feature": booster.feature_name(),
                "gain": booster.feature_importance("gain"),
                "splits": booster.feature_importance("split"),
            }
        )
        return table.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)

    def drift(
        self, frame: pd.DataFrame, moderate: float = 0.10, major: float = 0.25
    ) -> pd.DataFrame:
        """Return the PSI of every feature and score in ``frame`` against the training reference.

        Parameters
        ----------
        frame : DataFrame
            Features and, optionally, the score columns (``p_willingness``,
            ``p_ability``, ``expected_share``) of a scoring run.

        Returns
        -------
        DataFrame
            ``variable``, ``psi``, ``flag``, largest shift first.
        """
        return drift_table(self.reference, frame, moderate, major)

    def signature_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the spec columns of ``frame`` with categoricals as plain strings.

        This is the portable input form (MLflow signatures and input examples
        have no categorical type); :meth:`predict` restores the categories.
        """
        X = design_matrix(frame, self.spec)
        for col in self.spec.categorical:
            X[col] = X[col].astype(object).where(X[col].notna(), None)
        return X


def reason_codes(
    contrib: np.ndarray,
    X: pd.DataFrame,
    renderer: Callable[[str, Any], str],
    n_reasons: int = 3,
) -> np.ndarray:
    """Return each row's reason codes: its top features by absolute contribution.

    Parameters
    ----------
    contrib : ndarray
        SHAP contributions, rows x features (no bias column), in the order of
        ``X.columns``.
    X : DataFrame
        The feature values of the same rows.
    renderer : callable
        ``renderer(feature, value) -> str``.
    n_reasons : int
        Codes per row; features with a zero contribution are skipped.

    Returns
    -------
    ndarray of str
        ``"<text> (raises); <text> (lowers); ..."`` per row, largest first.

    Examples
    --------
    >>> X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    >>> reason_codes(np.array([[0.2, -0.5], [0.0, 0.1]]), X, lambda f, v: f"{f}={v:g}").tolist()
    ['b=3 (lowers); a=1 (raises)', 'b=4 (raises)']
    """
    n_rows, n_feat = contrib.shape
    result = np.full(n_rows, "", dtype=object)
    if n_rows == 0 or n_feat == 0:
        return result
    m = min(n_reasons, n_feat)
    # The m largest |contribution| per row (argpartition: linear, not a full sort),
    # then ordered by size with ties in column order, so codes are reproducible.
    magnitude = np.abs(contrib)
    if m < n_feat:
        cand = np.sort(np.argpartition(-magnitude, m - 1, axis=1)[:, :m], axis=1)
    else:
        cand = np.broadcast_to(np.arange(n_feat), (n_rows, n_feat))
    order = np.argsort(-np.take_along_axis(magnitude, cand, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(cand, order, axis=1)
    top_c = np.take_along_axis(contrib, top, axis=1)
    active = top_c != 0
    texts = np.full((n_rows, m), "", dtype=object)
    for j in np.unique(top[active]):
        rows, ranks = np.nonzero(active & (top == j))
        words = _render_values(renderer, X.columns[j], X.iloc[rows, j])
        arrows = np.where(top_c[rows, ranks] > 0, " (raises)", " (lowers)").astype(object)
        texts[rows, ranks] = words + arrows
    result = texts[:, 0]
    for r in range(1, m):
        sep = np.where((result != "") & (texts[:, r] != ""), "; ", "").astype(object)
        result = result + sep + texts[:, r]
    # A row no feature moves (e.g. a model with a single leaf) still gets words.
    result[result == ""] = NO_REASON
    return result


def _render_values(
    renderer: Callable[[str, Any], str], feature: str, values: pd.Series
) -> np.ndarray:
    """Render each distinct value once and map the texts back to the rows."""
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
        codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
        texts = [renderer(feature, v) for v in uniques]
        if (codes < 0).any():
            texts.append(renderer(feature, None))
        return np.asarray(texts, dtype=object)[np.where(codes < 0, len(uniques), codes)]
    arr = values.to_numpy(dtype="float64")
    uniques, inverse = np.unique(arr, return_inverse=True)
    texts = [renderer(feature, float("nan") if math.isnan(v) else float(v)) for v in uniques]
    return np.asarray(texts, dtype=object)[inverse.reshape(-1)]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
