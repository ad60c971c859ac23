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
# # Review a policy: tiers, contact and offers, and a what-if
#
# For one scoring date: how many accounts fall in each risk tier, how hard
# they are contacted and what they are offered; then a what-if: move a
# threshold of the policy and see what changes for the same scores.
#
# The scores are a published run (`scores_dir`, the `as_of=D` folder that
# `propensity score` writes) or, when `scores_dir` is `None`, a fresh run of
# `pipeline.score.run_scoring` (the nightly scorer) into a temporary folder
# with the model at `model_uri`. The what-if re-plans those scores with
# `pipeline.plan.assign_plans`, the function the scorer uses, under the
# current and the edited policy; the edited policy is validated by
# `parse_policy` exactly like a policy file, so an edit that breaks the law
# of the jurisdiction is refused here too.
#
# Leave `data_dir` as `None` to simulate a small portfolio (and, if the
# MLflow store has no model yet, to train one) in temporary folders. Nothing
# is written into the repository.

# %%
# %matplotlib inline
import copy
import logging
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from features.build import build_features
from models import tracking
from pipeline.contact_log import recent_promises
from pipeline.jobs import load_valid_tables, portfolio_or_simulate, train_job, use_tracking_store
from pipeline.plan import assign_plans
from pipeline.policy import load_policy, parse_policy, policy_version
from pipeline.score import account_capacity, run_scoring

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
for package in ("features", "models", "pipeline"):
    logging.getLogger(package).setLevel(logging.INFO)

# %% tags=["parameters"]
data_dir = None  # folder with the contract's tables; None simulates a portfolio
as_of = "2025-06-30"  # the scoring date D
scores_dir = None  # a published run folder (<out>/as_of=D); None scores now
model_uri = "models:/repayment-propensity@champion"  # model used when scoring now
policy_path = None  # the policy YAML under review; None: pipeline/default_policy.yaml
tracking_uri = None  # MLflow store; None: MLFLOW_TRACKING_URI, else a temporary store
# The what-if: in every tier, move the bound `what_if_from` of `what_if_axis` to `what_if_to`.
what_if_axis = "p_willingness"  # p_willingness or p_ability
what_if_from = 0.6
what_if_to = 0.5
# Only used when data_dir is None: the simulated portfolio.
n_accounts = 1500
n_months = 18
seed = 7
start = "2024-01-01"

# %% [markdown]
# ## Data, store and policy

# %%
as_of = pd.Timestamp(as_of)
simulated = data_dir is None
data_dir = portfolio_or_simulate(data_dir, n_accounts, n_months, seed, start)
use_tracking_store(tracking_uri)
print(f"data: {data_dir}\nMLflow store: {tracking.tracking_uri()}")

policy = load_policy(policy_path)
version = policy_version(policy_path)
print(f"policy {policy.version} ({version}), jurisdiction {policy.jurisdiction}")
display(
    pd.DataFrame(
        [
            {
                "tier": t.name,
                "p_willingness": f"[{t.p_willingness[0]}, {t.p_willingness[1]})",
                "p_ability": f"[{t.p_ability[0]}, {t.p_ability[1]})",
                "intensity": t.contact_intensity,
                "calls / 7d": t.max_calls_7d,
                "sms / 7d": t.max_sms_7d,
                "offer": t.offer,
            }
            for t in policy.tiers
        ]
    ).set_index("tier")
)

# %% [markdown]
# ## The scores for D

# %%
if scores_dir is not None:
    scores = pd.read_parquet(Path(scores_dir) / "scores.parquet")
    print(f"read {len(scores):,} scores from {scores_dir}")
else:
    try:
        tracking.resolve_version(model_uri)
    except tracking.ModelNotFoundError:
        if not simulated:
            raise
        print(f"no model at {model_uri}: training one on the simulated portfolio")
        job = train_job(data_dir, as_of, experiment=tracking.DEFAULT_EXPERIMENT)
        model_uri = f"models:/{tracking.MODEL_NAME}/{job.model_version}"
    out_dir = Path(tempfile.mkdtemp(prefix="scores_"))
    outcome = run_scoring(
        data_dir, as_of, out_dir, model_uri=model_uri, policy_path=policy_path, log_to_mlflow=False
    )
    scores = outcome.scores
    print(f"scored {len(scores):,} accounts with {model_uri} into {outcome.output_dir}")
published_with = set(scores["policy_version"])
print(f"model version(s) {sorted(set(scores['model_version']))}, policy {sorted(published_with)}")

# %% [markdown]
# ## Tiers, contact intensity and offers

# %%
display(
    pd.crosstab(scores["risk_tier"], scores["contact_intensity"], margins=True),
    pd.crosstab(scores["risk_tier"], scores["offer"], margins=True),
    scores["suppressed_reason"].fillna("(contactable)").value_counts().to_frame("accounts"),
    scores.groupby("risk_tier")[["max_calls_7d", "max_sms_7d", "expected_recovery"]].sum(),
    pd.crosstab(scores["risk_tier"], scores["control_group"]).rename(
        columns={False: "treated", True: "control"}
    ),
)

fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
for tier, group in scores.groupby("risk_tier"):
    axes[0].scatter(group["p_willingness"], group["p_ability"], s=8, alpha=0.6, label=tier)
for t in policy.tiers:
    for w in t.p_willingness:
        axes[0].axvline(w, color="grey", linewidth=0.6, linestyle=":")
    for a in t.p_ability:
        axes[0].axhline(a, color="grey", linewidth=0.6, linestyle=":")
axes[0].set(xlabel="p_willingness", ylabel="p_ability", title=f"Scores and tiers at {as_of.date()}")
axes[0].legend(fontsize=8)
pd.crosstab(scores["contact_intensity"], scores["offer"]).plot.bar(ax=axes[1], rot=0)
axes[1].set(title="Offers by contact intensity", ylabel="accounts", xlabel="contact intensity")
plt.show()

# %% [markdown]
# ## What-if: move a threshold
#
# The policy is edited as a plain mapping (what the YAML file holds) and
# validated again: tiers must still tile the willingness x ability square,
# and nothing may exceed the jurisdiction's caps.

# %%
edited = copy.deepcopy(policy.model_dump(mode="json"))
edited["version"] = f"{policy.version}-what-if"
for tier in edited["tiers"]:
    tier[what_if_axis] = [what_if_to if v == what_if_from else v for v in tier[what_if_axis]]
what_if = parse_policy(edited, source="what-if")
print(f"{what_if_axis}: bound {what_if_from} moved to {what_if_to}")
display(
    pd.DataFrame(
        {
            "current": [t.model_dump()[what_if_axis] for t in policy.tiers],
            "what-if": [t.model_dump()[what_if_axis] for t in what_if.tiers],
        },
        index=[t.name for t in policy.tiers],
    ).rename_axis("tier")
)

# %% [markdown]
# Both policies plan the same scores with the same inputs the scorer used
# (accounts, contact log, promises, payment capacity before D). The current policy's
# plan must reproduce the published one: a check that the comparison is
# like for like.

# %%
tables = load_valid_tables(data_dir).tables
scored = scores[["account_id", "dpd", "arrears", "p_willingness", "p_ability"]].join(
    account_capacity(build_features(tables, as_of)), on="account_id"
)
plan_args = (tables["accounts"], tables["contacts"], as_of)
days = policy.promises.broken_lookback_days
promises = recent_promises(tables["contacts"], tables["payments"], as_of, days)
current = assign_plans(scored, *plan_args, policy, version, promises)
changed = assign_plans(scored, *plan_args, what_if, "what-if", promises)

compared = ["risk_tier", "contact_intensity", "offer", "max_calls_7d", "max_sms_7d"]
if published_with == {version}:
    mismatch = (current[compared].to_numpy() != scores[compared].to_numpy()).any(axis=1)
    assert not mismatch.any(), f"{mismatch.sum()} accounts re-plan differently from the scores"
    print("the current policy reproduces the published plans")
else:
    print(f"note: the scores were planned with policy {sorted(published_with)}, not {version}")

# %%
moved = (current[compared].to_numpy() != changed[compared].to_numpy()).any(axis=1)
print(f"{moved.sum():,} of {len(scores):,} accounts get a different plan")
display(
    pd.crosstab(current["risk_tier"], changed["risk_tier"], margins=True).rename_axis(
        index="current tier", columns="what-if tier"
    ),
    pd.crosstab(current["contact_intensity"], changed["contact_intensity"]).rename_axis(
        index="current intensity", columns="what-if intensity"
    ),
    pd.crosstab(current["offer"], changed["offer"]).rename_axis(
        index="current offer", columns="what-if offer"
    ),
    pd.DataFrame(
        {
            "current": current[["max_calls_7d", "max_sms_7d"]].sum(),
            "what-if": changed[["max_calls_7d", "max_sms_7d"]].sum(),
        }
    ).rename_axis("planned contacts (7 days)"),
)

counts = pd.DataFrame(
    {"current": current["risk_tier"].value_counts(), "what-if": changed["risk_tier"].value_counts()}
).fillna(0)
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
counts.plot.bar(ax=ax, rot=0)
ax.set(title="Accounts per tier, current policy and what-if", ylabel="accounts", xlabel="")
plt.show()
