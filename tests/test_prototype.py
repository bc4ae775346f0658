"""Tests for vsmsim.prototype: what does not depend on timing.

Where /dev/kvm works, a tiny prototype run (a few hundred calls, quick calibration)
checks that every design ran, that the VMMs made exactly the calls and ioctls their path
says, that the prediction used the same workload, and that the saved tables agree with
what was printed. No timing assertions: times depend on the host and its load.
"""

from __future__ import annotations

import collections
import platform

import pandas as pd
import pytest

from vsmsim.calibrate.kvm import KVM_RUN, STATE_IOCTLS, KvmUnavailable, open_kvm
from vsmsim.cli import main
from vsmsim.designs import load_design
from vsmsim.prototype import report, vmm
from vsmsim.prototype.paths import path_totals, prototype_path, segments, variant


def _kvm_reason() -> str | None:
    if platform.machine() not in ("x86_64", "AMD64", "amd64"):
        return f"the prototypes need x86-64, this is {platform.machine()}"
    try:
        open_kvm().close()
    except KvmUnavailable as e:
        return str(e)
    return None


needs_kvm = pytest.mark.skipif(_kvm_reason() is not None, reason=str(_kvm_reason()))
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
    expected = {(d, p) for d in vmm.DESIGNS for p in vmm.DESIGN_PLACEMENTS[d]}
    assert ran == expected
    assert res["skipped"] == ["planes cross-cpu: one host thread, nothing to place on two CPUs"]
    for r in res["rows"]:
        assert r["guest_calls"] == r["vmm_calls"] == r["n"] == CALLS
        assert r["measured_p10_ns"] <= r["measured_median_ns"] <= r["measured_p90_ns"]


@needs_kvm
def test_vmm_counts_match_the_path(tiny):
    _out, res = tiny
    for r in res["rows"]:
        totals = path_totals(prototype_path(r["design"], r["placement"], "eventfd"))
        # the VMM's own count, the path's, and the simulator's on the variant design
        assert r["vmm_ioctls_per_call"] == totals["count.ioctls"] == r["ioctls_per_call"]
        assert r["predicted_ioctls_per_call"] == pytest.approx(totals["count.ioctls"])
        pred = res["predictions"][f"{r['design']}/{r['placement']}"]["variant"]["counters"]
        assert pred.get("kicks", 0) == pytest.approx(totals.get("count.kicks", 0))
        assert pred.get("wakeups", 0) == pytest.approx(totals.get("count.wakeups", 0))
    expected = {"vm-per-vtl": 4 * 6 + 2, "apic-id-groups": 4 * 4 + 2, "planes": 4}
    for r in res["rows"]:
        assert r["ioctls_per_call"] == expected[r["design"]]


@needs_kvm
@pytest.mark.parametrize("design,placement", [("vm-per-vtl", "cross-cpu"),
                                              ("apic-id-groups", "same-cpu"),
                                              ("planes", "same-cpu")])
def test_real_ioctl_calls_match_the_path(design, placement, monkeypatch):
    """Count every ioctl the VMM makes (by request) and compare with the path."""
    calls = collections.Counter()
    real = vmm.ioctl

    def counting(fd, request, *args):
        calls[request] += 1
        return real(fd, request, *args)

    monkeypatch.setattr(vmm, "ioctl", counting)
    n = 50
    with open_kvm() as kvm:
        rec = vmm.run_design(kvm, design, n, placement, (0, 1) if placement == "cross-cpu"
                             else (0, 0), loops=2, warmup=0)
    totals = path_totals(prototype_path(design, placement))
    for kind in {"vm-per-vtl": vmm.SHARED_KINDS, "apic-id-groups": vmm.GROUP_KINDS,
                 "planes": ("regs",)}[design]:
        get, put = STATE_IOCTLS[kind][:2]
        assert calls[get] + calls[put] == totals[f"ioctl_{kind}"] * n
        assert calls[get] == calls[put]
    threaded = design != "planes"
    mp = STATE_IOCTLS["mp_state"][1]
    # +1: VTL1's first park; KVM_RUN +1 for the guest's final exit (+1 the last park)
    assert calls[mp] == (totals["ioctl_mp_state"] * n + 1 if threaded else 0)
    kicks = totals.get("count.kicks", 0) * n
    assert calls[KVM_RUN] == totals["kvm_run_roundtrip"] * n + kicks + 1 + (1 if threaded else 0)
    assert rec.guest_calls == n and len(rec.guest_ticks) == n


@needs_kvm
def test_prediction_used_the_same_workload(tiny):
    _out, res = tiny
    work = res["guest_work"]
    services = set()
    for key, pred in res["predictions"].items():
        design, placement = key.split("/")
        for which in ("variant", "builtin"):
            sc = pred[which]["scenario"]
            assert sc["vm"] == {"vps": 1, "vtls": 2}
            (w,) = sc["workload"]
            assert w["kind"] == "vtl-call" and w["vtl"] == 0
            services.add(w["service"])
            assert pred[which]["n"] > 10
        assert pred["builtin"]["scenario"]["design"] == design
        var = load_design(pred["design_file"])
        path = prototype_path(design, placement)
        for name in ("switch.call", "switch.return"):
            assert [(s.cost, s.times) for s in var.paths[name]] == \
                   [(s.cost, s.times) for s in path[name]]
        # the variant changes only the switch paths of the built-in design
        base = load_design(design)
        assert {k: v for k, v in var.paths.items() if not k.startswith("switch.c")
                and k != "switch.return"} == \
               {k: v for k, v in base.paths.items() if not k.startswith("switch.c")
                and k != "switch.return"}
    assert services == {f"{round(work['vtl1'] + work['vtl0'])}ns"}


@needs_kvm
def test_segments_add_up_to_the_prediction(tiny):
    _out, res = tiny
    for r in res["rows"]:
        steps = [s for s in res["steps"] if (s["design"], s["placement"]) ==
                 (r["design"], r["placement"])]
        assert [s["segment"] for s in steps] == segments(r["design"])
        # the simulator on the variant = the path's steps priced + the guest work
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


def test_variant_replaces_only_the_switch_paths():
    var = variant("vm-per-vtl", "cross-cpu", "futex")
    costs = [s.cost for s in var.paths["switch.return"]]
    assert "handoff_futex_cross" in costs and "first_run_after_migration" in costs
    assert "kick_parked_cross" in [s.cost for s in var.paths["switch.call"]]
    same = variant("vm-per-vtl", "same-cpu")
    assert "first_run_after_migration" not in [s.cost for s in same.paths["switch.call"]]
    assert var.paths["deliver.halted"] == load_design("vm-per-vtl").paths["deliver.halted"]


@pytest.mark.parametrize("argv,field", [
    (["--designs", "nope"], "--designs"),
    (["--calls", "0"], "--calls"),
    (["--calls", "many"], "--calls"),
    (["--placement", "moon"], "--placement"),
    (["--handoff", "pigeon"], "--handoff"),
    (["--service", "fast"], "--service"),
])
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys, tmp_path):
    rc = main(["prototype", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
