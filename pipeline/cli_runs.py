"""The run jobs of ``propensity``: the nightly score, and replay and effect, which judge plans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli_common import (
    EXIT_DATA,
    EXIT_INPUT,
    EXIT_MODEL,
    EXIT_STORE,
    DataOpt,
    EngineOpt,
    ShardsOpt,
    WorkersOpt,
    fail,
    is_sharded,
    no_spark,
    open_store_or_exit,
    out_of_resources,
    parse_date,
    unreadable,
    workers_ahead,
)


def score(
    ctx: typer.Context,
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring date D (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="Output root; writes <out>/as_of=D/.")],
    model_uri: Annotated[
        str | None,
        typer.Option("--model-uri", help="MLflow model URI (default: the champion)."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy YAML (default: the packaged one).")
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for a run of the same date.")
    ] = 0.0,
    no_mlflow: Annotated[
        bool, typer.Option("--no-mlflow", help="Do not log the monitoring run.")
    ] = False,
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale",
            help="Deliberate backfill: skip the check of D against the export's dates.",
        ),
    ] = False,
    shards: ShardsOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = "local",
) -> None:
    """Score every account overdue at D and publish scores, rejects and a manifest."""
    workers_ahead(ctx, "score", data, shards, workers, engine)
    from pipeline.score import DEFAULT_MODEL_URI

    d = parse_date(as_of, "--as-of")
    if not no_mlflow or (model_uri or DEFAULT_MODEL_URI).startswith(("models:/", "runs:/")):
        open_store_or_exit(must_exist=True)  # before reading the export: a store fault fails fast
    kwargs = {
        "model_uri": model_uri,
        "policy_path": policy,
        "wait_seconds": wait,
        "log_to_mlflow": not no_mlflow,
        "allow_stale": allow_stale,
    }
    _print_published(_score_or_exit(data, d, out, kwargs, shards, workers, engine))


def _score_or_exit(data: Path, d, out: Path, kwargs: dict, shards, workers, engine):
    """Run the scoring, shard by shard or whole; each failure ends in its exit code and one line."""
    from concurrent.futures.process import BrokenProcessPool

    from models.store import StoreUnavailableError
    from models.tracking import ModelNotFoundError
    from pipeline.asof import AsOfImplausibleError
    from pipeline.io import DataReadError
    from pipeline.policy import PolicyError
    from pipeline.publish import RunLockedError
    from pipeline.score import RejectLimitError, run_scoring

    try:
        if is_sharded(data, shards, engine):
            from pipeline.shard_score import run_scoring_sharded

            return run_scoring_sharded(
                data, d, out, n_shards=shards, workers=workers, engine=engine, **kwargs
            )
        return run_scoring(data, d, out, **kwargs)
    except StoreUnavailableError as exc:
        raise fail(EXIT_STORE, str(exc)) from None
    except AsOfImplausibleError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    except DataReadError as exc:
        raise fail(EXIT_INPUT, f"{exc}; fix the input table and rerun") from None
    except PolicyError as exc:
        raise fail(EXIT_INPUT, f"invalid policy: {exc}") from None
    except RunLockedError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    except RejectLimitError as exc:
        raise fail(EXIT_DATA, str(exc)) from None
    except ImportError as exc:
        raise no_spark(exc) from None
    except ModelNotFoundError as exc:
        raise fail(
            EXIT_MODEL,
            f"{exc}; train and promote a model (propensity train, propensity promote) "
            "or pass --model-uri",
        ) from None
    except OSError as exc:
        raise unreadable(exc, out) from None
    except (BrokenProcessPool, MemoryError) as exc:
        raise out_of_resources(exc) from None
    except Exception as exc:
        if type(exc).__name__ != "MlflowException":
            raise
        cause = (str(exc).strip().splitlines() or ["no detail"])[0]
        raise fail(EXIT_STORE, f"model store unavailable or refused the request: {cause}") from None


def _print_published(outcome) -> None:
    """Print what a published run holds: its counts, its plans per kind, its versions."""
    m = outcome.manifest
    c = m["counts"]
    typer.echo(
        f"published {outcome.output_dir}: {c['scored']:,} scored, {c['rejected']:,} rejected, "
        f"{c['out_of_scope']:,} out of scope (of {c['input_accounts']:,} accounts)"
    )
    o = m["outputs"]
    for title, key in (
        ("accounts per tier", "per_tier"),
        ("contact intensity", "per_intensity"),
        ("offer", "per_offer"),
        ("suppressed", "per_suppressed_reason"),
        ("approach", "per_approach"),
    ):
        typer.echo(f"  {title + ':':<19}" + ", ".join(f"{k} {v:,}" for k, v in o[key].items()))
    typer.echo(f"  {'control group:':<19}{o['control_group']:,} accounts")
    if "allocation" in m:  # value mode
        a = m["allocation"]
        typer.echo(
            f"  {'value allocation:':<19}calls {a['calls_used']:,}/{a['calls_capacity']:,}, "
            f"texts {a['sms_used']:,}/{a['sms_capacity']:,}, proven gap {a['gap']:.1e}"
        )
    typer.echo(f"  model version {m['model_version']}, policy version {m['policy_version']}")


def replay(
    data: DataOpt,
    start: Annotated[str, typer.Option("--from", help="First replayed day D1 (YYYY-MM-DD).")],
    nights: Annotated[int, typer.Option("--nights", min=1)] = 60,
    policy: Annotated[
        list[Path] | None,
        typer.Option("--policy", help="Policy YAML planned with the model (repeatable)."),
    ] = None,
    baseline: Annotated[
        list[str] | None, typer.Option("--baseline", help="Named baseline, e.g. dpd_buckets.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="First seed of the debtors' draws.")] = 0,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Number of seeds.")] = 1,
    model_uri: Annotated[
        str | None, typer.Option("--model-uri", help="MLflow model URI (default: the champion).")
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Train a model in-process on the data before --from.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the HTML report here.")
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
    value: Annotated[
        bool,
        typer.Option(
            "--value", help="Also replay the first policy in value mode at its fixed capacity."
        ),
    ] = False,
    learn_nights: Annotated[
        int,
        typer.Option(
            "--learn-nights",
            min=0,
            help="Value mode explores this many nights, then plans with learned effects "
            "(default 0: the priors every night, which recovered more in the measured replay).",
        ),
    ] = 0,
    explore_share: Annotated[
        float,
        typer.Option(
            "--explore-share",
            min=0.0,
            max=1.0,
            help="Share of eligible episodes explored while learning (a short replay needs most).",
        ),
    ] = 1.0,
    publish_plans: Annotated[
        Path | None,
        typer.Option(
            "--publish-plans",
            help="Write the first seed's plans (value mode with --value, else the first policy) "
            "as published runs, and their tables, for train --plans.",
        ),
    ] = None,
) -> None:
    """Replay policies and baselines night after night on a simulated portfolio and compare."""
    from models.tracking import ModelNotFoundError
    from pipeline.io import DataReadError
    from pipeline.policy import PolicyError
    from pipeline.simulator.replay_job import ReplayInputError, run_replay_job

    d1 = parse_date(start, "--from")
    baselines = list(baseline or [])
    policies: list[Path | None] = list(policy or [])
    if not policies:
        policies = [None]  # the packaged default policy
    try:
        result = run_replay_job(
            data, d1, nights, policies, baselines, list(range(seed, seed + seeds)),
            model_uri=model_uri, train=train, log_to_mlflow=not no_mlflow, value=value,
            learn_nights=learn_nights, explore_share=explore_share,
            publish_plans=publish_plans,
        )  # fmt: skip
    except (DataReadError, ReplayInputError) as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    except PolicyError as exc:
        raise fail(EXIT_INPUT, f"invalid policy: {exc}") from None
    except KeyError as exc:
        raise fail(EXIT_INPUT, str(exc.args[0])) from None
    except ModelNotFoundError as exc:
        raise fail(EXIT_MODEL, f"{exc}; pass --train or --model-uri") from None
    typer.echo(result.text)
    if report is not None:
        report.write_text(result.page, encoding="utf-8")
        typer.echo(f"report written to {report}")
    if result.run_id:
        typer.echo(f"MLflow run {result.run_id} (experiment replay)")


def effect(
    scores: Annotated[Path, typer.Option("--scores", help="Output root of the scoring runs.")],
    data: DataOpt,
    start: Annotated[str, typer.Option("--from", help="First run date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last run date (YYYY-MM-DD).")],
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Days of outcome.")] = 30,
    n_boot: Annotated[int, typer.Option("--bootstrap", min=100)] = 1000,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the HTML report here.")
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
) -> None:
    """Estimate the incremental recovery of the plans over the control group from published runs."""
    from pipeline.effect import EffectInputError, run_effect
    from pipeline.io import DataReadError

    d1, d2 = parse_date(start, "--from"), parse_date(end, "--to")
    if d2 < d1:
        raise fail(EXIT_INPUT, f"--to {end} is before --from {start}")
    try:
        result, page, run_id = run_effect(
            scores, data, d1, d2, horizon, n_boot, log_to_mlflow=not no_mlflow
        )
    except (DataReadError, EffectInputError) as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    for title, table in (
        ("overall", result.overall),
        ("per tier", result.per_tier),
        ("per offer", result.per_offer),
    ):
        typer.echo(f"== {title}")
        typer.echo(table.T.to_string(float_format=lambda v: f"{v:,.3f}"))
    if report is not None:
        report.write_text(page, encoding="utf-8")
        typer.echo(f"report written to {report}")
    if run_id:
        typer.echo(f"MLflow run {run_id} (experiment effect)")
