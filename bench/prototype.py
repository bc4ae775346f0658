"""The prediction check of issue 16: ``vsmsim prototype --check`` as a benchmark.

Usage::

    python bench/prototype.py                 # all designs, both placements, 5000 calls
    python bench/prototype.py --calls 20000 --out bench/results/prototype
    python bench/prototype.py --wait-quiet 600   # first wait (up to 600 s) for a quiet machine

It prints the side-by-side table of measured and predicted VTL call round trips and exits
with ``vsmsim prototype --check``'s code: 0 when every design's predicted/measured lies in
0.8-1.25, 1 when one does not, 2 without a usable /dev/kvm. Like every benchmark here it
is never a test: times depend on the host and its load (the load average is printed and
recorded in the output directory's run.json). See docs/validation.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vsmsim.calibrate.host import BUSY_LOAD_PER_CPU  # noqa: E402
from vsmsim.cli import main  # noqa: E402


def wait_quiet(limit_s: float) -> float:
    """Wait until the 1-minute load average is below the calibration's busy threshold, at
    most *limit_s* seconds; return the load average at the end."""
    threshold = BUSY_LOAD_PER_CPU * (os.cpu_count() or 1)
    end = time.monotonic() + limit_s
    load = os.getloadavg()[0]
    while load > threshold and time.monotonic() < end:
        time.sleep(10)
        load = os.getloadavg()[0]
    return load


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", default="5000")
    p.add_argument("--designs", default="vm-per-vtl,planes,apic-id-groups")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "prototype"))
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for a load average below the threshold")
    args = p.parse_args(argv)
    if args.wait_quiet > 0:
        load = wait_quiet(args.wait_quiet)
        print(f"load average when starting: {load:.2f}", file=sys.stderr)
    return main(["prototype", "--check", "--calls", args.calls, "--designs", args.designs,
                 "--placement", "both", "--out", args.out])


if __name__ == "__main__":
    sys.exit(run())
