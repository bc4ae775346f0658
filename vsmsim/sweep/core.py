"""``sweep()``: a grid of overrides times replications, on any executor, resumable."""

from __future__ import annotations

import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import Scenario
from ..costs import CostProfile
from ..designs import Design
from ..errors import InputError
from ..stats import aggregate
from .executors import EXECUTORS, RUNNERS, check, make_tasks, pool_or_serial
from .grid import Plan, make_plan
from .store import RunStore

#: Columns of ``SweepResult.runs`` before the grid keys and the metrics.
RUN_COLUMNS = ("replication", "seed", "status", "error", "wall_s")


@dataclass
class SweepResult:
    """The outcome of :func:`sweep`.

    ``runs``: one row per run, sorted by grid point then replication, with the columns
    ``point``, the grid's dotted keys, ``replication``, ``seed``, ``status`` ("ok" or
    "error"), ``error`` (message and traceback, "" when ok), ``wall_s`` (seconds of wall
    time of the run) and one column per summary metric, named ``metric[kind,vtlN]``
    (see docs/sweeps.md); ``units`` maps each metric column to its unit (ns, share,
    count, 1/s). ``reused`` runs were read back from the sweep directory, ``ran`` were
    executed now, ``failed`` is the number of rows whose status is "error".
    """

    scenario: Scenario
    grid: dict
    replications: int
    runs: pd.DataFrame
    units: dict = field(default_factory=dict)
    executor: str = "serial"
    workers: int = 1
    reused: int = 0
    ran: int = 0
    wall_s: float = 0.0
    out: Path | None = None
    _points: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def keys(self) -> list[str]:
        """The grid's dotted keys (the first is the x axis of plots)."""
        return list(self.grid)

    @property
    def metrics(self) -> list[str]:
        """The metric columns of ``runs``."""
        fixed = {"point", *self.keys, *RUN_COLUMNS}
        return [c for c in self.runs.columns if c not in fixed]

    @property
    def failed(self) -> int:
        """Number of runs whose status is "error"."""
        return int((self.runs["status"] != "ok").sum()) if len(self.runs) else 0

    @property
    def errors(self) -> pd.DataFrame:
        """The failed rows: point, grid values, replication, seed and error text."""
        cols = list(dict.fromkeys(["point", *self.keys, "replication", "seed", "error"]))
        return self.runs.loc[self.runs["status"] != "ok", cols]

    def aggregate(self, confidence: float = 0.95, long: bool = False) -> pd.DataFrame:
        """One row per grid point: grid values, ``n`` (runs ok), ``failed``, and per
        metric its mean plus ``<metric>_ci_low`` / ``<metric>_ci_high``, a Student-t
        interval at *confidence* across replications (NaN with fewer than 2 runs).
        With *long*: one row per (point, metric) with ``mean, sd, ci_low, ci_high``."""
        return aggregate(self.runs, self.keys, self.metrics, confidence, self.units, long)

    @property
    def points(self) -> pd.DataFrame:
        """``aggregate()`` at 95 %, computed once."""
        if self._points is None:
            self._points = self.aggregate()
        return self._points

    @property
    def summary_line(self) -> str:
        """One line: runs, reused, failed, wall time, executor."""
        n_points = len(self.runs["point"].unique()) if len(self.runs) else 0
        return (f"sweep {self.scenario.name}: {len(self.runs)} runs ({n_points} points x "
                f"{self.replications} replications): {self.ran} ran, {self.reused} reused, "
                f"{self.failed} failed; {self.wall_s:.1f} s wall "
                f"({self.executor}, {self.workers} worker{'s' if self.workers != 1 else ''})")

    def plot(self, metric: str, x: str | None = None, hue: str | None = None):
        """Figure of *metric*'s mean against grid key *x* (default: the first) with its
        95 % confidence band, one line per value of *hue* (default: the second key)."""
        from .plot import plot_metric

        return plot_metric(self, metric, x=x, hue=hue)


def _progress_bar(enabled, total: int, initial: int, name: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, desc=name, unit="run", file=sys.stderr,
               dynamic_ncols=True)
    bar.set_postfix(failed=0)
    return bar


def _runs_table(plan: Plan, records: dict) -> tuple[pd.DataFrame, dict]:
    columns: dict[str, list] = {"point": []}
    # A grid over `seed` shares the run column `seed`: the run's own seed is the point's
    # seed at replication 0 and derived from it after, so one column holds both.
    grid_cols = [k for k in plan.keys if k not in RUN_COLUMNS]
    for k in grid_cols:
        columns[k] = []
    for c in RUN_COLUMNS:
        columns[c] = []
    metric_cols: dict[str, list] = {}
    units: dict[str, str] = {}
    n = 0
    for spec in plan.runs:
        rec = records.get(spec.key)
        if rec is None:
            continue
        point = plan.points[spec.point]
        columns["point"].append(spec.point)
        for k in grid_cols:
            columns[k].append(_grid_label(point.overrides[k]))
        columns["replication"].append(spec.replication)
        columns["seed"].append(spec.seed)
        columns["status"].append(rec["status"])
        columns["error"].append(rec.get("error") or "")
        columns["wall_s"].append(float(rec.get("wall_s", 0.0)))
        for m, v in rec.get("metrics", {}).items():
            col = metric_cols.get(m)
            if col is None:
                col = metric_cols[m] = [float("nan")] * n
            col.append(float(v))
        n += 1
        for col in metric_cols.values():
            if len(col) < n:
                col.append(float("nan"))
        units.update(rec.get("units", {}))
    df = pd.DataFrame(columns)
    if metric_cols:
        df = pd.concat([df, pd.DataFrame(metric_cols, index=df.index)], axis=1)
    df["point"] = df["point"].astype("int64")
    df["replication"] = df["replication"].astype("int64")
    df["seed"] = df["seed"].astype("int64")
    df["wall_s"] = df["wall_s"].astype(float)
    df["status"] = df["status"].astype(object)
    df["error"] = df["error"].astype(object)
    return df, units


def sweep(scenario, grid: dict | None = None, replications: int = 1, executor: str = "process",
          workers: int | None = None, scheduler: str | None = None, out=None,
          progress: bool | None = None, retry_failed: bool = True) -> SweepResult:
    """Run *scenario* at every point of *grid*, *replications* times each.

    *scenario*: a Scenario, dict or file path. *grid*: ``{dotted key: [values]}``, keys as
    :meth:`Scenario.with_overrides` accepts them (``"vm.vps"``, ``"design"``,
    ``"costs.override.uexit"``, ``"workload.1.rate"``); points are the cross product, the
    last key varying fastest. Every point is validated before anything runs
    (:class:`~vsmsim.errors.InputError` names the key and value).

    Replication ``r`` of a point uses :func:`~vsmsim.sweep.replication_seed` of the
    point's seed and ``r`` (replication 0 keeps the seed), so the table is the same on
    every executor and number of workers, apart from ``wall_s``.

    *executor*: ``"serial"``, ``"process"`` (local pool of *workers* processes, default
    every core) or ``"dask"`` (a new LocalCluster of *workers* processes, or the cluster
    at *scheduler*, e.g. ``"tcp://host:8786"``; needs ``pip install 'vsmsim[dask]'``).

    *out*: sweep directory. Each finished run is written there atomically as it
    completes, with ``sweep.json`` first and ``runs.parquet`` and ``points.csv`` at the
    end; a sweep started again with the same directory reuses the runs already done
    (failed ones run again when *retry_failed*). A run that raises is recorded with its
    traceback and the others go on. On Ctrl-C the pending runs are cancelled, the
    workers stopped and ``KeyboardInterrupt`` re-raised; the runs finished so far are
    in *out* for the next start.

    *progress*: a tqdm bar on stderr; ``None`` shows it when stderr is a terminal.
    """
    from ..api import _as_scenario

    t0 = time.perf_counter()
    if executor not in EXECUTORS:
        raise InputError(f"executor {executor!r}: allowed: {', '.join(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"workers: {workers!r} must be an integer >= 1")
    if scheduler and executor != "dask":
        raise InputError(f"scheduler {scheduler!r} is for executor='dask' "
                         f"(got executor={executor!r})")
    sc = _as_scenario(scenario)
    if executor != "dask" or not scheduler:
        executor = pool_or_serial(executor, "sweep")
    plan = make_plan(sc, grid, replications)
    check(plan, executor)
    store = RunStore(out) if out is not None else None
    done: dict = {}
    if store is not None:
        store.own([r.key for r in plan.runs])  # a rerun owns its directory
        store.write_plan(plan.describe())
        done = store.load([r.key for r in plan.runs], retry_failed=retry_failed)
    todo = [r for r in plan.runs if r.key not in done]
    tasks = make_tasks(plan, todo, executor)
    records = dict(done)
    info = {"workers": workers or 1}
    failed = sum(1 for r in done.values() if r.get("status") != "ok")
    bar = _progress_bar(progress, len(plan.runs), len(done), sc.name)
    try:
        stream = RUNNERS[executor](tasks, workers=workers, scheduler=scheduler, info=info)
        with closing(stream):
            for rec in stream:
                records[rec["key"]] = rec
                if store is not None:
                    store.write_run(rec, plan.points[rec["point"]].overrides)
                if rec["status"] != "ok":
                    failed += 1
                if bar is not None:
                    bar.set_postfix(failed=failed, refresh=False)
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    runs, units = _runs_table(plan, records)
    result = SweepResult(scenario=sc, grid=plan.grid, replications=plan.replications,
                         runs=runs, units=units, executor=executor,
                         workers=int(info.get("workers") or 1), reused=len(done),
                         ran=len(todo), out=Path(out) if out is not None else None)
    if store is not None:
        store.write_tables(runs, result.points)
    result.wall_s = time.perf_counter() - t0
    return result


def _grid_label(value):
    """A grid value as a table cell: designs and cost profiles given as objects by name."""
    return value.name if isinstance(value, (Design, CostProfile)) else value
