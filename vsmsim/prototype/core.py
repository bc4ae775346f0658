"""Predict, then measure: calibrate, measure the guest work, run the prototypes, predict.

:func:`run_prototypes` does the whole thing in one process, in this order, so that the
prediction uses only what was measured apart from the prototypes:

1. ``vsmsim calibrate`` (quick or full): the cost profile, written to ``DIR/profile.toml``;
2. the guest work on its own (:func:`vsmsim.prototype.predict.measure_guest_work`);
3. each design's prototype at each placement: N round trips, timed by the guest and the VMM;
4. the simulator on the same workload, with the prototype's path as a design variant
   (``DIR/designs/*.toml``) and with the built-in path table, under that profile.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from .. import calibrate
from ..calibrate import host
from ..calibrate import profile as cal_profile
from ..calibrate.kvm import open_kvm
from ..calibrate.measure import cpu_pair, quantile
from ..designs import dump_design
from . import predict, report
from .paths import path_totals, predicted_segments, prototype_path, variant
from .vmm import DESIGN_PLACEMENTS, run_design


def _stats(values) -> dict:
    return {"median": statistics.median(values), "p10": quantile(values, 0.1),
            "p90": quantile(values, 0.9), "n": len(values)}


def run_prototypes(designs, calls: int, placements, out: Path, handoff: str = "eventfd",
                   quick: bool = False, service_ns: float = 6000.0, repeat: int = 3,
                   progress=None) -> dict:
    """Run everything (see the module doc); return ``rows`` (summary), ``steps``
    (segments), ``records`` (per design/placement :class:`~vsmsim.prototype.vmm.RunRecord`),
    ``predictions``, ``guest_work``, ``profile`` (file data), ``skipped`` and ``files``.

    *progress* is called with one line per stage (the CLI prints them)."""
    say = progress or (lambda _line: None)
    out = Path(out)
    load0 = host.load_state(interval_s=0.3)
    say(f"calibrating ({'quick' if quick else 'full'}; load average {load0['load']})")
    data, _rows = calibrate.calibrate_data(repeat=repeat, quick=quick)
    prof_path = cal_profile.write_atomic(out / "profile.toml", cal_profile.to_toml(data))
    prof = cal_profile.to_profile(data)
    cost_ns = {k: prof.mean(k) for k in prof.costs}
    python_call = data["host"]["python_call_ns"]
    clock = data["host"]["clock_pair_ns"]
    tsc = data["host"]["guest_tsc_mhz"]
    cost_ns["vmm_switch"] = python_call   # the Python VMM's per-call overhead (see paths)
    overrides = {"vmm_switch": f"{round(python_call)}ns"}
    pair = cpu_pair() or (0, 0)
    with open_kvm() as kvm:
        loops = predict.pick_loops(kvm, service_ns, tsc)
        work = predict.measure_guest_work(kvm, loops, tsc, clock, python_call,
                                          cost_ns["kvm_run_roundtrip"], repeat=repeat)
        say(f"guest work measured apart: VTL1 {work['vtl1'] / 1e3:.2f} us per call (its timed "
            f"loop {work['service'] / 1e3:.2f} us, {loops} iterations), VTL0 "
            f"{work['vtl0'] / 1e3:.2f} us inside its rdtsc window")
        records, skipped = [], []
        for design in designs:
            for placement in placements:
                if placement not in DESIGN_PLACEMENTS[design]:
                    skipped.append(f"{design} {placement}: one host thread, nothing to place "
                                   "on two CPUs")
                    continue
                if placement == "cross-cpu" and pair[0] == pair[1]:
                    skipped.append(f"{design} {placement}: this process has one CPU")
                    continue
                say(f"running {design} {placement} ({calls} calls)")
                rec = run_design(kvm, design, calls, placement, pair, loops, handoff)
                rec.load = {"tsc_mhz": tsc, "load": host.load_state(interval_s=0.0)["load"]}
                records.append(rec)
    designs_dir = out / "designs"
    rows, steps, predictions, frames = [], [], {}, []
    guest_work = work["vtl1"] + work["vtl0"]
    for rec in records:
        key = f"{rec.design}/{rec.placement}"
        var = variant(rec.design, rec.placement, handoff)
        var_path = cal_profile.write_atomic(designs_dir / f"{var.name}.toml", dump_design(var))
        pred = predict.simulate_roundtrip(var_path, prof_path, overrides, guest_work)
        builtin = predict.simulate_roundtrip(rec.design, prof_path, {}, guest_work)
        predictions[key] = {"variant": pred, "builtin": builtin, "design_file": str(var_path)}
        rt = [t / tsc * 1e3 for t in rec.guest_ticks]
        m = _stats(rt)
        first = "exit0"
        last = "moved1" if rec.design == "planes" else "set0"
        vmm = [b - a for a, b in zip(rec.stamps[first], rec.stamps[last])]
        totals = path_totals(prototype_path(rec.design, rec.placement, handoff))
        rows.append({
            "design": rec.design, "placement": rec.placement, "handoff": rec.handoff or "-",
            "measured_median_ns": m["median"], "measured_p10_ns": m["p10"],
            "measured_p90_ns": m["p90"], "n": m["n"],
            "vmm_median_ns": statistics.median(vmm),
            "predicted_ns": pred["median"], "ratio": pred["median"] / m["median"],
            "builtin_predicted_ns": builtin["median"],
            "builtin_ratio": builtin["median"] / m["median"],
            "guest_calls": rec.guest_calls - rec.warmup, "vmm_calls": rec.calls,
            "ioctls_per_call": totals.get("count.ioctls", 0),
            "vmm_ioctls_per_call": sum(v for k, v in rec.counts.items()
                                       if k.startswith("ioctl_") or k == "mp_state") / rec.calls,
            "predicted_ioctls_per_call": pred["counters"].get("ioctls", 0.0),
            "service_ns": work["service"], "guest_work_ns": guest_work,
            "cpus": f"{rec.cpus[0]},{rec.cpus[1]}", "load": rec.load["load"],
        })
        seg_meas = predict.measured_segments(rec)
        seg_pred = predicted_segments(rec.design, rec.placement, handoff, cost_ns, work)
        for name, vals in seg_meas.items():
            med = statistics.median(vals)
            steps.append({"design": rec.design, "placement": rec.placement, "segment": name,
                          "measured_ns": med, "predicted_ns": seg_pred[name],
                          "ratio": seg_pred[name] / med if med > 0 else float("nan")})
        frame = pd.DataFrame({"design": rec.design, "placement": rec.placement,
                              "call": range(rec.calls), "roundtrip_ns": rt,
                              "vmm_ns": vmm,
                              "service_ns": [t / tsc * 1e3 for t in rec.service_ticks]})
        frames.append(frame)
    load1 = host.load_state(interval_s=0.0)
    meta = {"load_before": load0, "load_after": load1, "host": data["host"],
            "guest_work": work, "calls": calls, "handoff": handoff, "quick": quick,
            "skipped": skipped, "cost_ns": cost_ns,
            "predictions": {k: {"variant_median_ns": v["variant"]["median"],
                                "builtin_median_ns": v["builtin"]["median"],
                                "design_file": v["design_file"],
                                "scenario": v["variant"]["scenario"]}
                            for k, v in predictions.items()}}
    calls_df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    files = report.save(out, rows, steps, calls_df, meta) if rows else []
    if rows:
        files += report.plot(rows, out)
    return {"rows": rows, "steps": steps, "records": records, "predictions": predictions,
            "guest_work": work, "profile": data, "skipped": skipped, "files": files,
            "meta": meta}
