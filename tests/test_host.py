"""The host layer (docs/host.md): identity when it changes nothing, exact hand-computed
checks of the scheduler and the switch costs, invariants, determinism and bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import vsmsim
from vsmsim.check import check
from vsmsim.config import ScenarioError, scenario_from_dict
from vsmsim.host.config import HostConfig
from vsmsim.host.machine import RUNNING, Host, HostThread

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import fingerprint as fp  # noqa: E402

HOST_COUNTERS = ("context_switches", "migrations", "halt_poll_hits", "host_wakeups")


def _without_host(res):
    """The tables of a hosted run minus the host layer's own columns, which must be 0."""
    assert (res.residency["steal_ns"] == 0).all()
    res.residency = res.residency.drop(columns=["steal_ns"])
    if res.interrupts is not None:
        assert (res.interrupts["host_wait_ns"] == 0).all()
        res.interrupts = res.interrupts.drop(columns=["host_wait_ns"])
    for k in HOST_COUNTERS:
        res.counters.pop(k)
    return res


def _q7():
    import importlib.util
    path = ROOT / "scenarios" / "q7_vm_per_vtl_vs_planes.py"
    spec = importlib.util.spec_from_file_location("q7_for_tests", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _identity_corpus():
    std = vsmsim.load_scenario(ROOT / "bench" / "standard.toml").with_overrides(
        {"vm.vps": 8, "duration": "20ms", "workload.3.rate": 6250})
    yield "standard-8", std
    for f in sorted((ROOT / "scenarios").glob("*.toml")):
        for d in vsmsim.designs.BUILTIN_DESIGNS:
            yield f"{f.stem}-{d}", vsmsim.load_scenario(f).with_overrides(
                {"design": d, "duration": "10ms"})
    for i, d in enumerate(vsmsim.designs.BUILTIN_DESIGNS):
        yield f"mixed-{d}", fp.mixed(d, i + 1)
    for k in range(40):
        yield f"random-{k}", vsmsim.Scenario.model_validate(fp.random_scenario(k))
    # Calls and VTL1 timers that collide (a hand-off meeting a delivery's errand), as q7 runs
    q7 = dict(_q7().SCENARIO)
    q7.pop("host")
    for d in ("vm-per-vtl", "apic-id-groups", "planes"):
        for seed in (1, 2):
            yield f"q7-{d}-{seed}", vsmsim.Scenario.model_validate(
                {**q7, "design": d, "seed": seed, "duration": "20ms"})


@pytest.mark.parametrize("name,sc", list(_identity_corpus()), ids=lambda x: x
                         if isinstance(x, str) else "")
def test_pinned_host_with_enough_cpus_changes_nothing(name, sc):
    """Pinned threads, a CPU each: the tables equal those of a run without [host] (the host
    machinery runs, with zero-cost switches and the tables' wake costs)."""
    if name.startswith("mixed-"):  # the VP timeline too, state segment by segment
        sc = sc.with_overrides({"record.timeline": True})
    plain = vsmsim.simulate(sc)
    res = vsmsim.simulate(sc.with_overrides({"host": {"placement": "pinned"}}))
    assert res.threads is not None and len(res.cpus) >= sc.vm.vps
    if name.startswith("mixed-"):
        assert res.timeline.reset_index(drop=True).equals(plain.timeline.reset_index(drop=True))
    assert fp.fingerprint(_without_host(res)) == fp.fingerprint(plain)


def _run(design="planes", vps=1, host=None, costs="ideal", override=None, workload=(),
         duration="10ms", vtls=2, **extra):
    return vsmsim.simulate(scenario_from_dict({
        "design": design, "vm": {"vps": vps, "vtls": vtls}, "duration": duration,
        "costs": {"profile": costs, "override": override or {}},
        "host": host if host is not None else {}, "workload": list(workload), **extra}))


def test_two_cpu_bound_vps_on_one_cpu_share_it_equally_under_fair():
    """Slice = latency / 2 = min_granularity = 750 us; 100 ms = 133 slices and a third: each
    VP gets 50 % within one granularity, and the CPU is never idle."""
    res = _run(vps=2, vtls=1, duration="100ms",
               host={"cpus": 1, "latency": "1500us", "min_granularity": "750us"},
               workload=[{"kind": "compute", "vtl": 0}])
    got = res.residency["compute0_ns"].to_numpy()
    assert abs(got - 50_000_000).max() <= 750_000, got
    assert got.sum() == 100_000_000  # ideal costs: no switch time
    assert res.cpus["idle_ns"].iloc[0] == 0
    assert (res.residency["steal_ns"] + res.residency["compute0_ns"] == 100_000_000).all()
    assert check(res, raise_on_error=False) == []


def test_fifo_never_slices():
    """fifo: the first CPU-bound VP keeps the CPU; the second one never runs."""
    res = _run(vps=2, vtls=1, duration="20ms", host={"cpus": 1, "policy": "fifo"},
               workload=[{"kind": "compute", "vtl": 0}])
    assert res.residency["compute0_ns"].tolist() == [20_000_000, 0]
    assert res.residency["steal_ns"].tolist() == [0, 20_000_000]


def test_thread_woken_on_an_idle_cpu_starts_after_exactly_the_cstate_exit():
    """A halted VP's timer: every path step costs 0 (ideal), the CPU is idle: the handler
    starts exactly cstate_exit after the expiry, and all of it is host wait."""
    res = _run(host={"cpus": 1}, override={"cstate_exit": "7us"},
               workload=[{"kind": "timer", "vtl": 0, "period": "1ms", "service": "1us"}])
    irq = res.interrupts
    assert len(irq) == 10
    assert (irq["delivery_ns"] == 7_000).all()
    assert (irq["host_wait_ns"] == 7_000).all()
    assert res.counters["context_switches"] == 10  # idle -> thread, once per expiry


def _call_round_trips(placement, override, host_extra=None):
    return _run(design="vm-per-vtl", host={"placement": placement, **(host_extra or {})},
                override=override, duration="1ms",
                workload=[{"kind": "vtl-call", "vtl": 0, "at": ["100us", "400us"],
                           "service": "5us"}])


def test_a_hand_off_on_one_cpu_costs_the_context_switch_and_nothing_else():
    """vm-per-vtl, both VTL threads of the VP on one CPU, every path cost 0 but the
    hand-off's table cost (50 us, which a same-CPU hand-off does not pay) and
    context_switch = 3 us: each switch of the round trip takes exactly 3 us."""
    res = _call_round_trips("vp-shared", {"context_switch": "3us", "kick_parked": "50us",
                                          "handoff_futex": "50us"})
    sw = res.switches
    assert len(sw) == 4
    assert ((sw["end_ns"] - sw["start_ns"]) == 3_000).all(), sw
    assert res.counters["context_switches"] == 4 + 2  # + the two wakes from idle
    assert check(res, raise_on_error=False) == []


def test_a_hand_off_across_cpus_costs_the_tables_wake():
    """The same with each thread on its own CPU: the table's wake cost (50 us), no context
    switch (each CPU was idle; cstate_exit 0)."""
    res = _call_round_trips("pinned", {"context_switch": "3us", "kick_parked": "50us",
                                       "handoff_futex": "50us"})
    sw = res.switches
    assert ((sw["end_ns"] - sw["start_ns"]) == 50_000).all(), sw
    assert res.cpus["switch_ns"].sum() == 0


def test_halt_polling_skips_the_wake_inside_its_window_and_pays_it_outside():
    """A halted VP's timer every 100 us, msi_halted = 9 us, nothing else costs. halt_poll
    150 us: every expiry but the first finds the thread polling (no wake cost); 50 us: every
    expiry pays it."""
    wl = [{"kind": "timer", "vtl": 0, "period": "100us", "phase": "100us", "service": "1us"}]
    inside = _run(host={"halt_poll": "150us"}, override={"msi_halted": "9us"}, workload=wl,
                  duration="1ms")
    d = inside.interrupts["delivery_ns"].to_numpy()
    assert d[0] == 9_000 and (d[1:] == 0).all(), d
    assert inside.counters["halt_poll_hits"] == len(d) - 1
    assert (inside.interrupts["path"].astype(str)[1:] == "deliver.halted.timer (polled)").all()
    outside = _run(host={"halt_poll": "50us"}, override={"msi_halted": "9us"}, workload=wl,
                   duration="1ms")
    assert (outside.interrupts["delivery_ns"] == 9_000).all()
    assert outside.counters["halt_poll_hits"] == 0
    assert outside.counters["wakeups"] == len(d)


# ---------------------------------------------------------------- the policy, by hand
class _Client:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def on_run(self, now):
        self.log.append((now, "run", self.name))

    def on_preempt(self, now):
        self.log.append((now, "preempt", self.name))

    def on_sleep(self, now):
        pass

    def on_enqueued(self, now):
        pass


def _machine(policy="fair", **cfg):
    from vsmsim.engine.clock import Clock
    from vsmsim.host.policy import POLICIES
    env = Clock()
    a = HostThread(0, "A", 0, -1, (0,), 0)
    b = HostThread(1, "B", 1, -1, (0,), 0)
    log = []
    a.client, b.client = _Client(log, "A"), _Client(log, "B")
    host = Host(env, HostConfig(**cfg), [a, b], 1, POLICIES[policy], (0, 0, 0), False, True)
    return env, host, a, b, log


def test_fair_wakeup_preemption_on_a_hand_computed_timeline():
    """latency 6 ms, min_granularity 0.75 ms, wakeup_granularity 1 ms, no switch costs.

    t=0: A and B wake; A first on the idle CPU; B queued: 0 - 0 <= 1 ms, no preemption;
    slice 6/2 = 3 ms. t=3: A (vr 3) preempted, B (vr 0) runs. t=4: B blocks (vr 1), A runs.
    t=4.5: B wakes: min_vruntime = A's 3.5, floor 0.5, B keeps vr 1; A 3.5 - 1 = 2.5 > 1:
    B preempts at once. t=5.5: B blocks (vr 2), A runs. t=6: B wakes: A's vr 4, floor 1,
    B's 2; 4 - 2 = 2 > 1: preempts. t=6.2: B blocks (vr 2.2). t=6.3: B wakes: A's vr 4.1,
    floor 1.1; 4.1 - 2.2 = 1.9 > 1: preempts. Then B runs to its slice end: with A waiting,
    B's slice is 3 ms from 6.3, but its vr passes A's (4.1) at 8.2; the tick at 9.3
    switches back to A (vr 4.1 < B's 5.2)."""
    from vsmsim.engine.clock import at, run_until
    env, host, a, b, log = _machine(latency=6_000_000, min_granularity=750_000,
                                    wakeup_granularity=1_000_000)
    ms = 1_000_000
    at(env, 0, lambda _: (host.wake(a), host.wake(b)))
    at(env, 4 * ms, lambda _: host.block(b))
    at(env, 4_500_000, lambda _: host.wake(b))
    at(env, 5_500_000, lambda _: host.block(b))
    at(env, 6 * ms, lambda _: host.wake(b))
    at(env, 6_200_000, lambda _: host.block(b))
    at(env, 6_300_000, lambda _: host.wake(b))
    run_until(env, 10 * ms)
    want = [(0, "run", "A"), (3 * ms, "preempt", "A"), (3 * ms, "run", "B"),
            (4 * ms, "run", "A"), (4_500_000, "preempt", "A"), (4_500_000, "run", "B"),
            (5_500_000, "run", "A"), (6 * ms, "preempt", "A"), (6 * ms, "run", "B"),
            (6_200_000, "run", "A"), (6_300_000, "preempt", "A"), (6_300_000, "run", "B"),
            (9_300_000, "preempt", "B"), (9_300_000, "run", "A")]
    assert log == want
    assert b.state != RUNNING and a.state == RUNNING


def test_fair_does_not_preempt_inside_the_wakeup_granularity():
    """B wakes owed less than wakeup_granularity: it waits for A's slice to end."""
    from vsmsim.engine.clock import at, run_until
    env, host, a, b, log = _machine(latency=6_000_000, min_granularity=750_000,
                                    wakeup_granularity=1_000_000)
    at(env, 0, lambda _: host.wake(a))
    at(env, 500_000, lambda _: host.wake(b))  # A's vr 0.5, B placed at max(0, 0.5-3) = 0
    run_until(env, 4_000_000)
    # 0.5 - 0 <= 1 ms: no preemption; A's slice (3 ms from its start at 0) ends at 3 ms
    assert log == [(0, "run", "A"), (3_000_000, "preempt", "A"), (3_000_000, "run", "B")]


# ---------------------------------------------------------------- invariants, determinism
def _random_hosted(k: int) -> dict:
    d = fp.random_hosted(k)
    d["record"] = {"timeline": True}
    return d


@pytest.mark.parametrize("k", range(30))
def test_random_hosted_runs_keep_every_invariant_and_repeat_exactly(k):
    sc = vsmsim.Scenario.model_validate(_random_hosted(k))
    a = vsmsim.simulate(sc)
    assert check(a, raise_on_error=False) == []
    b = vsmsim.simulate(sc)
    assert fp.fingerprint(a) == fp.fingerprint(b)
    assert a.threads.equals(b.threads) and a.cpus.equals(b.cpus)


def test_noise_takes_its_share_of_an_otherwise_idle_cpu():
    """One background thread of utilisation 0.3 alone on its CPU: busy 30 % +- 3 % over
    200 ms of 100 us bursts (about 600 bursts; the sd of the share is ~1.5 %)."""
    res = _run(vps=1, vtls=1, duration="200ms",
               host={"cpus": 2, "noise": [{"cpus": [1], "utilisation": 0.3, "burst": "100us"}]})
    u = res.cpus.set_index("cpu")["utilisation"]
    assert abs(u[1] - 0.3) < 0.03 and u[0] == 0


def test_noise_steals_from_a_vcpu_on_its_cpu():
    res = _run(vps=1, vtls=1, duration="100ms", costs="default",
               host={"cpus": 1, "noise": [{"utilisation": 0.5, "burst": "200us"}]},
               workload=[{"kind": "compute", "vtl": 0}])
    steal = res.residency["steal_ns"].iloc[0] / 100e6
    assert 0.3 < steal < 0.6
    assert check(res, raise_on_error=False) == []


def test_free_placement_spreads_threads_and_counts_migrations():
    res = _run(design="vm-per-vtl", vps=4, duration="20ms", costs="default",
               host={"cpus": 4, "placement": "free"},
               workload=[{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 1, "period": "200us", "service": "20us"}])
    assert res.cpus["busy_ns"].min() > 0  # every CPU is used
    assert check(res, raise_on_error=False) == []
    assert res.counters["migrations"] == int(res.threads["migrations"].sum())


def test_saved_hosted_result_loads_back(tmp_path):
    res = _run(vps=2, host={"cpus": 1}, workload=[{"kind": "compute", "vtl": 0}],
               record={"timeline": True})
    res.save(tmp_path / "r")
    back = vsmsim.load_result(tmp_path / "r")
    assert back.threads.equals(res.threads) and back.cpus.equals(res.cpus)
    assert len(back.host_timeline) == len(res.host_timeline)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("host,needle", [
    ({"policy": "rr"}, "host.policy: 'rr' is not a host policy; allowed: fair, fifo"),
    ({"placement": "shared"}, "host.placement"),
    ({"cpus": 0}, "host.cpus"),
    ({"affinity": {"cpu0": [1]}}, "not a thread name"),
    ({"cpus": 2, "affinity": {"vp0": [5]}}, "host.affinity.vp0: CPU 5 is out of range 0..1"),
    ({"affinity": {"vp9": [0]}}, "host.affinity.vp9: VP 9 is out of range"),
    ({"noise": [{"utilisation": 1.5}]}, "host.noise[0].utilisation: 1.5 is not a fraction"),
    ({"cpus": 2, "noise": [{"utilisation": 0.2, "cpus": [3]}]}, "host.noise[0].cpus: CPU 3"),
    ({"halt_poll": "-1us"}, "host.halt_poll"),
])
def test_bad_host_section_is_one_clear_line(host, needle):
    with pytest.raises(ScenarioError) as e:
        scenario_from_dict({"vm": {"vps": 2}, "host": host})
    assert needle in str(e.value), str(e.value)


def test_cli_rejects_a_bad_host_section_with_exit_2(tmp_path, capsys):
    from vsmsim.cli import main
    f = tmp_path / "s.toml"
    f.write_text('duration = "1ms"\n[host]\npolicy = "rr"\n')
    assert main(["run", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "host.policy" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_no_host_section_runs_the_plain_vp():
    from vsmsim.engine.sim import Simulation
    from vsmsim.engine.vp import VP
    sim = Simulation(scenario_from_dict({"vm": {"vps": 2}}))
    assert sim.host is None and all(type(vp) is VP for vp in sim.vps)
    assert np.all([vp.fuse_irq == -1 for vp in sim.vps])


def test_a_zero_cost_switch_still_hands_off_between_threads():
    """ideal costs (switch paths cost nothing) and context_switch = 3 us, both threads on one
    CPU: each switch still hands off, 3 us, spent waiting for the CPU to switch threads
    (steal, not transition time): a round trip of a 5 us call is 3 + 5 + 3 us."""
    res = _call_round_trips("vp-shared", {"context_switch": "3us"})
    assert ((res.switches["end_ns"] - res.switches["start_ns"]) == 3_000).all()
    assert res.residency["transition_ns"].iloc[0] == 0
    calls = res.interrupts[res.interrupts["kind"].astype(str) == "vtl-call"]
    assert ((calls["resumed_ns"] - calls["raised_ns"]) == 11_000).all(), calls
    assert res.residency["steal_ns"].iloc[0] == 4 * 3_000
    assert res.threads.set_index("thread").loc["vp0.vtl1", "run_ns"] == 2 * 5_000
    assert check(res, raise_on_error=False) == []


def test_trace_has_a_track_per_host_cpu(tmp_path):
    from vsmsim.trace import trace_events
    res = _run(vps=2, host={"cpus": 1}, costs="default", duration="10ms",
               workload=[{"kind": "compute", "vtl": 0}], record={"timeline": True})
    ev = trace_events(res)
    names = {e["args"].get("name") for e in ev if e.get("ph") == "M"}
    assert {"host CPUs", "CPU 0"} <= names
    host = [e for e in ev if e.get("cat") == "cpu"]
    assert len(host) == len(res.host_timeline) and {e["name"] for e in host} == {"vp0", "vp1"}
    assert any(e.get("cat") == "steal" for e in ev)


def test_cli_run_reports_the_host(tmp_path, capsys):
    from vsmsim.cli import main
    f = tmp_path / "s.toml"
    f.write_text('duration = "2ms"\n[vm]\nvps = 2\n[host]\ncpus = 1\n'
                 '[[workload]]\nkind = "compute"\nvtl = 0\n')
    assert main(["run", str(f), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "host: 1 CPUs, pinned placement, fair policy, 4 vCPU threads" in out
    assert (tmp_path / "o" / "threads.parquet").is_file()


def _guest_thread(ctx):
    while True:
        yield ctx.run("30us")
        for _ in range(4):
            yield ctx.vtl_call(service="3us")
            yield ctx.run("2us")
        yield ctx.sleep("20us")


def _secure_kernel(ctx):
    while True:
        request = yield ctx.next_call()
        yield ctx.run(request.service)
        ctx.send_ipi(dest=1, vector=0xF0, service="5us")
        yield ctx.vtl_return()


@pytest.mark.parametrize("design", ["vm-per-vtl", "planes"])
@pytest.mark.parametrize("host", [{"placement": "pinned"},
                                  {"placement": "vp-shared", "cpus": 1, "halt_poll": "10us"},
                                  {"placement": "free", "cpus": 2,
                                   "noise": [{"utilisation": 0.4, "burst": "50us"}]}],
                         ids=["pinned", "one-cpu", "free-noise"])
def test_guest_programs_run_on_host_threads(design, host):
    """Guest programs (VTL calls from a VTL0 loop, a VTL1 service loop sending IPIs) keep
    every invariant on the host; pinned with a CPU per thread they give the unhosted run."""
    sc = scenario_from_dict({
        "design": design, "duration": "20ms", "vm": {"vps": 2, "vtls": 2},
        "workload": [{"kind": "program", "vtl": 0, "vps": [0], "program": _guest_thread},
                     {"kind": "program", "vtl": 1, "vps": [0], "program": _secure_kernel},
                     {"kind": "compute", "vtl": 0, "vps": [1]}],
        "record": {"timeline": True}, "host": host})
    res = vsmsim.simulate(sc, debug=True)
    assert check(res, raise_on_error=False) == []
    calls = res.interrupts[res.interrupts["kind"].astype(str) == "vtl-call"]
    assert len(calls) > 20 and calls["resumed_ns"].notna().sum() >= len(calls) - 1
    if host["placement"] == "pinned":
        plain = vsmsim.simulate(sc.with_overrides({"host": None}))
        assert fp.fingerprint(_without_host(res)) == fp.fingerprint(plain)


def test_a_dotted_override_creates_the_host_section():
    sc = scenario_from_dict({"vm": {"vps": 2}})
    assert sc.host is None
    got = sc.with_overrides({"host.cpus": 1, "host.placement": "vp-shared"})
    assert got.host.cpus == 1 and got.host.placement == "vp-shared"
    with pytest.raises(ScenarioError, match="no key 'cpu'; allowed here: cpus, placement"):
        sc.with_overrides({"host.cpu": 1})


def test_an_errand_runs_on_the_parked_vtl1_thread_and_competes_for_the_cpu():
    """vm-per-vtl, both threads of the VP on one CPU, ideal costs but kvm_run = 1 us and
    context_switch = 3 us; VTL0 computes, a VTL1 timer expires at 5 ms. By hand: VTL1's
    parked thread wakes for its errand (KVM_RUN returning, 1 us) and preempts VTL0's (fair:
    VTL0 ran 5 ms, far past the wakeup granularity): switch 3 us, errand [5.003, 5.004] ms;
    it kicks VTL0 and sleeps: switch back 3 us, VTL0's exit and KVM_RUN return [5.007,
    5.008]; switch.interrupt hands off (3 us) and VTL1's KVM_RUN returns (1 us): the
    handler starts at 5.012 ms, 2 us, and the return hands back (3 us)."""
    res = _run(design="vm-per-vtl", host={"placement": "vp-shared"},
               override={"context_switch": "3us", "kvm_run": "1us"}, duration="6ms",
               workload=[{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 1, "at": ["5ms"], "service": "2us"}],
               record={"timeline": True})
    segs = res.host_timeline[["thread", "start_ns", "end_ns"]].astype(
        {"thread": str}).values.tolist()
    assert segs == [["vp0.vtl0", 0, 5_000_000], ["vp0.vtl1", 5_003_000, 5_004_000],
                    ["vp0.vtl0", 5_007_000, 5_008_000], ["vp0.vtl1", 5_011_000, 5_014_000],
                    ["vp0.vtl0", 5_017_000, 6_000_000]]
    irq = res.interrupts.iloc[0]
    assert irq["delivery_ns"] == 12_000
    # VTL0's thread waited from its preemption at 5.000 to 5.007, VTL1's for the hand-off
    # [5.008, 5.011]: 10 us of the 12 were waiting for the CPU
    assert irq["host_wait_ns"] == 10_000
    assert check(res, raise_on_error=False) == []


def test_without_host_the_errand_is_a_plain_delay():
    base = {"design": "vm-per-vtl", "duration": "6ms", "costs": {"override": {"kvm_run": "1us"}},
            "workload": [{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 1, "at": ["5ms"], "service": "2us"}]}
    plain = vsmsim.simulate(scenario_from_dict(base))
    hosted = vsmsim.simulate(scenario_from_dict({**base, "host": {}}))
    assert fp.fingerprint(_without_host(hosted)) == fp.fingerprint(plain)
    assert hosted.threads.set_index("thread").loc["vp0.vtl1", "run_ns"] > 1_000


def test_a_vmm_errand_runs_on_the_vmm_thread_one_after_the_other():
    """A design variant whose deliveries to an inactive VTL make the VMM's main thread
    work 4 us (errand = "vmm"): with two VPs' timers expiring at once, the VMM thread
    (alone on its CPU) serves them one after the other: the second delivery is 4 us later."""
    planes = vsmsim.load_design("planes")
    mine = planes.variant("planes-vmm", paths={
        "deliver.inactive.timer": [{"cost": "uexit", "payer": "none", "errand": "vmm"},
                                   {"cost": "exit", "payer": "receiver"}]})
    assert mine.vmm_thread
    res = _run(design=mine, vps=2, host={"placement": "pinned"},
               override={"uexit": "4us", "exit": "1us"}, duration="2ms",
               workload=[{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 1, "at": ["1ms"], "service": "2us"}])
    assert "vmm" in set(res.threads["thread"]) and len(res.cpus) == 3
    d = sorted(res.interrupts["delivery_ns"].tolist())
    assert d == [5_000, 9_000], d  # 4 + 1 us, then 4 + 4 + 1 us
    vmm = res.threads.set_index("thread").loc["vmm"]
    assert vmm["run_ns"] == 8_000 and vmm["wakeups"] == 1
    assert check(res, raise_on_error=False) == []


def test_hostlink_situation_code_matches_the_engine():
    from vsmsim.engine import hostlink, sim
    assert hostlink.SIT_LOWER == sim.SIT_LOWER


def test_residency_plot_shares_include_steal_and_add_up():
    from vsmsim.plots import residency_shares
    res = _run(vps=2, vtls=1, host={"cpus": 1}, costs="default", duration="10ms",
               workload=[{"kind": "compute", "vtl": 0}])
    shares = residency_shares(res)
    assert shares["steal"] > 0.4 and abs(sum(shares.values()) - 1.0) < 1e-9


def test_timeline_plot_draws_steal(tmp_path):
    from vsmsim import plots
    res = _run(vps=2, vtls=1, host={"cpus": 1, "latency": "100us", "min_granularity": "50us"},
               costs="default", duration="1ms", workload=[{"kind": "compute", "vtl": 0}],
               record={"timeline": True})
    fig = plots.timeline(res)
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any(lab.startswith("steal") for lab in labels)
    fig.savefig(tmp_path / "t.png")


def test_show_design_marks_the_host_steps():
    from vsmsim.report import design_text
    text = design_text(vsmsim.load_design("vm-per-vtl"))
    call = text.split("switch.call")[1].split("switch.return")[0]
    assert call.count("[host: hand-off]") == 1 and "kick_parked" in call.split("[host")[-2]
    assert "[host: errand on the target VTL's thread]" in text.split("deliver.inactive ")[1]


def test_explain_names_the_host_steps_as_show_design_does():
    """explain and show design word a step's host role alike (designs.host_role)."""
    from vsmsim.explain import explain_text, path_steps
    sc = vsmsim.load_scenario(fp.MIXED).with_overrides(
        {"duration": "2ms", "host": {"placement": "free", "cpus": 2}})
    res = vsmsim.simulate(sc)
    ints = res.interrupts
    irq = int(ints[(ints["vtl"] == 1) & (ints["path"] == "deliver.inactive.timer")
                   & ints["start_ns"].notna()]["id"].iloc[0])
    assert "(host: errand on the target VTL's thread)" in explain_text(res, irq)
    roles = [st.on for st in path_steps(res, "switch.call")]
    assert roles.count("hand-off") == 1
    plain = vsmsim.simulate(sc.with_overrides({"host": None}))
    assert all(st.on == "" for st in path_steps(plain, "switch.call"))
