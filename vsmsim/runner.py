"""Running many simulations: paired design comparisons (sweeps live in vsmsim.sweep)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from . import names
from .api import _as_scenario, attach_baseline, simulate, vsm_off
from .atomic import atomic_dir
from .config import Scenario
from .designs import BUILTIN_DESIGNS, load_design
from .results import Result


@dataclass
class Comparison:
    """One result per design for the same scenario and seed (common random numbers)."""

    scenario: Scenario
    results: dict[str, Result] = field(default_factory=dict)
    baseline: Result | None = None

    @property
    def designs(self) -> list[str]:
        """Design names, in the order compared."""
        return list(self.results)

    def __getitem__(self, design: str) -> Result:
        return self.results[design]

    def summary(self) -> pd.DataFrame:
        """Designs side by side: index (metric, kind, vtl, unit), one column per design."""
        frames = []
        for name, res in self.results.items():
            s = res.summary().set_index(["metric", "kind", "vtl", "unit"])["value"]
            frames.append(s.rename(name))
        return pd.concat(frames, axis=1)

    def save(self, path, plots=None) -> list:
        """Save each design's result under ``path/<design>/`` and ``comparison.csv``.

        With *plots* (a tuple of formats, e.g. ``("png",)``) the comparison plots are
        written too. The directory is replaced as a whole: complete or absent. Returns
        the plot paths.
        """
        from pathlib import Path

        written = []
        path = Path(path)
        with atomic_dir(path) as tmp:
            for name, res in self.results.items():
                res.save(tmp / _safe(name))
            if self.baseline is not None:
                self.baseline.save(tmp / names.BASELINE_DIR)
            self.summary().to_csv(tmp / names.COMPARISON)
            if plots:
                from .plots import plot_comparison
                written = [path / p.relative_to(tmp)
                           for p in plot_comparison(self, tmp, formats=plots)]
        return written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def compare(scenario, designs=None, *, baseline: bool = True, debug: bool = False,
            progress=None) -> Comparison:
    """Run *scenario* under each design with the same seed, so arrivals are identical.

    *designs* defaults to all five built-in designs; entries may be names or design-file
    paths. With *baseline*, a VSM-off run gives each result a ``vtl0_tax``.
    """
    sc = _as_scenario(scenario)
    designs = list(designs or BUILTIN_DESIGNS)
    for d in designs:
        load_design(d)  # fail on a bad name before running anything
    cmp = Comparison(sc)
    if baseline:
        cmp.baseline = simulate(vsm_off(sc), debug=debug)
    for d in designs:
        res = simulate(sc.with_overrides({"design": d}), debug=debug)
        if cmp.baseline is not None:
            attach_baseline(res, cmp.baseline)
        cmp.results[res.design if res.design not in cmp.results else d] = res
        if progress is not None:
            progress(d)
    return cmp
