"""check() catches each broken promise: a valid run is clean; a copy broken on purpose is not.

Each test breaks one thing in the tables of a real run and asserts that check() names it.
"""

import copy

import numpy as np
import pandas as pd
import pytest

import vsmsim
from vsmsim.check import InvariantError

SPEC = {
    "duration": "3ms", "seed": 4, "vm": {"vps": 3, "vtls": 3},
    "record": {"timeline": True},
    "context": [{"vtl": 1, "vina": {"vector": 0x31}}],
    "workload": [
        {"kind": "compute", "vtl": 0},
        {"kind": "timer", "vtl": 0, "period": "100us", "service": "3us"},
        {"kind": "timer", "vtl": 1, "period": "250us", "phase": "10us", "service": "4us",
         "vector": 0x35},
        {"kind": "ipi", "vtl": 0, "period": "300us", "dest": "all-but-self", "senders": [0]},
        {"kind": "ipi", "vtl": 0, "rate": 20000, "dest": "random"},
        {"kind": "pv-ipi", "vtl": 1, "target_vtl": 0, "period": "400us", "dest": [1, 2]},
        {"kind": "vtl-call", "vtl": 0, "period": "200us", "service": "5us", "vps": [1]},
        {"kind": "external", "vtl": 0, "at": ["1ms", "2ms"], "vps": [2], "vector": 0x70},
    ]}


@pytest.fixture(scope="module")
def good():
    res = vsmsim.simulate(SPEC, debug=True)
    assert vsmsim.check(res) == []
    return res


def broken(res, fn):
    """A deep copy of *res* changed by fn(copy); returns check()'s problems."""
    r = copy.deepcopy(res)
    fn(r)
    return vsmsim.check(r, raise_on_error=False)


def has(problems, *fragments):
    assert any(all(f in p for f in fragments) for p in problems), problems


def rows_of(res, workload_index):
    return res.interrupts.index[res.interrupts.workload.cat.codes == workload_index]


def test_a_valid_run_is_clean_under_every_design(good):
    for d in vsmsim.designs.BUILTIN_DESIGNS:
        assert vsmsim.check(vsmsim.simulate({**SPEC, "design": d})) == []


def test_vp_residency_must_add_up_to_the_window(good):
    def f(r):
        r.residency.loc[0, "idle_ns"] += 7
    has(broken(good, f), "vp 0", "add up to")


def test_context_residency_is_compute_task_and_handlers(good):
    def f(r):
        r.residency.loc[1, "compute0_ns"] -= 1000
        r.residency.loc[1, "idle_ns"] += 0  # parts still add up: only the split is wrong
    has(broken(good, f), "vp 1 VTL 0", "conservation")


def test_a_finished_handler_receives_exactly_its_service(good):
    def f(r):
        i = rows_of(r, 1)[0]
        r.interrupts.loc[i, "service_ns"] += 500
    has(broken(good, f), "handler ran")


def test_timeline_must_tile_the_run(good):
    def f(r):
        r.timeline = r.timeline.drop(index=r.timeline.index[5]).reset_index(drop=True)
    has(broken(good, f), "tile the run")


def test_timeline_must_agree_with_residency(good):
    def f(r):
        tl = r.timeline
        i = tl.index[(tl.state == "compute") & (tl.vp == 0)][0]
        tl.loc[i, "state"] = "halted"
    has(broken(good, f), "timeline gives", "residency table")


def test_zero_cost_profile_has_no_transition_time():
    res = vsmsim.simulate({**SPEC, "costs": "ideal"})
    assert vsmsim.check(res) == []
    assert len(res.switches) > 0

    def f(r):
        r.switches.loc[0, "end_ns"] = r.switches.loc[0, "start_ns"] + 5
    has(broken(res, f), "zero-cost profile")

    def g(r):
        r.residency.loc[0, "exit_ns"] += 3
        r.residency.loc[0, "idle_ns"] -= 3
    has(broken(res, g), "exit_ns", "zero-cost")


def test_every_timer_arrival_has_a_row(good):
    def f(r):
        r.interrupts = r.interrupts.drop(index=rows_of(r, 1)[3])
    has(broken(good, f), "workload[1]", "arrivals, expected")


def test_a_timer_arrival_at_the_wrong_time(good):
    def f(r):
        i = rows_of(r, 7)[0]
        r.interrupts.loc[i, "arrival_ns"] += 1
    has(broken(good, f), "workload[7]")


def test_calls_are_an_in_order_prefix_and_the_rest_unsent(good):
    # Without Poisson sends, rows + unsent_actions must be exactly the arrivals.
    spec = {**SPEC, "workload": [w for w in SPEC["workload"] if "rate" not in w]}
    det = vsmsim.simulate(spec)
    assert vsmsim.check(det) == []

    def f(r):
        r.counters["unsent_actions"] += 1
    has(broken(det, f), "have no row but unsent_actions")

    def f2(r):  # a call that vanished: neither a row nor unsent
        r.interrupts = r.interrupts.drop(index=rows_of(r, 5)[-1])
    has(broken(det, f2), "have no row but unsent_actions")

    def g(r):
        i = rows_of(r, 6)[0]
        r.interrupts.loc[i, "arrival_ns"] += 3
    has(broken(good, g), "workload[6]", "in-order prefix")


def test_delivery_and_response_columns(good):
    def f(r):
        i = r.interrupts.index[r.interrupts.start_ns.notna()][0]
        r.interrupts.loc[i, "delivery_ns"] += 1
    has(broken(good, f), "delivery_ns is not")

    def g(r):
        i = r.interrupts.index[r.interrupts.end_ns.notna()][0]
        r.interrupts.loc[i, "response_ns"] -= 1
    has(broken(good, g), "response_ns is not")

    def h(r):
        r.interrupts.loc[0, "arrival_ns"] = r.interrupts.loc[0, "raised_ns"] + 1
    has(broken(good, h), "arrival after raised")

    def k(r):
        i = r.interrupts.index[r.interrupts.end_ns.notna()][-1]
        r.interrupts.loc[i, "end_ns"] = 10**9
    has(broken(good, k), "after the end of the run")


def test_routing_shorthand_and_lists(good):
    def f(r):
        i = rows_of(r, 3)[0]
        r.interrupts.loc[i, "vp"] = 0  # all-but-self reaching the sender
    has(broken(good, f), "workload[3]", "all-but-self")

    def g(r):
        i = rows_of(r, 5)[0]
        r.interrupts.loc[i, "vp"] = 0  # outside dest = [1, 2]
    has(broken(good, g), "workload[5]", "[1, 2]")


def test_routing_random_destination_is_never_the_sender(good):
    def f(r):
        i = rows_of(r, 4)[0]
        r.interrupts.loc[i, "vp"] = r.interrupts.loc[i, "src_vp"]
    has(broken(good, f), "random destination is the sender")


def test_routing_vtls(good):
    def ipi(r):
        r.interrupts.loc[rows_of(r, 4)[0], "vtl"] = 1
    has(broken(good, ipi), "workload[4]", "not delivered to VTL 0")

    def pv(r):
        r.interrupts.loc[rows_of(r, 5)[0], "vtl"] = 1
    has(broken(good, pv), "workload[5]", "not delivered to VTL 0")

    def call(r):
        r.interrupts.loc[rows_of(r, 6)[0], "vtl"] = 2
    has(broken(good, call), "workload[6]", "VTL 0 to VTL 1")

    def call_vp(r):
        r.interrupts.loc[rows_of(r, 6)[0], "vp"] = 0
    has(broken(good, call_vp), "workload[6]", "another VP")

    def timer_set(r):
        r.interrupts.loc[rows_of(r, 7)[0], "vp"] = 0
    has(broken(good, timer_set), "workload[7]", "VP set")


def test_routing_vina_only_where_configured(good):
    vina = good.interrupts.index[good.interrupts.kind == "vina"]
    assert len(vina) > 0

    def f(r):
        r.interrupts.loc[vina[0], "vtl"] = 2
    has(broken(good, f), "VINA row for VTL 2")

    def g(r):
        r.interrupts.loc[vina[0], "vector"] = 0x40
    has(broken(good, g), "VINA vector")


def test_saved_and_loaded_result_checks_the_same(good, tmp_path):
    good.save(tmp_path / "r")
    assert vsmsim.check(vsmsim.load_result(tmp_path / "r")) == []


def test_check_raises_with_every_violation(good):
    r = copy.deepcopy(good)
    r.residency.loc[0, "idle_ns"] += 7
    r.interrupts.loc[0, "arrival_ns"] = r.interrupts.loc[0, "raised_ns"] + 1
    with pytest.raises(InvariantError) as e:
        vsmsim.check(r)
    assert "add up to" in str(e.value) and "arrival after raised" in str(e.value)
    assert np.all(good.interrupts.id.to_numpy() == np.arange(len(good.interrupts)))
    assert isinstance(good.interrupts, pd.DataFrame)
