"""Ids the partition proves clean: a shard task does not decode them, and nothing else changes.

The partition records per table whether its ids are non-null and unique over
the book (``ids_clean`` in ``shards.json``); a shard task then leaves those
columns (and ``contacts.agent_id`` stored as text) undecoded. Rejects, their
order and keys, the clean tables' other columns and the counts must be those
of the task that reads everything.
"""

from __future__ import annotations

import json

import factories as f
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline import partition_ids
from pipeline.cli import app
from pipeline.engine import layout_facts
from pipeline.io import read_tables, write_parquet
from pipeline.partition import partition_data
from pipeline.partition_ids import id_facts
from pipeline.shard_tasks import _unread_columns, _validate_shard, still_proven
from pipeline.shards import shard_dirs
from pipeline.validation import validate_tables

runner = CliRunner()
ALL_CLEAN = {"payments": True, "contacts": True, "offers": True}


def _reject_keys(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["table", "key", "column", "check"]
    return df.astype({"key": str}).sort_values(keys, kind="stable", ignore_index=True)


def _tables() -> dict[str, pd.DataFrame]:
    """The factory tables with six accounts, so that two shards each hold some of every table."""
    t = f.tables()
    t["accounts"] = f.accounts(6)
    t["installments"] = f.installments([f"A{i}" for i in range(1, 7)])
    pay = pd.concat([t["payments"]] * 2, ignore_index=True)
    pay["payment_id"] = [f"P{i}" for i in range(len(pay))]
    pay["account_id"] = ["A1", "A2", "A3", "A4", "A5", "A6"]
    t["payments"] = pay
    con = pd.concat([t["contacts"]] * 2, ignore_index=True)
    con["contact_id"] = [f"K{i}" for i in range(len(con))]
    con["account_id"] = ["A1", "A2", "A3", "A4", "A5", "A6"]
    t["contacts"] = con
    return t


def _corrupted() -> dict[str, pd.DataFrame]:
    """Rows failing rules other than the id rules, in every table with an id."""
    t = _tables()
    t["payments"].loc[2, "amount"] = -1.0
    t["contacts"].loc[1, "direction"] = "sideways"
    t["contacts"].loc[4, "outcome"] = "promise_to_pay"  # without amount or date: a row rule
    t["contacts"].loc[5, "account_id"] = "NOT-AN-ACCOUNT"  # an orphan
    t["offers"].loc[0, "discount_pct"] = 10.0  # a discount on a plan: a row rule
    return t


def _write(tables: dict[str, pd.DataFrame], folder) -> None:
    for name, df in tables.items():
        write_parquet(df, folder / f"{name}.parquet")


def _same_as_reading_everything(parts, layout, work, keep_categories: bool) -> int:
    """Each shard's task with the layout's proof equals the one without; return its left-out rejects."""
    params = {"duplicates": layout["cross_shard_duplicates"]}
    proven = {**params, **layout_facts(layout)}
    keyed, left_out = 0, set()
    for k, folder in enumerate(shard_dirs(parts)):
        full, ids_full = _validate_shard(folder, k, work / "full", params, keep_categories)
        fast, ids_fast = _validate_shard(folder, k, work / "fast", proven, keep_categories)
        pd.testing.assert_frame_equal(full.rejects, fast.rejects)
        pd.testing.assert_series_equal(ids_full, ids_fast)
        assert full.rows_read == fast.rows_read
        assert full.input_accounts == fast.input_accounts
        assert list(full.rejected_accounts) == list(fast.rejected_accounts)
        assert full.files == fast.files
        for table, df in full.tables.items():
            gone = set(df.columns) - set(fast.tables[table].columns)
            assert gone <= set(_unread_columns(proven).get(table, ()))
            left_out |= {f"{table}.{c}" for c in gone}
            pd.testing.assert_frame_equal(df.drop(columns=list(gone)), fast.tables[table])
        keyed += int(fast.rejects["table"].isin(["payments", "contacts", "offers"]).sum())
    keys = {"payments": "payment_id", "contacts": "contact_id", "offers": "offer_id"}
    used = {f"{t}.{keys[t]}" for t, ok in layout["ids_clean"].items() if ok and t != "offers"}
    assert used and used <= left_out  # the proof was used (offers' ids are not stored as text)
    return keyed


@pytest.mark.parametrize("keep_categories", [True, False])
def test_proven_ids_are_not_read_and_rejects_keep_their_keys(tmp_path, keep_categories):
    _write(_corrupted(), tmp_path / "data")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", 2)
    assert layout["ids_clean"] == ALL_CLEAN
    assert json.loads((tmp_path / "parts" / "shards.json").read_text())["ids_clean"] == ALL_CLEAN
    raw = read_tables(
        shard_dirs(tmp_path / "parts")[0], True, False, _unread_columns({"ids_clean": ALL_CLEAN})
    )
    assert "contact_id" not in raw.tables["contacts"].columns
    assert raw.left_out["contacts"] == {"contact_id": "contact_id", "agent_id": "agent_id"}
    assert raw.left_out["payments"] == {"payment_id": "payment_id"}
    # Every rejected row of payments, contacts and offers names its id, read lazily.
    keyed = _same_as_reading_everything(tmp_path / "parts", layout, tmp_path, keep_categories)
    assert keyed == 5


def test_sharded_validate_on_a_proven_layout_rejects_as_unsharded(tmp_path):
    _write(_corrupted(), tmp_path / "data")
    partition_data(tmp_path / "data", tmp_path / "parts", 2)
    plain = validate_tables(read_tables(tmp_path / "data")).rejects
    result = runner.invoke(
        app, ["validate", "--data", str(tmp_path / "parts"), "--rejects", str(tmp_path / "r")]
    )
    assert result.exit_code == 1, result.output
    sharded = pd.read_parquet(tmp_path / "r")
    assert set(sharded["key"]) >= {"P2", "K1", "K4", "K5", "O1"}
    pd.testing.assert_frame_equal(_reject_keys(plain), _reject_keys(sharded))


def test_a_shard_file_changed_after_the_partition_has_its_ids_checked_again(tmp_path):
    """The proof holds for the files the partition wrote: a file edited since is read in full."""
    _write(_tables(), tmp_path / "data")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", 2)
    assert layout["ids_clean"] == ALL_CLEAN
    folder = next(d for d in shard_dirs(tmp_path / "parts") if (d / "contacts.parquet").is_file())
    k = shard_dirs(tmp_path / "parts").index(folder)
    contacts = pd.read_parquet(folder / "contacts.parquet")
    edited = pd.concat([contacts, contacts.iloc[[0]]], ignore_index=True)  # a repeated id
    write_parquet(edited, folder / "contacts.parquet")
    params = {"duplicates": {}, **layout_facts(layout)}
    assert still_proven(params, folder, k)["ids_clean"] == {
        t: True for t in ALL_CLEAN if t != "contacts"
    }
    validation, _ = _validate_shard(folder, k, tmp_path / "work", params)
    rejects = validation.rejects
    repeated = rejects[(rejects["table"] == "contacts") & (rejects["column"] == "contact_id")]
    assert set(repeated["key"]) == {contacts["contact_id"].iloc[0]}
    assert set(repeated["check"]) == {"field_uniqueness"}


def test_an_unreadable_id_column_read_for_a_reject_is_a_data_read_error(tmp_path, monkeypatch):
    """A proven id column read only for a reject's key fails as an unreadable table, not a traceback."""
    import pyarrow as pa

    from pipeline import validation
    from pipeline.io import DataReadError

    _write(_corrupted(), tmp_path / "data")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", 2)

    def unreadable(path, name, rows):
        raise pa.ArrowInvalid("Corrupt snappy compressed data.\nmore detail")

    monkeypatch.setattr(validation, "read_rows", unreadable)
    params = {"duplicates": {}, **layout_facts(layout)}
    with pytest.raises(
        DataReadError, match=r"cannot read table '\w+': Corrupt snappy compressed data\.$"
    ):
        for k, folder in enumerate(shard_dirs(tmp_path / "parts")):
            _validate_shard(folder, k, tmp_path / "work", params)


def _repeat_contact(t: dict[str, pd.DataFrame]) -> None:
    """Contact K0 twice, both of account A1: a repeat within one shard."""
    t["contacts"] = pd.concat([t["contacts"], t["contacts"].iloc[[0]]], ignore_index=True)


def _null_payment_id(t: dict[str, pd.DataFrame]) -> None:
    t["payments"].loc[3, "payment_id"] = None


# pandera's report of a lone null failure case concatenates an all-null frame.
@pytest.mark.filterwarnings("ignore:The behavior of DataFrame concatenation:FutureWarning")
@pytest.mark.parametrize(
    ("table", "defect", "check"),
    [
        ("contacts", _repeat_contact, "field_uniqueness"),
        ("payments", _null_payment_id, "not_nullable"),
    ],
)
def test_ids_repeated_or_null_within_a_shard_are_not_proven(tmp_path, table, defect, check):
    t = _corrupted()
    defect(t)
    _write(t, tmp_path / "data")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", 2)
    assert layout["ids_clean"] == {**ALL_CLEAN, table: False}
    assert layout["cross_shard_duplicates"] == {}
    assert _same_as_reading_everything(tmp_path / "parts", layout, tmp_path, True) > 5
    plain = validate_tables(read_tables(tmp_path / "data")).rejects
    assert check in set(plain.loc[plain["table"].eq(table), "check"])
    args = ["validate", "--data", str(tmp_path / "parts"), "--rejects", str(tmp_path / "r")]
    assert runner.invoke(app, args).exit_code == 1
    pd.testing.assert_frame_equal(
        _reject_keys(plain), _reject_keys(pd.read_parquet(tmp_path / "r"))
    )


def test_a_shard_lacking_a_proven_id_column_fails_as_before(tmp_path):
    _write(_tables(), tmp_path / "data")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", 2)
    assert layout["ids_clean"] == ALL_CLEAN
    path = shard_dirs(tmp_path / "parts")[1] / "contacts.parquet"
    write_parquet(pd.read_parquet(path).drop(columns=["contact_id"]), path)
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "parts")])
    assert result.exit_code == 2
    assert f"{path}: table 'contacts' lacks required column(s) contact_id;" in result.output


def test_agent_id_is_left_out_only_when_stored_as_text(tmp_path):
    t = _tables()
    _write(t, tmp_path / "text")
    t["contacts"]["agent_id"] = pd.array([7, None, 9, 7, None, 9], dtype="Int64")
    _write(t, tmp_path / "numbers")
    skip = {"contacts": frozenset({"agent_id"})}
    assert read_tables(tmp_path / "text", True, skip=skip).left_out == {
        "contacts": {"agent_id": "agent_id"}
    }
    numbers = read_tables(tmp_path / "numbers", True, skip=skip)
    assert numbers.left_out == {}
    assert numbers.tables["contacts"]["agent_id"].tolist() == ["7", None, "9", "7", None, "9"]


def test_unread_columns_follow_the_proof_and_the_schema():
    assert _unread_columns({}) == {
        "payments": frozenset(),
        "contacts": frozenset({"agent_id"}),
        "offers": frozenset(),
    }
    proven = {"ids_clean": ALL_CLEAN, "duplicates": {"contacts": ["K1"]}}
    assert _unread_columns(proven) == {
        "payments": frozenset({"payment_id"}),
        "contacts": frozenset({"agent_id"}),
        "offers": frozenset({"offer_id"}),
    }


def _brute(shards: list[list[str | None]]) -> tuple[list[str], bool]:
    """The ids in more than one shard, and whether every id is non-null and unique (by text)."""
    where: dict[str, set[int]] = {}
    for k, ids in enumerate(shards):
        for v in ids:
            if v is not None:
                where.setdefault(v, set()).add(k)
    flat = [v for ids in shards for v in ids]
    clean = None not in flat and len(set(flat)) == len(flat)
    return sorted(v for v, ks in where.items() if len(ks) > 1), clean


_ids = st.lists(
    st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])), max_size=6
)


@settings(max_examples=150, deadline=None)
@given(shards=st.lists(_ids, min_size=1, max_size=4), modulus=st.sampled_from([0, 2, 3]))
def test_id_facts_equal_a_comparison_of_the_texts_whatever_the_hash(shards, modulus):
    arrays = [np.array(ids, dtype=object) for ids in shards]
    with pytest.MonkeyPatch.context() as mp:
        if modulus:  # a weak hash: many collisions, which must change nothing
            real = partition_ids._id_hashes
            mp.setattr(partition_ids, "_id_hashes", lambda v: real(v) % np.uint64(modulus))
        got = id_facts(lambda k: arrays[k], len(arrays))
    assert got == _brute(shards)


@pytest.mark.parametrize(
    ("offer_id", "text"),
    [(b"O9", "b'O9'"), (b"\xff\xfe", "b'\\xff\\xfe'"), (123456789012.0, "123456789012")],
)
def test_ids_not_stored_as_text_are_partitioned_and_checked_as_the_reader_reads_them(
    tmp_path, offer_id, text
):
    """The partition records an id repeated across shards as the reader's text of it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = _tables()
    _write(t, tmp_path / "data")
    offers = pa.Table.from_pandas(t["offers"], preserve_index=False)
    ids = pa.array([offer_id, offer_id])  # the same id for A1 and A3
    offers = offers.set_column(offers.schema.get_field_index("offer_id"), "offer_id", ids)
    pq.write_table(offers, tmp_path / "data" / "offers.parquet")
    result = runner.invoke(app, ["partition", "--data", str(tmp_path / "data"),
                                 "--out", str(tmp_path / "parts"), "--shards", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    layout = json.loads((tmp_path / "parts" / "shards.json").read_text())
    assert layout["ids_clean"]["offers"] is False  # not stored as text
    assert layout["cross_shard_duplicates"] == {"offers": [text]}  # A1 and A3 apart
    plain = validate_tables(read_tables(tmp_path / "data")).rejects
    assert set(plain.loc[plain["table"].eq("offers"), "check"]) == {"field_uniqueness"}
    args = ["validate", "--data", str(tmp_path / "parts"), "--rejects", str(tmp_path / "r")]
    assert runner.invoke(app, args).exit_code == 1
    pd.testing.assert_frame_equal(
        _reject_keys(plain), _reject_keys(pd.read_parquet(tmp_path / "r"))
    )


def test_accounts_stored_as_numbers_meet_their_rows_in_one_shard(tmp_path):
    """Ids stored as 1001.0 in accounts and 1001 in the other tables read as "1001" everywhere."""
    numbers = {a: float(1000 + i) for i, a in enumerate(_tables()["accounts"]["account_id"])}
    data = {}
    for name, df in _tables().items():
        df = df.copy()
        df["account_id"] = df["account_id"].map(numbers)
        if name != "accounts":
            df["account_id"] = df["account_id"].astype("int64")
        data[name] = df
    _write(data, tmp_path / "data")
    assert validate_tables(read_tables(tmp_path / "data")).rejects.empty
    partition_data(tmp_path / "data", tmp_path / "parts", 3)
    placed = 0
    for folder in shard_dirs(tmp_path / "parts"):
        tables = read_tables(folder).tables
        for name in ("installments", "payments", "contacts", "offers"):
            if name in tables:
                assert set(tables[name]["account_id"]) <= set(tables["accounts"]["account_id"])
                placed += len(tables[name])
    assert placed == sum(len(data[n]) for n in ("installments", "payments", "contacts", "offers"))
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "parts")])
    assert result.exit_code == 0, result.output
