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
# # Explore a portfolio
#
# What the overdue book looks like at a date, read with the same library code
# the nightly job runs: days past due (DPD) and arrears from the
# point-in-time ledger, cure and roll rates month to month, contact outcomes
# and promise behaviour.
#
# Set `data_dir` to a folder holding the data contract's tables (see
# `DATA_CONTRACT.md`); leave it `None` to simulate a small portfolio into a
# temporary folder. Nothing is written into the repository.

# %%
# %matplotlib inline
import logging

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from features.ledger import build_ledger, delinquency_episodes, promise_states
from features.training_set import month_ends
from features.vocab import CONTACT_CHANNELS, OUTCOMES, RPC_OUTCOMES
from pipeline.jobs import load_valid_tables, portfolio_or_simulate
from pipeline.simulator import portfolio_rates

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
for package in ("features", "models", "pipeline"):
    logging.getLogger(package).setLevel(logging.INFO)

# %% tags=["parameters"]
data_dir = None  # folder with the contract's tables; None simulates a portfolio
as_of = "2025-06-30"  # the date to look at (tz-naive); events strictly before it count
history_months = 12  # month ends before as_of used for rates and trends
materiality = 1.0  # arrears at or below this amount count as current
# Only used when data_dir is None: the simulated portfolio.
n_accounts = 1500
n_months = 18
seed = 7
start = "2024-01-01"

# %% [markdown]
# ## Load and validate the tables
#
# `load_valid_tables` is what every job runs first: it reads the tables,
# checks them against the contract and removes any account with a rejected
# row, whole.

# %%
as_of = pd.Timestamp(as_of)
data_dir = portfolio_or_simulate(data_dir, n_accounts, n_months, seed, start)

validation = load_valid_tables(data_dir)
tables = validation.tables
print(f"rejected accounts: {len(validation.rejected_accounts):,}")
display(
    pd.DataFrame(
        {"rows read": validation.rows_read, "rows kept": {k: len(v) for k, v in tables.items()}}
    )
)

# %% [markdown]
# ## DPD and arrears at the as-of date
#
# The ledger applies payments made before D to the oldest installments due
# before D; an account is overdue when its arrears exceed the materiality
# threshold.

# %%
ledger = build_ledger(
    tables["accounts"], tables["installments"], tables["payments"], as_of, materiality
)
overdue = ledger[ledger["overdue"]]
print(
    f"{len(overdue):,} of {len(ledger):,} accounts overdue at {as_of.date()} "
    f"({len(overdue) / len(ledger):.1%}); arrears {overdue['arrears'].sum():,.0f}"
)
dpd_bucket = pd.cut(
    overdue["dpd"],
    bins=[0, 29, 59, 89, 119, float("inf")],
    labels=["1-29", "30-59", "60-89", "90-119", "120+"],
)
buckets = (
    overdue.groupby(dpd_bucket, observed=False)["arrears"]
    .agg(accounts="size", arrears="sum", median_arrears="median")
    .rename_axis("dpd bucket")
)
display(buckets)

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.5), layout="constrained")
axes[0].hist(overdue["dpd"], bins=30, color="#4472c4")
axes[0].set(title="DPD of overdue accounts", xlabel="days past due", ylabel="accounts")
buckets["accounts"].plot.bar(ax=axes[1], color="#4472c4", rot=0)
axes[1].set(title="Accounts per DPD bucket", ylabel="accounts")
axes[2].hist(overdue["arrears"], bins=30, color="#ed7d31", log=True)
axes[2].set(title="Arrears of overdue accounts", xlabel="arrears", ylabel="accounts (log)")
plt.show()

# %% [markdown]
# ## The book over time: overdue share, cure and roll rates
#
# One ledger per month end (a loop over a handful of dates, each vectorised
# over accounts). `portfolio_rates` measures cure (back to current by the
# next month end) and roll (one bucket worse) per DPD bucket over the same
# dates.

# %%
ends = [d for d in month_ends(as_of - pd.DateOffset(months=history_months), as_of) if d < as_of]
rows = []
for d in ends:
    ledger_d = build_ledger(
        tables["accounts"], tables["installments"], tables["payments"], d, materiality
    )
    rows.append(
        {
            "month_end": d,
            "overdue_share": ledger_d["overdue"].mean(),
            "arrears": ledger_d.loc[ledger_d["overdue"], "arrears"].sum(),
            "dpd_90_plus": (ledger_d["dpd"] >= 90).sum(),
        }
    )
trend = pd.DataFrame(rows).set_index("month_end")

rates = pd.Series(portfolio_rates(tables, ends, materiality), name="rate")
bucket_names = ["1_29", "30_59", "60_89", "90p"]
cure_roll = pd.DataFrame(
    {
        "cure": [rates[f"cure_{b}"] for b in bucket_names],
        "roll": [rates.get(f"roll_{b}", float("nan")) for b in bucket_names],
    },
    index=bucket_names,
)
display(rates.to_frame().round(3))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), layout="constrained")
trend["overdue_share"].plot(ax=axes[0], marker="o")
axes[0].set(title="Share of accounts overdue at each month end", ylabel="share", xlabel="")
cure_roll.plot.bar(ax=axes[1], rot=0)
axes[1].set(title="Month-to-month cure and roll rates by DPD bucket", ylabel="rate")
plt.show()

# %% [markdown]
# ## Delinquency episodes
#
# An episode runs from the first day past due to the payment that cures it.

# %%
episodes = delinquency_episodes(tables["installments"], tables["payments"], as_of, materiality)
cured = episodes[~episodes["is_open"]]
print(
    f"{len(episodes):,} episodes, {episodes['is_open'].sum():,} open; median days to cure "
    f"{(cured['end'] - cured['start']).dt.days.median():.0f}"
)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), layout="constrained")
axes[0].hist(episodes["worst_dpd"], bins=30, color="#4472c4")
axes[0].set(title="Worst DPD per episode", xlabel="days past due", ylabel="episodes")
axes[1].hist((cured["end"] - cured["start"]).dt.days, bins=30, color="#70ad47")
axes[1].set(title="Days to cure (closed episodes)", xlabel="days", ylabel="episodes")
plt.show()

# %% [markdown]
# ## Contact outcomes
#
# Outcomes per channel over the history window, and the right-party contact
# (RPC) rate of outbound calls per month.

# %%
contacts = tables["contacts"]
# Whole calendar months: the as-of month and the history_months - 1 before it.
window_start = (as_of.to_period("M") - (history_months - 1)).to_timestamp().tz_localize("UTC")
recent = contacts[
    (contacts["contact_at"] >= window_start) & (contacts["contact_at"] < as_of.tz_localize("UTC"))
]
outcomes = pd.crosstab(
    pd.Categorical(recent["outcome"], categories=OUTCOMES),
    pd.Categorical(recent["channel"], categories=CONTACT_CHANNELS),
    dropna=False,
).rename_axis(index="outcome", columns="channel")
display(outcomes)

calls = recent[(recent["channel"] == "call") & (recent["direction"] == "outbound")]
rpc_by_month = (
    calls["outcome"]
    .isin(RPC_OUTCOMES)
    .groupby(calls["contact_at"].dt.tz_localize(None).dt.to_period("M"))
    .mean()
)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), layout="constrained")
outcomes.sum(axis=1).sort_values().plot.barh(ax=axes[0], color="#4472c4")
axes[0].set(title="Contact outcomes", xlabel="contacts", ylabel="")
rpc_by_month.plot(ax=axes[1], marker="o")
axes[1].set(title="RPC rate of outbound calls", ylabel="rate", xlabel="")
plt.show()

# %% [markdown]
# ## Promise behaviour
#
# A promise is kept when payments from the contact up to the promised date
# plus the grace days reach the contract's share of the promised amount;
# pending while that window is still open at D.

# %%
promises = promise_states(contacts, tables["payments"], as_of)
promises = promises[promises["contact_at"] >= window_start]
print(promises["state"].value_counts().to_string())
decided = promises[promises["state"] != "pending"]
kept_by_month = (
    decided["state"]
    .eq("kept")
    .groupby(decided["contact_at"].dt.tz_localize(None).dt.to_period("M"))
    .mean()
)
promise_rank = decided.groupby("account_id")["state"].agg(
    promises="size", kept=lambda s: s.eq("kept").mean()
)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), layout="constrained")
kept_by_month.plot(ax=axes[0], marker="o")
axes[0].set(title="Promise-kept rate by month promised", ylabel="kept share", xlabel="")
promise_rank.groupby("promises")["kept"].mean().plot.bar(ax=axes[1], rot=0, color="#70ad47")
axes[1].set(
    title="Kept share by promises made per account",
    xlabel="promises in the window",
    ylabel="kept share",
)
plt.show()

# %% [markdown]
# ## The simulator's truth (simulated data only)
#
# A simulated folder carries `truth.parquet`: each account's latent debtor
# type. Real data has no such table; this cell is skipped for it.

# %%
truth_path = data_dir / "truth.parquet"
if truth_path.exists():
    debtor_type = pd.read_parquet(truth_path).groupby("account_id")["debtor_type"].first()
    by_type = pd.DataFrame(
        {
            "overdue_share": ledger.set_index("account_id")["overdue"].groupby(debtor_type).mean(),
            "promise_kept_rate": decided.assign(kept=decided["state"].eq("kept"))
            .set_index("account_id")["kept"]
            .groupby(debtor_type)
            .mean(),
        }
    )
    display(by_type.round(3))
else:
    print("no truth.parquet: real data")
