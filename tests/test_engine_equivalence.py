"""The engine's fast paths change speed, never results.

Each fast path (``vsmsim.engine.sim.FAST_PATHS``: a delivery exit fused with the handler
it starts, a timer's inline delivery, a one-destination IPI without the message walker, a
handler's end straight back to compute, a lazy handler end, a planned VTL entry) must give
the same tables, row for row, as the generic path it short-cuts: each is switched off
alone, then all together. bench/mixed.toml has three VTLs and jittered switch costs, where
no VTL entry is planned: tests/test_planned.py checks that fast path on its own chains. Costs are
drawn from continuous distributions so that the runs are full of interleavings, and the
scenarios mix every kind of event. tests/test_properties.py does the same on random
scenarios.
"""

from pathlib import Path

import pandas as pd
import pytest

import vsmsim
from vsmsim.engine import sim as engine_sim
from vsmsim.engine import vp as engine_vp

MIXED = Path(__file__).resolve().parent.parent / "bench" / "mixed.toml"


def scenario(design, seed, round_costs):
    """bench/mixed.toml: every kind of event; with *round_costs* the default profile's fixed
    costs instead of its jittered ones."""
    over = {"design": design, "seed": seed}
    if round_costs:
        over["costs.override"] = {}
    return vsmsim.load_scenario(MIXED).with_overrides(over)


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
    real_take = engine_sim.Simulation._take
    real_etp = engine_vp.VP.exit_then_pend

    def take(self, vp, c, path, irq, sit):  # the inline timer delivery skips it
        counts["take"] = counts.get("take", 0) + 1
        real_take(self, vp, c, path, irq, sit)

    def sent(self, arg):
        counts["ipi"] = counts.get("ipi", 0) + 1
        real_sent(self, arg)

    def back(self, c, now):
        ok = real_back(self, c, now)
        counts["resume"] = counts.get("resume", 0) + ok
        return ok

    def etp(self, ns, irq, c):  # a handler whose end is left to settle (LAZY_END)
        real_etp(self, ns, irq, c)
        counts["lazy"] = counts.get("lazy", 0) + (self.fuse_irq == irq and self.fuse_lazy)

    engine_sim.Simulation._sent, engine_vp.VP._back_to_compute = sent, back
    engine_sim.Simulation._take = take
    engine_vp.VP.exit_then_pend = etp
    try:
        vsmsim.simulate(sc)
        on = dict(counts)
        counts.clear()
        with engine_sim.fast_paths(all=False):
            vsmsim.simulate(sc)
        off = dict(counts)
    finally:
        engine_sim.Simulation._sent, engine_vp.VP._back_to_compute = real_sent, real_back
        engine_sim.Simulation._take = real_take
        engine_vp.VP.exit_then_pend = real_etp
    assert on["ipi"] > 100 and on["resume"] > 100 and on["lazy"] > 100
    assert off.get("ipi", 0) == 0 and off.get("resume", 0) == 0 and off.get("lazy", 0) == 0
    assert off["take"] > on["take"] + 100  # timers delivered inline when it is on
    with pytest.raises(ValueError):
        with engine_sim.fast_paths(bogus=False):
            pass


def test_an_interrupt_that_joined_a_delivery_pends_when_the_fused_one_lands():
    """Found by the property test: an IPI's delivery (a delay, then the receiver's exit)
    fused with its handler skipped the interrupts that had joined it during the delay, so
    a second IPI of the same vector was never pended (nor coalesced)."""
    ipi = {"kind": "ipi", "vtl": 0, "service": 0, "period": 20000, "vector": 16}
    spec = {"duration": 200000, "design": "apic-id-groups", "vm": {"vps": 1, "vtls": 1},
            "workload": [{"kind": "compute", "vtl": 0}, ipi, dict(ipi)]}
    fast = vsmsim.simulate(spec)
    with engine_sim.fast_paths(all=False):
        plain = vsmsim.simulate(spec)
    pd.testing.assert_frame_equal(fast.interrupts, plain.interrupts)
    joined = fast.interrupts[fast.interrupts["path"] == "joined"]
    assert len(joined) == 10 and joined["coalesced"].all()


def _tie_spec(service_ns: int, timeline: bool = False, ext_at: int = 11000) -> dict:
    """VP 0 runs a VTL0 timer handler of *service_ns* from 10 us (once its exit, ~2 us, is
    over); a VTL1 device interrupt for VP 0 raised at *ext_at* ns reaches it (its exit
    begins) some microseconds later."""
    return {"duration": 60000, "design": "vm-per-vtl", "vm": {"vps": 2, "vtls": 2},
            "costs": {"profile": "default", "override": {}},
            "record": {"timeline": timeline},
            "workload": [{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 0, "vps": [0], "at": [10000],
                          "service": service_ns, "vector": 0xEF},
                         {"kind": "external", "vtl": 1, "vps": [0], "at": [ext_at],
                          "service": 1000}]}


def test_a_handler_ends_before_a_delivery_that_reaches_its_vp_at_that_instant():
    """Found by a tie search: the fused delivery scheduled its handler's end when the exit
    began, the unfused run when the handler started, so a delivery step that reached the VP
    at the very nanosecond the handler ended, scheduled in between, came first in one run
    and second in the other (the handler then 'ended' only after VTL1 returned, with no time
    left). Ends of guest work now come before everything else at their nanosecond
    (clock.WORK_END), fused or not."""
    probe = vsmsim.simulate(_tie_spec(100000, timeline=True))
    timer_start = int(probe.interrupts.loc[probe.interrupts["kind"] == "timer", "start_ns"].iloc[0])
    tl = probe.timeline
    exits = tl[(tl["vp"] == 0) & (tl["state"] == "exit") & (tl["start_ns"] > timer_start)]
    reach = int(exits["start_ns"].iloc[0])  # VTL1's delivery reaches VP 0: its exit begins
    service = reach - timer_start  # the handler ends at that very nanosecond
    fused = vsmsim.simulate(_tie_spec(service))
    with engine_sim.fast_paths(fuse=False):
        plain = vsmsim.simulate(_tie_spec(service))
    for res in (fused, plain):
        timer = res.interrupts[res.interrupts["kind"] == "timer"].iloc[0]
        assert int(timer["end_ns"]) == reach  # ended at its end, not after VTL1's return
    pd.testing.assert_frame_equal(fused.interrupts, plain.interrupts)
    pd.testing.assert_frame_equal(fused.residency, plain.residency)


@pytest.mark.parametrize("design", ["vm-per-vtl", "apic-id-groups", "apic-namespaces",
                                    "planes", "planes-inkernel"])
def test_ties_of_a_handler_end_with_what_reaches_its_vp(design):
    """The same tie, built on purpose under every design: the timer's handler ends exactly
    when (and 1 ns before and after) each of the next state changes of VP 0 begins (the
    VTL1 device interrupt's exit, switch...); every fast path on and all off give the same
    tables."""
    def spec(service, timeline=False):
        d = _tie_spec(service, timeline)
        d["design"] = design
        return d

    probe = vsmsim.simulate(spec(100000, timeline=True))
    start = int(probe.interrupts.loc[probe.interrupts["kind"] == "timer", "start_ns"].iloc[0])
    tl = probe.timeline
    later = tl[(tl["vp"] == 0) & (tl["start_ns"] > start) & (tl["state"] != "handler")]
    instants = sorted(set(later["start_ns"].astype(int)))[:3]
    assert instants  # the device interrupt does reach VP 0 while the handler runs
    for reach in instants:
        for service in (reach - start - 1, reach - start, reach - start + 1):
            fast = vsmsim.simulate(spec(service))
            with engine_sim.fast_paths(all=False):
                plain = vsmsim.simulate(spec(service))
            pd.testing.assert_frame_equal(fast.interrupts, plain.interrupts)
            pd.testing.assert_frame_equal(fast.switches, plain.switches)
            pd.testing.assert_frame_equal(fast.residency, plain.residency)


def _one_timer_spec(design: str, duration: int, warmup: int = 0) -> dict:
    """VP 0 computes and takes one VTL0 timer at 10 us (2 us handler); a device interrupt
    for VP 1 at 10,001 ns is an event drawn after VP 0's exit began that leaves VP 0 alone."""
    return {"duration": duration, "warmup": warmup, "design": design,
            "vm": {"vps": 2, "vtls": 2}, "costs": {"profile": "default", "override": {}},
            "workload": [{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 0, "vps": [0], "at": [10000],
                          "service": 2000, "vector": 0xEF},
                         {"kind": "external", "vtl": 0, "vps": [1], "at": [10001],
                          "service": 1000}]}


@pytest.mark.parametrize("design", ["vm-per-vtl", "apic-id-groups", "apic-namespaces",
                                    "planes", "planes-inkernel"])
def test_a_delivery_whose_exit_ends_at_the_runs_end(design):
    """Found by reading settle(): a fused delivery still in its exit when the run ends was
    settled against the last event processed, so an exit ending exactly at the run's end,
    with an event drawn after it processed meanwhile (a device interrupt for another VP),
    counted as a handler started at the end, which the unfused run never reaches (events
    at the end are not run)."""
    def spec(duration):
        return _one_timer_spec(design, duration)

    probe = vsmsim.simulate(spec(60000)).interrupts
    start = int(probe.loc[probe["kind"] == "timer", "start_ns"].iloc[0])  # the exit's end
    assert start > 10001
    for duration in (start - 1, start, start + 1):
        fast = vsmsim.simulate(spec(duration))
        with engine_sim.fast_paths(all=False):
            plain = vsmsim.simulate(spec(duration))
        timer = fast.interrupts[fast.interrupts["kind"] == "timer"].iloc[0]
        assert pd.isna(timer["start_ns"]) == (duration <= start)
        pd.testing.assert_frame_equal(fast.interrupts, plain.interrupts)
        pd.testing.assert_frame_equal(fast.residency, plain.residency)


@pytest.mark.parametrize("design", ["vm-per-vtl", "apic-id-groups", "apic-namespaces",
                                    "planes", "planes-inkernel"])
def test_a_lazy_handler_end_at_the_runs_end_and_at_the_warmups(design):
    """A handler whose end is left to settle (fusion.LAZY_END) ends exactly at the run's
    end (not run: still in service) and exactly at the end of the warm-up (the snapshot
    comes first at its nanosecond), and 1 ns either side: lazy ends on, off, and every
    fast path off give the same tables."""
    def spec(duration, warmup=0):
        return _one_timer_spec(design, duration, warmup)

    probe = vsmsim.simulate(spec(60000)).interrupts
    end = int(probe.loc[probe["kind"] == "timer", "end_ns"].iloc[0])  # the handler's end
    for d in (end - 1, end, end + 1):
        for sc in (spec(d), spec(60000, warmup=d)):
            lazy = vsmsim.simulate(sc)
            with engine_sim.fast_paths(lazy=False):
                eager = vsmsim.simulate(sc)
            with engine_sim.fast_paths(all=False):
                plain = vsmsim.simulate(sc)
            for other in (eager, plain):
                pd.testing.assert_frame_equal(lazy.interrupts, other.interrupts)
                pd.testing.assert_frame_equal(lazy.residency, other.residency)
                assert lazy.counters == other.counters
