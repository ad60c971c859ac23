"""Schemas of the feature table, the labels and the training set.

The key columns are :class:`pandera.pandas.DataFrameModel` classes; the
feature columns are added from the catalogue (:mod:`features.catalogue`), so
the schema, the column order and the documentation cannot drift apart: each
feature's dtype, nullability and range are declared once, in its
:class:`~features.catalogue.FeatureSpec`.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features.catalogue import CATEGORICAL_FEATURES, FEATURE_COLUMNS, FEATURES

#: Label columns produced by :func:`features.labels.build_labels`.
LABEL_COLUMNS: tuple[str, ...] = ("paid_any", "coverage", "paid_amount", "horizon_end")


class FeatureKeys(pa.DataFrameModel):
    """Key of the feature table: one row per (account, as-of date)."""

    account_id: Series[str] = pa.Field(nullable=False)
    as_of_date: Series[pa.DateTime] = pa.Field(nullable=False)

    class Config:
        unique = ["account_id", "as_of_date"]
        coerce = False


class LabelsModel(pa.DataFrameModel):
    """Labels of a snapshot over the horizon ``[D, D + H days)``."""

    account_id: Series[str] = pa.Field(nullable=False)
    as_of_date: Series[pa.DateTime] = pa.Field(nullable=False)
    paid_any: Series[np.int64] = pa.Field(isin=[0, 1])
    coverage: Series[float] = pa.Field(ge=0, le=1, nullable=False)
    paid_amount: Series[float] = pa.Field(ge=0, nullable=False)
    horizon_end: Series[pa.DateTime] = pa.Field(nullable=False)

    @pa.dataframe_check(name="paid_any_iff_paid_amount")
    def _paid_any_consistent(cls, df: pd.DataFrame) -> Series[bool]:
        """paid_any is 1 exactly when something was paid in the horizon."""
        return df["paid_any"].eq(1) == df["paid_amount"].gt(0)

    class Config:
        strict = True
        coerce = False
        unique = ["account_id", "as_of_date"]


def _feature_column(name: str) -> pa.Column:
    spec = FEATURES[name]
    checks = []
    if spec.dtype == "category":
        dtype = pd.CategoricalDtype(CATEGORICAL_FEATURES[name], ordered=False)
    else:
        dtype = spec.dtype
        if spec.minimum is not None:
            checks.append(pa.Check.ge(spec.minimum))
        if spec.maximum is not None:
            checks.append(pa.Check.le(spec.maximum))
    return pa.Column(dtype, checks=checks, nullable=spec.nullable, description=spec.description)


def _schema(
    name: str, extra: dict[str, pa.Column] | None = None, checks: list | None = None
) -> pa.DataFrameSchema:
    columns = dict(FeatureKeys.to_schema().columns)
    columns.update({col: _feature_column(col) for col in FEATURE_COLUMNS})
    columns.update(extra or {})
    return pa.DataFrameSchema(
        columns,
        checks=checks,
        unique=["account_id", "as_of_date"],
        strict=True,
        ordered=True,
        name=name,
    )


@cache
def feature_schema() -> pa.DataFrameSchema:
    """Return the schema of the feature table: keys, then the catalogue's columns in order.

    Strict and ordered: a missing, extra or misplaced column fails; (account_id,
    as_of_date) is unique; each feature has its dtype, nullability and range.

    Examples
    --------
    >>> list(feature_schema().columns)[:4]
    ['account_id', 'as_of_date', 'arrears', 'dpd']
    """
    return _schema("features")


@cache
def training_set_schema() -> pa.DataFrameSchema:
    """Return the schema of the training set: the feature table followed by the label columns."""
    labels = LabelsModel.to_schema()
    return _schema(
        "training_set",
        {name: labels.columns[name] for name in LABEL_COLUMNS},
        checks=labels.checks,  # the label rules that span columns (paid_any vs paid_amount)
    )


def validate_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a feature table (lazily: every failure is reported at once).

    In place: the schema coerces nothing, so the table is checked without a copy
    and returned unchanged.
    """
    return feature_schema().validate(frame, lazy=True, inplace=True)


def validate_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a labels table."""
    return LabelsModel.validate(frame, lazy=True)


def validate_training_set(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a training set: features, labels and the label consistency rule (in place, no copy)."""
    return training_set_schema().validate(frame, lazy=True, inplace=True)
