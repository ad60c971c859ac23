# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Retrain and compare with the champion
#
# Change a hyper-parameter or the feature set, train both heads on a chosen
# window, compare the new model with the current champion on the same
# out-of-time months, and register it as the challenger. Training goes
# through `pipeline.jobs.train_job`, the function behind `propensity train`:
# the run is logged to MLflow exactly as the command logs it (parameters,
# data window and fingerprint, metrics, plots, the HTML model report) and
# the model is registered with alias `challenger`. Promotion to champion
# stays a reviewed step (`propensity promote`, or `promote = True` below).
#
# The MLflow store is `tracking_uri` if set, else the `MLFLOW_TRACKING_URI`
# environment variable; with neither, a temporary store is used so that
# nothing is written into the repository. Leave `data_dir` as `None` to
# simulate a small portfolio into a temporary folder.

# %%
# %matplotlib inline
import logging

import pandas as pd
from IPython.display import display

from features.catalogue import FEATURE_COLUMNS, FEATURES, GROUPS
from models import tracking
from models.config import load_config
from models.evaluation import plot_calibration, plot_roc
from models.gate import evaluate_gate
from models.heads import HEADS, ability_target
from pipeline.jobs import (
    portfolio_or_simulate,
    promote_job,
    train_job,
    training_window,
    use_tracking_store,
)

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
for package in ("features", "models", "pipeline"):
    logging.getLogger(package).setLevel(logging.INFO)

# %% tags=["parameters"]
data_dir = None  # folder with the contract's tables; None simulates a portfolio
as_of = "2025-06-30"  # training date: only snapshots whose label horizon closes by then
months = 12  # monthly snapshots in the training window (oldest train, newest test)
horizon_days = 30  # label horizon H
tracking_uri = None  # MLflow store; None: MLFLOW_TRACKING_URI, else a temporary store
experiment = "repayment-propensity"  # MLflow experiment of the training run
config_path = None  # a training config YAML; None: the packaged models/default_config.yaml
# The change under test: config keys as "section.key" (see models/default_config.yaml)...
config_overrides = {"lightgbm.num_leaves": 7, "lightgbm.min_data_in_leaf": 100}
# ... and/or a feature set: drop whole groups of the catalogue, or name the columns.
exclude_groups = []  # e.g. ["offer"]; groups: repayment, contact, account, offer
feature_columns = None  # an explicit list of catalogue columns (overrides exclude_groups)
promote = False  # move alias champion to the new model if it passes the gate
approver = ""  # who approves the promotion (required when promote is True)
promotion_note = ""  # why (required when promote is True; recorded in the registry)
# Only used when data_dir is None: the simulated portfolio.
n_accounts = 1500
n_months = 18
seed = 7
start = "2024-01-01"

# %% [markdown]
# ## Where the data and the runs go

# %%
as_of = pd.Timestamp(as_of)
data_dir = portfolio_or_simulate(data_dir, n_accounts, n_months, seed, start)
use_tracking_store(tracking_uri)
print(f"data: {data_dir}\nMLflow store: {tracking.tracking_uri()}")

# %% [markdown]
# ## The change under test
#
# The training window ends at the last month end whose label horizon closes
# by `as_of`; its newest months are the out-of-time test set. The config is
# the packaged one (or `config_path`) with the overrides applied, checked
# like the file: an unknown key is refused with its name.

# %%
first, last = training_window(as_of, months, horizon_days)
print(f"training window: month ends {first.date()} .. {last.date()}, horizon {horizon_days} days")

config = load_config(config_path, overrides=config_overrides)
default = load_config(config_path)
changed = {
    key: (default.flat()[key], value)
    for key, value in config.flat().items()
    if default.flat()[key] != value
}
display(pd.DataFrame(changed, index=["default", "this run"]).T.rename_axis("config key"))

if feature_columns is None and exclude_groups:
    unknown = sorted(set(exclude_groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}; known: {sorted(GROUPS)}")
    feature_columns = [c for c in FEATURE_COLUMNS if FEATURES[c].group not in exclude_groups]
n_features = len(FEATURE_COLUMNS) if feature_columns is None else len(feature_columns)
print(f"features: {n_features} of the catalogue's {len(FEATURE_COLUMNS)}")

# %% [markdown]
# ## Train both heads, log the run, register the challenger

# %%
job = train_job(
    data_dir,
    as_of,
    months=months,
    horizon_days=horizon_days,
    config_path=config_path,
    experiment=experiment,
    config_overrides=config_overrides,
    feature_columns=feature_columns,
)
result = job.result
print(f"MLflow run {job.run_id}: registered version {job.model_version} as challenger")
display(result.split_summary)

# %% [markdown]
# ### Out of time, against the baselines
#
# Each head against the two simple baselines it was trained with (a DPD
# bucket rule and a logistic scorecard), on the validation and test months.

# %%
rows = []
for head in HEADS:
    for split, figures in result.metrics[head].items():
        rows.append({"head": head, "split": split, "model": "lightgbm", **figures})
        for name, splits in result.baseline_metrics[head].items():
            rows.append({"head": head, "split": split, "model": name, **splits[split]})
metrics = pd.DataFrame(rows).set_index(["head", "split", "model"])
display(metrics[["auc", "gini", "ks", "brier", "ece"]].round(4))
display(result.figures["roc_willingness_test"], result.figures["importance_willingness"])

# %% [markdown]
# ## Against the champion, on the same out-of-time months
#
# The champion and the new model score the new model's test months (all the
# catalogue's columns are there, so a champion with another feature set
# scores them too). The gate is the one `propensity promote` applies, with
# its settings (the `gate` section of the packaged config): per head, AUC no
# worse than the champion's by more than the tolerance, and calibration
# error within bounds. A champion that trained or calibrated on these
# months has seen them: the comparison flatters it, and the cell says so.

# %%
test = result.split.test
try:
    champion = tracking.load_model(f"models:/{tracking.MODEL_NAME}@{tracking.CHAMPION}")
except tracking.ModelNotFoundError:
    champion = None
    print("no champion yet: the gate compares the new model with the baselines instead")
if champion is not None:
    seen = set(champion.metadata.get("splits", {}).get("train", [])) | set(
        champion.metadata.get("splits", {}).get("validation", [])
    )
    overlap = sorted(seen & {str(d.date()) for d in result.split.months["test"]})
    if overlap:
        print(f"caution: champion v{champion.version} was fitted on test months {overlap}")

gate_config = load_config()  # what propensity promote applies
decision = evaluate_gate(
    result.model,
    champion,
    test,
    tolerance=gate_config.gate.tolerance,
    max_ece=gate_config.gate.max_ece,
    threshold=gate_config.labels.full_coverage_threshold,
    challenger_version=job.model_version,
    champion_version=champion.version if champion is not None else None,
)
print(decision.summary())

# %%
candidates = {f"challenger v{job.model_version}": result.model}
if champion is not None:
    candidates[f"champion v{champion.version}"] = champion
probabilities = {name: model.predict_proba(test) for name, model in candidates.items()}
payers = test["paid_any"].to_numpy() == 1
targets = {
    "willingness": (slice(None), test["paid_any"].to_numpy()),
    "ability": (
        payers,
        ability_target(test["coverage"], config.labels.full_coverage_threshold)[payers],
    ),
}
for head in HEADS:
    mask, y = targets[head]
    curves = {name: (y, p[f"p_{head}"].to_numpy()[mask]) for name, p in probabilities.items()}
    display(
        plot_roc(curves, f"ROC, {head}, out of time"),
        plot_calibration(curves, f"Calibration, {head}, out of time"),
    )

# %% [markdown]
# ## Promote (optional)
#
# Promotion is normally the risk team's step, after reading the model report
# in the MLflow UI: `propensity promote --version V --approver NAME --note TEXT`.
# With `promote = True` (and `approver`, `promotion_note` filled in) this
# notebook calls the same job (`pipeline.jobs.promote_job`): it
# rebuilds the version's out-of-time months from its recorded data window,
# applies the gate and moves alias `champion` only if the new model passes;
# either way the decision is recorded on the model version as `promotion.*`
# tags.

# %%
if promote:
    promotion = promote_job(job.model_version, approver=approver, note=promotion_note)
    print(promotion.summary())
else:
    print(
        f"version {job.model_version} stays the challenger; "
        f"promote it with: propensity promote --version {job.model_version} "
        "--approver NAME --note TEXT"
    )
