"""``vsmsim prototype``: run the design prototypes on /dev/kvm and compare with predictions.

Exit codes: 0 done (and, with ``--check``, every ratio inside 0.8-1.25), 1 a check failed
or a measurement failed, 2 bad input or no usable KVM (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..calibrate.guest64 import MAX_CALLS
from ..calibrate.kvm import KvmError, KvmUnavailable
from .vmm import DESIGNS, PLACEMENTS

DEFAULT_OUT = "results/prototype"
WARMUP = 20


class _Bad(Exception):
    """Bad command-line input (one line)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``prototype`` command to *subparsers*; its handler is :func:`run`."""
    p = subparsers.add_parser(
        "prototype", help="run design prototypes on /dev/kvm: measured vs predicted round trip",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vsmsim prototype --calls 2000 --placement same-cpu\n"
               "  vsmsim prototype --check\ndocs: docs/validation.md")
    p.add_argument("--designs", default=",".join(DESIGNS),
                   help=f"comma-separated, from {', '.join(DESIGNS)} (default: all)")
    p.add_argument("--calls", default="5000", help="VTL call round trips per design and "
                   "placement (default 5000)")
    p.add_argument("--placement", default="both", help="same-cpu, cross-cpu or both "
                   "(default both)")
    p.add_argument("--service", default="6us", help="target VTL1 work per call (default 6us)")
    p.add_argument("--quick", action="store_true", help="quick calibration (noisier costs)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if a design's predicted/measured is outside 0.8-1.25")
    p.set_defaults(fn=run)
    return p


def _parse(args):
    designs = [d.strip() for d in str(args.designs).split(",") if d.strip()]
    bad = [d for d in designs if d not in DESIGNS]
    if bad or not designs:
        raise _Bad(f"--designs {args.designs!r}: {bad[0] if bad else 'empty'} is not a "
                   f"prototyped design; allowed: {', '.join(DESIGNS)}")
    try:
        calls = int(args.calls)
    except ValueError:
        raise _Bad(f"--calls {args.calls!r}: not a whole number") from None
    if not 1 <= calls <= MAX_CALLS - WARMUP:
        raise _Bad(f"--calls {calls}: allowed 1 to {MAX_CALLS - WARMUP}")
    if args.placement == "both":
        placements = list(PLACEMENTS)
    elif args.placement in PLACEMENTS:
        placements = [args.placement]
    else:
        raise _Bad(f"--placement {args.placement!r}: allowed same-cpu, cross-cpu, both")
    from ..units import UnitError, parse_duration
    try:
        service = parse_duration(args.service)
    except (UnitError, ValueError) as e:
        raise _Bad(f"--service {args.service!r}: {e}") from None
    if not 0 < service <= 1e6:
        raise _Bad(f"--service {args.service!r}: allowed above 0 and up to 1ms")
    return designs, calls, placements, float(service)


def run(args) -> int:
    """Run the command; print the side-by-side table and the per-step breakdown."""
    try:
        designs, calls, placements, service = _parse(args)
    except _Bad as e:
        print(f"vsmsim prototype: {e}", file=sys.stderr)
        return 2
    from .core import CHUNK_CALLS, run_prototypes
    from .report import check, format_segments, format_summary

    def say(line):
        print(line, file=sys.stderr, flush=True)

    try:
        res = run_prototypes(designs, calls, placements, Path(args.out), args.quick, service,
                             progress=say)
    except KvmUnavailable as e:
        print(f"vsmsim prototype: {e}", file=sys.stderr)
        return 2
    except (KvmError, OSError) as e:
        print(f"vsmsim prototype: measurement failed: {e}", file=sys.stderr)
        return 1
    meta = res["meta"]
    h = meta["host"]
    print(f"host: {h.get('cpu_model')}, {h.get('cpus')} CPUs, KVM module {h.get('kvm_module')}, "
          f"Linux {h.get('kernel')}; guest code "
          f"{'EMULATED' if h.get('emulated') else 'native'} "
          f"({h.get('guest_ns_per_instruction')} ns per simple instruction)")
    print(f"load average before {meta['load_before']['load']} (CPU idle "
          f"{meta['load_before'].get('idle', '?')}), after {meta['load_after']['load']}")
    for state in (meta["load_before"],):
        if state.get("busy"):
            print("WARNING: the machine was busy: measured times carry the load; rerun when "
                  "it is quiet")
    w = res["guest_work"]
    print(f"same workload in the simulator: 1 VP, 2 VTLs, vtl-call with service = guest work "
          f"{(w['vtl1'] + w['vtl0']) / 1e3:.2f} us (VTL1 {w['vtl1'] / 1e3:.2f} + VTL0 "
          f"{w['vtl0'] / 1e3:.2f}), profile {Path(args.out) / 'profile.toml'}; the Python "
          f"VMM's vmm_switch {res['vmm_switch_ns']:.0f} ns")
    each = ", ".join(f"{r['design']} {r['placement']} x {r.get('drift', 1.0):.3f}"
                     for r in res["rows"])
    print(f"host speed: the host-speed probe (docs/calibration.md; "
          f"{meta.get('probe_ns', 0) / 1e3:.1f} us in the calibration) right before each run of "
          f"{CHUNK_CALLS} calls and after the last; every measured cost of the prediction "
          f"times the run's median probe over the calibration's: {each}; guest work "
          f"measured at x {w.get('drift', 1.0):.3f}")
    cross = [r for r in res["rows"] if r["placement"] == "cross-cpu"]
    if cross:
        each = ", ".join(f"{r['design']} x {r['cross_cpu_slowdown']:.3f}" for r in cross)
        print(f"cross-cpu: hand-offs priced with their _cross figures, the VMM's and the "
              f"guest's work between them times cross_cpu_slowdown, measured right before "
              f"and after each run: {each} (calibration: "
              f"{res['meta']['cross_cpu_slowdown']:.3f})")
    print()
    print(format_summary(res["rows"]))
    print()
    print(format_segments(res["steps"]))
    for s in res["skipped"]:
        print(f"skipped: {s}")
    print()
    for f in res["files"]:
        print(f"wrote {f}")
    if args.check:
        bad = check(res["rows"])
        for line in bad:
            print(f"CHECK FAILED: {line}")
        if bad:
            return 1
        print("check passed: every predicted/measured within 0.8-1.25")
    return 0
