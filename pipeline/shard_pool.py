"""Run a job's shard tasks on this process and ``workers - 1`` worker processes.

The process that runs a sharded job (the driver) has already imported pandas,
pyarrow and the project when the shards start, and would otherwise wait for
its workers doing nothing. So with ``workers=N`` it runs shards itself beside
``N - 1`` spawned workers: one process fewer to start and import (about 1 s
of CPU each, most of it before its first shard can start), the same number of
shards in flight. Shards are handed out one at a time, in shard order, to
whichever process is free; the results come back in shard order.

A job can start its workers ahead (:func:`workers_started`), before it has
imported pandas or loaded its model: they spawn, import and warm up while it
prepares, and :func:`run_calls` then uses them instead of starting its own.
"""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Any

Call = tuple[Any, ...]
#: A call named by its module and function, so the driver need not import the module.
Named = tuple[str, str, tuple[Any, ...]]
#: Worker pools started ahead by :func:`workers_started`, by their number of workers.
_STARTED: dict[int, ProcessPoolExecutor] = {}
#: Open :func:`workers_kept` blocks: their runs leave the started workers to the next run.
_KEPT = [0]
#: glibc's ``mallopt`` for a shard process (malloc.h's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD,
#: M_TOP_PAD): blocks under 64 MB from the heap, which keeps up to 256 MB free and grows
#: by 64 MB at a time, instead of 32 MB, 128 KB and 128 KB once warmed up.
_MALLOPT = ((-3, 64 << 20), (-1, 256 << 20), (-2, 64 << 20))
#: Arrow's variable naming the allocator of its default pool (jemalloc, mimalloc or system).
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
#: OpenBLAS's variable for its number of threads, read when numpy is imported.
BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"


def share_cores(workers: int) -> None:
    """Give numpy's BLAS this process's share of the cores (read at numpy's import; inherited).

    With a shard running on every core, OpenBLAS's own threads (one per core,
    started when numpy is imported) only spin waiting for work that does not
    come: about 0.25 s of CPU taken from the shards of the 1M features job. An
    operator's own setting stands.
    """
    import os

    os.environ.setdefault(BLAS_THREADS_ENV, str(max(1, (os.cpu_count() or 1) // workers)))


def keep_freed_memory() -> None:
    """Make this process reuse the memory one shard frees for the next, not fault in new pages.

    Every shard allocates and frees much the same few hundred MB. By default
    glibc returns large blocks to the system as they are freed, and arrow
    keeps its buffers in a pool of its own (mimalloc) apart from numpy's: the
    next shard's pages are then mapped and zeroed again, which cost more
    system CPU than any other step of the 1M-account features job. Here arrow
    allocates through malloc too (unless :data:`ARROW_POOL_ENV` names another
    pool: read when pyarrow is imported, and inherited by the workers; once it
    is, only pyarrow's own calls can still be moved), and malloc keeps what a shard
    frees for the next, within :data:`_MALLOPT`'s bounds. Measured on that
    job: system CPU 1.8 s -> 0.8 s, page faults 450k -> 220k, peak memory
    1.23 -> 1.15 GB. Elsewhere than glibc, only arrow's pool changes. It
    changes the process for good, so only a sharded command
    (:func:`pipeline.cli_common.workers_ahead`) and the workers
    (:func:`_start_worker`) call it, never a library run.
    """
    import ctypes
    import os
    import sys

    if os.environ.setdefault(ARROW_POOL_ENV, "system") == "system" and "pyarrow" in sys.modules:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None)
        if hasattr(libc, "mallopt"):
            for param, value in _MALLOPT:
                libc.mallopt(param, value)


class _Shared:
    """The calls not yet taken and the results not yet handed back, guarded by one lock."""

    def __init__(self, calls: Sequence[Call]):
        self.lock = threading.Lock()
        self._next: Iterator[tuple[int, Call]] = iter(enumerate(calls))
        self.results: dict[int, Any] = {}
        self.error: BaseException | None = None

    def take(self) -> tuple[int, Call] | None:
        """The next call and its position, or None when none is left or a call failed."""
        with self.lock:
            if self.error is not None:
                return None
            return next(self._next, None)

    def put(self, i: int, result: Any) -> None:
        with self.lock:
            self.results[i] = result

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc


def _start_worker() -> None:
    """Make a worker deaf to Ctrl-C between calls (it would print a traceback waiting for one).

    It was spawned with Ctrl-C blocked (:func:`_new_pool`), so one pressed while
    it started up is pending: ignored, then unblocked, it is dropped. Its
    memory is managed for shards (:func:`keep_freed_memory`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    keep_freed_memory()


def _interruptible(fn: Callable, *args: Any) -> Any:
    """Run ``fn(*args)`` in a worker, stopped by Ctrl-C as the driver's own call is."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn(*args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call_named(module: str, name: str, *args: Any) -> None:
    """Call ``module.name(*args)`` in a worker (its warm-up), returning nothing."""
    getattr(importlib.import_module(module), name)(*args)


def _new_pool(n: int, warm: Named | None = None) -> ProcessPoolExecutor:
    """A pool of ``n`` workers, spawned now; each makes the ``warm`` call first, if given.

    They are spawned with Ctrl-C blocked, as multiprocessing starts its
    resource tracker: one pressed while a worker imports would otherwise kill
    it or print a traceback from it; :func:`_start_worker` drops it.
    """
    pool = ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_start_worker)
    module, name, args = warm or ("os", "getpid", ())
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for _ in range(n):  # a pool spawns a worker per call while none is idle
            pool.submit(_call_named, module, name, *args)
    except BaseException:  # a worker the system refused (process limit, memory)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pool


@contextmanager
def workers_started(workers: int, warm: Named | None = None) -> Iterator[None]:
    """Start the ``workers - 1`` worker processes of the :func:`run_calls` made inside, now.

    Each spawns, imports and makes the ``warm`` call (module, function,
    arguments: imported in the worker only) while this process goes on, so a
    job that starts them before its own imports and set-up does not wait for
    them at its first shard. The first run inside uses these workers and lets
    them end as soon as no call is left for them, while this process finishes
    its own (a run within :func:`workers_kept` leaves them to the next); else
    they stop when the block ends.
    """
    n_others = workers - 1
    if n_others < 1 or n_others in _STARTED:
        yield
        return
    _STARTED[n_others] = pool = _new_pool(n_others, warm)
    try:
        yield
    finally:
        _STARTED.pop(n_others, None)
        # Not waiting: this process ends while its idle workers end theirs.
        pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def workers_kept() -> Iterator[None]:
    """Keep the workers started ahead (:func:`workers_started`) for the run after those inside."""
    _KEPT[0] += 1
    try:
        yield
    finally:
        _KEPT[0] -= 1


def _feed(pool: ProcessPoolExecutor, fn: Callable, shared: _Shared, done: Callable) -> None:
    """Keep one worker process busy: submit a call, wait for it, take the next; then ``done``."""
    try:
        while (item := shared.take()) is not None:
            i, call = item
            try:
                shared.put(i, pool.submit(_interruptible, fn, *call).result())
            except BaseException as exc:  # re-raised by the driver's thread
                shared.fail(exc)
                return
    finally:
        done()


def run_calls(
    fn: Callable[..., Any],
    calls: Sequence[Call],
    workers: int,
    on_result: Callable[[Any], None] | None = None,
) -> list[Any]:
    """Return ``[fn(*call) for call in calls]``, computed by this process and ``workers - 1`` others.

    ``fn`` must be importable by the worker processes (``spawn``: a fresh
    interpreter each, no fork of the threads arrow or OpenMP may have started
    here). ``on_result`` is called in this process with each result in call
    order, as soon as that call and those before it are done. The first
    exception raised by a call (or by ``on_result``) is raised here, once the
    calls under way end; no call starts after it. Ctrl-C stops the calls under
    way; a worker waiting for a call ignores it.

    Examples
    --------
    >>> run_calls(pow, [(2, 3), (3, 2)], workers=1)
    [8, 9]
    """
    shared = _Shared(calls)
    handed = 0

    def hand_back() -> None:
        nonlocal handed
        while handed in shared.results:
            if on_result is not None:
                on_result(shared.results[handed])
            handed += 1

    started = _STARTED.get(workers - 1)
    release = started is None or not _KEPT[0]  # the workers end with this run
    if started is not None and release:
        del _STARTED[workers - 1]
    n_others = workers - 1 if started is not None else min(workers, len(calls)) - 1
    pool = started or (_new_pool(n_others) if n_others > 0 else None)
    feeding = [n_others]

    def done() -> None:
        """Let the workers end once no call is left for them, while the driver finishes."""
        with shared.lock:
            feeding[0] -= 1
            last = feeding[0] == 0
        if last and pool is not None and release:
            pool.shutdown(wait=False)

    feeders = [
        threading.Thread(target=_feed, args=(pool, fn, shared, done), daemon=True)
        for _ in range(n_others)
    ]
    try:
        for t in feeders:
            t.start()
        while (item := shared.take()) is not None:
            i, call = item
            try:
                shared.put(i, fn(*call))
            except BaseException as exc:
                shared.fail(exc)
                break
            hand_back()
        for t in feeders:
            t.join()
        if shared.error is None:
            hand_back()  # the last results, while this run's workers end
    except BaseException as exc:  # on_result's error or Ctrl-C: the workers take no more calls
        shared.fail(exc)
        raise
    finally:
        for t in feeders:
            t.join()
        if pool is not None and started is None:
            pool.shutdown()
    if shared.error is not None:
        raise shared.error
    return [shared.results[i] for i in range(len(calls))]
