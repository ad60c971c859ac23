"""The model jobs of ``propensity``: train, promote, rollback, recalibrate, report, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli_common import (
    EXIT_DATA,
    EXIT_INPUT,
    ApproverOpt,
    DataOpt,
    NoteOpt,
    fail,
    open_store_or_exit,
    parse_date,
    require_approval,
    store_errors,
)


def train(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Training date D (YYYY-MM-DD).")],
    months: Annotated[int, typer.Option("--months", min=3, help="Monthly snapshots.")] = 12,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Label horizon, days.")] = 30,
    config: Annotated[
        Path | None, typer.Option("--config", help="Hyper-parameter YAML (default packaged).")
    ] = None,
    experiment: Annotated[str | None, typer.Option("--experiment")] = None,
    plans: Annotated[
        Path | None,
        typer.Option(
            "--plans",
            help="Published runs (as_of=D/scores.parquet) whose randomised arms fit the "
            "treatment-effect model, logged with the heads.",
        ),
    ] = None,
) -> None:
    """Train both heads on snapshots before D, log to MLflow, register a challenger."""
    from pipeline.io import DataReadError
    from pipeline.jobs import train_job

    d = parse_date(as_of, "--as-of")
    if plans is not None and not plans.is_dir():  # before hours of training, not after
        raise fail(EXIT_INPUT, f"--plans {plans}: no such folder of published runs")
    open_store_or_exit(must_exist=False)
    with store_errors():
        try:
            job = train_job(
                data, d, months=months, horizon_days=horizon, config_path=config,
                experiment=experiment, plans_dir=plans,
            )  # fmt: skip
        except (DataReadError, ValueError) as exc:
            raise fail(EXIT_INPUT, str(exc)) from None
    r = job.result
    typer.echo(
        f"trained on snapshots {job.window[0].date()}..{job.window[1].date()}: "
        f"registered repayment-propensity version {job.model_version} as challenger "
        f"(run {job.run_id})"
    )
    for head, splits in r.metrics.items():
        t = splits["test"]
        typer.echo(
            f"  {head:<12} out-of-time AUC {t['auc']:.4f}  KS {t['ks']:.4f}  "
            f"Brier {t['brier']:.4f}  ECE {t['ece']:.4f}"
        )
    typer.echo(f"  gate vs baselines: {'pass' if r.gate.accepted else 'fail'}")
    if r.effects is not None and r.effects.model is not None:
        for row in r.effects.table.itertuples():
            typer.echo(
                f"  effect {row.arm:<8} observed {row.observed_effect:+.4f} "
                f"(95% CI {row.ci_low:+.4f} to {row.ci_high:+.4f}), Qini {row.qini_coefficient:.4f}"
            )


def promote(
    approver: ApproverOpt = None,
    note: NoteOpt = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Version to promote (default: challenger).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data folder (default: the version's own).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Evaluation date (default: the version's own).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config YAML whose gate section sets the tolerances."),
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option("--override-reason", help="Why a gate looser than the default is used."),
    ] = None,
) -> None:
    """Move alias champion to the challenger if it is no worse out of time; else refuse."""
    require_approval(approver, note, "promote")
    from models.registry import PromotionRefused

    d = parse_date(as_of, "--as-of") if as_of else None
    open_store_or_exit(must_exist=True)
    from pipeline.io import DataReadError
    from pipeline.jobs import promote_job

    with store_errors():
        try:
            decision = promote_job(
                version,
                data_dir=data,
                as_of=d,
                config_path=config,
                approver=approver,
                note=note,
                override_reason=override_reason,
            )
        except PromotionRefused as exc:
            raise fail(EXIT_DATA, str(exc)) from None
        except (DataReadError, ValueError) as exc:
            raise fail(EXIT_INPUT, str(exc)) from None
    typer.echo(decision.summary())
    already = decision.champion_version is not None and (
        decision.champion_version == decision.challenger_version
    )
    if decision.accepted:
        typer.echo(f"  champion is now v{decision.challenger_version}, approved by {approver}")
    if not decision.accepted and not already:
        raise typer.Exit(EXIT_DATA)


def rollback(
    to: Annotated[str, typer.Option("--to", help="Earlier version to make champion again.")],
    approver: ApproverOpt = None,
    note: NoteOpt = None,
) -> None:
    """Point alias champion back at an earlier, once-promoted version; record who and why."""
    require_approval(approver, note, "rollback")
    open_store_or_exit(must_exist=True)
    from models.registry import Approval, PromotionRefused
    from models.registry import rollback as do_rollback

    with store_errors():
        try:
            done = do_rollback(to, approval=Approval(approver or "", note or ""))
        except PromotionRefused as exc:
            raise fail(EXIT_DATA, str(exc)) from None
    typer.echo(
        f"Rolled back: champion {done['from']} -> {done['to']} at {done['decided_at']}, "
        f"approved by {done['approver']} ({done['reason']})"
    )


def recalibrate(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Date D (YYYY-MM-DD).")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version to recalibrate (default: champion).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config YAML whose gate section applies.")
    ] = None,
) -> None:
    """Move a model's calibration to the newest labelled month (trees kept), gate and register it."""
    d = parse_date(as_of, "--as-of")
    open_store_or_exit(must_exist=True)
    from models.recalibrate import RecalibrationRefused
    from pipeline.io import DataReadError
    from pipeline.jobs import recalibrate_job

    with store_errors():
        try:
            job = recalibrate_job(data, d, version=version, config_path=config)
        except RecalibrationRefused as exc:
            raise fail(EXIT_DATA, f"recalibration refused: {exc}") from None
        except (DataReadError, ValueError) as exc:
            raise fail(EXIT_INPUT, str(exc)) from None
    typer.echo(job.recalibration.summary())
    typer.echo(job.decision.summary())
    if job.model_version is None:
        raise fail(EXIT_DATA, "the recalibrated model failed the gate: nothing registered")
    typer.echo(
        f"registered repayment-propensity version {job.model_version} as challenger "
        f"(run {job.run_id})"
    )


def report(
    version: Annotated[
        str | None, typer.Option("--version", help="Model version (default: challenger).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to copy the report into.")] = Path(
        "reports"
    ),
) -> None:
    """Copy a version's self-contained HTML model report to <out>/model_report_v<N>.html."""
    open_store_or_exit(must_exist=True)
    from models.registry import download_report

    with store_errors():
        path = download_report(version, out)
    typer.echo(f"model report: {path}")


def evaluate(
    accounts: Annotated[int, typer.Option("--accounts", min=500)] = 30000,
    months: Annotated[int, typer.Option("--months", min=12)] = 18,
    seed: Annotated[int, typer.Option("--seed")] = 90210,
    scenario: Annotated[
        str, typer.Option("--scenario", help="Simulated world: base or drift.")
    ] = "base",
) -> None:
    """Check the quality bar on a fresh simulated portfolio (reads the simulator's truth)."""
    from pipeline.quality import run_quality_bar

    try:
        text, passed = run_quality_bar(accounts, months, seed, scenario)
    except ValueError as exc:
        raise fail(EXIT_INPUT, str(exc)) from None
    typer.echo(text)
    if not passed:
        raise typer.Exit(EXIT_DATA)
