"""Simulate a loan-collections portfolio whose debtors have known ability and willingness.

Real collections data is private, so the project ships this simulator: it
writes the five input tables of the data contract (accounts, installments,
payments, contacts, offers) plus a ``truth`` table that holds, per account and
month, the debtor's latent type, ability (share of the amount due the debtor
could pay) and willingness. The tests, the demo and the benchmarks run on it,
and because it knows the truth it can measure how well the two model heads
recover ability and willingness.

Modules: :mod:`~pipeline.simulator.parameters` (the rates of the simulated
world), :mod:`~pipeline.simulator.engine` (set-up and the monthly loop),
:mod:`~pipeline.simulator.conduct` (what debtors and collectors do in a month),
:mod:`~pipeline.simulator.tables` (the output tables and writing them) and
:mod:`~pipeline.simulator.rates` (headline rates measured from the tables).
Every rate and mechanism is documented in ``docs/simulator.md``.
"""

from pipeline.simulator.engine import simulate_portfolio
from pipeline.simulator.parameters import DEBTOR_TYPES, TIMEZONES, Parameters
from pipeline.simulator.rates import portfolio_rates, promise_kept
from pipeline.simulator.tables import Portfolio, write_portfolio

__all__ = [
    "DEBTOR_TYPES",
    "TIMEZONES",
    "Parameters",
    "Portfolio",
    "portfolio_rates",
    "promise_kept",
    "simulate_portfolio",
    "write_portfolio",
]
