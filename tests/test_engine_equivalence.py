"""The engine's fast paths change speed, never results.

Each fast path (``vsmsim.engine.sim.FAST_PATHS``: a delivery exit fused with the handler
it starts, a timer's inline delivery, a one-destination IPI without the message walker, a
handler's end straight back to compute) must give the same tables, row for row, as the
generic path it short-cuts: each is switched off alone, then all together. Costs are
drawn from continuous distributions so that the runs are full of interleavings, and the
scenarios mix every kind of event. tests/test_properties.py does the same on random
scenarios.
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

    def counting(vp, ns, irq, c):
        real(vp, ns, irq, c)
        fused_count.append(vp.fuse_irq == irq)

    monkeypatch.setattr(engine_vp.VP, "exit_then_pend", counting)
    fused = vsmsim.simulate(sc, debug=True)
    assert sum(fused_count) > 100  # the fast path was really taken
    for off in [*engine_sim.FAST_PATHS, "all"]:
        with engine_sim.fast_paths(**{off: False}):
            plain = vsmsim.simulate(sc, debug=True)
        pd.testing.assert_frame_equal(fused.interrupts, plain.interrupts)
        pd.testing.assert_frame_equal(fused.switches, plain.switches)
        pd.testing.assert_frame_equal(fused.residency, plain.residency)
        assert fused.counters == plain.counters, off
    vsmsim.check(fused)


def test_fast_paths_are_taken_and_switchable():
    """Each switch really changes the path taken (else the test above proves nothing)."""
    sc = scenario("vm-per-vtl", 5, True)
    counts = {}
    real_sent = engine_sim.Simulation._sent
    real_back = engine_vp.VP._back_to_compute

    def sent(self, arg):
        counts["ipi"] = counts.get("ipi", 0) + 1
        real_sent(self, arg)

    def back(self, c, now):
        ok = real_back(self, c, now)
        counts["resume"] = counts.get("resume", 0) + ok
        return ok

    engine_sim.Simulation._sent, engine_vp.VP._back_to_compute = sent, back
    try:
        vsmsim.simulate(sc)
        on = dict(counts)
        counts.clear()
        with engine_sim.fast_paths(all=False):
            vsmsim.simulate(sc)
        off = dict(counts)
    finally:
        engine_sim.Simulation._sent, engine_vp.VP._back_to_compute = real_sent, real_back
    assert on["ipi"] > 100 and on["resume"] > 100
    assert off.get("ipi", 0) == 0 and off.get("resume", 0) == 0
    with pytest.raises(ValueError):
        with engine_sim.fast_paths(bogus=False):
            pass
