"""Validate the input tables against the contract and turn every failure into a reject.

Validation is lazy (every rule on every row, not the first failure) and loses
nothing: each failing row is listed in the rejects table with its table, key,
account, column, rule and value; an account any of whose rows fails is
rejected whole (removed from every table), so no score is ever computed from
partial data; a row whose ``account_id`` is not in accounts is an orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from features import vocab
from pipeline.contract_columns import as_object
from pipeline.io import UNREADABLE, DataReadError, ParseFailure, RawTables
from pipeline.parquet_read import read_rows
from pipeline.text import printable

if TYPE_CHECKING:  # pandera and the rules load when a table is validated, not on import
    import pandera.pandas as pa

REJECT_COLUMNS: tuple[str, ...] = ("table", "key", "account_id", "column", "check", "value")

#: Columns that explain a row-level (dataframe) rule, shown together as its value.
_DATAFRAME_CHECK_COLUMNS: dict[str, tuple[str, ...]] = {
    "due_date_non_decreasing_with_installment_no": ("installment_no", "due_date"),
    "promise_fields_iff_promise_to_pay": ("outcome", "promised_amount", "promised_date"),
    "promised_date_on_or_after_contact": ("contact_at", "promised_date"),
    "discount_pct_for_settlement_only": ("offer_type", "discount_pct"),
    "n_installments_for_plans_only": ("offer_type", "n_installments"),
    "multiple_fields_uniqueness": ("account_id", "installment_no"),
}
ORPHAN_CHECK = "foreign_key_accounts"


@dataclass
class ValidationResult:
    """Clean tables, the rejects table and the counts a report or manifest needs."""

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    rows_read: dict[str, int]
    input_accounts: int
    rejected_accounts: pd.Index
    files: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return self.rejects.empty

    @property
    def rejected_share(self) -> float:
        """Share of input accounts rejected whole."""
        return len(self.rejected_accounts) / self.input_accounts if self.input_accounts else 0.0

    def summary(self) -> pd.DataFrame:
        """Return one row per failed rule: table, column, check, count, example keys and values."""
        return summarize_rejects(self.rejects)


def _row_keys(table: str, df: pd.DataFrame, index: pd.Index, raw: RawTables) -> pd.Series:
    """The key of each of the rows ``index`` (read from the file when left out on read)."""
    name = raw.left_out.get(table, {}).get(vocab.TABLE_KEYS[table])
    if name is not None:  # a shard's proven-clean ids: read now, for the rows with rejects
        path = raw.files[table]["path"]
        try:
            keys = read_rows(path, name, index.to_numpy())
        except UNREADABLE as exc:  # as read_tables reports it
            raise DataReadError.unreadable(path, table, exc) from exc
        return pd.Series(keys, index=index, dtype=object)
    rows = df.loc[index]
    if table == "installments":
        account = as_object(rows["account_id"])
        return account.astype(str) + "/" + rows["installment_no"].astype(str)
    return as_object(rows[vocab.TABLE_KEYS[table]]).astype(object)


def _render(values: pd.Series) -> pd.Series:
    def one(v: object) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or v is pd.NA:
            return "null"
        if isinstance(v, pd.Timestamp):
            if v.tzinfo is None and v == v.normalize():
                return v.date().isoformat()
            return v.isoformat()
        return str(v)

    return as_object(values).map(one)


def _check_name(check: object) -> str:
    """The name pandera gives a check in its failure cases."""
    if isinstance(check, str):
        return check
    return str(getattr(check, "error", None) or getattr(check, "name", None) or check)


def _row_rule_failures(err: pa.errors.SchemaErrors, n_rows: int) -> dict[str, np.ndarray]:
    """Return the failing rows of each row-level (dataframe) rule, from its full boolean output.

    pandera's failure cases of these rules are capped (see
    :data:`pipeline.contract.ROW_RULE_EXAMPLES`); the check output is not.
    """
    import pandera.pandas as pa

    rows: dict[str, np.ndarray] = {}
    for e in err.schema_errors:
        out = e.check_output
        if (
            isinstance(e.schema, pa.DataFrameSchema)
            and isinstance(out, pd.Series)
            and out.dtype == bool
            and len(out) == n_rows
        ):
            rows[_check_name(e.check)] = np.flatnonzero(~out.to_numpy())
    return rows


def _failures_to_rejects(
    table: str,
    df: pd.DataFrame,
    fc: pd.DataFrame,
    row_rules: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Map pandera failure cases of one table to contract reject rows.

    ``row_rules`` maps a row-level rule to all its failing rows (from
    :func:`_row_rule_failures`); rules not in it use the failure cases.
    """
    row_rules = row_rules or {}
    structural = fc[fc["index"].isna()]
    if not structural.empty:
        first = structural.iloc[0]
        raise DataReadError(
            f"table {table!r}: column {first['column']!r} fails {first['check']} "
            f"({first['failure_case']}); fix the export's column type"
        )
    fc = fc.copy()
    fc["index"] = fc["index"].astype("int64")
    out = []
    df_level = fc["schema_context"].eq("DataFrameSchema")
    # Column rules: one reject per failing cell.
    col_fc = fc[~df_level]
    if not col_fc.empty:
        out.append(
            pd.DataFrame(
                {
                    "row": col_fc["index"].to_numpy(),
                    "column": col_fc["column"].astype(str).to_numpy(),
                    "check": col_fc["check"].astype(str).to_numpy(),
                    "value": _render(col_fc["failure_case"]).to_numpy(),
                }
            )
        )
    # Row rules (several columns): one reject per failing row and rule.
    row_fc = fc[df_level].drop_duplicates(["index", "check"])
    for check, group in row_fc.groupby("check", sort=True):
        cols = _DATAFRAME_CHECK_COLUMNS.get(str(check), ())
        rows = row_rules.get(str(check), group["index"].to_numpy())
        if cols:
            parts = [col + "=" + _render(df[col].iloc[rows]).to_numpy() for col in cols]
            value = parts[0]
            for p in parts[1:]:
                value = value + ", " + p
            column = "+".join(cols)
        else:
            value = np.full(len(rows), "")
            column = ""
        out.append(
            pd.DataFrame({"row": rows, "column": column, "check": str(check), "value": value})
        )
    if not out:
        return pd.DataFrame(columns=["row", "column", "check", "value"])
    return pd.concat(out, ignore_index=True)


def _parse_failures_to_rejects(failures: list[ParseFailure], table: str) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "row": np.asarray(f.index, dtype="int64"),
                "column": f.column,
                "check": f.check,
                "value": _render(f.values).to_numpy(),
            }
        )
        for f in failures
        if f.table == table
    ]
    if not frames:
        return pd.DataFrame(columns=["row", "column", "check", "value"])
    return pd.concat(frames, ignore_index=True)


def _take_rows(df: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """Return the rows of ``df`` where ``keep`` is True, with a fresh RangeIndex.

    Column by column with the boolean mask: unlike ``df[keep].reset_index(drop=True)``
    it builds no row-number array and copies each column once.
    """
    columns = {}
    for name in df.columns:
        col = df[name]
        # numpy columns as ndarrays: pandas would scan a wrapped object array for nulls.
        values = (
            col.array if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col.to_numpy()
        )
        columns[name] = values[keep]
    return pd.DataFrame(columns, index=pd.RangeIndex(int(keep.sum())), copy=False)


def _objects(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with its categorical and arrow-string columns as ``object`` (or ``df``)."""
    cats = [c for c in df.columns if isinstance(df[c].dtype, (pd.CategoricalDtype, pd.StringDtype))]
    if not cats:
        return df
    columns = {c: as_object(df[c]) if c in cats else df[c] for c in df.columns}
    return pd.DataFrame(columns, index=df.index, copy=False)


def _shorten_check(check: str) -> str:
    if check.startswith("isin("):
        return "isin(contract list)"
    return check if len(check) <= 80 else check[:77] + "..."


def _account_index(ids: pd.Series) -> pd.Index:
    """Return the distinct non-null account ids in order of first appearance.

    The usual accounts table has no null and no repeated id: its ids are the
    index as they are, and the hash table that tells so is the one the
    foreign key looks the other tables' ids up in (built once, not twice).

    Examples
    --------
    >>> _account_index(pd.Series(["A2", None, "A1", "A2"], dtype=object)).tolist()
    ['A2', 'A1']
    """
    index = pd.Index(ids)
    if ids.dtype == object and index.is_unique and not index.hasnans:
        return index
    return pd.Index(ids.dropna().unique())


def validate_tables(raw: RawTables, keep_categories: bool = False) -> ValidationResult:
    """Validate every table lazily and split rows into clean tables and rejects.

    Parameters
    ----------
    raw : RawTables
        Output of :func:`pipeline.io.read_tables` (or built in memory).
        Text columns may be ``object`` or categoricals of strings: the rules,
        and so the rejects, are the same.
    keep_categories : bool
        Leave categorical (and arrow-string) text columns as they are in the
        clean tables (the feature code reads only their codes); by default
        they are turned back into ``object`` columns, the contract's
        canonical dtype.

    Returns
    -------
    ValidationResult
        Clean tables with rejected accounts removed whole and orphans dropped,
        and the rejects table (columns :data:`REJECT_COLUMNS`).

    Notes
    -----
    ``raw.tables`` is updated in place: afterwards each entry is the clean table
    (the same object as in the result), so that the raw copy of a table with
    rejected rows can be freed. Read what you need from ``raw`` before, as the
    scorer does.
    """
    import pandera.pandas as pa

    from pipeline.contract import table_schema

    tables = raw.tables
    accounts = tables["accounts"]
    rows_read = {t: len(df) for t, df in tables.items()}
    account_index = _account_index(accounts["account_id"])
    per_table: dict[str, pd.DataFrame] = {}
    for table, df in tables.items():
        if not df.index.equals(pd.RangeIndex(len(df))):
            df = df.reset_index(drop=True)
            tables[table] = df
        # Columns the read left out hold their rules (see pipeline.io.read_tables's skip).
        without = tuple(raw.left_out.get(table, ()))
        schema = table_schema(table, account_index if table != "accounts" else None, without)
        parts = [_parse_failures_to_rejects(raw.parse_failures, table)]
        try:
            # coerce=False and no parsers: validation reads the frame and never
            # writes it, so pandera's defensive copy is not needed.
            schema.validate(df, lazy=True, inplace=True)
        except pa.errors.SchemaErrors as err:
            row_rules = _row_rule_failures(err, len(df))
            parts.append(_failures_to_rejects(table, df, err.failure_cases, row_rules))
        finally:
            # pandera caches its accessor on the frame, and the accessor points back at
            # the frame: a cycle that would keep a replaced table in memory until the
            # next garbage collection.
            vars(df).pop("pandera", None)
        rej = pd.concat([p for p in parts if not p.empty] or [parts[0]], ignore_index=True)
        if rej.empty:
            continue
        # A cell that failed to parse is null afterwards: keep its parse failure only.
        rej = rej.drop_duplicates(["row", "column"], keep="first")
        rej = rej.sort_values(["row", "column", "check"], kind="stable")
        rows = rej["row"].to_numpy()
        rej = rej.assign(
            table=table,
            key=_row_keys(table, df, pd.Index(rows), raw).to_numpy(),
            account_id=as_object(df["account_id"]).to_numpy()[rows],
        )
        rej["check"] = rej["check"].map(_shorten_check)
        per_table[table] = rej
    if per_table:
        all_rej = pd.concat(per_table.values(), ignore_index=True)
    else:
        all_rej = pd.DataFrame(columns=[*REJECT_COLUMNS, "row"])
    is_orphan = all_rej["check"].eq(ORPHAN_CHECK)
    rejected = pd.Index(all_rej.loc[~is_orphan, "account_id"].dropna().unique())
    rejected = rejected.intersection(account_index)
    clean: dict[str, pd.DataFrame] = {}
    for table in list(tables):
        df = tables[table]
        keep = np.ones(len(df), dtype=bool)
        if not rejected.empty:
            keep &= ~df["account_id"].isin(rejected).to_numpy()
        if table in per_table:
            keep[per_table[table]["row"].to_numpy()] = False
        if not keep.all():
            df = _take_rows(df, keep)
            # Hand the clean table back in place of the raw one, so that the raw
            # frame can be freed and a portfolio is held in memory only once.
            tables[table] = df
        if not keep_categories:
            df = _objects(df)
            tables[table] = df
        clean[table] = df
    rejects = all_rej[list(REJECT_COLUMNS)].astype(
        {"table": str, "column": str, "check": str, "value": str}
    )
    rejects["key"] = rejects["key"].astype(object)
    rejects = rejects.reset_index(drop=True)
    return ValidationResult(
        tables=clean,
        rejects=rejects,
        rows_read=rows_read,
        input_accounts=len(account_index),
        rejected_accounts=rejected,
        files=raw.files,
    )


def summarize_rejects(rejects: pd.DataFrame, n_examples: int = 5) -> pd.DataFrame:
    """Return one row per (table, column, check): count and up to ``n_examples`` examples.

    Examples
    --------
    >>> r = pd.DataFrame({"table": ["payments"] * 2, "key": ["P1", "P2"],
    ...                   "account_id": ["A1", "A2"], "column": ["amount"] * 2,
    ...                   "check": ["greater_than(0)"] * 2, "value": ["-1.0", "0.0"]})
    >>> summarize_rejects(r).loc[0, "examples"]
    'P1 (-1.0), P2 (0.0)'
    """
    cols = ["table", "column", "check", "count", "examples"]
    if rejects.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (table, column, check), g in rejects.groupby(["table", "column", "check"], sort=True):
        head = g.head(n_examples)
        examples = ", ".join(f"{k} ({v})" for k, v in zip(head["key"], head["value"], strict=True))
        rows.append((table, column, check, len(g), examples))
    return pd.DataFrame(rows, columns=cols).sort_values(
        ["table", "count"], ascending=[True, False], kind="stable", ignore_index=True
    )


def format_report(result: ValidationResult) -> str:
    """Render a validation result as the readable report ``propensity validate`` prints."""
    lines = ["rows read:"]
    for table in vocab.TABLES:
        if table in result.rows_read:
            lines.append(f"  {table:<13} {result.rows_read[table]:>12,}")
        else:
            lines.append(f"  {table:<13} {'(absent)':>12}")
    if result.ok:
        lines.append("all rows valid")
        return "\n".join(lines)
    summary = result.summary()
    n_orphans = int(result.rejects["check"].eq(ORPHAN_CHECK).sum())
    lines.append(
        f"{len(result.rejects):,} failing rows; {len(result.rejected_accounts):,} of "
        f"{result.input_accounts:,} accounts rejected whole "
        f"({result.rejected_share:.2%}); {n_orphans:,} orphan rows"
    )
    lines.append("failed rules:")
    for row in summary.itertuples(index=False):
        lines.append(
            printable(
                f"  {row.table}.{row.column}: {row.check}: {row.count:,} rows, e.g. {row.examples}"
            )
        )
    return "\n".join(lines)
