"""Value mode over shards: options in each shard, one decision for the book, plans in each shard.

The value mode shares one capacity over the whole book, so a sharded run
plans it in three steps, with the unsharded run's own functions:

1. every shard runs the scoring task up to the value decision and writes
   its eligible accounts' options (:func:`pipeline.value_mode.value_inputs`:
   per account a few option values, calls, texts and feasibility flags) and
   their rows in the export, so the driver can put them back in the book's
   order (that of the accounts table, which an unsharded run plans in);
2. the driver concatenates them in that order and decides once
   (:func:`pipeline.value_mode.decide_by_value`, hence
   :func:`pipeline.allocate.allocate`) under the book's capacity, less what
   every shard's control group and suppressed accounts use; it writes each
   shard's choices back as a part;
3. every shard runs the scoring task again with its choices given
   (:func:`pipeline.value_mode.choose_by_value` with ``decide`` replaced) and
   writes its scores.

Step 3 reads, validates and predicts each shard again: the price of keeping
one shard in memory at a time. The results are those of the unsharded run.
Steps 1 and 3 are shard tasks (:func:`pipeline.shard_tasks.options_task`,
:func:`pipeline.shard_tasks.given_choices`), step 2 is the driver's
(:func:`pipeline.shard_score.decide_book`); this module holds what they
share: the part kinds and the codec of the decision's inputs as a frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Part kinds in the run's work folder.
OPTIONS = "value_options"
CHOICES = "value_choices"
_SEP = "__"


def inputs_frame(inputs: dict) -> tuple[pd.DataFrame, dict[str, int]]:
    """Split :func:`pipeline.value_mode.value_inputs` into a frame of per-row columns and scalars.

    A two-dimensional array ``x`` becomes columns ``x__0``, ``x__1``, ...

    Examples
    --------
    >>> frame, scalars = inputs_frame({"value": np.array([[0.0, 2.5]]), "fixed_calls": 3})
    >>> list(frame.columns), scalars
    (['value__0', 'value__1'], {'fixed_calls': 3})
    """
    columns: dict[str, np.ndarray] = {}
    scalars: dict[str, int] = {}
    for key, v in inputs.items():
        if np.ndim(v) == 0:
            scalars[key] = int(v)
        elif np.ndim(v) == 2:
            columns.update({f"{key}{_SEP}{j}": np.asarray(v)[:, j] for j in range(np.shape(v)[1])})
        else:
            columns[key] = np.asarray(v)
    return pd.DataFrame(columns), scalars


def frame_inputs(frame: pd.DataFrame, scalars: dict[str, int]) -> dict:
    """Invert :func:`inputs_frame`: per-row arrays (matrices rebuilt) and the scalars.

    Examples
    --------
    >>> frame, scalars = inputs_frame({"calls": np.array([[0, 3], [0, 1]]), "fixed_sms": 0})
    >>> out = frame_inputs(frame, scalars)
    >>> out["calls"].tolist(), out["fixed_sms"]
    ([[0, 3], [0, 1]], 0)
    """
    out: dict = {}
    matrices: dict[str, list[str]] = {}
    for name in frame.columns:
        key, sep, j = name.rpartition(_SEP)
        if sep and j.isdigit():
            matrices.setdefault(key, []).append(name)
        else:
            out[name] = frame[name].to_numpy()
    for key, names in matrices.items():
        names.sort(key=lambda n: int(n.rpartition(_SEP)[2]))
        out[key] = np.column_stack([frame[n].to_numpy() for n in names])
    return {**out, **scalars}
