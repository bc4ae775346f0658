"""``vsmsim sweep FILE --grid key=v1,v2 ...``: the command line of sweeps."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ..errors import InputError


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,[0,1],"a,b"`` on the commas outside brackets, braces and quotes."""
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(items) -> dict:
    """``["vm.vps=4,16", "design=planes,vm-per-vtl"]`` as ``{key: [values]}``; values read
    as TOML values (numbers, true/false, lists, quoted strings), else as strings."""
    from ..cli import _parse_value

    grid = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--grid {item!r}: expected key=v1,v2,..., e.g. --grid vm.vps=4,16,64")
        key, _, text = item.partition("=")
        key = key.strip()
        if key in grid:
            raise InputError(f"--grid {key!r} is given twice; list all its values in one --grid")
        vals = [v for v in split_values(text)]
        if not key or any(v == "" for v in vals):
            raise InputError(f"--grid {item!r}: expected key=v1,v2,..., e.g. --grid vm.vps=4,16,64")
        grid[key] = [_parse_value(v) for v in vals]
    return grid


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.,=\[\]-]", "_", name)


def cli_sweep(args, scenario) -> int:
    """Run the sweep the arguments describe; print its summary line and files.

    Exit code 0 when every run succeeded, 1 when some failed (their errors are in
    ``runs.parquet``), 130 after Ctrl-C (finished runs kept for the next start).
    """
    from .core import sweep

    grid = parse_grid(args.grid)
    out = Path(args.out) if args.out else Path("results") / scenario.name / "sweep"
    try:
        res = sweep(scenario, grid=grid, replications=args.replications,
                    executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                    out=out)
    except KeyboardInterrupt:
        kept = len(list((out / "runs").glob("*.json"))) if (out / "runs").is_dir() else 0
        print(f"vsmsim sweep: interrupted; {kept} finished runs kept in {out}/runs; "
              f"run the same command again to resume", file=sys.stderr)
        return 130
    print(f"{res.summary_line} -> {out}")
    print(f"runs: {out / 'runs.parquet'}  points: {out / 'points.csv'}  plan: {out / 'sweep.json'}")
    if args.plot:
        fig = res.plot(args.plot)
        path = out / f"{_safe_name(args.plot)}.png"
        fig.savefig(path, dpi=120)
        print(f"plot: {path}")
    if res.failed:
        first = res.errors.iloc[0]
        msg = str(first["error"]).splitlines()[0] if first["error"] else "?"
        print(f"vsmsim sweep: {res.failed} runs failed; first: point {first['point']} "
              f"replication {first['replication']}: {msg}", file=sys.stderr)
        return 1
    return 0
