"""Minimal VMMs on /dev/kvm whose VTL switch does what a design's switch path does.

Each VMM runs VTL0's 64-bit caller (:data:`vsmsim.calibrate.guest64.CALLER`) and VTL1's
service (:data:`~vsmsim.calibrate.guest64.SERVICE`) and moves the shared vCPU state
across every VTL call and return with the state ioctls its design uses:

``vm-per-vtl``
    two VMs (one per VTL), one vCPU and one host thread each. VTL1's thread parks in
    KVM_RUN with mp_state HALTED. A call: VTL0's thread gets the shared state (6 kinds,
    :data:`SHARED_KINDS`), kicks VTL1's thread (immediate_exit + signal: KVM_RUN returns
    EINTR), which sets mp_state RUNNABLE, sets the state and runs VTL1. A return: VTL1's
    thread gets the state, sets mp_state HALTED, wakes VTL0's thread (eventfd or futex)
    and parks again; VTL0's thread sets the state and re-enters. 12 state ioctls and one
    KVM_SET_MP_STATE per switch.
``apic-id-groups``
    the same hand-offs with both vCPUs in one VM (VTL in the APIC ID group bits) and the
    design's 8 state ioctls per switch (get and set of regs, sregs, fpu, msrs).
``planes``
    one VM, one vCPU per plane, one thread alternating KVM_RUN on the two; a switch moves
    the shared general registers with KVM_GET_REGS + KVM_SET_REGS (sregs are private to
    a plane, so they stay).

What is shared and what stays private follows the TLFS split used by the VSM series:
general registers except rsp, rip and rflags, FPU/XMM, XCR0, debug registers, CR2 and a
set of MSRs are shared; the rest of sregs is private to a VTL.

Every run records, per call, the guest's round trip (TSC ticks, from the caller's two
``rdtsc``), the VMM's timestamps at each step boundary (``perf_counter_ns``) and counts
of what the VMM did (KVM_RUN calls, state ioctls by kind, kicks, wake-ups), so the path
of the prediction can be checked against what actually ran.
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
    KVM_RUN,
    KVM_SET_MP_STATE,
    MP_STATE_HALTED,
    MP_STATE_RUNNABLE,
    STATE_IOCTLS,
    KvmError,
    Vm,
)
from ..calibrate.paths import KICK_SIGNAL, kick_handler

#: The ioctl function the VMMs call (a module global, so a test can count the calls).
ioctl = fcntl.ioctl

#: State kinds a vm-per-vtl switch moves (get on the old VTL's vCPU, set on the new).
SHARED_KINDS = ("regs", "sregs", "fpu", "xcrs", "debugregs", "msrs")
#: State kinds an apic-id-groups switch moves (the design's 8 ioctls per switch).
GROUP_KINDS = ("regs", "sregs", "fpu", "msrs")
#: Hand-off mechanisms for waking VTL0's thread on a return.
HANDOFFS = ("eventfd", "futex")
DESIGNS = ("vm-per-vtl", "planes", "apic-id-groups")
PLACEMENTS = ("same-cpu", "cross-cpu")
#: Placements each design can express (planes has one thread: nothing to place apart).
DESIGN_PLACEMENTS = {"vm-per-vtl": PLACEMENTS, "apic-id-groups": PLACEMENTS,
                     "planes": ("same-cpu",)}

_RUN_EXIT_REASON, _RUN_IO_PORT = 8, 34
_MP_RUNNABLE = struct.pack("=I", MP_STATE_RUNNABLE)
_MP_HALTED = struct.pack("=I", MP_STATE_HALTED)
#: Offsets in kvm_regs / kvm_sregs of what stays private to a VTL.
_RSP, _RIP_FLAGS, _CR2 = slice(48, 56), slice(128, 144), slice(232, 240)


@dataclass
class RunRecord:
    """What one prototype run did. Times: ns (``perf_counter_ns``) or TSC ticks."""

    design: str
    placement: str
    calls: int                          # VTL call round trips kept (after the warm-up)
    warmup: int
    guest_ticks: list[int]              # guest-timed round trip per kept call
    stamps: dict[str, list[int]]        # VMM timestamps per kept call, by boundary name
    counts: dict[str, int]              # what the VMM did over the kept calls
    guest_calls: int                    # calls the guest counted (its result pointer)
    service_ticks: list[int]            # VTL1's own timing of its work, per kept call
    cpus: tuple[int, int]
    handoff: str = ""
    load: dict = field(default_factory=dict)


def _port(area) -> int:
    if struct.unpack_from("=I", area, _RUN_EXIT_REASON)[0] != KVM_EXIT_IO:
        return -1
    return struct.unpack_from("=H", area, _RUN_IO_PORT)[0]


def _merge_regs(shared: bytearray, own: bytearray) -> bytearray:
    """The other VTL's general registers with this VTL's own rsp, rip and rflags."""
    out = bytearray(shared)
    out[_RSP] = own[_RSP]
    out[_RIP_FLAGS] = own[_RIP_FLAGS]
    return out


def _merge_sregs(shared: bytearray, own: bytearray) -> bytearray:
    """This VTL's own segment and control registers with the other VTL's CR2."""
    out = bytearray(own)
    out[_CR2] = shared[_CR2]
    return out


class _Waker:
    """VTL0's thread blocks here until VTL1's thread wakes it (eventfd or futex)."""

    def __init__(self, mechanism: str):
        if mechanism == "eventfd":
            self.fd = os.eventfd(0)
            fd = self.fd
            self.wake = lambda: os.eventfd_write(fd, 1)
            self.wait = lambda: os.eventfd_read(fd)
        elif mechanism == "futex":
            self.fd = -1
            lock = threading.Lock()
            lock.acquire()
            self.wake, self.wait = lock.release, lock.acquire
        else:
            raise ValueError(f"handoff {mechanism!r}: allowed {', '.join(HANDOFFS)}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _setup_pair(kvm, two_vms: bool, n_total: int, loops: int):
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


def run_threaded(kvm, design: str, calls: int, placement: str, cpus: tuple[int, int],
                 loops: int, handoff: str = "eventfd", warmup: int = 20) -> RunRecord:
    """vm-per-vtl (two VMs) or apic-id-groups (one VM): a thread per VTL, VTL1 parked in
    KVM_RUN between calls. Must run on the main thread (it installs the kick handler)."""
    kinds = SHARED_KINDS if design == "vm-per-vtl" else GROUP_KINDS
    n_total = calls + warmup
    if n_total > guest64.MAX_CALLS:
        raise ValueError(f"calls = {calls}: at most {guest64.MAX_CALLS - warmup}")
    cpu0, cpu1 = (cpus[0], cpus[0]) if placement == "same-cpu" else cpus
    vms, vcpu0, vcpu1 = _setup_pair(kvm, design == "vm-per-vtl", n_total, loops)
    names = ("exit0", "got0", "eintr1", "set1", "exit1", "got1", "woke0", "set0")
    stamps = {k: [0] * n_total for k in names}
    counts = {"kvm_run": 0, "kicks": 0, "wakeups": 0, "mp_state": 0,
              **{f"ioctl_{k}": 0 for k in kinds}}
    waker = _Waker(handoff)
    gets = {k: STATE_IOCTLS[k][0] for k in kinds}
    sets = {k: STATE_IOCTLS[k][1] for k in kinds}
    buf0 = {k: vcpu0.state_buffer(k) for k in kinds}
    buf1 = {k: vcpu1.state_buffer(k) for k in kinds}
    for k in kinds:
        vcpu1.get_state(k, buf1[k])
    fd0, fd1, area0 = vcpu0.fd, vcpu1.fd, vcpu0.run_area
    failure: list[BaseException] = []
    stopping = [False]
    started = threading.Event()

    def vtl1_thread():
        clock = time.perf_counter_ns
        s_eintr, s_set, s_exit, s_got = (stamps[k] for k in ("eintr1", "set1", "exit1", "got1"))
        try:
            os.sched_setaffinity(0, {cpu1})
            ioctl(fd1, KVM_SET_MP_STATE, _MP_HALTED)
            started.set()
            i = 0
            while True:
                try:
                    ioctl(fd1, KVM_RUN, 0)          # parked until kicked
                    raise KvmError("parked VTL1 vCPU left KVM_RUN without a kick")
                except InterruptedError:
                    t = clock()
                    vcpu1.set_immediate_exit(0)
                if stopping[0]:
                    return
                s_eintr[i] = t
                ioctl(fd1, KVM_SET_MP_STATE, _MP_RUNNABLE)
                for k in kinds:
                    if k == "regs":
                        buf = _merge_regs(buf0["regs"], buf1["regs"])
                    elif k == "sregs":
                        buf = _merge_sregs(buf0["sregs"], buf1["sregs"])
                    else:
                        buf = buf0[k]
                    ioctl(fd1, sets[k], buf, True)
                s_set[i] = clock()
                ioctl(fd1, KVM_RUN, 0)
                s_exit[i] = clock()
                if _port(vcpu1.run_area) != guest64.PORT_RETURN:
                    vcpu1.expect_io(guest64.PORT_RETURN)
                for k in kinds:
                    ioctl(fd1, gets[k], buf1[k], True)
                ioctl(fd1, KVM_SET_MP_STATE, _MP_HALTED)
                s_got[i] = clock()
                i += 1
                waker.wake()
        except BaseException as e:  # noqa: BLE001 - reported by VTL0's thread
            failure.append(e)
            started.set()
            waker.wake()

    th = threading.Thread(target=vtl1_thread, name="vsmsim-proto-vtl1", daemon=True)
    saved = os.sched_getaffinity(0)
    clock = time.perf_counter_ns
    s_exit0, s_got0, s_woke0, s_set0 = (stamps[k] for k in ("exit0", "got0", "woke0", "set0"))
    guest_calls = 0
    handler = kick_handler()
    handler.__enter__()  # left only after VTL1's thread is gone: a late kick must not kill
    try:
        os.sched_setaffinity(0, {cpu0})
        th.start()
        started.wait(5.0)
        ident = th.ident
        for i in range(n_total + 1):
            ioctl(fd0, KVM_RUN, 0)
            t = clock()
            port = _port(area0)
            if port == guest64.PORT_DONE:
                break
            if port != guest64.PORT_CALL:
                vcpu0.expect_io(guest64.PORT_CALL)
            if i >= n_total:
                raise KvmError("the guest made more calls than asked")
            s_exit0[i] = t
            for k in kinds:
                ioctl(fd0, gets[k], buf0[k], True)
            s_got0[i] = clock()
            vcpu1.set_immediate_exit(1)
            signal.pthread_kill(ident, KICK_SIGNAL)
            waker.wait()
            s_woke0[i] = clock()
            if failure:
                raise KvmError(f"VTL1 thread failed: {failure[0]}")
            for k in kinds:
                if k == "regs":
                    buf = _merge_regs(buf1["regs"], buf0["regs"])
                elif k == "sregs":
                    buf = _merge_sregs(buf1["sregs"], buf0["sregs"])
                else:
                    buf = buf1[k]
                ioctl(fd0, sets[k], buf, True)
            s_set0[i] = clock()
        guest_calls = (vcpu0.regs()[12] - guest64.CALLER_RESULTS) // 8
    finally:
        stopping[0] = True
        if th.is_alive():
            vcpu1.set_immediate_exit(1)
            try:
                signal.pthread_kill(th.ident, KICK_SIGNAL)
            except (ProcessLookupError, TypeError):
                pass
            th.join(2.0)
        if not th.is_alive():
            handler.__exit__(None, None, None)
        os.sched_setaffinity(0, saved)
        waker.close()
        ticks = guest64.results(vms[0], guest64.CALLER_RESULTS, n_total)
        service = guest64.results(vms[-1], guest64.SERVICE_RESULTS, n_total)
        for vm in vms:
            vm.close()
    if failure:
        raise KvmError(f"VTL1 thread failed: {failure[0]}")
    kept = calls
    # What ran over the kept calls: derived from the loop structure above (a test counts
    # the real ioctl calls independently).
    counts["kvm_run"] = 2 * kept
    counts["kicks"] = counts["wakeups"] = kept
    counts["mp_state"] = 2 * kept
    for k in kinds:
        counts[f"ioctl_{k}"] = 4 * kept
    return RunRecord(design, placement, kept, warmup, ticks[warmup:],
                     {k: v[warmup:] for k, v in stamps.items()}, counts, guest_calls,
                     service[warmup:], (cpu0, cpu1), handoff)


def run_planes(kvm, calls: int, placement: str, cpus: tuple[int, int], loops: int,
               warmup: int = 20) -> RunRecord:
    """planes: one VM, a vCPU per plane, one thread alternating KVM_RUN; each switch moves
    the shared general registers (KVM_GET_REGS on the old plane, KVM_SET_REGS on the new)."""
    if placement != "same-cpu":
        raise ValueError("planes runs on one thread: placement must be same-cpu")
    n_total = calls + warmup
    if n_total > guest64.MAX_CALLS:
        raise ValueError(f"calls = {calls}: at most {guest64.MAX_CALLS - warmup}")
    vms, vcpu0, vcpu1 = _setup_pair(kvm, False, n_total, loops)
    names = ("exit0", "moved0", "exit1", "moved1")
    stamps = {k: [0] * n_total for k in names}
    get_regs, set_regs = STATE_IOCTLS["regs"][0], STATE_IOCTLS["regs"][1]
    r0, r1 = vcpu0.state_buffer("regs"), vcpu1.state_buffer("regs")
    vcpu1.get_state("regs", r1)
    fd0, fd1, area0, area1 = vcpu0.fd, vcpu1.fd, vcpu0.run_area, vcpu1.run_area
    clock = time.perf_counter_ns
    s_exit0, s_moved0, s_exit1, s_moved1 = (stamps[k] for k in names)
    saved = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpus[0]})
        for i in range(n_total + 1):
            ioctl(fd0, KVM_RUN, 0)
            t = clock()
            port = _port(area0)
            if port == guest64.PORT_DONE:
                break
            if port != guest64.PORT_CALL:
                vcpu0.expect_io(guest64.PORT_CALL)
            if i >= n_total:
                raise KvmError("the guest made more calls than asked")
            s_exit0[i] = t
            ioctl(fd0, get_regs, r0, True)
            ioctl(fd1, set_regs, _merge_regs(r0, r1), True)
            s_moved0[i] = clock()
            ioctl(fd1, KVM_RUN, 0)
            s_exit1[i] = clock()
            if _port(area1) != guest64.PORT_RETURN:
                vcpu1.expect_io(guest64.PORT_RETURN)
            ioctl(fd1, get_regs, r1, True)
            ioctl(fd0, set_regs, _merge_regs(r1, r0), True)
            s_moved1[i] = clock()
        guest_calls = (vcpu0.regs()[12] - guest64.CALLER_RESULTS) // 8
        ticks = guest64.results(vms[0], guest64.CALLER_RESULTS, n_total)
        service = guest64.results(vms[0], guest64.SERVICE_RESULTS, n_total)
    finally:
        os.sched_setaffinity(0, saved)
        for vm in vms:
            vm.close()
    counts = {"kvm_run": 2 * calls, "ioctl_regs": 4 * calls, "kicks": 0, "wakeups": 0,
              "mp_state": 0}
    return RunRecord("planes", placement, calls, warmup, ticks[warmup:],
                     {k: v[warmup:] for k, v in stamps.items()}, counts, guest_calls,
                     service[warmup:], (cpus[0], cpus[0]))


def run_design(kvm, design: str, calls: int, placement: str, cpus: tuple[int, int],
               loops: int, handoff: str = "eventfd", warmup: int = 20) -> RunRecord:
    """Run *design*'s prototype for *calls* VTL call round trips (after *warmup*)."""
    if design == "planes":
        return run_planes(kvm, calls, placement, cpus, loops, warmup)
    if design in ("vm-per-vtl", "apic-id-groups"):
        return run_threaded(kvm, design, calls, placement, cpus, loops, handoff, warmup)
    raise ValueError(f"design {design!r}: allowed {', '.join(DESIGNS)}")
