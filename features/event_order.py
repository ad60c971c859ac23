"""The order of event rows: by account code, then time, then a tie-breaker.

Used by :mod:`features.prepare` to sort installments and payments once; the
order is that of ``numpy.lexsort((tie, time, code))`` whatever shortcut is
taken (tested), so every result is independent of the order of input rows.
"""

from __future__ import annotations

import numpy as np


def sort_order(code: np.ndarray, time: np.ndarray, tie: np.ndarray) -> np.ndarray | None:
    """Return the order sorting rows by (code, time, tie), or None when already sorted.

    The tie-breaker makes the order, hence every result, independent of the
    order of the input rows (e.g. which of two simultaneous payments is "the last").
    Non-negative codes are sorted by a stable radix sort, then only the accounts
    whose rows are still out of (time, tie) order are lexsorted: the same order
    as ``numpy.lexsort((tie, time, code))``, without sorting the whole table on
    three keys (an export in time order, or several such parts one after the
    other, needs no lexsort at all).
    """
    return sorted_keys(code, time, tie)[0]


def sorted_keys(
    code: np.ndarray, time: np.ndarray, tie: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sort_order` and the three keys in that order (gathered once, not twice)."""
    if code.size < 2 or not out_of_order(code, time, tie).any():
        return None, code, time, tie
    if code.min() < 0 or code.max() >= 2**32:
        order = np.lexsort((tie, time, code))
        return order, code[order], time[order], tie[order]
    order = stable_argsort_codes(code)
    c, t, k = code[order], time[order], tie[order]
    bad = out_of_order(c, t, k)
    if bad.any():
        # Rows of the accounts out of order, at their (contiguous) places in ``order``;
        # a stable lexsort of them keeps ties in input order, as the lexsort of all would.
        rows = np.flatnonzero(np.isin(c, np.unique(c[1:][bad])))
        fix = np.lexsort((k[rows], t[rows], c[rows]))
        order[rows] = order[rows][fix]
        t[rows], k[rows] = t[rows][fix], k[rows][fix]
    return order, c, t, k


def out_of_order(code: np.ndarray, time: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """Per pair of neighbouring rows, True where the second sorts before the first.

    Examples
    --------
    >>> out_of_order(np.array([0, 0, 1]), np.array([5, 3, 1]), np.array([0, 0, 0])).tolist()
    [True, False]
    """
    dc, dt = np.diff(code), np.diff(time)
    return (dc < 0) | ((dc == 0) & ((dt < 0) | ((dt == 0) & (tie[1:] < tie[:-1]))))


def stable_argsort_codes(code: np.ndarray) -> np.ndarray:
    """``numpy.argsort(code, kind="stable")`` for codes in ``[0, 2**32)``, by two 16-bit radix passes.

    Examples
    --------
    >>> stable_argsort_codes(np.array([70000, 3, 70000, 0, 3])).tolist()
    [3, 1, 4, 0, 2]
    """
    if code.size == 0 or int(code.max()) < 2**16:
        return np.argsort(code.astype(np.uint16), kind="stable")
    order = np.argsort((code & 0xFFFF).astype(np.uint16), kind="stable")
    high = (code[order] >> 16).astype(np.uint16)
    return order[np.argsort(high, kind="stable")]
