"""The nightly batch scorer: validate, build features, predict, apply the policy, publish.

``run_scoring`` is what ``propensity score`` and ``make score`` run. It reads
the contract's tables, rejects bad accounts whole, builds features as of D
with the same code as training, predicts both calibrated probabilities with
the champion model (or a given URI), applies the policy and the compliance
profile, and publishes ``<out>/as_of=D/`` with ``scores.parquet``,
``rejects.parquet`` and ``manifest.json``: whole or not at all.

Every input account is counted once in the manifest: scored, rejected, or out
of scope (not overdue at D, or opened after D).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import publish as pub
from pipeline.approach import APPROACH_COLUMNS, approach_for_accounts
from pipeline.asof import check_export_dates, export_dates
from pipeline.control import ARM_COLUMNS, TREATED_COLUMNS
from pipeline.io import read_tables
from pipeline.score_outputs import (
    RejectLimitError,
    RunOutputs,
    ScoringOutcome,
    Stages,
    check_reject_limit,
    count_accounts,
    publish_run,
    run_manifest,
)
from pipeline.validation import validate_tables

log = logging.getLogger(__name__)

#: Columns of scores.parquet: the contract's, in its order, then the control-group
#: assignment that DESIGN.md asks to log with every account, then the contract's
#: version 2 columns (plan_id and approach belong before and after limit_reasons).
SCORE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "as_of_date",
    "dpd",
    "arrears",
    "p_willingness",
    "p_ability",
    "expected_recovery",
    "risk_tier",
    "contact_intensity",
    "max_calls_7d",
    "max_sms_7d",
    "contact_window",
    "offer",
    "reason_codes",
    "suppressed_reason",
    "model_version",
    "policy_version",
    "control_group",
    "control_probability",
    "plan_id",
    "jurisdiction",
    "max_calls_today",
    "contact_hold_until",
    "third_party_contact_allowed",
    "limit_reasons",
    APPROACH_COLUMNS[0],
    "dpd_stage",
    "channel_order",
    "max_calls_day",
    "offer_installment",
    "offer_n_installments",
    "offer_first_due_date",
    "offer_step_amounts",
    *APPROACH_COLUMNS[1:],
    *TREATED_COLUMNS,
    *ARM_COLUMNS,
)
DEFAULT_MODEL_URI = "models:/repayment-propensity@champion"


def account_capacity(features: pd.DataFrame) -> pd.DataFrame:
    """Return per account the usual installment and the monthly amount it has shown it can pay.

    Both come from the feature table, so they follow the features' point in
    time and nothing is recomputed from the raw tables: ``installment_amount``
    is the amount of the latest installment due before D, ``capacity`` the
    payments of the 180 days before D spread over six months (NaN when
    nothing was paid, so the policy falls back to its default sizing).

    Examples
    --------
    >>> feats = pd.DataFrame({"account_id": ["A", "B"], "installment_amount": [110.0, 50.0],
    ...                       "payment_sum_180d": [60.0, 0.0]})
    >>> account_capacity(feats).to_dict("list")
    {'installment_amount': [110.0, 50.0], 'capacity': [10.0, nan]}
    """
    paid = features["payment_sum_180d"].to_numpy(dtype="float64")
    out = pd.DataFrame(
        {
            "installment_amount": features["installment_amount"].to_numpy(dtype="float64"),
            "capacity": np.where(paid > 0, paid / 6.0, np.nan),
        },
        index=pd.Index(features["account_id"], name="account_id"),
    )
    return out


def scored_frame(features: pd.DataFrame, preds: pd.DataFrame) -> pd.DataFrame:
    """Return the frame the policy engine plans from: ledger, probabilities and capacity.

    One row per feature row: ``account_id``, ``dpd``, ``arrears``,
    ``p_willingness``, ``p_ability``, ``expected_share`` (from ``preds``,
    aligned by position) and :func:`account_capacity`'s columns. The nightly
    scorer and the closed-loop replay both plan from it.
    """
    scored = pd.DataFrame(
        {
            "account_id": features["account_id"].to_numpy(),
            "dpd": features["dpd"].to_numpy(),
            "arrears": features["arrears"].to_numpy(),
            "p_willingness": preds["p_willingness"].to_numpy(),
            "p_ability": preds["p_ability"].to_numpy(),
            "expected_share": preds["expected_share"].to_numpy(),
        }
    )
    if "episode_days_current" in features.columns:  # the control group's unit
        scored["episode_days_current"] = features["episode_days_current"].to_numpy()
    return scored.join(account_capacity(features), on="account_id")


def run_scoring(
    data_dir: Path,
    as_of: pd.Timestamp,
    out_dir: Path,
    model_uri: str | None = None,
    policy_path: Path | None = None,
    wait_seconds: float = 0.0,
    log_to_mlflow: bool = True,
    allow_stale: bool = False,
) -> ScoringOutcome:
    """Score every account overdue at ``as_of`` and publish ``<out>/as_of=D/``.

    Parameters
    ----------
    data_dir : Path
        Folder with the contract's input tables.
    as_of : pandas.Timestamp
        The scoring date D (tz-naive midnight); features read events strictly before D.
    out_dir : Path
        Output root; the run is published as ``out_dir / "as_of=D"``.
    model_uri : str, optional
        MLflow model URI; default ``models:/repayment-propensity@champion``.
    policy_path : Path, optional
        Policy YAML; default the packaged policy.
    wait_seconds : float
        How long to wait for another run of the same date and output to finish.
    log_to_mlflow : bool
        Log the monitoring run (counts, distributions, drift) to MLflow.
    allow_stale : bool
        Skip the as-of plausibility check (a deliberate backfill).

    Returns
    -------
    ScoringOutcome

    Raises
    ------
    pipeline.io.DataReadError
        Input cannot be read (exit 2).
    pipeline.policy.PolicyError
        The policy is invalid (exit 2).
    pipeline.asof.AsOfImplausibleError
        D is after the export's latest event by more than the policy allows, or
        before its first installment (exit 2).
    models.tracking.ModelNotFoundError
        No model at the URI (exit 3).
    RejectLimitError
        Too many accounts rejected: nothing published, rejects and manifest
        written beside the output folder (exit 1).
    pipeline.publish.RunLockedError
        Another run of the same date holds the output (exit 2).
    """
    from models import tracking
    from pipeline.policy import load_policy_and_version

    label = as_of.strftime("%Y-%m-%d")
    stages = Stages()
    policy, pversion = load_policy_and_version(policy_path)
    stages.done("load_policy")
    out_dir = Path(out_dir)
    with pub.run_lock(out_dir, label, timeout=wait_seconds):
        pub.recover(out_dir, label)
        stages.begin("read", f"tables in {data_dir}")
        raw = read_tables(data_dir, categories=True)
        accounts_all = raw.tables["accounts"][["account_id"]].copy()
        stages.done("read", rows_out=sum(len(t) for t in raw.tables.values()))
        dates = export_dates(raw.tables)
        if not allow_stale:
            check_export_dates(dates, as_of, policy.max_days_after_export)
        stages.begin("validate", f"{len(accounts_all):,} accounts against the data contract")
        validation = validate_tables(raw)
        stages.done(
            "validate", rows_in=sum(validation.rows_read.values()), rows_out=len(validation.rejects)
        )
        uri = model_uri or DEFAULT_MODEL_URI
        manifest = run_manifest(validation, label, policy, pversion, dates, uri, allow_stale)
        check_reject_limit(validation, manifest, policy.reject_limit, out_dir, label, stages)
        model = tracking.load_model(uri)
        stages.done("model")
        tables = validation.tables
        citl = None
        if log_to_mlflow:
            stages.begin("citl", "calibration of the newest labelled month")
            citl = latest_month_calibration(tables, as_of, model, policy.materiality)
            stages.done("citl", rows_out=int(citl["rows"].max()) if citl is not None else 0)
        del raw
        scores, feats = score_tables(tables, as_of, model, policy, pversion, stages)
        counts = count_accounts(validation, accounts_all, pd.Index(scores["account_id"]), as_of)
        outputs = RunOutputs(
            scores=scores, rejects=validation.rejects, features=feats, counts=counts,
            manifest=manifest, model=model, citl=citl,
        )  # fmt: skip
        return publish_run(outputs, out_dir, label, stages, log_to_mlflow, policy_path)


def score_tables(
    tables, as_of, model, policy, pversion, stages, decide=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the clean ``tables`` as of D: features, both heads, the policy; (scores, features).

    ``tables`` is emptied of the schedule, payments and offers once the
    features are built (memory bound at a million accounts). ``decide``
    replaces the value mode's decision (:func:`pipeline.value_mode.assign_value_plans`;
    a sharded run decides once for the book).
    """
    from features.build import build_features
    from pipeline.contact_log import recent_promises
    from pipeline.plan import assign_plans

    label = as_of.strftime("%Y-%m-%d")
    stages.begin("features", f"{len(tables['accounts']):,} valid accounts as of {label}")
    feats = build_features(tables, as_of, materiality=policy.materiality, overdue_only=True)
    stages.done("features", rows_in=len(tables["accounts"]), rows_out=len(feats))
    # Promise holds need the payments: judge the promises before freeing them.
    promises = recent_promises(
        tables["contacts"], tables["payments"], as_of, policy.promises.broken_lookback_days
    )
    # The schedule and payment history are no longer needed: free them before
    # the models allocate their matrices (memory bound at a million accounts).
    for name in ("installments", "payments", "offers"):
        tables.pop(name, None)
    stages.begin("predict", f"{len(feats):,} overdue accounts, model version {model.version}")
    preds = model.predict(feats)
    stages.done("predict", rows_in=len(feats), rows_out=len(preds))
    scored = scored_frame(feats, preds)
    assign = assign_plans
    if policy.value_allocation is not None:  # value mode: intensity and offer by value
        from pipeline.value_mode import assign_value_plans, decide_by_value
        from pipeline.value_plan import short_shock

        scored["short_shock"] = short_shock(feats)
        assign = partial(assign_value_plans, decide=decide or decide_by_value)
    plans = assign(
        scored, tables["accounts"], tables["contacts"], as_of, policy, pversion, promises
    )
    stages.done("policy", rows_in=len(scored), rows_out=len(plans))
    suppressed = plans["suppressed_reason"].notna().to_numpy()
    approach = approach_for_accounts(feats, tables["accounts"], suppressed, policy.approaches)
    scores = _assemble(scored, plans, preds, as_of, model.version, pversion, approach)
    if "allocation" in plans.attrs:  # value mode: capacity used and the proven gap
        scores.attrs["allocation"] = plans.attrs["allocation"]
    return scores, feats


def latest_month_calibration(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, model, materiality: float
) -> pd.DataFrame | None:
    """Return each head's calibration in the large on the newest month whose horizon has closed.

    The snapshot is the latest month end D' with ``D' + horizon <= as_of``
    (the model's own horizon), built with the training-set code and scored
    by ``model``; the monitoring alarm compares its mean predictions with
    what happened. None (logged) when the data hold no such snapshot.
    """
    rows = latest_month_citl_rows(tables, as_of, model, materiality)
    return None if rows is None else citl_table(rows, as_of, model)


def latest_month_citl_rows(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, model, materiality: float
) -> pd.DataFrame | None:
    """Per labelled row of the newest closed month, what its calibration adds up (None: no row).

    See :func:`latest_month_calibration`; a shard returns its own rows and
    the driver sums the book's (:func:`models.monitoring.citl_rows`).
    """
    from features.training_set import build_training_set
    from models.monitoring import citl_rows

    month_end = _citl_month(as_of, model)
    labelled = build_training_set(
        tables, month_end, month_end, _horizon(model), materiality, data_end=as_of, validate=False
    )
    if labelled.empty:
        log.info("no labelled snapshot at %s: calibration not monitored", month_end.date())
        return None
    threshold = float(model.metadata.get("full_coverage_threshold", 0.999))
    return citl_rows(model, labelled, threshold)


def citl_table(rows: pd.DataFrame, as_of: pd.Timestamp, model) -> pd.DataFrame:
    """The calibration table logged with a scoring run, from the labelled rows of its month."""
    from models.monitoring import citl_summary

    return citl_summary(rows).assign(as_of_date=str(_citl_month(as_of, model).date()))


def _horizon(model) -> int:
    return int(model.metadata.get("horizon_days", 30))


def _citl_month(as_of: pd.Timestamp, model) -> pd.Timestamp:
    """The newest month end whose label horizon (the model's) closed by ``as_of``."""
    from pipeline.jobs import training_window

    return training_window(as_of, 1, _horizon(model))[1]


def _dates(values: pd.Series) -> np.ndarray:
    """Calendar dates as ``datetime.date`` objects, None where missing (parquet date32)."""
    ts = pd.to_datetime(values)
    return np.where(ts.notna(), ts.dt.date, None)


def _assemble(scored, plans, preds, as_of, model_version, pversion, approach) -> pd.DataFrame:
    """Put the contract's columns together in its order."""
    plans = plans.set_index("account_id").reindex(scored["account_id"])
    out = pd.DataFrame(
        {
            "account_id": scored["account_id"].to_numpy(),
            "as_of_date": np.full(len(scored), as_of.date()),
            "dpd": scored["dpd"].to_numpy().astype("int64"),
            "arrears": scored["arrears"].to_numpy().astype("float64"),
            "p_willingness": scored["p_willingness"].to_numpy(),
            "p_ability": scored["p_ability"].to_numpy(),
            "expected_recovery": plans["expected_recovery"].to_numpy(),
            "risk_tier": plans["risk_tier"].to_numpy(),
            "contact_intensity": plans["contact_intensity"].to_numpy(),
            "max_calls_7d": plans["max_calls_7d"].to_numpy().astype("int64"),
            "max_sms_7d": plans["max_sms_7d"].to_numpy().astype("int64"),
            "contact_window": plans["contact_window"].to_numpy(),
            "offer": plans["offer"].to_numpy(),
            "reason_codes": preds["reason_codes"].to_numpy(),
            "suppressed_reason": plans["suppressed_reason"].to_numpy(),
            "model_version": str(model_version),
            "policy_version": pversion,
            "control_group": plans["control_group"].to_numpy().astype(bool),
            "control_probability": plans["control_probability"].to_numpy().astype("float64"),
            "plan_id": plans["plan_id"].to_numpy(),
            "jurisdiction": plans["jurisdiction"].to_numpy(),
            "max_calls_today": plans["max_calls_today"].to_numpy().astype("int64"),
            "contact_hold_until": _dates(plans["contact_hold_until"]),
            "third_party_contact_allowed": plans["third_party_contact_allowed"]
            .to_numpy()
            .astype(bool),
            "limit_reasons": plans["limit_reasons"].to_numpy(),
            "dpd_stage": plans["dpd_stage"].to_numpy(),
            "channel_order": plans["channel_order"].to_numpy(),
            "max_calls_day": plans["max_calls_day"].to_numpy(),
            "offer_installment": plans["offer_installment"].to_numpy().astype("float64"),
            "offer_n_installments": pd.array(plans["offer_n_installments"], dtype="Int64"),
            "offer_first_due_date": _dates(plans["offer_first_due_date"]),
            "offer_step_amounts": plans["offer_step_amounts"].to_numpy(),
            **{c: approach[c].to_numpy() for c in APPROACH_COLUMNS},
            **{c: plans[c].to_numpy() for c in TREATED_COLUMNS},
            "arm": plans["arm"].to_numpy(),
            "arm_probability": plans["arm_probability"].to_numpy().astype("float64"),
            "lawful_arms": pd.array(plans["lawful_arms"], dtype="Int64"),
        }
    )
    return out[list(SCORE_COLUMNS)]


__all__ = [
    "DEFAULT_MODEL_URI",
    "SCORE_COLUMNS",
    "RejectLimitError",
    "RunOutputs",
    "ScoringOutcome",
    "account_capacity",
    "check_reject_limit",
    "citl_table",
    "latest_month_calibration",
    "latest_month_citl_rows",
    "publish_run",
    "run_scoring",
    "score_tables",
    "scored_frame",
]
