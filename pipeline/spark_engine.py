"""Run the shard tasks of :mod:`pipeline.engine` on Spark: one Spark task per shard.

The driver makes a Spark DataFrame with one row per shard (one partition
each) and maps it with ``mapInPandas``: each Spark task runs the same pandas
shard task as the local engine (read the shard folder, validate, build
features, score, write parquet parts into the run's work folder) and returns
its counts as one JSON row. The driver collects those rows and merges and
publishes exactly as the local engine does, so outputs, rejects, the reject
limit and the atomic publish are the same.

The shard folders and the run's work folder (beside the output, where the
driver also saves the model as text and JSON for the tasks) must be reachable
from every executor under the same path (a shared file system or a mounted
bucket); see docs/operations.md, "Spark". In local mode they are.
pyspark is an optional extra: ``uv sync --extra spark`` or ``make setup-spark``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator

import pandas as pd

log = logging.getLogger(__name__)

RESULT_SCHEMA = "shard int, record string"


def spark_session():
    """Return the active Spark session, or start one (``local[*]`` unless spark-submit set a master).

    Raises
    ------
    ImportError
        When pyspark is not installed.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ImportError("pyspark is not installed") from exc
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per connection otherwise
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Not under spark-submit: a local Spark whose Python workers are this interpreter
        # (the project's environment). spark-submit sets spark.pyspark.python itself.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.appName("repayment-propensity")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _run_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """mapInPandas body: run the shard task of every row, one JSON record per shard."""
    from pipeline.asof import AsOfImplausibleError
    from pipeline.io import DataReadError
    from pipeline.shard_tasks import run_one

    for pdf in batches:
        records = []
        for job in pdf["job"]:
            task, shard_dir, k, work, params = json.loads(job)
            try:
                record = run_one(task, shard_dir, int(k), work, params)
            except (DataReadError, AsOfImplausibleError) as exc:  # one sentence, exit 2
                record = {"shard": int(k), "error": str(exc), "kind": type(exc).__name__}
            records.append(json.dumps(record))
        yield pd.DataFrame({"shard": pdf["shard"].astype("int32"), "record": records})


def run_on_spark(args: list[tuple]) -> list[dict]:
    """Run ``(task, shard_dir, k, work, params)`` tuples as one Spark task each; their records."""
    spark = spark_session()
    rows = [(int(a[2]), json.dumps(list(a))) for a in args]
    rdd = spark.sparkContext.parallelize(rows, numSlices=max(len(rows), 1))
    frame = spark.createDataFrame(rdd, "shard int, job string")
    log.info("spark master=%s shards=%s", spark.sparkContext.master, f"{len(rows):,}")
    from pipeline.asof import AsOfImplausibleError
    from pipeline.io import DataReadError

    collected = frame.mapInPandas(_run_batches, RESULT_SCHEMA).collect()
    records = [json.loads(r["record"]) for r in collected]
    failed = [r for r in records if "error" in r]
    if failed:
        kind = (
            AsOfImplausibleError if failed[0]["kind"] == "AsOfImplausibleError" else DataReadError
        )
        raise kind(failed[0]["error"])
    return records
