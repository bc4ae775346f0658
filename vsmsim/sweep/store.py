"""The sweep directory: one file per finished run, written atomically as it completes.

Layout of ``DIR``::

    sweep.json          the plan: base scenario, grid, replications, every run's seed and key
    runs/<key>.json     one finished run (its record: status, error, wall_s, metrics, units)
    runs.parquet        the runs table, written at the end of the sweep
    points.csv          the per-point aggregate (means and 95 % confidence intervals)

Every file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a file is complete or absent even when the process is killed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import names
from ..atomic import atomic_write  # noqa: E402  (re-exported for the sweep modules)


def _json_default(v):
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def _dump(obj) -> str:
    # NaN never occurs in summaries; allow_nan keeps a surprise from losing the run.
    return json.dumps(obj, indent=1, default=_json_default, allow_nan=True)


class RunStore:
    """The run files of one sweep directory. One sweep may write a directory at a time."""

    def __init__(self, root):
        self.root = Path(root)
        self.runs_dir = self.root / names.SWEEP_RUN_DIR
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.runs_dir.glob(".*.tmp"):  # left by a killed sweep
            stale.unlink(missing_ok=True)

    def own(self, keys) -> list[Path]:
        """Make the directory this sweep's: remove what an earlier sweep left that this one
        would not write (runs of other grid points or seeds, the old tables, every plot).
        Runs of this plan stay, so an interrupted sweep still resumes. Returns the removed."""
        keep = {f"{k}.json" for k in keys}
        gone = [f for f in self.runs_dir.glob("*.json") if f.name not in keep]
        gone += [self.root / n for n in (names.SWEEP_RUNS, names.SWEEP_POINTS)
                 if (self.root / n).is_file()]
        for fmt in names.PLOT_FORMATS:
            gone += list(self.root.glob(f"*.{fmt}"))
        for f in gone:
            f.unlink(missing_ok=True)
        return gone

    def path(self, key: str) -> Path:
        """File of the run named *key*."""
        return self.runs_dir / f"{key}.json"

    def write_plan(self, description: dict) -> Path:
        """Write ``sweep.json``."""
        return atomic_write(self.root / names.SWEEP_PLAN,
                            lambda p: p.write_text(_dump(description)))

    def write_run(self, record: dict, overrides: dict) -> Path:
        """Write one finished run, with its overrides for people reading the file."""
        data = dict(record, overrides=overrides)
        return atomic_write(self.path(record["key"]), lambda p: p.write_text(_dump(data)))

    def load(self, keys, retry_failed: bool = True) -> dict:
        """Records already on disk for *keys*; failed runs are left out to run again
        when *retry_failed*. Unreadable files are ignored (the run is redone)."""
        done = {}
        for key in keys:
            p = self.path(key)
            if not p.is_file():
                continue
            try:
                rec = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if rec.get("key") != key or (retry_failed and rec.get("status") != "ok"):
                continue
            rec.pop("overrides", None)
            done[key] = rec
        return done

    def write_tables(self, runs: pd.DataFrame, points: pd.DataFrame) -> list[Path]:
        """Write ``runs.parquet`` and ``points.csv``."""
        safe = parquet_safe(runs)
        return [atomic_write(self.root / names.SWEEP_RUNS,
                             lambda p: safe.to_parquet(p, index=False)),
                atomic_write(self.root / names.SWEEP_POINTS,
                             lambda p: points.to_csv(p, index=False))]


def parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed or nested values (grid values such as VP lists) as JSON text."""
    out = df
    for col in df.columns:
        if df[col].dtype != object:
            continue
        vals = df[col].tolist()
        if all(isinstance(v, str) for v in vals):
            continue
        if out is df:
            out = df.copy()
        out[col] = [v if isinstance(v, str) else json.dumps(v, default=_json_default)
                    for v in vals]
    return out
