"""How long a vCPU was parked decides what its kick costs: KVM's halt-polling.

Usage::

    python bench/kick_gap.py                 # gaps 50-300 us, two passes
    python bench/kick_gap.py --gaps 100,250 --passes 3

For each gap, the calibration's own measurements (``vsmsim.calibrate.paths``) with the
waker busy for that gap before each wake: ``kick_parked_cross`` (a vCPU thread parked in
``KVM_RUN`` with mp_state HALTED on the other CPU, kicked with immediate_exit + SIGUSR1,
to its EINTR return), ``kick_parked`` (the same on one CPU) and ``handoff_futex_cross``;
least disturbed of three runs each, us. A vCPU that blocks for less than the host's
``halt_poll_ns`` (``/sys/module/kvm/parameters/halt_poll_ns``; KVM grows the poll window
towards it after short blocks and drops it after a long one: ``kvm_vcpu_halt`` in
virt/kvm/kvm_main.c) spins in the kernel and sees the kick at once; one parked longer
sleeps, its CPU idles, and the kick pays the wake. On one CPU the poll stops as soon as
another task is runnable, so the same-CPU kick does not depend on the gap.
Timing only, so a benchmark, never a test; needs /dev/kvm and two CPUs
(docs/validation.md, known limits).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vsmsim.calibrate import paths  # noqa: E402
from vsmsim.calibrate.kvm import KvmUnavailable, open_kvm  # noqa: E402
from vsmsim.calibrate.measure import cpu_pair  # noqa: E402


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gaps", default="50,100,150,200,300", help="waker busy time, us")
    p.add_argument("--passes", type=int, default=2)
    args = p.parse_args(argv)
    try:
        gaps = [float(g) * 1e-6 for g in args.gaps.split(",")]
    except ValueError:
        print(f"kick_gap: --gaps {args.gaps!r}: allowed a comma-separated list of us",
              file=sys.stderr)
        return 2
    pair = cpu_pair()
    if pair is None:
        print("kick_gap: needs two CPUs", file=sys.stderr)
        return 2
    try:
        kvm = open_kvm()
    except KvmUnavailable as e:
        print(f"kick_gap: {e}", file=sys.stderr)
        return 2
    plan = paths.PathPlan()
    print(f"halt_poll_ns = {paths._halt_poll_s() * 1e9:.0f}; CPUs {pair[0]} -> {pair[1]}; us")
    print(f"{'gap':>6s} {'kick_cross':>11s} {'kick_same':>10s} {'futex_cross':>12s}")
    with kvm:
        ov, _clock, _call = paths.measure_overheads(1, plan)
        for _ in range(args.passes):
            for gap in gaps:
                plan.gap_s = gap
                cross = paths.measure_kick(kvm, True, ov, 3, plan, pair)
                same = paths.measure_kick(kvm, False, ov, 3, plan, pair)
                futex = paths.measure_handoff("futex", True, ov, 3, plan, pair)
                print(f"{gap * 1e6:6.0f} {min(cross.values) / 1e3:11.1f} "
                      f"{min(same.values) / 1e3:10.1f} {min(futex.values) / 1e3:12.1f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
