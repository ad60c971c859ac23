"""The validation sections of the model report: identity, summary, segments, fair lending.

Each function takes the evaluation result (:class:`models.result.TrainingResult`)
and returns HTML; ``models.report`` assembles the page. Tables come from
``result.review`` (:mod:`models.review`); a section whose table is absent
says so instead of disappearing.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import pandas as pd

from models.heads import HEADS

if TYPE_CHECKING:
    from models.result import TrainingResult

NOT_REGISTERED = "not registered (report rendered at training, before logging)"
COUNT_NAMES = frozenset({"count", "events", "rows", "n", "payers", "accounts", "months", "units"})


def is_count(column: str) -> bool:
    """Return whether a column holds counts (shown as integers).

    Examples
    --------
    >>> is_count("rows_oot"), is_count("missing_share_test"), is_count("auc")
    (True, False, False)
    """
    return (
        column in COUNT_NAMES
        or column.endswith("_units")
        or (column.startswith(("rows_", "missing_")) and "share" not in column)
    )


def table(frame: pd.DataFrame, digits: int = 4, row_class: pd.Series | None = None) -> str:
    """Render a frame as an HTML table: counts as integers, NaN as "-"."""

    def fmt(column: str, v: object) -> str:
        if isinstance(v, float) and math.isnan(v):
            return "-"
        if is_count(column) and isinstance(v, int | float):
            return f"{int(v):,}"
        if isinstance(v, float):
            return f"{v:.{digits}f}" if abs(v) < 1e6 else f"{v:,.0f}"
        return html.escape(str(v))

    cols = [str(c) for c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = f' class="{row_class.iloc[i]}"' if row_class is not None else ""
        cells = "".join(f"<td>{fmt(c, v)}</td>" for c, v in zip(cols, row, strict=True))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def identity_rows(result: TrainingResult) -> list[tuple[str, str]]:
    """Return the identity facts of the model, in reading order."""
    ident = result.identity
    versions = ident.get("package_versions", {})
    return [
        ("model", f"{ident.get('model_name', 'repayment-propensity')}"),
        ("version", str(ident.get("model_version") or NOT_REGISTERED)),
        ("MLflow run id", str(ident.get("run_id") or "not logged")),
        ("trained at (UTC)", result.trained_at or "unknown"),
        ("code commit", str(ident.get("git_commit", "unknown"))),
        ("feature code version", result.spec.code_version),
        ("training data fingerprint (sha256)", result.fingerprint),
        ("packages", ", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown"),
        ("configuration", "section 15 below (and config.yaml in the run)"),
    ]


def identity_block(result: TrainingResult) -> str:
    """Return the identity table at the top of the report."""
    rows = pd.DataFrame(identity_rows(result), columns=["item", "value"])
    return "<h2 id='identity'>Identity</h2>" + table(rows)


def summary_lines(result: TrainingResult) -> list[str]:
    """Return the committee summary: figures with intervals, gate, fairness, limitations."""
    lines = []
    boot = result.review.get("bootstrap")
    for head in HEADS:
        m = result.metrics[head]["test"]
        ci = ""
        if boot is not None and head in set(boot["head"]):
            b = boot.set_index("head").loc[head]
            ci = f" (95% CI {b['auc_lo']:.3f}-{b['auc_hi']:.3f})"
        best = max(v["test"]["auc"] for v in result.baseline_metrics[head].values())
        lines.append(
            f"{head.capitalize()} head: out-of-time AUC {m['auc']:.3f}{ci}, KS {m['ks']:.3f}, "
            f"calibration error {m['ece']:.3f}, on {int(m['n']):,} rows; best baseline AUC "
            f"{best:.3f}."
        )
    verdict = "passes" if result.gate.accepted else "fails"
    failed = [c.name for c in result.gate.checks if not c.passed]
    lines.append(
        f"Gate against the baselines on the test months: {verdict}"
        + (f" (failed: {', '.join(failed)})." if failed else ".")
    )
    lines.append(fairness_summary(result))
    lines.append(effects_summary(result))
    n_lim = len(limitations(result))
    lines.append(f"{n_lim} known limitations are listed in section 12.")
    return lines


def fairness_summary(result: TrainingResult) -> str:
    """Return one sentence on protected attributes and the proxy check."""
    fair = result.config.fairness
    used = [c for c in fair.protected if c in result.spec.columns]
    text = (
        f"Protected attribute(s) used as features: {', '.join(used)}, justified as: "
        f"{fair.justification!r}."
        if used
        else f"Protected attribute(s) {', '.join(fair.protected)} excluded from the features."
    )
    proxy = result.review.get("age_proxy")
    if proxy is not None and len(proxy):
        worst = proxy.loc[proxy["proxy_auc"].idxmax()]
        text += (
            f" Proxy check: the features predict age band '{worst['band']}' with AUC "
            f"{worst['proxy_auc']:.3f} at most (0.5 = no information)."
        )
    else:
        text += " No age column in the data: the proxy check could not run."
    return text


def summary_block(result: TrainingResult) -> str:
    """Return the summary for a committee, as a short list."""
    items = "".join(f"<li>{html.escape(t)}</li>" for t in summary_lines(result))
    return f"<h2 id='summary'>Summary for the committee</h2><ul class='note'>{items}</ul>"


def bootstrap_section(result: TrainingResult) -> str:
    """Return the bootstrap confidence intervals of AUC and KS, out of time."""
    boot = result.review.get("bootstrap")
    if boot is None:
        return "<p>No bootstrap intervals computed.</p>"
    cols = ["head", "n", "auc", "auc_lo", "auc_hi", "auc_se", "ks", "ks_lo", "ks_hi"]
    tol = result.config.gate.tolerance
    return (
        "<p>95% percentile bootstrap intervals (rows resampled with replacement) on the "
        f"out-of-time months. The gate's AUC tolerance against a champion is {tol}; compare it "
        "with the standard error (auc_se): a difference smaller than the standard error is "
        "within noise.</p>" + table(boot[cols])
    )


def monthly_section(result: TrainingResult) -> str:
    """Return performance by month (every split): AUC, KS, mean predicted against observed."""
    monthly = result.review.get("monthly")
    if monthly is None:
        return ""
    cols = ["month", "split", "rows", "events", "mean_prediction", "observed_rate", "auc", "ks"]
    parts = [
        "<h3>Performance by month</h3><p>Per as-of month: rows, events, mean predicted "
        "probability against the observed rate (calibration in the large) and ranking.</p>"
    ]
    for head in HEADS:
        part = monthly.loc[monthly["head"] == head, cols]
        parts.append(f"<h4>{head.capitalize()}</h4>" + table(part))
    return "".join(parts)


def segment_section(result: TrainingResult) -> str:
    """Return performance by product, jurisdiction, region, DPD stage and tier, out of time."""
    names = {
        "product": "Product",
        "jurisdiction": "Jurisdiction",
        "region": "Region",
        "dpd_stage": "DPD stage",
        "tier": "Risk tier of the policy",
    }
    parts = ["<p>Out-of-time months; ability on the rows that paid.</p>"]
    for key, title in names.items():
        frame = result.review.get(f"segment_{key}")
        if frame is None:
            parts.append(f"<h3>{title}</h3><p>Not available in this training set.</p>")
            continue
        parts.append(f"<h3>{title}</h3>" + table(frame))
    return "".join(parts)


def characteristic_section(result: TrainingResult) -> str:
    """Return binned event rates of the top features, development against out of time."""
    parts = [
        "<p>For the top willingness features (by mean |SHAP|): rows and observed payment "
        "rate per bin, cut at the training quantiles, in the training months (dev) and the "
        "out-of-time months (oot). A bin whose rate moves, or whose order changes, is a "
        "feature whose relation to payment shifted.</p>"
    ]
    for name, frame in result.review.items():
        if name.startswith("characteristic_"):
            feature = name[len("characteristic_") :]
            desc = html.escape(result.spec.describe(feature))
            parts.append(f"<h3><code>{html.escape(feature)}</code>: {desc}</h3>" + table(frame))
    return "".join(parts)


def band_calibration_section(result: TrainingResult, source: str) -> str:
    """Return mean predicted against observed per risk tier of the policy."""
    frame = result.review.get("band_calibration")
    if frame is None:
        return (
            "<h3>By policy band</h3><p>No policy bands were given to this training run "
            "(train through <code>propensity train</code> to get them).</p>"
        )
    return (
        f"<h3>By policy band ({html.escape(source)})</h3><p>The policy acts on the tier an "
        "account falls in; within each tier, the mean predicted probability should match "
        "the observed rate.</p>" + table(frame)
    )


def missing_section(result: TrainingResult) -> str:
    """Return the missing-value count and share of each feature, training and out of time."""
    frame = result.review.get("missing")
    if frame is None:
        return ""
    counts = [c for c in frame.columns if is_count(c)]
    frame = frame.loc[(frame[counts] > 0).any(axis=1)]
    note = "<p>Features with any missing value (the others are always present). LightGBM "
    note += "routes missing values to a learned side of each split.</p>"
    return note + (table(frame) if len(frame) else "<p>No feature has missing values.</p>")


def fairness_section(result: TrainingResult) -> str:
    """Return the fair-lending section: exclusions, score by age band, proxy check."""
    fair = result.config.fairness
    parts = [f"<p>{html.escape(fairness_summary(result))}</p>"]
    parts.append(
        "<p>Collection practices are covered by US Regulation B (ECOA: no discrimination on "
        "age, sex, race, national origin, marital status, receipt of public assistance) and, "
        "in the UK, the FCA's Consumer Duty and the Equality Act. The model never reads a "
        "protected attribute unless the config lists it in <code>fairness.include_protected"
        "</code> with a justification; the tables below are computed whether or not it is "
        "used, from the data's own age column.</p>"
    )
    if result.excluded:
        parts.append(
            f"<p>Left out of this model's features: <b>{html.escape(', '.join(result.excluded))}"
            "</b>.</p>"
        )
    scores = result.review.get("age_band_scores")
    if scores is None:
        parts.append("<p>No age column in the training data: no age-band analysis.</p>")
        return "".join(parts)
    parts.append(
        "<h3>Score distribution by age band (out of time)</h3><p>Mean and spread of the "
        "scores per band, next to the observed rates: a band scored lower than its observed "
        "rate would be contacted harder than its behaviour warrants.</p>" + table(scores)
    )
    proxy = result.review.get("age_proxy")
    if proxy is not None and len(proxy):
        parts.append(
            "<h3>Proxy check</h3><p>A small LightGBM model trained on the model's own "
            "features to predict the age band (training months), scored out of time: "
            "one-vs-rest AUC per band. Near 0.5 the features carry little information "
            f"about age; above {PROXY_WARN} they act as a proxy and need review.</p>" + table(proxy)
        )
    drivers = result.review.get("age_proxy_drivers")
    if drivers is not None and len(drivers):
        parts.append(
            "<h4>Features the proxy model relies on (share of its gain)</h4>" + table(drivers)
        )
    corr = result.review.get("age_correlation")
    if corr is not None and len(corr):
        parts.append("<h4>Features most correlated with age (Spearman)</h4>" + table(corr))
    parts.append(f"<p>Age bands: upper edges {list(fair.age_bands)}.</p>")
    return "".join(parts)


#: Proxy AUC above which the report calls the features a proxy for age.
PROXY_WARN = 0.65


def limitations(result: TrainingResult) -> list[str]:
    """Return the known limitations of the model, general and measured on this run."""
    cfg = result.config
    items = [
        "Trained on past collections behaviour: the scores reflect the contact strategy that "
        "was applied historically (who was called, how often). Payment after contact is "
        "partly selection, not effect; the randomised control group measures the effect.",
        "Out-of-time performance is measured on the newest months of the window only; "
        "seasonality and economic shifts outside that window are untested.",
        "The ability head is trained on debtors who paid; its probability is conditional on "
        "payment (ability given willingness) and is extrapolated to non-payers.",
        "Reason codes are SHAP contributions of the uncalibrated booster relative to the "
        "average account: they explain the ranking, not causes.",
        f"Calibration was fitted on {cfg.splits.validation_months} validation month(s) "
        f"({cfg.calibration.method}); a shift in the base rate needs recalibration.",
    ]
    for head in HEADS:
        ece = result.metrics[head]["test"]["ece"]
        if not math.isnan(ece) and ece > cfg.gate.max_ece:
            items.append(
                f"The {head} head's out-of-time calibration error ({ece:.3f}) exceeds the "
                f"bound {cfg.gate.max_ece}."
            )
        for name, splits in result.baseline_metrics[head].items():
            if splits["test"]["auc"] >= result.metrics[head]["test"]["auc"]:
                items.append(f"The {head} head does not beat the {name} baseline out of time.")
    shifted = result.psi.loc[result.psi["flag"] == "major", "variable"].tolist()
    if shifted:
        items.append(
            f"Major distribution shift (PSI >= {cfg.evaluation.psi_major}) in: {', '.join(shifted)}."
        )
    proxy = result.review.get("age_proxy")
    if proxy is not None and len(proxy) and proxy["proxy_auc"].max() > PROXY_WARN:
        items.append(
            f"The features predict an age band with AUC {proxy['proxy_auc'].max():.3f} "
            f"(above {PROXY_WARN}): they can act as a proxy for age; review before use."
        )
    if "age_band_scores" not in result.review:
        items.append("No age in the data: score distribution by age and the proxy check not run.")
    return items


NO_EFFECTS = "No treatment-effect model"


def effects_summary(result: TrainingResult) -> str:
    """Return one sentence on the treatment-effect model of the run, or why there is none."""
    eff = result.effects
    if eff is None or eff.model is None:
        why = eff.reason if eff is not None else "no randomised data was given to this run"
        return f"{NO_EFFECTS}: {why}."
    units = int(eff.table["units"].sum() + eff.table["baseline_units"].iloc[0])
    above = int((eff.table["qini_ci_low"] > 0).sum())
    return (
        f"Treatment-effect model on {units:,} randomised units ({eff.source}): the model ranks "
        f"{above} of {len(eff.table)} arm(s) better than chance on held-out units (section 14)."
    )
