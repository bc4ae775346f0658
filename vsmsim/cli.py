"""The ``vsmsim`` command line.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ._toml import toml as tomllib
from .errors import InputError


class CliError(InputError):
    """Bad command-line input."""


def _parse_value(text: str):
    """A --set value: a TOML value if it reads as one (numbers, true, [..]), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _overrides(pairs) -> dict:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise CliError(f"--set {p!r}: expected key=value, e.g. --set vm.vps=64")
        k, v = p.split("=", 1)
        if not k.strip():
            raise CliError(f"--set {p!r}: the key before '=' is empty; e.g. --set vm.vps=64")
        out[k.strip()] = _parse_value(v.strip())
    return out


def _load(args):
    from .config import load_scenario

    sc = load_scenario(args.file)
    ov = _overrides(getattr(args, "set", None))
    return sc.with_overrides(ov) if ov else sc


def _default_out(sc, leaf: str) -> Path:
    return Path("results") / sc.name / leaf


def _progress_enabled() -> bool:
    return sys.stderr.isatty()


def cmd_run(args) -> int:
    from .api import simulate

    sc = _load(args)
    if args.trace:
        from .trace import parse_window
        parse_window(args.trace_window, sc.duration)  # bad input fails before anything runs
        sc = sc.with_overrides({"record.timeline": True})
    res = simulate(sc, baseline=args.baseline, progress=True if _progress_enabled() else None)
    out = Path(args.out) if args.out else _default_out(sc, res.design)
    res.save(out)
    if args.trace:
        from .trace import write_trace
        write_trace(res, out / "trace.json", window=args.trace_window)
    n = len(res.interrupts)
    print(f"{sc.name} [{res.design}]: {n:,} interrupts, {len(res.switches):,} VTL switches, "
          f"{res.meta['wall_s']:.2f} s wall for {sc.duration / 1e9:g} s simulated -> {out}")
    s = res.summary()
    lat = s[s["metric"].isin(["delivery_p50", "delivery_p99"])]
    if len(lat):
        print(lat.pivot_table(index=["kind", "vtl"], columns="metric", values="value").to_string())
    return 0


def cmd_compare(args) -> int:
    from .runner import compare

    sc = _load(args)
    if not sc.record.timeline and not args.no_plots:
        # Record 2 ms of VP timeline after the warmup, for the timeline plot (cheap).
        lo = sc.warmup
        sc = sc.with_overrides({"record.timeline": True,
                                "record.window": [lo, min(lo + 2_000_000, sc.duration)]})
    designs = [d.strip() for d in args.designs.split(",")] if args.designs else None
    bar = None
    if _progress_enabled():
        from tqdm import tqdm
        bar = tqdm(total=len(designs or range(5)), desc="designs", file=sys.stderr)
    t0 = time.perf_counter()
    cmp = compare(sc, designs, progress=(lambda d: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    out = Path(args.out) if args.out else Path("results") / sc.name / "compare"
    formats = None if args.no_plots else (("png", "svg") if args.svg else ("png",))
    written = cmp.save(out, plots=formats)
    s = cmp.summary()
    keys = [m for m in ("delivery_p50", "delivery_p99", "roundtrip_p50", "vtl0_tax")
            if m in s.index.get_level_values(0)]
    print(f"{sc.name}: {len(cmp.results)} designs in {time.perf_counter() - t0:.1f} s -> {out}")
    if keys:
        print(s.loc[keys].to_string(float_format=_fmt))
    for p in written:
        print(f"plot: {p}")
    return 0


def _fmt(x: float) -> str:
    """Numbers for tables: ns as whole numbers with separators, shares with 4 digits."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


def cmd_validate(args) -> int:
    sc = _load(args)
    print(f"{args.file}: ok ({sc.name}: {sc.vm.vps} VPs x {sc.vm.vtls} VTLs, design {sc.design}, "
          f"{len(sc.workload)} workloads, {sc.duration / 1e6:g} ms)")
    return 0


def cmd_list(args) -> int:
    from .costs import BUILTIN_PROFILES, load_profile
    from .designs import list_designs

    print("designs:")
    for d in list_designs():
        print(f"  {d.name:16s} {d.description}")
    print("cost profiles:")
    for name in BUILTIN_PROFILES:
        print(f"  {name:16s} {load_profile(name).description}")
    sdir = Path(args.scenarios)
    if sdir.is_dir():
        print(f"scenarios ({sdir}):")
        for f in sorted(sdir.glob("*.toml")) + sorted(sdir.glob("*.py")):
            print(f"  {f.name:34s} {_first_line(f)}")
    return 0


def _first_line(f: Path) -> str:
    for line in f.read_text().splitlines():
        s = line.strip().lstrip("#").strip().strip('"').strip()
        if s and not s.startswith("!") and not s.startswith("vsmsim scenario"):
            return s[:90]
    return ""


def cmd_plot(args) -> int:
    from .plots import plot_saved

    written = plot_saved(Path(args.dir), formats=("png", "svg") if args.svg else ("png",))
    for p in written:
        print(f"plot: {p}")
    return 0


def cmd_sweep(args) -> int:
    from .sweep import cli_sweep

    return cli_sweep(args, _load(args))


def cmd_calibrate(args) -> int:
    from . import calibrate

    return calibrate.run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vsmsim``."""
    p = argparse.ArgumentParser(prog="vsmsim", description="Simulate Hyper-V VSM inside KVM "
                                "under five KVM designs.")
    sub = p.add_subparsers(dest="command", required=True)

    def scen(sp):
        sp.add_argument("file", help="scenario file (.toml, or .py defining SCENARIO)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a scenario key, e.g. --set vm.vps=64 (repeatable)")

    r = sub.add_parser("run", help="run one scenario and save its tables")
    scen(r)
    r.add_argument("--out", help="result directory (default results/<scenario>/<design>)")
    r.add_argument("--trace", action="store_true", help="also write trace.json for Perfetto")
    r.add_argument("--trace-window", nargs=2, metavar=("START", "END"),
                   help="only trace this window, e.g. --trace-window 0ms 5ms")
    r.add_argument("--baseline", action="store_true", help="also run VSM off, for vtl0_tax")
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("compare", help="run one scenario under several designs, paired")
    scen(c)
    c.add_argument("--designs", help="comma-separated names or design files (default: all five)")
    c.add_argument("--out", help="output directory (default results/<scenario>/compare)")
    c.add_argument("--no-plots", action="store_true", help="skip the plots")
    c.add_argument("--svg", action="store_true", help="write SVG besides PNG")
    c.set_defaults(fn=cmd_compare)

    s = sub.add_parser("sweep", help="run a grid of overrides with replications")
    scen(s)
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="a grid axis, e.g. --grid vm.vps=4,16,64 (repeatable)")
    s.add_argument("--replications", type=int, default=1)
    s.add_argument("--executor", choices=["serial", "process", "dask"], default="process")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://host:8786")
    s.add_argument("--out", help="sweep directory (default results/<scenario>/sweep)")
    s.add_argument("--plot", metavar="METRIC", help="plot METRIC against the first grid key")
    s.set_defaults(fn=cmd_sweep)

    v = sub.add_parser("validate", help="check a scenario file without running it")
    scen(v)
    v.set_defaults(fn=cmd_validate)

    ls = sub.add_parser("list", help="list designs, cost profiles and scenarios")
    ls.add_argument("--scenarios", default="scenarios", help="scenario folder to list")
    ls.set_defaults(fn=cmd_list)

    pl = sub.add_parser("plot", help="re-plot a saved run or comparison directory")
    pl.add_argument("dir")
    pl.add_argument("--svg", action="store_true")
    pl.set_defaults(fn=cmd_plot)

    cal = sub.add_parser("calibrate", help="measure this host's KVM costs into a cost profile")
    try:
        from . import calibrate
        calibrate.add_arguments(cal)
    except ImportError:  # pragma: no cover
        pass
    cal.set_defaults(fn=cmd_calibrate)
    return p


def main(argv=None) -> int:
    """Entry point of the ``vsmsim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except InputError as e:
        msg = str(e).strip().replace("\n", "; ")
        print(f"vsmsim {args.command}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vsmsim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
