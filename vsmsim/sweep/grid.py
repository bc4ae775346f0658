"""The plan of a sweep: grid points, replications, seeds and run keys, validated up front.

A grid is a dict of dotted keys (as :meth:`vsmsim.Scenario.with_overrides` accepts them)
to lists of values. Its points are the cross product in the order the keys are given,
the last key varying fastest; point ``i`` is the ``i``-th element of that product.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field

import numpy as np

from ..config import Scenario
from ..errors import InputError


def replication_seed(base_seed: int, replication: int) -> int:
    """The seed of replication *replication* of a scenario whose seed is *base_seed*.

    Replication 0 keeps the scenario's own seed, so it reproduces a plain
    :func:`vsmsim.simulate` of the same point; replication ``r > 0`` uses
    ``SeedSequence([base_seed, r]).generate_state(1)[0]`` (an unsigned 32-bit integer).
    It depends on nothing else: not on the worker, the executor or the order of execution.
    """
    if replication == 0:
        return int(base_seed)
    return int(np.random.SeedSequence([int(base_seed), int(replication)]).generate_state(1)[0])


@dataclass
class Point:
    """One grid point: its index, its overrides (dotted key -> value) and its scenario."""

    index: int
    overrides: dict
    scenario: Scenario


@dataclass
class RunSpec:
    """One run of a sweep: a point, a replication, its seed and its stable key."""

    point: int
    replication: int
    seed: int
    key: str


@dataclass
class Plan:
    """Every point and run of a sweep, in table order (point, then replication)."""

    scenario: Scenario
    grid: dict
    replications: int
    points: list[Point] = field(default_factory=list)
    runs: list[RunSpec] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The grid's dotted keys, in column order."""
        return list(self.grid)

    def describe(self) -> dict:
        """JSON-ready description of the sweep (written as ``sweep.json``)."""
        return {
            "scenario": self.scenario.resolved(),
            "grid": self.grid,
            "replications": self.replications,
            "seed_rule": "replication 0: the point's scenario seed; replication r > 0: "
                         "numpy SeedSequence([seed, r]).generate_state(1)[0]",
            "points": [
                {"point": p.index, "overrides": p.overrides,
                 "runs": [{"replication": r.replication, "seed": r.seed, "key": r.key}
                          for r in self.runs if r.point == p.index]}
                for p in self.points
            ],
        }


def _plain(v):
    """Numpy scalars and tuples as plain Python values, so they hash and serialise."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _axis_values(key, values) -> list:
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        values = [values]
    values = [_plain(v) for v in values]
    if not values:
        raise InputError(f"grid {key!r}: no values; give a list such as [4, 16, 64]")
    seen = []
    for v in values:
        if v in seen:
            raise InputError(f"grid {key!r}: value {v!r} is listed twice")
        seen.append(v)
    return values


def _fmt_point(overrides: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items())


def run_key(scenario: Scenario, overrides: dict, replication: int) -> str:
    """Stable name of a run: a hash of its resolved scenario (seed included), its
    overrides and its replication index. Any change to the scenario changes the key."""
    blob = json.dumps({"scenario": scenario.resolved(), "overrides": overrides,
                       "replication": replication}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def make_plan(scenario: Scenario, grid: dict | None, replications: int) -> Plan:
    """Expand and validate *grid*: every point's scenario is built before anything runs.

    Raises :class:`~vsmsim.errors.InputError` naming the key and value of the first
    point that does not validate.
    """
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) \
            or replications < 1:
        raise InputError(f"replications: {replications!r} must be an integer >= 1")
    replications = int(replications)
    grid = dict(grid or {})
    axes = {}
    for key, values in grid.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"grid key {key!r}: expected a dotted scenario key such as 'vm.vps'")
        axes[key] = _axis_values(key, values)
    # Each value alone first, so the message names exactly the key and value at fault.
    for key, values in axes.items():
        for v in values:
            try:
                scenario.with_overrides({key: v})
            except InputError as e:
                raise InputError(f"grid {key}={v!r}: {e}") from None
    plan = Plan(scenario=scenario, grid=axes, replications=replications)
    for i, combo in enumerate(itertools.product(*axes.values())):
        overrides = dict(zip(axes, combo))
        try:
            sc = scenario.with_overrides(overrides) if overrides else scenario
        except InputError as e:
            raise InputError(f"grid point {i} ({_fmt_point(overrides)}): {e}") from None
        plan.points.append(Point(i, overrides, sc))
        for r in range(replications):
            seed = replication_seed(sc.seed, r)
            key = run_key(sc.model_copy(update={"seed": seed}), overrides, r)
            plan.runs.append(RunSpec(i, r, seed, key))
    return plan
