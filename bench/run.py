"""The vsmsim benchmark of issue 7: speed and memory of the standard workload.

Usage::

    python bench/run.py                      # 5 rounds, memory, scaling table (about 2 minutes)
    python bench/run.py --rounds 9 --scaling-rounds 3
    python bench/run.py --quick              # a tiny version in a few seconds (smoke test)
    python bench/run.py --no-scaling         # the headline figures only
    python bench/run.py --report bench/results/X.json   # reprint tables + Markdown of a saved run

What is measured (bench/README.md has the precise definitions):

1. In this process, ``--rounds`` rounds interleaved: the standard workload
   (``vsmsim.simulate`` of ``bench/standard.toml``, full recording: every interrupt and
   VTL switch in the result's tables), then the hand-written callback reference of issue 15
   (``bench/reference.py``: the same workload by hand on SimPy, no recording, no costs) on
   the same VPs, duration and IPI rate, then the SimPy baselines with as many events as the
   workload has model actions. Interleaving spreads drift (other jobs, CPU frequency)
   evenly over workload, reference and baselines.
2. One untimed run that counts the SimPy events the engine processes.
3. Memory, each in a fresh subprocess: peak RSS and bytes per recorded interrupt.
4. Scaling: VPs at constant per-VP load and durations, each row in a fresh subprocess.

Targets are printed as PASS/MISS; they are never asserted (benchmarks are not tests).
Results are written as JSON under ``bench/results/`` (git-ignored), with a Markdown block
to paste into ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDARD = HERE / "standard.toml"
RESULTS = HERE / "results"

# The script's own directory comes first on sys.path when run as `python bench/run.py`;
# bench/profile.py would then shadow the standard library's `profile` module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

#: Pending events in the SimPy baselines (issue 7).
BASELINE_PENDING = 1024
#: The baseline's fixed delays are drawn once, uniformly from these integers (ns).
BASELINE_DELAY_NS = (1_000, 2_000)
BASELINE_SEED = 12345

#: Targets of issue 7 (this machine class, Python 3.11).
TARGET_WALL_PER_SIM_S = 1.5
TARGET_RATIO = 0.25
TARGET_PEAK_RSS_MB = 400.0
#: Issue 15: simulate's wall time at most this many times the hand-written reference's.
TARGET_REFERENCE_RATIO = 1.0
#: Issue 15: peak memory of the standard workload, long runs, VP scaling.
TARGET_PEAK_RSS_MB_15 = 250.0
TARGET_LONG_RUN_MB = 500.0
TARGET_VPS_GROWTH = 1.3
LONG_RUN_S = 60.0
#: A scaling step passes if wall time grows at most by the size factor times this (noise).
SCALING_TOLERANCE = 1.15

#: Scaling rows of the full benchmark: (VPs, simulated seconds). Big N runs shorter.
SCALING_VPS = ((4, 1.0), (16, 1.0), (64, 1.0), (256, 0.25), (1024, 0.0625))
SCALING_DURATIONS = (0.25, 0.5, 1.0, 2.0)
#: The --quick versions.
QUICK_VPS_BASE = 8
QUICK_DURATION_S = 0.02
QUICK_SCALING_VPS = ((2, 0.02), (4, 0.02), (8, 0.02))
QUICK_SCALING_DURATIONS = (0.01, 0.02)


# --------------------------------------------------------------------------- scenarios
#: The host layer's benchmark (issue 18): the standard workload's 64 VPs x 2 VTLs, 128
#: vm-per-vtl vCPU threads, over 32 CPUs placed by the fair policy.
HOSTED = {"placement": "free", "cpus": 32}


def _ipi_index(sc) -> int:
    for i, w in enumerate(sc.workload):
        if w.kind == "ipi":
            return i
    raise SystemExit(f"{STANDARD}: the standard workload has no 'ipi' workload to scale")


def variant(base, vps: int, duration_s: float):
    """The standard workload at *vps* VPs for *duration_s* simulated seconds.

    Per-VP load stays constant: timers are per VP already; the IPI rate (total, per second)
    is scaled by ``vps / base_vps`` (50,000 x N / 64 for the shipped standard workload).
    """
    i = _ipi_index(base)
    rate = base.workload[i].rate * vps / base.vm.vps
    return base.with_overrides({"vm.vps": int(vps), "duration": int(round(duration_s * 1e9)),
                                f"workload.{i}.rate": rate})


def load_standard(quick: bool):
    import vsmsim

    sc = vsmsim.load_scenario(STANDARD)
    if quick:
        sc = variant(sc, QUICK_VPS_BASE, QUICK_DURATION_S)
    return sc


def model_actions(res) -> dict:
    """Interrupts delivered (rows with a start) + VTL switches (the preemption measure).
    Without rows in memory (record.tables stream / summary): from the summary's counts."""
    if res.interrupts is None:
        s = res.summary()
        delivered = int(s.loc[s["metric"] == "delivery_n", "value"].sum())
        switches = int(s.loc[s["metric"] == "switch_count", "value"].sum())
        return {"interrupt_rows": int(res.counters["interrupts"]),
                "interrupts_delivered": delivered, "switches": switches,
                "model_actions": delivered + switches}
    delivered = int(res.interrupts["start_ns"].notna().sum())
    switches = int(len(res.switches))
    return {"interrupt_rows": int(len(res.interrupts)), "interrupts_delivered": delivered,
            "switches": switches, "model_actions": delivered + switches}


# --------------------------------------------------------------------------- baselines
def _delays(n: int) -> list[int]:
    rng = random.Random(BASELINE_SEED)
    return [rng.randint(*BASELINE_DELAY_NS) for _ in range(n)]


def baseline_callbacks(n_events: int, pending: int = BASELINE_PENDING) -> float:
    """Wall seconds for SimPy to process *n_events* timeouts, callback style.

    *pending* ``env.timeout(d_i)`` events are scheduled; each one's only callback schedules
    a new ``env.timeout(d_i)`` with the same callback, so exactly *pending* events are always
    queued. ``d_i`` is fixed per chain (see ``_delays``). The timed loop is
    ``env.step()`` called *n_events* times: one step pops and processes one timeout.
    """
    import simpy

    env = simpy.Environment()
    timeout = env.timeout
    for d in _delays(pending):
        def again(_ev, d=d):
            timeout(d).callbacks.append(again)
        timeout(d).callbacks.append(again)
    step = env.step
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n_events):
        step()
    return time.perf_counter() - t0


def baseline_processes(n_events: int, pending: int = BASELINE_PENDING) -> float:
    """Wall seconds for SimPy to process *n_events* timeouts, process style.

    *pending* processes each loop ``while True: yield env.timeout(d_i)``. Their start-up
    (one Initialize event each) is run before timing; then ``env.step()`` is called
    *n_events* times: each step pops one timeout and resumes its process, which yields the
    next timeout. This is the "bare SimPy loop of timeouts" of issue 7's figures.
    """
    import simpy

    env = simpy.Environment()

    def loop(d):
        timeout = env.timeout
        while True:
            yield timeout(d)

    for d in _delays(pending):
        env.process(loop(d))
    step = env.step
    for _ in range(pending):
        step()
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n_events):
        step()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- measurements
def time_workload(sc) -> dict:
    """One timed ``vsmsim.simulate(sc)``: wall seconds, the engine's share, model actions."""
    import vsmsim

    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    res = vsmsim.simulate(sc)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"wall_s": wall, "cpu_s": cpu, "engine_s": float(res.meta.get("wall_s", float("nan")))}
    out.update(model_actions(res))
    return out


def _reference_module():
    """bench/reference.py, loaded by path (this directory is not on sys.path, see above)."""
    import importlib.util

    mod = sys.modules.get("bench_reference")
    if mod is None:
        spec = importlib.util.spec_from_file_location("bench_reference", HERE / "reference.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["bench_reference"] = mod
    return mod


def time_reference(sc) -> dict:
    """One timed run of the hand-written reference (bench/reference.py) on *sc*'s VPs,
    duration, IPI rate and seed: wall and CPU seconds, and its counts."""
    reference = _reference_module().reference
    kw = {"vps": sc.vm.vps, "duration_ns": sc.duration,
          "ipi_rate": sc.workload[_ipi_index(sc)].rate, "seed": sc.seed}
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    counts = reference(**kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, **counts}


def count_events(sc) -> dict:
    """Run *sc* once, untimed, counting the SimPy events the engine processes.

    Nothing in the engine is replaced or slowed. Every event put on SimPy's queue, by SimPy
    itself (``Environment.schedule``) or by the engine pushing onto the clock's queue, draws
    an id from its id counter (an ``itertools.count`` starting at 0), so after the run
    the next id is the number of events scheduled; minus those still queued at the
    end (due at or after the end of the run) it is the number processed. This holds
    whether the events are processed by ``env.run`` or by a loop of the engine's own.
    Some ids are drawn for events that never reach the heap (a fused delivery keeps the id
    its unfused job end would have had), so the heap pops are counted too: the run loop's
    ``heappop`` is wrapped for this untimed run only.
    """
    from vsmsim.engine import clock as clock_mod
    from vsmsim.engine.clock import processed
    from vsmsim.engine.harvest import harvest
    from vsmsim.engine.sim import Simulation
    from vsmsim.results import Result

    sim = Simulation(sc)
    env = sim.env
    real, pops = clock_mod.heappop, [0]

    def counting(q):
        pops[0] += 1
        return real(q)

    clock_mod.heappop = counting
    try:
        sim.run()
    finally:
        clock_mod.heappop = real
    remaining = len(env.queue)
    scheduled = processed(env) + remaining
    res = Result.from_run(harvest(sim))
    out = {"scheduled": scheduled, "remaining": remaining, "simpy_events": scheduled - remaining,
           "heap_pops": pops[0]}
    out.update(model_actions(res))
    return out


def _rss_now_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_rss_kb() -> int:
    """This process's own peak RSS (kB): ``VmHWM`` of /proc/self/status, the high-water
    mark of its address space since exec. Not ``ru_maxrss``: Linux keeps that across
    exec, so a worker started by a big parent would report the parent's RSS at fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def worker(spec: dict) -> dict:
    """One measurement in this (fresh) process; the parent reads its JSON from stdout.

    spec: ``vps``/``duration_s`` (a variant; absent = the standard or quick workload),
    ``quick``, ``tracemalloc`` (measure Python-allocated peak instead of timing).
    """
    import vsmsim

    base = load_standard(spec.get("quick", False))
    sc = base if spec.get("vps") is None else variant(
        vsmsim.load_scenario(STANDARD), spec["vps"], spec["duration_s"])
    if spec.get("tables"):
        sc = sc.with_overrides({"record.tables": spec["tables"]})
    if spec.get("bytes_per_vp"):
        return {"bytes_per_vp": bytes_per_vp()}
    # Warm-up: a tiny run loads lazily imported modules and fills caches before measuring.
    vsmsim.simulate(variant(vsmsim.load_scenario(STANDARD), 2, 0.001))
    gc.collect()
    out = {"vps": sc.vm.vps, "duration_s": sc.duration / 1e9,
           "ipi_rate": sc.workload[_ipi_index(sc)].rate}
    if spec.get("tracemalloc"):
        import tracemalloc

        tracemalloc.start()
        res = vsmsim.simulate(sc)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_bytes"] = peak
        out.update(model_actions(res))
        return out
    rss_before = _rss_now_kb()
    c0, t0 = time.process_time(), time.perf_counter()
    res = vsmsim.simulate(sc)
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    out["engine_s"] = float(res.meta.get("wall_s", float("nan")))
    out["rss_before_mb"] = rss_before / 1024
    out["peak_rss_mb"] = _peak_rss_kb() / 1024
    out["table_bytes"] = (int(res.interrupts.memory_usage(deep=True).sum())
                          if res.interrupts is not None else 0)
    out.update(model_actions(res))
    return out


def bytes_per_vp(small: int = 64, large: int = 1088) -> float:
    """Python-allocated bytes per VP of a built simulation (tracemalloc), from the
    difference between the standard workload at *large* and at *small* VPs: the engine's
    per-VP state (contexts, queues, accumulators), before any event."""
    import tracemalloc

    import vsmsim
    from vsmsim.engine.sim import Simulation

    std = vsmsim.load_scenario(STANDARD)
    sizes = []
    for n in (small, large):
        sc = variant(std, n, 0.001)
        gc.collect()
        tracemalloc.start()
        sim = Simulation(sc)
        cur, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sizes.append(cur)
        del sim
    return (sizes[1] - sizes[0]) / (large - small)


def run_worker(spec: dict) -> dict:
    """Run :func:`worker` in a fresh Python process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"worker {spec} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- machine
def machine() -> dict:
    """Where the numbers were measured."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    info = {"platform": platform.platform(), "cpu": cpu, "nproc": nproc,
            "python": platform.python_version(), "implementation": platform.python_implementation()}
    try:
        import numpy
        import pandas
        import simpy

        import vsmsim

        info.update(simpy=simpy.__version__, numpy=numpy.__version__, pandas=pandas.__version__,
                    vsmsim=vsmsim.__version__)
    except ImportError:
        pass
    return info


def git_state() -> dict:
    """The commit measured and whether the tree had local changes (read-only git calls)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(status)}


# --------------------------------------------------------------------------- the benchmark
def _scaling_table(rows_in, rounds, quick, key) -> list[dict]:
    """Run each (vps, duration) row *rounds* times (rounds interleaved), keep the fastest."""
    runs = {i: [] for i in range(len(rows_in))}
    for _ in range(rounds):
        for i, (vps, dur) in enumerate(rows_in):
            runs[i].append(run_worker({"vps": vps, "duration_s": dur, "quick": quick}))
    rows = []
    for i, (vps, dur) in enumerate(rows_in):
        best = min(runs[i], key=lambda r: r["wall_s"])
        row = {"vps": vps, "duration_s": dur, "ipi_rate": best["ipi_rate"],
               "model_actions": best["model_actions"], "wall_s": best["wall_s"],
               "wall_s_all": [r["wall_s"] for r in runs[i]],
               "cpu_s": min(r["cpu_s"] for r in runs[i]),
               "wall_per_sim_s": best["wall_s"] / dur,
               "actions_per_s": best["model_actions"] / best["wall_s"],
               "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[i])}
        if rows:
            prev = rows[-1]
            # Size factor: how much more work the row asks for than the previous one.
            size = vps / prev["vps"] if key == "vps" else dur / prev["duration_s"]
            # Wall time at equal simulated time for the VP table (its durations differ).
            ratio = (row["wall_per_sim_s"] / prev["wall_per_sim_s"] if key == "vps"
                     else row["wall_s"] / prev["wall_s"])
            cpu = row["cpu_s"] / prev["cpu_s"] * (prev["duration_s"] / dur if key == "vps" else 1)
            row.update(size_factor=size, ratio_to_prev=ratio, cpu_ratio_to_prev=cpu,
                       normalized=ratio / size,
                       linear=ratio <= size * SCALING_TOLERANCE)
        rows.append(row)
    return rows


def benchmark(rounds: int, quick: bool, scaling: bool, scaling_rounds: int, log,
              long_runs: bool = False) -> dict:
    import vsmsim

    sc = load_standard(quick)
    sim_s = sc.duration / 1e9
    started = _dt.datetime.now().astimezone()
    out = {"date": started.isoformat(timespec="seconds"), "quick": quick,
           "machine": machine(), "git": git_state(), "loadavg_start": list(os.getloadavg()),
           "scenario": {"file": str(STANDARD.relative_to(ROOT)), "name": sc.name,
                        "vps": sc.vm.vps, "vtls": sc.vm.vtls, "duration_s": sim_s,
                        "design": sc.design, "costs": sc.costs.profile,
                        "ipi_rate": sc.workload[_ipi_index(sc)].rate},
           "rounds": rounds}

    log(f"warm-up, then {rounds} rounds of: workload ({sc.vm.vps} VPs, {sim_s:g} s), "
        f"hand-written reference, baselines ...")
    vsmsim.simulate(variant(sc, 2, 0.001))
    time_reference(variant(sc, 2, 0.001))
    hosted_sc = sc.with_overrides({"host": HOSTED})
    work, refs, cb, proc, hosted = [], [], [], [], []
    for r in range(rounds):
        w = time_workload(sc)
        work.append(w)
        refs.append(time_reference(sc))
        hosted.append(time_workload(hosted_sc))
        n = w["model_actions"]
        cb.append(baseline_callbacks(n))
        proc.append(baseline_processes(n))
        log(f"  round {r + 1}/{rounds}: workload {w['wall_s']:.3f} s, "
            f"reference {refs[-1]['wall_s']:.3f} s, hosted {hosted[-1]['wall_s']:.3f} s, "
            f"baseline callbacks {cb[-1]:.3f} s, processes {proc[-1]:.3f} s")
    acts = {w["model_actions"] for w in work}
    if len(acts) != 1:
        log(f"  WARNING: model actions differ between rounds: {sorted(acts)} (not deterministic?)")
    w0 = work[0]
    n = w0["model_actions"]
    walls = [w["wall_s"] for w in work]
    med = statistics.median(walls)
    std = {"sim_s": sim_s, **{k: w0[k] for k in ("interrupt_rows", "interrupts_delivered",
                                                  "switches", "model_actions")},
           "wall_s": walls, "engine_s": [w["engine_s"] for w in work],
           "wall_s_median": med, "wall_s_min": min(walls),
           "wall_per_sim_s_median": med / sim_s, "wall_per_sim_s_min": min(walls) / sim_s,
           "engine_per_sim_s_median": statistics.median(w["engine_s"] for w in work) / sim_s,
           "cpu_s": [w["cpu_s"] for w in work],
           "cpu_per_sim_s_median": statistics.median(w["cpu_s"] for w in work) / sim_s,
           "actions_per_s": n / med, "actions_per_s_best": n / min(walls)}

    log("counting SimPy events (one untimed run) ...")
    ev = count_events(sc)
    if ev["model_actions"] != n:
        log(f"  WARNING: counting run has {ev['model_actions']} model actions, timed runs {n}")
    std.update(simpy_events=ev["simpy_events"], simpy_scheduled=ev["scheduled"],
               events_per_action=ev["simpy_events"] / ev["model_actions"],
               heap_pops=ev["heap_pops"], pops_per_action=ev["heap_pops"] / ev["model_actions"])

    log("memory (fresh subprocesses) ...")
    mem = run_worker({"quick": quick})
    tm = run_worker({"quick": quick, "tracemalloc": True})
    rows = mem["interrupt_rows"]
    std.update(peak_rss_mb=mem["peak_rss_mb"], rss_before_mb=mem["rss_before_mb"],
               bytes_per_interrupt_rss=(mem["peak_rss_mb"] - mem["rss_before_mb"]) * 2**20 / rows,
               bytes_per_interrupt_traced=tm["tracemalloc_peak_bytes"] / rows,
               bytes_per_interrupt_table=mem["table_bytes"] / rows,
               wall_s_fresh_process=mem["wall_s"])
    std["bytes_per_vp"] = run_worker({"bytes_per_vp": True})["bytes_per_vp"]
    out["standard"] = std

    def base(kind, walls_b, doc):
        m = statistics.median(walls_b)
        return {"style": kind, "pending": BASELINE_PENDING, "delays_ns": list(BASELINE_DELAY_NS),
                "events": n, "wall_s": walls_b, "wall_s_median": m, "events_per_s": n / m,
                "events_per_s_best": n / min(walls_b), "definition": doc}

    out["baseline"] = base("callbacks", cb, baseline_callbacks.__doc__.split("\n\n")[1].strip())
    out["baseline_processes"] = base("processes", proc,
                                     baseline_processes.__doc__.split("\n\n")[1].strip())
    out["ratio"] = std["actions_per_s"] / out["baseline"]["events_per_s"]
    out["reference"] = reference_figures(work, refs)
    hr = [h["wall_s"] / w["wall_s"] for h, w in zip(hosted, work)]
    out["hosted"] = {"host": HOSTED, "wall_s": [h["wall_s"] for h in hosted],
                     "ratio": hr, "ratio_median": statistics.median(hr),
                     "definition": "the standard workload with this [host] section, wall time "
                                   "over the standard workload's in the same round"}
    out["ratio_processes"] = std["actions_per_s"] / out["baseline_processes"]["events_per_s"]

    if scaling:
        vps_rows = QUICK_SCALING_VPS if quick else SCALING_VPS
        dur_rows = QUICK_SCALING_DURATIONS if quick else SCALING_DURATIONS
        base_vps = QUICK_VPS_BASE if quick else sc.vm.vps
        log(f"scaling, {scaling_rounds} round(s), each row in a fresh subprocess ...")
        out["scaling"] = {
            "rounds": scaling_rounds,
            "vps": _scaling_table(vps_rows, scaling_rounds, quick, "vps"),
            "duration": _scaling_table([(base_vps, d) for d in dur_rows], scaling_rounds,
                                       quick, "duration"),
        }
    if long_runs:
        secs = 0.05 if quick else LONG_RUN_S
        log(f"long runs: {secs:g} simulated s in stream and summary mode, fresh subprocesses ...")
        out["long_runs"] = []
        for mode in ("stream", "summary"):
            r = run_worker({"vps": sc.vm.vps, "duration_s": secs, "tables": mode})
            out["long_runs"].append({"tables": mode, "duration_s": secs,
                                     "peak_rss_mb": r["peak_rss_mb"], "wall_s": r["wall_s"]})
            log(f"  {mode}: peak RSS {r['peak_rss_mb']:.0f} MB, {r['wall_s']:.0f} s")
    out["loadavg_end"] = list(os.getloadavg())
    out["elapsed_s"] = (_dt.datetime.now().astimezone() - started).total_seconds()
    out["targets"] = targets(out)
    return out


def reference_figures(work: list[dict], refs: list[dict]) -> dict:
    """The reference's wall times and the per-round ratios simulate / reference (issue 15).

    Round i's ratio is the workload's wall time of round i over the reference's of round i
    (timed right after it); *engine* uses ``res.meta["wall_s"]`` (``Simulation.run``
    alone) instead of the whole ``simulate`` call.
    """
    walls = [r["wall_s"] for r in refs]
    ratio = [w["wall_s"] / r for w, r in zip(work, walls)]
    engine = [w["engine_s"] / r for w, r in zip(work, walls)]
    r0 = refs[0]
    counts = ("delivered", "delivered_timer0", "delivered_timer1", "delivered_ipi", "switches",
              "model_actions", "coalesced", "ipis")
    return {"definition": _reference_module().__doc__.split("\n\n")[0].strip(),
            "vps": r0["vps"], "duration_ns": r0["duration_ns"], "ipi_rate": r0["ipi_rate"],
            "seed": r0["seed"], **{k: r0[k] for k in counts},
            "wall_s": walls, "cpu_s": [r["cpu_s"] for r in refs],
            "wall_s_median": statistics.median(walls), "wall_s_min": min(walls),
            "ratio": ratio, "ratio_median": statistics.median(ratio),
            "ratio_min": min(ratio), "ratio_max": max(ratio),
            "engine_ratio": engine, "engine_ratio_median": statistics.median(engine),
            "engine_ratio_min": min(engine), "engine_ratio_max": max(engine)}


def targets(out: dict) -> list[dict]:
    """The targets of issue 7, each with its value and PASS (True) or MISS (False)."""
    std = out["standard"]
    t = [
        {"target": "wall s per simulated s (median)", "value": std["wall_per_sim_s_median"],
         "limit": f"<= {TARGET_WALL_PER_SIM_S}",
         "pass": std["wall_per_sim_s_median"] <= TARGET_WALL_PER_SIM_S},
        # The baseline is "a bare SimPy loop of timeouts" (its 1.15 M events/s is
        # the process style); the callback baseline is reported beside it.
        {"target": "model actions/s / baseline events/s (processes)",
         "value": out["ratio_processes"], "limit": f">= {TARGET_RATIO}",
         "pass": out["ratio_processes"] >= TARGET_RATIO},
        {"target": "peak RSS MB", "value": std["peak_rss_mb"],
         "limit": f"<= {TARGET_PEAK_RSS_MB:g}", "pass": std["peak_rss_mb"] <= TARGET_PEAK_RSS_MB},
    ]
    t.append({"target": "peak RSS MB, full recording (issue 15)", "value": std["peak_rss_mb"],
              "limit": f"<= {TARGET_PEAK_RSS_MB_15:g}",
              "pass": std["peak_rss_mb"] <= TARGET_PEAK_RSS_MB_15})
    for r in out.get("long_runs", []):
        t.append({"target": f"peak RSS MB, {r['duration_s']:g} s in {r['tables']} mode (issue 15)",
                  "value": r["peak_rss_mb"], "limit": f"<= {TARGET_LONG_RUN_MB:g}",
                  "pass": r["peak_rss_mb"] <= TARGET_LONG_RUN_MB})
    ref = out.get("reference")  # absent in results saved before issue 15's reference
    if ref:
        t.append({"target": "standard workload <= 1.0x the hand-written reference (issue 15)",
                  "value": ref["ratio_median"], "limit": f"<= {TARGET_REFERENCE_RATIO:g}x",
                  "pass": ref["ratio_median"] <= TARGET_REFERENCE_RATIO})
    sc = out.get("scaling")
    if sc:
        steps = [r for tab in ("vps", "duration") for r in sc[tab] if "linear" in r]
        worst = max(r["normalized"] for r in steps)
        t.append({"target": "linear scaling (worst growth / size)", "value": worst,
                  "limit": f"<= {SCALING_TOLERANCE}", "pass": all(r["linear"] for r in steps)})
        by_vps = {r["vps"]: r for r in sc["vps"]}
        if 64 in by_vps and 1024 in by_vps:
            # cost per model action (wall s per action) at 1,024 VPs over that at 64
            per = {n: by_vps[n]["wall_s"] / by_vps[n]["model_actions"] for n in (64, 1024)}
            g = per[1024] / per[64]
            t.append({"target": "cost per model action, 1,024 VPs / 64 VPs (issue 15)",
                      "value": g, "limit": f"<= {TARGET_VPS_GROWTH:g}",
                      "pass": g <= TARGET_VPS_GROWTH})
    return t


# --------------------------------------------------------------------------- reports
def _table(header, rows) -> str:
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    # Text in the first column reads best left-aligned, numbers right-aligned.
    left = not all(r[0].replace(".", "").replace(",", "").isdigit() for r in cells[1:])
    line = lambda r: "  ".join(c.ljust(w) if i == 0 and left else c.rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)]
                     + [line(r) for r in cells[1:]])


def _md(header, rows) -> str:
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


def _headline_rows(out) -> list[tuple]:
    std, b, bp = out["standard"], out["baseline"], out["baseline_processes"]
    return [
        ("wall s per simulated s (median / min)",
         f"{std['wall_per_sim_s_median']:.3f} / {std['wall_per_sim_s_min']:.3f}"),
        ("  of which engine (Simulation.run), median", f"{std['engine_per_sim_s_median']:.3f}"),
        ("CPU s per simulated s (median; < wall when the machine is busy)",
         f"{std['cpu_per_sim_s_median']:.3f}"),
        ("model actions (interrupts delivered + VTL switches)",
         f"{std['model_actions']:,} ({std['interrupts_delivered']:,} + {std['switches']:,})"),
        ("model actions per s", f"{std['actions_per_s']:,.0f}"),
        ("SimPy event ids drawn per model action", f"{std['events_per_action']:.2f}"),
        ("heap pops per model action (events processed)",
         f"{std.get('pops_per_action', float('nan')):.2f}"),
        ("baseline SimPy events per s (callbacks)", f"{b['events_per_s']:,.0f}"),
        ("baseline SimPy events per s (processes)", f"{bp['events_per_s']:,.0f}"),
        ("ratio actions/s : baseline events/s (callbacks)", f"{out['ratio']:.3f}"),
        ("ratio actions/s : baseline events/s (processes)", f"{out['ratio_processes']:.3f}"),
        *_reference_rows(out),
        ("peak RSS MB (fresh process; before the run)",
         f"{std['peak_rss_mb']:.0f} ({std['rss_before_mb']:.0f})"),
        ("bytes per recorded interrupt: RSS delta / traced peak / table",
         f"{std['bytes_per_interrupt_rss']:.0f} / {std['bytes_per_interrupt_traced']:.0f} / "
         f"{std['bytes_per_interrupt_table']:.0f}"),
        ("bytes per VP of a built simulation (tracemalloc, 1,088 vs 64 VPs)",
         f"{std.get('bytes_per_vp', float('nan')):,.0f}"),
    ]


def _reference_rows(out) -> list[tuple]:
    ref = out.get("reference")
    if not ref:
        return []
    return [
        ("reference wall s (median / min; bench/reference.py)",
         f"{ref['wall_s_median']:.3f} / {ref['wall_s_min']:.3f}"),
        ("  its model actions (no costs)", f"{ref['model_actions']:,}"),
        ("simulate wall / reference wall (median; min - max)",
         f"{ref['ratio_median']:.2f} ({ref['ratio_min']:.2f} - {ref['ratio_max']:.2f})"),
        ("  engine alone / reference wall (median; min - max)",
         f"{ref['engine_ratio_median']:.2f} ({ref['engine_ratio_min']:.2f} - "
         f"{ref['engine_ratio_max']:.2f})"),
    ] + _hosted_rows(out)


def _hosted_rows(out) -> list[tuple]:
    h = out.get("hosted")
    if not h:
        return []
    return [(f"host layer on ({h['host']['placement']}, {h['host']['cpus']} CPUs) / off, "
             f"wall (median; min - max)",
             f"{h['ratio_median']:.2f} ({min(h['ratio']):.2f} - {max(h['ratio']):.2f})")]


def _scaling_rows(rows, key) -> list[tuple]:
    out = []
    for r in rows:
        first = f"{r['vps']}" if key == "vps" else f"{r['duration_s']:g}"
        rest = (f"{r['duration_s']:g}",) if key == "vps" else ()
        ratio = (f"{r['ratio_to_prev']:.2f} (x{r['size_factor']:g})" if "ratio_to_prev" in r
                 else "-")
        cpu = f"{r['cpu_ratio_to_prev']:.2f}" if "cpu_ratio_to_prev" in r else "-"
        verdict = ("-" if "linear" not in r else "PASS" if r["linear"] else "MISS")
        out.append((first, *rest, f"{r['model_actions']:,}", f"{r['wall_s']:.3f}",
                    f"{r['wall_per_sim_s']:.3f}", f"{r['actions_per_s']:,.0f}", ratio, cpu,
                    f"{r['peak_rss_mb']:.0f}", verdict))
    return out


_VPS_HDR = ("VPs", "sim s", "actions", "wall s", "wall/sim s", "actions/s", "ratio to prev",
            "CPU ratio", "peak RSS MB", "linear")
_DUR_HDR = ("sim s", "actions", "wall s", "wall/sim s", "actions/s", "ratio to prev",
            "CPU ratio", "peak RSS MB", "linear")


def _target_rows(out) -> list[tuple]:
    return [(t["target"], f"{t['value']:.3g}", t["limit"], "PASS" if t["pass"] else "MISS")
            for t in out["targets"]]


def _where(out) -> str:
    m, g = out["machine"], out["git"]
    return (f"{out['date']}, Python {m['python']}, SimPy {m.get('simpy', '?')}, "
            f"{m['cpu']} x {m['nproc']} ({m['platform']}), commit {g['commit'] or '?'}"
            f"{' + local changes' if g['dirty'] else ''}, load average "
            f"{out['loadavg_start'][0]:.2f} -> {out['loadavg_end'][0]:.2f}")


def text_report(out: dict) -> str:
    s = out["scenario"]
    parts = [f"vsmsim benchmark{' (QUICK: not the standard workload)' if out['quick'] else ''}",
             _where(out),
             f"workload {s['file']}: {s['vps']} VPs x {s['vtls']} VTLs, {s['duration_s']:g} s, "
             f"{s['design']}, {s['costs']} costs; {out['rounds']} round(s)", "",
             _table(("figure", "value"), _headline_rows(out))]
    sc = out.get("scaling")
    if sc:
        parts += ["", f"scaling in VPs at constant per-VP load (fastest of {sc['rounds']}; "
                      "ratio = wall/sim s vs previous row)",
                  _table(_VPS_HDR, _scaling_rows(sc["vps"], "vps")),
                  "", f"scaling in duration at {sc['duration'][0]['vps']} VPs "
                      f"(ratio = wall s vs previous row)",
                  _table(_DUR_HDR, _scaling_rows(sc["duration"], "duration"))]
    parts += ["", _table(("target", "value", "limit", "verdict"), _target_rows(out))]
    return "\n".join(parts)


def markdown_report(out: dict) -> str:
    """The block of bench/README.md's "Latest numbers" section."""
    s = out["scenario"]
    parts = [f"Measured {_where(out)}.",
             f"Workload `{s['file']}` ({s['vps']} VPs x {s['vtls']} VTLs, {s['duration_s']:g} s"
             f"){' **QUICK**' if out['quick'] else ''}; {out['rounds']} round(s) "
             f"(`python bench/run.py{' --quick' if out['quick'] else ''} --rounds {out['rounds']}`).",
             "",
             _md(("figure", "value"), _headline_rows(out))]
    sc = out.get("scaling")
    if sc:
        parts += ["", f"Scaling in VPs at constant per-VP load (fastest of {sc['rounds']}):", "",
                  _md(_VPS_HDR, _scaling_rows(sc["vps"], "vps")), "",
                  f"Scaling in duration at {sc['duration'][0]['vps']} VPs:", "",
                  _md(_DUR_HDR, _scaling_rows(sc["duration"], "duration"))]
    parts += ["", _md(("target", "value", "limit", "verdict"), _target_rows(out))]
    return "\n".join(parts)


README = HERE / "README.md"


def update_readme(tag: str, text: str, path: Path = README) -> None:
    """Replace what lies between ``<!-- bench:TAG -->`` and ``<!-- /bench:TAG -->``."""
    doc = path.read_text()
    start, end = f"<!-- bench:{tag} -->", f"<!-- /bench:{tag} -->"
    i, j = doc.find(start), doc.find(end)
    if i < 0 or j < i:
        raise SystemExit(f"{path}: markers {start} ... {end} not found")
    path.write_text(doc[:i + len(start)] + "\n" + text.strip() + "\n" + doc[j:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None,
                    help="timed rounds of workload + baselines (default 5; 1 with --quick)")
    ap.add_argument("--scaling-rounds", type=int, default=None,
                    help="rounds of the scaling table, fastest kept (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny version (8 VPs, 20 ms, small scaling table) for smoke tests")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    ap.add_argument("--long-runs", action="store_true",
                    help="also run 60 simulated s in record.tables stream and summary mode and "
                    "report their peak memory (about 8 minutes; 0.05 s with --quick)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file (default bench/results/<date>[-quick].json)")
    ap.add_argument("--report", type=Path, default=None,
                    help="print the tables and Markdown of a saved JSON result, run nothing")
    ap.add_argument("--update-readme", action="store_true",
                    help="also write the Markdown block into bench/README.md (between markers)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.worker is not None:
        print(json.dumps(worker(json.loads(a.worker))))
        return 0
    if a.report is not None:
        out = json.loads(a.report.read_text())
        print(text_report(out))
        print("\n--- Markdown for bench/README.md ---\n")
        print(markdown_report(out))
        if a.update_readme:
            update_readme("numbers", markdown_report(out))
        return 0

    rounds = a.rounds or (1 if a.quick else 5)
    scaling_rounds = a.scaling_rounds or (1 if a.quick else 3)
    if rounds < 1 or scaling_rounds < 1:
        ap.error("--rounds and --scaling-rounds must be at least 1")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    out = benchmark(rounds, a.quick, not a.no_scaling, scaling_rounds, log,
                    long_runs=a.long_runs)
    out["markdown"] = markdown_report(out)
    path = a.out or RESULTS / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                               + ("-quick" if a.quick else "") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(text_report(out))
    print("\n--- Markdown for bench/README.md ---\n")
    print(out["markdown"])
    print(f"\nwritten {path}")
    if a.update_readme:
        update_readme("numbers", out["markdown"])
        print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
