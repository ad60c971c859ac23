"""``propensity replay`` and ``make replay``: load, train or load a model, replay, report."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


class ReplayInputError(ValueError):
    """The data folder cannot be replayed (no truth, dates outside it); exit 2."""


@dataclass
class ReplayJobResult:
    """What a replay job measured and where it was logged."""

    summary: pd.DataFrame
    comparison: pd.DataFrame
    text: str
    page: str
    run_id: str | None
    seconds: float


def load_truth(data_dir: Path) -> pd.DataFrame:
    """Read the simulator's ``truth.parquet``; a lender's data has none, so it cannot be replayed."""
    path = Path(data_dir) / "truth.parquet"
    if not path.exists():
        raise ReplayInputError(
            f"{path} not found: the replay needs a simulated portfolio's latent truth "
            "(write one with `propensity simulate`)"
        )
    return pd.read_parquet(path)


def train_before(tables: dict[str, pd.DataFrame], start: pd.Timestamp, months: int = 12):
    """Train both heads in-process on the snapshots whose horizon closes before ``start``."""
    from features.training_set import build_training_set
    from models.config import load_config
    from models.spec import FeatureSpec
    from models.training import train
    from pipeline.jobs import training_window

    first, last = training_window(start, months, 30)
    training_set = build_training_set(tables, first, last, horizon_days=30, data_end=start)
    return train(training_set, load_config(), FeatureSpec.default()).model


def _recorded(strategies: list, k: int, sink: list, record: bool, model) -> list:
    """Return the strategies with the ``k``-th one's plans recorded into ``sink`` when asked."""
    from pipeline.simulator.replay_plans import recording

    if not record:
        return strategies
    name, plan = strategies[k]
    return [*strategies[:k], (name, recording(plan, sink, model)), *strategies[k + 1 :]]


def _publish(logged: list, run, truth: pd.DataFrame, out: Path, start, nights: int) -> str:
    """Write the recorded plans and their run's tables; return the line saying how to train."""
    from pipeline.simulator.replay_plans import publish_logged_plans

    plans, data = publish_logged_plans(logged, run.tables, truth, out)
    end = (start + pd.Timedelta(days=nights)).date()
    return (
        f"logged plans of {run.name} ({len(logged)} nights) -> {plans}; fit the treatment-effect "
        f"model with: propensity train --data {data} --as-of {end} --plans {plans}"
    )


def _compare(runs, summ: pd.DataFrame, names: list[str], baselines: list[str], fixed_value):
    """Return the paired comparison (:func:`comparisons`) and one headline per comparison.

    The reference is the first baseline; without one, the value mode's fixed
    tiers (``fixed_value``: the fixed-tier policy's and the value mode's
    names, or None), else the last strategy. With a baseline and value mode,
    value mode is also compared with its own fixed tiers.
    """
    from pipeline.simulator.replay_report import comparisons, headline

    if len(names) < 2:
        return pd.DataFrame(), []
    base = baselines[0] if baselines else (fixed_value[0] if fixed_value else names[-1])
    both = fixed_value is not None and bool(baselines)
    comp = comparisons(runs, [base, fixed_value[0]] if both else [base])
    heads = [headline(comp, summ, n, base) for n in names if n != base]
    if both:
        heads.append(headline(comp, summ, fixed_value[1], fixed_value[0]))
    return comp, heads


def run_replay_job(
    data_dir: Path,
    start: pd.Timestamp,
    nights: int,
    policies: list[Path | None],
    baselines: list[str],
    seeds: list[int],
    model_uri: str | None = None,
    train: bool = False,
    log_to_mlflow: bool = True,
    value: bool = False,
    learn_nights: int = 0,
    explore_share: float | None = None,
    publish_plans: Path | None = None,
) -> ReplayJobResult:
    """Replay every policy (with the model) and baseline from ``start``, once per seed.

    With ``value`` the first policy is also replayed in value mode at its
    fixed tiers' capacity (:func:`pipeline.simulator.strategies.value_strategy`);
    with ``learn_nights`` > 0 that strategy explores (``explore_share``) for
    those nights, fits its effect model, then plans with the learned effects,
    and the text reports the model's Qini on held-out explored units.
    With ``publish_plans`` the plans of the value mode (else of the first
    policy) on the first seed are written there as published runs, with the
    tables they led to (:mod:`pipeline.simulator.replay_plans`).
    """
    from models import tracking
    from pipeline.jobs import load_valid_tables
    from pipeline.simulator.replay import run_replay
    from pipeline.simulator.replay_report import log_replay, render, summary
    from pipeline.simulator.strategies import baseline_strategy, policy_strategy, value_strategy

    t0 = time.perf_counter()
    truth = load_truth(data_dir)
    tables = load_valid_tables(data_dir).tables
    last_event = tables["payments"]["paid_at"].max().tz_convert(None).normalize()
    if start > last_event:
        raise ReplayInputError(
            f"--from {start.date()} is after the data's last payment {last_event.date()}: "
            "replay from a date inside the simulated window"
        )
    if train:
        model = train_before(tables, start)
    else:
        model = tracking.load_model(model_uri or "models:/repayment-propensity@champion")
    strategies = [policy_strategy(p, model) for p in policies]
    if value:
        first = policies[0] if policies else None
        strategies.append(value_strategy(first, model, True, learn_nights, explore_share))
    strategies += [baseline_strategy(b) for b in baselines]
    logged: list[pd.DataFrame] = []
    k = len(policies) if value else 0  # the strategy whose plans are published
    runs = {
        s: run_replay(tables, truth, start, nights, _recorded(strategies, k, logged, publish_plans
                      is not None and s == seeds[0], model), seed=s)
        for s in seeds
    }  # fmt: skip
    summ = summary(runs)
    names = [n for n, _ in strategies]
    fixed_value = (names[0], names[len(policies)]) if value and policies else None
    comp, heads = _compare(runs, summ, names, baselines, fixed_value)
    lines = [summ.T.to_string(float_format=lambda v: f"{v:,.3f}"), *heads]
    if value and learn_nights > 0:
        from pipeline.simulator.learning import qini_text

        learner = strategies[len(policies)][1].learner
        lines.append(qini_text(learner.runs))
    seconds = time.perf_counter() - t0
    n_accounts = len(tables["accounts"])
    facts = {
        "data": str(data_dir),
        "from": str(start.date()),
        "nights": nights,
        "seeds": ",".join(map(str, seeds)),
        "accounts": n_accounts,
        "model": "trained in-process before --from" if train else (model_uri or "champion"),
        "capacity": "value mode: the fixed tiers' planned calls and texts each night"
        if value
        else "each strategy's own plans",
        "seconds": round(seconds, 1),
        "nights_per_second": round(nights * len(seeds) * len(names) / seconds, 2),
    }
    page = render(runs, summ, comp, facts)
    run_id = None
    if log_to_mlflow:
        run_id = log_replay(runs, summ, comp, page, facts, note="\n".join(heads))
    lines.append(
        f"replayed {n_accounts:,} accounts x {nights} nights x {len(names)} strategies x "
        f"{len(seeds)} seeds in {seconds:.0f}s"
    )
    if publish_plans is not None:
        lines.append(_publish(logged, runs[seeds[0]][k], truth, publish_plans, start, nights))
    return ReplayJobResult(summ, comp, "\n".join(lines), page, run_id, seconds)
