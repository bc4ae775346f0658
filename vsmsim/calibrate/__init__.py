"""Calibrate vsmsim's cost profile from the real KVM of this host.

The calibration creates tiny real-mode VMs through ``/dev/kvm`` with nothing but the
standard library (``fcntl.ioctl``, ``mmap``), times userspace exits, in-kernel exits,
interrupts to halted and running vCPUs and host wake-ups, and writes a cost profile
(``base = "default"``) that scenarios can name with ``costs = "path/to/host.toml"``.
See ``docs/calibration.md`` for what each figure is and how it maps to cost names.

Python interface::

    from vsmsim.calibrate import calibrate, format_table
    profile, table = calibrate(repeat=5, quick=False)   # CostProfile, list of row dicts
    print(format_table(table))

Command line (wired by ``vsmsim.cli``): :func:`add_arguments` and :func:`run`.
The device is ``$VSMSIM_KVM_DEVICE`` if set, else ``/dev/kvm``.
"""

from __future__ import annotations

import argparse
import platform
import sys

from . import drift, host, measure, paths
from . import profile as _profile
from .kvm import DEVICE_ENV, KvmError, KvmUnavailable, Vm, device_path, open_kvm

__all__ = [
    "DEFAULT_OUT",
    "DEVICE_ENV",
    "KvmError",
    "KvmUnavailable",
    "add_arguments",
    "calibrate",
    "calibrate_data",
    "format_table",
    "run",
]

#: Where ``vsmsim calibrate`` writes the profile unless ``--out`` says otherwise.
DEFAULT_OUT = "results/calibration/host.toml"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--out FILE``, ``--repeat N`` and ``--quick`` to *parser*."""
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help=f"cost profile to write (default: {DEFAULT_OUT})")
    parser.add_argument("--repeat", type=_positive_int, default=5, metavar="N",
                        help="runs per measurement; the table shows median, p10, p90 over "
                             "runs (default: 5)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller batches: about a second, noisier figures")


def calibrate_data(repeat: int = 5, quick: bool = False) -> tuple[dict, list[dict]]:
    """Measure this host; return (profile data in file form, table rows).

    Raises :class:`KvmUnavailable` (one-line message) if there is no usable KVM device,
    and :class:`KvmError` if a guest misbehaves.
    """
    if repeat < 1:
        raise ValueError(f"repeat = {repeat} must be at least 1")
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64", "amd64"):
        raise KvmUnavailable(f"calibration runs x86-64 guests; this host is {machine}")
    plan = measure.Plan.quick() if quick else measure.Plan()
    path_plan = paths.PathPlan.quick() if quick else paths.PathPlan()
    facts = host.detect()
    before = host.load_state(interval_s=0.1 if quick else 0.5)
    figures: dict[str, measure.Figure] = {}
    with open_kvm() as kvm:
        figures["ioctl_trivial"] = measure.measure_trivial_ioctl(kvm, repeat, plan)
        with Vm(kvm) as vm:
            vcpu = vm.create_vcpu()
            figures["ioctl_get_regs"] = measure.measure_get_regs(vcpu, repeat, plan)
            figures["kvm_run_io"] = measure.measure_uexit_roundtrip(vm, repeat, plan)
            figures["tsc_mhz"] = measure.measure_tsc_mhz(vm, repeat, plan)
        tsc = figures["tsc_mhz"].median
        if not 10 < tsc < 20_000:
            raise KvmError(f"guest TSC rate {tsc:.4g} MHz is not plausible; cannot time "
                           "guest code")
        with Vm(kvm, irqchip=True) as vm:
            vm.create_vcpu()
            ops = measure.measure_guest_ops(vm, tsc, repeat, plan)
        figures["guest_insn"] = ops.pop("empty")
        for fig in ops.values():
            figures[fig.key] = fig
        pair = measure.cpu_pair()
        for idle in ("halt", "spin"):
            figures[f"vcpu_irq_{idle}"] = measure.measure_vcpu_irq(kvm, idle, repeat, plan, pair)
        figures.update(measure_paths(kvm, repeat, path_plan, pair))
    figures["wakeup_threads"] = measure.measure_thread_pingpong(repeat, plan, pair)
    placements = {"wakeup_same_cpu": (pair[0], pair[0]) if pair else None}
    if pair:
        placements["wakeup_cross_cpu"] = pair
    for key, cpus in placements.items():
        fig = measure.measure_process_pingpong(repeat, plan, cpus, key)
        if fig is not None:
            figures[key] = fig
    facts["kvm_device"] = device_path()
    after = host.load_average()
    settings = {"repeat": repeat, "quick": quick, "load_before": before["load"],
                "idle_before": before.get("idle", -1.0), "busy": before["busy"],
                "load_after": " ".join(f"{x:.2f}" for x in after) if after else "unknown"}
    return _profile.build({k: v for k, v in figures.items() if v is not None}, facts, settings)


def measure_paths(kvm, repeat: int, plan, pair) -> dict:
    """The per-path figures of :mod:`vsmsim.calibrate.paths` (clock and Python-call
    overheads first, then state ioctls, KVM_RUN, hand-offs, kicks, MSIs, first runs).

    Must run on the main thread (the kick figures install a signal handler)."""
    with drift.SpeedProbe(kvm) as probe:
        # The host's speed while the figures a switch is mostly made of were measured
        # (drift.py): probed before the overheads, before each state-ioctl kind and after
        # KVM_RUN; the least disturbed probe goes with the least disturbed figures.
        probes = [probe.measure()]
        ov, clock_fig, call_fig = paths.measure_overheads(repeat, plan)
        out = {"clock_pair": clock_fig, "python_call": call_fig}
        out.update(paths.measure_state_ioctls(
            kvm, ov, repeat, plan, lambda _kind: probes.append(probe.measure())))
        out["kvm_run_roundtrip"] = paths.measure_kvm_run(kvm, ov, repeat, plan)
        probes.append(probe.measure())
    out["host_probe"] = measure.Figure(
        "host_probe", probes, "the host-speed probe (vsmsim/calibrate/drift.py: one thread's "
        "switch work on one vCPU, ~20 syscalls), before the Python-call figure, before and "
        "after each state-ioctl kind and after KVM_RUN; the least disturbed (lowest) is "
        "recorded as probe_ns", per_run=f"each: median of {drift.ROUNDS} rounds")
    for mech in paths.MECHANISMS:
        for cross, busy in ((False, False), (True, False), (True, True)):
            fig = paths.measure_handoff(mech, cross, ov, repeat, plan, pair, busy)
            if fig is not None:
                out[fig.key] = fig   # the _busy ones are reported, not costs
    for cross in (False, True):
        for fn in (paths.measure_kick, paths.measure_msi):
            fig = fn(kvm, cross, ov, repeat, plan, pair)
            if fig is not None:
                out[fig.key] = fig
    fig = paths.measure_kick(kvm, True, ov, repeat, plan, pair, polled=True)
    if fig is not None:
        out[fig.key] = fig     # reported: the kick inside the halt-poll window
    fig = paths.measure_first_run(kvm, ov, repeat, plan, pair)
    if fig is not None:
        out[fig.key] = fig
    figs = paths.measure_cross_slowdown(kvm, repeat, pair)
    for fig in figs or ():
        out[fig.key] = fig
    out["vcpu_switch"] = paths.measure_vcpu_switch(kvm, ov, repeat, plan)
    return out


def calibrate(repeat: int = 5, quick: bool = False):
    """Measure this host; return ``(CostProfile, table)``.

    ``table`` is a list of dicts, one per measured or derived figure, with keys
    ``figure``, ``cost`` (the cost name it sets, or ``""``), ``median``, ``p10``,
    ``p90`` (ns, or ``unit``), ``n`` (runs), ``unit``, ``per_run`` and ``what``;
    ``pandas.DataFrame(table)`` turns it into a frame. Raises :class:`KvmUnavailable`
    without a usable KVM device.
    """
    data, rows = calibrate_data(repeat, quick)
    return _profile.to_profile(data), rows


def _cell(value: float, unit: str) -> str:
    if unit != "ns":
        return f"{value:.6g} {unit}"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3f} ms"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3f} us"
    return f"{value:.1f} ns"


def format_table(rows: list[dict]) -> str:
    """The calibration table as aligned text: figure, cost, median, p10, p90, n, what."""
    head = ("figure", "cost", "median", "p10", "p90", "n", "what")
    body = [(r["figure"], r["cost"] or "-", _cell(r["median"], r["unit"]),
             _cell(r["p10"], r["unit"]), _cell(r["p90"], r["unit"]), str(r["n"]), r["what"])
            for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(6)]
    right = {2, 3, 4, 5}

    def line(cells):
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
               enumerate(zip(cells[:6], widths))]
        return "  ".join(out + [cells[6]])

    return "\n".join([line(head)] + [line(b) for b in body])


def run(args) -> int:
    """Run the calibration for the command line: print the table, write the profile.

    Returns 0 on success, 2 (one line on stderr) without a usable KVM device, 1 if a
    measurement failed.
    """
    out = getattr(args, "out", DEFAULT_OUT)
    repeat = getattr(args, "repeat", 5)
    quick = getattr(args, "quick", False)
    try:
        data, rows = calibrate_data(repeat, quick)
        text = _profile.to_toml(data)
        _profile.to_profile(data)
    except KvmUnavailable as e:
        print(f"vsmsim calibrate: {e}", file=sys.stderr)
        return 2
    except (KvmError, OSError) as e:
        print(f"vsmsim calibrate: measurement failed: {e}", file=sys.stderr)
        return 1
    facts = data["host"]
    print(f"host: {host.describe(facts)}")
    print(f"load average before {facts.get('load_before')}, after {facts.get('load_after')}; "
          f"CPU idle before {facts.get('idle_before')}")
    warning = host.busy_warning({"busy": facts.get("busy"), "load": facts.get("load_before"),
                                 "idle": facts.get("idle_before")})
    if warning:
        print(warning)
    if "python_call_ns" in facts:
        print(f"subtracted from every host-timed figure: the clock pair "
              f"({facts['clock_pair_ns']} ns) and Python's call into a syscall "
              f"({facts['python_call_ns']} ns) once per Python call")
    if facts.get("emulated"):
        print(f"guest code: EMULATED ({facts.get('guest_ns_per_instruction')} ns per simple "
              "instruction; native is ~1 ns): in-guest timings measure KVM's instruction "
              "emulator, so exit and kick keep their defaults")
    else:
        print(f"guest code: native ({facts.get('guest_ns_per_instruction')} ns per simple "
              "instruction)")
    print()
    print(format_table(rows))
    print()
    unmeasured = [k for k in data["notes"] if k not in data["costs"]]
    print("costs set: " + ", ".join(f"{k} = {v}" for k, v in data["costs"].items()))
    print("defaults kept (not measured here): " + ", ".join(unmeasured))
    try:
        path = _profile.write_atomic(out, text)
    except OSError as e:
        print(f"vsmsim calibrate: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
