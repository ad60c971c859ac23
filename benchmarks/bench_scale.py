"""Benchmark: sharded jobs on a simulated book, next to DuckDB on the same files, per book size.

Usage::

    python benchmarks/bench_scale.py                      # 1M accounts x 24 months (make bench)
    python benchmarks/bench_scale.py --accounts 250000 500000 1000000 2000000   # make bench-scale

For each size: (1) the book: the simulator with ``--seed 21`` in blocks of
250,000 accounts (block ``i`` uses seed ``21 + i`` and prefixes its ids with
``b<i>-``; block 0 is exactly ``propensity simulate --seed 21``), written as a
folder of parquet parts per table so that no step holds the whole book;
(2) ``propensity partition`` into one shard per 62,500 accounts (``--shards``
to fix the count); (3) ``propensity
score`` end to end on the shard layout (read, validate, features, both heads
with reason codes, policy, publish); (4) ``propensity features`` for the
same date; (5) a DuckDB query of the main per-account aggregates (arrears,
payments, contacts and promises in windows before D, overdue accounts only) on
the input files. Each job runs in a fresh process; its peak memory is the
largest sum of the resident memory of the process and its workers, sampled
every 0.1 s; its CPU time is the user + system time of the process and its
workers (on a shared machine, wall times are upper bounds and CPU times the
steadier figure); the 1-minute load average is printed at each job's start.
DuckDB's time is that of its query, measured inside its process; the features
job's is given both ways: the process from start to exit (Python's start-up,
imports, workers' start-up included) and its own stage time, printed by the
job from inside the process (the like-for-like figure).
The jobs run from a deployment install of the project (:func:`deploy_env`:
its wheel and runtime dependencies, compiled to bytecode; ``--env dev`` for
the development environment instead). A model is trained once on a 20,000-account
simulated portfolio into a throw-away MLflow store under ``--work``.

Targets (issue 15): score under 90 s and 4 GB at 1M accounts on 2 cores;
memory flat within 20% from 1M to 2M; features within 4x of DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AS_OF = "2025-12-31"
BLOCK = 250_000
SEED = 21


def make_book(n_accounts: int, folder: Path) -> dict[str, int]:
    """Simulate ``n_accounts`` x 24 months in blocks into ``folder/<table>/part-i.parquet``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.simulator import simulate_portfolio

    done = folder / "rows.json"
    if done.exists():
        return json.loads(done.read_text())
    rows: dict[str, int] = {}
    for i, start in enumerate(range(0, n_accounts, BLOCK)):
        n = min(BLOCK, n_accounts - start)
        portfolio = simulate_portfolio(n, 24, seed=SEED + i, start="2024-01-01")
        for name, df in portfolio.tables.items():
            table = pa.Table.from_pandas(df, preserve_index=False)
            if i > 0:
                for col in ("account_id", "customer_id", "payment_id", "contact_id", "offer_id"):
                    if col in table.column_names:
                        j = table.column_names.index(col)
                        prefixed = pc.binary_join_element_wise(f"b{i}-", table.column(col), "")
                        table = table.set_column(j, col, prefixed)
            (folder / name).mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / name / f"part-{i:03d}.parquet")
            rows[name] = rows.get(name, 0) + table.num_rows
        del portfolio
    done.write_text(json.dumps(rows))
    return rows


def train_model(work: Path) -> str:
    """Train and register a model once; return its URI."""
    import pandas as pd

    from pipeline.jobs import train_job
    from pipeline.simulator import simulate_portfolio, write_portfolio

    marker = work / "model_uri.txt"
    if marker.exists():
        return marker.read_text().strip()
    sim = work / "train_data"
    write_portfolio(simulate_portfolio(20_000, 24, seed=3, start="2024-01-01"), sim)
    job = train_job(sim, pd.Timestamp(AS_OF), months=12)
    uri = f"models:/repayment-propensity/{job.model_version}"
    marker.write_text(uri)
    return uri


def deploy_env(work: Path) -> Path:
    """Install the project as a lender does, in ``work/deploy-env``; return its ``bin`` folder.

    ``uv sync --no-dev --no-editable``: the project's wheel and its locked
    runtime dependencies, without the development tools (pytest, hypothesis,
    pyspark: pandera imports the last two whenever they are installed, about
    0.2 s of CPU per process), compiled to bytecode as a deployment has it
    (without it every process compiles some 1,500 modules, about 1 s of CPU).
    The jobs run from it, which also proves the wheel holds what they import.
    """
    env_dir = work / "deploy-env"
    uv = ROOT / ".tools" / "bin" / "uv"
    subprocess.run(
        [str(uv), "sync", "--locked", "--no-dev", "--no-editable", "--compile-bytecode", "-q"]
        + ["--reinstall-package", "repayment-propensity"],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env_dir)},
        check=True,
    )
    return env_dir / "bin"


def compile_bytecode() -> None:
    """Compile the development environment's and the project's modules to bytecode, once."""
    python = ROOT / ".venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dirs = [site, *(str(ROOT / p) for p in ("features", "models", "pipeline"))]
    subprocess.run([str(python), "-m", "compileall", "-q", *dirs], capture_output=True, check=False)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    cmd: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, float, str, float, float]:
    """Run ``cmd``; return (seconds, peak GB of the process tree, output, CPU seconds, load)."""
    import psutil

    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return seconds, peak[0] / 1024**3, out, _children_cpu() - cpu0, load


def _figures(m: tuple) -> list[float]:
    """The figures kept of a measurement: seconds, peak GB, CPU seconds, load."""
    return [m[0], m[1], m[3], m[4]]


DUCKDB_QUERY = """
with inst as (
  select account_id, sum(amount_due) as due, max(amount_due) as installment_amount
  from read_parquet('{data}/installments/*.parquet') where due_date < DATE '{d}' group by 1),
pay as (
  select account_id, sum(amount) as paid, max(paid_at) as last_paid_at,
         sum(amount) filter (where paid_at >= TIMESTAMPTZ '{d}' - INTERVAL 180 DAY) as paid_180d
  from read_parquet('{data}/payments/*.parquet') where paid_at < TIMESTAMPTZ '{d}' group by 1),
con as (
  select account_id,
         count(*) filter (where contact_at >= TIMESTAMPTZ '{d}' - INTERVAL 30 DAY) as contacts_30d,
         count(*) filter (where outcome = 'promise_to_pay'
                          and contact_at >= TIMESTAMPTZ '{d}' - INTERVAL 90 DAY) as promises_90d,
         max(contact_at) as last_contact_at
  from read_parquet('{data}/contacts/*.parquet') where contact_at < TIMESTAMPTZ '{d}' group by 1)
select a.account_id, inst.due - coalesce(pay.paid, 0) as arrears, inst.installment_amount,
       pay.last_paid_at, pay.paid_180d, con.contacts_30d, con.promises_90d, con.last_contact_at
from read_parquet('{data}/accounts/*.parquet') a
join inst using (account_id) left join pay using (account_id) left join con using (account_id)
where a.opened_date <= DATE '{d}' and inst.due - coalesce(pay.paid, 0) > 1.0
"""


def duckdb_job(data: str) -> None:
    """Run in a fresh process: the DuckDB aggregates, printed as JSON."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    t0 = time.perf_counter()
    n = con.execute(f"select count(*) from ({DUCKDB_QUERY.format(data=data, d=AS_OF)})").fetchone()
    print(json.dumps({"rows": n[0], "seconds": time.perf_counter() - t0}))


def run_size(n: int, args, env: dict[str, str], uri: str) -> dict:
    work = args.work
    book = work / f"book_{n}"
    t0 = time.perf_counter()
    rows = make_book(n, book)
    print(f"book {n:,} accounts: {rows} ({time.perf_counter() - t0:.0f}s)", flush=True)
    exe = str(args.bin / "propensity")
    n_shards = args.shards or max(1, -(-n // args.accounts_per_shard))
    parts = work / f"parts_{n}_{n_shards}"
    res: dict[str, object] = {"accounts": n, "rows": sum(rows.values()), "shards": n_shards}
    if "partition" in args.jobs or not (parts / "shards.json").is_file():
        res["partition"] = _figures(
            measure(
                [exe, "partition", "--data", str(book), "--out", str(parts)]
                + ["--shards", str(n_shards)],
                env,
                work,
            )
        )
    common = ["--workers", str(args.workers)]
    if "score" in args.jobs:
        res["score"] = _figures(
            measure(
                [
                    exe,
                    "score",
                    "--data",
                    str(parts),
                    "--as-of",
                    AS_OF,
                    "--out",
                    str(work / "out"),
                    "--model-uri",
                    uri,
                    "--no-mlflow",
                    *common,
                ],
                env,
                work,
            )
        )
    if args.score_only:
        return res
    if "features" in args.jobs:
        m = measure(
            [
                exe,
                "features",
                "--data",
                str(parts),
                "--as-of",
                AS_OF,
                "--out",
                str(work / "features.parquet"),
                *common,
            ],
            env,
            work,
        )
        # The job's own time, from its stage line: measured inside the process, like DuckDB's.
        stage = re.search(r"stage features rows_out=\S+ seconds=([0-9.]+)", m[2])
        res["features"] = [*_figures(m), float(stage.group(1)) if stage else float("nan")]
    if "duckdb" in args.jobs:
        m = measure([sys.executable, __file__, "--duckdb", str(book)], env, work)
        # The query's own time (DuckDB's start-up and Python's are left out), the process's CPU.
        res["duckdb"] = [json.loads(m[2].strip().splitlines()[-1])["seconds"], *_figures(m)[1:]]
    return res


JOBS = ("partition", "score", "features", "duckdb")


def print_table(results: list[dict]) -> None:
    """Print one line per book size: each job's wall time, peak memory, CPU time and load."""
    header = f"{'accounts':>10} {'rows':>12} {'shards':>6} | " + " | ".join(
        f"{job + ' s / GB / cpu s / load':>29}" for job in JOBS
    )
    print(header + " | features in process s | features/duckdb (wall, cpu, in process)")
    for r in results:
        cells = [
            f"{r[k][0]:7.1f} {r[k][1]:5.2f} {r[k][2]:7.1f} {r[k][3]:5.1f}"
            if k in r
            else f"{'-':>29}"
            for k in JOBS
        ]
        ratio, inside = "-", "-"
        if "features" in r and len(r["features"]) > 4:
            inside = f"{r['features'][4]:.1f}"
        if "duckdb" in r and "features" in r:
            wall = r["features"][0] / r["duckdb"][0]
            cpu = r["features"][2] / r["duckdb"][2]
            own = r["features"][4] / r["duckdb"][0] if len(r["features"]) > 4 else float("nan")
            ratio = f"{wall:.1f}x, {cpu:.1f}x, {own:.1f}x"
        line = f"{r['accounts']:>10,} {r['rows']:>12,} {r['shards']:>6} | "
        print(line + " | ".join(cells) + f" | {inside:>21} | {ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--shards", type=int, default=None, help="default: by --accounts-per-shard")
    parser.add_argument("--accounts-per-shard", type=int, default=62_500)
    parser.add_argument("--score-only", action="store_true", help="skip features and DuckDB")
    parser.add_argument(
        "--jobs",
        nargs="+",
        choices=JOBS,
        default=list(JOBS),
        help="jobs to run (default all); without partition, a layout already written is reused",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "bench_out" / "scale")
    parser.add_argument(
        "--env",
        choices=("deploy", "dev"),
        default="deploy",
        help="run the jobs from a deployment install (default) or the development .venv",
    )
    parser.add_argument("--duckdb", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb:
        duckdb_job(args.duckdb)
        return
    sys.path.insert(0, str(ROOT))
    args.work.mkdir(parents=True, exist_ok=True)
    args.work = args.work.resolve()
    env = {
        **os.environ,
        "OMP_WAIT_POLICY": "PASSIVE",
        "MLFLOW_TRACKING_URI": f"sqlite:///{args.work / 'mlflow.db'}",
    }
    os.environ.update(env)
    os.chdir(args.work)
    if args.env == "dev":
        compile_bytecode()
        args.bin = ROOT / ".venv" / "bin"
    else:
        args.bin = deploy_env(args.work)
    uri = train_model(args.work) if "score" in args.jobs else ""
    print(
        f"machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB; "
        f"workers {args.workers}; jobs run from {args.bin.parent.name} ({args.env})",
        flush=True,
    )
    results = []
    for n in args.accounts:
        results.append(run_size(n, args, env, uri))
        print_table(results)
        (args.work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
