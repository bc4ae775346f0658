"""Turn measured figures into a vsmsim cost profile (``base = "default"``) and a table.

Mapping (all values in ns; "paired" means run *i* of one figure minus run *i* of another):

==========  ==============================================================================
cost        measured as
==========  ==============================================================================
``ioctl``   KVM_GET_REGS on a vCPU fd from Python (includes the Python call)
``exit``    guest-timed CPUID loop minus the empty loop, per CPUID (only if the guest runs
            natively; otherwise the default is kept)
``uexit``   KVM_RUN round trip to userspace minus a trivial ioctl (the Python call and
            syscall) minus ``exit``, so that ``exit + uexit`` is the measured round trip
``wakeup``  one-way pipe ping-pong between two processes pinned to two different CPUs
            (threads if no child process could be started; one CPU if there is only one)
            minus a trivial ioctl (one Python call per hop)
``kick``    interrupt to a running vCPU, KVM_IRQ_LINE to KVM_RUN return, minus the raw
            KVM_RUN round trip (only if the guest runs natively)
==========  ==============================================================================

When the per-path figures of :mod:`vsmsim.calibrate.paths` are present (``python_call``
among them), every host-timed cost is net of the same overheads (the timer, and
``python_call`` once per Python call that makes a syscall) and taken from the least
disturbed run: ``kvm_run``, ``ioctl_<kind>`` (mean of the get and the set), the
``handoff_*``, ``kick_parked*``, ``msi_halted`` and ``first_run_after_migration`` costs;
``ioctl`` becomes KVM_GET_REGS net of the Python call, ``uexit`` is ``kvm_run - exit``,
``wakeup`` the cross-CPU process ping-pong net of two Python calls per hop, and
``ioctl_tlb_flush_inhibit`` (no such ioctl in stock KVM) the plainest vCPU ioctl,
KVM_GET/SET_MP_STATE.

Every other cost keeps the default, with a note saying so and why.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from .._toml import toml as tomllib
from ..atomic import atomic_text
from ..costs import COST_NAMES, CostProfile, load_profile, profile_from_dict
from .host import describe
from .measure import EMULATION_THRESHOLD_NS, Figure, derived
from .paths import STATE_KINDS, least_disturbed

#: Why costs without a measurement keep their default.
UNMEASURED_WHY = {
    "exit": "needs guest code that runs natively",
    "kick": "needs guest code that runs natively",
    "map_lookup": "an in-kernel APIC routing step, not separable from userspace",
    "scan_per_vcpu": "an in-kernel APIC routing step, not separable from userspace",
    "posted_delivery": "needs APICv/AVIC and a protected-mode guest with an enabled LAPIC",
    "ipiv_send": "needs IPI virtualization and a protected-mode guest with an enabled LAPIC",
    "timer_expiry": "needs a LAPIC timer in the guest; the real-mode calibration guest has none",
    "vtl_state_switch": "its stock-KVM stand-in (KVM_RUN alternating two vCPUs) was not measured",
    "wake_cold_cross": "needs two CPUs",
    "msr_entry": "no MSR could be read and written back",
    "vmm_switch": "VSM-specific: depends on the VMM, not on the host",
    "uexit": "the KVM_RUN round trip could not be measured",
    "ioctl": "no vCPU ioctl could be timed",
    "wakeup": "no host wake-up could be timed",
    "ioctl_tlb_flush_inhibit": "not in stock KVM (VSM series only)",
    "first_run_after_migration": "needs two CPUs",
    "handoff_futex_cross": "needs two CPUs",
    "handoff_eventfd_cross": "needs two CPUs",
    "kick_parked_cross": "needs two CPUs",
    "msi_halted": "needs two CPUs",
}


def is_emulated(figures: dict[str, Figure]) -> bool:
    """True if the guest ran slower than :data:`EMULATION_THRESHOLD_NS` per simple
    instruction, i.e. KVM emulated it instead of running it in hardware."""
    insn = figures.get("guest_insn")
    return insn is not None and insn.median > EMULATION_THRESHOLD_NS


def build(figures: dict[str, Figure], facts: dict, settings: dict) -> tuple[dict, list[dict]]:
    """Return (profile data in file form, table rows) from the measured *figures*.

    *facts* are the host facts (:func:`vsmsim.calibrate.host.detect`); *settings* holds
    ``repeat`` and ``quick`` and is recorded in ``[host]``.
    """
    default = load_profile("default")
    emulated = is_emulated(figures)
    costs: dict[str, str] = {}
    notes: dict[str, str] = {}
    mapped: dict[str, str] = {}   # figure key -> cost name (for the table)
    extra: list[Figure] = []      # derived figures shown in the table
    why = dict(UNMEASURED_WHY)

    def measured(cost: str, fig: Figure, what: str | None = None, after: str = "",
                 best: bool = False) -> None:
        value = max(1, round(least_disturbed(fig.values) if best else fig.median))
        costs[cost] = f"{value}ns"
        pick = "; the least disturbed run (lowest median) is used" if best else ""
        notes[cost] = f"measured: {what or fig.what}; {fig.spread()}{pick}{after}"
        mapped[fig.key] = cost

    trivial = figures.get("ioctl_trivial")
    if "ioctl_get_regs" in figures:
        measured("ioctl", figures["ioctl_get_regs"],
                 figures["ioctl_get_regs"].what + "; includes the Python call overhead, "
                 f"about {_short(trivial.median)} for a trivial ioctl" if trivial else None)

    insn = figures.get("guest_insn")
    cpuid = figures.get("guest_cpuid")
    if emulated:
        why["exit"] = why["kick"] = (
            f"guest code is emulated on this host ({_short(insn.median)} per simple "
            f"instruction), so guest-timed CPUID ({_short(cpuid.median) if cpuid else '?'}) and "
            "interrupts to a running vCPU measure KVM's instruction emulator, not exits")
    elif cpuid is not None:
        measured("exit", cpuid)

    run_io = figures.get("kvm_run_io")
    if run_io is not None and trivial is not None:
        net = derived("uexit_roundtrip", run_io, trivial,
                      "userspace exit round trip: KVM_RUN with KVM_EXIT_IO minus a trivial "
                      "ioctl (removes the Python call and the syscall)")
        extra.append(net)
        if "exit" in costs:
            uexit = derived("uexit_extra", net, cpuid,
                            "extra for a userspace exit: round trip minus the measured exit")
            basis = "minus the measured in-kernel exit (guest-timed CPUID)"
        else:
            exit_ns = default.mean("exit")
            uexit = Figure("uexit_extra", [v - exit_ns for v in net.values],
                           "extra for a userspace exit: round trip minus the default exit",
                           per_run=f"{net.per_run}, minus the default exit")
            basis = f"minus the default exit ({_short(exit_ns)}, not measured here)"
        if uexit.median > 0:
            extra.append(uexit)
            measured("uexit", uexit,
                     "KVM_RUN round trip to userspace (guest OUT, KVM_EXIT_IO) as timed from "
                     f"Python, minus a trivial ioctl (Python call + syscall), {basis}",
                     after=f"; the round trip net of the trivial ioctl: {net.spread()}")

    wake = (figures.get("wakeup_cross_cpu") or figures.get("wakeup_threads")
            or figures.get("wakeup_same_cpu"))
    if wake is not None:
        if trivial is not None:
            net = derived("wakeup_net", wake, trivial, "")
            if net.median > 0:
                net.what = wake.what + ", minus one trivial ioctl for the Python calls per hop"
                extra.append(net)
                wake = net
        same = figures.get("wakeup_same_cpu")
        also = ""
        if same is not None and same is not figures.get(wake.key):
            also = (f"; for comparison, the same ping-pong with both processes on one CPU: "
                    f"median {_short(same.median)} one way")
        measured("wakeup", wake, after=also)

    spin = figures.get("vcpu_irq_spin")
    if spin is not None and run_io is not None and not emulated:
        kick = derived("kick", spin, run_io,
                       "interrupt to a running vCPU (KVM_IRQ_LINE to KVM_RUN return) minus "
                       "the raw KVM_RUN round trip")
        if kick.median > 0:
            extra.append(kick)
            measured("kick", kick)
        else:
            why["kick"] = "the derived value (running-vCPU interrupt minus round trip) was <= 0"
    halt = figures.get("vcpu_irq_halt")
    if halt is not None and run_io is not None:
        extra.append(derived("vcpu_wakeup", halt, run_io,
                             "halted vCPU woken by an interrupt (KVM_IRQ_LINE to KVM_RUN "
                             "return) minus the raw KVM_RUN round trip: a check on wakeup"))

    if "python_call" in figures:
        _path_costs(figures, costs, notes, extra, why, measured, default, emulated)
        if "kvm_run_roundtrip" in costs:
            mapped.pop("uexit_extra", None)  # uexit now comes from kvm_run
            mapped["kvm_run_roundtrip"] = "kvm_run, uexit"

    for cost in COST_NAMES:
        if cost not in costs:
            notes[cost] = (f"default, not measured here ({why.get(cost, 'no measurement')}); "
                           f"default basis: {default.notes.get(cost, '')}")

    host = dict(facts)
    host["emulated"] = emulated
    if insn is not None:
        host["guest_ns_per_instruction"] = round(insn.median, 2)
    if "tsc_mhz" in figures:
        host["guest_tsc_mhz"] = round(figures["tsc_mhz"].median, 3)
    host["repeat"] = settings.get("repeat", 0)
    host["quick"] = bool(settings.get("quick", False))
    for key in ("load_before", "load_after", "idle_before", "busy"):
        if key in settings:
            host[key] = settings[key]
    if "python_call" in figures:
        host["python_call_ns"] = round(least_disturbed(figures["python_call"].values), 1)
        host["clock_pair_ns"] = round(least_disturbed(figures["clock_pair"].values), 1)
    if "host_probe" in figures:
        # least disturbed, as the ioctl and KVM_RUN figures it stands beside (drift.py)
        host["probe_ns"] = round(least_disturbed(figures["host_probe"].values), 1)
    if "cross_cpu_slowdown" in figures:
        # a ratio of two timings that load lengthens alike: the median over runs
        host["cross_cpu_slowdown"] = round(figures["cross_cpu_slowdown"].median, 3)
    host["measured_at"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    mode = "EMULATED guest code (exit and kick keep defaults)" if emulated else "native guest code"
    data = {
        "name": "host",
        "description": f"Measured by vsmsim calibrate on {describe(facts)}; {mode}",
        "base": "default",
        "costs": costs,
        "notes": notes,
        "host": host,
    }
    rows = [_row(f, mapped.get(f.key, "")) for f in figures.values() if f is not None]
    rows += [_row(f, mapped.get(f.key, "")) for f in extra]
    return data, rows


def _path_costs(figures, costs, notes, extra, why, measured, default, emulated) -> None:
    """The per-path costs from :mod:`vsmsim.calibrate.paths` figures (see module doc)."""
    call = least_disturbed(figures["python_call"].values)
    for kind in STATE_KINDS:
        get, put = figures.get(f"ioctl_{kind}_get"), figures.get(f"ioctl_{kind}_set")
        if get is None or put is None:
            why[f"ioctl_{kind}"] = "this KVM refused the ioctl"
            continue
        both = Figure(f"ioctl_{kind}", [(a + b) / 2 for a, b in zip(get.values, put.values)],
                      f"mean of {get.what.split(' on ')[0]} and its set, per call, net of the "
                      "clock and one Python call",
                      per_run="get and set of the same run, averaged")
        extra.append(both)
        measured(f"ioctl_{kind}", both, best=True,
                 after=f"; get {_short(least_disturbed(get.values))}, set "
                       f"{_short(least_disturbed(put.values))}")
    if "ioctl_mp_state" in costs:
        costs["ioctl_tlb_flush_inhibit"] = costs["ioctl_mp_state"]
        notes["ioctl_tlb_flush_inhibit"] = (
            "measured (fallback): stock KVM has no TLB-flush-inhibit ioctl (it is in the VSM series), so "
            "this is the plainest vCPU ioctl measured here, ioctl_mp_state "
            f"({costs['ioctl_mp_state']}): vCPU mutex, a few bytes copied")
    regs = figures.get("ioctl_regs_get")
    if regs is not None:
        measured("ioctl", regs, best=True,
                 what=f"{regs.what} (was: including the Python call, {_short(call)} more)")
    run = figures.get("kvm_run_roundtrip")
    if run is not None:
        measured("kvm_run_roundtrip", run, best=True)
        exit_ns = float(costs["exit"][:-2]) if "exit" in costs else default.mean("exit")
        net = least_disturbed(run.values) - exit_ns
        if net > 0:
            costs["uexit"] = f"{max(1, round(net))}ns"
            basis = "measured exit" if "exit" in costs else "default exit, not measured here"
            notes["uexit"] = (f"measured: kvm_run_roundtrip ({costs['kvm_run_roundtrip']}) minus "
                              f"the {basis} ({_short(exit_ns)}), so that exit + uexit = "
                              f"kvm_run_roundtrip")
            costs["kvm_run"] = f"{max(1, round(net / 2))}ns"
            notes["kvm_run"] = ("measured, derived: half of uexit (one return from KVM_RUN to the VMM; "
                                "the other half is the re-entry), as in the default profile")
    for key in ("handoff_futex", "handoff_eventfd", "handoff_futex_cross",
                "handoff_eventfd_cross", "first_run_after_migration"):
        fig = figures.get(key)
        if fig is not None:
            measured(key, fig, best=True)
    # A difference of two timings (cold minus warm), not a time that load only lengthens:
    # the median over runs, not the lowest.
    if figures.get("wake_cold_cross") is not None:
        measured("wake_cold_cross", figures["wake_cold_cross"])
    # The tables follow a kick or an MSI into a parked/halted vCPU with kvm_run (its
    # KVM_RUN returning to the VMM); the figures run to that return, so the cost is the
    # figure minus kvm_run (kick + kvm_run = what was measured).
    half = float(costs["kvm_run"][:-2]) if "kvm_run" in costs else 0.0
    for key in ("kick_parked", "kick_parked_cross", "msi_halted"):
        fig = figures.get(key)
        if fig is None:
            continue
        raw = least_disturbed(fig.values)
        costs[key] = f"{max(1, round(raw - half))}ns"
        notes[key] = (f"measured: {fig.what}; {fig.spread()}; the least disturbed run "
                      f"({_short(raw)}) minus kvm_run ({_short(half)}), which the paths "
                      "charge after it")
    ents = [figures.get("msr_entry_get"), figures.get("msr_entry_set")]
    if all(f is not None for f in ents):
        both = Figure("msr_entry", [(a + b) / 2 for a, b in zip(ents[0].values, ents[1].values)],
                      "per MSR entry of KVM_GET_MSRS and KVM_SET_MSRS, averaged: "
                      + ents[0].what.split(": ", 1)[-1], per_run="get and set of the same run")
        extra.append(both)
        measured("msr_entry", both, best=True,
                 after=f"; get {_short(least_disturbed(ents[0].values))}, set "
                       f"{_short(least_disturbed(ents[1].values))}")
    sw = figures.get("vcpu_switch")
    if sw is not None:
        measured("vtl_state_switch", sw, best=True,
                 what=f"stock-KVM stand-in: {sw.what} (no planes in this KVM)")
        if least_disturbed(sw.values) <= 0:
            notes["vtl_state_switch"] += "; <= 0 here: clamped to 1 ns"
    wake = figures.get("wakeup_cross_cpu") or figures.get("wakeup_same_cpu")
    if wake is not None:
        clock = least_disturbed(figures["clock_pair"].values)
        net = Figure("wakeup_net", [v - 2 * call - clock / 2 for v in wake.values],
                     wake.what + ", net of the clock and two Python calls per hop",
                     per_run=wake.per_run)
        if net.median > 0:
            extra[:] = [f for f in extra if f.key != "wakeup_net"]
            extra.append(net)
            measured("wakeup", net, best=True)


def _short(ns: float) -> str:
    if abs(ns) >= 1e3:
        return f"{ns / 1e3:.3g} us"
    return f"{ns:.3g} ns"


def _row(fig: Figure, cost: str) -> dict:
    return {"figure": fig.key, "cost": cost, "median": fig.median, "p10": fig.p10,
            "p90": fig.p90, "n": fig.n, "unit": fig.unit, "per_run": fig.per_run,
            "what": fig.what}


def to_profile(data: dict) -> CostProfile:
    """The :class:`~vsmsim.costs.CostProfile` that *data* describes (validated)."""
    return profile_from_dict(data, source="calibration")


def to_toml(data: dict) -> str:
    """Profile *data* as TOML text that :func:`vsmsim.costs.load_profile` reads back.

    Unlike :func:`vsmsim.costs.dump_profile` this keeps ``base = "default"`` and lists only
    the measured costs, so every unmeasured cost visibly comes from the default profile.
    """
    lines = ["# Written by `vsmsim calibrate`. Costs not listed under [costs] come from the",
             "# default profile (base); [notes] says how each cost was measured, or why not.",
             f"name = {_value(data['name'])}",
             f"description = {_value(data['description'])}",
             f"base = {_value(data['base'])}"]
    for section in ("costs", "notes", "host"):
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_value(v)}" for k, v in data.get(section, {}).items()]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # never write a file that does not parse
    return text


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + s.replace("\t", "\\t") + '"'


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write *text* to *path* atomically (readers never see a partial profile)."""
    return atomic_text(path, text)
