"""Measurements of what the design paths use: each hand-off, kick and state ioctl alone.

Every figure here is timed per call (``perf_counter_ns`` around each call or hand-off)
and summarised per run by the median of its samples, so that a preemption or an
interrupt on a loaded machine spoils one sample, not the run. A figure runs ``repeat``
times; :func:`least_disturbed` picks the run the profile uses (the lowest median:
disturbances only ever add time).

Two overheads are measured first and subtracted from every sample-based figure, in the
same way everywhere:

* ``clock_pair``: two back-to-back ``perf_counter_ns()`` calls (the timer itself);
* ``python_call``: one ``fcntl.ioctl`` of FIONREAD on a pipe, i.e. Python's call into a
  syscall with next to no kernel work. A figure whose timed section contains *k* Python
  calls that each make a syscall has ``k x python_call`` subtracted (*k* is given with
  each figure), so the costs are what a VMM written in C would pay beyond a null
  syscall, and a Python VMM's time is the costs plus ``python_call`` per call it makes.

Thread placement: "same CPU" pins both threads to one CPU, "cross" pins them to two
(:func:`vsmsim.calibrate.measure.cpu_pair`). The threads are threads of this process
(as a VMM's vCPU threads are), so the GIL is part of every hand-off; it is released in
every blocking call used here.
"""

from __future__ import annotations

import fcntl
import os
import signal
import statistics
import subprocess
import sys
import termios
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from . import guest64
from .kvm import (
    KVM_RUN,
    MP_STATE_HALTED,
    Kvm,
    KvmError,
    Vm,
    msr_buffer,
    path_state_ioctls,
    vmm_msrs,
)
from .measure import Figure, _pinned

#: The signal the prototypes and the kick figures use to force a thread out of KVM_RUN.
KICK_SIGNAL = signal.SIGUSR1
#: Hand-off mechanisms: (name, wake(peer), wait(self)) factories are in :class:`_Channel`.
MECHANISMS = ("futex", "eventfd")
#: State-ioctl kinds with a cost of their own (``ioctl_<kind>``); xsave is reported beside
#: fpu, which is the figure used.
STATE_KINDS = ("regs", "sregs", "fpu", "xcrs", "debugregs", "msrs", "lapic", "events",
               "mp_state")
#: MSR entries of the long calls the per-entry cost is measured with (the design tables'
#: ~100 of QEMU's kvm_get_msrs / kvm_put_msrs).
MSR_ENTRIES = 100
#: State kinds a VMM sets after a hand-off (QEMU's kvm_arch_put_registers), the work the
#: cold-wake figure times.
PUT_KINDS = ("sregs", "regs", "fpu", "xcrs", "msrs", "events", "mp_state", "debugregs")


@dataclass
class PathPlan:
    """Sample counts per run (``quick`` shrinks them)."""

    ioctl_samples: int = 2000       # per state-ioctl kind and direction
    run_samples: int = 2000         # KVM_RUN round trips
    handoff_samples: int = 1000     # hand-offs per mechanism and placement
    kick_samples: int = 300         # kicks, MSIs, first runs
    gap_s: float = 100e-6           # busy time before each kick / wake (MSI: asleep)

    @classmethod
    def quick(cls) -> PathPlan:
        """About a second in all on a nested host."""
        return cls(ioctl_samples=150, run_samples=200, handoff_samples=60, kick_samples=25)


def spin(seconds: float) -> None:
    """Stay busy (runnable) for *seconds*: a VMM thread working between hand-offs. A sleep
    would let this CPU go idle, which is not what a VMM's thread does between calls."""
    end = time.perf_counter_ns() + int(seconds * 1e9)
    clock = time.perf_counter_ns
    while clock() < end:
        pass


def least_disturbed(values) -> float:
    """The run a cost uses: the lowest per-run median (load only ever adds time)."""
    return min(values)


def _clock_pair(n: int = 5000) -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        samples.append(clock() - t0)
    return statistics.median(samples)


def _per_call(fn, n: int) -> float:
    """Median ns of ``fn()`` over *n* calls, each timed alone (clock pair included)."""
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    return statistics.median(samples)


def _paired_per_call(fn_a, fn_b, n: int) -> tuple[float, float]:
    """Median ns of ``fn_a()`` and of ``fn_b()`` over *n* calls each, alternating (each
    timed alone, clock pair included)."""
    clock = time.perf_counter_ns
    a, b = [0] * n, [0] * n
    for i in range(n):
        t0 = clock()
        fn_a()
        t1 = clock()
        fn_b()
        t2 = clock()
        a[i], b[i] = t1 - t0, t2 - t1
    return statistics.median(a), statistics.median(b)


@dataclass
class Overheads:
    """The timer and Python-call overheads subtracted from every figure (ns)."""

    clock: float
    python_call: float

    def net(self, raw: float, calls: int) -> float:
        """*raw* (a clock-pair sample median) minus the clock and *calls* Python calls."""
        return raw - self.clock - calls * self.python_call


def measure_overheads(repeat: int, plan: PathPlan) -> tuple[Overheads, Figure, Figure]:
    """Measure ``clock_pair`` and ``python_call``; return them and their figures."""
    r, w = os.pipe()
    try:
        buf = bytearray(4)
        ioctl = fcntl.ioctl

        def fionread():
            ioctl(r, termios.FIONREAD, buf, True)

        clocks, calls = [], []
        for _ in range(repeat):
            c = _clock_pair(plan.ioctl_samples)
            clocks.append(c)
            calls.append(_per_call(fionread, plan.ioctl_samples) - c)
    finally:
        os.close(r)
        os.close(w)
    clock_fig = Figure("clock_pair", clocks, "two back-to-back perf_counter_ns() calls: "
                       "subtracted from every per-call sample",
                       per_run=f"each: median of {plan.ioctl_samples}")
    call_fig = Figure("python_call", calls,
                      "Python's call into a null syscall: fcntl.ioctl(FIONREAD) on a pipe, "
                      "clock pair subtracted; subtracted once per Python syscall call in "
                      "every figure", per_run=f"each: median of {plan.ioctl_samples} calls")
    return Overheads(least_disturbed(clocks), least_disturbed(calls)), clock_fig, call_fig


def long_mode_vm(kvm: Kvm, program: bytes, irqchip: bool = True, cpuid: bytes | None = None,
                 **regs) -> Vm:
    """A VM of one 64-bit vCPU at *program* (caller owns the returned VM)."""
    vm = Vm(kvm, mem_size=guest64.MEM_SIZE, irqchip=irqchip)
    try:
        vcpu = vm.create_vcpu()
        vm.write(guest64.CODE, program)
        vm.write(guest64.HANDLER, guest64.IRQ_HANDLER)
        guest64.enter_long_mode(vm, vcpu, guest64.CODE,
                                cpuid=cpuid if cpuid is not None else kvm.supported_cpuid(),
                                regs=regs)
    except BaseException:
        vm.close()
        raise
    return vm


# --- state ioctls and KVM_RUN ------------------------------------------------------------

def measure_state_ioctls(kvm: Kvm, ov: Overheads, repeat: int,
                         plan: PathPlan, between=None) -> dict[str, Figure]:
    """``ioctl_<kind>_get`` / ``_set`` per kind of :data:`STATE_KINDS` with the ioctl the
    design paths name (:func:`~vsmsim.calibrate.kvm.path_state_ioctls`: SREGS2, XSAVE2
    where this KVM has them), net of the clock and one Python call; the MSR calls carry
    one entry (the fixed part), and ``msr_entry_get`` / ``_set`` is the per-entry slope
    from calls of :data:`MSR_ENTRIES` entries. Kinds this KVM refuses are left out.
    *between*, if given, is called with each kind before it is measured, and with None
    after the last (the host-speed probe of :mod:`vsmsim.calibrate.drift`)."""
    out: dict[str, Figure] = {}
    table = path_state_ioctls(kvm)
    with long_mode_vm(kvm, guest64.OUT_LOOP) as vm:
        vcpu = vm.vcpus[0]
        vcpu.run()
        try:
            msrs = vmm_msrs(kvm, vcpu, MSR_ENTRIES)
        except KvmError:
            msrs = []
        for kind in STATE_KINDS:
            if between is not None:
                between(kind)
            get_req, set_req, size, name = table[kind]
            try:
                if kind == "msrs":
                    if not msrs:
                        raise OSError("no MSR")
                    buf = msr_buffer(msrs[:1])
                else:
                    buf = bytearray(size)
                fcntl.ioctl(vcpu.fd, get_req, buf, True)
                fcntl.ioctl(vcpu.fd, set_req, buf, True)
            except OSError:
                # None marks "refused by this KVM" (the profile keeps the default)
                out[f"ioctl_{kind}_get"] = out[f"ioctl_{kind}_set"] = None
                continue
            ioctl, fd = fcntl.ioctl, vcpu.fd
            for direction, req in (("get", get_req), ("set", set_req)):
                def call(req=req, ioctl=ioctl, fd=fd, buf=buf):
                    ioctl(fd, req, buf, True)
                _per_call(call, plan.ioctl_samples // 10)  # warm up
                vals = [ov.net(_per_call(call, plan.ioctl_samples), 1) for _ in range(repeat)]
                one = name.replace("GET/SET", "GET" if direction == "get" else "SET")
                if "/" in one:   # "KVM_GET_XSAVE2/KVM_SET_XSAVE"
                    one = one.split("/")[0 if direction == "get" else 1]
                extra = " (one MSR: the fixed part)" if kind == "msrs" else ""
                out[f"ioctl_{kind}_{direction}"] = Figure(
                    f"ioctl_{kind}_{direction}", vals,
                    f"{one}{extra} on a 64-bit vCPU, per call, net of the clock and one "
                    "Python call", per_run=f"each: median of {plan.ioctl_samples} calls")
                if kind == "msrs":
                    many = msr_buffer(msrs)
                    fcntl.ioctl(fd, get_req, many, True)

                    def many_call(req=req, ioctl=ioctl, fd=fd, buf=many):
                        ioctl(fd, req, buf, True)
                    _per_call(many_call, plan.ioctl_samples // 10)
                    # the long and the one-entry call alternate, so that a change of the
                    # host's speed falls on both (sequential runs gave slopes of 23-42 ns)
                    slope = []
                    for _ in range(repeat):
                        one_med, many_med = _paired_per_call(call, many_call,
                                                             plan.ioctl_samples)
                        slope.append((many_med - one_med) / (MSR_ENTRIES - 1))
                    out[f"msr_entry_{direction}"] = Figure(
                        f"msr_entry_{direction}", slope,
                        f"per entry of {one}: a call of {MSR_ENTRIES} entries ({len(set(msrs))} "
                        "distinct MSRs a VMM reads and writes back, repeated) minus a call of "
                        f"one, over {MSR_ENTRIES - 1}; the two calls alternate",
                        per_run=f"each: medians of {plan.ioctl_samples} calls of each")
    if between is not None:
        between(None)
    return out


def measure_vcpu_switch(kvm: Kvm, ov: Overheads, repeat: int, plan: PathPlan) -> Figure:
    """``vtl_state_switch`` on stock KVM: one thread alternating KVM_RUN between two vCPUs
    of one VM (what a planes VMM does: vcpu_put of one, vcpu_load of the other) minus
    KVM_RUN repeated on one of them, per call."""
    vm = long_mode_vm(kvm, guest64.OUT_LOOP)
    try:
        second = vm.create_vcpu()
        guest64.enter_long_mode(vm, second, guest64.CODE, cpuid=kvm.supported_cpuid())
        second.set_mp_state(0)
        a, b = vm.vcpus[0].fd, second.fd
        ioctl = fcntl.ioctl
        ioctl(a, KVM_RUN, 0)
        ioctl(b, KVM_RUN, 0)
        flip = [a, b]

        def alternate():
            flip.reverse()
            ioctl(flip[0], KVM_RUN, 0)

        def same():
            flip.reverse()
            ioctl(a, KVM_RUN, 0)

        _per_call(alternate, plan.run_samples // 10)
        vals = []
        for _ in range(repeat):
            vals.append(_per_call(alternate, plan.run_samples) - _per_call(same, plan.run_samples))
    finally:
        vm.close()
    return Figure("vcpu_switch", vals, "KVM_RUN round trip alternating between two vCPUs of "
                  "one VM on one thread, minus the same round trip repeated on one vCPU",
                  per_run=f"each: medians of {plan.run_samples} calls, paired")


def measure_kvm_run(kvm: Kvm, ov: Overheads, repeat: int, plan: PathPlan) -> Figure:
    """A 64-bit guest's KVM_RUN round trip (guest ``out``, KVM_EXIT_IO, back), per call,
    net of the clock and one Python call."""
    with long_mode_vm(kvm, guest64.OUT_LOOP) as vm:
        vcpu = vm.vcpus[0]
        vcpu.run()
        vcpu.expect_io(guest64.PORT_RETURN)
        ioctl, fd = fcntl.ioctl, vcpu.fd

        def call():
            ioctl(fd, KVM_RUN, 0)

        _per_call(call, plan.run_samples // 10)
        vals = [ov.net(_per_call(call, plan.run_samples), 1) for _ in range(repeat)]
        vcpu.expect_io(guest64.PORT_RETURN)
    return Figure("kvm_run_roundtrip", vals, "KVM_RUN round trip of a 64-bit guest (out -> "
                  "KVM_EXIT_IO -> return), per call, net of the clock and one Python call",
                  per_run=f"each: median of {plan.run_samples} calls")


# --- hand-offs between host threads ------------------------------------------------------

class _Channel:
    """A one-way wake-up of a thread blocked in the kernel: futex (a ``threading.Lock``
    used as a binary semaphore: CPython's lock is a futex-based semaphore on Linux) or an
    eventfd."""

    def __init__(self, mechanism: str):
        self.mechanism = mechanism
        if mechanism == "futex":
            self.lock = threading.Lock()
            self.lock.acquire()
            self.wake = self.lock.release
            self.wait = self.lock.acquire
        elif mechanism == "eventfd":
            self.fd = os.eventfd(0)
            fd, write, read = self.fd, os.eventfd_write, os.eventfd_read
            self.wake = lambda: write(fd, 1)
            self.wait = lambda: read(fd)
        else:
            raise ValueError(f"mechanism {mechanism!r}: allowed {', '.join(MECHANISMS)}")

    def close(self) -> None:
        """Release the eventfd (a lock needs nothing)."""
        if self.mechanism == "eventfd":
            os.close(self.fd)


def _handoff_once(mechanism: str, n: int, cpus: tuple[int, int], gap_s: float) -> float:
    """Median one-way hand-off (ns, clock pair included): this thread on ``cpus[0]`` stays
    busy for *gap_s* (the waiter's CPU may go idle meanwhile, as a VMM's would), then wakes
    the peer on ``cpus[1]``, which timestamps the return of its wait and wakes us back."""
    to_peer, to_me = _Channel(mechanism), _Channel(mechanism)
    failure, stamp = [], [0]

    def peer():
        clock = time.perf_counter_ns
        try:
            os.sched_setaffinity(0, {cpus[1]})
            for _ in range(n + 11):
                to_peer.wait()
                stamp[0] = clock()
                to_me.wake()
        except BaseException as e:  # noqa: BLE001 - reported by the measuring thread
            failure.append(e)
            to_me.wake()

    th = threading.Thread(target=peer, name="vsmsim-handoff-peer", daemon=True)
    try:
        with _pinned(cpus[0]):
            th.start()
            clock, wake, wait = time.perf_counter_ns, to_peer.wake, to_me.wait
            samples = []
            for i in range(n + 11):
                spin(gap_s)
                t0 = clock()
                wake()
                wait()
                if failure:
                    break
                if i > 10:
                    samples.append(stamp[0] - t0)
            th.join(5.0)
    finally:
        to_peer.close()
        to_me.close()
    if failure:
        raise failure[0]
    return statistics.median(samples)


#: A process that keeps one CPU runnable at the lowest priority (``SCHED_IDLE``): the
#: target CPU of a "busy" hand-off does not go idle, and anything woken there preempts it.
IDLE_SPINNER = ("import os\nos.sched_setaffinity(0, {%d})\n"
                "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
                "while True:\n    pass\n")


@contextmanager
def busy_cpu(cpu: int | None):
    """Keep *cpu* busy with a ``SCHED_IDLE`` spinner process while the block runs (None:
    nothing)."""
    if cpu is None:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", IDLE_SPINNER % cpu])
    try:
        time.sleep(0.2)          # started and spinning
        yield
    finally:
        proc.kill()
        proc.wait()


def measure_handoff(mechanism: str, cross: bool, ov: Overheads, repeat: int, plan: PathPlan,
                    pair: tuple[int, int] | None, busy: bool = False) -> Figure | None:
    """One-way hand-off: a busy thread wakes a thread blocked on *mechanism*, from before
    the wake call to the return of the wait (both stamped with the system-wide monotonic
    clock), net of the clock and two Python calls (the wake, the wait's return). ``cross``
    puts the threads on two CPUs (None if there is only one). ``busy`` (across CPUs only)
    keeps the target CPU from idling with a ``SCHED_IDLE`` spinner: the hand-off to a
    CPU that is running something else, reported as ``handoff_<mechanism>_cross_busy``."""
    if pair is None:
        if cross:
            return None
        pair = (next(iter(os.sched_getaffinity(0))),) * 2
    cpus = pair if cross else (pair[0], pair[0])
    busy = busy and cross
    vals = []
    with busy_cpu(cpus[1] if busy else None):
        for _ in range(repeat):
            one_way = _handoff_once(mechanism, plan.handoff_samples, cpus, plan.gap_s)
            vals.append(ov.net(one_way, 2))
    key = f"handoff_{mechanism}" + ("_cross" if cross else "") + ("_busy" if busy else "")
    how = {"futex": "a threading.Lock released to a thread blocked acquiring it (futex)",
           "eventfd": "an eventfd written to a thread blocked reading it"}[mechanism]
    where = f"CPUs {cpus[0]} -> {cpus[1]}" if cross else f"both threads on CPU {cpus[0]}"
    target = ("; the target CPU kept busy by a SCHED_IDLE spinner" if busy else
              "; the target CPU idle between wakes" if cross else "")
    return Figure(key, vals, f"one-way hand-off: {how}; {where}{target}; the waker busy "
                  f"{plan.gap_s * 1e6:.0f} us before each wake; net of the clock and two "
                  "Python calls", per_run=f"each: median of {plan.handoff_samples} hand-offs")


# --- kicks, MSIs and first runs of vCPU threads ------------------------------------------

class _VcpuThread:
    """A thread that owns a 64-bit vCPU and runs it in a loop, timestamping each return.

    ``mode`` is ``"parked"`` (mp_state HALTED: KVM_RUN blocks until a kick; each EINTR is
    a sample) or ``"halted"`` (the guest's ``sti; hlt``: each MSI-driven KVM_EXIT_IO of the
    handler is a sample) or ``"woken"`` (blocked on an eventfd; on each wake it times two
    KVM_RUN round trips).
    """

    def __init__(self, vm: Vm, mode: str, cpu: int):
        self.vm, self.vcpu, self.mode, self.cpu = vm, vm.vcpus[0], mode, cpu
        self.stamp = 0
        self.runs = (0, 0)
        self.ready = os.eventfd(0)
        self.wake_fd = os.eventfd(0)
        self.stopping = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name=f"vsmsim-vcpu-{mode}",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        ioctl, clock, fd, vcpu = fcntl.ioctl, time.perf_counter_ns, self.vcpu.fd, self.vcpu
        try:
            os.sched_setaffinity(0, {self.cpu})
            if self.mode == "parked":
                vcpu.set_mp_state(MP_STATE_HALTED)
            os.eventfd_write(self.ready, 1)
            while not self.stopping:
                if self.mode == "woken":
                    os.eventfd_read(self.wake_fd)
                    if self.stopping:
                        break
                    t0 = clock()
                    ioctl(fd, KVM_RUN, 0)
                    t1 = clock()
                    ioctl(fd, KVM_RUN, 0)
                    t2 = clock()
                    self.runs = (t1 - t0, t2 - t1)
                else:
                    try:
                        ioctl(fd, KVM_RUN, 0)
                    except InterruptedError:
                        self.stamp = clock()
                        vcpu.set_immediate_exit(0)
                    else:
                        self.stamp = clock()
                        if self.mode == "parked":
                            raise KvmError("a parked vCPU left KVM_RUN without a kick")
                        vcpu.expect_io(guest64.PORT_IRQ)
                os.eventfd_write(self.ready, 1)
        except BaseException as e:  # noqa: BLE001 - handed to the measuring thread
            self.error = e
            os.eventfd_write(self.ready, 1)

    def wait_ready(self) -> None:
        """Block until the thread reported its last sample (raises its error)."""
        os.eventfd_read(self.ready)
        if self.error is not None:
            raise KvmError(f"vCPU thread failed: {self.error}")

    def kick(self) -> None:
        """Force the thread out of KVM_RUN: immediate_exit, then the kick signal."""
        self.vcpu.set_immediate_exit(1)
        signal.pthread_kill(self.thread.ident, KICK_SIGNAL)

    def stop(self) -> None:
        """Stop the thread and release its eventfds."""
        self.stopping = True
        if self.thread.is_alive():
            if self.mode == "woken":
                os.eventfd_write(self.wake_fd, 1)
            else:
                self.kick()
            self.thread.join(2.0)
        if self.thread.is_alive():
            raise KvmError("the vCPU thread did not stop")
        os.close(self.ready)
        os.close(self.wake_fd)


class kick_handler:
    """Context manager: a no-op Python handler for :data:`KICK_SIGNAL` (main thread only),
    so that the signal interrupts KVM_RUN (EINTR) instead of killing the process."""

    def __enter__(self):
        self.old = signal.signal(KICK_SIGNAL, lambda *_: None)
        return self

    def __exit__(self, *exc):
        signal.signal(KICK_SIGNAL, self.old)


def _enable_lapic(vcpu) -> None:
    """Software-enable the LAPIC (SVR = 0x1FF) with KVM_SET_LAPIC, so that fixed MSIs are
    accepted; the guest's handler sends the EOI."""
    buf = vcpu.state_buffer("lapic")
    vcpu.get_state("lapic", buf)
    buf[0xF0:0xF4] = (0x1FF).to_bytes(4, "little")
    vcpu.set_state("lapic", buf)


def measure_kick(kvm: Kvm, cross: bool, ov: Overheads, repeat: int, plan: PathPlan,
                 pair, polled: bool = False) -> Figure | None:
    """``kick_parked[_cross]``: immediate_exit + pthread_kill of a thread whose vCPU is
    parked in KVM_RUN (mp_state HALTED) to its KVM_RUN returning EINTR; net of the clock
    and two Python calls (the kill, the return of KVM_RUN).

    Across CPUs the kicker stays busy for twice ``halt_poll_ns`` before each kick, so
    that the parked vCPU has stopped halt-polling and sleeps, as VTL1's does while VTL0
    runs (KVM polls a halted vCPU for up to ``halt_poll_ns`` and drops the poll after a
    longer block: ``kvm_vcpu_halt``, virt/kvm/kvm_main.c); ``polled`` measures instead
    after ``plan.gap_s`` (100 us: inside the poll window), reported as
    ``kick_parked_cross_polled`` (bench/kick_gap.py: 16-25 us against 40-53 here). On one
    CPU the poll stops as soon as the kicker is runnable, so the figure does not depend on
    the gap and keeps ``plan.gap_s``."""
    cpus = _cpus(pair, cross)
    if cpus is None:
        return None
    gap = plan.gap_s if polled or not cross else max(plan.gap_s, 2 * _halt_poll_s())
    with long_mode_vm(kvm, guest64.OUT_LOOP) as vm, _pinned(cpus[0]), kick_handler():
        th = _VcpuThread(vm, "parked", cpus[1])
        try:
            th.wait_ready()
            vals = _wake_medians(th, repeat, plan.kick_samples, lambda: spin(gap),
                                 th.kick, ov)
        finally:
            th.stop()
    key = "kick_parked" + ("_cross" if cross else "") + ("_polled" if polled and cross else "")
    asleep = ("past halt polling: the vCPU sleeps" if cross and not polled else
              "inside the halt-poll window" if cross else "")
    return Figure(key, vals,
                  f"signal kick of a vCPU parked in KVM_RUN (mp_state HALTED) to its EINTR "
                  f"return; {_where(cpus)}; the kicker busy {gap * 1e6:.0f} us before "
                  f"each kick{'; ' + asleep if asleep else ''}; net of the clock and two "
                  "Python calls", per_run=f"each: median of {plan.kick_samples} kicks")


def _wake_medians(th, repeat: int, samples: int, before, wake, ov: Overheads) -> list:
    """Per run, the median time (ns, net of the clock and two Python calls) from *wake*
    to vCPU thread *th* reporting back, over *samples* wakes after 3 warm-up ones, each
    after *before* (a spin or a sleep)."""
    vals = []
    for _ in range(repeat):
        got = []
        for i in range(samples + 3):
            before()
            t0 = time.perf_counter_ns()
            wake()
            th.wait_ready()
            if i >= 3:
                got.append(th.stamp - t0)
        vals.append(ov.net(statistics.median(got), 2))
    return vals


def measure_msi(kvm: Kvm, cross: bool, ov: Overheads, repeat: int, plan: PathPlan,
                pair) -> Figure | None:
    """``msi_halted``: KVM_SIGNAL_MSI into a vCPU halted in the guest (``sti; hlt``) to its
    thread's KVM_RUN returning with the handler's ``out``; net of the clock and two Python
    calls."""
    cpus = _cpus(pair, cross)
    if cpus is None:
        return None
    # Longer than halt polling (halt_poll_ns, 200 us by default), so the vCPU is asleep.
    gap = max(plan.gap_s, 2 * _halt_poll_s())
    with long_mode_vm(kvm, guest64.HALT_IDLE) as vm, _pinned(cpus[0]), kick_handler():
        _enable_lapic(vm.vcpus[0])
        th = _VcpuThread(vm, "halted", cpus[1])
        try:
            th.wait_ready()  # started
            vals = _wake_medians(th, repeat, plan.kick_samples, lambda: time.sleep(gap),
                                 lambda: vm.signal_msi(guest64.VECTOR), ov)
        finally:
            th.stop()
    return Figure("msi_halted" + ("" if cross else "_same_cpu"), vals,
                  f"KVM_SIGNAL_MSI into a vCPU halted in the guest (sti; hlt) to its thread's "
                  f"KVM_RUN return (handler out); {_where(cpus)}; {gap * 1e6:.0f} us after the "
                  "last, past halt polling; net of the clock and two Python calls",
                  per_run=f"each: median of {plan.kick_samples} MSIs")


def measure_first_run(kvm: Kvm, ov: Overheads, repeat: int, plan: PathPlan,
                      pair) -> Figure | None:
    """``first_run_after_migration``: a thread woken by an eventfd from another CPU times
    its first KVM_RUN round trip and the next one; the figure is first minus next."""
    if pair is None:
        return None
    vals = []
    with long_mode_vm(kvm, guest64.OUT_LOOP) as vm, _pinned(pair[0]):
        th = _VcpuThread(vm, "woken", pair[1])
        try:
            th.wait_ready()
            for _ in range(repeat):
                extra = []
                for i in range(plan.kick_samples + 3):
                    spin(plan.gap_s)
                    os.eventfd_write(th.wake_fd, 1)
                    th.wait_ready()
                    if i >= 3:
                        extra.append(th.runs[0] - th.runs[1])
                vals.append(statistics.median(extra))
        finally:
            th.stop()
    return Figure("first_run_after_migration", vals,
                  f"extra of the first KVM_RUN round trip of a thread just woken from another "
                  f"CPU over its next one; {_where(pair)}",
                  per_run=f"each: median of {plan.kick_samples} wake-ups")


def _switch_work(kvm: Kvm, vcpu, shared: dict | None = None) -> tuple[list, dict]:
    """One switch's state work on *vcpu* as (request, buffer) pairs, in a VMM's order: the
    sets of :data:`PUT_KINDS` from the buffers in *shared* (what the other thread got from
    its vCPU: the state a switch carries across), a KVM_RUN round trip (buffer None), then
    the gets of :data:`STATE_KINDS` into the same buffers (MSRs with :data:`MSR_ENTRIES`
    entries). With *shared* None the buffers are made (and filled) from *vcpu*. Kinds this
    KVM refuses are left out. Returns the calls and the buffers."""
    table = path_state_ioctls(kvm)
    bufs = {} if shared is None else shared
    gets, sets = [], []
    for kind in STATE_KINDS:
        get_req, set_req, size, _name = table[kind]
        if shared is None:
            if kind == "msrs":
                try:
                    bufs[kind] = msr_buffer(vmm_msrs(kvm, vcpu, MSR_ENTRIES))
                except KvmError:
                    continue
            else:
                bufs[kind] = bytearray(size)
            try:
                fcntl.ioctl(vcpu.fd, get_req, bufs[kind], True)
                fcntl.ioctl(vcpu.fd, set_req, bufs[kind], True)
            except OSError:
                del bufs[kind]
                continue
        elif kind not in bufs:
            continue
        gets.append((get_req, bufs[kind]))
        if kind in PUT_KINDS:
            sets.append((set_req, bufs[kind]))
    return sets + [(KVM_RUN, None)] + gets, bufs


def timed_work(fd: int, calls, ioctl=fcntl.ioctl, clock=time.perf_counter_ns) -> int:
    """Issue *calls* (the (request, buffer) pairs of :func:`_switch_work`; buffer None:
    ``KVM_RUN``) on vCPU *fd*; return the ns they took."""
    t0 = clock()
    for req, buf in calls:
        if buf is None:
            ioctl(fd, req, 0)
        else:
            ioctl(fd, req, buf, True)
    return clock() - t0


#: Turns per block of the cold-wake ping-pong, and blocks per run (half of them across
#: CPUs, half on one CPU, alternating so that a change of load falls on both).
WAKE_COLD_TURNS, WAKE_COLD_BLOCKS = 40, 6
#: Untimed busy time at the end of each ping-pong turn, so that the other thread's CPU sits
#: idle about as long as a table's switch keeps it (the other VMM thread's gets, sets and
#: KVM_RUN: 150-250 us on this project's nested host). The slowness after a wake grows
#: with the idle time before it (docs/calibration.md).
WAKE_COLD_GAP_S = 150e-6


def measure_cross_slowdown(kvm: Kvm, repeat: int, pair,
                           gap_s: float = WAKE_COLD_GAP_S) -> tuple[Figure, Figure] | None:
    """``cross_cpu_slowdown`` (a ratio) and ``wake_cold_cross`` (ns per hand-off): how much
    slower two vCPU threads that hand off to each other work across CPUs than on one.

    Two threads, each owning the vCPU of its own VM, play ping-pong with futex hand-offs
    (a ``threading.Lock`` each, as the prototypes' VMMs do). Each turn, the woken thread
    does one switch's state work (:func:`_switch_work`: the sets from the state the other
    thread just got, a KVM_RUN round trip, the gets; about what a table's VMM thread does
    between a wake and its next block) and
    hands off back. Blocks of :data:`WAKE_COLD_TURNS` turns alternate between the two
    threads on two CPUs and on one; the figure of a run is the median turn's work across
    CPUs minus the median on one CPU (the hand-offs themselves are not in the timed work:
    they are ``handoff_futex`` and ``handoff_futex_cross``). This is the whole slowness of
    the woken thread's work until it blocks again, not only its first calls: on this
    project's nested host an idle CPU's vCPU halts in the outer host, and everything the
    VMM does for tens to hundreds of microseconds after a wake there runs slower, by an
    amount that changes with the outer host's load (docs/calibration.md). The slowness is
    in proportion to the work (every segment of a prototype's switch is slower by about
    the same factor), so the ratio is what a prediction applies; the difference is the
    same effect as ns for this turn's work. None without two CPUs."""
    cpus = _cpus(pair, True)
    if cpus is None:
        return None
    with long_mode_vm(kvm, guest64.OUT_LOOP) as vm_a, long_mode_vm(kvm, guest64.OUT_LOOP) as vm_b:
        for vm in (vm_a, vm_b):
            vm.vcpus[0].run()
        # one set of buffers: each thread sets its vCPU from what the other just got, as a
        # VMM's switch carries one VTL's state to the other's thread (and CPU)
        work_a, bufs = _switch_work(kvm, vm_a.vcpus[0])
        work_b, _bufs = _switch_work(kvm, vm_b.vcpus[0], bufs)
        fd_a, fd_b = vm_a.vcpus[0].fd, vm_b.vcpus[0].fd
        to_a, to_b = threading.Lock(), threading.Lock()
        to_a.acquire()
        to_b.acquire()
        where = [cpus[1]]            # the peer's CPU for the next block
        times: list[int] = []        # the peer's turns of the current block
        stop, failure = [False], []

        def peer():
            try:
                cpu = None
                while True:
                    to_b.acquire()
                    if stop[0]:
                        return
                    if where[0] != cpu:          # a new block: move before the next turn
                        cpu = where[0]
                        os.sched_setaffinity(0, {cpu})
                        to_a.release()
                        continue
                    times.append(timed_work(fd_b, work_b))
                    spin(gap_s)
                    to_a.release()
            except BaseException as e:  # noqa: BLE001 - handed to the measuring thread
                failure.append(e)
                to_a.release()

        th = threading.Thread(target=peer, name="vsmsim-wake-cold", daemon=True)
        ratios, extras = [], []
        try:
            with _pinned(cpus[0]):
                th.start()
                for _ in range(repeat):
                    by = {True: [], False: []}
                    for block in range(WAKE_COLD_BLOCKS):
                        far = block % 2 == 0
                        where[0] = cpus[1] if far else cpus[0]
                        to_b.release()                 # the peer moves
                        to_a.acquire()
                        del times[:]
                        mine = []
                        for _t in range(WAKE_COLD_TURNS + 2):
                            mine.append(timed_work(fd_a, work_a))
                            spin(gap_s)
                            to_b.release()
                            to_a.acquire()
                            if failure:
                                raise KvmError(f"vCPU thread failed: {failure[0]}")
                        # the first two turns of a block follow the move: not counted
                        by[far].extend(mine[2:] + times[2:])
                    far, near = statistics.median(by[True]), statistics.median(by[False])
                    ratios.append(far / near)
                    extras.append(far - near)
        finally:
            stop[0] = True
            if th.is_alive():
                to_b.release()
                th.join(2.0)
    what = (f"a VMM thread's work between two futex hand-offs (the gets of "
            f"{len(STATE_KINDS)} state kinds, the sets of {len(PUT_KINDS)}, {MSR_ENTRIES} MSR "
            f"entries, a KVM_RUN round trip) when two such threads (a VM each) ping-pong "
            f"across CPUs {cpus[0]} and {cpus[1]}, against the same on one CPU; blocks of "
            f"{WAKE_COLD_TURNS} turns alternating")
    n = WAKE_COLD_BLOCKS // 2 * WAKE_COLD_TURNS * 2
    return (Figure("cross_cpu_slowdown", ratios, "ratio of " + what, unit="x",
                   per_run=f"each: median of {n} turns across over the median of as many "
                   "on one CPU"),
            Figure("wake_cold_cross", extras, "extra per hand-off of " + what,
                   per_run=f"each: median of {n} turns across minus the median of as "
                   "many on one CPU"))


def _halt_poll_s() -> float:
    """KVM's ``halt_poll_ns`` module parameter in seconds (200 us if unreadable)."""
    try:
        with open("/sys/module/kvm/parameters/halt_poll_ns") as f:
            return int(f.read().strip()) / 1e9
    except (OSError, ValueError):
        return 200e-6


def _cpus(pair, cross: bool):
    if pair is None:
        return None if cross else (0, 0)
    return pair if cross else (pair[0], pair[0])


def _where(cpus) -> str:
    return f"CPUs {cpus[0]} -> {cpus[1]}" if cpus[0] != cpus[1] else f"both on CPU {cpus[0]}"

