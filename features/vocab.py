"""Closed vocabularies of the data contract, fixed in one place.

Every category list used by the schemas, the simulator, the features and the
models is defined here, so that training and scoring can never disagree on
the codes LightGBM sees (see ``../shared/DATA_CONTRACT.md``).
"""

from __future__ import annotations

PRODUCTS: tuple[str, ...] = (
    "credit_card",
    "personal_loan",
    "microloan",
    "auto_loan",
    "mortgage",
    "bnpl",
)
PAYMENT_CHANNELS: tuple[str, ...] = (
    "bank_transfer",
    "card",
    "cash",
    "direct_debit",
    "wallet",
    "other",
)
CONTACT_CHANNELS: tuple[str, ...] = ("call", "sms", "email", "letter", "visit", "app_push")
DIRECTIONS: tuple[str, ...] = ("outbound", "inbound")
OUTCOMES: tuple[str, ...] = (
    "no_answer",
    "voicemail",
    "busy",
    "wrong_number",
    "third_party",
    "right_party",
    "promise_to_pay",
    "refused",
    "dispute",
    "hardship",
    "delivered",
    "undelivered",
    "replied",
)
#: Outcomes that count as a right-party contact (RPC).
RPC_OUTCOMES: frozenset[str] = frozenset(
    {"right_party", "promise_to_pay", "refused", "dispute", "hardship", "replied"}
)
#: Outcomes of a call that mean a telephone conversation with the debtor took place.
CONVERSATION_OUTCOMES: frozenset[str] = frozenset(
    {"right_party", "promise_to_pay", "refused", "dispute", "hardship"}
)
OFFER_TYPES: tuple[str, ...] = ("installment_plan", "extension", "settlement", "staged_repayment")
#: Offers the scorer may output (contract, scores.parquet ``offer``).
OUTPUT_OFFERS: tuple[str, ...] = (
    "none",
    "reminder",
    "installment_plan",
    "extension",
    "settlement",
    "staged_repayment",
    "legal_review",
)
CONTACT_INTENSITIES: tuple[str, ...] = ("none", "low", "medium", "high")
#: Special statuses that forbid any contact, in the order a suppressed_reason is chosen.
SUPPRESSING_STATUSES: tuple[str, ...] = (
    "deceased",
    "bankruptcy",
    "dispute_open",
    "cease_communication",
    "do_not_contact",
)
#: Promise-kept rule of the contract: paid within promised_date + grace, at least this share.
PROMISE_GRACE_DAYS: int = 3
PROMISE_KEPT_SHARE: float = 0.90
#: Arrears at or below this amount (account currency) count as current.
DEFAULT_MATERIALITY: float = 1.00

TABLES: tuple[str, ...] = ("accounts", "installments", "payments", "contacts", "offers")
REQUIRED_TABLES: tuple[str, ...] = ("accounts", "installments", "payments", "contacts")
#: The key column of each table (the row's own id, used in rejects).
TABLE_KEYS: dict[str, str] = {
    "accounts": "account_id",
    "installments": "installment_no",
    "payments": "payment_id",
    "contacts": "contact_id",
    "offers": "offer_id",
}

#: The seven debtor types collectors describe (../shared/COLLECTIONS_PRACTICE.md): the
#: simulator's latent types (beside good payers) and the approach classifier's classes.
COLLECTOR_TYPES: tuple[str, ...] = (
    "provocative",
    "evasive",
    "victim",
    "confident",
    "stubborn",
    "sophisticated",
    "serial_promiser",
)
