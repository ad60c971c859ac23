"""Randomised units from logged plans: arms, point in time, outcome share; fitted end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.uplift import planted_randomised_data
from pipeline.effect import EffectInputError
from pipeline.uplift_units import effects_from_plans, plan_units


def _scores(rows):
    cols = ["account_id", "as_of_date", "control_group", "dpd", "arrears", "p_willingness",
            "p_ability"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=cols)
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    return frame


def _payments(rows):
    frame = pd.DataFrame(rows, columns=["account_id", "paid_at", "amount"])
    frame["paid_at"] = pd.to_datetime(frame["paid_at"], utc=True)
    return frame


def test_units_are_first_nights_with_a_closed_horizon_and_their_share_paid():
    scores = _scores(
        [
            ["A1", "2025-01-10", True, 10, 100.0, 0.5, 0.5],
            ["A1", "2025-01-11", True, 11, 100.0, 0.5, 0.5],  # a later night: not a unit
            ["A2", "2025-01-10", False, 40, 200.0, 0.3, 0.6],
            ["A3", "2025-01-25", False, 5, 80.0, 0.7, 0.2],  # horizon open at the as-of
            ["A4", "2025-01-12", False, 70, 0.0, 0.2, 0.2],  # no arrears: no share
        ]
    )
    payments = _payments(
        [
            ["A1", "2025-01-10 00:00", 30.0],  # on D: counts
            ["A1", "2025-02-09 00:00", 50.0],  # D + 30 days: outside [D, D + 30)
            ["A2", "2025-01-09 23:59", 99.0],  # before D
            ["A2", "2025-01-20 10:00", 250.0],  # more than the arrears: share 1
            ["A3", "2025-01-26 10:00", 80.0],
        ]
    )
    units = plan_units(scores, payments, pd.Timestamp("2025-02-15"), 30)
    assert units["account_id"].tolist() == ["A1", "A2"]
    assert units["arm"].tolist() == ["control", "plan"]
    assert units["outcome"].tolist() == pytest.approx([0.3, 1.0])
    assert units["as_of_date"].tolist() == [pd.Timestamp("2025-01-10")] * 2
    assert units["dpd"].tolist() == [10, 40]


def test_published_arms_are_read_and_unknown_ones_left_out():
    scores = _scores(
        [["A1", "2025-01-10", True, 10, 100.0, 0.5, 0.5],
         ["A2", "2025-01-10", False, 40, 200.0, 0.3, 0.6],
         ["A3", "2025-01-10", False, 40, 200.0, 0.3, 0.6],
         ["A4", "2025-01-10", False, 40, 200.0, 0.3, 0.6]]
    )  # fmt: skip
    scores["arm"] = ["control", "high", None, "mystery"]
    units = plan_units(scores, _payments([]), pd.Timestamp("2025-03-01"), 30)
    assert dict(zip(units["account_id"], units["arm"], strict=True)) == {
        "A1": "control", "A2": "high", "A3": "plan"
    }  # fmt: skip
    assert (units["outcome"] == 0).all()
    with pytest.raises(EffectInputError, match=r"lack the columns \['p_ability'\]"):
        plan_units(scores.drop(columns="p_ability"), _payments([]), pd.Timestamp("2025-03-01"), 30)


def test_explored_units_drawn_among_fewer_than_four_lawful_are_left_out_and_counted():
    scores = _scores(
        [["A1", "2025-01-10", True, 10, 100.0, 0.5, 0.5],
         ["A2", "2025-01-10", False, 40, 200.0, 0.3, 0.6],
         ["A3", "2025-01-10", False, 40, 200.0, 0.3, 0.6],
         ["A4", "2025-01-10", False, 40, 200.0, 0.3, 0.6],
         ["A5", "2025-01-10", False, 40, 200.0, 0.3, 0.6]]
    )  # fmt: skip
    scores["arm"] = ["control", "high", "none", "low", "plan"]
    # A3 under a promise hold (none only), A4 in hardship (none, low): restricted draws.
    scores["lawful_arms"] = pd.array([None, 4, 1, 2, None], dtype="Int64")
    units = plan_units(scores, _payments([]), pd.Timestamp("2025-03-01"), 30)
    assert units["account_id"].tolist() == ["A1", "A2", "A5"]
    assert units.attrs["explored"] == {"kept": 1, "fewer_lawful": 2, "lawful_unknown": 0}
    # A run from before lawful_arms was published keeps its explored units.
    older = plan_units(
        scores.drop(columns="lawful_arms"), _payments([]), pd.Timestamp("2025-03-01"), 30
    )
    assert older["account_id"].tolist() == ["A1", "A2", "A3", "A4", "A5"]
    assert older.attrs["explored"] == {"kept": 3, "fewer_lawful": 0, "lawful_unknown": 3}


def test_train_plans_says_how_many_restricted_explored_units_it_left_out(tmp_path, caplog):
    payments = _publish(tmp_path / "runs", 3000, 7, lawful=True)
    published = pd.concat(pd.read_parquet(p) for p in (tmp_path / "runs").glob("*/scores.parquet"))
    fewer = int((published["lawful_arms"] < 4).sum())
    explored = int(published["arm"].isin(["low", "high"]).sum())
    assert 300 < fewer < 500 and fewer < explored / 4  # a fifth of the explored two thirds
    with caplog.at_level("INFO", logger="pipeline.uplift_units"):
        eff = effects_from_plans(tmp_path / "runs", payments, pd.Timestamp("2025-03-01"), 30)
    assert eff.model is not None
    assert f"{explored - fewer} kept, {fewer} left out (drawn among fewer than 4" in eff.source
    table = eff.table.set_index("arm")
    assert table["units"].sum() + table["baseline_units"].iloc[0] == 3000 - fewer
    assert any(f"{fewer} left out" in r.getMessage() for r in caplog.records)
    # Too few units for a model: the reason, which MLflow's uplift_model tag logs, says it too.
    few = _publish(tmp_path / "few", 40, 7, lawful=True)
    small = effects_from_plans(tmp_path / "few", few, pd.Timestamp("2025-03-01"), 30)
    assert small.model is None and "too few" in small.reason
    assert "left out (drawn among fewer than 4 lawful intensities)" in small.reason
    # Runs published before lawful_arms: every explored unit kept, and a warning says so.
    old = _publish(tmp_path / "old", 3000, 7)
    caplog.clear()
    eff = effects_from_plans(tmp_path / "old", old, pd.Timestamp("2025-03-01"), 30)
    assert "0 left out" in eff.source and "kept without lawful_arms" in eff.source
    assert any(r.levelname == "WARNING" and "without lawful_arms" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def _publish(root: Path, n: int, seed: int, lawful: bool = False) -> pd.DataFrame:
    """Write planted randomised plans as two published runs; return the payments they led to."""
    X, t, y, _ = planted_randomised_data(n, seed, ("control", "low", "high"))
    days = np.where(np.arange(n) % 2 == 0, "2025-01-10", "2025-01-20")
    arrears = 100.0 + 10 * (np.arange(n) % 7)
    scores = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)], "as_of_date": pd.to_datetime(days),
            "control_group": t == "control", "dpd": X["dpd"], "arrears": arrears,
            "p_willingness": X["p_willingness"], "p_ability": X["paid_ratio_180d"], "arm": t,
        }
    )  # fmt: skip
    if lawful:  # every fifth account had two lawful intensities; the control group none logged
        count = np.where(t == "control", np.nan, np.where(np.arange(n) % 5 == 0, 2.0, 4.0))
        scores["lawful_arms"] = pd.array(count, dtype="Int64")
    for day, part in scores.groupby("as_of_date"):
        folder = root / f"as_of={day.date()}"
        folder.mkdir(parents=True)
        part.to_parquet(folder / "scores.parquet")
    return pd.DataFrame(
        {
            "account_id": scores["account_id"],
            "paid_at": scores["as_of_date"].dt.tz_localize("UTC") + pd.Timedelta(days=3),
            "amount": y * arrears,
        }
    )


def test_effects_from_plans_fit_the_planted_arms(tmp_path):
    payments = _publish(tmp_path / "runs", 3000, 7)
    eff = effects_from_plans(tmp_path / "runs", payments, pd.Timestamp("2025-03-01"), 30)
    assert eff.model is not None and eff.arms == ("control", "low", "high")
    assert "2 published run(s) in runs/ 2025-01-10..2025-01-20" in eff.source
    high = eff.table.set_index("arm").loc["high"]
    assert high["units"] + high["baseline_units"] + eff.table.iloc[0]["units"] == 3000
    assert high["qini_ci_low"] > 0  # the planted effect is found and ranked
    # Before the second run's horizon closes only the first is used; before both, none.
    early = effects_from_plans(tmp_path / "runs", payments, pd.Timestamp("2025-02-15"), 30)
    assert early.model is not None and "1 published run(s)" in early.source
    late = effects_from_plans(
        tmp_path / "runs",
        payments,
        pd.Timestamp("2025-03-01"),
        30,
        since=pd.Timestamp("2025-01-15"),
    )
    assert "1 published run(s) in runs/ 2025-01-20..2025-01-20" in late.source
    none = effects_from_plans(tmp_path / "runs", payments, pd.Timestamp("2025-02-01"), 30)
    assert none.model is None and "no published run" in none.reason
    with pytest.raises(EffectInputError, match="no such folder"):
        effects_from_plans(tmp_path / "nope", payments, pd.Timestamp("2025-03-01"), 30)


def test_cli_train_with_a_missing_plans_folder_exits_2_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    args = ["train", "--data", str(tmp_path), "--as-of", "2025-03-01", "--plans"]
    result = CliRunner().invoke(app, [*args, str(tmp_path / "nope")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("nope: no such folder of published runs")
