"""What a thread placement and a Python VMM change in a design's costs (cost overrides).

The design tables name a hand-off without saying where the threads run: ``kick_parked``,
``handoff_futex``, ``handoff_eventfd`` are priced by the calibration with both threads on
one CPU. When a VMM's threads sit on two CPUs, each hand-off instead costs its ``_cross``
figure plus ``wake_cold_cross``: the extra time the woken thread then spends on its first
state ioctls and KVM_RUN, because the CPU it wakes on was idle (docs/calibration.md). The
engine has no notion of placement, so :func:`placement_overrides` expresses it as cost
overrides for a scenario (``costs.override``): the hand-off step of the path is where a
cross-CPU switch pays it.

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
    ``cross-cpu`` every hand-off cost becomes its ``_cross`` figure + ``wake_cold_cross``."""
    if placement == "same-cpu":
        return {}
    if placement != "cross-cpu":
        raise ValueError(f"placement {placement!r}: allowed same-cpu, cross-cpu")
    cold = cost_ns.get("wake_cold_cross", 0.0)
    return {k: cost_ns[v] + cold for k, v in CROSS.items()}


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
