"""The simulator's parameters: the fixed vocabulary of codes and the tunable rates.

:class:`Parameters` holds every rate and table the simulation draws from, with
the defaults documented in ``docs/simulator.md``; pass a modified copy
(``dataclasses.replace(Parameters(), skip_rate=0.1)``) to
:func:`pipeline.simulator.simulate_portfolio` to simulate another scenario.
The module-level constants are structural (codes, time zones, units) and
are not meant to be tuned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.vocab import (
    COLLECTOR_TYPES,
    CONTACT_CHANNELS,
    OUTCOMES,
    PAYMENT_CHANNELS,
    RPC_OUTCOMES,
)

#: Latent debtor types: ordinary good payers and the seven types collectors describe.
DEBTOR_TYPES: tuple[str, ...] = ("good_payer", *COLLECTOR_TYPES)
GOOD, PROVOCATIVE, EVASIVE, VICTIM, CONFIDENT, STUBBORN, SOPHISTICATED, SERIAL = range(8)

#: Time zones of the simulated debtors, with their share, currency and regions.
TIMEZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "Europe/London",
    "Asia/Shanghai",
)
#: Share of the debtors in each time zone, and its currency.
TZ_SHARE = (0.45, 0.30, 0.12, 0.13)
TZ_CURRENCY = ("USD", "USD", "GBP", "CNY")
#: The legal profile of a debtor in each time zone (accounts.jurisdiction).
TZ_JURISDICTION = ("us_reg_f", "us_reg_f", "uk_conc", "cn_2025")
#: The regions (accounts.region) of each time zone.
TZ_REGIONS = (
    ("US-NY", "US-NJ", "US-PA", "US-FL", "US-GA"),
    ("US-IL", "US-TX", "US-MN", "US-MO"),
    ("GB-ENG", "GB-SCT", "GB-WLS"),
    ("CN-SH", "CN-JS", "CN-ZJ"),
)
#: Money scale of each currency relative to USD (principal, income).
CURRENCY_SCALE = {"USD": 1.0, "GBP": 0.8, "CNY": 6.5}

#: An epoch second later than any event ("no such event": a debtor who has not paid).
NEVER = np.iinfo(np.int64).max
#: Collectors who place calls and visits (contacts.agent_id G001 ... G120).
N_AGENTS = 120
#: Seconds in a day: the simulator's times are epoch seconds (UTC).
DAY = 86_400

#: Integer codes of the vocabularies in the simulator's arrays (their order in features.vocab).
CHANNEL = {name: i for i, name in enumerate(CONTACT_CHANNELS)}
OUTCOME = {name: i for i, name in enumerate(OUTCOMES)}
PAY_CHANNEL = {name: i for i, name in enumerate(PAYMENT_CHANNELS)}
#: Outcomes of a call answered by the debtor, drawn by the right-party mix (``_rpc_mix``).
RPC_CODES = np.array(
    [OUTCOME[o] for o in ("right_party", "promise_to_pay", "refused", "dispute", "hardship")]
)
#: Codes of the outcomes that count as a right-party contact (features.vocab.RPC_OUTCOMES).
RPC_SET = np.array(sorted(OUTCOME[o] for o in RPC_OUTCOMES))


def _type_table() -> dict[str, tuple[float, ...]]:
    """Per debtor type (columns in DEBTOR_TYPES order). Documented in docs/simulator.md."""
    return {
        #                   good   prov   evas   vict   conf   stub   soph   seri
        "share": (0.840, 0.020, 0.025, 0.030, 0.025, 0.020, 0.015, 0.025),
        "willingness": (0.95, 0.45, 0.45, 0.85, 0.80, 0.40, 0.75, 0.60),
        "capacity": (3.50, 2.50, 2.20, 0.80, 3.00, 2.80, 2.50, 1.50),
        "job_loss": (0.003, 0.010, 0.012, 0.030, 0.006, 0.008, 0.006, 0.012),
        "illness": (0.002, 0.006, 0.006, 0.020, 0.004, 0.005, 0.004, 0.006),
        "start_late": (0.03, 0.35, 0.35, 0.30, 0.20, 0.35, 0.90, 0.30),
        "on_time": (0.950, 0.93, 0.92, 0.95, 0.85, 0.93, 0.10, 0.92),
        "late_pay": (0.95, 0.45, 0.45, 0.85, 0.35, 0.40, 0.00, 0.30),
        "answer": (0.30, 0.35, 0.05, 0.30, 0.25, 0.30, 0.20, 0.35),
        "contact_boost": (0.50, 0.10, 0.30, 0.40, 0.80, 0.10, 0.20, 0.20),
        "keep": (0.92, 0.60, 0.65, 0.85, 0.90, 0.60, 0.85, 0.20),
        "inbound": (0.15, 0.02, 0.01, 0.20, 0.08, 0.03, 0.05, 0.05),
        "accept": (0.60, 0.10, 0.25, 0.60, 0.50, 0.10, 0.35, 0.60),
        "token": (0.25, 0.25, 0.25, 0.35, 0.25, 0.20, 0.25, 0.06),
        "bad_number": (0.03, 0.10, 0.30, 0.05, 0.03, 0.08, 0.03, 0.10),
    }


def _rpc_mix() -> np.ndarray:
    """Outcome of a right-party call per type: right_party, promise, refused, dispute, hardship."""
    return np.array(
        [
            [0.45, 0.45, 0.03, 0.02, 0.05],
            [0.25, 0.15, 0.50, 0.07, 0.03],
            [0.45, 0.35, 0.10, 0.05, 0.05],
            [0.30, 0.30, 0.03, 0.02, 0.35],
            [0.40, 0.55, 0.02, 0.01, 0.02],
            [0.30, 0.15, 0.15, 0.37, 0.03],
            [0.45, 0.40, 0.08, 0.04, 0.03],
            [0.30, 0.65, 0.02, 0.01, 0.02],
        ]
    )


def _pay_mode() -> np.ndarray:
    """How a paying delinquent debtor pays, per type: all it can, one installment, a part."""
    return np.array(
        [
            [0.90, 0.07, 0.03],
            [0.50, 0.25, 0.25],
            [0.50, 0.25, 0.25],
            [0.50, 0.20, 0.30],
            [0.90, 0.05, 0.05],
            [0.50, 0.25, 0.25],
            [0.00, 1.00, 0.00],
            [0.30, 0.30, 0.40],
        ]
    )


def _product_table() -> dict[str, tuple[float, float, float, tuple[int, ...], float]]:
    """Products: share, median principal (USD), sigma of log principal, terms (months), APR."""
    return {
        "credit_card": (0.30, 5_000.0, 0.6, (1200,), 0.0),
        "personal_loan": (0.22, 10_000.0, 0.6, (12, 24, 36, 48, 60), 0.12),
        "microloan": (0.12, 600.0, 0.5, (3, 6, 9, 12), 0.36),
        "auto_loan": (0.12, 22_000.0, 0.4, (36, 48, 60, 72), 0.07),
        "mortgage": (0.06, 250_000.0, 0.5, (240, 300, 360), 0.05),
        "bnpl": (0.18, 300.0, 0.6, (3, 4, 6), 0.0),
    }


def _status_table() -> dict[str, tuple[float, float, int]]:
    """Special statuses: base rate per account, raised rate for one type, that type."""
    return {
        "deceased": (0.002, 0.002, GOOD),
        "bankruptcy": (0.005, 0.005, GOOD),
        "dispute_open": (0.006, 0.12, STUBBORN),
        "cease_communication": (0.004, 0.05, PROVOCATIVE),
        "do_not_contact": (0.010, 0.010, GOOD),
        "hardship": (0.022, 0.15, VICTIM),
    }


def _contact_means() -> dict[str, tuple[float, ...]]:
    """Mean outbound attempts per delinquent account-month, by DPD bucket at the month start."""
    return {
        # channel:   1-29  30-59 60-89  90+
        "call": (3.0, 6.0, 8.0, 5.0),
        "sms": (2.0, 2.0, 1.5, 1.0),
        "email": (0.5, 1.0, 1.0, 0.5),
        "letter": (0.0, 0.5, 1.0, 1.5),
        "visit": (0.0, 0.0, 0.05, 0.10),
        "app_push": (1.0, 0.5, 0.3, 0.2),
    }


@dataclass(frozen=True, eq=False)
class Parameters:
    """Every tunable rate of the simulation; the defaults are the documented portfolio.

    Add a scenario's knobs here (with a default that keeps today's behaviour)
    so that one object describes a simulated world.
    """

    type_table: dict[str, tuple[float, ...]] = field(default_factory=_type_table)
    rpc_mix: np.ndarray = field(default_factory=_rpc_mix)
    pay_mode: np.ndarray = field(default_factory=_pay_mode)
    product_table: dict = field(default_factory=_product_table)
    status_table: dict[str, tuple[float, float, int]] = field(default_factory=_status_table)
    contact_means: dict[str, tuple[float, ...]] = field(default_factory=_contact_means)
    #: Delinquent account-months left uncontacted (capacity), at random.
    no_contact_share: float = 0.08
    #: Organic payment propensity by DPD bucket (1-29, 30-59, 60-89, 90+).
    dpd_factor: tuple[float, ...] = (1.2, 0.7, 0.45, 0.25)
    #: Capacity multiplier: no shock, job loss, illness.
    shock_mult: tuple[float, ...] = (1.0, 0.25, 0.50)
    #: Monthly chance a shock ends: none, job loss, illness.
    shock_recovery: tuple[float, ...] = (0.0, 0.20, 0.30)
    offer_boost_months: int = 3
    #: Beta concentration of the base willingness around the type's mean.
    w_concentration: float = 8.0
    #: A promise is kept with keep x (a + b willingness) x affordability.
    keep_w: tuple[float, float] = (0.3, 0.6)
    #: Share of debtors (not serial promisers) who promise only what they can pay.
    negotiate: float = 0.9
    #: A new promise in the month of a broken one: kept x this.
    again_keep: float = 0.25
    #: Promises made for the next payday (the 1st or the 15th).
    payday_share: float = 0.45
    #: Early collections start this many days after a missed due date.
    early_start_days: int = 3
    #: Monthly: a delinquent debtor changes number with P = this x (1 - willingness).
    skip_rate: float = 0.06
    #: Monthly: skip tracing finds a working number again.
    skip_traced: float = 0.10
    # ---- scenario knobs (the defaults keep the documented, stationary portfolio) ----
    #: Share of accounts opened during the window (the rest opened before it).
    opened_during_share: float = 0.2
    #: Accounts opened before the window opened within this many months before
    #: it (at most their term); a small value with ``opened_during_share`` 0
    #: makes a closed cohort, where every account ages with the calendar.
    opened_before_months: int = 36
    #: Debtor-type shares (DEBTOR_TYPES order) of the customers who join during the
    #: window; None: the same mix as the book (no shift in the mix over time).
    new_type_share: tuple[float, ...] | None = None
    #: Product shares (product_table order) of the accounts opened during the
    #: window; None: the same mix as the book.
    new_product_share: tuple[float, ...] | None = None
    #: Change of every debtor's willingness per simulated month (additive): a
    #: negative value makes the payment rate fall over the window.
    willingness_trend: float = 0.0
    #: A macro shock: (first month, number of months, capacity multiplier).
    macro_shock: tuple[int, int, float] = (0, 0, 1.0)
    #: Standard deviation of noise between the latent traits and behaviour:
    #: behaviour follows willingness + N(0, s) and capacity x exp(N(0, s)),
    #: while ``truth`` records the traits themselves.
    behaviour_noise: float = 0.0

    @property
    def shifts(self) -> bool:
        """Whether any scenario knob departs from the stationary portfolio."""
        return (
            self.new_type_share is not None
            or self.new_product_share is not None
            or self.willingness_trend != 0.0
            or self.macro_shock[1] > 0
            or self.behaviour_noise > 0.0
        )


def drift_parameters() -> Parameters:
    """Return the ``drift`` scenario: a book whose payment rate and mix change over time.

    * the payment rate falls: willingness drifts down 0.006 a month;
    * the mix shifts: 45% of accounts open during the window, and their
      customers include twice the share of the seven difficult debtor types
      (evasive, stubborn and serial promisers most);
    * new products: accounts opened in the window are mostly microloans and
      buy-now-pay-later;
    * a macro shock lowers every debtor's capacity to 60% for four months
      from month 13;
    * heavier noise between the latent traits and behaviour (0.12).

    Documented, with its measured rates, in ``docs/simulator.md``.
    """
    #                 good   prov   evas   vict   conf   stub   soph   seri
    new_types = (0.68, 0.04, 0.06, 0.05, 0.03, 0.05, 0.02, 0.07)
    #               card  personal micro auto  mortg bnpl
    new_products = (0.20, 0.15, 0.25, 0.05, 0.02, 0.33)
    return Parameters(
        opened_during_share=0.45,
        new_type_share=new_types,
        new_product_share=new_products,
        willingness_trend=-0.006,
        macro_shock=(13, 4, 0.6),
        behaviour_noise=0.12,
    )


#: Named scenarios of ``propensity simulate`` and ``propensity evaluate --scenario``.
SCENARIOS: dict[str, object] = {"base": Parameters, "drift": drift_parameters}
