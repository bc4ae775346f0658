"""Instructions executed by the engine on the standard workload, counted by callgrind.

Wall-clock ratios on a shared 2-CPU machine move by 10 % from run to run; instruction
counts do not (the same binary, inputs and environment give the same count). This counts
``simulate`` of ``bench/standard.toml`` for a long and a short duration under
``valgrind --tool=callgrind`` and prints the difference: the engine's instructions for
the extra simulated time, without imports and set-up, in total and per model action
(interrupts delivered + VTL switches). Compare two checkouts by running it in each (about
2 minutes per checkout)::

    python bench/instructions.py                 # 100 ms minus 1 ms of the standard workload
    python bench/instructions.py --drop 3        # the same without the IPIs (workload 3)
    python bench/instructions.py --long 200ms
    python bench/instructions.py --vps 1024      # 1,024 VPs, same per-VP load and actions
    python bench/instructions.py --vps 1024 --cache   # and simulated cache misses per action
    python bench/instructions.py --vps 1024 --cache --spread 16   # timers not in lockstep

``--vps N`` runs the standard workload on N VPs at the same per-VP load (IPI rate x N/64)
for both durations x 64/N: the same model actions as at 64 VPs, as ``bench/run.py``'s
scaling rows; ``--spread G`` splits each timer over G blocks of VPs whose phases are
spread evenly over its period (the standard workload has every VP's timers at phase 0:
one expiry touches every VP at once). ``--cache`` runs under ``valgrind --tool=cachegrind`` instead, with a fixed
simulated cache (32 KB L1 data, and a 1 MB, 16-way last level standing for this machine's
L2 per core: cachegrind simulates two levels), so the misses too are the same on any
machine: what a working set that outgrows the L2 costs, without the noise of the wall
clock.

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
import sys, tomllib, vsmsim, vsmsim.units
data = tomllib.load(open(sys.argv[1], "rb"))
drop = {int(i) for i in sys.argv[3].split(",") if i}
vps = int(sys.argv[4])
if vps != 64:  # the same per-VP load (bench/run.py's scaling rows)
    data["workload"][3]["rate"] = data["workload"][3]["rate"] * vps / 64
data["vm"]["vps"] = vps
groups = int(sys.argv[5])
if groups > 1:  # each timer on G blocks of VPs, phases spread evenly over its period
    for i in (1, 2):
        w = data["workload"][i]
        period = vsmsim.units.parse_duration(w["period"])
        data["workload"][i] = [dict(w, name=f"{w['name']}-{g}", phase=f"{period * g // groups}ns",
                                    vps=list(range(g * vps // groups, (g + 1) * vps // groups)))
                               for g in range(groups)]
data["workload"] = [w for i, w in enumerate(data["workload"]) if i not in drop]
data["workload"] = [x for w in data["workload"] for x in (w if isinstance(w, list) else [w])]
sc = vsmsim.Scenario.model_validate(data).with_overrides({"duration": sys.argv[2]})
r = vsmsim.simulate(sc)
print(int(r.interrupts.start_ns.notna().sum()), len(r.switches))
"""
#: The simulated cache of --cache: (bytes, ways, line bytes) of L1 data and last level.
D1 = (32768, 8, 64)
LL = (1048576, 16, 64)
_CACHE_OPTS = ["--tool=cachegrind", "--cache-sim=yes", "--D1=%d,%d,%d" % D1, "--LL=%d,%d,%d" % LL]


def count(duration_ns: int, drop=(), vps: int = 64, cache: bool = False, spread: int = 1) -> dict:
    """Counts of one run of *duration_ns* on *vps* VPs under callgrind (or cachegrind with
    *cache*), without the workloads whose indices are in *drop*, the timers' phases spread
    over *spread* blocks of VPs: ``ir`` (instructions),
    ``d1``/``ll`` (data misses, with *cache*), ``actions`` (delivered + switches) and
    ``rows`` ("delivered switches")."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vg.out"
        prog = Path(tmp) / "run.py"
        prog.write_text(PROGRAM)
        tool = (_CACHE_OPTS + [f"--cachegrind-out-file={out}"] if cache
                else ["--tool=callgrind", f"--callgrind-out-file={out}"])
        p = subprocess.run(["valgrind", *tool, sys.executable, str(prog),
                            str(ROOT / "bench" / "standard.toml"), f"{duration_ns}ns",
                            ",".join(str(i) for i in drop), str(vps), str(spread)],
                           capture_output=True, text=True, cwd=ROOT)
        counts = {}
        if cache:
            for key, label in (("ir", "I   refs"), ("d1", "D1  misses"), ("ll", "LLd misses")):
                m = re.search(label + r":\s+([\d,]+)", p.stderr)
                if m:
                    counts[key] = int(m.group(1).replace(",", ""))
        else:
            m = re.search(r"Collected : (\d+)", p.stderr)
            if m:
                counts["ir"] = int(m.group(1))
        if p.returncode != 0 or "ir" not in counts:
            raise SystemExit(f"bench/instructions.py: valgrind failed: {p.stderr.strip()[-300:]}")
        counts["rows"] = p.stdout.strip()
        counts["actions"] = sum(int(x) for x in counts["rows"].split())
        return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long", default="100ms", help="the long run's duration at 64 VPs "
                                                    "(default 100ms)")
    ap.add_argument("--short", default="1ms", help="the short run's duration at 64 VPs "
                                                   "(default 1ms)")
    ap.add_argument("--drop", type=int, action="append", default=[], metavar="I",
                    help="leave out workload I of bench/standard.toml (0 compute, 1 VTL0 "
                         "timer, 2 VTL1 timer, 3 IPIs); repeatable: what a workload costs")
    ap.add_argument("--vps", type=int, default=64, metavar="N",
                    help="VPs (default 64); the per-VP load is kept and both durations are "
                         "multiplied by 64/N")
    ap.add_argument("--cache", action="store_true",
                    help="count under cachegrind with a fixed 1 MB last-level cache: "
                         "data cache misses per model action too")
    ap.add_argument("--spread", type=int, default=1, metavar="G",
                    help="run each timer on G blocks of VPs with their phases spread evenly "
                         "over its period (default 1: every VP's timer at phase 0, in "
                         "lockstep)")
    args = ap.parse_args(argv)
    from vsmsim.units import parse_duration
    if any(not 0 <= i <= 3 for i in args.drop):
        print(f"bench/instructions.py: --drop {args.drop}: allowed 0 to 3", file=sys.stderr)
        return 2
    if not 1 <= args.vps <= 4096:
        print(f"bench/instructions.py: --vps {args.vps}: allowed 1 to 4096", file=sys.stderr)
        return 2
    if not 1 <= args.spread <= args.vps:
        print(f"bench/instructions.py: --spread {args.spread}: allowed 1 to --vps "
              f"({args.vps})", file=sys.stderr)
        return 2
    durations = []
    for name in ("long", "short"):
        value = getattr(args, name)
        try:
            ns = parse_duration(value, allow_zero=False)
        except ValueError as e:
            print(f"bench/instructions.py: --{name} {value!r}: {e}", file=sys.stderr)
            return 2
        durations.append(max(ns * 64 // args.vps, 1))
    if durations[0] <= durations[1]:
        print(f"bench/instructions.py: --long {args.long} must be longer than --short "
              f"{args.short}", file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None:
        print("bench/instructions.py: valgrind is not installed (apt-get install valgrind)",
              file=sys.stderr)
        return 2
    long_c = count(durations[0], args.drop, args.vps, args.cache, args.spread)
    short_c = count(durations[1], args.drop, args.vps, args.cache, args.spread)
    what = "bench/standard.toml" + (f" without workloads {sorted(set(args.drop))}"
                                    if args.drop else "")
    if args.vps != 64:
        what += f" on {args.vps} VPs ({durations[0]:,} ns - {durations[1]:,} ns)"
    if args.spread > 1:
        what += f", timer phases spread over {args.spread} blocks of VPs"
    actions = long_c["actions"] - short_c["actions"]
    ir = long_c["ir"] - short_c["ir"]
    print(f"instructions, {args.long} - {args.short} of {what}: "
          f"{ir / 1e9:.4f} G (runs: {long_c['ir'] / 1e9:.4f} G, {short_c['ir'] / 1e9:.4f} G; "
          f"delivered interrupts and switches of the long run: {long_c['rows']})")
    if actions > 0:
        line = f"per model action ({actions:,} actions): {ir / actions:,.0f} instructions"
        if args.cache:
            d1 = long_c["d1"] - short_c["d1"]
            ll = long_c["ll"] - short_c["ll"]
            line += (f", {d1 / actions:,.1f} L1 data misses, {ll / actions:,.1f} last-level "
                     f"(1 MB) data misses")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
