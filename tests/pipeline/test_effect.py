"""The effect estimator recovers an effect planted in a hand-built set of runs and payments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.effect import EffectInputError, effect_units, estimate_effect, read_published

D1 = pd.Timestamp("2025-03-01")


def _world():
    """Tier A: treated pay 100 +- 10, control 60 +- 10 (effect +40, 3 more contacts each).

    Tier B: both arms pay 50 +- 10 (no effect). Payments before D and after the
    horizon are large and must not count; a second night repeats every account.
    """
    n_a, n_b = 60, 60
    ids = [f"A{i:03d}" for i in range(n_a + n_b)]
    tier = ["A"] * n_a + ["B"] * n_b
    control = [i % 2 == 0 for i in range(n_a)] + [i % 3 == 0 for i in range(n_b)]
    night = pd.DataFrame(
        {
            "account_id": ids,
            "as_of_date": D1.date(),
            "risk_tier": tier,
            "control_group": control,
            "offer": ["reminder" if c else ("installment_plan" if t == "A" else "reminder")
                      for t, c in zip(tier, control, strict=True)],
            "treated_offer": ["installment_plan" if t == "A" else "reminder" for t in tier],
        }
    )  # fmt: skip
    second = night.assign(as_of_date=(D1 + pd.Timedelta(days=1)).date(), control_group=False)
    scores = pd.concat([night, second], ignore_index=True)
    noise = np.where(np.arange(len(ids)) % 4 < 2, 10.0, -10.0)
    base = np.where(np.array(tier) == "A", np.where(control, 60.0, 100.0), 50.0) + noise
    at = pd.Timestamp("2025-03-10 12:00", tz="UTC")
    payments = pd.DataFrame(
        {
            "account_id": ids * 3,
            "paid_at": [at] * len(ids)
            + [pd.Timestamp("2025-02-20", tz="UTC")] * len(ids)
            + [pd.Timestamp("2025-03-31 00:00", tz="UTC")] * len(ids),
            "amount": np.concatenate([base, np.full(len(ids), 1000.0), np.full(len(ids), 1000.0)]),
        }
    )
    calls = np.where(np.array(tier) == "A", np.where(control, 1, 4), 2)
    rows = np.repeat(np.arange(len(ids)), calls)
    contacts = pd.DataFrame(
        {
            "account_id": np.array(ids)[rows],
            "contact_at": pd.Timestamp("2025-03-05 15:00", tz="UTC"),
            "channel": "call",
            "direction": "outbound",
        }
    )
    return scores, payments, contacts


def test_effect_recovers_the_planted_effect_overall_per_tier_and_per_offer():
    scores, payments, contacts = _world()
    units = effect_units(scores, payments, contacts, horizon_days=30)
    assert len(units) == 120  # one unit per account: the second night is not a new unit
    result = estimate_effect(units, n_boot=400, seed=1)
    a, b = result.per_tier.loc["A"], result.per_tier.loc["B"]
    assert a["incremental_recovery"] == pytest.approx(40.0, abs=1e-9)
    assert a["ci_low"] < 40.0 < a["ci_high"] and a["ci_low"] > 30.0
    assert a["incremental_per_contact"] == pytest.approx(40.0 / 3.0)
    assert b["incremental_recovery"] == pytest.approx(0.0, abs=1e-9)
    assert b["ci_low"] < 0.0 < b["ci_high"]
    # Overall: the tiers' effects weighted by their sizes (60 and 60).
    overall = result.overall.iloc[0]
    assert overall["incremental_recovery"] == pytest.approx(20.0, abs=1e-9)
    assert overall["n_control"] == 30 + 20
    # Control accounts are grouped by the offer their tier plan carries.
    assert result.per_offer.loc["installment_plan", "incremental_recovery"] == pytest.approx(40.0)
    assert result.per_offer.loc["reminder", "incremental_recovery"] == pytest.approx(0.0, abs=1e-9)


def test_effect_needs_both_arms_and_runs_in_the_window(tmp_path):
    scores, payments, contacts = _world()
    units = effect_units(scores.assign(control_group=False), payments, contacts, 30)
    with pytest.raises(EffectInputError, match="both groups"):
        estimate_effect(units)
    with pytest.raises(EffectInputError, match="no published run"):
        read_published(tmp_path, D1, D1)
    folder = tmp_path / "as_of=2025-03-01"
    folder.mkdir()
    scores.to_parquet(folder / "scores.parquet")
    assert len(read_published(tmp_path, D1, D1)) == len(scores)


def test_read_published_reads_only_the_asked_columns_a_run_has(tmp_path):
    scores, _, _ = _world()
    folder = tmp_path / "as_of=2025-03-01"
    folder.mkdir()
    scores.to_parquet(folder / "scores.parquet")
    assert "arm" not in scores.columns  # a run from before the arms were logged
    got = read_published(tmp_path, D1, D1, ("control_group", "arm", "account_id"))
    assert list(got.columns) == ["control_group", "account_id"]
    pd.testing.assert_frame_equal(got, scores[["control_group", "account_id"]])


def test_cli_effect_without_runs_exits_2_with_one_sentence(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(
        app,
        ["effect", "--scores", str(tmp_path), "--data", str(tmp_path),
         "--from", "2025-03-01", "--to", "2025-03-31"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no published run" in result.output and "Traceback" not in result.output
