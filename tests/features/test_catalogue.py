"""Feature values on hand-built accounts, and the catalogue's metadata and reason texts."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import factories
import numpy as np
import pandas as pd
import pytest
from factories import payment_rows

from features import vocab
from features.catalogue import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_DESCRIPTIONS,
    FEATURES,
    GROUPS,
    MONOTONE_ABILITY,
    MONOTONE_WILLINGNESS,
    catalogue_markdown,
    reason_text,
)
from features.context import AsOfContext
from features.prepare import prepare_tables

ROOT = Path(__file__).resolve().parents[2]
D = "2024-03-01"


def contact_rows(*rows: tuple) -> pd.DataFrame:
    """Contacts from (account, contact_at, channel, direction, outcome[, amount, date])."""
    n = len(rows)
    return pd.DataFrame(
        {
            "contact_id": [f"K{i}" for i in range(n)],
            "account_id": [r[0] for r in rows],
            "contact_at": pd.Series(pd.to_datetime([r[1] for r in rows], utc=True)).astype(
                "datetime64[ns, UTC]"
            ),
            "channel": [r[2] for r in rows],
            "direction": [r[3] for r in rows],
            "outcome": [r[4] for r in rows],
            "promised_amount": [r[5] if len(r) > 5 else np.nan for r in rows],
            "promised_date": pd.Series(
                pd.to_datetime([r[6] if len(r) > 5 else None for r in rows]),
                dtype="datetime64[ns]",
            ),
            "agent_id": [None] * n,
        }
    )


@pytest.fixture
def ctx() -> AsOfContext:
    """Account A1 with six monthly installments of 100 (Sep 2023 - Feb 2024), four
    payments and a contact log; A2 untouched. Seen as of 1 March 2024."""
    accounts = factories.accounts(2, opened_date=factories.dates("2023-08-01", "2023-08-01"))
    installments = factories.installments(["A1", "A2"], n=6)
    installments["due_date"] = pd.Series(
        list(pd.date_range("2023-09-01", periods=6, freq="MS")) * 2, dtype="datetime64[ns]"
    )
    payments = payment_rows(
        ("A1", "2023-10-05T12:00", 100),
        ("A1", "2023-12-01T10:00", 100),
        ("A1", "2024-01-15T12:00", 50),
        ("A1", "2024-02-20T12:00", 30),
        ("A1", "2024-03-01T00:00", 500),  # at D: invisible
    )
    contacts = contact_rows(
        ("A1", "2024-02-28T10:00", "call", "outbound", "no_answer"),
        ("A1", "2024-02-20T10:00", "call", "outbound", "right_party"),
        ("A1", "2024-02-25T10:00", "sms", "outbound", "delivered"),
        ("A1", "2024-02-26T10:00", "sms", "inbound", "replied"),
        ("A1", "2024-01-15T10:00", "call", "outbound", "promise_to_pay", 50.0, "2024-01-20"),
        ("A1", "2023-11-01T10:00", "email", "outbound", "refused"),
        ("A1", "2023-06-01T10:00", "call", "outbound", "dispute"),
        ("A1", "2024-03-01T00:00", "call", "outbound", "no_answer"),  # at D: invisible
    )
    tables = {
        "accounts": accounts,
        "installments": installments,
        "payments": payments,
        "contacts": contacts,
    }
    return AsOfContext(prepare_tables(tables), D)


def value(ctx: AsOfContext, name: str, account: int = 0):
    return FEATURES[name](ctx).iloc[account]


def test_repayment_features_worked_by_hand(ctx):
    # Due 600, paid 280: installments 1 and 2 paid (5 Oct, 1 Dec), installment 3
    # (1 Nov) the oldest unpaid: 30 + 31 + 31 + 29 = 121 days past due.
    expected = {
        "arrears": 320.0,
        "dpd": 121,
        "installments_overdue": 4,
        "installments_due_count": 6,
        "installment_amount": 100.0,
        "arrears_to_installment": 3.2,
        "arrears_to_principal": 320 / 1200,
        "paid_ratio_all": 280 / 600,
        "dpd_max_180d": 121,
        "episodes_90plus_count_180d": 1,
        "episodes_30plus_count_365d": 1,
        "cure_count_365d": 0,
        # One open episode since 2 Sep: 181 days to 1 Mar, D included.
        "episode_days_current": 182,
        # [31 Jan, 1 Mar): 20 Feb. [2 Dec, 1 Mar): 15 Jan, 20 Feb (1 Dec is out).
        "payment_count_30d": 1,
        "payment_count_90d": 2,
        "payment_count_180d": 4,
        "payment_sum_90d": 80.0,
        "days_since_last_payment": 10.0,
        "last_payment_to_installment": 0.3,
        # Due in [2 Dec, 1 Mar): Jan + Feb = 200; paid 80.
        "paid_ratio_90d": 0.4,
        "paid_ratio_180d": 280 / 500,
        "paid_ratio_365d": 280 / 600,
        # The 90 days before that: paid 200 against Oct, Nov, Dec = 300.
        "paid_ratio_trend_90d": 0.4 - 200 / 300,
        "ontime_share_365d": 0.0,
        "partial_payment_count_180d": 2,
        "partial_payment_share_180d": 0.5,
        "tenure_days": 213.0,
    }
    for name, want in expected.items():
        assert value(ctx, name) == pytest.approx(want), name


def test_contact_features_worked_by_hand(ctx):
    expected = {
        # D - 7 days = 23 Feb: the no-answer call of 28 Feb and the SMS of 25 Feb.
        "attempt_count_7d": 2,
        "attempt_count_30d": 3,
        "attempt_count_90d": 4,
        "call_attempt_count_7d": 1,
        "call_attempt_count_30d": 2,
        "call_attempt_count_90d": 3,
        "sms_attempt_count_7d": 1,
        "email_attempt_count_90d": 0,
        "rpc_count_30d": 2,
        "rpc_count_90d": 3,
        "rpc_rate_30d": 1 / 3,
        "rpc_rate_90d": 2 / 4,
        "days_since_last_rpc": 4.0,
        "days_since_last_attempt": 2.0,
        "inbound_count_30d": 1,
        "sms_reply_count_90d": 1,
        "promise_count_90d": 1,
        # 50 promised on 15 Jan and 50 paid two hours later: kept.
        "promise_kept_count_90d": 1,
        "promise_broken_count_90d": 0,
        "promise_kept_rate_180d": 1.0,
        "promise_pending": 0,
        "promise_pending_to_arrears": 0.0,
        "refusal_count_90d": 0,
        "dispute_count_365d": 1,
        "hardship_count_365d": 0,
    }
    for name, want in expected.items():
        assert value(ctx, name) == pytest.approx(want), name


def test_untouched_account_has_zero_counts_and_null_ratios(ctx):
    assert value(ctx, "attempt_count_90d", 1) == 0
    assert math.isnan(value(ctx, "rpc_rate_30d", 1))
    assert math.isnan(value(ctx, "days_since_last_payment", 1))
    assert math.isnan(value(ctx, "promise_kept_rate_180d", 1))
    # Nothing paid since 1 Sep 2023: 30 + 31 + 30 + 31 + 31 + 29 days.
    assert value(ctx, "dpd", 1) == 182


def test_without_offers_table_or_optional_columns_those_features_are_null(ctx):
    for name in ("offer_count_365d", "offer_broken_count_365d", "days_since_last_offer"):
        assert FEATURES[name](ctx).isna().all(), name
    for name in ("monthly_income", "age", "installment_to_income", "arrears_to_income"):
        assert FEATURES[name](ctx).isna().all(), name


def test_offer_features_with_a_broken_arrangement():
    tables = factories.tables()
    tables["offers"] = pd.DataFrame(
        {
            "offer_id": ["O1", "O2", "O3"],
            "account_id": ["A1", "A2", "A2"],
            "offered_at": factories.utc(
                "2023-12-05T10:00:00", "2023-12-01T10:00:00", "2024-02-20T10:00:00"
            ),
            "offer_type": ["installment_plan", "extension", "settlement"],
            "accepted": [True, True, True],
            "discount_pct": [None, None, 10.0],
            "n_installments": pd.array([6, None, None], dtype="Int64"),
        }
    )
    # A1 paid on 1 Jan, within 30 days of its 5 Dec acceptance; A2 paid only on
    # 20 Jan, 50 days after: broken. A2's offer of 20 Feb is too recent to judge.
    assert FEATURES["offer_broken_count_365d"](tables, "2024-03-01").tolist() == [0.0, 1.0, 0.0]
    assert FEATURES["offer_accepted_count_365d"](tables, "2024-03-01").tolist() == [1.0, 2.0, 0.0]
    assert FEATURES["days_since_last_offer"](tables, "2024-03-01").tolist()[:2] == [87.0, 10.0]


def test_pending_promise_relative_to_arrears():
    tables = factories.tables()
    tables["contacts"] = contact_rows(
        ("A3", "2024-02-25T10:00", "call", "outbound", "promise_to_pay", 50.0, "2024-03-05"),
    )
    # A3 owes 200 on 1 March; the promise of 50 is pending until 9 March.
    assert FEATURES["promise_pending"](tables, D).tolist() == [0, 0, 1]
    assert FEATURES["promise_pending_to_arrears"](tables, D).tolist() == [0.0, 0.0, 0.25]


def test_catalogue_metadata_is_complete_and_consistent():
    assert len(FEATURE_COLUMNS) == len(set(FEATURE_COLUMNS)) >= 80
    assert FEATURE_COLUMNS[:2] == ("arrears", "dpd")
    for name in FEATURE_COLUMNS:
        spec = FEATURES[name]
        assert spec.group in GROUPS
        assert FEATURE_DESCRIPTIONS[name] and "\n" not in FEATURE_DESCRIPTIONS[name]
        assert spec.dtype in ("int64", "float64", "category")
        # A nullable feature must be float (or category): ints cannot hold NaN.
        assert not (spec.nullable and spec.dtype == "int64"), name
        assert "{v}" in spec.reason or spec.reason_one, name
    assert CATEGORICAL_FEATURES == {"product": vocab.PRODUCTS}
    for table in (MONOTONE_WILLINGNESS, MONOTONE_ABILITY):
        assert set(table) <= set(FEATURE_COLUMNS)
        assert set(table.values()) <= {-1, 1}
    assert MONOTONE_WILLINGNESS["dpd"] == -1


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("promise_broken_count_90d", 3, "3 broken promises in the last 90 days"),
        ("promise_broken_count_90d", 1, "1 broken promise in the last 90 days"),
        ("promise_broken_count_90d", 0, "no broken promise in the last 90 days"),
        ("days_since_last_payment", 74.0, "no payment for 74 days"),
        ("days_since_last_payment", None, "no payment on record"),
        ("arrears_to_installment", 2.4, "arrears 2.4x the monthly installment"),
        ("rpc_rate_30d", 0.25, "reached the debtor on 25% of attempts in the last 30 days"),
        ("paid_ratio_trend_90d", -0.4, "paid-to-due ratio down 40 points on the previous 90 days"),
        ("arrears", 1234.5, "arrears of 1,234.50"),
        ("dpd", 45, "45 days past due"),
        ("product", "microloan", "product: microloan"),
        ("promise_pending", 1, "a promise to pay is pending"),
        ("monthly_income", np.nan, "income not known"),
    ],
)
def test_reason_text(feature, value, text):
    assert reason_text(feature, value) == text


def test_every_feature_has_a_reason_for_typical_and_missing_values():
    for name in FEATURE_COLUMNS:
        sample = "credit_card" if name == "product" else 2.0
        assert reason_text(name, sample)
        assert reason_text(name, None)


def test_reason_text_unknown_feature_names_the_fix():
    with pytest.raises(KeyError, match="FEATURE_COLUMNS"):
        reason_text("no_such_feature", 1)


def test_docs_catalogue_is_generated_from_the_code():
    doc = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    assert doc == catalogue_markdown(), "regenerate docs/features.md with catalogue_markdown()"
    for name in FEATURE_COLUMNS:
        assert f"`{name}`" in doc


def test_features_package_imports_neither_models_nor_pipeline():
    for path in (ROOT / "features").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"models", "pipeline", "mlflow", "lightgbm"}, (path.name, name)


def test_every_feature_name_is_written_out_in_its_group_module():
    # grep NAME lands on the definition: the name is a string literal in the
    # module its group names (no names assembled by f-strings in loops).
    from features.catalogue import GROUP_MODULES

    for name, spec in FEATURES.items():
        source = (ROOT / GROUP_MODULES[spec.group]).read_text(encoding="utf-8")
        assert f'"{name}"' in source, f"{name} is not written out in {GROUP_MODULES[spec.group]}"
    # And the generated catalogue says where each group is defined.
    doc = catalogue_markdown()
    for path in GROUP_MODULES.values():
        assert f"Defined in `{path}`." in doc
