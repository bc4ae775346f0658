"""A design's ``switch.call`` / ``switch.return`` as what a prototype VMM does, step by step.

:func:`compile_switch` reads the built-in path table (:func:`vsmsim.load_design`) and
turns each switch path into a :class:`Script`: the state ioctls in the table's order with
the vCPU and direction each is issued on, the hand-off the table names, and the parking.
The prototypes (:mod:`vsmsim.prototype.vmm`) execute the scripts; nothing about a design
is written here, so a change to a table changes what its prototype does.

How a path's steps are read (the tables' comments give the functions; docs/designs.md):

* ``exit``, ``uexit``, ``vtl_state_switch``: the source VTL's ``KVM_RUN`` returning at
  its I/O-port exit (standing in for the VTL call/return hypercall) and the target's
  ``KVM_RUN``; nothing to issue beyond those two ``KVM_RUN`` calls.
* a hand-off step (``kick_parked``, ``handoff_futex``, ``handoff_eventfd``): the source
  thread wakes the target VTL's thread with that mechanism; a ``kvm_run`` right after
  ``kick_parked`` is the kicked thread's ``KVM_RUN`` returning EINTR (part of the kick).
  The thread that handed off then waits for the next hand-off to it, with the mechanism
  the *other* switch path uses (parked in ``KVM_RUN`` for ``kick_parked``).
* ``ioctl_<kind>`` before ``vmm_switch``: a KVM_GET of the vCPU whose thread runs at that
  point (the source before the hand-off, the target after it: QEMU's
  ``cpu_synchronize_state`` on each VTL's own thread). Without a hand-off (one thread,
  ``planes``) the steps come in pairs: the first a get on the source, the second the set
  on the target.
* ``ioctl_<kind>`` after ``vmm_switch``: a KVM_SET of the target vCPU
  (``kvm_arch_put_registers``); ``times = 0`` marks the source's parking, issued by the
  source's thread after it handed off (counted, not charged).
* ``msr_entry`` x n right after an ``ioctl_msrs``: that call carries n entries.
* ``ioctl_mp_state`` as a set: ``KVM_MP_STATE_RUNNABLE`` on a put, and for the parking
  ``KVM_MP_STATE_HALTED``, the stock-KVM stand-in for the VSM series'
  ``KVM_MP_STATE_HV_INACTIVE_VTL`` (both make ``KVM_RUN`` block until a kick).
* ``ioctl_tlb_flush_inhibit``: stock KVM has no ``KVM_HYPERV_SET_TLB_FLUSH_INHIBIT``; the
  stand-in is ``KVM_GET_MP_STATE`` on the VTL the table names (the target), the plainest
  vCPU ioctl, which is also what the calibration prices the cost with.
* ``vmm_switch``: the VMM's own work: here building the target's register images (own
  rsp/rip/rflags and segment state, the other VTL's shared registers and CR2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..designs import Design, load_design

#: Hand-off steps and the costs after them that belong to the hand-off.
HANDOFFS = ("kick_parked", "handoff_futex", "handoff_eventfd")
#: Steps realised by the two KVM_RUN calls of a switch (the source's exit, the target's
#: entry): nothing extra is issued for them.
RUN_STEPS = ("exit", "uexit", "vtl_state_switch")
PATHS = ("switch.call", "switch.return")


@dataclass(frozen=True)
class Ioctl:
    """One state ioctl a prototype issues."""

    kind: str          # state kind (regs, sregs, fpu, ..., mp_state); "tlb_flush_inhibit"
    direction: str     # "get" or "set"
    vtl: int           # whose vCPU
    entries: int = 0   # MSRs in the call (msrs only)
    park: bool = False  # the parking set (times 0: counted, not charged)


@dataclass
class Script:
    """What the VMM does for one switch path, in order."""

    path: str
    source: int
    target: int
    before: list[Ioctl] = field(default_factory=list)   # source thread, before hand-off
    handoff: str = ""                                   # "" (one thread) or a HANDOFFS name
    after: list[Ioctl] = field(default_factory=list)    # target's thread, before its KVM_RUN
    parking: list[Ioctl] = field(default_factory=list)  # source thread, after the hand-off
    vmm_switch_before_handoff: bool = False

    @property
    def ioctls(self) -> list[Ioctl]:
        return self.before + self.after + self.parking


def compile_switch(design: Design | str, path: str) -> Script:
    """The :class:`Script` of *path* (``switch.call`` or ``switch.return``) of *design*."""
    d = load_design(design) if isinstance(design, str) else design
    steps = d.path(path)
    source, target = (0, 1) if path == "switch.call" else (1, 0)
    sc = Script(path, source, target)
    one_thread = not any(s.cost in HANDOFFS for s in steps)
    handed, switched = False, False
    got: set[str] = set()
    last: Ioctl | None = None
    where = sc.before
    for s in steps:
        cost = s.cost
        if cost in RUN_STEPS:
            continue
        if cost in HANDOFFS:
            if handed:
                raise ValueError(f"{d.name} {path}: a second hand-off ({cost}) is not "
                                 "prototyped")
            sc.handoff, handed, where, got = cost, True, sc.after, set()
            continue
        if cost == "kvm_run":
            if sc.handoff != "kick_parked":
                raise ValueError(f"{d.name} {path}: kvm_run outside a kick is not prototyped")
            continue    # the kicked thread's KVM_RUN returning EINTR
        if cost == "vmm_switch":
            switched = True
            sc.vmm_switch_before_handoff = not handed
            continue
        if cost == "msr_entry":
            if last is None or last.kind != "msrs":
                raise ValueError(f"{d.name} {path}: msr_entry not after an ioctl_msrs")
            n = s.times if isinstance(s.times, int) else 0
            upd = Ioctl(last.kind, last.direction, last.vtl, last.entries + n, last.park)
            lst = sc.parking if last.park else where
            lst[lst.index(last)] = upd
            last = upd
            continue
        if not cost.startswith("ioctl_"):
            raise ValueError(f"{d.name} {path}: step {cost!r} has no prototype")
        kind = cost[len("ioctl_"):]
        if kind == "tlb_flush_inhibit":
            op = Ioctl(kind, "get", target)
        elif s.times == 0:
            op = Ioctl(kind, "set", source, park=True)
        elif switched:
            op = Ioctl(kind, "set", target)
        elif one_thread:
            op = Ioctl(kind, "set", target) if kind in got else Ioctl(kind, "get", source)
            got.symmetric_difference_update({kind})
        else:
            op = Ioctl(kind, "get", target if handed else source)
        if op.park:
            sc.parking.append(op)
        else:
            where.append(op)
        last = op
    return sc


def compile_design(design: Design | str) -> dict[str, Script]:
    """Both switch scripts of *design*."""
    d = load_design(design) if isinstance(design, str) else design
    return {p: compile_switch(d, p) for p in PATHS}


def table_counts(design: Design | str) -> dict[str, int]:
    """Per round trip, from the path table: ``ioctls`` (the ``count.ioctls`` the steps
    declare), ``wakeups``, and ``ioctl_<kind>`` (steps naming each kind, charged or not)."""
    d = load_design(design) if isinstance(design, str) else design
    out: dict[str, int] = {}
    for p in PATHS:
        for s in d.path(p):
            for name, amount in s.count:
                if isinstance(amount, int):
                    out[name] = out.get(name, 0) + amount
            if s.cost.startswith("ioctl_"):
                out[s.cost] = out.get(s.cost, 0) + 1
    return out


def script_counts(scripts: dict[str, Script]) -> dict[str, int]:
    """Per round trip, what the scripts issue: ``ioctls`` and ``ioctl_<kind>``."""
    out: dict[str, int] = {"ioctls": 0}
    for sc in scripts.values():
        for op in sc.ioctls:
            out["ioctls"] += 1
            out[f"ioctl_{op.kind}"] = out.get(f"ioctl_{op.kind}", 0) + 1
    return out


def segments(design: Design | str) -> list[str]:
    """The measured segments of a round trip, in order (what :func:`segment_of` names)."""
    out = []
    for sc in compile_design(design).values():
        v, t = sc.source, sc.target
        name = sc.path.split(".")[1]
        if sc.handoff:
            out += [f"{name}: VTL{v} ioctls", f"{name}: {sc.handoff}",
                    f"{name}: VTL{t} ioctls"]
        else:
            out.append(f"{name}: move state VTL{v}->VTL{t}")
        out.append(f"VTL{t} KVM_RUN + guest work")
    return out


def step_segments(design: Design | str) -> dict[str, list[tuple[str, object]]]:
    """``{segment: [(cost, times), ...]}``: which of the table's charged steps fall in
    each measured segment. A path's ``exit`` + ``uexit`` (+ ``vtl_state_switch``) span the
    source's exit and the target's entry: they go to the target's KVM_RUN segment."""
    d = load_design(design) if isinstance(design, str) else design
    out: dict[str, list] = {s: [] for s in segments(d)}
    for p in PATHS:
        sc = compile_switch(d, p)
        name = p.split(".")[1]
        run = f"VTL{sc.target} KVM_RUN + guest work"
        seg = f"{name}: VTL{sc.source} ioctls" if sc.handoff else \
            f"{name}: move state VTL{sc.source}->VTL{sc.target}"
        for s in d.path(p):
            if s.cost in RUN_STEPS:
                out[run].append((s.cost, s.times))
                continue
            if s.cost in HANDOFFS:
                seg = f"{name}: {s.cost}"
                out[seg].append((s.cost, s.times))
                seg_after = f"{name}: VTL{sc.target} ioctls"
                continue
            if sc.handoff and seg == f"{name}: {sc.handoff}" and s.cost != "kvm_run":
                seg = seg_after
            out[seg].append((s.cost, s.times))
    return out
