"""The driver runs shards beside its workers: results in order, every call once, errors raised."""

from __future__ import annotations

import contextlib
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.shard_pool import run_calls


def _slow_pid(i: int) -> tuple[int, int]:
    time.sleep(0.25)
    return i, os.getpid()


def test_this_process_and_a_worker_share_the_calls_and_results_come_back_in_order():
    handed: list[tuple[int, int]] = []
    results = run_calls(_slow_pid, [(i,) for i in range(8)], workers=2, on_result=handed.append)
    assert [i for i, _ in results] == list(range(8))
    assert handed == results  # on_result saw every result once, in call order
    pids = {pid for _, pid in results}
    assert os.getpid() in pids  # the driver ran some calls itself
    assert len(pids) == 2  # and one spawned worker the others


def test_one_worker_runs_every_call_here():
    results = run_calls(_slow_pid, [(i,) for i in range(3)], workers=1)
    assert results == [(i, os.getpid()) for i in range(3)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_call_raises_its_error(workers):
    calls = [(6, 3), (1, 0), (8, 2), (9, 3)]
    with pytest.raises(ZeroDivisionError):
        run_calls(operator.truediv, calls, workers=workers)
    assert run_calls(operator.truediv, [(6, 3), (8, 2)], workers=workers) == [2.0, 4.0]


def test_parts_writer_appends_parts_in_order_and_skips_empty_ones(tmp_path):
    import pandas as pd

    from pipeline.shard_parts import PartsWriter, write_stream_part

    empty = pd.DataFrame(
        {"account_id": pd.Series([], dtype=object), "x": pd.Series([], dtype="f8")}
    )
    write_stream_part(empty, tmp_path, "features", 0)  # untyped text: must not set the schema
    write_stream_part(
        pd.DataFrame({"account_id": ["A2", "A3"], "x": [2.0, 3.0]}), tmp_path, "features", 1
    )
    write_stream_part(pd.DataFrame({"account_id": ["A5"], "x": [5.0]}), tmp_path, "features", 3)
    writer = PartsWriter(tmp_path, "features", tmp_path / "out.parquet")
    for k in range(4):  # shard 2 wrote no part
        writer({"shard": k})
    assert writer.close() == 3
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["account_id"].tolist() == ["A2", "A3", "A5"]
    assert out["x"].tolist() == [2.0, 3.0, 5.0]

    only_empty = PartsWriter(tmp_path, "features", tmp_path / "empty.parquet")
    only_empty({"shard": 0})
    assert only_empty.close() == 0
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == ["account_id", "x"]


def _mark(folder, i: int) -> int:
    time.sleep(0.2)
    (folder / f"call-{i}").touch()
    return i


def test_an_error_handing_back_a_result_stops_the_workers_taking_calls(tmp_path):
    def refuse(result: int) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_calls(_mark, [(tmp_path, i) for i in range(12)], workers=2, on_result=refuse)
    # the driver's first call and the worker's calls under way, not all twelve
    assert len(list(tmp_path.glob("call-*"))) < 12


def _long_in_driver(driver: int, marker: str) -> int:
    if os.getpid() == driver:
        time.sleep(30)
    else:
        Path(marker).touch()
    return 0


_CTRL_C_RUN = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
from pipeline.shard_pool import run_calls
from tests.pipeline.test_shard_pool import _long_in_driver
try:
    run_calls(_long_in_driver, [(os.getpid(), sys.argv[1])] * 2, workers=2)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_stops_the_run_and_no_idle_worker_prints_a_traceback(tmp_path):
    marker = tmp_path / "worker-call-done"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_RUN, str(marker)],
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # the worker is back waiting for a call; the driver still in its own
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "Traceback" not in out


def _partitioned(tmp_path, n_shards: int):
    import factories as f

    from pipeline.io import write_parquet
    from pipeline.partition import partition_data

    for name, df in f.tables().items():
        write_parquet(df, tmp_path / "data" / f"{name}.parquet")
    partition_data(tmp_path / "data", tmp_path / "parts", n_shards)
    return tmp_path / "parts"


def test_shard_layout_reads_the_layout_file_once(tmp_path, monkeypatch):
    from pipeline import shards
    from pipeline.engine import shard_layout

    parts = _partitioned(tmp_path, 3)
    reads: list[Path] = []
    real = shards.read_layout

    def counted(data_dir):
        reads.append(Path(data_dir))
        return real(data_dir)

    monkeypatch.setattr(shards, "read_layout", counted)
    with shard_layout(parts, None) as (dirs, layout):
        assert [d.name for d in dirs] == ["shard=00000", "shard=00001", "shard=00002"]
        assert layout["n_shards"] == 3
    assert reads == [parts]


def test_a_failing_close_does_not_hide_the_shard_error(tmp_path, monkeypatch):
    from pipeline import engine, shard_tasks
    from pipeline.shard_parts import PartsWriter

    parts = _partitioned(tmp_path, 2)
    real_task = shard_tasks.TASKS["features"]

    def second_shard_breaks(shard_dir, k, work, params):
        if k == 1:
            raise ValueError("shard 1 broke")
        return real_task(shard_dir, k, work, params)

    def close_fails(self):
        raise OSError("disk full writing the footer")

    monkeypatch.setitem(shard_tasks.TASKS, "features", second_shard_breaks)
    monkeypatch.setattr(PartsWriter, "close", close_fails)
    out = tmp_path / "out" / "features.parquet"
    with pytest.raises(ValueError, match="shard 1 broke"):
        engine.run_sharded_to_file("features", parts, out, {"as_of": "2025-06-30"}, workers=1)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # the work folder is gone too


def _note_pid(path: str) -> None:
    """A worker's warm-up call in these tests: leave its pid in a file."""
    Path(path).write_text(str(os.getpid()))


def _gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_worker_started_ahead_warms_up_then_runs_the_calls_and_ends_with_the_block(tmp_path):
    from pipeline.shard_pool import workers_kept, workers_started

    warm = tmp_path / "warm-pid"
    with workers_started(2, (__name__, "_note_pid", (str(warm),))):
        deadline = time.monotonic() + 60
        while not warm.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(warm.read_text())  # warmed up before any call was made
        assert worker != os.getpid()
        for kept in (True, False):  # two runs (value mode's steps) on the same worker
            with workers_kept() if kept else contextlib.nullcontext():
                results = run_calls(_slow_pid, [(i,) for i in range(6)], workers=2)
            assert [i for i, _ in results] == list(range(6))
            assert {pid for _, pid in results} == {os.getpid(), worker}
        assert _gone(worker)  # let go by the last run, before the block ends


def test_a_run_with_its_own_worker_ends_it(tmp_path):
    results = run_calls(_slow_pid, [(i,) for i in range(4)], workers=2)
    (worker,) = {pid for _, pid in results} - {os.getpid()}
    assert _gone(worker, seconds=0.5)  # ended with the run: run_calls waits for it


class _Context:
    """What workers_ahead needs of a command's context: the resources it enters."""

    def __init__(self) -> None:
        self.resources: list = []

    def with_resource(self, cm) -> None:
        cm.__enter__()
        self.resources.append(cm)


@pytest.mark.parametrize(
    ("shards", "workers", "engine", "started"),
    [(None, 2, "local", True), (3, 2, "local", True), (None, 1, "local", False),
     (None, 2, "spark", False)],
)  # fmt: skip
def test_workers_start_ahead_only_for_a_local_sharded_job(
    tmp_path, shards, workers, engine, started
):
    from pipeline.cli_common import workers_ahead
    from pipeline.shard_pool import _STARTED

    parts = _partitioned(tmp_path, 2)
    ctx = _Context()
    workers_ahead(ctx, "validate", parts, shards, workers, engine)
    try:
        assert bool(ctx.resources) == started == (1 in _STARTED)
    finally:
        for cm in ctx.resources:
            cm.__exit__(None, None, None)
    plain = _Context()
    workers_ahead(plain, "validate", tmp_path / "data", None, 2, "local")  # not partitioned
    assert plain.resources == [] and _STARTED == {}


def test_a_partitioned_folder_is_seen_before_pandas_is_imported(tmp_path):
    """The command's first check (is the folder a layout?) sees partition's layout, pandas unloaded."""
    parts = _partitioned(tmp_path, 2)
    check = (
        "import sys; from pipeline.cli_common import is_sharded; "
        "print(is_sharded(sys.argv[1], None, 'local'), is_sharded(sys.argv[2], None, 'local'), "
        "'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", check, str(parts), str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["True", "False", "False"]


_FIRST_SHARD = """
import sys, tempfile
from pipeline import shard_tasks
shard_tasks.warm_up(sys.argv[1])
before = set(sys.modules)
params = {"as_of": "2025-06-30", "from": "2025-01-31", "to": "2025-05-31", "horizon_days": 30,
          "data_end": "2025-06-30"}
shard_tasks.TASKS[sys.argv[1]](sys.argv[2], 0, tempfile.mkdtemp(), params)
print(sorted(m for m in set(sys.modules) - before
             if m.split(".")[0] in ("pipeline", "features", "models", "pandera", "lightgbm")))
"""


@pytest.mark.parametrize("task", ["features", "training_set"])
def test_after_the_warm_up_a_first_shard_imports_nothing_more(tmp_path, task):
    parts = _partitioned(tmp_path, 1)
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_SHARD, task, str(parts / "shard=00000")],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"


_CTRL_C_AT_START = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from pipeline.shard_pool import workers_started
try:
    with workers_started(2, ("tests.pipeline.test_shard_pool", "_note_pid", (sys.argv[1],))):
        os.killpg(0, signal.SIGINT)  # Ctrl-C while the worker is still starting up
        time.sleep(30)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_while_a_worker_starts_up_prints_no_traceback(tmp_path):
    marker = tmp_path / "warm-pid"
    proc = subprocess.run(
        [sys.executable, "-c", _CTRL_C_AT_START, str(marker)],
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert marker.exists()  # the worker lived through it and ended after its call


def _arrow_pool(driver: int, marker: str) -> str:
    """Arrow's pool here; in the driver, once a worker has told its own (so both answer)."""
    import pyarrow as pa

    name = pa.default_memory_pool().backend_name
    if os.getpid() != driver:
        Path(marker).write_text(name)
        return name
    deadline = time.monotonic() + 60
    while not Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"{name}+{Path(marker).read_text()}"


_POOLS = """
import os, sys
from pipeline.shard_pool import keep_freed_memory, run_calls
from tests.pipeline.test_shard_pool import _arrow_pool
keep_freed_memory()  # before pyarrow is imported, as a sharded command does
print(*run_calls(_arrow_pool, [(os.getpid(), sys.argv[1])] * 2, workers=2))
"""


@pytest.mark.parametrize(("env", "pool"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_a_sharded_process_and_its_workers_allocate_arrow_memory_with_malloc(tmp_path, env, pool):
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env is not None:  # an operator's own choice stands
        environ["ARROW_DEFAULT_MEMORY_POOL"] = env
    out = subprocess.run(
        [sys.executable, "-c", _POOLS, str(tmp_path / "worker-pool")],
        cwd=Path(__file__).resolve().parents[2],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(out) == [pool, f"{pool}+{pool}"]  # the worker's call, and the driver's


def _blas_threads(driver: int, marker: str) -> str:
    """OpenBLAS's threads here; in the driver, once a worker has told its own."""
    import numpy  # noqa: F401 - loads OpenBLAS
    from threadpoolctl import threadpool_info

    n = str(sum(p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"))
    if os.getpid() != driver:
        Path(marker).write_text(n)
        return n
    deadline = time.monotonic() + 60
    while not Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"{n}+{Path(marker).read_text()}"


_THREADS = """
import os, sys
from pipeline.shard_pool import run_calls, share_cores
from tests.pipeline.test_shard_pool import _blas_threads
share_cores(2)  # before numpy is imported, as a sharded command does
import numpy
print(*run_calls(_blas_threads, [(os.getpid(), sys.argv[1])] * 2, workers=2))
"""


def test_two_shard_processes_share_the_cores_with_blas(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", _THREADS, str(tmp_path / "worker-threads")],
        cwd=Path(__file__).resolve().parents[2],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert sorted(out) == [share, f"{share}+{share}"]  # the worker, and the driver


_LIBRARY_RUN = """
import ctypes, os, sys
import pyarrow as pa
from pipeline.engine import run_sharded_to_file


class MallInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]


libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo
libc.malloc.restype = ctypes.c_void_p


def mapped(n):  # blocks malloc maps for an n-byte block: 1 by default at 48 MB, 0 once tuned
    before = libc.mallinfo2().hblks
    p = libc.malloc(n)
    after = libc.mallinfo2().hblks
    libc.free(ctypes.c_void_p(p))
    return after - before


pool = pa.default_memory_pool().backend_name
run_sharded_to_file("validate", sys.argv[1], None, {}, workers=2)
print(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"), pa.default_memory_pool().backend_name == pool,
      mapped(48 << 20))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_a_library_run_leaves_its_process_allocators_and_environment_as_they_were(tmp_path):
    """Only the command and the job's own workers are tuned for shards (a notebook is not)."""
    parts = _partitioned(tmp_path, 2)
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run(
        [sys.executable, "-c", _LIBRARY_RUN, str(parts)],
        cwd=Path(__file__).resolve().parents[2],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["None", "True", "1"]
