"""The driver of a sharded job reads layouts and merges parts without importing pandera (whose
import also loads pyspark when installed): only the shard tasks, which validate, load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_driver_modules_do_not_import_pandera_until_a_table_is_validated():
    code = (
        "import sys\n"
        "import pipeline.engine, pipeline.jobs, pipeline.shards, pipeline.partition\n"
        "import pipeline.io, pipeline.validation\n"
        "print(sorted(m for m in ('pandera', 'pyspark') if m in sys.modules))\n"
        "import pandas as pd\n"
        "from tests import factories as f\n"
        "from pipeline.io import RawTables\n"
        "assert pipeline.validation.validate_tables(RawTables(f.tables())).ok\n"
        "print('pandera' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["[]", "True"]
