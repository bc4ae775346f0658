"""Parameter sweeps: a grid of scenario overrides times replications, with confidence
intervals, on a serial loop, a local process pool or Dask, resumable from a directory.

::

    from vsmsim.sweep import sweep
    swp = sweep(sc, grid={"vm.vps": [4, 16, 64], "design": ["vm-per-vtl", "planes"]},
                replications=5, executor="process", out="results/x/sweep")
    swp.runs          # one row per run: grid values, replication, seed, status, metrics
    swp.points        # one row per point: means with 95 % Student-t intervals
    swp.summary_line  # "sweep x: 30 runs (6 points x 5 replications): 30 ran, ..."

See docs/sweeps.md for the seed rule, the executors, resume and the column names.
"""

from ..overrides import parse_grid
from .core import SweepResult, sweep
from .grid import make_plan, replication_seed
from .task import metric_column

__all__ = ["sweep", "SweepResult", "replication_seed", "metric_column",
           "parse_grid", "make_plan"]
