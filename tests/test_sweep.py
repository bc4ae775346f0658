"""Sweeps (issue 6): grid, seeds, executors, failures, resume after a kill, the CLI.

Scenarios here are tiny (2 VPs, a few ms) so the whole file stays fast; what is checked is
the bookkeeping, not the model.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vsmsim
import vsmsim.api
from vsmsim.cli import main as cli_main
from vsmsim.errors import InputError
from vsmsim.stats import t_quantile
from vsmsim.sweep import metric_column, parse_grid, replication_seed, sweep

SPEC = {
    "name": "tiny-sweep",
    "seed": 11,
    "duration": "4ms",
    "vm": {"vps": 2},
    "workload": [
        {"kind": "compute", "vtl": 0},
        {"kind": "timer", "vtl": 1, "period": "500us", "service": {"dist": "exp", "mean": "3us"}},
        {"kind": "ipi", "vtl": 0, "rate": 20000},
    ],
}
GRID = {"vm.vps": [2, 3], "design": ["vm-per-vtl", "planes"]}
REPS = 3


@pytest.fixture(scope="module")
def scenario():
    return vsmsim.Scenario.model_validate(SPEC)


@pytest.fixture(scope="module")
def serial(scenario):
    return sweep(scenario, grid=GRID, replications=REPS, executor="serial")


def same_table(a, b):
    pd.testing.assert_frame_equal(a.runs.drop(columns="wall_s"), b.runs.drop(columns="wall_s"))


# ---------------------------------------------------------------- seeds and the table
def test_seed_rule():
    assert replication_seed(11, 0) == 11
    seeds = [replication_seed(11, r) for r in range(6)]
    assert len(set(seeds)) == 6
    assert seeds == [replication_seed(11, r) for r in range(6)]
    assert seeds[1] == int(np.random.SeedSequence([11, 1]).generate_state(1)[0])
    assert replication_seed(12, 1) != seeds[1]


def test_runs_table_shape_and_seeds(serial, scenario):
    runs = serial.runs
    assert len(runs) == 4 * REPS
    assert list(runs.columns[:8]) == ["point", "vm.vps", "design", "replication", "seed",
                                      "status", "error", "wall_s"]
    assert (runs["status"] == "ok").all() and (runs["error"] == "").all()
    assert runs[["point", "replication"]].to_numpy().tolist() == \
        [[p, r] for p in range(4) for r in range(REPS)]
    # the last grid key varies fastest
    assert runs.drop_duplicates("point")[["vm.vps", "design"]].to_numpy().tolist() == \
        [[2, "vm-per-vtl"], [2, "planes"], [3, "vm-per-vtl"], [3, "planes"]]
    # seeds: the scenario's for replication 0, different across replications, and the
    # same replication has the same seed at every point (common random numbers)
    for _, g in runs.groupby("point"):
        assert g["seed"].tolist() == [replication_seed(11, r) for r in range(REPS)]
    for col in ("delivery_p99[timer,vtl1]", "residency[vtl0]", "residency[transition]",
                "exits_per_s", "switch_mean[interrupt]", "count[ipi,vtl0]"):
        assert col in serial.metrics, col
    assert serial.units["delivery_p99[timer,vtl1]"] == "ns"
    assert serial.units["residency[vtl0]"] == "share"
    # replications differ (the exponential timer service is drawn per seed)
    first = runs[runs["point"] == 0]["response_mean[timer,vtl1]"]
    assert first.nunique() == REPS
    # replication 0 is exactly a plain simulate() of that point
    res = vsmsim.simulate(scenario.with_overrides({"vm.vps": 2, "design": "vm-per-vtl"}))
    s = res.summary()
    row = s[(s["metric"] == "response_mean") & (s["kind"] == "timer")]
    assert float(row["value"].iloc[0]) == first.iloc[0]


def test_reproducible(serial, scenario):
    same_table(serial, sweep(scenario, grid=GRID, replications=REPS, executor="serial"))


def test_points_and_confidence_intervals(serial):
    pts = serial.points
    assert len(pts) == 4
    assert (pts["n"] == REPS).all() and (pts["failed"] == 0).all()
    runs = serial.runs
    for m in serial.metrics:
        mean, lo, hi = pts[m], pts[f"{m}_ci_low"], pts[f"{m}_ci_high"]
        defined = lo.notna() & hi.notna()
        assert ((lo <= mean + 1e-9) & (mean <= hi + 1e-9))[defined].all(), m
        # an interval is undefined only where fewer than 2 replications have the metric
        # (e.g. a wake-up of a halted VP that happened in one replication only)
        n_with = runs.groupby("point")[m].count().reindex(pts["point"]).to_numpy()
        assert (n_with[~defined.to_numpy()] < 2).all(), m
    m = "response_mean[timer,vtl1]"
    vals = serial.runs.loc[serial.runs["point"] == 0, m].to_numpy()
    half = t_quantile(0.975, REPS - 1) * vals.std(ddof=1) / np.sqrt(REPS)
    assert pts.loc[0, f"{m}_ci_high"] == pytest.approx(vals.mean() + half)
    long = serial.aggregate(long=True)
    assert set(long.columns) >= {"point", "vm.vps", "design", "metric", "unit", "mean",
                                 "ci_low", "ci_high"}
    assert len(long) == 4 * len(serial.metrics)


def test_t_quantile():
    assert t_quantile(0.975, 1) == pytest.approx(12.706204736174705, rel=1e-9)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729749464, rel=1e-9)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764451051977987, rel=1e-9)
    assert t_quantile(0.975, 1000) == pytest.approx(1.9623390808264078, rel=1e-9)


def test_metric_column_names():
    assert metric_column("delivery_p99", "timer", 1) == "delivery_p99[timer,vtl1]"
    assert metric_column("residency", "vtl0", 0) == "residency[vtl0]"
    assert metric_column("residency", "idle", -1) == "residency[idle]"
    assert metric_column("exits_per_s", "", -1) == "exits_per_s"
    assert metric_column("vtl0_tax", "", 0) == "vtl0_tax"


# ---------------------------------------------------------------- executors
def test_process_executor_same_table(serial, scenario):
    for workers in (1, 2):
        res = sweep(scenario, grid=GRID, replications=REPS, executor="process", workers=workers)
        same_table(serial, res)
        assert res.executor == "process" and res.workers == workers


def test_dask_local_cluster_same_table(serial, scenario):
    pytest.importorskip("distributed")
    res = sweep(scenario, grid=GRID, replications=REPS, executor="dask", workers=2)
    same_table(serial, res)


def test_dask_missing_is_input_error(scenario, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError, match=r"pip install 'vsmsim\[dask\]'"):
        sweep(scenario, grid={"vm.vps": [2]}, executor="dask", out=tmp_path / "sw")
    assert not (tmp_path / "sw").exists()


# ---------------------------------------------------------------- input errors
@pytest.mark.parametrize("grid, words", [
    ({"vm.vpz": [2]}, ["vm.vpz", "vpz"]),
    ({"vm.vps": [2, 0]}, ["vm.vps=0"]),
    ({"design": ["planes", "no-such-design"]}, ["design='no-such-design'"]),
    ({"vm.vps": []}, ["vm.vps", "no values"]),
    ({"vm.vps": [2, 2]}, ["vm.vps", "twice"]),
    ({"workload.1.vps": ["0-3"]}, ["workload.1.vps", "'0-3'"]),
])
def test_bad_grid_fails_before_running(scenario, grid, words, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("nothing may run before the grid is valid")

    monkeypatch.setattr(vsmsim.api, "simulate", boom)
    with pytest.raises(InputError) as e:
        sweep(scenario, grid=grid, executor="serial", out=tmp_path / "sw")
    for w in words:
        assert w in str(e.value)
    assert not (tmp_path / "sw").exists()


def test_bad_arguments(scenario):
    with pytest.raises(InputError, match="replications"):
        sweep(scenario, grid={}, replications=0, executor="serial")
    with pytest.raises(InputError, match="executor"):
        sweep(scenario, grid={}, executor="threads")
    with pytest.raises(InputError, match="scheduler"):
        sweep(scenario, grid={}, executor="process", scheduler="tcp://localhost:8786")


# ---------------------------------------------------------------- failures
def test_failing_point_keeps_the_others(scenario, tmp_path, monkeypatch, capsys):
    real = vsmsim.api.simulate

    def flaky(sc, **kw):
        if sc.vm.vps == 3 and sc.design == "planes":
            raise RuntimeError("engine exploded")
        return real(sc, **kw)

    monkeypatch.setattr(vsmsim.api, "simulate", flaky)
    out = tmp_path / "sw"
    res = sweep(scenario, grid=GRID, replications=2, executor="serial", out=out, progress=True)
    assert "failed=2" in capsys.readouterr().err  # the tqdm bar's postfix
    bad = res.runs[res.runs["status"] == "error"]
    assert len(bad) == 2 and (bad["point"] == 3).all() and res.failed == 2
    assert "RuntimeError: engine exploded" in bad["error"].iloc[0]
    assert "Traceback" in bad["error"].iloc[0]
    assert bad["delivery_p99[timer,vtl1]"].isna().all()
    assert (res.runs.loc[res.runs["point"] != 3, "status"] == "ok").all()
    pts = res.points
    assert pts.loc[3, "n"] == 0 and pts.loc[3, "failed"] == 2
    assert "2 failed" in res.summary_line
    back = pd.read_parquet(out / "runs.parquet")
    assert len(back) == 8 and (back["status"] == "error").sum() == 2
    assert len(pd.read_csv(out / "points.csv")) == 4
    assert len(list((out / "runs").glob("*.json"))) == 8
    # started again: the good runs are reused, the failed ones run again (and now pass)
    monkeypatch.setattr(vsmsim.api, "simulate", real)
    again = sweep(scenario, grid=GRID, replications=2, executor="serial", out=out)
    assert (again.reused, again.ran, again.failed) == (6, 2, 0)


def raising_program(ctx):
    """A guest program that fails on VP 1 (importable from worker processes)."""
    if ctx.vp == 1:
        raise RuntimeError(f"guest bug on vp {ctx.vp}")
    yield ctx.run("10us")


def test_failing_run_in_worker_process(tmp_path):
    spec = dict(SPEC, workload=SPEC["workload"] + [
        {"kind": "program", "vtl": 0, "vps": [0], "program": raising_program}])
    sc = vsmsim.Scenario.model_validate(spec)
    res = sweep(sc, grid={"workload.3.vps": [[0], [1]]}, replications=1, executor="process",
                workers=2, out=tmp_path / "sw")
    assert res.runs["status"].tolist() == ["ok", "error"]
    assert "guest bug on vp 1" in res.runs["error"].iloc[1]
    assert (tmp_path / "sw" / "runs.parquet").is_file()  # list-valued grid column saved


def test_unportable_program_needs_serial(tmp_path):
    def local_program(ctx):
        yield ctx.run("10us")

    spec = dict(SPEC, workload=SPEC["workload"] + [
        {"kind": "program", "vtl": 0, "program": local_program}])
    sc = vsmsim.Scenario.model_validate(spec)
    with pytest.raises(InputError, match="executor='serial'"):
        sweep(sc, grid={"vm.vps": [2]}, executor="process", out=tmp_path / "sw")
    assert not (tmp_path / "sw").exists()
    assert sweep(sc, grid={"vm.vps": [2]}, executor="serial").failed == 0


# ---------------------------------------------------------------- resume after a kill
SLOW_TOML = """
name = "resume"
seed = 5
duration = "60ms"
[vm]
vps = 4
[[workload]]
kind = "compute"
vtl = 0
[[workload]]
kind = "timer"
vtl = 1
period = "1ms"
service = "5us"
[[workload]]
kind = "ipi"
vtl = 0
rate = 50000
"""
KILL_GRID = ["--grid", "vm.vps=2,3,4,5,6", "--grid", "design=vm-per-vtl,planes,apic-id-groups"]
KILL_REPS = 2


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resume_after_kill(tmp_path, sig):
    scen = tmp_path / "resume.toml"
    scen.write_text(SLOW_TOML)
    out = tmp_path / "sw"
    cmd = [sys.executable, "-m", "vsmsim", "sweep", str(scen), *KILL_GRID,
           "--replications", str(KILL_REPS), "--executor", "process", "--workers", "2",
           "--out", str(out)]
    # Its own session, so that the signal reaches the whole group as from a terminal.
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "runs").glob("*.json"))) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no run finished in 60 s"
            time.sleep(0.01)
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of ours is left in the group
        except ProcessLookupError:
            pass
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in err, err
    else:
        assert proc.returncode == -signal.SIGKILL
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    total = 5 * 3 * KILL_REPS
    assert 3 <= len(finished) < total
    assert not list((out / "runs").glob(".*.tmp")) or sig == signal.SIGKILL
    assert not (out / "runs.parquet").exists()
    plan = json.loads((out / "sweep.json").read_text())
    assert len(plan["points"]) == 15

    sc = vsmsim.load_scenario(scen)
    grid = parse_grid([KILL_GRID[1], KILL_GRID[3]])
    res = sweep(sc, grid=grid, replications=KILL_REPS, executor="process", workers=2, out=out)
    print(f"resume after {sig.name}: {res.reused} reused, {res.ran} redone of {total}")
    assert res.reused == len(finished)
    assert res.reused + res.ran == total and len(res.runs) == total
    assert (res.runs["status"] == "ok").all()
    for name, mtime in finished.items():  # nothing finished was run or written again
        assert (out / "runs" / name).stat().st_mtime_ns == mtime
    assert f"{res.reused} reused" in res.summary_line
    assert (out / "runs.parquet").is_file() and (out / "points.csv").is_file()


# ---------------------------------------------------------------- command line
def test_parse_grid():
    g = parse_grid(["vm.vps=4,16,64", "design=planes,vm-per-vtl", "workload.1.vps=[0,1],[2]",
                    "vm.apicv=true,false", "costs.override.uexit=6us,8000"])
    assert g == {"vm.vps": [4, 16, 64], "design": ["planes", "vm-per-vtl"],
                 "workload.1.vps": [[0, 1], [2]], "vm.apicv": [True, False],
                 "costs.override.uexit": ["6us", 8000]}
    for bad in (["vm.vps"], ["vm.vps=4,"], ["vm.vps=4", "vm.vps=8"]):
        with pytest.raises(InputError):
            parse_grid(bad)


def test_cli_sweep_and_plot(tmp_path, capsys):
    scen = tmp_path / "tiny.toml"
    scen.write_text(SLOW_TOML.replace('"60ms"', '"3ms"').replace("vps = 4", "vps = 2"))
    out = tmp_path / "sw"
    args = ["sweep", str(scen), "--grid", "vm.vps=2,3", "--grid", "design=planes,vm-per-vtl",
            "--replications", "2", "--executor", "serial", "--out", str(out)]
    metric = "delivery_p99[timer,vtl1]"
    assert cli_main(args + ["--plot", metric]) == 0
    text = capsys.readouterr().out
    assert "8 runs (4 points x 2 replications): 8 ran, 0 reused, 0 failed" in text
    assert str(out) in text
    assert (out / "delivery_p99-timer-vtl1.png").stat().st_size > 1000
    assert cli_main(args) == 0
    assert "0 ran, 8 reused" in capsys.readouterr().out
    assert cli_main(args + ["--plot", "no_such_metric"]) == 2
    assert "no metric column" in capsys.readouterr().err
    assert cli_main(args[:2] + ["--grid", "vm.vps=2,0", "--out", str(out)]) == 2
    assert "vm.vps=0" in capsys.readouterr().err
    assert Path(out / "sweep.json").is_file()
