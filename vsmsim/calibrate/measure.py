"""The measurements: each one returns a :class:`Figure`, one value per run, in ns.

Three kinds of timing are used, each with its own clock:

* host-timed batches: ``time.perf_counter_ns()`` around a Python loop of ioctls
  (trivial ioctl, KVM_GET_REGS, KVM_RUN returning KVM_EXIT_IO); one value per run is the
  mean per call of the batch;
* guest-timed loops: the guest reads its TSC (``rdtsc``) around a loop of N operations
  and reports the tick count with an ``out``; ticks become ns with the guest TSC rate,
  itself measured against ``perf_counter_ns`` over a known interval;
* cross-thread events: one thread raises an interrupt or writes a pipe and another
  thread or process notices; one value per run is the median of the run's samples. The
  two sides are pinned to two different CPUs (or, for one figure, to the same CPU),
  because on nested hosts the two cases differ tenfold.

Every VM, vCPU, mapping, pipe, thread and child process is released before a function
returns, also on error.
"""

from __future__ import annotations

import fcntl
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import guest
from .kvm import KVM_CHECK_EXTENSION, KVM_EXIT_IO, KVM_GET_REGS, KVM_RUN, Kvm, KvmError, Vm

#: Guest code slower than this per simple instruction (ns) is not running natively: a
#: ``dec``/``jnz`` pair takes about 1 ns on any CPU that runs it in hardware.
EMULATION_THRESHOLD_NS = 20.0


@dataclass
class Plan:
    """How much work each run of each measurement does (``quick`` shrinks it)."""

    ioctl_calls: int = 20000        # trivial ioctls / KVM_GET_REGS per run
    run_calls: int = 5000           # KVM_RUN round trips per run
    tsc_interval_s: float = 0.2     # host interval the TSC rate is measured over
    guest_batch_ns: float = 5e6     # target guest time of one timed loop batch
    irq_samples: int = 50           # interrupts per run (halted and running vCPU)
    irq_gap_s: float = 0.001        # pause between interrupts (longer than halt polling)
    pingpong: int = 3000            # round trips per run of a host wake-up ping-pong

    @classmethod
    def quick(cls) -> Plan:
        """A plan that finishes in about a second on a nested host."""
        return cls(ioctl_calls=3000, run_calls=500, tsc_interval_s=0.02, guest_batch_ns=3e5,
                   irq_samples=8, irq_gap_s=0.0005, pingpong=200)


@dataclass
class Figure:
    """One measured quantity: one value per run (ns unless *unit* says otherwise)."""

    key: str
    values: list[float]
    what: str
    unit: str = "ns"
    per_run: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(self.values)

    @property
    def median(self) -> float:
        """Median over runs."""
        return statistics.median(self.values)

    @property
    def p10(self) -> float:
        """10th percentile over runs (linear interpolation)."""
        return quantile(self.values, 0.1)

    @property
    def p90(self) -> float:
        """90th percentile over runs (linear interpolation)."""
        return quantile(self.values, 0.9)

    def spread(self) -> str:
        """``median X, p10 Y, p90 Z, n N runs (of ...)`` in ns, for profile notes."""
        if self.unit == "ns":
            fmt = _fmt_ns
        else:
            def fmt(v):
                return f"{v:.6g} {self.unit}"
        each = f" ({self.per_run})" if self.per_run else ""
        return (f"median {fmt(self.median)}, p10 {fmt(self.p10)}, p90 {fmt(self.p90)} "
                f"over n={self.n} runs{each}")


def quantile(values, q: float) -> float:
    """The *q* quantile of *values*, interpolating linearly between order statistics."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _fmt_ns(ns: float) -> str:
    if abs(ns) >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if abs(ns) >= 1e3:
        return f"{ns / 1e3:.3g} us"
    return f"{ns:.3g} ns"


def derived(key: str, a: Figure, b: Figure, what: str, scale_b: float = 1.0) -> Figure:
    """Figure whose run *i* is ``a[i] - scale_b * b[i]`` (runs are paired by index)."""
    vals = [x - scale_b * y for x, y in zip(a.values, b.values)]
    return Figure(key, vals, what, per_run=f"{a.key} minus {b.key}, run by run")


# --- host-timed ioctl batches ------------------------------------------------------------

def _ioctl_batch(fd: int, request: int, n: int) -> float:
    ioctl, clock = fcntl.ioctl, time.perf_counter_ns
    rng = range(n)
    t0 = clock()
    for _ in rng:
        ioctl(fd, request, 0)
    return (clock() - t0) / n


def measure_trivial_ioctl(kvm: Kvm, repeat: int, plan: Plan) -> Figure:
    """KVM_CHECK_EXTENSION(0) on the system fd, timed from Python (call + syscall)."""
    _ioctl_batch(kvm.fd, KVM_CHECK_EXTENSION, plan.ioctl_calls // 10)  # warm up
    vals = [_ioctl_batch(kvm.fd, KVM_CHECK_EXTENSION, plan.ioctl_calls) for _ in range(repeat)]
    return Figure("ioctl_trivial", vals,
                  "trivial ioctl from Python: KVM_CHECK_EXTENSION on the system fd "
                  "(Python call + syscall)", per_run=f"each: mean of {plan.ioctl_calls} calls")


def measure_get_regs(vcpu, repeat: int, plan: Plan) -> Figure:
    """KVM_GET_REGS (144 bytes copied out) on a vCPU fd, timed from Python."""
    buf = bytearray(144)
    ioctl, clock, fd, n = fcntl.ioctl, time.perf_counter_ns, vcpu.fd, plan.ioctl_calls

    def batch(count):
        t0 = clock()
        for _ in range(count):
            ioctl(fd, KVM_GET_REGS, buf, True)
        return (clock() - t0) / count

    batch(n // 10)
    vals = [batch(n) for _ in range(repeat)]
    return Figure("ioctl_get_regs", vals,
                  "vCPU state get from Python: KVM_GET_REGS on the vCPU fd (Python call + "
                  "syscall + copy)", per_run=f"each: mean of {n} calls")


def measure_uexit_roundtrip(vm: Vm, repeat: int, plan: Plan) -> Figure:
    """KVM_RUN that returns KVM_EXIT_IO each time (guest: ``out $0x10,%al; jmp``)."""
    vm.write(guest.CODE, guest.OUT_LOOP)
    vcpu = vm.vcpus[0]
    vcpu.set_real_mode(guest.CODE, guest.STACK)
    vcpu.run()
    vcpu.expect_io(guest.PORT_UEXIT)

    def batch():
        per_call = _ioctl_batch(vcpu.fd, KVM_RUN, plan.run_calls)
        vcpu.expect_io(guest.PORT_UEXIT)
        return per_call

    _ioctl_batch(vcpu.fd, KVM_RUN, plan.run_calls // 10)
    vals = [batch() for _ in range(repeat)]
    return Figure("kvm_run_io", vals,
                  "userspace exit round trip as seen from Python: KVM_RUN -> guest OUT -> "
                  "KVM_EXIT_IO -> return (raw, includes the Python call)",
                  per_run=f"each: mean of {plan.run_calls} KVM_RUN calls")


# --- guest TSC ---------------------------------------------------------------------------

def _tsc_sample(vcpu) -> tuple[float, float, int]:
    """(host time at the guest's rdtsc, uncertainty, guest TSC); the host time is the
    middle of the KVM_RUN that executed the rdtsc."""
    clock = time.perf_counter_ns
    t0 = clock()
    vcpu.run()
    t1 = clock()
    vcpu.expect_io(guest.PORT_TSC_LO)
    lo = vcpu.io_value()
    vcpu.run()
    vcpu.expect_io(guest.PORT_TSC_HI)
    hi = vcpu.io_value()
    return (t0 + t1) / 2, (t1 - t0) / 2, (hi << 32) | lo


def _best_tsc_sample(vcpu, tries: int = 7):
    return min((_tsc_sample(vcpu) for _ in range(tries)), key=lambda s: s[1])


def measure_tsc_mhz(vm: Vm, repeat: int, plan: Plan) -> Figure:
    """Guest TSC rate: guest rdtsc correlated with perf_counter_ns over an interval.

    Each sample's host time is the middle of the KVM_RUN that executed the rdtsc; the best
    of several samples (shortest KVM_RUN) is kept at each end of the interval.
    """
    vm.write(guest.CODE, guest.TSC_PROBE)
    vcpu = vm.vcpus[0]
    vcpu.set_real_mode(guest.CODE, guest.STACK)
    _tsc_sample(vcpu)
    vals = []
    for _ in range(repeat):
        t_a, _ea, tsc_a = _best_tsc_sample(vcpu)
        time.sleep(plan.tsc_interval_s)
        t_b, _eb, tsc_b = _best_tsc_sample(vcpu)
        vals.append((tsc_b - tsc_a) / (t_b - t_a) * 1e3)
    return Figure("tsc_mhz", vals, "guest TSC rate against perf_counter_ns", unit="MHz",
                  per_run=f"each: one {plan.tsc_interval_s * 1e3:g} ms interval")


# --- CPU placement -----------------------------------------------------------------------

def cpu_pair() -> tuple[int, int] | None:
    """Two CPUs this process may run on (the lowest two), or None if it has only one."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


@contextmanager
def _pinned(cpu: int | None):
    """Pin the calling thread to *cpu* (None: leave it) and restore its affinity after."""
    if cpu is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


# --- guest-timed loops -------------------------------------------------------------------

def _run_loop(vm: Vm, vcpu, count: int) -> int:
    """Run one batch of *count* iterations; return its TSC ticks."""
    vm.write(guest.COUNT, count.to_bytes(4, "little"))
    vcpu.run()
    vcpu.expect_io(guest.PORT_LOOP)
    return vcpu.io_value()


def measure_guest_ops(vm: Vm, tsc_mhz: float, repeat: int, plan: Plan) -> dict[str, Figure]:
    """Time each of :data:`guest.OPS` from inside the guest; return figures by op name.

    ``empty`` is the per-iteration loop overhead (``dec``/``jnz``) in ns per instruction;
    every other op is its per-iteration time minus the empty loop's, paired by run.
    *vm* must have an in-kernel irqchip (``pic_in`` is an in-kernel PIC access).
    """
    ticks_per_ns = tsc_mhz / 1e3
    target = plan.guest_batch_ns * ticks_per_ns
    vcpu = vm.vcpus[0]
    counts, per_iter = {}, {name: [] for name in guest.OPS}
    for name, body in guest.OPS.items():
        vm.write(guest.CODE, guest.timed_loop(body))
        vcpu.set_real_mode(guest.CODE, guest.STACK)
        count = 16
        while True:
            ticks = _run_loop(vm, vcpu, count)
            if ticks >= target or count >= 1 << 26:
                break
            # Aim past the target from the last batch; at most x64 per step.
            count = min(count * 64, max(count * 2, int(count * target * 1.2 / max(ticks, 1))))
        counts[name] = count
    for _ in range(repeat):
        for name, body in guest.OPS.items():
            vm.write(guest.CODE, guest.timed_loop(body))
            vcpu.set_real_mode(guest.CODE, guest.STACK)
            ticks = _run_loop(vm, vcpu, counts[name])
            per_iter[name].append(ticks / counts[name] / ticks_per_ns)
    what = {
        "cpuid": "guest-timed CPUID (leaf 0), handled in the kernel: exit + entry if native",
        "rdmsr": "guest-timed RDMSR of IA32_APIC_BASE, handled in the kernel",
        "pic_in": "guest-timed IN from the in-kernel PIC (port 0x21)",
    }
    out = {"empty": Figure("guest_insn", [v / 2 for v in per_iter["empty"]],
                           "guest time per simple instruction (dec/jnz loop); ~1 ns if the "
                           "guest runs natively",
                           per_run=f"each: {counts['empty']} iterations")}
    for name in guest.OPS:
        if name == "empty":
            continue
        vals = [v - e for v, e in zip(per_iter[name], per_iter["empty"])]
        out[name] = Figure(f"guest_{name}", vals, what[name],
                           per_run=f"each: {counts[name]} iterations, minus the empty loop")
    return out


# --- interrupts to a halted / running vCPU -----------------------------------------------

class _IrqResponder:
    """Runs a vCPU on its own thread and timestamps each guest report of an interrupt."""

    def __init__(self, vm: Vm, idle: bytes, cpu: int | None = None):
        self.vm = vm
        self.cpu = cpu
        self.vcpu = vm.vcpus[0]
        vm.write(guest.CODE, guest.IRQ_SETUP + idle)
        vm.write(guest.HANDLER, guest.IRQ_HANDLER)
        vm.write(*guest.ivt_entry(guest.VECTOR, guest.HANDLER))
        self.vcpu.set_real_mode(guest.CODE, guest.STACK)
        self.vcpu.run()
        self.vcpu.expect_io(guest.PORT_READY)
        self.event = threading.Event()
        self.stamp = 0
        self.error: BaseException | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="vsmsim-calibrate-vcpu",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        ioctl, clock = fcntl.ioctl, time.perf_counter_ns
        fd, vcpu = self.vcpu.fd, self.vcpu
        try:
            if self.cpu is not None:
                os.sched_setaffinity(0, {self.cpu})  # this thread only
            while True:
                ioctl(fd, KVM_RUN, 0)
                t = clock()
                if vcpu.exit_reason() != KVM_EXIT_IO or vcpu.io()[2] != guest.PORT_IRQ:
                    vcpu.expect_io(guest.PORT_IRQ)  # raises with the details
                self.stamp = t
                self.event.set()
                if self.stopping:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the measuring thread
            if not self.stopping:
                self.error = e
            self.event.set()

    def interrupt(self, timeout: float = 1.0) -> int:
        """Raise the IRQ (edge) and return ns from just before KVM_IRQ_LINE to the vCPU
        thread's return from KVM_RUN with the guest's report."""
        self.event.clear()
        t0 = time.perf_counter_ns()
        self.vm.irq_line(guest.IRQ, 1)
        ok = self.event.wait(timeout)
        self.vm.irq_line(guest.IRQ, 0)
        if self.error is not None:
            raise KvmError(f"vCPU thread failed: {self.error}")
        if not ok:
            raise KvmError(f"interrupt not delivered to the vCPU within {timeout:g} s")
        return self.stamp - t0

    def stop(self) -> None:
        """Stop the vCPU thread: one last interrupt, then a signal if it does not return."""
        self.stopping = True
        if self.thread.is_alive() and self.error is None:
            try:
                self.event.clear()
                self.vm.irq_line(guest.IRQ, 1)
                self.vm.irq_line(guest.IRQ, 0)
            except OSError:
                pass
            self.thread.join(1.0)
        if self.thread.is_alive():
            _signal_thread(self.thread)
            self.thread.join(1.0)
        if self.thread.is_alive():
            raise KvmError("the vCPU thread did not leave KVM_RUN")


def _signal_thread(thread: threading.Thread) -> None:
    """Interrupt *thread*'s KVM_RUN with SIGUSR1 (needs the main thread for the handler)."""
    if threading.current_thread() is not threading.main_thread():
        return
    old = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        signal.pthread_kill(thread.ident, signal.SIGUSR1)
        thread.join(1.0)
    finally:
        signal.signal(signal.SIGUSR1, old)


def measure_vcpu_irq(kvm: Kvm, idle: str, repeat: int, plan: Plan,
                     cpus: tuple[int, int] | None = None) -> Figure:
    """ns from KVM_IRQ_LINE (PIC IRQ4, edge) on this thread to KVM_RUN returning on the
    vCPU thread, with the vCPU halted (``idle="halt"``) or spinning (``idle="spin"``).

    With *cpus*, this thread runs on ``cpus[0]`` and the vCPU thread on ``cpus[1]``, so a
    halted vCPU is woken across CPUs, as a VMM's I/O thread would wake it.
    """
    code = guest.HALT_IDLE if idle == "halt" else guest.SPIN_IDLE
    with Vm(kvm, irqchip=True) as vm, _pinned(cpus[0] if cpus else None):
        vm.create_vcpu()
        responder = _IrqResponder(vm, code, cpus[1] if cpus else None)
        try:
            time.sleep(plan.irq_gap_s)
            responder.interrupt()  # warm up
            vals = []
            for _ in range(repeat):
                samples = []
                for _ in range(plan.irq_samples):
                    time.sleep(plan.irq_gap_s)
                    samples.append(responder.interrupt())
                vals.append(statistics.median(samples))
        finally:
            responder.stop()
    state = "halted in HLT (blocked in the kernel)" if idle == "halt" else \
        "running (guest spin loop with interrupts enabled)"
    where = f"; this thread on CPU {cpus[0]}, the vCPU thread on CPU {cpus[1]}" if cpus else ""
    return Figure(f"vcpu_irq_{idle}", vals,
                  f"KVM_IRQ_LINE from another thread to the vCPU thread's KVM_RUN return "
                  f"(guest handler OUT); vCPU {state}{where}",
                  per_run=f"each: median of {plan.irq_samples} interrupts")


# --- host wake-ups -----------------------------------------------------------------------
#
# A wake-up across CPUs and one on the same CPU differ by an order of magnitude on nested
# hosts (the idle CPU has to be woken by an IPI that goes through the outer hypervisor),
# so the peers are pinned: two different CPUs, or both on one CPU.

def _pingpong(write_fd: int, read_fd: int, n: int) -> float:
    """Median round trip (ns) of *n* one-byte ping-pongs, each timed on its own."""
    clock, write, read = time.perf_counter_ns, os.write, os.read
    samples = []
    for _ in range(n):
        t0 = clock()
        write(write_fd, b"x")
        if not read(read_fd, 1):
            raise OSError("the ping-pong peer closed its pipe")
        samples.append(clock() - t0)
    return statistics.median(samples)


def measure_thread_pingpong(repeat: int, plan: Plan,
                            cpus: tuple[int, int] | None = None) -> Figure:
    """One-way wake-up between two Python threads, pinned to *cpus* (this thread, the
    peer): median pipe ping-pong round trip / 2."""
    vals = [_pingpong_threads(plan.pingpong, cpus) / 2 for _ in range(repeat)]
    where = f" on CPUs {cpus[0]} and {cpus[1]}" if cpus else ""
    return Figure("wakeup_threads", vals,
                  f"host thread wake-up, one way: pipe ping-pong between two threads{where}, "
                  "round trip / 2 (includes GIL hand-off and Python calls)",
                  per_run=f"each: median of {plan.pingpong} round trips")


def _pingpong_threads(n: int, cpus) -> float:
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    failure = []

    def peer():
        try:
            if cpus:
                os.sched_setaffinity(0, {cpus[1]})  # this thread only
            for _ in range(n + 1):
                os.read(a_r, 1)
                os.write(b_w, b"x")
        except OSError as e:
            failure.append(e)

    th = threading.Thread(target=peer, name="vsmsim-calibrate-pong", daemon=True)
    try:
        with _pinned(cpus[0] if cpus else None):
            th.start()
            _pingpong(a_w, b_r, 1)  # warm up
            per_rt = _pingpong(a_w, b_r, n)
        th.join(5.0)
    finally:
        for fd in (a_w, b_w, a_r, b_r):
            os.close(fd)
    if failure:
        raise failure[0]
    return per_rt


_ECHO = ("import os, sys\n"
         "os.sched_setaffinity(0, {int(sys.argv[1])}) if len(sys.argv) > 1 else None\n"
         "while 1:\n b = os.read(0, 1)\n if not b: break\n os.write(1, b)\n")


def measure_process_pingpong(repeat: int, plan: Plan, cpus: tuple[int, int] | None,
                             key: str = "wakeup_processes") -> Figure | None:
    """One-way wake-up between two processes (no GIL), pinned to *cpus* (this process,
    the child; equal for a same-CPU figure): median pipe ping-pong round trip / 2.

    The peer is a child Python running a one-byte echo loop. Returns None if it cannot be
    started.
    """
    argv = [sys.executable, "-I", "-S", "-c", _ECHO] + ([str(cpus[1])] if cpus else [])
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 bufsize=0)
    except OSError:
        return None
    vals = []
    try:
        w, r = child.stdin.fileno(), child.stdout.fileno()
        with _pinned(cpus[0] if cpus else None):
            if _pingpong(w, r, 1) <= 0:  # warm up (and wait for the child to start)
                return None
            for _ in range(repeat):
                vals.append(_pingpong(w, r, plan.pingpong) / 2)
    except OSError:
        return None
    finally:
        child.stdin.close()
        try:
            child.wait(5.0)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()
    if cpus is None:
        where = "unpinned"
    elif cpus[0] == cpus[1]:
        where = f"both on CPU {cpus[0]}"
    else:
        where = f"on CPUs {cpus[0]} and {cpus[1]}"
    return Figure(key, vals,
                  f"host wake-up, one way: pipe ping-pong between two processes {where}, "
                  "round trip / 2 (includes one Python write and read per hop)",
                  per_run=f"each: median of {plan.pingpong} round trips")
