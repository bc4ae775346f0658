"""docs/model.md section 2, rule by rule: a few events whose timeline is computed by hand.

Each test runs under the ``ideal`` profile (transitions cost nothing, so the timeline is
pure scheduling) and, where the path costs add up, again under ``default`` with the
expected times summed here from the cost profile, independently of the design tables.
"""

import pandas as pd
import pytest
from conftest import run
from handsums import inactive_timer_ns, switch_ns

US = 1000


def one_vp(workloads, costs="ideal", vtls=2, duration="1ms", design="vm-per-vtl", **extra):
    spec = {"duration": duration, "design": design, "costs": costs,
            "vm": {"vps": 1, "vtls": vtls}, "workload": workloads}
    spec.update(extra)
    return run(spec)


def switches(res):
    return [(r.from_vtl, r.to_vtl, r.reason, r.start_ns, r.end_ns)
            for r in res.switches.itertuples()]


# vm-per-vtl paths, summed from the default profile and the steps in tests/handsums.py:
VMV_NOTIFY_TIMER_NONE, VMV_NOTIFY_VP = inactive_timer_ns("vm-per-vtl")
VMV_SWITCH_BODY = switch_ns("vm-per-vtl", "interrupt")
VMV_CALL = switch_ns("vm-per-vtl", "call")
VMV_RETURN = switch_ns("vm-per-vtl", "return")
VMV_INTERCEPT = switch_ns("vm-per-vtl", "intercept")


class TestRule1And2OneContextRuns:
    """Rules 1-2: one context per VTL, at most one runs; the other keeps its work."""

    WL = [{"kind": "compute", "vtl": 0},
          {"kind": "timer", "vtl": 1, "at": ["100us"], "service": "20us"}]

    def test_ideal(self):
        res = one_vp(self.WL)
        assert switches(res) == [(0, 1, "interrupt", 100 * US, 100 * US),
                                 (1, 0, "return", 120 * US, 120 * US)]
        r = res.residency.iloc[0]
        assert r.vtl1_ns == 20 * US
        assert r.compute0_ns == 1000 * US - 20 * US
        assert r.vtl0_ns + r.vtl1_ns == 1000 * US

    def test_default_costs(self):
        res = one_vp(self.WL, costs="default")
        t_notify = 100 * US + VMV_NOTIFY_TIMER_NONE + VMV_NOTIFY_VP
        start = t_notify + VMV_SWITCH_BODY
        irq = res.interrupts.iloc[0]
        assert irq.start_ns == start
        assert irq.end_ns == start + 20 * US
        assert bool(irq.woke) and bool(irq.switched)
        assert switches(res) == [(0, 1, "interrupt", t_notify, start),
                                 (1, 0, "return", start + 20 * US, start + 20 * US + VMV_RETURN)]
        r = res.residency.iloc[0]
        lost = VMV_NOTIFY_VP + VMV_SWITCH_BODY + 20 * US + VMV_RETURN
        assert r.compute0_ns == 1000 * US - lost
        assert r.transition_ns == VMV_SWITCH_BODY + VMV_RETURN
        assert r.exit_ns == VMV_NOTIFY_VP


def test_rule3_vp_starts_in_vtl0_and_halts_with_nothing_to_do():
    res = one_vp([{"kind": "timer", "vtl": 0, "at": ["10us"], "service": "5us"}])
    assert len(res.switches) == 0
    irq = res.interrupts.iloc[0]
    assert (irq.start_ns, irq.end_ns) == (10 * US, 15 * US)
    r = res.residency.iloc[0]
    assert r.idle_ns == 1000 * US - 5 * US and r.vtl0_ns == 5 * US


class TestRule4Entry:
    """Rule 4: calls, interrupts and intercepts enter the higher VTL, with the reason."""

    def test_vtl_call_ideal(self):
        res = one_vp([{"kind": "compute", "vtl": 0},
                      {"kind": "vtl-call", "vtl": 0, "at": ["50us"], "service": "10us"}])
        assert switches(res) == [(0, 1, "call", 50 * US, 50 * US), (1, 0, "return", 60 * US, 60 * US)]
        row = res.interrupts.iloc[0]
        assert (row.kind, row.vtl, row.src_vtl) == ("vtl-call", 1, 0)
        assert (row.start_ns, row.end_ns, row.resumed_ns) == (50 * US, 60 * US, 60 * US)

    def test_vtl_call_default(self):
        res = one_vp([{"kind": "compute", "vtl": 0},
                      {"kind": "vtl-call", "vtl": 0, "at": ["50us"], "service": "10us"}],
                     costs="default")
        row = res.interrupts.iloc[0]
        assert row.start_ns == 50 * US + VMV_CALL
        assert row.end_ns == row.start_ns + 10 * US
        assert row.resumed_ns == row.end_ns + VMV_RETURN
        # the call returns VTL0's and VTL1's KVM_RUN, the return VTL1's
        assert res.counters["hypercalls"] == 2 and res.counters["uexits"] == 3

    def test_intercept_reason(self):
        res = one_vp([{"kind": "compute", "vtl": 0},
                      {"kind": "intercept", "vtl": 0, "at": ["50us"], "service": "3us"}],
                     costs="default")
        assert [s[2] for s in switches(res)] == ["intercept", "return"]
        row = res.interrupts.iloc[0]
        assert row.kind == "intercept"
        assert row.start_ns == 50 * US + VMV_INTERCEPT
        # the return and the two default follow-up hypercalls of the handler (serve.hypercall):
        # the intercept itself is no hypercall
        assert res.counters["hypercalls"] == 1 + 2


def test_rule5_lower_vtl_never_preempts_higher():
    res = one_vp([{"kind": "compute", "vtl": 0},
                  {"kind": "timer", "vtl": 1, "at": ["100us"], "service": "50us"},
                  {"kind": "timer", "vtl": 0, "at": ["110us"], "service": "5us", "vector": 0xFE}])
    t1, t0 = res.interrupts.sort_values("vtl", ascending=False).itertuples()
    assert (t1.start_ns, t1.end_ns) == (100 * US, 150 * US)
    # rule 8: the VTL0 interrupt waits in VTL0's IRR until the return, whatever its vector
    assert (t0.start_ns, t0.end_ns) == (150 * US, 155 * US)
    assert bool(t0.woke)
    assert switches(res) == [(0, 1, "interrupt", 100 * US, 100 * US),
                             (1, 0, "return", 150 * US, 150 * US)]


class TestRule6Masking:
    def test_masked_class_stays_pending_without_switch(self):
        res = one_vp([{"kind": "compute", "vtl": 0},
                      {"kind": "timer", "vtl": 1, "at": ["100us"], "vector": 0xEC}],
                     context=[{"vtl": 1, "tpr": 14}])
        assert len(res.switches) == 0
        irq = res.interrupts.iloc[0]
        assert pd.isna(irq.start_ns) and pd.isna(irq.end_ns)  # kept, never dropped
        assert res.residency.iloc[0].compute0_ns == 1000 * US

    def test_class_above_tpr_switches(self):
        res = one_vp([{"kind": "compute", "vtl": 0},
                      {"kind": "timer", "vtl": 1, "at": ["100us"], "vector": 0xF2, "service": "4us"}],
                     context=[{"vtl": 1, "tpr": 14}])
        assert switches(res)[0][:3] == (0, 1, "interrupt")
        assert res.interrupts.iloc[0].start_ns == 100 * US


def test_rule7_highest_vtl_is_entered_first_then_returns_step_down():
    res = one_vp([{"kind": "compute", "vtl": 0},
                  {"kind": "timer", "vtl": 1, "at": ["100us"], "service": "10us"},
                  {"kind": "timer", "vtl": 2, "at": ["100us"], "service": "20us"}], vtls=3)
    assert switches(res) == [(0, 2, "interrupt", 100 * US, 100 * US),
                             (2, 1, "return", 120 * US, 120 * US),
                             (1, 0, "return", 130 * US, 130 * US)]
    by_vtl = res.interrupts.set_index("vtl")
    assert by_vtl.loc[2, "start_ns"] == 100 * US
    assert by_vtl.loc[1, "start_ns"] == 120 * US


def test_rule8_lower_interrupt_delivered_on_return_in_priority_order():
    res = one_vp([{"kind": "compute", "vtl": 0},
                  {"kind": "timer", "vtl": 1, "at": ["100us"], "service": "50us"},
                  {"kind": "external", "vtl": 0, "at": ["110us"], "vector": 0x41, "service": "5us"},
                  {"kind": "external", "vtl": 0, "at": ["120us"], "vector": 0x80, "service": "5us"}])
    rows = res.interrupts.set_index("vector")
    assert rows.loc[0x80, "start_ns"] == 150 * US  # higher class first
    assert rows.loc[0x41, "start_ns"] == 155 * US


class TestRule9Vina:
    WL = [{"kind": "compute", "vtl": 0},
          {"kind": "timer", "vtl": 1, "at": ["100us", "500us"], "service": "50us"},
          {"kind": "external", "vtl": 0, "at": ["110us", "120us", "510us"], "service": "1us"}]

    def test_raised_once_per_entry_with_auto_reset(self):
        res = one_vp(self.WL, context=[{"vtl": 1, "vina": {"vector": 0x31, "service": "2us"}}])
        vina = res.interrupts[res.interrupts.kind == "vina"]
        assert list(vina.raised_ns) == [110 * US, 510 * US]  # not again at 120 us
        assert list(vina.vtl) == [1, 1]
        # the notification handler runs after the timer handler (run to completion)
        assert list(vina.start_ns) == [150 * US, 550 * US]

    def test_without_auto_reset_only_once(self):
        res = one_vp(self.WL, context=[{"vtl": 1, "vina": {"vector": 0x31, "auto_reset": False}}])
        assert (res.interrupts.kind == "vina").sum() == 1


def test_rule10_pending_higher_interrupt_calls_straight_back_up():
    # The second VTL1 timer expires while the VP is returning to VTL0 (default costs).
    first_start = 100 * US + VMV_NOTIFY_TIMER_NONE + VMV_NOTIFY_VP + VMV_SWITCH_BODY
    ret_start = first_start + 10 * US
    second = ret_start + 1 * US
    res = one_vp([{"kind": "compute", "vtl": 0},
                  {"kind": "timer", "vtl": 1, "at": ["100us", f"{second}ns"], "service": "10us"}],
                 costs="default")
    sw = switches(res)
    assert [s[:3] for s in sw] == [(0, 1, "interrupt"), (1, 0, "return"), (0, 1, "interrupt"),
                                   (1, 0, "return")]
    ret_end = ret_start + VMV_RETURN
    notified = max(second + VMV_NOTIFY_TIMER_NONE, ret_end) + VMV_NOTIFY_VP
    assert sw[1][3:] == (ret_start, ret_end)
    assert sw[2][3] == notified  # no VTL0 code ran between the return and the call back up
    timeline_vtl0 = res.residency.iloc[0].compute0_ns
    assert timeline_vtl0 == 1000 * US - (first_start - 100 * US - VMV_NOTIFY_TIMER_NONE) - 20 * US \
        - 2 * VMV_RETURN - VMV_NOTIFY_VP - VMV_SWITCH_BODY


def test_rule11_apic_ipis_stay_in_their_vtl_and_cross_vtl_needs_pv_ipi():
    res = run({"duration": "1ms", "costs": "ideal",
               "vm": {"vps": 2, "vtls": 2, "cross_vtl_ipi_up": True},
               "workload": [{"kind": "compute", "vtl": 0},
                            {"kind": "ipi", "vtl": 0, "senders": [0], "dest": [1], "at": ["10us"]},
                            {"kind": "pv-ipi", "vtl": 0, "senders": [0], "dest": [1],
                             "target_vtl": 1, "at": ["20us"], "service": "3us"}]})
    ipi, pv = res.interrupts.sort_values("raised_ns").itertuples()
    assert (ipi.kind, ipi.vtl, ipi.vp) == ("ipi", 0, 1)
    assert (pv.kind, pv.vtl, pv.vp, pv.start_ns) == ("pv-ipi", 1, 1, 20 * US)
    assert switches(res)[0][:3] == (0, 1, "interrupt")


def test_rule11_policy_lower_to_higher_is_a_parameter():
    import vsmsim
    up = {"kind": "pv-ipi", "vtl": 0, "target_vtl": 1, "rate": 10}
    # Default false, as OpenHCL (send_synthetic_cluster_ipi -> target_vtl_no_higher).
    with pytest.raises(vsmsim.ScenarioError, match="cross_vtl_ipi_up"):
        vsmsim.Scenario.model_validate({"vm": {"vps": 2}, "workload": [up]})
    assert vsmsim.Scenario.model_validate({"vm": {"vps": 2, "cross_vtl_ipi_up": True},
                                           "workload": [up]})


def test_rule12_device_interrupts_default_to_vtl0():
    res = one_vp([{"kind": "compute", "vtl": 0}, {"kind": "external", "at": ["10us"]}])
    assert res.interrupts.iloc[0].vtl == 0


def test_within_vtl_highest_vector_first_and_run_to_completion():
    res = one_vp([{"kind": "compute", "vtl": 0},
                  {"kind": "external", "at": ["10us"], "vector": 0x40, "service": "10us"},
                  {"kind": "external", "at": ["12us"], "vector": 0x41, "service": "1us"},
                  {"kind": "external", "at": ["13us"], "vector": 0x80, "service": "1us"},
                  {"kind": "external", "at": ["14us"], "vector": 0x42, "service": "1us"}])
    start = res.interrupts.set_index("vector")["start_ns"]
    assert start[0x40] == 10 * US  # runs to completion although 0x80 arrives meanwhile
    assert start[0x80] == 20 * US
    assert start[0x42] == 21 * US  # then the highest pending vector (IRR order, not arrival)
    assert start[0x41] == 22 * US
    assert res.residency.iloc[0].compute0_ns == 1000 * US - 13 * US


def test_handler_preempts_ordinary_work_and_program_work_is_preemption_proof():
    done = {}

    def guest(ctx):
        yield ctx.run("100us")
        done["t"] = ctx.now

    res = run({"duration": "1ms", "costs": "ideal", "vm": {"vps": 1, "vtls": 2},
               "workload": [{"kind": "program", "vtl": 0, "program": guest},
                            {"kind": "timer", "vtl": 1, "at": ["30us"], "service": "20us"},
                            {"kind": "timer", "vtl": 0, "at": ["60us"], "service": "5us"}]})
    assert done["t"] == 125 * US
    assert len(res.interrupts) == 2
