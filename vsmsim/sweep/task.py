"""One run of a sweep, as executed by a worker: picklable input in, a flat record out.

This module is what process and Dask workers import; it stays small and imports no
optional dependency.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from .. import api
from ..config import Scenario
from ..errors import InputError


def metric_column(metric: str, kind: str, vtl: int) -> str:
    """Column name of one summary row: ``metric[kind,vtlN]``.

    Empty parts are left out, and the VTL is not repeated when the kind or the metric
    already names it: ``delivery_p99[timer,vtl1]``, ``residency[vtl0]``,
    ``residency[transition]``, ``switch_mean[interrupt]``, ``exits_per_s``, ``vtl0_tax``.
    """
    quals = [kind] if kind else []
    tag = f"vtl{vtl}"
    if vtl >= 0 and kind != tag and not metric.startswith(tag + "_"):
        quals.append(tag)
    return f"{metric}[{','.join(quals)}]" if quals else metric


def flatten_summary(summary) -> tuple[dict, dict]:
    """``Result.summary()`` as ``{column: value}`` and ``{column: unit}``."""
    values, units = {}, {}
    for m, k, v, x, u in zip(summary["metric"], summary["kind"], summary["vtl"],
                             summary["value"], summary["unit"]):
        col = metric_column(str(m), str(k), int(v))
        values[col] = float(x)
        units[col] = str(u)
    return values, units


@dataclass
class RunTask:
    """What a worker needs for one run. Times in ns inside the scenario.

    ``scenario`` is set for the serial executor; otherwise ``blob`` holds the pickled
    point scenario and ``preload`` lists ``(module name, file)`` of ``.py`` scenario
    files whose programs the scenario refers to, imported before unpickling.
    """

    key: str
    point: int
    replication: int
    seed: int
    scenario: Scenario | None = None
    blob: bytes | None = None
    preload: tuple = ()


def _preload(modules) -> None:
    for name, path in modules:
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


def run_task(task: RunTask) -> dict:
    """Run one replication of one point; never raises for a failing run.

    Returns a record: ``key, point, replication, seed, status ("ok" | "error"), error
    (message and traceback, "" when ok), wall_s, metrics {column: value}, units``.
    """
    t0 = time.perf_counter()
    rec = {"key": task.key, "point": task.point, "replication": task.replication,
           "seed": task.seed, "status": "ok", "error": "", "wall_s": 0.0,
           "metrics": {}, "units": {}}
    try:
        sc = task.scenario
        if sc is None:
            _preload(task.preload)
            sc = pickle.loads(task.blob)
        sc = sc.model_copy(update={"seed": task.seed})
        res = api.simulate(sc)
        rec["metrics"], rec["units"] = flatten_summary(res.summary())
    except Exception as e:  # a failing run is recorded, the sweep goes on
        rec["status"] = "error"
        rec["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def failed_record(task: RunTask, exc: BaseException, wall_s: float = 0.0) -> dict:
    """The record of a run whose worker failed before returning (crash, lost worker)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"key": task.key, "point": task.point, "replication": task.replication,
            "seed": task.seed, "status": "error",
            "error": f"worker failed: {type(exc).__name__}: {exc}\n{tb}",
            "wall_s": wall_s, "metrics": {}, "units": {}}


def worker_init() -> None:
    """Pool initializer of a worker process.

    Ctrl-C is the parent's to handle (it cancels and stops the workers): a worker must
    not turn it into a failed run. A worker whose parent is killed outright (SIGKILL)
    would wait for work forever, so it exits as soon as the parent is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="vsmsim-parent-watch", daemon=True).start()


def portable(points) -> tuple:
    """Check that the point scenarios can be sent to worker processes.

    Returns the ``preload`` list for :class:`RunTask`. Raises
    :class:`~vsmsim.errors.InputError` for program workloads that a fresh Python process
    cannot import (defined in ``__main__``, a notebook, a lambda or a closure).
    """
    preload = {}
    for p in points:
        for i, w in enumerate(p.scenario.workload):
            if w.kind != "program":
                continue
            fn = w.program
            mod = getattr(fn, "__module__", None) or "?"
            qual = getattr(fn, "__qualname__", repr(fn))
            if mod == "__main__" or "<" in qual:
                raise InputError(
                    f"workload[{i}].program {mod}:{qual}: program workloads run in worker "
                    f"processes only when defined at the top level of an importable module "
                    f"or of a .py scenario file; use executor='serial' for this one")
            if mod.startswith("vsmsim_scenario_") and mod in sys.modules:
                path = getattr(sys.modules[mod], "__file__", None)
                if path:
                    preload[mod] = path
    for p in points:
        try:
            pickle.dumps(p.scenario)
        except Exception as e:
            raise InputError(f"grid point {p.index}: the scenario cannot be sent to worker "
                             f"processes ({type(e).__name__}: {e}); use executor='serial'") from None
    return tuple(preload.items())
