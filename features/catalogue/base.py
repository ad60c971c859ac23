"""The feature spec shared by every group of the catalogue, and the feature groups.

A :class:`FeatureSpec` is one feature: its name, meaning, type, range,
reason text and the pure function of an
:class:`~features.context.AsOfContext` that computes it. Each group module
(:mod:`~features.catalogue.repayment`, :mod:`~features.catalogue.contact`,
:mod:`~features.catalogue.account`, :mod:`~features.catalogue.offer`) lists
its features with every name written out, so ``grep dpd_max_180d`` lands on
its definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import vocab
from features.context import AsOfContext
from features.prepare import prepare_tables

#: Feature groups: title in the catalogue, and the module that defines the group's features.
GROUPS: dict[str, str] = {
    "repayment": "Repayment history (installments and payments)",
    "contact": "Contact log",
    "account": "Account",
    "offer": "Offers (null when no offers table is given)",
}
#: Where each group's features are defined (the catalogue's "defined in" column).
GROUP_MODULES: dict[str, str] = {group: f"features/catalogue/{group}.py" for group in GROUPS}
#: Categorical features and their fixed category lists.
CATEGORICAL_FEATURES: dict[str, tuple[str, ...]] = {"product": vocab.PRODUCTS}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it means, its type and range, how to say it, how to compute it.

    Attributes
    ----------
    name : str
        Column name, ``measure_aggregation_window``.
    group : str
        One of :data:`GROUPS`.
    kind : str
        How a value reads: count, days, money, ratio, share, delta, flag, years, category.
    description : str
        One line for the catalogue.
    compute : callable
        ``compute(ctx) -> numpy.ndarray`` of one value per account.
    dtype : str
        ``int64``, ``float64`` or ``category``.
    nullable : bool
        Whether the value may be missing.
    minimum, maximum : float or None
        The range the schema checks.
    reason : str
        Reason text with ``{v}`` for the formatted value.
    reason_one, reason_zero, reason_null : str or None
        Texts used instead of ``reason`` when the value is 1, 0 or missing.
    """

    name: str
    group: str
    kind: str
    description: str
    compute: Callable[[AsOfContext], np.ndarray]
    dtype: str = "float64"
    nullable: bool = False
    minimum: float | None = 0.0
    maximum: float | None = None
    reason: str = ""
    reason_one: str | None = None
    reason_zero: str | None = None
    reason_null: str | None = None

    def __call__(
        self,
        tables: dict[str, pd.DataFrame] | AsOfContext,
        as_of: object = None,
        materiality: float = vocab.DEFAULT_MATERIALITY,
    ) -> pd.Series:
        """Compute this feature for every account as of D, as a Series indexed by account_id.

        Parameters
        ----------
        tables : dict of DataFrame or AsOfContext
            The contract's tables, or a context already built for D.
        as_of : date-like
            The as-of date D (ignored when a context is given).
        materiality : float
            Arrears at or below this amount count as current.
        """
        if isinstance(tables, AsOfContext):
            ctx = tables
        else:
            ctx = AsOfContext(prepare_tables(tables), as_of, materiality)
        values = self.compute(ctx)
        if self.dtype == "category":
            values = pd.Categorical.from_codes(values, categories=CATEGORICAL_FEATURES[self.name])
        return ctx.series(values, self.name)


def _counted(singular: str, plural: str, tail: str) -> dict[str, str]:
    """Reason texts of a count: none, one, many."""
    tail = f" {tail}" if tail else ""
    return {
        "reason_zero": f"no {singular}{tail}",
        "reason_one": f"1 {singular}{tail}",
        "reason": f"{{v}} {plural}{tail}",
    }


def count_spec(name, group, description, compute, singular, plural, tail, **kw) -> FeatureSpec:
    """Return the spec of a count feature, its reason texts built from ``singular``/``plural``/``tail``."""
    return FeatureSpec(
        name=name,
        group=group,
        kind="count",
        description=description,
        compute=compute,
        dtype=kw.pop("dtype", "int64"),
        **_counted(singular, plural, tail),
        **kw,
    )
