"""Bounded-memory recording (``record.tables = "stream"`` or ``"summary"``): sinks for the
final rows the recorder hands over in chunks, and the running tally behind the summary.

The recorder (:mod:`vsmsim.record`) recycles a row's slot once the row is final and gives
the sink chunks of raw rows (int64 arrays in the recorder's field order). Two sinks:

- :class:`SummarySink` keeps no rows: a :class:`Tally` of exact counts, sums, maxima and
  offered load, and latency percentiles from :class:`~vsmsim.histogram.LogHistogram`
  (estimated within ``record.rel_error``; exact while a latency column has at most
  :data:`EXACT_LIMIT` distinct values);
- :class:`StreamSink` does the same and also writes every chunk to Parquet (one row group
  per chunk) as the run goes: the same rows as ``"all"`` in the end, in the order they
  became final, not by id (sort by ``id`` to compare).

Memory is bounded by the chunk size (``record.row_group`` rows), the open rows (pending
interrupts, calls not returned) and the histograms' buckets. Times are ns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .histogram import LogHistogram
from .record import (
    F_END,
    F_KIND,
    F_MERGED,
    F_RAISED,
    F_RESUMED,
    F_SERVICE,
    F_START,
    F_VP,
    F_VTL,
    F_WOKE,
    KINDS,
    REASONS,
    SW_END,
    SW_ID,
    SW_REASON,
    SW_START,
    interrupt_table,
    switch_table,
)

#: A latency group counts each distinct value while it has at most this many (its
#: percentiles are then exact, interpolated as numpy's default, the way "all" computes
#: them); beyond, only the histogram's estimate is left.
EXACT_LIMIT = 4096
#: Percentiles of the summary, as results.PERCENTILES (name, q in %).
PERCENTILES = (("p50", 50), ("p99", 99), ("p99.9", 99.9))


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation between two order statistics (numpy.lib's _lerp), so
    that an exact percentile here is the number numpy.percentile gives."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1 - t)
    return a + diff * t


class Latencies:
    """One latency column of one group: exact n, sum, max; percentiles exact while the
    column has at most :data:`EXACT_LIMIT` distinct values, else from a histogram."""

    __slots__ = ("hist", "distinct", "n", "total", "max")

    def __init__(self, rel_error: float):
        self.hist = LogHistogram(rel_error)
        self.distinct: dict[int, int] | None = {}
        self.n = 0
        self.total = 0
        self.max = None

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        self.hist.add_many(values)
        self.n += len(values)
        self.total += int(values.sum())
        m = int(values.max())
        self.max = m if self.max is None else max(self.max, m)
        d = self.distinct
        if d is not None:
            u, c = np.unique(values, return_counts=True)
            for v, k in zip(u.tolist(), c.tolist()):
                d[v] = d.get(v, 0) + k
            if len(d) > EXACT_LIMIT:
                self.distinct = None

    def percentile(self, q: float) -> tuple[float, float]:
        """(value, relative error bound) of percentile *q* (0-100); bound 0: exact."""
        d = self.distinct
        if d is None:
            return float(self.hist.quantile(q / 100)), self.hist.rel_error
        keys = sorted(d)
        cum = np.cumsum([d[k] for k in keys])
        pos = (self.n - 1) * (q / 100)
        lo = int(np.floor(pos))
        hi = min(lo + 1, self.n - 1)

        def order(k):  # the k-th smallest value (0-based)
            return float(keys[int(np.searchsorted(cum, k, side="right"))])
        return _lerp(order(lo), order(hi), pos - lo), 0.0

    def mean(self) -> float:
        return self.total / self.n


class _Group:
    __slots__ = ("count", "coalesced", "pending", "delivery", "response", "roundtrip",
                 "wakeup")

    def __init__(self, rel_error: float):
        self.count = self.coalesced = self.pending = 0
        self.delivery, self.response, self.roundtrip, self.wakeup = (
            Latencies(rel_error) for _ in range(4))


class Tally:
    """The summary of a run kept as it goes, from chunks of final rows.

    Interrupts count when raised at or after *warmup_ns*, switches when started then (the
    window of ``Result.summary``). ``offered`` sums service ns per (vp, vtl) for the
    overload report."""

    def __init__(self, warmup_ns: int, rel_error: float):
        self.warmup = warmup_ns
        self.rel_error = rel_error
        self.groups: dict[tuple[int, int], _Group] = {}
        self.switch_groups: dict[int, Latencies] = {}
        self.switch_open: dict[int, int] = {}
        self.raised = self.undelivered = self.switches = 0
        self.offered: dict[tuple[int, int], int] = {}

    def interrupts(self, m: np.ndarray) -> None:
        m = m[m[:, F_RAISED] >= self.warmup] if self.warmup else m
        if not len(m):
            return
        self.raised += len(m)
        start = m[:, F_START]
        self.undelivered += int((start < 0).sum())
        key = m[:, F_VP] * 4096 + m[:, F_VTL]
        u, inv = np.unique(key, return_inverse=True)
        # float weights are exact for integer sums below 2**53 ns (104 days)
        for k, svc in zip(u.tolist(), np.bincount(inv, weights=m[:, F_SERVICE]).tolist()):
            if svc:
                kk = (k // 4096, k % 4096)
                self.offered[kk] = self.offered.get(kk, 0) + int(svc)
        gk = m[:, F_KIND] * 4096 + m[:, F_VTL]
        for k in np.unique(gk):
            g = m[gk == k]
            kk = (int(k) // 4096, int(k) % 4096)
            grp = self.groups.get(kk)
            if grp is None:
                grp = self.groups[kk] = _Group(self.rel_error)
            merged = g[:, F_MERGED] >= 0
            grp.count += len(g)
            grp.coalesced += int(merged.sum())
            g = g[~merged]
            st, en, ra = g[:, F_START], g[:, F_END], g[:, F_RAISED]
            started = st >= 0
            grp.pending += int((~started).sum())
            grp.delivery.add((st - ra)[started])
            grp.response.add((en - ra)[en >= 0])
            res = g[:, F_RESUMED]
            grp.roundtrip.add((res - ra)[res >= 0])
            woke = started & (g[:, F_WOKE] != 0)
            grp.wakeup.add((st - ra)[woke])
        # coalesced rows never start, so their wake-ups are not counted (as in "all")

    def switch_rows(self, m: np.ndarray) -> None:
        m = m[m[:, SW_START] >= self.warmup] if self.warmup else m
        if not len(m):
            return
        self.switches += len(m)
        ended = m[:, SW_END] >= 0
        for r in np.unique(m[:, SW_REASON]):
            sel = ended & (m[:, SW_REASON] == r)
            lat = self.switch_groups.get(int(r))
            if lat is None:
                lat = self.switch_groups[int(r)] = Latencies(self.rel_error)
            lat.add((m[sel, SW_END] - m[sel, SW_START]))

    # ------------------------------------------------------------------ read-out
    def latency_rows(self) -> list[tuple]:
        """The summary's latency and switch rows, as ``Result.summary`` builds them from
        the tables: ``(metric, kind, vtl, value, unit, rel_error)``; rel_error 0 = exact."""
        rows = []
        for (kind, vtl) in sorted(self.groups):
            g = self.groups[(kind, vtl)]
            k = KINDS[kind]
            rows.append(("count", k, vtl, float(g.count), "count", 0.0))
            rows.append(("coalesced", k, vtl, float(g.coalesced), "count", 0.0))
            rows.append(("pending", k, vtl, float(g.pending), "count", 0.0))
            for name, lat in (("delivery", g.delivery), ("response", g.response)):
                if lat.n:
                    rows.append((f"{name}_n", k, vtl, float(lat.n), "count", 0.0))
                    rows.append((f"{name}_mean", k, vtl, lat.mean(), "ns", 0.0))
                    for pname, q in PERCENTILES:
                        v, err = lat.percentile(q)
                        rows.append((f"{name}_{pname}", k, vtl, v, "ns", err))
                    rows.append((f"{name}_max", k, vtl, float(lat.max), "ns", 0.0))
            if g.roundtrip.n:
                rt = g.roundtrip
                rows.append(("roundtrip_n", k, vtl, float(rt.n), "count", 0.0))
                rows.append(("roundtrip_mean", k, vtl, rt.mean(), "ns", 0.0))
                for pname, q in (("p50", 50), ("p99", 99)):
                    v, err = rt.percentile(q)
                    rows.append((f"roundtrip_{pname}", k, vtl, v, "ns", err))
        for (kind, vtl) in sorted(self.groups):
            w = self.groups[(kind, vtl)].wakeup
            if w.n:
                k = KINDS[kind]
                rows.append(("wakeup_n", k, vtl, float(w.n), "count", 0.0))
                for pname, q in (("p50", 50), ("p99", 99)):
                    v, err = w.percentile(q)
                    rows.append((f"wakeup_{pname}", k, vtl, v, "ns", err))
        for r in sorted(self.switch_groups):
            lat = self.switch_groups[r]
            if lat.n:
                rows.append(("switch_count", REASONS[r], -1, float(lat.n), "count", 0.0))
                rows.append(("switch_mean", REASONS[r], -1, lat.mean(), "ns", 0.0))
                v, err = lat.percentile(99)
                rows.append(("switch_p99", REASONS[r], -1, v, "ns", err))
        return rows

    def overload_inputs(self) -> dict:
        """What :func:`vsmsim.overload.overload` needs, without the rows."""
        return {"offered": {f"{vp},{vtl}": ns for (vp, vtl), ns in self.offered.items()},
                "raised": self.raised, "undelivered": self.undelivered}


class SummarySink:
    """Keeps only the :class:`Tally` (``record.tables = "summary"``)."""

    def __init__(self, tally: Tally):
        self.tally = tally

    def interrupts(self, m: np.ndarray) -> None:
        self.tally.interrupts(m)

    def switches(self, m: np.ndarray) -> None:
        self.tally.switch_rows(m)

    def close(self) -> dict:
        """Files written (none)."""
        return {}

    def discard(self) -> None:
        """The run failed: drop what was written (nothing here)."""


class StreamSink(SummarySink):
    """The tally, and every chunk written to Parquet as a row group
    (``record.tables = "stream"``) under *directory*: ``interrupts.parquet`` and
    ``switches.parquet``. *path_names* is the engine's list, which grows during a run (its
    codes never change), so each chunk names paths by the list as it is then."""

    def __init__(self, tally: Tally, directory: Path, workload_names, path_names):
        super().__init__(tally)
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.workload_names = workload_names
        self.path_names = path_names
        self.writers: dict = {}

    def _write(self, name: str, frame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Categorical columns as plain strings: categories grow during the run; loading
        # restores them (the manifest's categories).
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        w = self.writers.get(name)
        if w is None:
            w = self.writers[name] = pq.ParquetWriter(self.dir / f"{name}.parquet",
                                                      table.schema)
        w.write_table(table)

    def interrupts(self, m: np.ndarray) -> None:
        super().interrupts(m)
        self._write("interrupts", interrupt_table(m, self.workload_names, self.path_names))

    def switches(self, m: np.ndarray) -> None:
        super().switches(m)
        frame = switch_table(m)
        frame["id"] = m[:, SW_ID]  # the loader sorts by it (and drops it)
        self._write("switches", frame)

    def close(self) -> dict:
        files = {}
        for name, w in self.writers.items():
            w.close()
            files[name] = str(self.dir / f"{name}.parquet")
        if not files:  # nothing was streamed: no directory to keep (or to clean up later)
            self.dir.rmdir()
        return files

    def discard(self) -> None:
        import shutil

        for w in self.writers.values():
            try:
                w.close()
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
