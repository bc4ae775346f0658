"""The idle-CPU wake effect behind ``wake_cold_cross`` (docs/calibration.md, caveats).

Usage::

    python bench/cold_wake.py

A vCPU thread blocked on an eventfd is woken from a thread busy for a gap (on the same CPU
or the other one, optionally with a ``SCHED_IDLE`` spinner keeping the target CPU from
idling); it then times 16 ``KVM_GET_REGS`` and two ``KVM_RUN`` round trips one by one.
Printed: the median of each call (us) and the extra: the gets over 16 x the last one, plus
the first KVM_RUN over the second.
Timing only, so a benchmark, never a test; needs /dev/kvm and two CPUs.
"""

import fcntl
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vsmsim.calibrate import guest64  # noqa: E402
from vsmsim.calibrate.kvm import KVM_GET_REGS, KVM_RUN, open_kvm  # noqa: E402
from vsmsim.calibrate.paths import busy_cpu, long_mode_vm, spin  # noqa: E402

N = 16


def trial(kvm, cpus, gap_s, samples=200, spinner=False):
    """Median us of each of the N gets and two KVM_RUN after a wake (see the module doc)."""
    with busy_cpu(cpus[1] if spinner else None):
        with long_mode_vm(kvm, guest64.OUT_LOOP) as vm:
            fd = vm.vcpus[0].fd
            buf = vm.vcpus[0].state_buffer("regs")
            wake, ready = os.eventfd(0), os.eventfd(0)
            res = []

            def woken():
                os.sched_setaffinity(0, {cpus[1]})
                clock, ioctl = time.perf_counter_ns, fcntl.ioctl
                for _ in range(samples + 5):
                    os.eventfd_read(wake)
                    t = [clock()]
                    for _k in range(N):
                        ioctl(fd, KVM_GET_REGS, buf, True)
                        t.append(clock())
                    for _k in range(2):
                        ioctl(fd, KVM_RUN, 0)
                        t.append(clock())
                    res.append([t[j + 1] - t[j] for j in range(len(t) - 1)])
                    os.eventfd_write(ready, 1)

            th = threading.Thread(target=woken, daemon=True)
            os.sched_setaffinity(0, {cpus[0]})
            th.start()
            for _ in range(samples + 5):
                spin(gap_s)
                os.eventfd_write(wake, 1)
                os.eventfd_read(ready)
            th.join()
            os.close(wake)
            os.close(ready)
            return [statistics.median(c) / 1e3 for c in zip(*res[5:])]


def main() -> None:
    runs = [("same-cpu gap 100us", (0, 0), 100e-6, False),
            ("cross gap 100us", (0, 1), 100e-6, False),
            ("cross gap 20us", (0, 1), 20e-6, False),
            ("cross gap 1ms", (0, 1), 1e-3, False),
            ("cross gap 100us, SCHED_IDLE spinner on target", (0, 1), 100e-6, True),
            ("cross gap 1ms, SCHED_IDLE spinner on target", (0, 1), 1e-3, True)]
    print(f"load average {os.getloadavg()}")
    with open_kvm() as kvm:
        for label, cpus, gap, spinner in runs:
            m = trial(kvm, cpus, gap, spinner=spinner)
            gets = " ".join(f"{x:5.1f}" for x in m[:N])
            print(f"{label:48s} gets: {gets} | KVM_RUN {m[N]:5.1f} {m[N + 1]:5.1f} | extra "
                  f"{sum(m[:N]) - N * m[N - 1] + m[N] - m[N + 1]:6.1f}", flush=True)


if __name__ == "__main__":
    main()
