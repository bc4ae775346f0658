"""vsmsim: a discrete-event simulator of Hyper-V VSM execution contexts inside KVM.

The public interface (see docs/ and ARCHITECTURE.md)::

    sc = vsmsim.load_scenario("scenarios/q1_preemption.toml")
    res = vsmsim.simulate(sc)
    res.interrupts, res.switches, res.counters, res.summary(), res.save("results/x")
    cmp = vsmsim.compare(sc, designs=["apic-id-groups", "planes"])
"""

__version__ = "0.1.0"

from .api import simulate, vsm_off  # noqa: E402
from .check import check  # noqa: E402
from .config import Scenario, ScenarioError, load_scenario  # noqa: E402
from .costs import CostProfile, load_profile  # noqa: E402
from .designs import Design, load_design, list_designs  # noqa: E402
from .errors import InputError  # noqa: E402
from .results import Result, load_result  # noqa: E402

__all__ = ["simulate", "vsm_off", "check", "Scenario", "ScenarioError", "load_scenario",
           "CostProfile", "load_profile", "Design", "load_design", "list_designs",
           "InputError", "Result", "load_result", "__version__"]
