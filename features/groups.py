"""Rows sorted by account code: each account's bounds, and searches and running sums within it.

The event arrays of :class:`features.prepare.Prepared` are sorted by account
code, then time; these primitives work on such arrays account by account,
vectorised over all accounts at once (no Python loop over accounts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """Return a mask of the rows that start a new account in rows sorted by code.

    Examples
    --------
    >>> group_starts(np.array([0, 0, 1, 3, 3])).tolist()
    [True, False, True, True, False]
    """
    mask = np.ones(sorted_codes.size, dtype=bool)
    mask[1:] = sorted_codes[1:] != sorted_codes[:-1]
    return mask


def group_ends(sorted_codes: np.ndarray) -> np.ndarray:
    """Return a mask of the rows that end an account in rows sorted by code.

    Examples
    --------
    >>> group_ends(np.array([0, 0, 1, 3, 3])).tolist()
    [False, True, True, False, True]
    """
    mask = np.ones(sorted_codes.size, dtype=bool)
    mask[:-1] = sorted_codes[1:] != sorted_codes[:-1]
    return mask


def group_bounds(sorted_codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the first and one-past-last row of each account in rows sorted by code.

    Parameters
    ----------
    sorted_codes : numpy.ndarray
        Account codes in non-decreasing order.
    n : int
        Number of accounts.

    Returns
    -------
    tuple of numpy.ndarray
        ``starts`` and ``ends``, int64 of length ``n``; empty groups have ``starts == ends``.

    Examples
    --------
    >>> [a.tolist() for a in group_bounds(np.array([0, 0, 2]), 3)]
    [[0, 2, 2], [2, 2, 3]]
    """
    ids = np.arange(n, dtype=sorted_codes.dtype if sorted_codes.size else np.int64)
    starts = np.searchsorted(sorted_codes, ids, side="left").astype(np.int64)
    ends = np.searchsorted(sorted_codes, ids, side="right").astype(np.int64)
    return starts, ends


def segmented_searchsorted(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, queries: np.ndarray, side: str = "left"
) -> np.ndarray:
    """Binary-search each query inside its own sorted slice ``values[lo:hi]``.

    A vectorised binary search by powers of two: each step tries to advance
    every query at once by the same power of two, from the largest slice's
    down to 1, so the number of steps is log2 of the largest slice (a
    handful), never the number of accounts.

    Parameters
    ----------
    values : numpy.ndarray
        Values sorted within each slice.
    lo, hi : numpy.ndarray
        Slice bounds per query (``hi`` exclusive).
    queries : numpy.ndarray
        One value per query.
    side : {"left", "right"}
        "left": first index whose value is >= the query; "right": first index
        whose value is > the query. ``hi`` when there is none.

    Returns
    -------
    numpy.ndarray
        int64 positions into ``values``.

    Examples
    --------
    >>> v = np.array([1.0, 3.0, 5.0, 2.0, 4.0])
    >>> segmented_searchsorted(v, np.array([0, 3]), np.array([3, 5]), np.array([3.0, 3.0])).tolist()
    [1, 4]
    """
    pos = np.array(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    longest = int((hi - pos).max()) if pos.size else 0
    step = 1 << (longest.bit_length() - 1) if longest > 0 else 0
    below = np.less if side == "left" else np.less_equal
    while step:
        # Advance by ``step`` where the slice is long enough and its value there is below the query;
        # the advances taken add up to the count of the slice's values below the query.
        last = pos + (step - 1)
        ok = last < hi
        ok &= below(values.take(last, mode="clip"), queries)
        pos += ok * step
        step >>= 1
    return pos


def grouped_cumsum(sorted_codes: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """Running sum of ``amounts`` restarting at each account (rows sorted by code).

    Computed per group (not as a global running sum minus an offset) so that
    the float error stays that of one account's sums.

    Examples
    --------
    >>> grouped_cumsum(np.array([0, 0, 1]), np.array([1.0, 2.0, 5.0])).tolist()
    [1.0, 3.0, 5.0]
    """
    if amounts.size == 0:
        return amounts.astype(np.float64)
    return (
        pd.Series(amounts, copy=False)
        .groupby(sorted_codes, sort=False)
        .cumsum()
        .to_numpy(dtype=np.float64)
    )
