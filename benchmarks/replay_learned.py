"""Measure value mode before and after learned effects against fixed tiers and DPD buckets.

Replays, on one simulated portfolio and the same draws per seed: the default
policy (fixed tiers), its value mode with the priors, its value mode that
explores for ``--learn-nights`` and then plans with the learned effects, the
same with contact costs set to 0 (a diagnostic: it then fills the capacity,
so it asks whether the learned effects place the same contacts better), and
``dpd_buckets``. Prints paired 95% CIs over the seeds (whole run, and the
nights after learning) and the effect model's held-out Qini; writes each
seed's figures to ``--out`` as it goes (JSON lines).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/replay_learned.py \\
        --data DIR --from 2025-09-01 --nights 60 --seeds 0 1 2 3 4 --out figures.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.jobs import load_valid_tables
from pipeline.reporting import mean_ci
from pipeline.simulator.learning import qini_text
from pipeline.simulator.replay import run_replay
from pipeline.simulator.replay_job import load_truth, train_before
from pipeline.simulator.replay_report import comparison
from pipeline.simulator.strategies import baseline_strategy, policy_strategy, value_strategy

FIGURES = ("recovery_per_contact", "recovered", "contacts", "cure_rate")


def _capacity_probe(name, fn, log):
    """Wrap a strategy to keep each night's allocation (capacity and use)."""

    def plan(night):
        out = fn(night)
        if "allocation" in out.attrs:
            log.append(
                {"strategy": name, "as_of": str(night.as_of.date()), **out.attrs["allocation"]}
            )
        return out

    plan.learner = getattr(fn, "learner", None)
    return name, plan


def _free_contact_policy(path: Path) -> Path:
    """Write the default policy with the packaged value settings at zero contact cost."""
    import yaml

    from pipeline import policy as policy_module
    from pipeline.value_mode import packaged_value_settings

    data = yaml.safe_load(
        Path(policy_module.__file__).with_name("default_policy.yaml").read_text("utf-8")
    )
    data["value_allocation"] = {**packaged_value_settings(), "cost_per_call": 0.0,
                                "cost_per_sms": 0.0}  # fmt: skip
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


def _renamed(named, suffix):
    """The strategy under ``name-suffix`` (names must differ within a replay)."""
    name, fn = named
    return f"{name}-{suffix}", fn


def _after(run, learn_nights):
    """Recovered, contacts and per contact over the nights after learning."""
    d = run.daily.iloc[learn_nights:]
    contacts = float(d["calls"].sum() + d["sms"].sum())
    rec = float(d["recovered"].sum())
    return {"recovered": rec, "contacts": contacts, "recovery_per_contact": rec / contacts}


def main() -> None:
    """Run the measurement and print the comparison."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--from", dest="start", default="2025-09-01")
    ap.add_argument("--nights", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--learn-nights", type=int, default=20)
    ap.add_argument("--explore-share", type=float, default=0.3)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = pd.Timestamp(args.start)
    tables = load_valid_tables(args.data).tables
    truth = load_truth(args.data)
    model = train_before(tables, start)
    alloc: list[dict] = []
    free = _free_contact_policy(args.out.with_suffix(".free_policy.yaml"))
    strategies = [
        policy_strategy(None, model),
        _capacity_probe(*value_strategy(None, model), alloc),
        _capacity_probe(
            *value_strategy(None, model, True, args.learn_nights, args.explore_share), alloc
        ),
        _capacity_probe(
            *_renamed(
                value_strategy(free, model, True, args.learn_nights, args.explore_share), "free"
            ),
            alloc,
        ),
        baseline_strategy("dpd_buckets"),
    ]
    names = [n for n, _ in strategies]
    runs = {}
    with args.out.open("a") as fh:
        for seed in args.seeds:
            runs[seed] = run_replay(tables, truth, start, args.nights, strategies, seed=seed)
            after = {r.name: _after(r, args.learn_nights) for r in runs[seed]}
            fh.write(json.dumps({"seed": seed, "metrics": {r.name: r.metrics for r in runs[seed]},
                                 "after_learning": after}, default=float) + "\n")  # fmt: skip
            fh.flush()
    print(qini_text(strategies[2][1].learner.runs))
    print(qini_text(strategies[3][1].learner.runs))
    a = pd.DataFrame(alloc)
    a["calls_share"] = a["calls_used"] / a["calls_capacity"].clip(lower=1)
    a["sms_share"] = a["sms_used"] / a["sms_capacity"].clip(lower=1)
    print(a.groupby("strategy")[["calls_share", "sms_share", "explored"]].mean().to_string())
    for base in (names[0], names[4]):
        comp = comparison(runs, base)
        comp = comp[comp["figure"].isin(FIGURES) & comp.index.isin(names[1:4])]
        print(
            f"\nagainst {base} (whole run):\n{comp.to_string(float_format=lambda v: f'{v:+.4f}')}"
        )
    for base in (names[0], names[4]):
        for name in names[1:4]:
            for fig in ("recovery_per_contact", "recovered", "contacts"):
                rel = [
                    _after(next(r for r in runs[s] if r.name == name), args.learn_nights)[fig]
                    / _after(next(r for r in runs[s] if r.name == base), args.learn_nights)[fig]
                    - 1
                    for s in args.seeds
                ]
                m, lo, hi = mean_ci(np.array(rel))
                print(f"after learning, {name} vs {base}, {fig}: {m:+.2%} ({lo:+.2%} to {hi:+.2%})")


if __name__ == "__main__":
    main()
