"""Measure the effect of the plans from published runs: treatment against the control group.

The control group is a randomised share of every tier that gets the
baseline treatment instead of its tier's plan (``control_group`` in
``scores.parquet``). Comparing what the two groups paid afterwards estimates
the incremental recovery the plans bring. Rules:

* **Unit**: an account's first published row in ``[from, to]`` (its first
  night in the window); its assignment is the one it was randomised to. Later
  nights of the same account are not new units (they are not independent).
* **Outcome**: the payments of the account from that date ``D`` to
  ``D + horizon`` (exclusive, UTC), and the outbound calls and SMS it got in
  the same window.
* **Estimate**: per tier, the difference of the mean recovery of treated and
  control accounts; overall, the tiers' differences weighted by their number
  of accounts (the control share may differ by tier); per offer, the same
  within the offer the account's tier plan carries (``treated_offer`` when
  the run records it, so control accounts are grouped by the offer they
  would have had). Per contact: the incremental recovery divided by the
  incremental contacts, and each arm's recovery per contact.
* **Uncertainty**: a Poisson bootstrap over accounts (``n_boot`` replicates,
  fixed seed), percentile 95% intervals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

EXPERIMENT = "effect"
#: Columns of :func:`estimate_effect`'s tables.
EFFECT_COLUMNS: tuple[str, ...] = (
    "n_treated", "n_control", "recovery_treated", "recovery_control", "incremental_recovery",
    "ci_low", "ci_high", "uplift", "contacts_treated", "contacts_control",
    "incremental_per_contact", "per_contact_ci_low", "per_contact_ci_high",
)  # fmt: skip


class EffectInputError(ValueError):
    """No published run in the window, or runs without a control group (exit 2)."""


@dataclass
class EffectResult:
    """Overall, per-tier and per-offer effects and the unit table they came from."""

    overall: pd.DataFrame
    per_tier: pd.DataFrame
    per_offer: pd.DataFrame
    units: pd.DataFrame


def read_published(
    scores_dir: Path, start: pd.Timestamp, end: pd.Timestamp, columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Concatenate the ``scores.parquet`` of every ``as_of=D`` folder with D in [start, end].

    With ``columns``, only those a run has are read (an older run may lack some).
    """
    import pyarrow.parquet as pq

    frames = []
    for folder in sorted(Path(scores_dir).glob("as_of=*")):
        try:
            d = pd.Timestamp(folder.name.split("=", 1)[1])
        except ValueError:
            continue
        path = folder / "scores.parquet"
        if start <= d <= end and path.exists():
            names = set(pq.read_schema(path).names) if columns else set()
            frames.append(pd.read_parquet(path, columns=[c for c in columns if c in names] or None))
    if not frames:
        raise EffectInputError(
            f"no published run (as_of=D/scores.parquet) in {scores_dir} between "
            f"{start.date()} and {end.date()}"
        )
    return pd.concat(frames, ignore_index=True)


def effect_units(
    scores: pd.DataFrame, payments: pd.DataFrame, contacts: pd.DataFrame, horizon_days: int
) -> pd.DataFrame:
    """One row per account: its first published row, what it paid and the contacts it got.

    Returns ``account_id``, ``as_of``, ``control_group``, ``risk_tier``,
    ``offer`` (the tier plan's offer), ``recovered`` and ``contacts``.
    """
    missing = [c for c in ("account_id", "as_of_date", "control_group", "risk_tier")
               if c not in scores.columns]  # fmt: skip
    if missing:
        raise EffectInputError(f"scores.parquet lacks the columns {missing}")
    s = scores.assign(as_of=pd.to_datetime(scores["as_of_date"]))
    s = s.sort_values(["account_id", "as_of"], kind="stable").drop_duplicates("account_id")
    offer = "treated_offer" if "treated_offer" in s.columns else "offer"
    units = pd.DataFrame(
        {
            "account_id": s["account_id"].to_numpy(),
            "as_of": s["as_of"].to_numpy(),
            "control_group": s["control_group"].to_numpy(dtype=bool),
            "risk_tier": s["risk_tier"].to_numpy(),
            "offer": s[offer].to_numpy(),
        }
    )
    units["recovered"] = _window_sum(units, payments, "paid_at", "amount", horizon_days)
    out = contacts[
        (contacts["direction"] == "outbound") & contacts["channel"].isin(["call", "sms"])
    ]
    units["contacts"] = _window_sum(units, out.assign(one=1.0), "contact_at", "one", horizon_days)
    return units


def _window_sum(units: pd.DataFrame, events: pd.DataFrame, at: str, value: str, horizon: int):
    """Sum of ``value`` over each unit's events in [as_of, as_of + horizon) (UTC)."""
    ev = events[events["account_id"].isin(units["account_id"])]
    t = ev[at].dt.tz_convert("UTC").dt.tz_localize(None)
    m = pd.DataFrame({"account_id": ev["account_id"].to_numpy(), "t": t.to_numpy(),
                      "v": ev[value].to_numpy(dtype=float)})  # fmt: skip
    m = m.merge(units[["account_id", "as_of"]], on="account_id")
    inside = (m["t"] >= m["as_of"]) & (m["t"] < m["as_of"] + pd.Timedelta(days=horizon))
    summed = m[inside].groupby("account_id")["v"].sum()
    return summed.reindex(units["account_id"]).fillna(0.0).to_numpy()


def _boot_means(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson-bootstrap replicates of a mean (chunked so memory stays small)."""
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(len(y), 1))
    for i in range(0, n_boot, chunk):
        w = rng.poisson(1.0, size=(min(chunk, n_boot - i), len(y)))
        out[i : i + len(w)] = (w @ y) / np.maximum(w.sum(1), 1)
    return out


def _pct(values: np.ndarray, q: float) -> float:
    """Percentile of the finite values (NaN when none: no contact difference to divide by)."""
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def _strata(units: pd.DataFrame, by: str | None, n_boot: int, seed: int) -> pd.DataFrame:
    """Effect per value of ``by`` (None: overall, tiers weighted by their size)."""
    rng = np.random.default_rng(seed)
    groups = [("all", units)] if by is None else list(units.groupby(by, sort=True))
    rows = []
    for key, g in groups:
        # Tiers with both arms only (a tier with no control account says nothing).
        tiers = [(k, t) for k, t in g.groupby("risk_tier", sort=True)
                 if t["control_group"].any() and not t["control_group"].all()]  # fmt: skip
        if not tiers:
            continue
        weights = np.array([len(t) for _, t in tiers], dtype=float)
        weights /= weights.sum()
        arms = {}
        for arm, flag in (("treated", False), ("control", True)):
            parts = [t[t["control_group"] == flag] for _, t in tiers]
            rec = [p["recovered"].to_numpy() for p in parts]
            con = [p["contacts"].to_numpy() for p in parts]
            arms[arm] = {
                "n": sum(len(p) for p in parts),
                "rec": float(np.dot(weights, [r.mean() for r in rec])),
                "con": float(np.dot(weights, [c.mean() for c in con])),
                "rec_b": weights @ np.array([_boot_means(r, n_boot, rng) for r in rec]),
                "con_b": weights @ np.array([_boot_means(c, n_boot, rng) for c in con]),
            }
        t, c = arms["treated"], arms["control"]
        diff_b = t["rec_b"] - c["rec_b"]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_b = diff_b / (t["con_b"] - c["con_b"])
            d_con = t["con"] - c["con"]
            per = (t["rec"] - c["rec"]) / d_con if d_con else np.nan
        rows.append(
            {
                by or "group": key, "n_treated": t["n"], "n_control": c["n"],
                "recovery_treated": t["rec"], "recovery_control": c["rec"],
                "incremental_recovery": t["rec"] - c["rec"],
                "ci_low": np.percentile(diff_b, 2.5), "ci_high": np.percentile(diff_b, 97.5),
                "uplift": (t["rec"] - c["rec"]) / c["rec"] if c["rec"] else np.nan,
                "contacts_treated": t["con"], "contacts_control": c["con"],
                "incremental_per_contact": per,
                "per_contact_ci_low": _pct(per_b, 2.5),
                "per_contact_ci_high": _pct(per_b, 97.5),
            }
        )  # fmt: skip
    return pd.DataFrame(rows).set_index(by or "group") if rows else pd.DataFrame()


def estimate_effect(units: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> EffectResult:
    """Incremental recovery of treatment over control: overall, per tier, per offer.

    Raises
    ------
    EffectInputError
        When there is no control or no treated account at all.
    """
    n_control = int(units["control_group"].sum())
    if n_control == 0 or n_control == len(units):
        raise EffectInputError(
            f"{len(units):,} accounts, {n_control:,} in the control group: "
            "both groups are needed to measure an effect"
        )
    return EffectResult(
        overall=_strata(units, None, n_boot, seed),
        per_tier=_strata(units, "risk_tier", n_boot, seed + 1),
        per_offer=_strata(units, "offer", n_boot, seed + 2),
        units=units,
    )


def effect_page(result: EffectResult, facts: dict) -> str:
    """The effect's HTML page: tables and a plot of the per-tier effects with their CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.reporting import figure_html, html_page, table_html

    sections = [("Overall (tiers weighted by size)", table_html(result.overall.T))]
    tier = result.per_tier
    if len(tier):
        fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
        y = np.arange(len(tier))
        err = [tier["incremental_recovery"] - tier["ci_low"],
               tier["ci_high"] - tier["incremental_recovery"]]  # fmt: skip
        ax.errorbar(tier["incremental_recovery"], y, xerr=err, fmt="o")
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(y, tier.index)
        ax.set_xlabel("incremental recovery per account (95% CI)")
        sections += [("Per tier", table_html(tier.T) + figure_html(fig, "effect per tier"))]
    sections.append(("Per offer (the tier plan's offer)", table_html(result.per_offer.T)))
    return html_page("Effect of the plans: treatment vs control", sections,
                     note=", ".join(f"{k}: {v}" for k, v in facts.items()))  # fmt: skip


def run_effect(
    scores_dir: Path,
    data_dir: Path,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon_days: int = 30,
    n_boot: int = 1000,
    log_to_mlflow: bool = True,
) -> tuple[EffectResult, str, str | None]:
    """Read the runs and the tables, estimate the effect, log it; return it, the page, run id."""
    from pipeline.jobs import load_valid_tables
    from pipeline.reporting import log_report_run

    scores = read_published(scores_dir, start, end)
    tables = load_valid_tables(data_dir).tables
    units = effect_units(scores, tables["payments"], tables["contacts"], horizon_days)
    result = estimate_effect(units, n_boot=n_boot)
    last_data = tables["payments"]["paid_at"].max().tz_convert(None)
    open_windows = int((units["as_of"] + pd.Timedelta(days=horizon_days) > last_data).sum())
    facts = {"scores": str(scores_dir), "data": str(data_dir), "from": str(start.date()),
             "to": str(end.date()), "horizon_days": horizon_days, "accounts": len(units),
             "windows_not_closed_by_the_data": open_windows, "bootstrap": n_boot}  # fmt: skip
    page = effect_page(result, facts)
    run_id = None
    if log_to_mlflow:
        metrics = {f"overall.{k}": float(v) for k, v in result.overall.iloc[0].items()}
        for name, table in (("tier", result.per_tier), ("offer", result.per_offer)):
            for key, row in table.iterrows():
                metrics[f"{name}.{key}.incremental_recovery"] = float(row.incremental_recovery)
        frames = {"overall": result.overall, "per_tier": result.per_tier,
                  "per_offer": result.per_offer}  # fmt: skip
        run_id = log_report_run(EXPERIMENT, f"effect {start.date()}..{end.date()}", page,
                                "effect_report.html", facts, metrics, frames)  # fmt: skip
    return result, page, run_id
