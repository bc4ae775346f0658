"""Running many simulations: paired design comparisons (sweeps live in vsmsim.sweep)."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import names
from .api import _as_scenario, attach_baseline, simulate, vsm_off
from .atomic import atomic_dir
from .config import Scenario
from .designs import BUILTIN_DESIGNS, load_design
from .errors import InputError
from .results import Result


@dataclass
class Comparison:
    """One result per design for the same scenario and seed (common random numbers)."""

    scenario: Scenario
    results: dict[str, Result] = field(default_factory=dict)
    baseline: Result | None = None
    #: Designs whose run raised: label -> the error's traceback (text). The others are kept.
    failures: dict[str, str] = field(default_factory=dict)

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
        written = []
        path = Path(path)
        with atomic_dir(path) as tmp:
            for name, res in self.results.items():
                res.save(tmp / _safe(name))
            if self.baseline is not None:
                self.baseline.save(tmp / names.BASELINE_DIR)
            if self.results:
                self.summary().to_csv(tmp / names.COMPARISON)
            manifest = {"scenario": self.scenario.resolved(), "designs": self.designs,
                        "baseline": self.baseline is not None,
                        "failed": {k: v.strip().splitlines()[-1] for k, v in self.failures.items()},
                        "tracebacks": self.failures}
            (tmp / names.COMPARISON_MANIFEST).write_text(json.dumps(manifest, indent=2,
                                                                    default=str))
            if plots and self.results:
                from .plots import plot_comparison
                written = [path / p.relative_to(tmp)
                           for p in plot_comparison(self, tmp, formats=plots)]
        return written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def design_labels(designs) -> list[tuple[str, object]]:
    """(label, loaded design) for each entry of *designs*, labels distinct.

    A label is the design's name; two designs with one name (a file dumped from a built-in
    keeps its name) are told apart by the file's stem. Bad names fail here, before anything
    runs; names that stay ambiguous are an :class:`InputError`.
    """
    loaded = [(d, load_design(d)) for d in designs]
    names_ = [design.name for _, design in loaded]
    labels = []
    for (d, _design), name in zip(loaded, names_):
        is_file = isinstance(d, (str, Path)) and Path(str(d)).suffix == ".toml"
        labels.append(Path(str(d)).stem if names_.count(name) > 1 and is_file else name)
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            raise InputError(f"designs: {designs[labels.index(label)]!r} and {designs[i]!r} are "
                             f"both named {label!r}; give one of them another name")
    return [(label, design) for label, (_, design) in zip(labels, loaded)]


def compare(scenario, designs=None, *, baseline: bool = True, debug: bool = False,
            progress=None) -> Comparison:
    """Run *scenario* under each design with the same seed, so arrivals are identical.

    *designs* defaults to all five built-in designs; entries may be names, design-file
    paths or :class:`~vsmsim.Design` objects. With *baseline*, a VSM-off run gives each
    result a ``vtl0_tax``. A design whose run raises does not stop the others: its error is
    kept in ``Comparison.failures`` (and in the saved ``comparison.json``).
    """
    sc = _as_scenario(scenario)
    labelled = design_labels(list(designs or BUILTIN_DESIGNS))
    cmp = Comparison(sc)
    if baseline:
        try:
            cmp.baseline = simulate(vsm_off(sc), debug=debug)
        except Exception:  # noqa: BLE001 - kept and reported, like a failed design
            cmp.failures[names.BASELINE_DIR] = traceback.format_exc()
    for label, design in labelled:
        try:
            res = simulate(sc.with_overrides({"design": design}), debug=debug)
        except Exception:  # noqa: BLE001 - a failing design must not discard the others
            cmp.failures[label] = traceback.format_exc()
        else:
            if cmp.baseline is not None:
                attach_baseline(res, cmp.baseline)
            res.meta["label"] = label
            cmp.results[label] = res
        if progress is not None:
            progress(label)
    return cmp
