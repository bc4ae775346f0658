"""The public entry points: simulate one scenario, compare designs."""

from __future__ import annotations

from .config import Scenario, scenario_from_dict
from .engine.harvest import harvest
from .engine.sim import Simulation
from .results import Result
from .workloads import REGISTRY


def _as_scenario(scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return scenario_from_dict(scenario)
    from .config import load_scenario
    return load_scenario(scenario)


def simulate(scenario, *, debug: bool = False, baseline: bool = False,
             progress=None) -> Result:
    """Run *scenario* (a Scenario, dict or file path) once; deterministic for its seed.

    With *debug*, the engine asserts its invariants while it runs (slower). With
    *baseline*, VSM-off is simulated too and the result's summary gains ``vtl0_tax``.
    *progress*: ``True`` for a tqdm bar on stderr (simulated ms), or a callable
    ``progress(done_ns, total_ns)``. While the engine runs, Python's garbage collector
    collects its young generation less often; its thresholds are put back afterwards
    (``vsmsim/engine/collector.py``).
    """
    sc = _as_scenario(scenario)
    bar = None
    if progress is True:
        from tqdm import tqdm
        bar = tqdm(total=sc.duration // 1_000_000 or 1, unit="ms", desc=sc.name, leave=False)
        progress = lambda done, total: bar.update(done // 1_000_000 - bar.n)  # noqa: E731
    try:
        sim = Simulation(sc, debug=debug).run(progress)
    finally:
        if bar is not None:
            bar.close()
    res = Result.from_run(harvest(sim))
    if baseline:
        attach_baseline(res, simulate(vsm_off(sc), debug=debug))
    return res


def vsm_off(scenario: Scenario) -> Scenario:
    """The same VTL0 workload on a plain VM: one VTL, no higher-VTL workloads.

    The plain VM is modelled with the ``vm-per-vtl`` design at one VTL, which is exactly
    a normal KVM VM (normal APIC maps, posted interrupts as the host offers them).
    """
    data = scenario.to_input()
    data["design"] = "vm-per-vtl"
    data["vm"]["vtls"] = 1
    data["context"] = [c for c in data["context"] if c["vtl"] == 0]
    for c in data["context"]:
        c["vina"] = None
    data["workload"] = [w for w in data["workload"] if REGISTRY[w["kind"]].in_vsm_off(w)]
    data["name"] = f"{data['name']}-vsm-off"
    return scenario_from_dict(data)


def attach_baseline(res: Result, base: Result) -> None:
    """Set ``vtl0_tax`` = 1 - VTL0 work done with VSM / VTL0 work done with VSM off.

    VTL0 work is its background compute plus its guest programs' ``ctx.run`` time.
    """
    tax = vtl0_tax(res.residency, base.residency)
    if tax is not None:
        res.meta["vtl0_tax"] = tax


def vtl0_tax(residency, base_residency) -> float | None:
    """1 - VTL0 work in *residency* / VTL0 work in *base_residency* (None if the latter is 0)."""
    def work(rz):
        total = rz["compute0_ns"].sum()
        if "task0_ns" in rz:  # results saved before task time was recorded lack it
            total += rz["task0_ns"].sum()
        return float(total)

    without = work(base_residency)
    return 1.0 - work(residency) / without if without > 0 else None
