"""A KVM_RUN right after a switch's state sets against a plain one (docs/validation.md).

Usage::

    python bench/run_after_put.py            # 4 passes of 300 pairs

On one 64-bit vCPU pinned to CPU 0, alternately: a plain ``KVM_RUN`` round trip, then the
gets and the sets of a VMM's switch (``vsmsim.calibrate.paths._switch_work``: 9 kinds
got, 8 put back, 100 MSR entries), then a ``KVM_RUN`` round trip again. Printed per pass:
the median plain round trip and the median one after the sets (us). The tables price both
alike (``exit`` + ``uexit``); the difference is what the prototypes' ``KVM_RUN`` segments
carry beyond the guest work measured alone.
Timing only, so a benchmark, never a test; needs /dev/kvm.
"""

import fcntl
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vsmsim.calibrate import guest64  # noqa: E402
from vsmsim.calibrate.kvm import KVM_RUN, KvmUnavailable, open_kvm  # noqa: E402
from vsmsim.calibrate.paths import _switch_work, long_mode_vm  # noqa: E402


def run(passes: int = 4, pairs: int = 300) -> int:
    try:
        kvm = open_kvm()
    except KvmUnavailable as e:
        print(f"run_after_put: {e}", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    clock = time.perf_counter_ns
    with kvm, long_mode_vm(kvm, guest64.OUT_LOOP) as vm:
        vcpu = vm.vcpus[0]
        vcpu.run()
        fd = vcpu.fd
        work, _bufs = _switch_work(kvm, vcpu)
        cut = next(i for i, (_req, buf) in enumerate(work) if buf is None)
        sets, gets = work[:cut], work[cut + 1:]

        def round_trip() -> int:
            t0 = clock()
            fcntl.ioctl(fd, KVM_RUN, 0)
            return clock() - t0

        print(f"{'pass':>4s} {'plain us':>9s} {'after sets us':>14s} {'extra us':>9s}")
        for p in range(passes):
            plain, after = [], []
            for _ in range(pairs):
                plain.append(round_trip())
                for req, buf in gets + sets:
                    fcntl.ioctl(fd, req, buf, True)
                after.append(round_trip())
            a, b = statistics.median(plain) / 1e3, statistics.median(after) / 1e3
            print(f"{p:4d} {a:9.2f} {b:14.2f} {b - a:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
