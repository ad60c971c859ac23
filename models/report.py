"""The model report: one self-contained HTML page for a risk reviewer.

Everything is inline (CSS, plots as base64 PNG), so the file opens from the
MLflow UI or a mail attachment without a network or running anything. It
renders from the evaluation result (:class:`models.result.TrainingResult`)
alone: identity and a summary for the committee first, then the data, each
head against the baselines with bootstrap intervals, calibration (by decile
and by policy band), stability (PSI and by month), segments, features and
their characteristic analysis, missing values, fair lending, limitations,
the gate and the configuration. Sections are built in
:mod:`models.report_sections`.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

import pandas as pd

from models import report_sections as rs
from models.effects import TreatmentEffects, qini_figure, ranking_sentence
from models.heads import HEADS
from models.report_sections import limitations

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from models.result import TrainingResult

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 3px solid #4472c4; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: right; }
th { background: #eef2fa; }
td:first-child, th:first-child { text-align: left; }
.figs { display: flex; flex-wrap: wrap; gap: 8px; }
.figs img { max-width: 360px; border: 1px solid #eee; }
.wide img { max-width: 540px; }
.pass { color: #1b7e2f; font-weight: bold; }
.fail { color: #b3261e; font-weight: bold; }
.moderate { background: #fff4d6; }
.major { background: #fbdad7; }
.note { background: #f6f6f6; border-left: 4px solid #4472c4; padding: .5em 1em; }
code, pre { background: #f6f6f6; font-size: 12px; }
ul.note li { margin: .2em 0; }
h4 { margin-bottom: .2em; }
pre { padding: .6em; overflow-x: auto; }
"""

METRIC_COLUMNS = (
    "auc",
    "gini",
    "ks",
    "brier",
    "log_loss",
    "ece",
    "event_rate",
    "mean_prediction",
    "n",
)


def figure_to_png(fig: Figure, dpi: int = 90) -> bytes:
    """Return a figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_pngs(result: TrainingResult) -> dict[str, bytes]:
    """Return every figure of the result as PNG bytes, rendering each once (cached)."""
    for name, fig in result.figures.items():
        if name not in result.images:
            result.images[name] = figure_to_png(fig)
    return result.images


def qini_pngs(effects: TreatmentEffects) -> dict[str, bytes]:
    """Return each arm's Qini curve as PNG bytes, rendering each once (cached on ``effects``)."""
    for arm, curve in effects.curves.items():
        if arm not in effects.images:
            effects.images[arm] = figure_to_png(qini_figure(curve, arm, effects.arms[0]))
    return effects.images


def _img(result: TrainingResult, name: str, alt: str) -> str:
    png = figure_pngs(result).get(name)
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def head_comparison(result: TrainingResult, head: str) -> pd.DataFrame:
    """Return a head's metrics next to the baselines', per evaluation split."""
    rows = []
    for split in ("validation", "test"):
        rows.append({"split": split, "model": "LightGBM head", **result.metrics[head][split]})
        for name, splits in result.baseline_metrics[head].items():
            rows.append({"split": split, "model": name.replace("_", " "), **splits[split]})
    table = pd.DataFrame(rows)
    return table[["split", "model", *METRIC_COLUMNS]]


def render_report(result: TrainingResult) -> str:
    """Render the model report of an evaluation result as one HTML string.

    Parameters
    ----------
    result : TrainingResult
        The evaluation result; ``result.identity`` (model version, run id,
        commit, packages) is filled in by ``models.tracking`` when logged.
    """
    cfg = result.config
    parts: list[str] = []
    add = parts.append
    version = result.identity.get("model_version")
    title = "Repayment propensity model report" + (f", version {version}" if version else "")
    add("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")
    add(f"<title>{html.escape(title)}</title>")
    add(f"<style>{CSS}</style></head><body>")
    add(f"<h1>{html.escape(title)}</h1>")
    add(rs.summary_block(result))
    add(rs.identity_block(result))
    add(
        "<p class='note'>Two calibrated LightGBM heads score every overdue account: "
        "<b>willingness</b>, the probability of any payment within the label horizon, and "
        "<b>ability</b>, the probability that a paying debtor covers the whole arrears. "
        "Expected recovery = arrears &times; P(pay) &times; E[coverage | pay]. "
        "This page is generated by the training run and needs no network to read.</p>"
    )
    _purpose_and_data(result, add)
    for i, head in enumerate(HEADS, start=3):
        _head_section(result, head, i, add)
    add("<h2>5. Calibration by decile (out of time)</h2>")
    add(
        "<p>Decile 1 holds the highest scores. Observed rate against mean prediction shows "
        "the calibration; lift and cumulative capture show the ranking.</p>"
    )
    for head in HEADS:
        add(f"<h3>{head.capitalize()}</h3>")
        add(rs.table(result.deciles[f"{head}_test"]))
        add(f"<details><summary>{head}: validation months</summary>")
        add(rs.table(result.deciles[f"{head}_validation"]))
        add("</details>")
    add(rs.band_calibration_section(result, result.data_window.get("policy_bands", "policy")))
    add("<h2>6. Stability (PSI training &rarr; out of time, and by month)</h2>")
    e = cfg.evaluation
    add(
        f"<p>Population stability index of every feature and both scores; "
        f"flag <b>moderate</b> from {e.psi_moderate}, <b>major</b> from {e.psi_major}.</p>"
    )
    flags = result.psi["flag"].where(result.psi["flag"].isin(["moderate", "major"]), "")
    add(rs.table(result.psi, row_class=flags))
    add(rs.monthly_section(result))
    add("<h2>7. Performance by segment</h2>")
    add(rs.segment_section(result))
    _features_section(result, add)
    add("<h2>9. Characteristic analysis of the top features</h2>")
    add(rs.characteristic_section(result))
    add("<h2>10. Missing values</h2>")
    add(rs.missing_section(result))
    add("<h2>11. Fair lending: protected attributes and proxies</h2>")
    add(rs.fairness_section(result))
    add("<h2>12. Known limitations</h2>")
    add("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in limitations(result)) + "</ul>")
    _gate_section(result, add)
    add("<h2 id='treatment-effects'>14. Treatment effects</h2>")
    _effects_section(result, add)
    add("<h2>15. Configuration</h2>")
    add(f"<pre>{html.escape(cfg.to_yaml())}</pre>")
    add("</body></html>")
    return "\n".join(parts)


def _purpose_and_data(result: TrainingResult, add) -> None:
    cfg, spec = result.config, result.spec
    add("<h2>1. Purpose and population</h2>")
    add(
        "<p>The scores drive how hard and how an overdue account is contacted and which "
        "offer it gets, through the contact policy (risk tiers, caps, offers), never on their "
        "own. The population is every account overdue at a month end (arrears above the "
        "materiality threshold); accounts under a special status are scored but never "
        "contacted. One row per account and month end.</p>"
    )
    add("<h2>2. Data window</h2>")
    window = pd.DataFrame(
        [{"item": k, "value": v} for k, v in result.data_window.items()]
        + [
            {"item": "training set fingerprint (sha256)", "value": result.fingerprint},
            {"item": "feature code version", "value": spec.code_version},
            {"item": "features", "value": str(len(spec.columns))},
        ]
    )
    add(rs.table(window))
    add("<h3>Labels</h3>")
    add(
        "<ul><li><code>paid_any</code>: any payment in the horizon after the as-of date "
        "(the willingness target, all overdue snapshots).</li>"
        "<li><code>coverage</code>: payments in the horizon over the arrears at the as-of "
        "date, clipped to [0, 1]; the ability target is full coverage "
        f"(coverage &ge; {cfg.labels.full_coverage_threshold}) on the snapshots that paid.</li>"
        "<li>Features read only events strictly before the as-of date; snapshots whose "
        "horizon had not closed are left out, never labelled as non-payers.</li></ul>"
    )
    add("<h3>Splits (by time, never random)</h3>")
    add(rs.table(result.split_summary))
    add(
        "<p>Oldest months train the boosters and the baselines; the validation months "
        "stop boosting early and fit the calibrators; the newest months are the out-of-time "
        "test, never used to fit anything.</p>"
    )


def _head_section(result: TrainingResult, head: str, number: int, add) -> None:
    add(f"<h2>{number}. {head.capitalize()} head against the baselines</h2>")
    pop = "all overdue snapshots" if head == "willingness" else "snapshots that paid"
    trees = result.model.metadata.get("best_iteration", {}).get(head, "?")
    add(f"<p>Population: {pop}. Trees after early stopping: {trees}.</p>")
    add(rs.table(head_comparison(result, head)))
    if head == "willingness":
        add("<h3>Confidence intervals (both heads)</h3>")
        add(rs.bootstrap_section(result))
    if head == "ability" and "share_mae" in result.metrics[head]["test"]:
        m = result.metrics[head]["test"]
        add(
            "<p>Expected share covered by a payer (<code>expected_share</code>, "
            "E[coverage | pay], used in expected recovery), out of time on payers: mean "
            f"absolute error {m['share_mae']:.3f}, bias {m['share_bias']:+.3f}.</p>"
        )
    add("<div class='figs'>")
    for kind in ("roc", "calibration", "gains"):
        add(_img(result, f"{kind}_{head}_test", f"{kind} {head} test"))
    add("</div><details><summary>Validation months</summary><div class='figs'>")
    for kind in ("roc", "calibration", "gains"):
        add(_img(result, f"{kind}_{head}_validation", f"{kind} {head} validation"))
    add("</div></details>")


def _features_section(result: TrainingResult, add) -> None:
    cfg = result.config
    add("<h2>8. Top features and their direction</h2>")
    add(
        "<p>Mean absolute SHAP contribution on a sample of out-of-time rows; direction is "
        "the sign of the rank correlation between a feature's value and its contribution; "
        "monotone shows the constraint imposed in training.</p>"
    )
    for head in HEADS:
        add(f"<h3>{head.capitalize()}</h3>")
        top = result.shap_summary[head].head(cfg.evaluation.top_features)
        add(rs.table(top[["feature", "mean_abs_shap", "direction", "monotone", "description"]]))
        add("<div class='figs wide'>")
        add(_img(result, f"shap_{head}", f"shap {head}"))
        add(_img(result, f"importance_{head}", f"importance {head}"))
        add("</div>")


def _gate_section(result: TrainingResult, add) -> None:
    cfg = result.config
    add("<h2>13. Gate figures for promotion</h2>")
    add(
        f"<p>At promotion the challenger and the champion are scored on the same most "
        f"recent out-of-time months. It passes when each head's AUC is no worse than the "
        f"champion's by more than {cfg.gate.tolerance} and each head's expected "
        f"calibration error is at most {cfg.gate.max_ece}; with no champion it must beat "
        f"both baselines. A reviewer promotes with <code>propensity promote --approver NAME "
        f"--note TEXT</code>. Below, the no-champion gate on this run's test months:</p>"
    )
    gate = result.gate
    verdict = "pass" if gate.accepted else "fail"
    add(f"<p>Verdict on the test months: <span class='{verdict}'>{verdict.upper()}</span></p>")
    checks = pd.DataFrame(
        [
            {
                "check": c.name,
                "value": c.value,
                "rule": c.rule,
                "bound": c.bound,
                "result": "pass" if c.passed else "FAIL",
            }
            for c in gate.checks
        ]
    )
    add(rs.table(checks))


def _effects_section(result: TrainingResult, add) -> None:
    """Add the treatment effects: units, observed effect, Qini per arm and the curves."""
    eff = result.effects
    if eff is None or eff.model is None:
        add(f"<p><b>{html.escape(rs.effects_summary(result))}</b></p>")
        add(
            "<p>A treatment-effect model needs randomised data: the control group and "
            "randomised plans of published runs (<code>propensity train --plans DIR</code>).</p>"
        )
        return
    base = eff.arms[0]
    add(
        f"<p>Randomised units from {html.escape(eff.source)}; baseline arm "
        f"<code>{html.escape(base)}</code>. A T-learner (one LightGBM regressor per arm) "
        "predicts the share of arrears recovered in the horizon under each arm; an arm's "
        "effect is its prediction minus the baseline's. Observed effect: difference of the "
        "mean outcome of the arm's units and the baseline's (all units, normal 95% CI). "
        "Predicted effect and Qini coefficient: on the held-out units only, with a bootstrap "
        "95% CI of the coefficient (above 0: the model's order beats a random one).</p>"
    )
    add(rs.table(eff.table))
    if eff.dropped:
        left = ", ".join(f"{a} ({n:,} units)" for a, n in eff.dropped.items())
        add(f"<p>Arms left out for too few randomised units: {html.escape(left)}.</p>")
    sentences = (ranking_sentence(r, base) for _, r in eff.table.iterrows())
    add("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in sentences) + "</ul>")
    add("<div class='figs'>")
    for arm, png_bytes in qini_pngs(eff).items():
        png = base64.b64encode(png_bytes).decode("ascii")
        add(f'<img alt="Qini curve {html.escape(arm)}" src="data:image/png;base64,{png}">')
    add("</div>")
