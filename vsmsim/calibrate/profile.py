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

#: Why costs without a measurement keep their default.
UNMEASURED_WHY = {
    "exit": "needs guest code that runs natively",
    "kick": "needs guest code that runs natively",
    "map_lookup": "an in-kernel APIC routing step, not separable from userspace",
    "scan_per_vcpu": "an in-kernel APIC routing step, not separable from userspace",
    "posted_delivery": "needs APICv/AVIC and a protected-mode guest with an enabled LAPIC",
    "ipiv_send": "needs IPI virtualization and a protected-mode guest with an enabled LAPIC",
    "timer_expiry": "needs a LAPIC timer in the guest; the real-mode calibration guest has none",
    "vtl_state_switch": "VSM-specific: this KVM has no VTLs to switch",
    "vmm_switch": "VSM-specific: depends on the VMM, not on the host",
    "uexit": "the KVM_RUN round trip could not be measured",
    "ioctl": "no vCPU ioctl could be timed",
    "wakeup": "no host wake-up could be timed",
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

    def measured(cost: str, fig: Figure, what: str | None = None, after: str = "") -> None:
        value = max(1, round(fig.median))
        costs[cost] = f"{value}ns"
        notes[cost] = f"measured: {what or fig.what}; {fig.spread()}{after}"
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
