"""The promotion gate: may a challenger replace the champion?

Both models are scored on the same most recent out-of-time frame (features
and labels). The challenger passes when, for each head,

* its AUC is no worse than the champion's by more than ``tolerance``
  (``auc_challenger >= auc_champion - tolerance``), and
* its expected calibration error is at most ``max_ece``.

With no champion yet, it must instead beat both baselines it was trained
with (the DPD-bucket rule and the logistic scorecard) on AUC for each head,
and meet the same calibration bound. Stability: when asked, the PSI from the
model's drift reference to the frame of each head's most important features
(by gain; features the spec marks drift-exempt left out) must stay below a
bound, so a model leaning on features that move is refused and its report
names them. The willingness head is judged on every
row; the ability head on the rows that paid (its population), against full
coverage. This module is free of MLflow: ``models.registry.promote`` reads
the registry, calls :func:`evaluate_gate` and records the decision.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.config import GateConfig
from models.evaluation import auc, expected_calibration_error
from models.heads import HEADS, ability_target
from models.monitoring import predicted
from models.propensity_model import PropensityModel
from models.stability import psi_against


@dataclass(frozen=True)
class GateCheck:
    """One rule of the gate with the figures it compared."""

    name: str
    value: float
    bound: float
    rule: str
    passed: bool

    def line(self) -> str:
        """Return the check as one printable line."""
        mark = "PASS" if self.passed else "FAIL"
        return f"  [{mark}] {self.name}: {self.value:.4f} {self.rule} {self.bound:.4f}"


@dataclass
class PromotionDecision:
    """The outcome of the gate and every figure behind it."""

    accepted: bool
    challenger_version: str | None
    champion_version: str | None
    figures: dict[str, float]
    checks: list[GateCheck] = field(default_factory=list)
    rows: int = 0
    note: str = ""

    def summary(self) -> str:
        """Return a printable report of the decision and its figures."""
        verdict = "ACCEPTED" if self.accepted else "REFUSED"
        against = (
            f"champion v{self.champion_version}"
            if self.champion_version
            else "the baselines (no champion yet)"
        )
        lines = [
            f"Promotion of challenger v{self.challenger_version or '?'} against {against}: "
            f"{verdict} ({self.rows} out-of-time rows)"
        ]
        if self.note:
            lines.append(f"  {self.note}")
        lines += [c.line() for c in self.checks]
        lines.append("  figures: " + ", ".join(f"{k}={v:.4f}" for k, v in self.figures.items()))
        return "\n".join(lines)

    def tags(self) -> dict[str, str]:
        """Return the decision as model-version tags (``promotion.*``)."""
        return {
            "promotion.decision": "accepted" if self.accepted else "refused",
            "promotion.against": f"v{self.champion_version}"
            if self.champion_version
            else "baselines",
            "promotion.rows": str(self.rows),
            "promotion.figures": json.dumps(
                {k: (None if math.isnan(v) else round(v, 6)) for k, v in self.figures.items()}
            ),
            "promotion.failed_checks": ", ".join(c.name for c in self.checks if not c.passed)
            or "none",
            "promotion.note": self.note or "-",
        }


def model_figures(
    model: PropensityModel,
    frame: pd.DataFrame,
    threshold: float = 0.999,
    n_bins: int = 10,
    probs: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Return AUC and ECE of each head of ``model`` (and of its baselines) on a labelled frame.

    ``probs`` is ``model.predict_proba(frame)`` when the caller has it: the
    frame is then not predicted again.

    Returns
    -------
    dict
        ``auc_willingness``, ``ece_willingness``, ``auc_ability``,
        ``ece_ability`` and, for each baseline ``b`` the model carries,
        ``auc_<head>_<b>``.
    """
    _require_labels(frame)
    probs = predicted(model, frame, probs)
    y_will = frame["paid_any"].to_numpy(dtype="float64")
    payers = y_will == 1
    targets = {
        "willingness": (np.ones(len(frame), dtype=bool), y_will),
        "ability": (payers, ability_target(frame["coverage"], threshold).astype("float64")),
    }
    figures: dict[str, float] = {}
    for head in HEADS:
        rows, y = targets[head]
        p = probs[f"p_{head}"].to_numpy()[rows]
        figures[f"auc_{head}"] = auc(y[rows], p)
        figures[f"ece_{head}"] = expected_calibration_error(y[rows], p, n_bins)
    for head in HEADS:
        rows, y = targets[head]
        for name, baseline in model.baselines.get(head, {}).items():
            p = baseline.predict(frame.loc[rows])
            figures[f"auc_{head}_{name}"] = auc(y[rows], p)
    return figures


def top_feature_stability(
    model: PropensityModel, frame: pd.DataFrame, top: int = 5
) -> pd.DataFrame:
    """Return the PSI, reference to ``frame``, of each head's ``top`` features by gain.

    Features the spec marks drift-exempt (their distribution moves by
    construction) and features without a reference are left out.

    Returns
    -------
    DataFrame
        ``head``, ``feature``, ``gain_rank`` (1 = most important), ``psi``;
        empty when the model has no reference or ``top`` is 0.
    """
    rows = []
    exempt = set(model.spec.drift_exempt)
    for head in HEADS if top and model.reference else ():
        imp = model.feature_importance(head)
        ranked = [f for f in imp["feature"] if f not in exempt and f in model.reference]
        for rank, feature in enumerate(ranked[:top], start=1):
            value = psi_against(model.reference[feature], frame[feature]) if len(frame) else np.nan
            rows.append({"head": head, "feature": feature, "gain_rank": rank, "psi": value})
    return pd.DataFrame(rows, columns=["head", "feature", "gain_rank", "psi"])


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    tolerance: float = 0.005,
    max_ece: float = 0.03,
) -> list[GateCheck]:
    """Return the gate's checks for a challenger's figures (and the champion's, if any).

    Examples
    --------
    >>> ch = {"auc_willingness": 0.80, "ece_willingness": 0.01,
    ...       "auc_ability": 0.70, "ece_ability": 0.02}
    >>> champ = {"auc_willingness": 0.81, "auc_ability": 0.69}
    >>> [c.passed for c in decide(ch, champ, tolerance=0.005)]
    [False, True, True, True]
    """
    checks = []
    for head in HEADS:
        value = challenger[f"auc_{head}"]
        if champion is not None:
            bound = champion[f"auc_{head}"] - tolerance
            checks.append(_check(f"{head} AUC vs champion - tolerance", value, bound, ">="))
        else:
            names = sorted(
                k[len(f"auc_{head}_") :] for k in challenger if k.startswith(f"auc_{head}_")
            )
            if not names:
                checks.append(
                    GateCheck(f"{head} AUC vs baselines", value, float("nan"), ">", False)
                )
            for name in names:
                bound = challenger[f"auc_{head}_{name}"]
                checks.append(_check(f"{head} AUC vs {name}", value, bound, ">"))
        checks.append(_check(f"{head} ECE", challenger[f"ece_{head}"], max_ece, "<="))
    return checks


def _check(name: str, value: float, bound: float, rule: str) -> GateCheck:
    if math.isnan(value) or math.isnan(bound):
        passed = False
    elif rule == ">=":
        passed = value >= bound
    elif rule == ">":
        passed = value > bound
    else:
        passed = value <= bound
    return GateCheck(name=name, value=float(value), bound=float(bound), rule=rule, passed=passed)


def evaluate_gate(
    challenger: PropensityModel,
    champion: PropensityModel | None,
    frame: pd.DataFrame,
    tolerance: float = 0.005,
    max_ece: float = 0.03,
    threshold: float = 0.999,
    challenger_version: str | None = None,
    champion_version: str | None = None,
    stability: tuple[int, float] = (0, 0.25),
    *,
    challenger_probs: pd.DataFrame | None = None,
    champion_probs: pd.DataFrame | None = None,
) -> PromotionDecision:
    """Score both models on the same labelled out-of-time frame and apply the gate.

    Parameters
    ----------
    challenger, champion : PropensityModel
        ``champion`` is None when there is none yet.
    frame : DataFrame
        Features plus ``paid_any`` and ``coverage`` of the most recent
        months whose label horizon has closed.
    tolerance, max_ece : float
        Gate settings (``gate`` section of the config).
    threshold : float
        Full-coverage threshold of the ability target.
    stability : (int, float)
        ``(top, max_psi)``: each head's ``top`` features by gain must have a
        PSI below ``max_psi`` from the challenger's drift reference to
        ``frame`` (``top`` 0: no stability check).
    challenger_probs, champion_probs : DataFrame, optional
        Each model's ``predict_proba(frame)`` when the caller has scored the
        frame already (the recalibration, the training's test months): the
        gate then does not predict it again, and its figures are the same.

    Returns
    -------
    PromotionDecision
    """
    figures = model_figures(challenger, frame, threshold, probs=challenger_probs)
    champ = (
        model_figures(champion, frame, threshold, probs=champion_probs)
        if champion is not None
        else None
    )
    checks = decide(figures, champ, tolerance, max_ece)
    table = top_feature_stability(challenger, frame, stability[0])
    merged = {f"challenger_{k}": v for k, v in figures.items()}
    if len(table):
        worst = table.loc[table["psi"].fillna(np.inf).idxmax()]
        checks.append(
            _check(
                f"stability: top-feature PSI ({worst['feature']})", worst["psi"], stability[1], "<="
            )
        )
        merged["challenger_max_top_feature_psi"] = float(worst["psi"])
    if champ is not None:
        merged.update({f"champion_auc_{h}": champ[f"auc_{h}"] for h in HEADS})
        merged.update({f"champion_ece_{h}": champ[f"ece_{h}"] for h in HEADS})
    return PromotionDecision(
        accepted=all(c.passed for c in checks),
        challenger_version=challenger_version,
        champion_version=champion_version,
        figures=merged,
        checks=checks,
        rows=len(frame),
    )


def _require_labels(frame: pd.DataFrame) -> None:
    missing = [c for c in ("paid_any", "coverage") if c not in frame.columns]
    if missing:
        raise KeyError(
            f"the gate's out-of-time frame needs labels {missing}: build it with the "
            f"training-set builder over the most recent months whose horizon has closed"
        )


def loosened(settings: GateConfig, reference: GateConfig) -> list[str]:
    """Return the gate settings that are looser than the reference (the packaged defaults).

    A larger AUC tolerance or a larger calibration bound lets a weaker model
    through; promoting under such settings needs a recorded override reason.

    Examples
    --------
    >>> loosened(GateConfig(tolerance=0.02), GateConfig())
    ['gate.tolerance 0.02 > 0.005']
    >>> loosened(GateConfig(max_ece=0.01), GateConfig())
    []
    >>> loosened(GateConfig(stability_top_features=0), GateConfig())
    ['gate.stability_top_features 0 < 5']
    """
    out = []
    for key in ("tolerance", "max_ece", "max_top_feature_psi"):
        value, bound = getattr(settings, key), getattr(reference, key)
        if value > bound:
            out.append(f"gate.{key} {value:g} > {bound:g}")
    # Fewer features checked for stability (0 turns the check off) is looser too.
    if settings.stability_top_features < reference.stability_top_features:
        out.append(
            f"gate.stability_top_features {settings.stability_top_features} "
            f"< {reference.stability_top_features}"
        )
    return out
