"""Whether a folder is a shard layout: its record's file name, checked without loading pandas.

A sharded command asks this first thing, before its own imports, to start
its workers ahead (:func:`pipeline.cli_common.workers_ahead`); the rest of
the layout is read by :mod:`pipeline.shards`.
"""

from __future__ import annotations

from pathlib import Path

#: The layout record of a partitioned folder (written by :func:`pipeline.partition.partition_data`).
LAYOUT_FILE = "shards.json"


def is_partitioned(data_dir: Path | str) -> bool:
    """True when ``data_dir`` holds a shard layout.

    Examples
    --------
    >>> is_partitioned("no-such-folder")
    False
    """
    return (Path(data_dir) / LAYOUT_FILE).is_file()
