"""What a thread placement and a Python VMM change in a design's costs (cost overrides).

The design tables name a hand-off without saying where the threads run: ``kick_parked``,
``handoff_futex``, ``handoff_eventfd`` are priced by the calibration with both threads on
one CPU. When a VMM's threads sit on two CPUs, each hand-off instead costs its ``_cross``
figure, and all the VMM's work between hand-offs (state ioctls, KVM_RUN round trips, the
VMM's own switch work, the guest's work inside KVM_RUN) runs slower by the calibrated
``cross_cpu_slowdown`` ratio, because a thread woken across CPUs wakes on a CPU that was
idle (docs/calibration.md). The engine has no notion of placement, so
:func:`placement_overrides` and :func:`slowed` express it as cost overrides for a scenario
(``costs.override``).

A VMM written in Python pays, beyond every cost (which the calibration measures net of
it), ``python_call`` once per Python call that makes a syscall: :func:`python_overrides`.
Both functions take and return plain ns values; the callers format them.
"""

from __future__ import annotations

#: Hand-off costs and their cross-CPU figures.
CROSS = {"kick_parked": "kick_parked_cross", "handoff_futex": "handoff_futex_cross",
         "handoff_eventfd": "handoff_eventfd_cross"}
#: Python calls that make a syscall, per occurrence of a cost in a switch path: one per
#: state ioctl; two per hand-off (the wake, the return of the wait) and per kick (the
#: kill, KVM_RUN's EINTR return); one per KVM_RUN round trip (``uexit``, which with
#: ``exit`` is the round trip). ``kvm_run`` after a kick is that kick's EINTR return.
PYTHON_CALLS = {"kick_parked": 2, "handoff_futex": 2, "handoff_eventfd": 2, "uexit": 1}


def placement_overrides(cost_ns: dict[str, float], placement: str) -> dict[str, float]:
    """Cost overrides (ns) for *placement* (``same-cpu`` or ``cross-cpu``): for
    ``cross-cpu`` every hand-off cost becomes its ``_cross`` figure (the slowdown of the
    work between hand-offs is :func:`slowed`)."""
    if placement == "same-cpu":
        return {}
    if placement != "cross-cpu":
        raise ValueError(f"placement {placement!r}: allowed same-cpu, cross-cpu")
    return {k: cost_ns[v] for k, v in CROSS.items()}


def slowed(overrides: dict[str, float], cost_ns: dict[str, float], costs,
           factor: float) -> dict[str, float]:
    """*overrides* with each of *costs* that is not a hand-off (its overridden value, else
    its profile value) and ``vmm_switch`` multiplied by *factor* (``cross_cpu_slowdown``):
    the VMM's work between hand-offs, slower across CPUs. Hand-offs keep their ``_cross``
    figures, which are measured as such."""
    out = dict(overrides)
    for c in set(costs) | {"vmm_switch"}:
        if c in CROSS or c in CROSS.values():
            continue
        base = out.get(c, cost_ns.get(c))
        if base is not None:
            out[c] = base * factor
    return out


def python_calls(cost: str) -> int:
    """Python syscall calls per occurrence of *cost* in a prototype's switch."""
    if cost.startswith("ioctl_"):
        return 1
    return PYTHON_CALLS.get(cost, 0)


def python_overrides(cost_ns: dict[str, float], python_call_ns: float,
                     vmm_switch_ns: float, costs) -> dict[str, float]:
    """Cost overrides (ns) for a Python VMM: each of *costs* plus its :func:`python_calls`
    x *python_call_ns*, and ``vmm_switch`` = *vmm_switch_ns* (the VMM's own work per
    switch, measured on the VMM itself). Apply after :func:`placement_overrides`."""
    out = {c: cost_ns[c] + python_calls(c) * python_call_ns for c in costs
           if python_calls(c)}
    out["vmm_switch"] = vmm_switch_ns
    return out
