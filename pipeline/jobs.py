"""Jobs shared by the command line and the notebooks: load, train, promote.

The notebooks call these functions so that a retrain in a notebook is logged
to MLflow exactly as ``propensity train`` logs it; nothing is copied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.io import read_tables
from pipeline.validation import ValidationResult, validate_tables

log = logging.getLogger(__name__)


def load_valid_tables(data_dir: Path | str, keep_categories: bool = False) -> ValidationResult:
    """Read and validate the tables of ``data_dir``; rejected accounts are removed whole.

    Repeated text is read as categoricals and ids as arrow strings (as the
    shard tasks read it: the same rules and rejects, less memory and hashing);
    the clean tables hand them back as ``object`` columns unless
    ``keep_categories`` (enough for the feature code, which reads their codes).

    Raises
    ------
    pipeline.io.DataReadError
        When a table cannot be read at all.
    """
    t0 = time.perf_counter()
    result = validate_tables(read_tables(data_dir, categories=True), keep_categories)
    log.info(
        "stage validate rows_in=%s rejected_accounts=%s seconds=%.2f",
        f"{sum(result.rows_read.values()):,}",
        f"{len(result.rejected_accounts):,}",
        time.perf_counter() - t0,
    )
    return result


def training_window(
    as_of: pd.Timestamp, months: int, horizon_days: int
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last month-end snapshot whose label horizon closes by ``as_of``.

    A snapshot D is usable when D + horizon <= as_of, so that no label reads
    events after the training date (no label leakage).

    Examples
    --------
    >>> [d.date().isoformat() for d in training_window(pd.Timestamp("2025-12-31"), 12, 30)]
    ['2024-12-31', '2025-11-30']
    >>> [d.date().isoformat() for d in training_window(pd.Timestamp("2025-12-15"), 3, 30)]
    ['2025-08-31', '2025-10-31']
    """
    if months < 1:
        raise ValueError(f"--months must be >= 1, got {months}")
    last = (as_of - pd.Timedelta(days=horizon_days)).to_period("M")
    last_end = last.to_timestamp(how="end").normalize()
    if last_end + pd.Timedelta(days=horizon_days) > as_of:
        last_end = (last - 1).to_timestamp(how="end").normalize()
    first_end = (last_end.to_period("M") - (months - 1)).to_timestamp(how="end").normalize()
    return first_end, last_end


@dataclass
class TrainJobResult:
    """What a training job registered."""

    run_id: str
    model_version: str
    result: object
    window: tuple[pd.Timestamp, pd.Timestamp]


def train_job(
    data_dir: Path | str,
    as_of: pd.Timestamp,
    months: int = 12,
    horizon_days: int = 30,
    config_path: Path | None = None,
    experiment: str | None = None,
    config_overrides: dict | None = None,
    feature_columns: list[str] | None = None,
    plans_dir: Path | None = None,
) -> TrainJobResult:
    """Build the training set before ``as_of``, train both heads, log and register a challenger.

    Parameters
    ----------
    data_dir : path
        Folder with the contract's tables.
    as_of : pandas.Timestamp
        Training date: only snapshots whose horizon closes on or before it are used.
    months : int
        Number of monthly snapshots.
    horizon_days : int
        Label horizon H.
    config_path : Path, optional
        Hyper-parameter YAML (default: the packaged ``models/default_config.yaml``).
    experiment : str, optional
        MLflow experiment name.
    config_overrides : dict, optional
        Values replacing keys of the config (notebooks: "change a hyper-parameter").
    feature_columns : list of str, optional
        A subset of the feature catalogue to train on (notebooks: "change a feature set").
    plans_dir : path, optional
        Published runs (``as_of=D/scores.parquet``) whose randomised arms fit
        the treatment-effect model, logged in the same run
        (:func:`pipeline.uplift_units.effects_from_plans`).
    """
    from models.config import load_config
    from models.training import train

    validation = load_valid_tables(data_dir)
    start, end = training_window(as_of, months, horizon_days)
    training_set = _labelled_snapshots(validation.tables, start, end, horizon_days, as_of)
    config = load_config(config_path, overrides=config_overrides)
    spec = _spec(feature_columns)
    window = _data_window(data_dir, as_of, (start, end), months, horizon_days)
    t0 = time.perf_counter()
    result = train(training_set, config, spec, data_window=window, bands=policy_bands())
    log.info(
        "stage train rows_in=%s seconds=%.2f", f"{len(training_set):,}", time.perf_counter() - t0
    )
    result.effects = _effects(plans_dir, validation.tables["payments"], as_of, horizon_days, start)
    run_id, version = _log_and_register(result, window, experiment, training_set)
    return TrainJobResult(run_id, version, result, (start, end))


def _labelled_snapshots(
    tables: dict[str, pd.DataFrame],
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon_days: int,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Build the training set of the month ends ``start..end``, with the accounts' segments."""
    from features.training_set import build_training_set

    t0 = time.perf_counter()
    training_set = build_training_set(tables, start, end, horizon_days=horizon_days, data_end=as_of)
    log.info(
        "stage training_set window=%s..%s rows_out=%s seconds=%.2f",
        start.date(),
        end.date(),
        f"{len(training_set):,}",
        time.perf_counter() - t0,
    )
    return _with_segments(training_set, tables["accounts"])


def _data_window(
    data_dir: Path | str,
    as_of: pd.Timestamp,
    snapshots: tuple[pd.Timestamp, pd.Timestamp],
    months: int,
    horizon_days: int,
) -> dict:
    """The data a model was trained on, as its run records it (``data_window``)."""
    return {
        "data_dir": str(Path(data_dir).resolve()),
        "as_of": as_of.date().isoformat(),
        "first_snapshot": snapshots[0].date().isoformat(),
        "last_snapshot": snapshots[1].date().isoformat(),
        "months": months,
        "horizon_days": horizon_days,
    }


def _log_and_register(result, window: dict, experiment: str | None, training_set: pd.DataFrame):
    """Log the training run to MLflow and register its model as challenger; (run id, version)."""
    from models import tracking

    t0 = time.perf_counter()
    run_id, version = tracking.log_training_run(
        result, data_window=window, experiment=experiment, training_set=training_set
    )
    log.info(
        "stage log run_id=%s version=%s seconds=%.2f", run_id, version, time.perf_counter() - t0
    )
    return run_id, version


def _effects(plans_dir: Path | None, payments: pd.DataFrame, as_of, horizon_days: int, since):
    """Fit the treatment-effect model on the plans logged since the heads' first snapshot.

    Without plans, or with too few randomised units, one log line says why there is none.
    """
    from pipeline.uplift_units import effects_from_plans

    if plans_dir is None:
        log.info("no treatment-effect model: no randomised data given (train --plans DIR)")
        return None
    t0 = time.perf_counter()
    effects = effects_from_plans(plans_dir, payments, as_of, horizon_days, since=since)
    if effects.model is None:
        log.info("no treatment-effect model: %s", effects.reason)
        return effects
    qini = ", ".join(f"{r.arm} {r.qini_coefficient:.4f}" for r in effects.table.itertuples())
    log.info(
        "stage effects arms=%s qini=%s seconds=%.2f",
        ",".join(effects.arms), qini, time.perf_counter() - t0,
    )  # fmt: skip
    return effects


def _with_segments(training_set: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Add the account's ``jurisdiction`` (when the table has it) for the report's segments."""
    if "jurisdiction" not in accounts.columns or "jurisdiction" in training_set.columns:
        return training_set
    lookup = accounts.drop_duplicates("account_id").set_index("account_id")["jurisdiction"]
    return training_set.assign(jurisdiction=training_set["account_id"].map(lookup).to_numpy())


def policy_bands(policy_path: Path | None = None):
    """Return the policy's tiers and DPD stages as :class:`models.review.PolicyBands`."""
    from models.review import PolicyBands
    from pipeline.policy import load_policy_and_version

    policy, version = load_policy_and_version(policy_path)
    stages = policy.dpd_stages
    return PolicyBands(
        tiers={t.name: (tuple(t.p_willingness), tuple(t.p_ability)) for t in policy.tiers},
        dpd_stages={n: tuple(getattr(stages, n).dpd) for n in ("early", "mid", "late")},
        source=f"policy {policy.version} (sha256 {version})",
    )


def _spec(feature_columns: list[str] | None):
    from models.spec import FeatureSpec

    spec = FeatureSpec.default()
    if feature_columns is not None:
        spec = spec.subset(feature_columns)
    return spec


def evaluation_frame(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, months: int, horizon_days: int
) -> pd.DataFrame:
    """Return the newest ``months`` month-end snapshots whose horizon closed by ``as_of``."""
    from features.training_set import build_training_set

    start, end = training_window(as_of, months, horizon_days)
    return build_training_set(tables, start, end, horizon_days=horizon_days, data_end=as_of)


def promote_job(
    version: str | None = None,
    data_dir: Path | str | None = None,
    as_of: pd.Timestamp | None = None,
    config_path: Path | None = None,
    *,
    approver: str | None = None,
    note: str | None = None,
    override_reason: str | None = None,
):
    """Gate a challenger against the champion on the most recent out-of-time months.

    The data folder and date default to those the version was trained on (its
    ``data_window`` tag), so the challenger's own out-of-time months are the
    evaluation data; pass newer ones to compare on fresher data. The approver
    and note are required and recorded (``models.registry``).

    Returns
    -------
    models.gate.PromotionDecision

    Raises
    ------
    models.registry.PromotionRefused
        No approver or note, a loosened gate without an override reason, or
        a version older than the champion.
    """
    import json

    from models import registry, tracking
    from models.config import load_config

    approval = registry.Approval(approver or "", note or "", override_reason or "")

    info = tracking.version_info(version)
    window = json.loads(info["tags"].get("data_window", "{}"))
    data_dir = data_dir or window.get("data_dir")
    as_of = (
        as_of
        if as_of is not None
        else (pd.Timestamp(window["as_of"]) if "as_of" in window else None)
    )
    if data_dir is None or as_of is None:
        raise ValueError(
            f"version {info['version']} records no data window: pass --data and --as-of"
        )
    config = load_config(config_path)
    horizon = int(window.get("horizon_days", 30))
    tables = load_valid_tables(data_dir).tables
    frame = evaluation_frame(tables, pd.Timestamp(as_of), config.splits.test_months, horizon)
    log.info("stage eval_frame rows_out=%s", f"{len(frame):,}")
    return registry.promote(info["version"], eval_frame=frame, approval=approval, config=config)


@dataclass
class RecalibrateJobResult:
    """What a recalibration did: the step, its gate and, when it passed, the new version."""

    recalibration: object
    decision: object
    model_version: str | None = None
    run_id: str | None = None


def recalibrate_job(
    data_dir: Path | str,
    as_of: pd.Timestamp,
    version: str | None = None,
    config_path: Path | None = None,
) -> RecalibrateJobResult:
    """Recalibrate a registered model on the newest labelled month and register it if it passes.

    The month is the newest month end whose label horizon closed by
    ``as_of``. The recalibrated model is gated against the model it came
    from on that month (same AUC by construction; ECE within the config's
    ``gate.max_ece``); when it passes it is logged and registered as a new
    version aliased ``challenger``. Promoting it stays a reviewer's decision
    (``propensity promote --approver NAME --note TEXT``).

    Raises
    ------
    models.recalibrate.RecalibrationRefused
        Too few labelled rows, or a shift too large for a recalibration.
    """
    from models import tracking
    from models.config import load_config
    from models.gate import evaluate_gate
    from models.recalibrate import recalibrate

    source = version or tracking.alias_version(tracking.CHAMPION)
    if source is None:
        raise tracking.ModelNotFoundError(
            "no champion to recalibrate: pass --version or promote a model first"
        )
    model = tracking.load_model(f"models:/{tracking.MODEL_NAME}/{source}")
    config = load_config(config_path)
    horizon = int(model.metadata.get("horizon_days", 30))
    tables = load_valid_tables(data_dir).tables
    labelled = evaluation_frame(tables, as_of, 1, horizon)
    log.info("stage labelled_month rows_out=%s", f"{len(labelled):,}")
    rec = recalibrate(model, labelled, config.calibration)
    threshold = float(model.metadata.get("full_coverage_threshold", 0.999))
    decision = evaluate_gate(
        rec.model,
        model,
        labelled,
        config.gate.tolerance,
        config.gate.max_ece,
        threshold,
        champion_version=str(source),
        challenger_probs=rec.probs_after,  # the month as recalibrate scored it
        champion_probs=rec.probs_before,
    )
    out = RecalibrateJobResult(rec, decision)
    if decision.accepted:
        out.run_id, out.model_version = _register_recalibration(
            rec, decision, source, data_dir, as_of, labelled
        )
    return out


def _register_recalibration(rec, decision, source: str, data_dir, as_of, labelled):
    """Log a recalibration that passed its gate and register it as challenger; (run, version)."""
    import json

    from models import tracking

    tags = tracking.version_info(source)["tags"]
    window = {
        **json.loads(tags.get("data_window", "{}")),
        "data_dir": str(Path(data_dir).resolve()),
        "as_of": as_of.date().isoformat(),
        "recalibration_month": rec.month,
    }
    return tracking.log_recalibration(rec, decision, window, labelled.head(5))


def portfolio_or_simulate(
    data_dir: Path | str | None,
    n_accounts: int = 1500,
    n_months: int = 18,
    seed: int = 7,
    start: str = "2024-01-01",
) -> Path:
    """Return ``data_dir``, or simulate a portfolio into a new temporary folder when it is None.

    Notebooks call this so that they run on a lender's data when given a
    folder and on a small simulated portfolio otherwise, never writing into
    the repository.
    """
    import tempfile

    from pipeline.simulator import simulate_portfolio, write_portfolio

    if data_dir is not None:
        return Path(data_dir)
    folder = Path(tempfile.mkdtemp(prefix="portfolio_")) / "data"
    write_portfolio(simulate_portfolio(n_accounts, n_months, seed=seed, start=start), folder)
    log.info("simulated %s accounts x %s months into %s", f"{n_accounts:,}", n_months, folder)
    return folder


def use_tracking_store(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri``, else keep ``MLFLOW_TRACKING_URI``, else a temporary store.

    Returns the URI in use. Sets the environment variable, which the tracking
    module reads at each call (nothing is set at import time).
    """
    import os
    import tempfile

    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    elif not os.environ.get("MLFLOW_TRACKING_URI"):
        store = Path(tempfile.mkdtemp(prefix="mlflow_")) / "mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
        log.warning("no MLflow store given: using a temporary one, %s", store)
    return os.environ["MLFLOW_TRACKING_URI"]
