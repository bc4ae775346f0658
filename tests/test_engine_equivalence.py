"""The engine's fast paths change speed, never results.

A delivery exit fused with the handler it starts (``vsmsim.engine.sim.FUSE``) must give
the same tables, row for row, as the plain job-then-dispatch path. Costs are drawn from
continuous distributions so that the runs are full of interleavings, and the scenarios mix
every kind of event.
"""

import pandas as pd
import pytest

import vsmsim
from vsmsim.engine import sim as engine_sim
from vsmsim.engine import vp as engine_vp

JITTER = {k: {"dist": "lognormal", "median": v, "sigma": 0.4}
          for k, v in {"exit": "1us", "uexit": "4us", "timer_expiry": "400ns", "kick": "1500ns",
                       "wakeup": "5us", "posted_delivery": "300ns"}.items()}


def scenario(design, seed, round_costs):
    return vsmsim.Scenario.model_validate({
        "duration": "15ms", "seed": seed, "design": design, "vm": {"vps": 6, "vtls": 3},
        "costs": {"profile": "default", "override": {} if round_costs else JITTER},
        "context": [{"vtl": 1, "vina": {"vector": 0x31}}, {"vtl": 2, "tpr": 2}],
        "workload": [
            {"kind": "compute", "vtl": 0},
            {"kind": "timer", "vtl": 0, "period": "100us", "service": "3us", "vector": 0xE1},
            {"kind": "timer", "vtl": 1, "rate": 3000, "service": {"dist": "exp", "mean": "10us"}},
            {"kind": "timer", "vtl": 2, "period": "700us", "service": "5us", "vector": 0x25},
            {"kind": "ipi", "vtl": 0, "rate": 40000, "service": {"dist": "exp", "mean": "2us"}},
            {"kind": "external", "rate": 20000, "service": {"dist": "exp", "mean": "3us"},
             "vector": 0x70},
            {"kind": "vtl-call", "vtl": 0, "rate": 4000, "service": "6us"},
            {"kind": "pv-ipi", "vtl": 1, "target_vtl": 0, "rate": 2000},
        ]})


@pytest.mark.parametrize("design,seed,round_costs", [
    ("vm-per-vtl", 1, False), ("apic-id-groups", 2, False), ("planes-inkernel", 3, False),
    ("planes", 4, True),
])
def test_fused_and_unfused_deliveries_agree(design, seed, round_costs, monkeypatch):
    sc = scenario(design, seed, round_costs)
    fused_count = []
    real = engine_vp.VP.exit_then_pend

    def counting(vp, ns, irq):
        real(vp, ns, irq)
        fused_count.append(vp.fuse_irq == irq)

    monkeypatch.setattr(engine_vp.VP, "exit_then_pend", counting)
    fused = vsmsim.simulate(sc, debug=True)
    assert sum(fused_count) > 100  # the fast path was really taken
    monkeypatch.setattr(engine_sim, "FUSE", False)
    plain = vsmsim.simulate(sc, debug=True)
    pd.testing.assert_frame_equal(fused.interrupts, plain.interrupts)
    pd.testing.assert_frame_equal(fused.switches, plain.switches)
    pd.testing.assert_frame_equal(fused.residency, plain.residency)
    assert fused.counters == plain.counters
    vsmsim.check(fused)
