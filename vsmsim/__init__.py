"""vsmsim: a discrete-event simulator of Hyper-V VSM execution contexts inside KVM.

The public interface (see docs/, and docs/model.md for the rules)::

    sc = vsmsim.load_scenario("scenarios/q1_preemption.toml")
    res = vsmsim.simulate(sc)
    res.interrupts, res.switches, res.counters, res.summary(), res.save("results/x")
    cmp = vsmsim.compare(sc, designs=["apic-id-groups", "planes"])
"""

from ._version import __version__
from .api import simulate, vsm_off
from .check import check
from .config import Scenario, ScenarioError, load_scenario
from .costs import CostProfile, load_profile
from .designs import Design, dump_design, list_designs, load_design
from .errors import InputError
from .results import Result, load_result
from .runner import Comparison, compare
from .sweep import SweepResult, sweep

__all__ = ["compare", "Comparison", "sweep", "SweepResult", "simulate", "vsm_off", "check", "Scenario", "ScenarioError", "load_scenario",
           "CostProfile", "load_profile", "Design", "dump_design", "load_design", "list_designs",
           "InputError", "Result", "load_result", "__version__"]
