"""Tests for vsmsim.prototype: what does not depend on timing.

Where /dev/kvm works, a tiny prototype run (a few hundred calls, quick calibration)
checks that every design ran, that the VMMs made exactly the calls and ioctls their path
says, that the prediction used the same workload, and that the saved tables agree with
what was printed. No timing assertions: times depend on the host and its load.
"""

from __future__ import annotations

import collections
import statistics

import pandas as pd
import pytest
from conftest import kvm_mark

from vsmsim.calibrate.kvm import (
    KVM_GET_MP_STATE,
    KVM_RUN,
    open_kvm,
    path_state_ioctls,
)
from vsmsim.calibrate.placement import placement_overrides, python_overrides, slowed
from vsmsim.cli import main
from vsmsim.designs import load_design
from vsmsim.prototype import report, vmm
from vsmsim.prototype.paths import (
    PATHS,
    compile_design,
    script_counts,
    segments,
    step_segments,
    table_counts,
)

needs_kvm = kvm_mark("the prototypes")
CALLS = 200


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny run of every design at both placements."""
    from vsmsim.prototype import run_prototypes
    out = tmp_path_factory.mktemp("proto")
    res = run_prototypes(list(vmm.DESIGNS), CALLS, list(vmm.PLACEMENTS), out, quick=True,
                         repeat=1)
    return out, res


@needs_kvm
def test_every_design_ran_at_every_placement_it_can_express(tiny):
    _out, res = tiny
    ran = {(r["design"], r["placement"]) for r in res["rows"]}
    expected = {(d, p) for d in vmm.DESIGNS for p in vmm.placements_of(d)}
    assert ran == expected
    assert res["skipped"] == ["planes cross-cpu: one host thread, nothing to place on two CPUs"]
    for r in res["rows"]:
        assert r["guest_calls"] == r["vmm_calls"] == r["n"] == CALLS
        assert r["measured_p10_ns"] <= r["measured_median_ns"] <= r["measured_p90_ns"]


@needs_kvm
def test_vmm_counts_match_the_path_table(tiny):
    """The VMM's ioctls per round trip, the built-in table's count.ioctls and the
    simulator's ioctl counter on the built-in design are one number."""
    _out, res = tiny
    for r in res["rows"]:
        table = table_counts(r["design"])
        assert r["vmm_ioctls_per_call"] == table["ioctls"] == r["ioctls_per_call"]
        assert r["predicted_ioctls_per_call"] == pytest.approx(table["ioctls"])
        pred = res["predictions"][f"{r['design']}/{r['placement']}"]["prediction"]["counters"]
        assert pred.get("wakeups", 0) == pytest.approx(table.get("wakeups", 0))
        # per kind, as the table names them
        rec = next(x for x in res["records"] if (x.design, x.placement) ==
                   (r["design"], r["placement"]))
        for key, n in table.items():
            if key.startswith("ioctl_"):
                assert rec.counts[key] == n * rec.calls, (r["design"], key)


def _kinds_in_table(design):
    d = load_design(design)
    return collections.Counter(s.cost for p in PATHS for s in d.path(p)
                               if s.cost.startswith("ioctl_"))


@needs_kvm
@pytest.mark.parametrize("design,placement", [("vm-per-vtl", "cross-cpu"),
                                              ("apic-id-groups", "same-cpu"),
                                              ("planes", "same-cpu")])
def test_real_ioctl_calls_match_the_table(design, placement, monkeypatch):
    """Count every ioctl the VMM really makes (by request) and compare with the table's
    steps of each kind (the stand-ins included)."""
    calls = collections.Counter()
    real = vmm.ioctl

    def counting(fd, request, *args):
        calls[request] += 1
        return real(fd, request, *args)

    monkeypatch.setattr(vmm, "ioctl", counting)
    n = 50
    with open_kvm() as kvm:
        requests = path_state_ioctls(kvm)
        rec = vmm.run_design(kvm, design, n, placement, (0, 1) if placement == "cross-cpu"
                             else (0, 0), loops=2, warmup=0)
    setup = collections.Counter()      # one get per buffer before the first call
    scripts = compile_design(design)
    kinds = {op.kind for sc in scripts.values() for op in sc.ioctls}
    msr_sizes = {op.entries for sc in scripts.values() for op in sc.ioctls if op.kind == "msrs"}
    table = _kinds_in_table(design)
    by_request = collections.Counter()
    for key, steps in table.items():
        kind = key[len("ioctl_"):]
        if kind == "tlb_flush_inhibit":
            by_request[KVM_GET_MP_STATE] += steps * n       # the documented stand-in
            continue
        get, put = requests[kind][:2]
        ops = [op for sc in scripts.values() for op in sc.ioctls if op.kind == kind]
        assert len(ops) == steps
        by_request[get] += sum(op.direction == "get" for op in ops) * n
        by_request[put] += sum(op.direction == "set" for op in ops) * n
    for kind in kinds - {"tlb_flush_inhibit", "mp_state"}:
        get = requests[kind][0]
        setup[get] += 2 * (len(msr_sizes) if kind == "msrs" else 1)
    for req, count in by_request.items():
        assert calls[req] == count + setup.get(req, 0), hex(req)
    kicks = sum(sc.handoff == "kick_parked" for sc in scripts.values())
    threaded = all(sc.handoff for sc in scripts.values())
    # two KVM_RUN per call, the guest's final exit, and VTL1's park after each return
    assert calls[KVM_RUN] == 2 * n + 1 + (kicks * (n + 1) if threaded else 0)
    assert rec.guest_calls == n and len(rec.guest_ticks) == n


@needs_kvm
def test_prediction_is_the_builtin_design_on_the_same_workload(tiny):
    _out, res = tiny
    work = res["guest_work"]
    allowed = {"vmm_switch", "uexit", "kick_parked", "handoff_futex", "handoff_eventfd"}
    for key, pred in res["predictions"].items():
        design, placement = key.split("/")
        for which in ("prediction", "table_only"):
            sc = pred[which]["scenario"]
            assert sc["design"] == design           # the built-in table, not a variant
            assert sc["vm"] == {"vps": 1, "vtls": 2}
            (w,) = sc["workload"]
            assert w["kind"] == "vtl-call" and w["vtl"] == 0
            assert pred[which]["n"] > 10
        assert pred["table_only"]["scenario"]["costs"]["override"] == {}
        over = pred["overrides"]
        cost = res["meta"]["cost_ns"]
        pc = res["profile"]["host"]["python_call_ns"]
        (row,) = [r for r in res["rows"] if f"{r['design']}/{r['placement']}" == key]
        slow, d = row["cross_cpu_slowdown"], row["drift"]
        measured = set(res["meta"]["measured_costs"])
        rec = res["records"][list(res["predictions"]).index(key)]
        # the host speed probed before every chunk and after the last
        assert len(rec.load["probes_ns"]) == CALLS // 100 + 1
        assert d * res["meta"]["probe_ns"] == pytest.approx(
            statistics.median(rec.load["probes_ns"]))

        def at_run(c, cost=cost, d=d, measured=measured):   # at the run's host speed
            return cost[c] * (d if c in measured else 1.0)

        if placement == "same-cpu":
            # only measured costs (times the drift) and what a Python VMM adds
            assert {k for k in over if not k.startswith("ioctl_")} <= allowed | measured
            assert float(over["ioctl_regs"][:-2]) == pytest.approx(
                at_run("ioctl_regs") + pc * d, abs=1)
        else:
            # the hand-offs' cross figures; everything else of the switch slowed
            for name in {sc.handoff for sc in compile_design(design).values()}:
                assert float(over[name][:-2]) == pytest.approx(
                    at_run(f"{name}_cross") + 2 * pc * d, abs=1)
            assert float(over["ioctl_regs"][:-2]) == pytest.approx(
                (at_run("ioctl_regs") + pc * d) * slow, abs=1)
            assert float(over["exit"][:-2]) == pytest.approx(at_run("exit") * slow, abs=1)
            # measured around this run (before and after), not taken from the calibration
            assert len(rec.load["cross_cpu_slowdown_runs"]) >= 2
        w = pred["prediction"]["scenario"]["workload"][0]["service"]
        assert w == f"{round((work['vtl1'] + work['vtl0']) * slow * d)}ns"
        assert pred["table_only"]["scenario"]["workload"][0]["service"] == \
            f"{round(work['vtl1'] + work['vtl0'])}ns"


@needs_kvm
def test_segments_add_up_to_the_prediction(tiny):
    _out, res = tiny
    for r in res["rows"]:
        steps = [s for s in res["steps"] if (s["design"], s["placement"]) ==
                 (r["design"], r["placement"])]
        assert [s["segment"] for s in steps] == segments(r["design"])
        # the simulator on the built-in design = its steps priced + the guest work
        assert sum(s["predicted_ns"] for s in steps) == pytest.approx(r["predicted_ns"],
                                                                      abs=60)


@needs_kvm
def test_saved_tables_are_consistent(tiny):
    out, res = tiny
    summary = pd.read_csv(out / "prototype.csv")
    assert len(summary) == len(res["rows"])
    assert (summary.ratio - summary.predicted_ns / summary.measured_median_ns).abs().max() < 1e-9
    pq = pd.read_parquet(out / "prototype.parquet")
    assert list(pq.columns) == list(summary.columns)
    calls = pd.read_parquet(out / "calls.parquet")
    for r in res["rows"]:
        mine = calls[(calls.design == r["design"]) & (calls.placement == r["placement"])]
        assert len(mine) == r["n"]
        assert mine.roundtrip_ns.median() == pytest.approx(r["measured_median_ns"])
    seg = pd.read_csv(out / "segments.csv")
    assert len(seg) == len(res["steps"])
    assert (out / "prototype.png").stat().st_size > 0
    assert (out / "profile.toml").is_file() and (out / "run.json").is_file()
    assert not list(out.glob(".*.tmp"))


# --- everywhere ---------------------------------------------------------------------------

def test_check_band_flags_only_ratios_outside():
    rows = [{"design": d, "placement": "same-cpu", "ratio": q, "measured_median_ns": 1e5,
             "measured_p10_ns": 9e4, "measured_p90_ns": 2e5, "predicted_ns": q * 1e5}
            for d, q in (("a", 0.8), ("b", 1.25), ("c", 0.79), ("d", 1.26))]
    bad = report.check(rows)
    assert [line.split()[0] for line in bad] == ["c", "d"]
    assert "p10 90.0" in bad[0] and "p90 200.0" in bad[0]


def test_scripts_follow_the_builtin_tables():
    """What the compiler reads from the tables (no KVM needed): vm-per-vtl kicks VTL1 out
    of KVM_RUN on a call and wakes VTL0 through a futex on a return, VTL1 parks after it;
    27 + 20 ioctls, the 100-entry MSR calls; planes moves state pairwise on one thread."""
    vpv = compile_design("vm-per-vtl")
    call, ret = vpv["switch.call"], vpv["switch.return"]
    assert (call.handoff, ret.handoff) == ("kick_parked", "handoff_futex")
    assert len(call.ioctls) == 27 and len(ret.ioctls) == 20
    assert [op.vtl for op in call.before] == [0] * 9
    assert [op.direction for op in call.after] == ["get"] * 9 + ["set"] * 9
    assert {op.vtl for op in call.after} == {1}
    assert ret.before[0].kind == "tlb_flush_inhibit" and ret.before[0].vtl == 0
    assert [(op.kind, op.vtl, op.park) for op in ret.parking] == [("mp_state", 1, True)]
    assert sorted(op.entries for op in call.ioctls if op.kind == "msrs") == [1, 100, 100, 100]
    assert table_counts("vm-per-vtl")["ioctls"] == 47 == script_counts(vpv)["ioctls"]
    groups = compile_design("apic-id-groups")
    assert {sc.handoff for sc in groups.values()} == {"handoff_futex"}
    assert script_counts(groups)["ioctls"] == table_counts("apic-id-groups")["ioctls"] == 36
    planes = compile_design("planes")["switch.call"]
    assert planes.handoff == "" and not planes.after
    assert [(op.kind, op.direction, op.vtl) for op in planes.before[:2]] == \
        [("regs", "get", 0), ("regs", "set", 1)]
    assert vmm.placements_of("planes") == ("same-cpu",)
    assert vmm.placements_of("vm-per-vtl") == vmm.PLACEMENTS


def test_step_segments_cover_every_charged_step():
    for design in vmm.DESIGNS:
        d = load_design(design)
        charged = collections.Counter()
        for p in PATHS:
            for s in d.path(p):
                charged[s.cost] += s.times if isinstance(s.times, int) else 1
        seen = collections.Counter()
        for steps in step_segments(design).values():
            for cost, times in steps:
                seen[cost] += times if isinstance(times, int) else 1
        assert seen == charged


def test_placement_overrides():
    cost = {"kick_parked_cross": 20.0, "handoff_futex_cross": 17.0,
            "handoff_eventfd_cross": 18.0, "wake_cold_cross": 10.0, "ioctl_regs": 4.0,
            "exit": 2.0}
    assert placement_overrides(cost, "same-cpu") == {}
    assert placement_overrides(cost, "cross-cpu") == {
        "kick_parked": 20.0, "handoff_futex": 17.0, "handoff_eventfd": 18.0}
    # the work between hand-offs slowed, the hand-offs not; an override wins over the profile
    assert slowed({"ioctl_regs": 5.0, "kick_parked": 20.0, "vmm_switch": 1.0}, cost,
                  {"ioctl_regs", "exit", "kick_parked", "handoff_futex"}, 1.5) == {
        "ioctl_regs": 7.5, "exit": 3.0, "kick_parked": 20.0, "vmm_switch": 1.5}
    with pytest.raises(ValueError):
        placement_overrides(cost, "moon")
    py = python_overrides({"ioctl_regs": 5.0, "kick_parked": 30.0, "exit": 1.0}, 0.5, 7.0,
                          {"ioctl_regs", "kick_parked", "exit"})
    assert py == {"ioctl_regs": 5.5, "kick_parked": 31.0, "vmm_switch": 7.0}


@pytest.mark.parametrize("argv,field", [
    (["--designs", "nope"], "--designs"),
    (["--calls", "0"], "--calls"),
    (["--calls", "many"], "--calls"),
    (["--placement", "moon"], "--placement"),
    (["--service", "fast"], "--service"),
])
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys, tmp_path):
    rc = main(["prototype", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_drift_scales_every_measured_cost_and_only_those():
    from vsmsim.calibrate.drift import drift
    from vsmsim.prototype.core import placed_work, prediction_overrides
    assert drift([110.0, 130.0, 120.0], 100.0) == pytest.approx(1.2)
    assert drift([], 100.0) == drift([120.0], 0.0) == 1.0
    cost = {"ioctl_regs": 4000.0, "ioctl_sregs": 4000.0, "ioctl_fpu": 4000.0,
            "ioctl_xcrs": 4000.0, "ioctl_debugregs": 4000.0, "uexit": 8000.0,
            "exit": 500.0, "vtl_state_switch": 1.0, "vmm_switch": 1000.0}
    measured = set(cost) - {"exit", "vmm_switch"}
    one = prediction_overrides("planes", "same-cpu", cost, 400.0, 700.0, 1.0, 1.0, measured)
    two = prediction_overrides("planes", "same-cpu", cost, 400.0, 700.0, 1.0, 2.0, measured)
    assert one["ioctl_regs"] == 4400.0 and two["ioctl_regs"] == 8800.0   # (cost + call) x 2
    assert two["vmm_switch"] == 1400.0                                   # the VMM's own too
    assert "exit" not in two                                             # a default: as is
    assert one["vtl_state_switch"] == 1.0                    # measured: overridden, x 1
    assert two["vtl_state_switch"] == 2.0
    work = {"vtl0": 1000.0, "vtl1": 9000.0, "service": 6000.0}
    assert placed_work(work, "same-cpu", 1.5, 2.0) == {"vtl0": 2000.0, "vtl1": 18000.0,
                                                      "service": 6000.0}
    assert placed_work(work, "cross-cpu", 1.5, 2.0)["vtl1"] == 27000.0


def test_cross_cpu_runs_are_chunked_and_merged():
    from vsmsim.prototype.core import chunk_count
    assert chunk_count(5000) == 50 and chunk_count(99) == 1 and chunk_count(250) == 2

    def rec(n, warm, base):
        return vmm.RunRecord("apic-id-groups", "cross-cpu", n, warm,
                             [base + i for i in range(n)], {"call.exit": [base] * n},
                             {"ioctls": 36 * n}, n + warm, [7] * n, (0, 1),
                             {"switch.call": "handoff_futex"})
    m = vmm.merge_records([rec(3, 20, 0), rec(2, 5, 100)])
    assert m.calls == 5 and m.guest_ticks == [0, 1, 2, 100, 101]
    assert m.stamps["call.exit"] == [0, 0, 0, 100, 100]
    assert m.counts == {"ioctls": 180}
    assert m.guest_calls - m.warmup == 5          # what the summary reports as kept calls
    other = vmm.RunRecord("planes", "same-cpu", 1, 0, [1], {"call.exit": [1]}, {}, 1, [1],
                          (0, 0))
    with pytest.raises(ValueError):
        vmm.merge_records([m, other])
