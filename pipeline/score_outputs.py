"""What a scoring run publishes: its outputs, the manifest, the reject limit and the publish step.

:func:`pipeline.score.run_scoring` and the sharded
:func:`pipeline.shard_score.run_scoring_sharded` both count their accounts
(:func:`count_accounts`), start their manifest (:func:`run_manifest`), apply the
reject limit (:func:`check_reject_limit`) and end in :func:`publish_run`
with a :class:`RunOutputs`, so what the two publish comes from one place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import publish as pub
from pipeline.io import write_parquet
from pipeline.validation import ORPHAN_CHECK, ValidationResult

#: The scorer's log: its stage and publish lines keep the name operators read (docs/operations.md).
log = logging.getLogger("pipeline.score")


class RejectLimitError(RuntimeError):
    """The share of rejected accounts is above the policy's limit; nothing was published."""


@dataclass(frozen=True)
class RunOutputs:
    """What a scoring run publishes, built once when its accounts are scored.

    The unsharded and the sharded run both end in :func:`publish_run` with
    one of these, so the folder, the manifest and the monitoring run they
    publish come from the same fields.

    Attributes
    ----------
    scores, rejects : DataFrame
        ``scores.parquet`` and ``rejects.parquet`` (``scores.attrs`` may hold
        the value mode's ``allocation``).
    features : DataFrame
        The scored accounts' features (the monitoring run's feature drift).
    counts : dict
        Every input account once: scored, rejected, out of scope.
    manifest : dict
        The manifest so far (inputs, validation, policy, model URI); completed
        in place by :func:`publish_run`.
    model : PropensityModel
        The model that scored the run.
    citl : DataFrame, optional
        The newest labelled month's calibration (None: not computed).
    """

    scores: pd.DataFrame
    rejects: pd.DataFrame
    features: pd.DataFrame
    counts: dict[str, int]
    manifest: dict
    model: Any
    citl: pd.DataFrame | None = None


@dataclass
class ScoringOutcome:
    """What a scoring run produced: the published folder (or None) and its manifest."""

    output_dir: Path | None
    manifest: dict
    scores: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Stages:
    """Time each stage and log one line per stage (rows in, rows out, seconds)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def begin(self, stage: str, what: str) -> None:
        """Log that a long stage starts (the operator sees progress at a million accounts)."""
        log.info("stage %-10s started: %s", stage, what)

    def done(self, stage: str, rows_in: int | None = None, rows_out: int | None = None) -> None:
        """Log the stage's line and keep its seconds (since the previous stage ended)."""
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._t, 3)
        self._t = now
        counts = ""
        if rows_in is not None:
            counts += f" rows_in={rows_in:,}"
        if rows_out is not None:
            counts += f" rows_out={rows_out:,}"
        log.info("stage %-10s%s seconds=%.2f", stage, counts, self.seconds[stage])


def count_accounts(
    validation: ValidationResult, accounts_all: pd.DataFrame, scored_ids: pd.Index, as_of
):
    """Count every input account once: scored, rejected, or out of scope (with why)."""
    ids = accounts_all["account_id"].dropna()
    unique_ids = pd.Index(ids.unique())
    rejected = validation.rejected_accounts
    clean = validation.tables["accounts"]
    opened_after = pd.Index(clean.loc[clean["opened_date"] > as_of, "account_id"])
    not_overdue = pd.Index(clean["account_id"]).difference(opened_after).difference(scored_ids)
    counts = {
        "input_accounts": int(len(unique_ids)),
        "scored": int(len(scored_ids)),
        "rejected": int(len(rejected)),
        "out_of_scope": int(len(opened_after) + len(not_overdue)),
        "out_of_scope_not_overdue": int(len(not_overdue)),
        "out_of_scope_opened_after_as_of": int(len(opened_after)),
    }
    total = counts["scored"] + counts["rejected"] + counts["out_of_scope"]
    if total != counts["input_accounts"]:
        raise AssertionError(
            f"manifest does not reconcile: scored {counts['scored']} + rejected "
            f"{counts['rejected']} + out of scope {counts['out_of_scope']} != input "
            f"{counts['input_accounts']}"
        )
    return counts


def _manifest_base(validation: ValidationResult, as_of_label: str) -> dict:
    summary = validation.summary()
    return {
        "as_of_date": as_of_label,
        "inputs": {
            t: {**validation.files.get(t, {}), "rows": validation.rows_read[t]}
            for t in validation.rows_read
        },
        "validation": {
            "failing_rows": int(len(validation.rejects)),
            "rejected_accounts": int(len(validation.rejected_accounts)),
            "rejected_share": round(validation.rejected_share, 6),
            "rules": summary.drop(columns="examples").to_dict("records"),
        },
    }


def run_manifest(
    validation: ValidationResult,
    label: str,
    policy,
    pversion: str,
    dates: dict,
    uri: str,
    allow_stale: bool,
) -> dict:
    """The manifest of a run before scoring: inputs, validation, policy, as-of check, model URI."""
    manifest = _manifest_base(validation, label)
    manifest["policy_version"] = pversion
    manifest["as_of_check"] = "skipped (--allow-stale)" if allow_stale else "passed"
    manifest["export_dates"] = dates
    manifest["policy_jurisdiction"] = policy.jurisdiction
    manifest["model_uri"] = uri
    return manifest


def check_reject_limit(
    validation: ValidationResult,
    manifest: dict,
    reject_limit: float,
    out_dir: Path,
    label: str,
    stages: Stages,
) -> None:
    """Add the orphan counts to ``manifest``; above the limit, write the failure files and raise.

    Raises
    ------
    RejectLimitError
        The rejected share (orphan rows' accounts included) is above
        ``reject_limit``, or no account is left: the rejects and manifest are
        written beside the output folder and nothing is published.
    """
    # Rows whose account is missing from accounts are orphans: their accounts
    # count as rejected too, so a truncated accounts export cannot pass unseen.
    orphan_ids = validation.rejects.loc[
        validation.rejects["check"].eq(ORPHAN_CHECK), "account_id"
    ].dropna()
    n_orphan_accounts = int(orphan_ids.nunique())
    n_rejected = int(len(validation.rejected_accounts))
    known = validation.input_accounts + n_orphan_accounts
    rejected_share = (n_rejected + n_orphan_accounts) / known if known else 0.0
    manifest["validation"]["orphan_accounts"] = n_orphan_accounts
    manifest["validation"]["rejected_share_with_orphans"] = round(rejected_share, 6)
    failed_rejects, failed_manifest = _failure_paths(out_dir, label)
    if rejected_share > reject_limit or validation.input_accounts - n_rejected <= 0:
        previous = (out_dir / pub.run_dir_name(label)).exists()
        manifest["status"] = "failed: rejected share above the policy's limit"
        manifest["previous_run_still_published"] = previous
        manifest["counts"] = {
            "input_accounts": validation.input_accounts,
            "scored": 0,
            "rejected": n_rejected,
            "not_scored_run_failed": validation.input_accounts - n_rejected,
            "orphan_accounts": n_orphan_accounts,
        }
        manifest["timings_seconds"] = stages.seconds
        write_parquet(validation.rejects, failed_rejects)
        pub.write_json(manifest, failed_manifest)
        if known == 0:
            raise RejectLimitError(
                f"the export has no account to score ({validation.input_accounts} rows in "
                f"accounts): nothing published; see {failed_manifest}"
            )
        raise RejectLimitError(
            f"{rejected_share:.2%} of accounts rejected (orphan rows' accounts included), "
            f"above the policy's limit {reject_limit:.2%}: nothing published; see "
            f"{failed_rejects} and fix the data, or raise reject_limit in the policy"
        )


def _failure_paths(out_dir: Path, label: str) -> tuple[Path, Path]:
    """Where a failed run leaves its rejects and manifest, beside the output folder."""
    return (
        out_dir / f"{pub.run_dir_name(label)}.rejects.parquet",
        out_dir / f"{pub.run_dir_name(label)}.manifest.json",
    )


def publish_run(
    outputs: RunOutputs,
    out_dir: Path,
    label: str,
    stages: Stages,
    log_to_mlflow: bool,
    policy_path: Path | None = None,
) -> ScoringOutcome:
    """Write a run's outputs to a staging folder and publish it whole as ``<out>/as_of=D``.

    With ``log_to_mlflow`` the monitoring run gets the scores' drift, the
    newest labelled month's calibration (``outputs.citl``, when computed) and
    the policy file applied (``policy_path``; None is the packaged policy).
    """
    from models import tracking

    scores, manifest, citl = outputs.scores, outputs.manifest, outputs.citl
    staging = pub.staging_dir(out_dir, label)
    write_parquet(scores, staging / "scores.parquet")
    write_parquet(outputs.rejects, staging / "rejects.parquet")
    stages.done("write", rows_out=len(scores))
    manifest.update(
        status="published",
        model_version=outputs.model.version,
        counts=outputs.counts,
        outputs=_outputs_summary(scores, outputs.rejects),
    )
    if "allocation" in scores.attrs:
        manifest["allocation"] = scores.attrs["allocation"]
    if citl is not None:  # the drift alarm's calibration figures, as logged to MLflow
        manifest["calibration_latest_month"] = [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in citl.to_dict("records")
        ]
    if log_to_mlflow:
        try:
            manifest["mlflow_run_id"] = tracking.log_scoring_run(
                scores, outputs.features, outputs.model, manifest, citl=citl
            )
            _log_policy(manifest["mlflow_run_id"], policy_path, manifest["policy_version"])
        except Exception as exc:  # monitoring must not lose a night's scores
            log.warning("monitoring run not logged to MLflow: %s", exc)
            manifest["mlflow_run_id"] = None
    stages.done("monitor")
    manifest["timings_seconds"] = stages.seconds
    pub.write_json(manifest, staging / "manifest.json")
    final = pub.publish(staging, out_dir, label)
    # A failed earlier attempt of the same date left its files beside: they no
    # longer describe what is published.
    for path in _failure_paths(out_dir, label):
        path.unlink(missing_ok=True)
    log.info("published %s (%s accounts scored)", final, f"{len(scores):,}")
    return ScoringOutcome(final, manifest, scores, stages.seconds)


def _outputs_summary(scores: pd.DataFrame, rejects: pd.DataFrame) -> dict:
    """The manifest's ``outputs``: rows written and the scores counted per tier, plan and group."""
    return {
        "scores_rows": int(len(scores)),
        "rejects_rows": int(len(rejects)),
        "per_tier": scores["risk_tier"].value_counts().sort_index().to_dict(),
        "per_intensity": scores["contact_intensity"].value_counts().sort_index().to_dict(),
        "per_offer": scores["offer"].value_counts().sort_index().to_dict(),
        "per_suppressed_reason": scores["suppressed_reason"].value_counts().sort_index().to_dict(),
        "control_group": int(scores["control_group"].sum()),
        "per_jurisdiction": scores["jurisdiction"].value_counts().sort_index().to_dict(),
        "per_approach": scores["approach"].value_counts().sort_index().to_dict(),
    }


def _log_policy(run_id: str, policy_path: Path | None, pversion: str) -> None:
    """Log the policy YAML the run applied as an artifact ``policy/policy_<version>.yaml``."""
    from models import tracking
    from pipeline.policy import policy_source

    text, version = policy_source(policy_path)
    if version != pversion:
        log.warning("policy file changed during the run: logging version %s, applied %s",
                    version, pversion)  # fmt: skip
    tracking.client().log_text(run_id, text, f"policy/policy_{version}.yaml")


__all__ = [
    "RejectLimitError",
    "RunOutputs",
    "ScoringOutcome",
    "check_reject_limit",
    "publish_run",
]
