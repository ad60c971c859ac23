"""Promotion and rollback of the champion, with a human audit trail in the registry.

Every promotion decision (accepted or refused) and every rollback is recorded
twice: as tags on the model version (``promotion.*``, ``rollback.*``: who,
when, why, the gate's figures and settings, the previous champion) and as a
run of the experiment ``repayment-propensity-promotions`` (run name
``promote v3`` or ``rollback to v2``, the same facts as tags, the figures as
metrics and ``decision.json``), which is the promotion log a reviewer reads in
the MLflow UI. A promotion needs a named approver and a note; a gate looser
than the packaged defaults needs an override reason as well. Promoting a
version older than the champion is refused: that is a rollback, which has
its own function and message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from models.config import TrainingConfig, load_config
from models.gate import PromotionDecision, evaluate_gate, loosened
from models.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    NOTE_TAG,
    WRITER_LOCKED,
    WRITER_TAG,
    ModelNotFoundError,
    alias_version,
    client,
    ensure_experiment,
    load_model,
    tracking_lock,
    tracking_uri,
    version_info,
    with_retry,
)

log = logging.getLogger(__name__)

PROMOTION_EXPERIMENT = "repayment-propensity-promotions"


class PromotionRefused(ValueError):
    """A promotion or rollback that policy forbids (no approver, loosened gate, wrong version)."""


@dataclass(frozen=True)
class Approval:
    """Who approves a change of champion, why, and the reason for any loosened gate."""

    approver: str
    note: str
    override_reason: str = ""

    def __post_init__(self) -> None:
        if not self.approver.strip():
            raise PromotionRefused("a promotion needs a named approver (--approver NAME)")
        if not self.note.strip():
            raise PromotionRefused("a promotion needs a note saying why (--note TEXT)")


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")


def promote(
    version: str | int | None = None,
    *,
    eval_frame: pd.DataFrame,
    approval: Approval,
    model_name: str = MODEL_NAME,
    config: TrainingConfig | None = None,
) -> PromotionDecision:
    """Gate a challenger against the champion and move alias ``champion`` if it passes.

    Both models are scored on ``eval_frame`` (the most recent out-of-time
    months with labels). The decision, its figures, the approver, the note
    and the previous champion are recorded (version tags and a run of the
    promotion log), whether accepted or refused.

    Parameters
    ----------
    version : str or int, optional
        Version to promote (default: the one aliased ``challenger``).
    eval_frame : DataFrame
        Features plus ``paid_any`` and ``coverage``.
    approval : Approval
        Who approves and why (and why the gate is loosened, if it is).
    model_name : str
    config : TrainingConfig, optional
        Its ``gate`` section sets the tolerances (default: the packaged config).

    Returns
    -------
    PromotionDecision

    Raises
    ------
    PromotionRefused
        When the gate is looser than the packaged defaults without an override
        reason, or the version is older than the champion (use :func:`rollback`).
    ModelNotFoundError
        When the version or the challenger alias does not exist.
    """
    cfg = config or load_config()
    looser = loosened(cfg.gate, load_config().gate)
    if looser and not approval.override_reason.strip():
        raise PromotionRefused(
            f"the gate is looser than the packaged defaults ({'; '.join(looser)}): "
            "pass --override-reason TEXT to record why, or use the default gate"
        )
    candidate = str(version) if version is not None else alias_version(CHALLENGER, model_name)
    if candidate is None:
        raise ModelNotFoundError(f"model {model_name!r} has no {CHALLENGER!r} alias: train first")
    version_info(candidate, model_name)  # raises ModelNotFoundError for an unknown version
    champion = alias_version(CHAMPION, model_name)
    if champion == candidate:
        return PromotionDecision(
            accepted=False,
            challenger_version=candidate,
            champion_version=champion,
            figures={},
            note=f"version {candidate} is already the champion: nothing to do",
        )
    if champion is not None and int(candidate) < int(champion):
        raise PromotionRefused(
            f"version {candidate} is older than the champion v{champion}: to go back to it, "
            f"use `propensity rollback --to {candidate}`"
        )
    challenger = load_model(f"models:/{model_name}/{candidate}")
    previous = load_model(f"models:/{model_name}/{champion}") if champion else None
    decision = evaluate_gate(
        challenger,
        previous,
        eval_frame,
        tolerance=cfg.gate.tolerance,
        max_ece=cfg.gate.max_ece,
        threshold=cfg.labels.full_coverage_threshold,
        challenger_version=candidate,
        champion_version=champion,
    )
    tags = {
        **decision.tags(),
        "promotion.tolerance": str(cfg.gate.tolerance),
        "promotion.max_ece": str(cfg.gate.max_ece),
        "promotion.decided_at": _now(),
        "promotion.approver": approval.approver,
        "promotion.reason": approval.note,
        "promotion.override_reason": approval.override_reason or "-",
        "promotion.loosened_gate": "; ".join(looser) or "no",
        "promotion.previous_champion": f"v{champion}" if champion else "none",
    }
    with tracking_lock():
        if decision.accepted:
            with_retry(client().set_registered_model_alias, model_name, CHAMPION, candidate)
        _tag_version(model_name, candidate, tags)
        _log_event(f"promote v{candidate}", tags, decision.figures, decision.summary())
    log.info("promotion of v%s: %s", candidate, tags["promotion.decision"])
    return decision


def rollback(
    to_version: str | int, *, approval: Approval, model_name: str = MODEL_NAME
) -> dict[str, str]:
    """Point alias ``champion`` back at an earlier version that was once promoted.

    Only a version whose promotion was accepted before can be rolled back to:
    a version that never passed the gate reaches the floor only through
    :func:`promote`.

    Returns
    -------
    dict
        ``from``, ``to``, ``approver``, ``reason``, ``decided_at``.

    Raises
    ------
    PromotionRefused
        When the version is already the champion or was never promoted.
    ModelNotFoundError
        When the version does not exist.
    """
    target = str(to_version)
    info = version_info(target, model_name)
    current = alias_version(CHAMPION, model_name)
    if current == target:
        raise PromotionRefused(f"version {target} is already the champion: nothing to roll back")
    if info["tags"].get("promotion.decision") != "accepted":
        raise PromotionRefused(
            f"version {target} was never promoted (no accepted promotion in its tags): "
            "only a version that passed the gate can be rolled back to"
        )
    record = {
        "rollback.from": f"v{current}" if current else "none",
        "rollback.to": f"v{target}",
        "rollback.approver": approval.approver,
        "rollback.reason": approval.note,
        "rollback.decided_at": _now(),
    }
    with tracking_lock():
        with_retry(client().set_registered_model_alias, model_name, CHAMPION, target)
        _tag_version(model_name, target, record)
        if current:
            _tag_version(model_name, current, {"rolled_back_at": record["rollback.decided_at"]})
        summary = (
            f"Rolled back the champion from {record['rollback.from']} to v{target}, "
            f"approved by {approval.approver}: {approval.note}"
        )
        _log_event(f"rollback to v{target}", record, {}, summary)
    log.info("rollback: champion %s -> v%s", record["rollback.from"], target)
    return {k.split(".", 1)[1]: v for k, v in record.items()}


def _tag_version(model_name: str, version: str, tags: dict[str, str]) -> None:
    mlc = client()
    for key, value in tags.items():
        with_retry(mlc.set_model_version_tag, model_name, version, key, str(value)[:5000])


def _log_event(name: str, tags: dict[str, str], figures: dict[str, float], text: str) -> None:
    """Record a promotion or rollback as a run of the promotion log."""
    experiment_id = ensure_experiment(PROMOTION_EXPERIMENT, tracking_uri())
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=name, tags={WRITER_TAG: WRITER_LOCKED}
    ):
        mlflow.set_tags({**{k: str(v)[:5000] for k, v in tags.items()}, NOTE_TAG: text})
        finite = {k: float(v) for k, v in figures.items() if v == v}
        if finite:
            mlflow.log_metrics(finite)
        mlflow.log_dict(
            {"event": name, **tags, "figures": figures, "summary": text}, "decision.json"
        )


def promotion_log(model_name: str = MODEL_NAME) -> pd.DataFrame:
    """Return the promotion log: one row per promotion or rollback, newest first."""
    mlc = client()
    experiment = with_retry(mlc.get_experiment_by_name, PROMOTION_EXPERIMENT)
    if experiment is None:
        return pd.DataFrame(columns=["event", "decided_at", "approver", "reason"])
    runs = with_retry(
        mlc.search_runs, [experiment.experiment_id], order_by=["attributes.start_time DESC"]
    )
    rows: list[dict[str, Any]] = []
    for run in runs:
        t = run.data.tags
        kind = "rollback" if "rollback.to" in t else "promotion"
        rows.append(
            {
                "event": run.info.run_name,
                "decided_at": t.get(f"{kind}.decided_at", ""),
                "approver": t.get(f"{kind}.approver", ""),
                "reason": t.get(f"{kind}.reason", ""),
                "decision": t.get("promotion.decision", "rollback"),
                "previous_champion": t.get("promotion.previous_champion", t.get("rollback.from")),
            }
        )
    return pd.DataFrame(rows)


def download_report(version: str | int | None, dst: Path, model_name: str = MODEL_NAME) -> Path:
    """Copy the HTML model report of a version into ``dst`` as ``model_report_v<N>.html``."""
    info = version_info(version, model_name)
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=info["run_id"], artifact_path="report/model_report.html", dst_path=str(dst)
        )
    )
    target = dst / f"model_report_v{info['version']}.html"
    local.replace(target)
    if local.parent != dst and not any(local.parent.iterdir()):
        local.parent.rmdir()
    return target
