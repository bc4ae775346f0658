"""Determinism, result files, the summary, and the invariant checker itself."""

import json

import pandas as pd
import pytest
from conftest import run

import vsmsim

MIXED = {"name": "mixed", "duration": "20ms", "warmup": "2ms", "seed": 11,
         "vm": {"vps": 8, "vtls": 2, "cross_vtl_ipi_up": True},
         "context": [{"vtl": 1, "vina": {"vector": 0x31}}],
         "workload": [{"kind": "compute", "vtl": 0},
                      {"kind": "timer", "vtl": 0, "period": "250us", "service": "2us"},
                      {"kind": "timer", "vtl": 1, "period": "1ms", "service": "20us"},
                      {"kind": "ipi", "vtl": 0, "rate": 50000,
                       "service": {"dist": "exp", "mean": "1us"}},
                      {"kind": "external", "rate": 5000, "service": {"dist": "lognormal",
                                                                      "median": "3us", "sigma": 0.5}},
                      {"kind": "vtl-call", "vtl": 0, "rate": 2000, "service": "8us"},
                      {"kind": "pv-ipi", "vtl": 0, "target_vtl": 1, "rate": 1000}]}


def test_same_scenario_and_seed_give_identical_tables():
    a, b = run(MIXED), run(MIXED)
    pd.testing.assert_frame_equal(a.interrupts, b.interrupts)
    pd.testing.assert_frame_equal(a.switches, b.switches)
    pd.testing.assert_frame_equal(a.residency, b.residency)
    assert a.counters == b.counters
    c = run({**MIXED, "seed": 12})
    assert not a.interrupts["raised_ns"].equals(c.interrupts["raised_ns"])


def test_every_interrupt_is_kept_and_consistent():
    res = run(MIXED)
    df = res.interrupts
    warmup = int(res.scenario["warmup"])
    assert res.counters["interrupts"] == int((df["raised_ns"] >= warmup).sum())  # measured
    pending = df["start_ns"].isna()
    assert (df.loc[~pending, "start_ns"] >= df.loc[~pending, "raised_ns"]).all()
    assert (df["raised_ns"] >= df["arrival_ns"]).all()
    assert set(df["kind"].astype(str)) >= {"timer", "ipi", "external", "vtl-call", "pv-ipi"}


def test_save_and_load_round_trip(tmp_path):
    res = run(MIXED)
    out = res.save(tmp_path / "r")
    assert sorted(p.name for p in out.iterdir()) == ["interrupts.parquet", "manifest.json",
                                                     "residency.parquet", "summary.csv",
                                                     "switches.parquet"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["vm"]["vps"] == 8 and manifest["seed"] == 11
    assert manifest["vsmsim_version"] == vsmsim.__version__ and manifest["wall_s"] > 0
    back = vsmsim.load_result(out)
    pd.testing.assert_frame_equal(back.interrupts, res.interrupts)
    pd.testing.assert_frame_equal(back.switches, res.switches)
    pd.testing.assert_frame_equal(back.summary(), res.summary())
    vsmsim.check(back)
    # saving again over it replaces it whole; no temporary directories are left behind
    res.save(out)
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_summary_excludes_warmup_and_reports_pending():
    res = run(MIXED)
    s = res.summary().set_index(["metric", "kind", "vtl"])["value"]
    measured = res.interrupts[res.interrupts.raised_ns >= 2_000_000]
    t1 = measured[(measured.kind == "timer") & (measured.vtl == 1)]
    assert s[("count", "timer", 1)] == len(t1) == 8 * 18
    assert s[("delivery_p50", "timer", 1)] == t1["delivery_ns"].astype(float).median()
    share = s.xs("residency", level="metric").sum()
    assert share == pytest.approx(1.0)
    assert res.residency["total_ns"].eq(18_000_000).all()


def test_program_context_api():
    log = []

    def secure_service(ctx):
        while True:
            req = yield ctx.next_call()
            log.append(("call", ctx.now, req.service))
            yield ctx.run(req.service)
            yield ctx.vtl_return()

    def guest_thread(ctx):
        for _ in range(3):
            yield ctx.run("100us")
            t = ctx.now
            yield ctx.vtl_call(service="8us")
            log.append(("back", t, ctx.now))
            ctx.send_ipi(dest=1, vector=0xFB)

    res = run({"duration": "1ms", "costs": "ideal", "vm": {"vps": 2, "vtls": 2},
               "workload": [{"kind": "program", "vtl": 0, "vps": [0], "program": guest_thread},
                            {"kind": "program", "vtl": 1, "vps": [0], "program": secure_service},
                            {"kind": "compute", "vtl": 0, "vps": [1]}]})
    backs = [e for e in log if e[0] == "back"]
    assert [(b[1], b[2]) for b in backs] == [(100_000, 108_000), (208_000, 216_000),
                                            (316_000, 324_000)]
    calls = res.interrupts[res.interrupts.kind == "vtl-call"]
    assert list(calls.start_ns) == [100_000, 208_000, 316_000]
    assert list(calls.end_ns) == [108_000, 216_000, 324_000]
    ipis = res.interrupts[res.interrupts.kind == "ipi"]
    assert list(ipis.raised_ns) == [108_000, 216_000, 324_000] and (ipis.vp == 1).all()
    r0 = res.residency.set_index("vp").loc[0]
    assert (r0.task0_ns, r0.task1_ns) == (300_000, 24_000)  # program work done per VTL


def test_check_catches_broken_tables():
    res = run(MIXED)
    broken = vsmsim.Result(**{**res.__dict__})
    sw = res.switches.copy()
    i = sw.index[sw.reason == "return"][0]
    sw.loc[i, "reason"] = "interrupt"  # a lower VTL 'preempting' a higher one
    broken.switches = sw
    with pytest.raises(AssertionError, match="preempted a higher one"):
        vsmsim.check(broken)
    irq = res.interrupts.copy()
    j = irq.index[irq.end_ns.notna()][0]
    irq.loc[j, "end_ns"] = irq.loc[j, "start_ns"]  # ended before its service was done
    broken.switches = res.switches
    broken.interrupts = irq
    problems = vsmsim.check(broken, raise_on_error=False)
    assert any("negative remaining work" in p for p in problems)


def test_progress_slices_do_not_change_results():
    seen = []
    a = vsmsim.simulate(MIXED, progress=lambda done, total: seen.append((done, total)))
    b = vsmsim.simulate(MIXED)
    pd.testing.assert_frame_equal(a.interrupts, b.interrupts)
    pd.testing.assert_frame_equal(a.switches, b.switches)
    assert seen[-1] == (20_000_000, 20_000_000) and len(seen) >= 100


def test_vsm_off_twin_of_a_program_scenario_runs_and_gives_a_tax():
    def guest(ctx):
        while True:
            yield ctx.run("100us")
            yield ctx.vtl_call(service="5us")

    sc = {"duration": "5ms", "vm": {"vps": 2},
          "workload": [{"kind": "program", "vtl": 0, "program": guest}]}
    res = vsmsim.simulate(sc, baseline=True)
    off = vsmsim.simulate(vsmsim.vsm_off(vsmsim.Scenario.model_validate(sc)))
    assert len(off.interrupts) == 0 and len(off.switches) == 0  # calls cost nothing there
    assert res.meta["vtl0_tax"] > 0
