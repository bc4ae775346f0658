"""The prototypes' switch paths as design steps, and the design variants built from them.

A prototype's VTL call round trip is a sequence of costed steps, each named with a cost of
the calibrated profile; :func:`prototype_path` gives them per design, placement and
hand-off mechanism, split into ``switch.call`` and ``switch.return``. :func:`variant`
turns them into a :class:`~vsmsim.designs.Design` (the built-in design with its two
switch paths replaced), so the simulator predicts exactly the path the prototype ran.

The prototypes are Python VMMs: beyond what a VMM in C would pay (the costs), each
Python call that makes a syscall costs ``python_call`` (measured by the calibration and
subtracted from every cost). That is priced as the step ``vmm_switch`` (the VMM's own work
per switch) charged once per such call, with ``vmm_switch`` set to ``python_call`` for the
prediction. The interpreter's bookkeeping between calls (building buffers, loop control)
is not priced: a known under-estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..designs import Design, Step, load_design
from .vmm import GROUP_KINDS, SHARED_KINDS


@dataclass(frozen=True)
class PathStep:
    """One step of a prototype's switch: *times* x *cost*, timed as part of *segment*."""

    cost: str
    times: int
    segment: str
    counters: tuple = ()


def _cross(placement: str) -> bool:
    return placement == "cross-cpu"


def kinds_of(design: str) -> tuple[str, ...]:
    """The state kinds a switch of *design*'s prototype moves."""
    return {"vm-per-vtl": SHARED_KINDS, "apic-id-groups": GROUP_KINDS,
            "planes": ("regs",)}[design]


def segments(design: str) -> list[str]:
    """The measured segments of a round trip, in order (see :func:`prototype_path`)."""
    if design == "planes":
        return ["move regs to VTL1", "VTL1 KVM_RUN + guest work", "move regs to VTL0",
                "VTL0 KVM_RUN + guest work"]
    return ["VTL0 gets", "kick VTL1 out of KVM_RUN", "VTL1 mp_state + sets",
            "VTL1 KVM_RUN + guest work", "VTL1 gets + mp_state", "wake VTL0", "VTL0 sets",
            "VTL0 KVM_RUN + guest work"]


def prototype_path(design: str, placement: str, handoff: str = "eventfd"
                   ) -> dict[str, list[PathStep]]:
    """``{"switch.call": [...], "switch.return": [...]}`` of *design*'s prototype.

    Python calls (priced as ``vmm_switch``) are counted per segment: one per KVM_RUN and
    per ioctl, two per kick (the kill, KVM_RUN's EINTR return) and per hand-off (the wake,
    the wait's return).
    """
    cross = _cross(placement)
    kinds = kinds_of(design)
    k = len(kinds)
    run_counts = (("exits", 1), ("uexits", 1), ("hypercalls", 1))
    if design == "planes":
        call = [PathStep("kvm_run_roundtrip", 1, "VTL0 KVM_RUN + guest work", run_counts),
                PathStep("vmm_switch", 1, "VTL0 KVM_RUN + guest work"),
                PathStep("ioctl_regs", 2, "move regs to VTL1", (("ioctls", 2),)),
                PathStep("vmm_switch", 2, "move regs to VTL1")]
        ret = [PathStep("kvm_run_roundtrip", 1, "VTL1 KVM_RUN + guest work", run_counts),
               PathStep("vmm_switch", 1, "VTL1 KVM_RUN + guest work"),
               PathStep("ioctl_regs", 2, "move regs to VTL0", (("ioctls", 2),)),
               PathStep("vmm_switch", 2, "move regs to VTL0")]
        return {"switch.call": call, "switch.return": ret}
    if design not in ("vm-per-vtl", "apic-id-groups"):
        raise ValueError(f"design {design!r} has no prototype")
    kick = "kick_parked_cross" if cross else "kick_parked"
    wake = f"handoff_{handoff}" + ("_cross" if cross else "")
    call = [PathStep("kvm_run_roundtrip", 1, "VTL0 KVM_RUN + guest work", run_counts),
            PathStep("vmm_switch", 1, "VTL0 KVM_RUN + guest work")]
    call += [PathStep(f"ioctl_{x}", 1, "VTL0 gets", (("ioctls", 1),)) for x in kinds]
    call += [PathStep("vmm_switch", k, "VTL0 gets"),
             PathStep(kick, 1, "kick VTL1 out of KVM_RUN", (("kicks", 1),)),
             PathStep("vmm_switch", 2, "kick VTL1 out of KVM_RUN"),
             PathStep("ioctl_mp_state", 1, "VTL1 mp_state + sets", (("ioctls", 1),))]
    call += [PathStep(f"ioctl_{x}", 1, "VTL1 mp_state + sets", (("ioctls", 1),))
             for x in kinds]
    call += [PathStep("vmm_switch", k + 1, "VTL1 mp_state + sets")]
    if cross:
        call.append(PathStep("first_run_after_migration", 1, "VTL1 KVM_RUN + guest work"))
    ret = [PathStep("kvm_run_roundtrip", 1, "VTL1 KVM_RUN + guest work", run_counts),
           PathStep("vmm_switch", 1, "VTL1 KVM_RUN + guest work")]
    ret += [PathStep(f"ioctl_{x}", 1, "VTL1 gets + mp_state", (("ioctls", 1),)) for x in kinds]
    ret += [PathStep("ioctl_mp_state", 1, "VTL1 gets + mp_state", (("ioctls", 1),)),
            PathStep("vmm_switch", k + 1, "VTL1 gets + mp_state"),
            PathStep(wake, 1, "wake VTL0", (("wakeups", 1),)),
            PathStep("vmm_switch", 2, "wake VTL0")]
    ret += [PathStep(f"ioctl_{x}", 1, "VTL0 sets", (("ioctls", 1),)) for x in kinds]
    ret += [PathStep("vmm_switch", k, "VTL0 sets")]
    if cross:
        ret.append(PathStep("first_run_after_migration", 1, "VTL0 KVM_RUN + guest work"))
    return {"switch.call": call, "switch.return": ret}


def path_totals(path: dict[str, list[PathStep]]) -> dict[str, int]:
    """Per round trip: how many times each cost is charged and each counter bumped."""
    out: dict[str, int] = {}
    for steps in path.values():
        for s in steps:
            out[s.cost] = out.get(s.cost, 0) + s.times
            for c, n in s.counters:
                out[f"count.{c}"] = out.get(f"count.{c}", 0) + n
    return out


def variant(design: str, placement: str, handoff: str = "eventfd") -> Design:
    """The built-in *design* with its call and return paths replaced by the prototype's."""
    base = load_design(design)
    paths = dict(base.paths)
    for name, steps in prototype_path(design, placement, handoff).items():
        paths[name] = tuple(Step(s.cost, "vp", s.times, s.counters) for s in steps)
    return replace(base, name=f"{design}-prototype-{placement}",
                   description=f"{base.description} -- switch paths of the vsmsim prototype "
                               f"({placement}, {handoff} hand-off)",
                   paths=paths, file="")


def predicted_segments(design: str, placement: str, handoff: str, cost_ns: dict[str, float],
                       guest_work: dict[str, float]) -> dict[str, float]:
    """Predicted ns per measured segment: the path's steps priced with *cost_ns*, plus the
    guest work measured separately (``vtl1`` in VTL1's run, ``vtl0`` in VTL0's)."""
    out = dict.fromkeys(segments(design), 0.0)
    for steps in prototype_path(design, placement, handoff).values():
        for s in steps:
            out[s.segment] += s.times * cost_ns[s.cost]
    out["VTL1 KVM_RUN + guest work"] += guest_work["vtl1"]
    out["VTL0 KVM_RUN + guest work"] += guest_work["vtl0"]
    return out
