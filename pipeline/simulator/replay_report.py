"""The replay's report: figures per strategy, the comparison with a baseline, HTML and MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.reporting import figure_html, html_page, log_report_run, mean_ci, table_html
from pipeline.simulator.replay import METRICS, StrategyRun, metrics_table

#: Relative differences against the baseline reported per seed.
COMPARED: tuple[str, ...] = ("recovered", "recovery_per_contact", "contacts", "cure_rate")
EXPERIMENT = "replay"


def summary(runs_by_seed: dict[int, list[StrategyRun]]) -> pd.DataFrame:
    """Each strategy's figures averaged over the seeds (violations summed)."""
    frames = [metrics_table(runs).assign(seed=seed) for seed, runs in runs_by_seed.items()]
    allm = pd.concat(frames)
    mean = allm.drop(columns="seed").groupby(level=0, sort=False).mean()
    viol = [c for c in allm.columns if c.startswith("violations")]
    mean[viol] = allm[viol].groupby(level=0, sort=False).sum()
    return mean[[*METRICS, *[c for c in viol if c != "violations"]]]


def comparison(runs_by_seed: dict[int, list[StrategyRun]], baseline: str) -> pd.DataFrame:
    """Per strategy and figure: the mean relative difference to ``baseline`` and its 95% CI.

    The difference is computed per seed on the same draws (paired), then
    averaged; the interval is a t-interval over the seeds.
    """
    rows = []
    seeds = sorted(runs_by_seed)
    tables = {s: metrics_table(runs_by_seed[s]) for s in seeds}
    names = [n for n in tables[seeds[0]].index if n != baseline]
    for name in names:
        for metric in COMPARED:
            rel = np.array(
                [tables[s].loc[name, metric] / tables[s].loc[baseline, metric] - 1 for s in seeds]
            )
            m, lo, hi = mean_ci(rel)
            rows.append(
                {
                    "strategy": name,
                    "figure": metric,
                    "vs": baseline,
                    "mean_change": m,
                    "ci_low": lo,
                    "ci_high": hi,
                    "seeds": len(seeds),
                }  # fmt: skip
            )
    return pd.DataFrame(rows).set_index("strategy")


def comparisons(runs_by_seed: dict[int, list[StrategyRun]], references: list[str]) -> pd.DataFrame:
    """:func:`comparison` against each reference in turn, stacked (column ``vs`` names it).

    Against the first reference every other strategy is compared; against a
    later one only the strategies that are no reference (the first
    reference's inverse figures would repeat).
    """
    refs = list(dict.fromkeys(references))
    parts = [comparison(runs_by_seed, refs[0])]
    for ref in refs[1:]:
        comp = comparison(runs_by_seed, ref)
        parts.append(comp[~comp.index.isin(refs)])
    return pd.concat(parts)


def per_seed(runs_by_seed: dict[int, list[StrategyRun]]) -> pd.DataFrame:
    """Each seed's figures per strategy (the draws the paired intervals come from)."""
    frames = [metrics_table(runs)[list(METRICS)].assign(seed=s) for s, runs in runs_by_seed.items()]
    return pd.concat(frames).reset_index().set_index(["strategy", "seed"]).sort_index(level=1)


def capacity(runs_by_seed: dict[int, list[StrategyRun]]) -> pd.DataFrame:
    """Per strategy: calls and texts a day its plans allowed, mean over nights and seeds.

    A plan's caps cover 7 days, so a night's allowance is the sum of
    ``max_calls_7d`` (``max_sms_7d``) over its plans divided by 7.
    """
    rows: dict[str, list[dict[str, float]]] = {}
    for runs in runs_by_seed.values():
        for run in runs:
            p = run.plans if run.plans is not None else pd.DataFrame({"as_of": []})
            nightly = {
                f"planned_{k}_per_day": (
                    p.groupby("as_of")[col].sum().mean() / 7 if col in p.columns else np.nan
                )
                for k, col in (("calls", "max_calls_7d"), ("sms", "max_sms_7d"))
            }
            rows.setdefault(run.name, []).append(nightly)
    return pd.DataFrame({n: pd.DataFrame(r).mean() for n, r in rows.items()}).T.rename_axis(
        "strategy"
    )


def headline(comp: pd.DataFrame, summ: pd.DataFrame, strategy: str, baseline: str) -> str:
    """One paragraph: recovery per contact, recovered and contacts vs the baseline."""
    c = comp.loc[[strategy]]
    c = c[c["vs"] == baseline].set_index("figure")

    def pct(fig: str) -> str:
        r = c.loc[fig]
        ci = "" if np.isnan(r.ci_low) else f" (95% CI {r.ci_low:+.1%} to {r.ci_high:+.1%})"
        return f"{r.mean_change:+.1%}{ci}"

    viol = int(summ.loc[[strategy, baseline], "violations"].sum())
    return (
        f"{strategy} vs {baseline} over {int(c['seeds'].iloc[0])} seeds: recovery per contact "
        f"{pct('recovery_per_contact')}, amount recovered {pct('recovered')}, contacts "
        f"{pct('contacts')}, cure rate {pct('cure_rate')}; legal-cap violations {viol}"
    )


def render(
    runs_by_seed: dict[int, list[StrategyRun]], summ: pd.DataFrame, comp: pd.DataFrame, facts: dict
) -> str:
    """The replay's HTML page: figures, comparison, and daily recovery and contacts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = runs_by_seed[min(runs_by_seed)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for run in first:
        d = run.daily
        axes[0].plot(d["day"], d["recovered"].cumsum(), label=run.name)
        axes[1].plot(d["day"], d["calls"] + d["sms"], label=run.name)
    axes[0].set_title("amount recovered, cumulative")
    axes[1].set_title("outbound calls + SMS per day")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    note = ", ".join(f"{k}: {v}" for k, v in facts.items())
    return html_page(
        "Closed-loop replay",
        [
            ("Figures per strategy (mean over seeds; violations summed)", table_html(summ.T)),
            ("Change against the references (paired by seed)", table_html(comp)),
            ("Calls and texts a day the plans allowed", table_html(capacity(runs_by_seed))),
            (f"Seed {min(runs_by_seed)}", figure_html(fig, "daily recovery and contacts")),
        ],
        note=note,
    )


def log_replay(
    runs_by_seed: dict[int, list[StrategyRun]],
    summ: pd.DataFrame,
    comp: pd.DataFrame,
    page: str,
    facts: dict,
    note: str = "",
) -> str:
    """Log the replay as an MLflow run: totals, paired intervals, seeds, capacity, the pages.

    Metrics: ``<strategy>.<figure>`` (mean over seeds), per comparison
    ``<strategy>.vs_<reference>.<figure>`` with ``.ci_low`` and ``.ci_high``
    (paired 95% interval over the seeds), and ``<strategy>.planned_calls_per_day``
    / ``planned_sms_per_day`` (:func:`capacity`). Artifacts: the report page,
    ``comparison.html`` (the paired table alone) and the tables as CSV.
    """
    cap = capacity(runs_by_seed)
    metrics = {f"{s}.{m}": float(v) for s, row in summ.iterrows() for m, v in row.items()}
    metrics.update({f"{s}.{m}": float(v) for s, row in cap.iterrows() for m, v in row.items()})
    for row in comp.reset_index().itertuples(index=False):
        key = f"{row.strategy}.vs_{row.vs}.{row.figure}"
        metrics[key] = float(row.mean_change)
        metrics[f"{key}.ci_low"], metrics[f"{key}.ci_high"] = float(row.ci_low), float(row.ci_high)
    frames = {"summary": summ, "comparison": comp, "per_seed": per_seed(runs_by_seed),
              "capacity": cap}  # fmt: skip
    pages = {"comparison.html": html_page("Replay: paired comparison", [
        ("Change against each reference (paired by seed, 95% CI over the seeds)", table_html(comp)),
        ("Figures per strategy (mean over seeds)", table_html(summ.T)),
        ("Calls and texts a day the plans allowed (capacity)", table_html(cap)),
    ], note=note)}  # fmt: skip
    return log_report_run(
        EXPERIMENT,
        f"replay {facts.get('from', '')} x{facts.get('nights', '')}",
        page,
        "replay_report.html",
        facts,
        metrics,
        frames,
        note=note,
        pages=pages,
    )
