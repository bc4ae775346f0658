"""``vsmsim sweep FILE --grid key=v1,v2 ...``: the command line of sweeps."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import names


def cli_sweep(args, scenario) -> int:
    """Run the sweep the arguments describe; print its summary line and files.

    Exit code 0 when every run succeeded, 1 when some failed (their errors are in
    ``runs.parquet``), 130 after Ctrl-C (finished runs kept for the next start).
    """
    from ..overrides import parse_grid
    from ..sweep.core import sweep

    grid = parse_grid(args.grid)
    out = Path(args.out) if args.out else Path("results") / scenario.name / "sweep"
    try:
        res = sweep(scenario, grid=grid, replications=args.replications,
                    executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                    out=out)
    except KeyboardInterrupt:
        kept = len(list((out / names.SWEEP_RUN_DIR).glob("*.json"))) if (out / names.SWEEP_RUN_DIR).is_dir() else 0
        print(f"vsmsim sweep: interrupted; {kept} finished runs kept in {out}/runs; "
              f"run the same command again to resume", file=sys.stderr)
        return 130
    print(f"{res.summary_line} -> {out}")
    print(f"runs: {out / names.SWEEP_RUNS}  points: {out / names.SWEEP_POINTS}  "
          f"plan: {out / names.SWEEP_PLAN}")
    if args.plot:
        fig = res.plot(args.plot)
        from ..plots.style import save_figure
        path = save_figure(fig, out, names.plot_stem(args.plot), ("png",))[0]
        print(f"plot: {path}")
    if res.failed:
        first = res.errors.iloc[0]
        msg = str(first["error"]).splitlines()[0] if first["error"] else "?"
        print(f"vsmsim sweep: {res.failed} runs failed; first: point {first['point']} "
              f"replication {first['replication']}: {msg}", file=sys.stderr)
        return 1
    return 0
