"""Instructions executed by the engine on the standard workload, counted by callgrind.

Wall-clock ratios on a shared 2-CPU machine move by 10 % from run to run; instruction
counts do not (the same binary, inputs and environment give the same count). This counts
``simulate`` of ``bench/standard.toml`` for a long and a short duration under
``valgrind --tool=callgrind`` and prints the difference: the engine's instructions for
the extra simulated time, without imports and set-up. Compare two checkouts by running it
in each (about 2 minutes per checkout)::

    python bench/instructions.py                 # 100 ms minus 1 ms of the standard workload
    python bench/instructions.py --drop 3        # the same without the IPIs (workload 3)
    python bench/instructions.py --long 200ms

Needs valgrind (Debian package ``valgrind``); prints one line and exits 2 without it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = """
import sys, tomllib, vsmsim
data = tomllib.load(open(sys.argv[1], "rb"))
drop = {{int(i) for i in sys.argv[3].split(",") if i}}
data["workload"] = [w for i, w in enumerate(data["workload"]) if i not in drop]
sc = vsmsim.Scenario.model_validate(data).with_overrides({{"duration": sys.argv[2]}})
r = vsmsim.simulate(sc)
print(int(r.interrupts.start_ns.notna().sum()), len(r.switches))
"""


def count(duration: str, drop=()) -> tuple[int, str]:
    """(instructions, "delivered switches") of one run of *duration* under callgrind,
    without the workloads whose indices are in *drop*."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        prog = Path(tmp) / "run.py"
        prog.write_text(PROGRAM.format())
        p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            sys.executable, str(prog), str(ROOT / "bench" / "standard.toml"),
                            duration, ",".join(str(i) for i in drop)],
                           capture_output=True, text=True, cwd=ROOT)
        m = re.search(r"Collected : (\d+)", p.stderr)
        if p.returncode != 0 or m is None:
            raise SystemExit(f"bench/instructions.py: callgrind failed: {p.stderr.strip()[-300:]}")
        return int(m.group(1)), p.stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long", default="100ms", help="the long run's duration (default 100ms)")
    ap.add_argument("--short", default="1ms", help="the short run's duration (default 1ms)")
    ap.add_argument("--drop", type=int, action="append", default=[], metavar="I",
                    help="leave out workload I of bench/standard.toml (0 compute, 1 VTL0 "
                         "timer, 2 VTL1 timer, 3 IPIs); repeatable: what a workload costs")
    args = ap.parse_args(argv)
    if any(not 0 <= i <= 3 for i in args.drop):
        print(f"bench/instructions.py: --drop {args.drop}: allowed 0 to 3", file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None:
        print("bench/instructions.py: valgrind is not installed (apt-get install valgrind)",
              file=sys.stderr)
        return 2
    long_n, long_rows = count(args.long, args.drop)
    short_n, _ = count(args.short, args.drop)
    what = "bench/standard.toml" + (f" without workloads {sorted(set(args.drop))}"
                                    if args.drop else "")
    print(f"instructions, {args.long} - {args.short} of {what}: "
          f"{(long_n - short_n) / 1e9:.4f} G (runs: {long_n / 1e9:.4f} G, {short_n / 1e9:.4f} G; "
          f"delivered interrupts and switches of the long run: {long_rows})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
