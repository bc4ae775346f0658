"""Unions of time intervals (ns), for the host layer's books and invariants."""

from __future__ import annotations

import numpy as np


def union(s, e) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals [s[i], e[i]) as sorted disjoint (starts, ends); touching
    intervals merge."""
    s, e = np.asarray(s), np.asarray(e)
    order = np.argsort(s, kind="stable")
    us, ue = [], []
    for a, b in zip(s[order].tolist(), e[order].tolist()):
        if us and a <= ue[-1]:
            ue[-1] = max(ue[-1], b)
        else:
            us.append(a)
            ue.append(b)
    return np.array(us, dtype=np.int64), np.array(ue, dtype=np.int64)
