"""Means and Student-t confidence intervals across replications (no SciPy needed)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction of the incomplete beta function (modified Lentz).
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
          + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """Cumulative distribution of Student's t with *df* degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t: ``t_quantile(0.975, 4)`` = 2.7764..."""
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile({p}, {df}): need 0 < p < 1 and df >= 1")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def aggregate(runs: pd.DataFrame, keys: list[str], metrics: list[str],
              confidence: float = 0.95, units: dict | None = None,
              long: bool = False) -> pd.DataFrame:
    """One row per grid point: ``n`` (runs ok), ``failed``, and per metric its mean
    (column named as the metric), ``<metric>_ci_low`` and ``<metric>_ci_high``.

    The interval is ``mean +- t(1 - (1 - confidence) / 2, n - 1) * sd / sqrt(n)`` over the
    point's successful replications that report the metric; it is NaN when fewer than
    two do. With *long*, one row per (point, metric) with ``metric, unit, n, mean, sd,
    ci_low, ci_high`` instead.
    """
    q = 1.0 - (1.0 - confidence) / 2.0
    ok = runs[runs["status"] == "ok"]
    base = runs.groupby("point", sort=True).agg(
        **{k: (k, "first") for k in keys},
        n=("status", lambda s: int((s == "ok").sum())),
        failed=("status", lambda s: int((s != "ok").sum())),
    ).reset_index()
    g = ok.groupby("point", sort=True)
    if metrics and len(ok):
        mean = g[metrics].mean().reindex(base["point"])
        sd = g[metrics].std(ddof=1).reindex(base["point"])
        cnt = g[metrics].count().reindex(base["point"]).fillna(0).astype(int)
    else:
        idx = pd.Index(base["point"])
        mean = sd = pd.DataFrame(index=idx, columns=metrics, dtype=float)
        cnt = pd.DataFrame(0, index=idx, columns=metrics)
    tq = np.vectorize(lambda n: t_quantile(q, int(n) - 1) if n >= 2 else np.nan,
                      otypes=[float])(cnt.to_numpy()) if cnt.size else cnt.to_numpy(float)
    half = tq * sd.to_numpy(float) / np.sqrt(np.maximum(cnt.to_numpy(float), 1.0))
    lo = mean.to_numpy(float) - half
    hi = mean.to_numpy(float) + half
    if long:
        units = units or {}
        frames = []
        for j, m in enumerate(metrics):
            f = base[["point", *keys]].copy()
            f["metric"] = m
            f["unit"] = units.get(m, "")
            f["n"] = cnt.to_numpy()[:, j]
            f["mean"] = mean.to_numpy(float)[:, j]
            f["sd"] = sd.to_numpy(float)[:, j]
            f["ci_low"] = lo[:, j]
            f["ci_high"] = hi[:, j]
            frames.append(f)
        cols = ["point", *keys, "metric", "unit", "n", "mean", "sd", "ci_low", "ci_high"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    cols = {}
    for j, m in enumerate(metrics):
        cols[m] = mean.to_numpy(float)[:, j]
        cols[f"{m}_ci_low"] = lo[:, j]
        cols[f"{m}_ci_high"] = hi[:, j]
    return pd.concat([base, pd.DataFrame(cols, index=base.index)], axis=1)


def mean_interval(values, confidence: float = 0.95) -> tuple[int, float, float, float, float]:
    """``(n, mean, sd, ci_low, ci_high)`` of *values* (NaNs dropped), a Student-t interval.

    With fewer than two values the sd and the interval are NaN: one run says nothing
    about its own noise.
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = int(len(v))
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(v.mean())
    if n < 2:
        return n, mean, math.nan, math.nan, math.nan
    sd = float(v.std(ddof=1))
    half = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return n, mean, sd, mean - half, mean + half


def paired_difference(a, b, confidence: float = 0.95) -> tuple[int, float, float, float, float]:
    """``(n, mean, sd, ci_low, ci_high)`` of the per-replication differences ``a - b``.

    *a* and *b* are the same metric of two designs, replication by replication, run on
    the same arrivals (common random numbers): pairing removes the noise the two share,
    so the interval of the differences is what says whether the designs differ. Pairs
    with a NaN on either side are dropped.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_difference: {a.shape} and {b.shape} values do not pair")
    return mean_interval(a - b, confidence)
