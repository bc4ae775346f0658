"""Running many simulations: paired design comparisons (sweeps live in vsmsim.sweep)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .api import _as_scenario, attach_baseline, simulate, vsm_off
from .atomic import atomic_write
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

    def save(self, path) -> None:
        """Save each design's result under ``path/<design>/`` and ``comparison.csv``."""
        from pathlib import Path

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, res in self.results.items():
            res.save(path / _safe(name))
        if self.baseline is not None:
            self.baseline.save(path / "_vsm-off")
        atomic_write(path / "comparison.csv", lambda tmp: self.summary().to_csv(tmp))


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
