"""Minimal VMMs in Python over raw KVM ioctls, one per design, executing its switch table.

Every prototype runs VTL0's caller (:data:`vsmsim.calibrate.guest64.CALLER`) and VTL1's
service (``SERVICE``) as 64-bit guests; an I/O-port exit stands in for the VTL call and
return hypercalls. What happens between those exits is the design's ``switch.call`` and
``switch.return`` path table compiled by :func:`vsmsim.prototype.paths.compile_switch`:
the state ioctls of each kind in the table's order, the MSR entries it counts, the
hand-off it names and the parking it does. The layout comes from the design:

* a hand-off in the table (``vm-per-vtl``, ``apic-id-groups``): a host thread per VTL;
  ``vm-per-vtl`` puts each VTL in a VM of its own, ``apic-id-groups`` both vCPUs in one
  VM (its N x V vCPUs); the threads can share a CPU or sit on two;
* no hand-off (``planes``): one VM, a vCPU per plane, one thread alternating KVM_RUN.

State moved (the TLFS split the VSM series uses): the general registers except rsp, rip
and rflags, the FPU/XSAVE area, XCR0 and the debug registers are the other VTL's; a
VTL's segment and control registers are its own except CR2; events, MSRs and the
LAPIC are each vCPU's own values (read and written back: the ioctls are real, the
values do not change). Both guests set the shared MSRs alike.

Every run records, per call, the guest's round trip (TSC ticks, from the caller's two
``rdtsc``), the VMM's timestamps at each step boundary (``perf_counter_ns``) and what the
VMM issued, so that the prediction's path can be checked against what actually ran.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import threading
import time
from dataclasses import dataclass, field

from ..calibrate import guest64
from ..calibrate.kvm import (
    KVM_EXIT_IO,
    KVM_GET_MP_STATE,
    KVM_RUN,
    MP_STATE_HALTED,
    MP_STATE_RUNNABLE,
    KvmError,
    Vm,
    msr_buffer,
    path_state_ioctls,
    vmm_msrs,
)
from ..calibrate.paths import KICK_SIGNAL, kick_handler
from .paths import Script, compile_design

#: The ioctl function the VMMs call (a module global, so a test can count the calls).
ioctl = fcntl.ioctl

DESIGNS = ("vm-per-vtl", "planes", "apic-id-groups")
PLACEMENTS = ("same-cpu", "cross-cpu")
#: Designs whose VTLs are two VMs (the rest put both vCPUs in one VM).
TWO_VMS = ("vm-per-vtl",)

_RUN_EXIT_REASON, _RUN_IO_PORT = 8, 34
#: Offsets in kvm_regs / kvm_sregs(2) of what stays private to a VTL.
_RSP, _RIP_FLAGS, _CR2 = slice(48, 56), slice(128, 144), slice(232, 240)


def placements_of(design: str) -> tuple[str, ...]:
    """The placements *design*'s prototype can express (one thread: only same-cpu)."""
    scripts = compile_design(design)
    return PLACEMENTS if all(s.handoff for s in scripts.values()) else ("same-cpu",)


@dataclass
class RunRecord:
    """What one prototype run did. Times: ns (``perf_counter_ns``) or TSC ticks."""

    design: str
    placement: str
    calls: int                          # VTL call round trips kept (after the warm-up)
    warmup: int
    guest_ticks: list[int]              # guest-timed round trip per kept call
    stamps: dict[str, list[int]]        # VMM timestamps per kept call, by boundary name
    counts: dict[str, int]              # what the VMM issued over the kept calls
    guest_calls: int                    # calls the guest counted (its result pointer)
    service_ticks: list[int]            # VTL1's own timing of its work, per kept call
    cpus: tuple[int, int]
    handoffs: dict[str, str] = field(default_factory=dict)   # path -> hand-off step
    load: dict = field(default_factory=dict)


def merge_records(records: list[RunRecord]) -> RunRecord:
    """One record of several runs of the same design and placement, in order (the
    chunks of an interleaved measurement): kept calls, stamps and counts concatenated or
    summed; ``warmup`` is the sum of the runs' warm-ups (so ``guest_calls - warmup`` stays
    the calls kept)."""
    first = records[0]
    if any((r.design, r.placement) != (first.design, first.placement) for r in records):
        raise ValueError("merge_records: runs of different designs or placements")
    counts: dict[str, int] = {}
    for r in records:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    return RunRecord(first.design, first.placement, sum(r.calls for r in records),
                     sum(r.warmup for r in records),
                     [t for r in records for t in r.guest_ticks],
                     {k: [t for r in records for t in r.stamps[k]] for k in first.stamps},
                     counts, sum(r.guest_calls for r in records),
                     [t for r in records for t in r.service_ticks], first.cpus,
                     dict(first.handoffs), dict(first.load))


def _port(area) -> int:
    if struct.unpack_from("=I", area, _RUN_EXIT_REASON)[0] != KVM_EXIT_IO:
        return -1
    return struct.unpack_from("=H", area, _RUN_IO_PORT)[0]


def merge_regs(out: bytearray, shared: bytearray, own: bytearray) -> None:
    """*out* = the other VTL's general registers with this VTL's rsp, rip and rflags."""
    out[:] = shared
    out[_RSP] = own[_RSP]
    out[_RIP_FLAGS] = own[_RIP_FLAGS]


def merge_sregs(out: bytearray, shared: bytearray, own: bytearray) -> None:
    """*out* = this VTL's segment and control registers with the other VTL's CR2."""
    out[:] = own
    out[_CR2] = shared[_CR2]


class _VtlState:
    """One VTL's vCPU and its state buffers: ``got[kind]`` (last KVM_GET), ``put[kind]``
    (what a KVM_SET writes), one msrs buffer per entry count."""

    def __init__(self, vcpu, ioctls, msr_indices):
        self.vcpu, self.fd, self.area = vcpu, vcpu.fd, vcpu.run_area
        self.got, self.put = {}, {}
        for kind, (_g, _s, size, _n) in ioctls.items():
            if kind in ("msrs", "mp_state"):
                continue
            self.got[kind] = bytearray(size)
        self.msrs: dict[int, bytearray] = {}
        self.msr_indices = msr_indices
        self.mp_runnable = bytearray(struct.pack("=I", MP_STATE_RUNNABLE))
        self.mp_halted = bytearray(struct.pack("=I", MP_STATE_HALTED))
        self.mp_got = bytearray(4)

    def msr_buf(self, n: int) -> bytearray:
        if n not in self.msrs:
            self.msrs[n] = msr_buffer(self.msr_indices[:n])
        return self.msrs[n]


class _Plan:
    """A script turned into ioctl calls: ``(fd, request, buffer, expected return)``."""

    def __init__(self, sc: Script, vtls, ioctls):
        self.script = sc
        src, tgt = vtls[sc.source], vtls[sc.target]
        self.src, self.tgt = src, tgt
        for v in (src, tgt):
            for k in ("regs", "sregs"):
                v.put.setdefault(k, bytearray(len(v.got[k])))
        self.before = [self._call(op, vtls, ioctls) for op in sc.before]
        self.after = [self._call(op, vtls, ioctls) for op in sc.after]
        self.parking = [self._call(op, vtls, ioctls) for op in sc.parking]

    def _call(self, op, vtls, ioctls):
        v = vtls[op.vtl]
        other = vtls[1 - op.vtl]
        if op.kind == "tlb_flush_inhibit":       # stand-in: see vsmsim.prototype.paths
            return (v.fd, KVM_GET_MP_STATE, v.mp_got, -1, None)
        get, put, _size, _name = ioctls[op.kind]
        if op.kind == "msrs":
            buf = v.msr_buf(op.entries)
            return (v.fd, get if op.direction == "get" else put, buf, op.entries, None)
        if op.kind == "mp_state":
            if op.direction == "get":
                return (v.fd, get, v.mp_got, -1, None)
            return (v.fd, put, v.mp_halted if op.park else v.mp_runnable, -1, None)
        if op.direction == "get":
            return (v.fd, get, v.got[op.kind], -1, None)
        if op.kind in ("regs", "sregs"):
            # the VMM's own work (the table's vmm_switch): the target's image, built from
            # the latest gets just before it is set
            merge = merge_regs if op.kind == "regs" else merge_sregs
            out, shared, own = v.put[op.kind], other.got[op.kind], v.got[op.kind]
            return (v.fd, put, out, -1, lambda: merge(out, shared, own))
        if op.kind in ("fpu", "xcrs", "debugregs"):
            return (v.fd, put, other.got[op.kind], -1, None)  # shared: the other VTL's
        return (v.fd, put, v.got[op.kind], -1, None)          # the vCPU's own (events, lapic)


def _issue(calls) -> None:
    for fd, req, buf, expect, prep in calls:
        if prep is not None:
            prep()
        r = ioctl(fd, req, buf, True)
        if expect >= 0 and r != expect:
            raise KvmError(f"MSR ioctl {req:#x} handled {r} of {expect} entries")


class _Wait:
    """How a thread waits for the hand-off to it, and how the other thread hands off."""

    def __init__(self, mechanism: str, vtl: _VtlState):
        self.mechanism, self.vtl, self.fd, self.ident = mechanism, vtl, -1, None
        if mechanism == "handoff_eventfd":
            self.fd = os.eventfd(0)
        elif mechanism == "handoff_futex":
            self.lock = threading.Lock()
            self.lock.acquire()
        elif mechanism != "kick_parked":
            raise ValueError(f"hand-off {mechanism!r} is not prototyped")

    def wake(self) -> None:
        m = self.mechanism
        if m == "handoff_eventfd":
            os.eventfd_write(self.fd, 1)
        elif m == "handoff_futex":
            self.lock.release()
        else:
            self.vtl.vcpu.set_immediate_exit(1)    # a kick just before KVM_RUN is not lost
            signal.pthread_kill(self.ident, KICK_SIGNAL)

    def wait(self) -> None:
        m = self.mechanism
        if m == "handoff_eventfd":
            os.eventfd_read(self.fd)
        elif m == "handoff_futex":
            self.lock.acquire()
        else:
            try:
                ioctl(self.vtl.fd, KVM_RUN, 0)     # parked until kicked
            except InterruptedError:
                self.vtl.vcpu.set_immediate_exit(0)
                return
            raise KvmError("a parked vCPU left KVM_RUN without a kick")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _setup(kvm, two_vms: bool, n_total: int, loops: int):
    """VMs and vCPUs for VTL0 (caller) and VTL1 (service); returns (vms, vcpu0, vcpu1)."""
    cpuid = kvm.supported_cpuid()
    vm0 = Vm(kvm, mem_size=guest64.MEM_SIZE, irqchip=True)
    vms = [vm0]
    try:
        vm1 = Vm(kvm, mem_size=guest64.MEM_SIZE, irqchip=True) if two_vms else vm0
        if two_vms:
            vms.append(vm1)
        vcpu0, vcpu1 = vm0.create_vcpu(), vm1.create_vcpu()
        vm0.write(guest64.CODE, guest64.CALLER)
        vm1.write(guest64.SERVICE_CODE, guest64.SERVICE)
        guest64.set_service(vm1, loops)
        guest64.enter_long_mode(vm0, vcpu0, guest64.CODE, cpuid=cpuid, regs={
            "r12": guest64.CALLER_RESULTS, "r13": guest64.CALLER_RESULTS + 8 * n_total})
        guest64.enter_long_mode(vm1, vcpu1, guest64.SERVICE_CODE, rsp=guest64.STACK - 0x800,
                                cpuid=cpuid)
        # A second vCPU of a VM with an in-kernel LAPIC starts waiting for INIT/SIPI.
        vcpu1.set_mp_state(MP_STATE_RUNNABLE)
    except BaseException:
        for vm in vms:
            vm.close()
        raise
    return vms, vcpu0, vcpu1


def _prepare(kvm, design, vcpus):
    """The compiled scripts, the per-VTL state and the ioctl plans of *design*."""
    scripts = compile_design(design)
    ioctls = path_state_ioctls(kvm)
    most = max([op.entries for sc in scripts.values() for op in sc.ioctls] + [1])
    indices = vmm_msrs(kvm, vcpus[0], most)
    vtls = [_VtlState(v, ioctls, indices) for v in vcpus]
    plans = {p: _Plan(sc, vtls, ioctls) for p, sc in scripts.items()}
    used = {op.kind for sc in scripts.values() for op in sc.ioctls} | {"regs", "sregs"}
    used -= {"tlb_flush_inhibit", "mp_state", "msrs"}
    for v in vtls:                 # every buffer holds real state before the first set
        for kind in sorted(used):
            ioctl(v.fd, ioctls[kind][0], v.got[kind], True)
        for buf in v.msrs.values():
            ioctl(v.fd, ioctls["msrs"][0], buf, True)
        v.put["regs"][:] = v.got["regs"]
        v.put["sregs"][:] = v.got["sregs"]
    return scripts, vtls, plans


STAMPS = ("call.exit", "call.handoff", "call.woke", "call.run",
          "return.exit", "return.handoff", "return.woke", "return.run")


def run_design(kvm, design: str, calls: int, placement: str, cpus: tuple[int, int],
               loops: int, warmup: int = 20) -> RunRecord:
    """Run *design*'s prototype for *calls* VTL call round trips (after *warmup*).
    Must run on the main thread (a kick's signal handler is installed there)."""
    if design not in DESIGNS:
        raise ValueError(f"design {design!r}: allowed {', '.join(DESIGNS)}")
    if placement not in placements_of(design):
        raise ValueError(f"{design}: placement {placement!r} not expressible (one thread)")
    n_total = calls + warmup
    if n_total > guest64.MAX_CALLS:
        raise ValueError(f"calls = {calls}: at most {guest64.MAX_CALLS - warmup}")
    cpu0, cpu1 = (cpus[0], cpus[0]) if placement == "same-cpu" else cpus
    vms, vcpu0, vcpu1 = _setup(kvm, design in TWO_VMS, n_total, loops)
    stamps = {k: [0] * n_total for k in STAMPS}
    try:
        scripts, vtls, plans = _prepare(kvm, design, (vcpu0, vcpu1))
        if scripts["switch.call"].handoff:
            guest_calls = _run_threaded(plans, vtls, n_total, stamps, (cpu0, cpu1))
        else:
            guest_calls = _run_one_thread(plans, vtls, n_total, stamps, cpu0)
        ticks = guest64.results(vms[0], guest64.CALLER_RESULTS, n_total)
        service = guest64.results(vms[-1], guest64.SERVICE_RESULTS, n_total)
    finally:
        for vm in vms:
            vm.close()
    counts = {"kvm_run": 2 * calls, "ioctls": 0}
    for sc in scripts.values():
        for op in sc.ioctls:
            counts["ioctls"] += calls
            key = f"ioctl_{op.kind}"
            counts[key] = counts.get(key, 0) + calls
        if sc.handoff:
            counts[sc.handoff] = counts.get(sc.handoff, 0) + calls
    return RunRecord(design, placement, calls, warmup, ticks[warmup:],
                     {k: v[warmup:] for k, v in stamps.items()}, counts, guest_calls,
                     service[warmup:], (cpu0, cpu1),
                     {p: sc.handoff for p, sc in scripts.items()})


def _run_one_thread(plans, vtls, n_total, stamps, cpu) -> int:
    """One thread alternating KVM_RUN on the two vCPUs (a design without hand-offs)."""
    call, ret = plans["switch.call"], plans["switch.return"]
    v0, v1 = vtls
    clock = time.perf_counter_ns
    s = [stamps[k] for k in ("call.exit", "call.run", "return.exit", "return.run")]
    saved = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
        for i in range(n_total + 1):
            ioctl(v0.fd, KVM_RUN, 0)
            t = clock()
            port = _port(v0.area)
            if port == guest64.PORT_DONE:
                break
            if port != guest64.PORT_CALL:
                v0.vcpu.expect_io(guest64.PORT_CALL)
            if i >= n_total:
                raise KvmError("the guest made more calls than asked")
            s[0][i] = t
            _issue(call.before)
            _issue(call.after)
            s[1][i] = clock()
            ioctl(v1.fd, KVM_RUN, 0)
            s[2][i] = clock()
            if _port(v1.area) != guest64.PORT_RETURN:
                v1.vcpu.expect_io(guest64.PORT_RETURN)
            _issue(ret.before)
            _issue(ret.after)
            s[3][i] = clock()
    finally:
        os.sched_setaffinity(0, saved)
    for k in ("call.handoff", "call.woke", "return.handoff", "return.woke"):
        stamps[k] = []
    return (v0.vcpu.regs()[12] - guest64.CALLER_RESULTS) // 8


def _run_threaded(plans, vtls, n_total, stamps, cpus) -> int:
    """A host thread per VTL; VTL0's is this (main) thread, VTL1's a new one."""
    call, ret = plans["switch.call"], plans["switch.return"]
    v0, v1 = vtls
    to1 = _Wait(call.script.handoff, v1)     # how VTL1's thread waits (for a call)
    to0 = _Wait(ret.script.handoff, v0)      # how VTL0's thread waits (for a return)
    failure: list[BaseException] = []
    stopping = [False]
    started = threading.Event()

    def vtl1_thread():
        clock = time.perf_counter_ns
        woke, run, exit_, hand = (stamps[k] for k in ("call.woke", "call.run", "return.exit",
                                                      "return.handoff"))
        try:
            os.sched_setaffinity(0, {cpus[1]})
            if to1.mechanism == "kick_parked":
                v1.vcpu.set_mp_state(MP_STATE_HALTED)      # the first park
            started.set()
            i = 0
            while True:
                to1.wait()
                t = clock()
                if stopping[0]:
                    return
                woke[i] = t
                _issue(call.after)
                run[i] = clock()
                ioctl(v1.fd, KVM_RUN, 0)
                exit_[i] = clock()
                if _port(v1.area) != guest64.PORT_RETURN:
                    v1.vcpu.expect_io(guest64.PORT_RETURN)
                _issue(ret.before)
                hand[i] = clock()
                i += 1
                to0.wake()
                _issue(ret.parking)
        except BaseException as e:  # noqa: BLE001 - reported by VTL0's thread
            failure.append(e)
            started.set()
            if to0.mechanism != "kick_parked":
                to0.wake()

    th = threading.Thread(target=vtl1_thread, name="vsmsim-proto-vtl1", daemon=True)
    saved = os.sched_getaffinity(0)
    clock = time.perf_counter_ns
    exit0, hand0, woke0, run0 = (stamps[k] for k in ("call.exit", "call.handoff",
                                                     "return.woke", "return.run"))
    handler = kick_handler()
    handler.__enter__()  # left only after VTL1's thread is gone: a late kick must not kill
    try:
        os.sched_setaffinity(0, {cpus[0]})
        to0.ident = threading.get_ident()
        th.start()
        started.wait(5.0)
        to1.ident = th.ident
        for i in range(n_total + 1):
            ioctl(v0.fd, KVM_RUN, 0)
            t = clock()
            port = _port(v0.area)
            if port == guest64.PORT_DONE:
                break
            if port != guest64.PORT_CALL:
                v0.vcpu.expect_io(guest64.PORT_CALL)
            if i >= n_total:
                raise KvmError("the guest made more calls than asked")
            exit0[i] = t
            _issue(call.before)
            hand0[i] = clock()
            to1.wake()
            _issue(call.parking)
            to0.wait()
            woke0[i] = clock()
            if failure:
                raise KvmError(f"VTL1 thread failed: {failure[0]}")
            _issue(ret.after)
            run0[i] = clock()
        return (v0.vcpu.regs()[12] - guest64.CALLER_RESULTS) // 8
    finally:
        stopping[0] = True
        if th.is_alive():
            if to1.mechanism == "kick_parked":
                v1.vcpu.set_immediate_exit(1)
                try:
                    signal.pthread_kill(th.ident, KICK_SIGNAL)
                except (ProcessLookupError, TypeError):
                    pass
            else:
                to1.wake()
            th.join(2.0)
        if not th.is_alive():
            handler.__exit__(None, None, None)
        os.sched_setaffinity(0, saved)
        to0.close()
        to1.close()
