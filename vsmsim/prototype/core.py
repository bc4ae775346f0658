"""Predict, then measure: calibrate, measure the guest work, run the prototypes, predict.

:func:`run_prototypes` does the whole thing in one process, in this order, so that the
prediction uses only what was measured apart from the prototypes:

1. ``vsmsim calibrate`` (quick or full): the cost profile, written to ``DIR/profile.toml``;
2. the guest work and the Python VMM's own switch work, each on its own
   (:mod:`vsmsim.prototype.predict`);
3. each design's prototype at each placement: N round trips, timed by the guest and the VMM;
4. the simulator on the same workload with the **built-in** design under that profile,
   with cost overrides for only what the prototype adds: the Python VMM's call overhead
   and, across CPUs, the cross-CPU hand-off figures
   (:mod:`vsmsim.calibrate.placement`).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from .. import calibrate
from ..calibrate import drift, host
from ..calibrate import paths as cal_paths
from ..calibrate import profile as cal_profile
from ..calibrate.kvm import open_kvm
from ..calibrate.measure import cpu_pair, quantile
from ..calibrate.placement import placement_overrides, python_overrides, slowed
from ..designs import load_design
from . import predict, report
from .paths import PATHS, compile_design, script_counts, table_counts
from .vmm import merge_records, placements_of, run_design


def _stats(values) -> dict:
    return {"median": statistics.median(values), "p10": quantile(values, 0.1),
            "p90": quantile(values, 0.9), "n": len(values)}


def _switch_costs(design: str) -> set[str]:
    d = load_design(design)
    return {s.cost for p in PATHS for s in d.path(p)}


def prediction_overrides(design: str, placement: str, cost_ns: dict, python_call: float,
                         vmm_switch: float, slowdown: float = 1.0, drift: float = 1.0,
                         measured=()) -> dict[str, float]:
    """Cost overrides (ns) of the prediction: each of the *measured* costs (the ones the
    calibration set) times *drift* (the host's speed during the measurement against the
    calibration's, :mod:`vsmsim.calibrate.drift`), then the placement, then the Python VMM
    (its ``python_call`` and ``vmm_switch`` times *drift* too), then (across CPUs) the
    work between hand-offs times *slowdown* (``cross_cpu_slowdown``)."""
    costs = _switch_costs(design)
    base = {k: (v * drift if k in measured else v) for k, v in cost_ns.items()}
    moved = placement_overrides(base, placement)
    placed = {**base, **moved}
    out = {c: base[c] for c in costs if c in measured}
    out.update(moved)
    out.update(python_overrides(placed, python_call * drift, vmm_switch * drift, costs))
    if placement == "cross-cpu":
        out = slowed(out, base, costs, slowdown)
    return out


def placed_work(work: dict, placement: str, slowdown: float, drift: float = 1.0) -> dict:
    """The guest work measured apart (priced at the calibration's speed), as it runs at
    *placement* and host speed *drift* (across CPUs the guest's KVM_RUN is slower by
    *slowdown* too)."""
    f = drift * (slowdown if placement == "cross-cpu" else 1.0)
    return {k: (v * f if k in ("vtl0", "vtl1") else v) for k, v in work.items()}


#: Calls per run of an interleaved measurement (at least one run).
CHUNK_CALLS = 100


def chunk_count(calls: int) -> int:
    """Runs a measurement of *calls* round trips is split into."""
    return max(1, calls // CHUNK_CALLS)


def _interleaved(kvm, design: str, calls: int, placement: str, pair, loops: int, chunks: int,
                 probe):
    """A prototype measured in *chunks* runs, each right after one host-speed probe
    (:class:`~vsmsim.calibrate.drift.SpeedProbe`) and, across CPUs, one measurement of
    ``cross_cpu_slowdown`` (both once more at the end); returns the merged record, the
    probes (ns) and the slowdown values.

    On this project's nested host the speed changes from one second to the next (the same
    nine state ioctls: 51 us in one run, 65 us in the next; consecutive 300-call cross-CPU
    runs of one prototype: 0.95-1.48x its same-CPU time), so a prediction is only
    comparable with a measurement of the same moments: the probe and the slowdown figure
    sample the same stretch of time as the prototype, interleaved, as the benchmark
    interleaves a workload with its baseline. The prototype still never feeds the
    prediction: both figures come from their own fixed work."""
    probes, around, recs = [], [], []
    base, extra = divmod(calls, chunks)
    cross = placement == "cross-cpu"
    where = pair if cross else pair[:1]      # the CPUs the prototype's threads run on
    for i in range(chunks):
        probes.append(probe.measure_on(where))
        if cross:
            around += _slowdown(kvm, pair)
        n = base + (1 if i < extra else 0)
        recs.append(run_design(kvm, design, n, placement, pair, loops,
                               warmup=20 if i == 0 else 5))
    probes.append(probe.measure_on(where))
    if cross:
        around += _slowdown(kvm, pair)
    return merge_records(recs), probes, around


def _slowdown(kvm, pair) -> list[float]:
    """``cross_cpu_slowdown`` measured now (one run of its blocks)."""
    figs = cal_paths.measure_cross_slowdown(kvm, 1, pair)
    return list(figs[0].values) if figs else []


def run_prototypes(designs, calls: int, placements, out: Path, quick: bool = False,
                   service_ns: float = 6000.0, repeat: int = 3, progress=None) -> dict:
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
    measured = set(data["costs"])          # what the calibration set (the rest: defaults)
    python_call = data["host"]["python_call_ns"]
    clock = data["host"]["clock_pair_ns"]
    tsc = data["host"]["guest_tsc_mhz"]
    slowdown = data["host"].get("cross_cpu_slowdown", 1.0)
    vmm_switch = predict.measure_vmm_switch(repeat=repeat)
    pair = cpu_pair() or (0, 0)
    probe_calibrated = data["host"].get("probe_ns", 0.0)
    with open_kvm() as kvm, drift.SpeedProbe(kvm) as probe:
        loops = predict.pick_loops(kvm, service_ns, tsc)
        work_probes = []                    # guest work runs unpinned, as the calibration
        work = predict.measure_guest_work(kvm, loops, tsc, clock, python_call,
                                          cost_ns["kvm_run_roundtrip"], repeat=repeat,
                                          between=lambda: work_probes.append(probe.measure()))
        # the guest work was measured at its own moment: priced back to the calibration's
        # (least disturbed runs of the work against the least disturbed probe, as the
        # calibration's figures against its probe)
        work_drift = min(work_probes) / probe_calibrated if probe_calibrated else 1.0
        fixed = cost_ns["kvm_run_roundtrip"] + python_call   # subtracted from each
        work = {k: ((v + fixed) / work_drift - fixed if k in ("vtl0", "vtl1") else v)
                for k, v in work.items()}
        work["drift"] = work_drift
        say(f"guest work measured apart: VTL1 {work['vtl1'] / 1e3:.2f} us per call (its timed "
            f"loop {work['service'] / 1e3:.2f} us, {loops} iterations), VTL0 "
            f"{work['vtl0'] / 1e3:.2f} us inside its rdtsc window; the Python VMM's "
            f"vmm_switch {vmm_switch:.0f} ns")
        records, skipped = [], []
        for design in designs:
            for placement in placements:
                if placement not in placements_of(design):
                    skipped.append(f"{design} {placement}: one host thread, nothing to place "
                                   "on two CPUs")
                    continue
                if placement == "cross-cpu" and pair[0] == pair[1]:
                    skipped.append(f"{design} {placement}: this process has one CPU")
                    continue
                k = chunk_count(calls)
                also = " and a cross_cpu_slowdown measurement" if placement == "cross-cpu" else ""
                say(f"running {design} {placement} ({calls} calls in {k} runs, each after a "
                    f"host-speed probe{also})")
                rec, probes, around = _interleaved(kvm, design, calls, placement, pair, loops,
                                                   k, probe)
                rec.load = {"tsc_mhz": tsc, "load": host.load_state(interval_s=0.0)["load"],
                            "probes_ns": probes,
                            "drift": drift.drift(probes, probe_calibrated)}
                if around:
                    rec.load["cross_cpu_slowdown"] = statistics.median(around)
                    rec.load["cross_cpu_slowdown_runs"] = around
                records.append(rec)
    rows, steps, predictions, frames = [], [], {}, []
    for rec in records:
        key = f"{rec.design}/{rec.placement}"
        slow = rec.load.get("cross_cpu_slowdown", slowdown)
        speed = rec.load.get("drift", 1.0)
        over = prediction_overrides(rec.design, rec.placement, cost_ns, python_call, vmm_switch,
                                    slow, speed, measured)
        over_spec = {k: f"{max(0, round(v))}ns" for k, v in over.items()}
        placed = placed_work(work, rec.placement, slow, speed)
        guest_work = placed["vtl1"] + placed["vtl0"]
        pred = predict.simulate_roundtrip(rec.design, prof_path, over_spec, guest_work)
        plain = predict.simulate_roundtrip(rec.design, prof_path, {}, work["vtl1"] + work["vtl0"])
        predictions[key] = {"prediction": pred, "table_only": plain, "overrides": over_spec}
        rt = [t / tsc * 1e3 for t in rec.guest_ticks]
        m = _stats(rt)
        vmm = [b - a for a, b in zip(rec.stamps["call.exit"], rec.stamps["return.run"])]
        table = table_counts(rec.design)
        rows.append({
            "design": rec.design, "placement": rec.placement,
            "handoffs": "/".join(h or "-" for h in rec.handoffs.values()),
            "measured_median_ns": m["median"], "measured_p10_ns": m["p10"],
            "measured_p90_ns": m["p90"], "n": m["n"],
            "vmm_median_ns": statistics.median(vmm),
            "predicted_ns": pred["median"], "ratio": pred["median"] / m["median"],
            "table_only_ns": plain["median"],
            "table_only_ratio": plain["median"] / m["median"],
            "guest_calls": rec.guest_calls - rec.warmup, "vmm_calls": rec.calls,
            "ioctls_per_call": table.get("ioctls", 0),
            "vmm_ioctls_per_call": rec.counts["ioctls"] / rec.calls,
            "predicted_ioctls_per_call": pred["counters"].get("ioctls", 0.0),
            "service_ns": work["service"], "guest_work_ns": guest_work,
            "cpus": f"{rec.cpus[0]},{rec.cpus[1]}", "load": rec.load["load"],
            "cross_cpu_slowdown": slow if rec.placement == "cross-cpu" else 1.0,
            "drift": speed,
        })
        priced = dict(cost_ns)
        priced.update({k: float(v[:-2]) for k, v in over_spec.items()})
        seg_meas = predict.measured_segments(rec)
        seg_pred = predict.predicted_segments(rec.design, priced, placed)
        for name, vals in seg_meas.items():
            med = statistics.median(vals)
            steps.append({"design": rec.design, "placement": rec.placement, "segment": name,
                          "measured_ns": med, "predicted_ns": seg_pred[name],
                          "ratio": seg_pred[name] / med if med > 0 else float("nan")})
        frames.append(pd.DataFrame({
            "design": rec.design, "placement": rec.placement, "call": range(rec.calls),
            "roundtrip_ns": rt, "vmm_ns": vmm,
            "service_ns": [t / tsc * 1e3 for t in rec.service_ticks]}))
    load1 = host.load_state(interval_s=0.0)
    meta = {"load_before": load0, "load_after": load1, "host": data["host"],
            "guest_work": work, "vmm_switch_ns": vmm_switch, "calls": calls, "quick": quick,
            "skipped": skipped, "cost_ns": cost_ns, "cross_cpu_slowdown": slowdown,
            "probe_ns": probe_calibrated, "measured_costs": sorted(measured),
            "scripts": {d: {p: str(sc) for p, sc in compile_design(d).items()}
                        for d in {r.design for r in records}},
            "script_counts": {d: script_counts(compile_design(d))
                              for d in {r.design for r in records}},
            "predictions": {k: {"median_ns": v["prediction"]["median"],
                                "table_only_median_ns": v["table_only"]["median"],
                                "overrides": v["overrides"],
                                "scenario": v["prediction"]["scenario"]}
                            for k, v in predictions.items()}}
    calls_df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    files = report.save(out, rows, steps, calls_df, meta) if rows else []
    if rows:
        files += report.plot(rows, out)
    return {"rows": rows, "steps": steps, "records": records, "predictions": predictions,
            "guest_work": work, "vmm_switch_ns": vmm_switch, "profile": data,
            "skipped": skipped, "files": files, "meta": meta}
