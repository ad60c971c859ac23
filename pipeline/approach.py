"""The approach per debtor: a collector-recognised debtor type from behaviour, and its template.

:func:`classify_debtors` reads only the feature table (events strictly before
D) and assigns each account one of the seven debtor types of
``../shared/COLLECTIONS_PRACTICE.md`` or ``unknown``, with the evidence (the
features and values that fired the rule) as readable reason codes. The rules
are tried in the order of :data:`RULES`; the first that holds wins.

:func:`choose_approach` maps the type to a message template of the policy
(``approaches`` in the policy YAML, model :class:`Approaches`): a template id
and a tone, never a label about the person. A debtor in hardship (the
account flag, or hardship told to a collector in the last 365 days) only
gets a template marked ``hardship_safe``; suppressed accounts get none.

Templates are checked at load (:func:`forbidden_content`) for threats,
third-party disclosure and false urgency in both languages; a policy with
such wording is refused with a sentence naming the template, the language,
the rule and the words.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from features.vocab import COLLECTOR_TYPES
from pipeline.policy_parts import FrozenModel

#: The seven debtor types of COLLECTIONS_PRACTICE.md, then ``unknown``.
APPROACH_TYPES: tuple[str, ...] = (*COLLECTOR_TYPES, "unknown")
#: Tones a template may take; ``firm`` is never hardship-safe.
TONES: tuple[str, ...] = ("warm", "calm", "neutral", "factual", "firm", "professional", "patient")
#: Placeholders a template may use; the dialer fills them.
PLACEHOLDERS: frozenset[str] = frozenset({"name", "amount", "due_date", "offer", "agent"})

# Thresholds of the rules (documented in docs/policy.md, "Approach per debtor").
DISPUTES_STUBBORN = 2  # disputes in 365 days, and more disputes than refusals
REFUSALS_PROVOCATIVE = 1  # refusals in 90 days
BROKEN_SERIAL = 2  # broken promises in 180 days ...
KEPT_RATE_SERIAL = 0.34  # ... with a kept rate below this
HARDSHIP_VICTIM = 2  # hardship told in 365 days, or one with mostly partial payments
PARTIAL_SHARE_VICTIM = 0.5
ATTEMPTS_EVASIVE = 8  # outbound attempts in 90 days ...
RPC_RATE_EVASIVE = 0.05  # ... reaching the debtor less often than this
PAYMENTS_SOPHISTICATED = 3  # payments in 180 days, yet ...
ONTIME_SOPHISTICATED = 0.2  # ... rarely on time, and ...
PAID_RATIO_SOPHISTICATED = 0.8  # ... paying what falls due on their own schedule
KEPT_RATE_CONFIDENT = 0.75  # promises kept, yet delinquent for more than ...
OVERDUE_CONFIDENT = 2  # ... this many installments

#: Columns of the feature table the rules read.
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "attempt_count_90d",
    "rpc_rate_90d",
    "promise_kept_count_180d",
    "promise_broken_count_180d",
    "promise_kept_rate_180d",
    "refusal_count_90d",
    "dispute_count_365d",
    "hardship_count_365d",
    "partial_payment_share_180d",
    "payment_count_180d",
    "paid_ratio_180d",
    "ontime_share_365d",
    "installments_overdue",
    "inbound_count_90d",
)


def _rules(f: pd.DataFrame) -> list[tuple[str, np.ndarray, tuple[str, ...]]]:
    """Return (type, condition, evidence columns) per rule, in priority order."""

    def col(name: str) -> np.ndarray:
        return f[name].to_numpy(dtype=np.float64, na_value=np.nan)

    disputes, refusals = col("dispute_count_365d"), col("refusal_count_90d")
    broken, kept_rate = col("promise_broken_count_180d"), col("promise_kept_rate_180d")
    hardship, partial = col("hardship_count_365d"), col("partial_payment_share_180d")
    attempts, rpc_rate = col("attempt_count_90d"), col("rpc_rate_90d")
    paid, ontime, ratio = (
        col("payment_count_180d"),
        col("ontime_share_365d"),
        col("paid_ratio_180d"),
    )
    kept, overdue = col("promise_kept_count_180d"), col("installments_overdue")
    return [
        (
            "stubborn",
            (disputes >= DISPUTES_STUBBORN) & (disputes > refusals),
            ("dispute_count_365d", "refusal_count_90d"),
        ),
        ("provocative", refusals >= REFUSALS_PROVOCATIVE, ("refusal_count_90d",)),
        (
            "serial_promiser",
            (broken >= BROKEN_SERIAL) & (kept_rate < KEPT_RATE_SERIAL),
            ("promise_broken_count_180d", "promise_kept_rate_180d"),
        ),
        (
            "victim",
            (hardship >= HARDSHIP_VICTIM) | ((hardship >= 1) & (partial >= PARTIAL_SHARE_VICTIM)),
            ("hardship_count_365d", "partial_payment_share_180d"),
        ),
        (
            "evasive",
            (attempts >= ATTEMPTS_EVASIVE) & (np.nan_to_num(rpc_rate) < RPC_RATE_EVASIVE),
            ("attempt_count_90d", "rpc_rate_90d"),
        ),
        (
            "sophisticated",
            (paid >= PAYMENTS_SOPHISTICATED)
            & (ontime <= ONTIME_SOPHISTICATED)
            & (ratio >= PAID_RATIO_SOPHISTICATED),
            ("payment_count_180d", "ontime_share_365d", "paid_ratio_180d"),
        ),
        (
            "confident",
            (kept >= 1) & (kept_rate >= KEPT_RATE_CONFIDENT) & (overdue > OVERDUE_CONFIDENT),
            ("promise_kept_count_180d", "promise_kept_rate_180d", "installments_overdue"),
        ),
    ]


#: The rules' types in priority order (stubborn before provocative: repeated
#: disputes reject the debt itself; refusals without them are hostility).
RULES: tuple[str, ...] = (
    "stubborn",
    "provocative",
    "serial_promiser",
    "victim",
    "evasive",
    "sophisticated",
    "confident",
)


def _evidence(f: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """Return ``"col=value; col=value"`` per row, rates to 2 decimals, counts whole."""
    parts = []
    for name in columns:
        values = pd.Series(f[name].to_numpy(dtype=np.float64, na_value=np.nan))
        whole = values.dropna().eq(values.dropna().round()).all() and not name.endswith(
            ("_rate_180d", "_rate_90d", "_share_180d", "_share_365d", "_ratio_180d")
        )
        text = values.round(0 if whole else 2).map(
            lambda v, whole=whole: "null" if pd.isna(v) else (f"{v:.0f}" if whole else f"{v:.2f}")
        )
        parts.append(f"{name}=" + text)
    out = parts[0]
    for part in parts[1:]:
        out = out + "; " + part
    return out


def classify_debtors(features: pd.DataFrame) -> pd.DataFrame:
    """Assign each account a debtor type from its behaviour before D, with the evidence.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature table of :func:`features.build.build_features` (at least
        ``account_id`` and :data:`EVIDENCE_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``debtor_type`` (one of :data:`APPROACH_TYPES`) and
        ``approach_reasons`` (the rule's features and values, "" for unknown),
        one row per input row, in its order.

    Raises
    ------
    ValueError
        If a column the rules read is missing.
    """
    missing = [c for c in ("account_id", *EVIDENCE_COLUMNS) if c not in features.columns]
    if missing:
        raise ValueError(
            f"features is missing the columns {missing} that the approach rules read; "
            "pass the table of features.build.build_features"
        )
    rules = _rules(features)
    assert tuple(r[0] for r in rules) == RULES
    n = len(features)
    chosen = np.full(n, -1, dtype=np.int64)
    for i, (_, cond, _) in enumerate(rules):
        chosen[(chosen < 0) & cond] = i
    types = np.array([r[0] for r in rules] + ["unknown"], dtype=object)
    reasons = np.full(n, "", dtype=object)
    for i, (_, _, cols) in enumerate(rules):
        hit = chosen == i
        if hit.any():
            reasons[hit] = _evidence(features.loc[hit], cols).to_numpy()
    return pd.DataFrame(
        {
            "account_id": features["account_id"].to_numpy(),
            "debtor_type": types[np.where(chosen < 0, len(rules), chosen)],
            "approach_reasons": reasons,
        }
    )


# --- templates -------------------------------------------------------------------------

#: Forbidden content per rule, in English (case-insensitive) and Chinese.
FORBIDDEN: dict[str, dict[str, tuple[str, ...]]] = {
    "threats": {
        "en": (
            r"\barrest",
            r"\bjail\b",
            r"\bprison\b",
            r"\bpolice\b",
            r"\bcriminal\b",
            r"\bprosecut",
            r"\bseiz",
            r"\bviolen",
            r"\bharm\b",
            r"\bvisit (you|your home|your work)",
        ),
        "zh": (r"逮捕", r"拘留", r"坐牢", r"刑事", r"公安", r"警察", r"报警", r"上门", r"暴力"),
    },
    "third_party_disclosure": {
        "en": (
            r"\byour (employer|boss|colleagues?|family|relatives|friends|neighbou?rs|contacts)\b",
            r"\b(tell|inform|notify|contact|call|write to)\b[^.]{0,40}"
            r"\b(employer|family|relatives|friends|neighbou?rs|colleagues?)\b",
        ),
        "zh": (r"通讯录", r"家人", r"亲友", r"亲属", r"单位", r"同事", r"联系人", r"邻居", r"朋友"),
    },
    "false_urgency": {
        "en": (
            r"\bfinal (notice|warning|chance)\b",
            r"\blast chance\b",
            r"\bimmediately\b",
            r"\bwithin \d+ (hours?|minutes?)\b",
            r"\btoday only\b",
            r"\burgent",
            r"\bact now\b",
        ),
        "zh": (r"最后通知", r"最后机会", r"立即", r"马上", r"立刻", r"紧急", r"\d+\s*小时内"),
    },
}
_FORBIDDEN_RE = {
    rule: {lang: re.compile("|".join(p), re.IGNORECASE) for lang, p in langs.items()}
    for rule, langs in FORBIDDEN.items()
}
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


def forbidden_content(text: str, language: str) -> list[tuple[str, str]]:
    """Return (rule, matched words) for every forbidden rule the text breaks, [] when clean.

    Examples
    --------
    >>> forbidden_content("Pay now or we will call your employer.", "en")
    [('third_party_disclosure', 'call your employer')]
    >>> forbidden_content("我们注意到您有一笔还款未完成。", "zh")
    []
    """
    found = []
    for rule, langs in _FORBIDDEN_RE.items():
        match = langs[language].search(text)
        if match:
            found.append((rule, match.group(0)))
    return found


class Template(FrozenModel):
    """A message template: its tone, text in English and Chinese, and whether hardship may get it."""

    tone: Literal[TONES]  # type: ignore[valid-type]
    hardship_safe: bool = False
    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)

    @model_validator(mode="after")
    def _lawful(self) -> Template:
        if self.tone == "firm" and self.hardship_safe:
            raise ValueError("a firm template cannot be hardship_safe; set hardship_safe: false")
        for language in ("en", "zh"):
            text = getattr(self, language)
            for rule, words in forbidden_content(text, language):
                raise ValueError(
                    f"{language} text breaks the {rule.replace('_', ' ')} rule with "
                    f"{words!r}; reword it (see docs/policy.md, forbidden content)"
                )
            unknown = sorted(set(_PLACEHOLDER_RE.findall(text)) - PLACEHOLDERS)
            if unknown:
                raise ValueError(
                    f"{language} text uses unknown placeholders {unknown}; "
                    f"use only {sorted(PLACEHOLDERS)}"
                )
        return self


class Approaches(FrozenModel):
    """Templates by id, the template of each debtor type, and the one for hardship."""

    templates: dict[str, Template] = Field(min_length=1)
    by_type: dict[Literal[APPROACH_TYPES], str]  # type: ignore[valid-type]
    hardship: str

    @field_validator("templates")
    @classmethod
    def _ids(cls, value: dict[str, Template]) -> dict[str, Template]:
        bad = [k for k in value if not re.fullmatch(r"[a-z][a-z0-9_]*", k)]
        if bad:
            raise ValueError(f"template ids {bad} must be lower_snake_case")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Approaches:
        missing = [t for t in APPROACH_TYPES if t not in self.by_type]
        if missing:
            raise ValueError(f"by_type: give a template for every type, missing {missing}")
        for key, tid in [
            *(("by_type." + k, v) for k, v in self.by_type.items()),
            ("hardship", self.hardship),
        ]:
            if tid not in self.templates:
                raise ValueError(f"{key}: no template is named {tid!r}")
        if not self.templates[self.hardship].hardship_safe:
            raise ValueError(f"hardship: template {self.hardship!r} must be hardship_safe")
        return self


def choose_approach(
    classified: pd.DataFrame,
    hardship: np.ndarray,
    suppressed: np.ndarray,
    approaches: Approaches | None,
) -> pd.DataFrame:
    """Return ``approach`` (template id) and ``approach_tone`` per account.

    Parameters
    ----------
    classified : pandas.DataFrame
        Output of :func:`classify_debtors`.
    hardship : numpy.ndarray
        Boolean per row: the account is in hardship (flag or told to a collector).
    suppressed : numpy.ndarray
        Boolean per row: no contact is allowed (no template is chosen).
    approaches : Approaches or None
        The policy's templates; None leaves both columns null.

    Returns
    -------
    pandas.DataFrame
        ``approach``, ``approach_tone`` and ``approach_reasons`` (hardship
        added to the evidence where it replaced the type's template), in the
        order of ``classified``.
    """
    n = len(classified)
    reasons = classified["approach_reasons"].to_numpy(dtype=object).copy()
    if approaches is None:
        empty = np.full(n, None, dtype=object)
        return pd.DataFrame(
            {"approach": empty, "approach_tone": empty, "approach_reasons": reasons}
        )
    types = classified["debtor_type"]
    template = types.map(approaches.by_type).to_numpy(dtype=object)
    safe = {tid: t.hardship_safe for tid, t in approaches.templates.items()}
    replace = np.asarray(hardship, dtype=bool) & ~pd.Series(template).map(safe).to_numpy(bool)
    template = np.where(replace, approaches.hardship, template)
    reasons = np.where(
        replace, np.where(reasons == "", "hardship", reasons + "; hardship"), reasons
    )
    tones = pd.Series(template).map({k: t.tone for k, t in approaches.templates.items()})
    off = np.asarray(suppressed, dtype=bool)
    return pd.DataFrame(
        {
            "approach": np.where(off, None, template),
            "approach_tone": np.where(off, None, tones.to_numpy(dtype=object)),
            "approach_reasons": reasons,
        }
    )


#: Columns the approach adds to scores.parquet, last (contract version 2).
APPROACH_COLUMNS: tuple[str, ...] = ("approach", "approach_tone", "approach_reasons")


def hardship_mask(accounts_hardship: pd.Series, features: pd.DataFrame) -> np.ndarray:
    """Return True where the account is flagged in hardship or told a collector so in 365 days."""
    flag = accounts_hardship.astype("boolean").fillna(True).to_numpy(dtype=bool)
    told = features["hardship_count_365d"].to_numpy(dtype=np.float64, na_value=0.0) > 0
    return flag | told


def approach_for_accounts(
    features: pd.DataFrame,
    accounts: pd.DataFrame,
    suppressed: np.ndarray,
    approaches: Approaches | None,
) -> pd.DataFrame:
    """Classify, respect hardship and pick the template of every account of ``features``.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature table (one row per scored account).
    accounts : pandas.DataFrame
        The accounts table, for the ``hardship`` flag; holds every account of ``features``.
    suppressed : numpy.ndarray
        Boolean per row of ``features``: no contact allowed.
    approaches : Approaches or None
        The policy's templates.

    Returns
    -------
    pandas.DataFrame
        :data:`APPROACH_COLUMNS`, one row per row of ``features``, in its order.
    """
    classified = classify_debtors(features)
    flag = accounts.drop_duplicates("account_id").set_index("account_id")["hardship"]
    hardship = hardship_mask(flag.reindex(features["account_id"]), features)
    return choose_approach(classified, hardship, suppressed, approaches)[list(APPROACH_COLUMNS)]


__all__ = [
    "APPROACH_COLUMNS",
    "APPROACH_TYPES",
    "approach_for_accounts",
    "Approaches",
    "Template",
    "choose_approach",
    "classify_debtors",
    "forbidden_content",
    "hardship_mask",
]
