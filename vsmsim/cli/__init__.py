"""The ``vsmsim`` command line: every command's parser and its handler.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import InputError
from ..overrides import parse_set


def _load(args):
    from ..config import load_scenario

    sc = load_scenario(args.file)
    ov = parse_set(getattr(args, "set", None))
    return sc.with_overrides(ov) if ov else sc


def _default_out(sc, leaf: str) -> Path:
    return Path("results") / sc.name / leaf


def _progress_enabled() -> bool:
    return sys.stderr.isatty()


def _warn_overload(command: str, results) -> None:
    """One warning line per overloaded result (see vsmsim.overload)."""
    for label, res in results.items():
        ov = res.meta.get("overload") or {}
        if ov.get("overloaded"):
            print(f"vsmsim {command}: warning [{label}]: {ov['message']}", file=sys.stderr)


def _check_invariants(command: str, results, quiet: bool = False) -> int:
    """Run vsmsim.check on every result; one line; 1 when an invariant is broken."""
    from ..check import check

    rowless = [label for label, res in results.items() if res.tables != "all"]
    if rowless:
        # check() replays every row: a stream would be read back whole, a summary has none
        mode = results[rowless[0]].tables
        print(f"invariants: not checked (record.tables = \"{mode}\" keeps no rows in memory;"
              f" vsmsim.check(result) reads a streamed result's rows back)")
        results = {k: v for k, v in results.items() if k not in rowless}
        if not results:
            return 0
    bad = {label: check(res, raise_on_error=False) for label, res in results.items()}
    bad = {k: v for k, v in bad.items() if v}
    if not bad:
        if quiet:
            return 0
        print(f"invariants (vsmsim.check, docs/model.md): hold for "
              f"{'every design' if len(results) > 1 else 'this run'}")
        return 0
    for label, problems in bad.items():
        print(f"vsmsim {command}: [{label}] {len(problems)} invariant(s) broken; first: "
              f"{problems[0]}", file=sys.stderr)
    return 1


def cmd_run(args) -> int:
    from ..api import simulate
    from ..report import header_text, text_table

    sc = _load(args)
    if args.trace or args.trace_window:  # a window to trace means: trace
        if sc.record.tables == "summary":
            raise InputError('--trace: record.tables = "summary" keeps no rows to trace; '
                             'allowed with record.tables = "all" or "stream"')
        from ..trace import parse_window
        parse_window(args.trace_window, sc.duration)  # bad input fails before anything runs
        sc = sc.with_overrides({"record.timeline": True})
    res = simulate(sc, baseline=args.baseline, progress=True if _progress_enabled() else None)
    out = Path(args.out) if args.out else _default_out(sc, res.design)
    res.save(out)
    if args.trace or args.trace_window:
        from ..trace import write_trace
        write_trace(res, out / "trace.json", window=args.trace_window)
    n, n_sw = res.n_rows("interrupts"), res.n_rows("switches")
    ascii = args.format == "text"
    print(f"{sc.name} [{res.design}]: {n:,} interrupts, {n_sw:,} VTL switches, "
          f"{res.meta['wall_s']:.2f} s wall for {sc.duration / 1e9:g} s simulated -> {out}")
    print(header_text(res.scenario, [res.design])[1])
    print(text_table({res.design: res}, res.scenario.get("headline") or None, ascii=ascii))
    if res.cpus is not None:
        from ..report import host_text
        print(host_text(res))
    _warn_overload("run", {res.design: res})
    return _check_invariants("run", {res.design: res})


def cmd_compare(args) -> int:
    from ..report import comparison_text, write_report
    from ..runner import compare

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
        bar = tqdm(total=len(designs or range(5)) * args.replications, desc="designs",
                   file=sys.stderr)
    t0 = time.perf_counter()
    cmp = compare(sc, designs, progress=(lambda d: bar.update(1)) if bar else None,
                  replications=args.replications, workers=args.workers)
    if bar:
        bar.close()
    out = Path(args.out) if args.out else Path("results") / sc.name / "compare"
    formats = None if args.no_plots else (("png", "svg") if args.svg else ("png",))
    if args.report and formats is None:
        raise InputError("--report embeds the plots: drop --no-plots")
    written = cmp.save(out, plots=formats)
    if args.report and cmp.results:
        written.append(write_report(cmp, out, written, command=args.command_line))
    broken = 0
    if args.format == "csv":
        if cmp.results:
            sys.stdout.write(cmp.summary().to_csv())
    else:
        print(f"{sc.name}: {len(cmp.results)} designs x {args.replications} replication"
              f"{'s' if args.replications != 1 else ''} in {time.perf_counter() - t0:.1f} s "
              f"-> {out}")
        if cmp.results:
            print(comparison_text(cmp, ascii=args.format == "text"))
            broken = _check_invariants("compare", cmp.results)
        for p in written:
            print(f"{'report' if p.suffix == '.html' else 'plot'}: {p}")
    if args.format == "csv":
        broken = _check_invariants("compare", cmp.results, quiet=True) if cmp.results else 0
    _warn_overload("compare", cmp.results)
    for label, tb in cmp.failures.items():
        last = tb.strip().splitlines()[-1] if tb.strip() else "?"
        print(f"vsmsim compare: design {label!r} failed: {last} (traceback in "
              f"{out / 'comparison.json'})", file=sys.stderr)
    return 1 if cmp.failures or (cmp.results and broken) else 0


def cmd_explain(args) -> int:
    from ..plots.files import load_saved

    res = load_saved(Path(args.dir))
    if args.design:
        if args.design not in res:
            raise InputError(f"--design {args.design!r}: not in {args.dir}; there: "
                             f"{', '.join(res)}")
        r = res[args.design]
    elif len(res) == 1:
        r = next(iter(res.values()))
    else:
        raise InputError(f"{args.dir} holds {len(res)} designs ({', '.join(res)}): "
                         f"choose one with --design")
    print(r.explain(args.id))
    return 0


def cmd_show(args) -> int:
    from ..costs import load_profile
    from ..designs import load_design
    from ..report import design_text

    print(design_text(load_design(args.name), load_profile(args.costs)))
    return 0


def cmd_validate(args) -> int:
    sc = _load(args)
    print(f"{args.file}: ok ({sc.name}: {sc.vm.vps} VPs x {sc.vm.vtls} VTLs, design {sc.design}, "
          f"{len(sc.workload)} workloads, {sc.duration / 1e6:g} ms)")
    return 0


def cmd_list(args) -> int:
    from ..costs import BUILTIN_PROFILES, load_profile
    from ..designs import list_designs

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
    from ..plots import plot_saved

    written = plot_saved(Path(args.dir), formats=("png", "svg") if args.svg else ("png",))
    for p in written:
        print(f"plot: {p}")
    return 0


def cmd_sweep(args) -> int:
    from .sweep import cli_sweep

    return cli_sweep(args, _load(args))


def cmd_calibrate(args) -> int:
    from .. import calibrate

    return calibrate.run(args)


DOCS = "docs: README.md and docs/*.md (scenario.md lists every scenario key)"


def _parser(sub, name, help, examples, doc):
    return sub.add_parser(name, help=help, description=help,
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in examples)
                          + f"\n\nsee {doc}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vsmsim``."""
    from .._version import __version__

    p = argparse.ArgumentParser(
        prog="vsmsim", description="Simulate Hyper-V VSM inside KVM under five KVM designs.",
        epilog="examples:\n  vsmsim compare scenarios/q1_preemption.toml\n"
               "  vsmsim run my.toml --trace\n  vsmsim COMMAND --help\n\n" + DOCS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"vsmsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def scen(sp):
        sp.add_argument("file", help="scenario file (.toml, or .py defining SCENARIO), "
                        "e.g. scenarios/q1_preemption.toml")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a scenario key, e.g. --set vm.vps=64 or "
                        "--set duration=20ms (repeatable; keys: docs/scenario.md)")

    fmt_help = ("output: table (default), text (plain ASCII, fixed width, for a "
                "mailing-list post)" )
    r = _parser(sub, "run", "run one scenario and save its tables",
                ["vsmsim run scenarios/q1_preemption.toml --set duration=20ms",
                 "vsmsim run my.toml --trace-window 5ms 7ms   # writes trace.json too",
                 "vsmsim run my.toml --baseline --out results/mine"],
                "docs/metrics.md (tables, summary) and docs/trace.md")
    scen(r)
    r.add_argument("--out", help="result directory (default results/<scenario>/<design>)")
    r.add_argument("--trace", action="store_true",
                   help="also write trace.json for ui.perfetto.dev (docs/trace.md)")
    r.add_argument("--trace-window", nargs=2, metavar=("START", "END"),
                   help="trace only this window, e.g. --trace-window 0ms 5ms (implies --trace)")
    r.add_argument("--baseline", action="store_true",
                   help="also run VSM off, for vtl0_tax (docs/metrics.md)")
    r.add_argument("--format", choices=["table", "text"], default="table", help=fmt_help)
    r.set_defaults(fn=cmd_run)

    c = _parser(sub, "compare", "run one scenario under several designs on the same arrivals",
                ["vsmsim compare scenarios/q1_preemption.toml",
                 "vsmsim compare my.toml --designs planes,vm-per-vtl --replications 5 --workers 2",
                 "vsmsim compare my.toml --replications 5 --report --format text"],
                "docs/metrics.md (what each value means) and docs/plots.md")
    scen(c)
    c.add_argument("--designs", help="comma-separated names or design files, e.g. "
                   "planes,vm-per-vtl,my-design.toml (default: all five)")
    c.add_argument("--replications", type=int, default=1, metavar="N",
                   help="run every design N times (seeds as sweeps derive them): 95 %% "
                   "intervals and paired differences; N >= 2 is needed to call a design "
                   "better (default 1)")
    c.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run designs and replications on N worker processes (default: one)")
    c.add_argument("--out", help="output directory (default results/<scenario>/compare)")
    c.add_argument("--no-plots", action="store_true", help="skip the plots")
    c.add_argument("--svg", action="store_true", help="write SVG besides PNG")
    c.add_argument("--report", action="store_true",
                   help="also write report.html: question, table, plots, scenario, costs, "
                   "seed, version and command line in one file")
    c.add_argument("--format", choices=["table", "text", "csv"], default="table",
                   help=fmt_help + ", csv (the side-by-side summary)")
    c.set_defaults(fn=cmd_compare)

    s = _parser(sub, "sweep", "run a grid of overrides with replications",
                ["vsmsim sweep my.toml --grid vm.vps=4,16,64 --replications 5",
                 "vsmsim sweep my.toml --grid design=planes,vm-per-vtl --grid vm.vps=4,16 "
                 "--plot delivery_p99[timer,vtl1]"],
                "docs/sweeps.md")
    scen(s)
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="a grid axis, e.g. --grid vm.vps=4,16,64 (repeatable)")
    s.add_argument("--replications", type=int, default=1, metavar="N",
                   help="runs per grid point, for 95 %% intervals (default 1)")
    s.add_argument("--executor", choices=["serial", "process", "dask"], default="process",
                   help="where runs execute (default process: a local pool)")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: every core)")
    s.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://host:8786")
    s.add_argument("--out", help="sweep directory (default results/<scenario>/sweep)")
    s.add_argument("--plot", metavar="METRIC",
                   help="plot METRIC against the first grid key, e.g. delivery_p99[timer,vtl1]")
    s.set_defaults(fn=cmd_sweep)

    v = _parser(sub, "validate", "check a scenario file without running it",
                ["vsmsim validate my.toml", "vsmsim validate my.toml --set vm.vps=64"],
                "docs/scenario.md")
    scen(v)
    v.set_defaults(fn=cmd_validate)

    ls = _parser(sub, "list", "list designs, cost profiles and scenarios",
                 ["vsmsim list", "vsmsim list --scenarios my-scenarios/"],
                 "docs/designs.md and docs/costs.md")
    ls.add_argument("--scenarios", default="scenarios", help="scenario folder to list")
    ls.set_defaults(fn=cmd_list)

    sh = _parser(sub, "show", "print a design's paths as a table of steps",
                 ["vsmsim show design planes", "vsmsim show design my-design.toml --costs intel"],
                 "docs/designs.md")
    sh.add_argument("what", choices=["design"], help="what to show (design)")
    sh.add_argument("name", help="a built-in design name or a design file")
    sh.add_argument("--costs", default="default", help="cost profile for the ns column")
    sh.set_defaults(fn=cmd_show)

    ex = _parser(sub, "explain", "one interrupt's life step by step, from a saved result",
                 ["vsmsim explain results/q1-preemption/vm-per-vtl --id 12",
                  "vsmsim explain results/q1-preemption/compare --design planes --id 12"],
                 "docs/metrics.md (interrupt table: the id column)")
    ex.add_argument("dir", help="a result directory (vsmsim run) or a comparison directory")
    ex.add_argument("--id", type=int, required=True, help="the interrupt's id (its row)")
    ex.add_argument("--design", help="which design, in a comparison directory")
    ex.set_defaults(fn=cmd_explain)

    pl = _parser(sub, "plot", "re-plot a saved run, comparison or sweep directory",
                 ["vsmsim plot results/q1-preemption/compare --svg"], "docs/plots.md")
    pl.add_argument("dir", help="a result, comparison or sweep directory")
    pl.add_argument("--svg", action="store_true", help="write SVG besides PNG")
    pl.set_defaults(fn=cmd_plot)

    cal = _parser(sub, "calibrate", "measure this host's KVM costs into a cost profile",
                  ["vsmsim calibrate --out my-host.toml"], "docs/calibration.md")
    try:
        from .. import calibrate
        calibrate.add_arguments(cal)
    except ImportError:  # pragma: no cover
        pass
    cal.set_defaults(fn=cmd_calibrate)

    from ..prototype.cli import add_parser as add_prototype
    add_prototype(sub)
    return p


def main(argv=None) -> int:
    """Entry point of the ``vsmsim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    import shlex
    args.command_line = "vsmsim " + shlex.join(sys.argv[1:] if argv is None else list(argv))
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
