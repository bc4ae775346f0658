"""Where the time of the standard workload goes: a profile of one run.

Usage::

    python bench/profile.py                   # cProfile, top 25 by tottime
    python bench/profile.py --top 40 --sort cumulative
    python bench/profile.py --duration 250ms  # shorter run
    python bench/profile.py --pyinstrument    # pyinstrument's call tree, if it is installed
    python bench/profile.py --out prof.pstats # keep the raw profile (snakeviz, pstats)

cProfile's own overhead roughly doubles the run's wall time and inflates functions that
are called very often; read the table for where time goes relative to the rest, not for
absolute speed (bench/run.py measures that). The run covers ``vsmsim.simulate`` as a user
calls it: building the simulation, the engine, and building the result tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as `python bench/profile.py`, this file's directory is sys.path[0] and this file
# would shadow the standard library's `profile` module, which cProfile imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as _dt  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

STANDARD = HERE / "standard.toml"


def _short(path: str) -> str:
    """*path* relative to the repository, site-packages or the standard library."""
    root = str(HERE.parent) + os.sep
    if path.startswith(root):
        return path[len(root):]
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1]
    if "/lib/python" in path:
        return path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return path


def top_entries(stats: pstats.Stats, sort: str, top: int) -> list[dict]:
    """The *top* functions by *sort* ('tottime' or 'cumulative') as plain records."""
    key = {"tottime": 2, "cumulative": 3}[sort]
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():
        name = f"{_short(file)}:{line}({func})" if line else func
        rows.append({"function": name, "ncalls": nc, "primitive": cc, "tottime": tt,
                     "cumtime": ct})
    rows.sort(key=lambda r: r[{2: "tottime", 3: "cumtime"}[key]], reverse=True)
    return rows[:top]


def format_entries(rows: list[dict], total: float, markdown: bool = False) -> str:
    """A table of profile rows; ``% tot`` is the share of the profiled total time."""
    hdr = ("ncalls", "tottime s", "% tot", "cumtime s", "function")
    body = [(f"{r['ncalls']:,}", f"{r['tottime']:.3f}", f"{100 * r['tottime'] / total:.1f}",
             f"{r['cumtime']:.3f}", r["function"]) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(hdr) + " |", "|---:|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(c if i < 4 else f"`{c}`" for i, c in enumerate(r)) + " |"
                  for r in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(hdr)]
    fmt = lambda r: "  ".join(c.rjust(w) if i < 4 else c  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(hdr), fmt(["-" * w for w in widths])] + [fmt(r) for r in body])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(STANDARD),
                    help="scenario file (default bench/standard.toml)")
    ap.add_argument("--duration", default=None, help="override the duration, e.g. 250ms")
    ap.add_argument("--top", type=int, default=25, help="entries to print (default 25)")
    ap.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    ap.add_argument("--pyinstrument", action="store_true",
                    help="use pyinstrument (if installed) instead of cProfile")
    ap.add_argument("--out", type=Path, default=None, help="write the raw cProfile stats here")
    ap.add_argument("--update-readme", action="store_true",
                    help="also write the Markdown table into bench/README.md (between markers)")
    a = ap.parse_args(argv)

    import vsmsim

    sc = vsmsim.load_scenario(a.scenario)
    if a.duration:
        sc = sc.with_overrides({"duration": a.duration})
    vsmsim.simulate(sc.with_overrides({"duration": "1ms"}))  # warm-up: imports, caches
    what = (f"{sc.name}: {sc.vm.vps} VPs x {sc.vm.vtls} VTLs, {sc.duration / 1e9:g} s, "
            f"{sc.design}")

    if a.pyinstrument:
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("pyinstrument is not installed; use cProfile (the default)", file=sys.stderr)
            return 2
        prof = Profiler()
        prof.start()
        vsmsim.simulate(sc)
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False))
        return 0

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = vsmsim.simulate(sc)
    prof.disable()
    wall = time.perf_counter() - t0
    if a.out:
        prof.dump_stats(a.out)
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt
    rows = top_entries(stats, a.sort, a.top)
    print(f"profile of {what}")
    print(f"wall {wall:.2f} s under cProfile ({res.meta.get('wall_s', float('nan')):.2f} s in "
          f"the engine); {stats.total_calls:,} function calls; "
          f"{len(res.interrupts):,} interrupt rows, {len(res.switches):,} switches")
    print(f"top {a.top} by {a.sort} (% tot = share of {total:.2f} s profiled time)\n")
    print(format_entries(rows, total))
    print("\n--- Markdown for bench/README.md ---\n")
    md = "\n".join([f"`python bench/profile.py` on {_dt.date.today()}: {what}; {wall:.2f} s "
                    f"under cProfile, top {a.top} by {a.sort} (% tot = share of profiled time).",
                    "", format_entries(rows, total, markdown=True)])
    print(md)
    if a.update_readme:
        sys.path.insert(0, str(HERE))
        from run import update_readme
        update_readme("profile", md)
        print(f"updated {HERE / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
