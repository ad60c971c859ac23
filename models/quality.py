"""The quality bar of issue 4, item 7, measured against the simulator's latent truth.

Out of time (the training run's test months):

* the willingness head beats the DPD-bucket rule by at least 0.05 AUC and
  the logistic scorecard by at least 0.01;
* both heads are calibrated within 0.03 expected calibration error;
* the ability head ranks latent ability better than the willingness head
  does, and the willingness head ranks latent willingness better than the
  ability head does (Spearman against ``truth.parquet``, read only here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from models.evaluation import spearman

if TYPE_CHECKING:
    from models.result import TrainingResult

MIN_GAIN_OVER_DPD_RULE = 0.05
MIN_GAIN_OVER_SCORECARD = 0.01
MAX_ECE = 0.03


def truth_month(as_of: pd.Series, which: Literal["horizon", "as_of"] = "horizon") -> pd.Series:
    """Return the month start of the truth row matching each as-of date.

    ``horizon``: the month after the as-of date (the month end D's label
    horizon mostly falls in, where the latent state drives the outcome);
    ``as_of``: the month of D itself.

    Examples
    --------
    >>> truth_month(pd.Series(pd.to_datetime(["2024-01-31"]))).tolist()
    [Timestamp('2024-02-01 00:00:00')]
    """
    dates = pd.to_datetime(as_of)
    if which == "horizon":
        dates = dates + pd.Timedelta(days=1)
    return dates.dt.to_period("M").dt.to_timestamp()


def quality_figures(
    result: TrainingResult,
    truth: pd.DataFrame,
    which_month: Literal["horizon", "as_of"] = "horizon",
) -> dict[str, Any]:
    """Compute the quality-bar figures of a training run against the latent truth.

    Parameters
    ----------
    result : TrainingResult
    truth : DataFrame
        The simulator's ``truth`` table: ``account_id``, ``month`` (month
        start), ``debtor_type``, ``ability``, ``willingness``. Without a
        ``month`` column, one row per account is expected.
    which_month : {"horizon", "as_of"}
        Which truth month is matched to each as-of date (see :func:`truth_month`).

    Returns
    -------
    dict
        Figures (AUC gains, ECEs, the four Spearman correlations, rows matched)
        and one boolean per criterion plus ``passes`` (all of them).
    """
    m = result.metrics
    b = result.baseline_metrics
    will_auc = m["willingness"]["test"]["auc"]
    figures: dict[str, Any] = {
        "willingness_auc": will_auc,
        "ability_auc": m["ability"]["test"]["auc"],
        "willingness_auc_minus_dpd_rule": will_auc - b["willingness"]["dpd_rule"]["test"]["auc"],
        "willingness_auc_minus_scorecard": will_auc - b["willingness"]["scorecard"]["test"]["auc"],
        "willingness_ece": m["willingness"]["test"]["ece"],
        "ability_ece": m["ability"]["test"]["ece"],
    }
    pred = result.predictions["test"][["account_id", "as_of_date", "p_willingness", "p_ability"]]
    truth = truth.copy()
    if "month" in truth.columns:
        pred = pred.assign(month=truth_month(pred["as_of_date"], which_month).to_numpy())
        truth["month"] = pd.to_datetime(truth["month"]).dt.to_period("M").dt.to_timestamp()
        joined = pred.merge(truth, on=["account_id", "month"], how="inner", validate="many_to_one")
    else:
        joined = pred.merge(truth, on="account_id", how="inner", validate="many_to_one")
    figures["truth_rows_matched"] = len(joined)
    figures["truth_rows_expected"] = len(pred)
    for head in ("willingness", "ability"):
        for latent in ("willingness", "ability"):
            figures[f"spearman_p_{head}_vs_latent_{latent}"] = spearman(
                joined[f"p_{head}"], joined[latent]
            )
    checks = {
        "beats_dpd_rule": figures["willingness_auc_minus_dpd_rule"] >= MIN_GAIN_OVER_DPD_RULE,
        "beats_scorecard": figures["willingness_auc_minus_scorecard"] >= MIN_GAIN_OVER_SCORECARD,
        "willingness_calibrated": figures["willingness_ece"] <= MAX_ECE,
        "ability_calibrated": figures["ability_ece"] <= MAX_ECE,
        "ability_head_ranks_ability": figures["spearman_p_ability_vs_latent_ability"]
        > figures["spearman_p_willingness_vs_latent_ability"],
        "willingness_head_ranks_willingness": figures[
            "spearman_p_willingness_vs_latent_willingness"
        ]
        > figures["spearman_p_ability_vs_latent_willingness"],
    }
    figures.update(checks)
    figures["passes"] = all(checks.values())
    return figures


def format_quality(figures: dict[str, Any]) -> str:
    """Return the quality figures as printable lines (PASS/FAIL per criterion)."""
    lines = ["Quality bar (out of time):"]
    rows = [
        (
            "willingness AUC - DPD rule AUC",
            "willingness_auc_minus_dpd_rule",
            f">= {MIN_GAIN_OVER_DPD_RULE}",
            "beats_dpd_rule",
        ),
        (
            "willingness AUC - scorecard AUC",
            "willingness_auc_minus_scorecard",
            f">= {MIN_GAIN_OVER_SCORECARD}",
            "beats_scorecard",
        ),
        ("willingness ECE", "willingness_ece", f"<= {MAX_ECE}", "willingness_calibrated"),
        ("ability ECE", "ability_ece", f"<= {MAX_ECE}", "ability_calibrated"),
    ]
    for label, key, rule, check in rows:
        mark = "PASS" if figures[check] else "FAIL"
        lines.append(f"  [{mark}] {label}: {figures[key]:.4f} ({rule})")
    for head, latent, check in (
        ("ability", "ability", "ability_head_ranks_ability"),
        ("willingness", "willingness", "willingness_head_ranks_willingness"),
    ):
        other = "willingness" if head == "ability" else "ability"
        mark = "PASS" if figures[check] else "FAIL"
        lines.append(
            f"  [{mark}] Spearman vs latent {latent}: {head} head "
            f"{figures[f'spearman_p_{head}_vs_latent_{latent}']:.4f} > {other} head "
            f"{figures[f'spearman_p_{other}_vs_latent_{latent}']:.4f}"
        )
    lines.append(
        f"  truth rows matched: {figures['truth_rows_matched']} of {figures['truth_rows_expected']}"
    )
    lines.append("  overall: " + ("PASS" if figures["passes"] else "FAIL"))
    return "\n".join(lines)
