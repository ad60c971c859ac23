"""Tests of the approach per debtor: the type rules on hand-built histories, templates, hardship."""

from __future__ import annotations

import copy
from pathlib import Path

import factories as fx
import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from features.build import build_features
from pipeline import policy as policy_module
from pipeline.approach import (
    APPROACH_TYPES,
    EVIDENCE_COLUMNS,
    Approaches,
    Template,
    approach_for_accounts,
    choose_approach,
    classify_debtors,
    forbidden_content,
)
from pipeline.policy import PolicyError, load_policy, parse_policy

DEFAULT_FILE = Path(policy_module.__file__).with_name("default_policy.yaml")

# A neutral history: nothing fires.
_NEUTRAL = {
    "attempt_count_90d": 3,
    "rpc_rate_90d": 0.33,
    "promise_kept_count_180d": 0,
    "promise_broken_count_180d": 0,
    "promise_kept_rate_180d": np.nan,
    "refusal_count_90d": 0,
    "dispute_count_365d": 0,
    "hardship_count_365d": 0,
    "partial_payment_share_180d": 0.0,
    "payment_count_180d": 1,
    "paid_ratio_180d": 0.3,
    "ontime_share_365d": 0.6,
    "installments_overdue": 1,
    "inbound_count_90d": 0,
}


def _features(*rows: dict) -> pd.DataFrame:
    df = pd.DataFrame([{**_NEUTRAL, **r} for r in rows])
    df.insert(0, "account_id", [f"A{i}" for i in range(1, len(rows) + 1)])
    return df


@pytest.mark.parametrize(
    ("history", "expected", "evidence"),
    [
        ({"dispute_count_365d": 3, "refusal_count_90d": 1}, "stubborn", "dispute_count_365d=3"),
        ({"refusal_count_90d": 2}, "provocative", "refusal_count_90d=2"),
        (
            {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.0},
            "serial_promiser",
            "promise_kept_rate_180d=0.00",
        ),
        ({"hardship_count_365d": 2}, "victim", "hardship_count_365d=2"),
        (
            {"hardship_count_365d": 1, "partial_payment_share_180d": 0.8},
            "victim",
            "partial_payment_share_180d=0.80",
        ),
        ({"attempt_count_90d": 12, "rpc_rate_90d": 0.0}, "evasive", "attempt_count_90d=12"),
        (
            {"payment_count_180d": 6, "ontime_share_365d": 0.0, "paid_ratio_180d": 1.0},
            "sophisticated",
            "ontime_share_365d=0.00",
        ),
        (
            {
                "promise_kept_count_180d": 2,
                "promise_kept_rate_180d": 1.0,
                "installments_overdue": 4,
            },
            "confident",
            "installments_overdue=4",
        ),
        ({}, "unknown", ""),
    ],
)
def test_each_rule_on_a_hand_built_history(history, expected, evidence):
    out = classify_debtors(_features(history))
    assert out["debtor_type"].tolist() == [expected]
    assert evidence in out["approach_reasons"].iloc[0]


def test_rules_just_below_their_thresholds_do_not_fire():
    out = classify_debtors(
        _features(
            {"dispute_count_365d": 1},  # one dispute, no refusal
            {"promise_broken_count_180d": 1, "promise_kept_rate_180d": 0.0},
            {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.5},
            {"hardship_count_365d": 1, "partial_payment_share_180d": 0.2},
            {"attempt_count_90d": 7, "rpc_rate_90d": 0.0},
            {"attempt_count_90d": 20, "rpc_rate_90d": 0.10},
        )
    )
    assert out["debtor_type"].tolist() == ["unknown"] * 6


def test_priority_disputes_over_refusals_over_promises():
    out = classify_debtors(
        _features(
            {
                "dispute_count_365d": 3,
                "refusal_count_90d": 1,
                "promise_broken_count_180d": 4,
                "promise_kept_rate_180d": 0.0,
            },
            {"dispute_count_365d": 2, "refusal_count_90d": 3},  # more refusals: provocative
            {"refusal_count_90d": 1, "promise_broken_count_180d": 4, "promise_kept_rate_180d": 0.0},
        )
    )
    assert out["debtor_type"].tolist() == ["stubborn", "provocative", "provocative"]


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="rpc_rate_90d"):
        classify_debtors(_features({}).drop(columns="rpc_rate_90d"))


def test_output_keeps_order_and_types_are_closed():
    feats = _features({"refusal_count_90d": 1}, {}, {"hardship_count_365d": 3})
    out = classify_debtors(feats.iloc[::-1].reset_index(drop=True))
    assert out["account_id"].tolist() == ["A3", "A2", "A1"]
    assert set(out["debtor_type"]) <= set(APPROACH_TYPES)


def test_rules_read_a_real_contact_log_before_d():
    """Two refusals on the phone before D make a debtor provocative; one after D does not count."""
    accounts = fx.accounts(2)
    inst = fx.installments(["A1", "A2"], n=3)
    contacts = pd.DataFrame(
        {
            "contact_id": ["K1", "K2", "K3"],
            "account_id": ["A1", "A1", "A2"],
            "contact_at": fx.utc(
                "2024-03-05T15:00:00", "2024-03-12T15:00:00", "2024-04-02T15:00:00"
            ),
            "channel": ["call", "call", "call"],
            "direction": ["outbound"] * 3,
            "outcome": ["refused", "refused", "refused"],
            "promised_amount": [np.nan] * 3,
            "promised_date": fx.dates(None, None, None),
            "agent_id": ["G1"] * 3,
        }
    )
    tables = {
        "accounts": accounts,
        "installments": inst,
        "payments": fx.payments().iloc[:0],
        "contacts": contacts,
    }
    feats = build_features(tables, pd.Timestamp("2024-04-01"))
    out = classify_debtors(feats).set_index("account_id")
    assert out.loc["A1", "debtor_type"] == "provocative"
    assert out.loc["A1", "approach_reasons"] == "refusal_count_90d=2"
    assert out.loc["A2", "debtor_type"] == "unknown"


# --- templates and hardship -------------------------------------------------------------


def _approaches_dict() -> dict:
    return copy.deepcopy(yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))["approaches"])


@pytest.mark.parametrize(
    ("language", "text", "rule"),
    [
        ("en", "Pay {amount} or we will have you arrested.", "threats"),
        ("en", "We may contact the police about {amount}.", "threats"),
        ("en", "We will tell your employer about the debt.", "third_party_disclosure"),
        ("en", "If you do not pay we will write to your relatives.", "third_party_disclosure"),
        ("en", "FINAL NOTICE: pay {amount} now.", "false_urgency"),
        ("en", "Pay within 24 hours to avoid action.", "false_urgency"),
        ("zh", "不还款我们将报警处理。", "threats"),
        ("zh", "我们会联系您的家人和同事。", "third_party_disclosure"),
        ("zh", "请立即还款{amount}。", "false_urgency"),
        ("zh", "请在24小时内还款。", "false_urgency"),
    ],
)
def test_forbidden_wording_is_refused_at_load_naming_the_rule(language, text, rule):
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data["approaches"]["templates"]["firm_factual"][language] = text
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "test.yaml")
    message = str(info.value)
    assert "approaches.templates.firm_factual" in message
    assert rule.replace("_", " ") in message and language in message


def test_default_templates_are_clean_in_both_languages():
    approaches = load_policy().approaches
    assert approaches is not None
    for template in approaches.templates.values():
        assert forbidden_content(template.en, "en") == []
        assert forbidden_content(template.zh, "zh") == []


def test_factual_consequences_are_allowed():
    assert (
        forbidden_content("Late payment adds fees and is reported to your credit record.", "en")
        == []
    )


def test_unknown_placeholder_and_firm_hardship_template_are_refused():
    with pytest.raises(ValidationError, match="placeholders"):
        Template(tone="neutral", en="Hello {nmae}", zh="您好")
    with pytest.raises(ValidationError, match="cannot be hardship_safe"):
        Template(tone="firm", hardship_safe=True, en="Hello", zh="您好")


def test_every_type_needs_a_template_and_hardship_needs_a_safe_one():
    data = _approaches_dict()
    del data["by_type"]["evasive"]
    with pytest.raises(ValidationError, match="missing \\['evasive'\\]"):
        Approaches.model_validate(data)
    data = _approaches_dict()
    data["hardship"] = "firm_factual"
    with pytest.raises(ValidationError, match="must be hardship_safe"):
        Approaches.model_validate(data)
    data = _approaches_dict()
    data["by_type"]["victim"] = "no_such_template"
    with pytest.raises(ValidationError, match="no_such_template"):
        Approaches.model_validate(data)


def test_hardship_replaces_a_firm_template_and_suppressed_get_none():
    approaches = load_policy().approaches
    classified = classify_debtors(
        _features(
            {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.0},  # firm template
            {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.0},  # same, in hardship
            {"refusal_count_90d": 1},  # calm template, hardship-safe: kept in hardship
            {"refusal_count_90d": 1},  # suppressed
        )
    )
    out = choose_approach(
        classified,
        hardship=np.array([False, True, True, False]),
        suppressed=np.array([False, False, False, True]),
        approaches=approaches,
    )
    assert out["approach"].tolist() == [
        "structured_plan_confirmed",
        approaches.hardship,
        "calm_acknowledge",
        None,
    ]
    assert out["approach_tone"].tolist() == ["firm", "warm", "calm", None]
    assert out["approach_reasons"].iloc[1].endswith("; hardship")
    firm = {k for k, t in approaches.templates.items() if t.tone == "firm"}
    assert not set(out["approach"].iloc[1:3]) & firm


def test_hardship_told_to_a_collector_counts_like_the_flag():
    approaches = load_policy().approaches
    feats = _features(
        {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.0},
        {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.0, "hardship_count_365d": 1},
        {"promise_broken_count_180d": 3, "promise_kept_rate_180d": 0.0},
    )
    accounts = fx.accounts(3, hardship=[False, False, True])
    out = approach_for_accounts(feats, accounts, np.zeros(3, dtype=bool), approaches)
    assert out["approach"].tolist() == [
        "structured_plan_confirmed",
        approaches.hardship,
        approaches.hardship,
    ]


def test_no_approaches_in_the_policy_leaves_the_columns_null():
    out = choose_approach(
        classify_debtors(_features({})), np.zeros(1, bool), np.zeros(1, bool), None
    )
    assert out["approach"].isna().all() and out["approach_tone"].isna().all()


def test_evidence_columns_exist_in_the_feature_catalogue():
    from features.catalogue import FEATURE_COLUMNS  # noqa: PLC0415

    assert set(EVIDENCE_COLUMNS) <= set(FEATURE_COLUMNS)


def test_rules_recover_simulated_types_far_better_than_the_majority_class():
    from pipeline.approach_eval import evaluate_approach_simulated  # noqa: PLC0415

    per_seed, matrix = evaluate_approach_simulated(4000, 12, (11,))
    row = per_seed.iloc[0]
    assert row["accuracy"] > row["majority_baseline"] + 0.15
    assert int(matrix.to_numpy().sum()) == row["accounts"]
    # every type is recovered more often than it is confused with any single other type
    for t in ("provocative", "evasive", "victim", "stubborn", "serial_promiser"):
        assert matrix.loc[t, t] == matrix.loc[t].drop("unknown").max()
