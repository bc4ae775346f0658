"""Where the runs of a sweep execute: ``serial``, ``process`` (local pool) or ``dask``.

Each executor is a generator of run records in completion order; the caller sorts them.
Closing the generator early (Ctrl-C, an error in the caller) cancels what has not
started and stops the workers; what already finished has been yielded and is kept.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from ..errors import InputError
from .task import RunTask, failed_record, portable, run_task, worker_init

EXECUTORS = ("serial", "process", "dask")


def default_workers() -> int:
    """Worker processes when none are given: every core of this machine."""
    return os.cpu_count() or 1


def make_tasks(plan, todo, executor: str) -> list[RunTask]:
    """Tasks for the runs in *todo*; scenarios are pickled once per point unless serial."""
    if executor == "serial":
        scen = {p.index: p.scenario for p in plan.points}
        return [RunTask(r.key, r.point, r.replication, r.seed, scenario=scen[r.point])
                for r in todo]
    needed = sorted({r.point for r in todo})
    points = [plan.points[i] for i in needed]
    preload = portable(points)
    blobs = {p.index: pickle.dumps(p.scenario) for p in points}
    return [RunTask(r.key, r.point, r.replication, r.seed, blob=blobs[r.point],
                    preload=preload) for r in todo]


def unguarded_main() -> str | None:
    """The main script's path when the current call runs at its top level unguarded.

    Process pools start workers with ``forkserver`` or ``spawn``, which import the main
    script again in each worker: a script that calls :func:`vsmsim.sweep` (or ``compare``
    with workers) at its top level, not under ``if __name__ == "__main__":``, would start
    pools inside every worker, and Python refuses ("bootstrapping phase"), so every run
    failed. This finds the main module's top-level frame on the stack and reads the
    script's syntax tree: the call is unguarded when the top-level statement running is
    not an ``if`` that tests ``__name__``. None when guarded, interactive or not a script.
    """
    import ast
    import inspect

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return None  # python -m pkg: multiprocessing does not import a package's __main__
    frame = inspect.currentframe()
    line = None
    while frame is not None:
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
            break
        frame = frame.f_back
    del frame
    if line is None:
        return None
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for stmt in tree.body:
        if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            if isinstance(stmt, ast.If) and "__name__" in ast.unparse(stmt.test):
                return None
            return str(path)
    return None


def pool_or_serial(executor: str, what: str, stacklevel: int = 3) -> str:
    """*executor*, or ``"serial"`` with a warning when a pool cannot start (see
    :func:`unguarded_main`)."""
    if executor == "serial":
        return executor
    script = unguarded_main()
    if script is None:
        return executor
    warnings.warn(f"{what}: {script} calls vsmsim at its top level without "
                  f"'if __name__ == \"__main__\":', so worker processes cannot start; "
                  f"running serially instead (put the call under that guard to use "
                  f"{executor!r})", RuntimeWarning, stacklevel=stacklevel)
    return "serial"


def run_serial(tasks, workers=None, scheduler=None, info=None):
    """Run the tasks one after the other in this process."""
    if info is not None:
        info["workers"] = 1
    for t in tasks:
        yield run_task(t)


def _mp_context():
    # fork is unsafe once threads run (tqdm's monitor, a Dask client); forkserver keeps
    # the speed of fork, with vsmsim imported once in the server, and spawn is the
    # portable fallback.
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["vsmsim.sweep.task"])
        return ctx
    return multiprocessing.get_context("spawn")


def run_process(tasks, workers=None, scheduler=None, info=None):
    """Run the tasks on a local pool of *workers* processes (default: every core)."""
    if not tasks:
        return
    n = min(workers or default_workers(), len(tasks))
    if info is not None:
        info["workers"] = n
    pool = ProcessPoolExecutor(max_workers=n, mp_context=_mp_context(),
                               initializer=worker_init)
    finished = False
    try:
        pending = {pool.submit(run_task, t): t for t in tasks}
        t0 = time.perf_counter()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                task = pending.pop(f)
                try:
                    yield f.result()
                except Exception as e:  # the worker died (killed, out of memory)
                    yield failed_record(task, e, time.perf_counter() - t0)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)


def _stop_pool(pool) -> None:
    """Cancel what has not started and stop our worker processes now."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def require_dask() -> None:
    """Raise :class:`InputError` with the install command when dask.distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("executor 'dask' needs dask.distributed, which is not installed: "
                         "pip install 'vsmsim[dask]'") from None


def check(plan, executor: str) -> None:
    """Fail before anything runs or is written if *executor* cannot run *plan*."""
    if executor != "serial":
        portable(plan.points)
    if executor == "dask":
        require_dask()


def run_dask(tasks, workers=None, scheduler=None, info=None):
    """Run the tasks on Dask: a new ``LocalCluster`` of *workers* single-threaded worker
    processes, or the running cluster whose scheduler address is *scheduler*."""
    require_dask()
    from distributed import Client, LocalCluster, as_completed

    if not tasks:
        return
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(f"scheduler {scheduler!r}: cannot connect to the dask "
                             f"scheduler ({type(e).__name__}: {e})") from None
    else:
        n = min(workers or default_workers(), len(tasks))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True)
        client = Client(cluster)
    if info is not None:
        info["workers"] = len(client.scheduler_info().get("workers", {})) or workers
        info["dashboard"] = getattr(client, "dashboard_link", None)
    futures = []
    finished = False
    try:
        futures = client.map(run_task, tasks, key=[f"vsmsim-run-{t.key}" for t in tasks],
                             pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        t0 = time.perf_counter()
        for f in as_completed(futures):
            try:
                yield f.result()
            except Exception as e:  # a lost worker (KilledWorker) or a transport error
                yield failed_record(by_key[f.key], e, time.perf_counter() - t0)
            f.release()
        finished = True
    finally:
        if not finished and futures:
            try:
                client.cancel(futures)
            except Exception:  # noqa: S110 - stopping anyway
                pass
        client.close()
        if cluster is not None:
            cluster.close()


RUNNERS = {"serial": run_serial, "process": run_process, "dask": run_dask}
