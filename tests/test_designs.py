"""The five designs: path sums against the cost profile, routing, posting, pairing, errors.

Expected latencies are summed from the default profile and the steps written out by hand
in tests/handsums.py (from the implementations, as docs/designs.md reads them), not read
from the design tables.
"""

import pandas as pd
import pytest
from conftest import cost, run
from handsums import SWITCH_IOCTLS, inactive_timer_ns, switch_ns

import vsmsim
from vsmsim.designs import BUILTIN_DESIGNS, DesignError, load_design

US = 1000
SWITCH = {d: (switch_ns(d, "call"), switch_ns(d, "return")) for d in BUILTIN_DESIGNS}
SEND = cost("default", "icr_exit", "map_lookup")
# Physical IPI to a running vCPU, Intel host offering APICv: posted under every design
# (the disabled logical map of apic-id-groups inhibits AVIC only: engine/posting.py).
IPI = {d: SEND + cost("default", "posted_delivery") for d in BUILTIN_DESIGNS}
INJECTED = SEND + cost("default", "kick", "exit")  # APICv inhibited: kick, then an exit
# VTL1 timer while VTL0 runs: notification, then the switch into VTL1
TIMER_WAKEUP = {d: sum(inactive_timer_ns(d)) + switch_ns(d, "interrupt") for d in BUILTIN_DESIGNS}


def one(design, workloads, vps=2, **vm):
    return run({"duration": "2ms", "design": design, "vm": {"vps": vps, "vtls": 2, **vm},
                "workload": [{"kind": "compute", "vtl": 0}, *workloads]})


@pytest.mark.parametrize("design", BUILTIN_DESIGNS)
def test_path_sums_match_the_cost_profile(design):
    ipi = one(design, [{"kind": "ipi", "senders": [0], "dest": [1], "at": ["100us"]}])
    assert ipi.interrupts.iloc[0].delivery_ns == IPI[design]
    call = one(design, [{"kind": "vtl-call", "vps": [0], "at": ["100us"], "service": "10us"}])
    row = call.interrupts.iloc[0]
    assert row.resumed_ns - row.raised_ns == sum(SWITCH[design]) + 10 * US
    assert call.counters["ioctls"] == SWITCH_IOCTLS[design]["call"] + SWITCH_IOCTLS[design]["return"]
    timer = one(design, [{"kind": "timer", "vtl": 1, "vps": [0], "at": ["100us"]}])
    row = timer.interrupts.iloc[0]
    if design == "planes-rfc":  # nothing makes VTL0 exit: as posted, it is never seen
        assert row.start_ns is pd.NA and timer.switches[timer.switches.reason == "interrupt"].empty
    else:
        assert row.delivery_ns == TIMER_WAKEUP[design] and row.woke and row.switched


@pytest.mark.parametrize("design,grows", [("apic-id-groups", True), ("apic-namespaces", False),
                                          ("vm-per-vtl", False)])
def test_logical_ipi_routing_cost_against_vcpus(design, grows):
    lat = {}
    for n in (4, 16, 64):
        res = one(design, [{"kind": "ipi", "senders": [0], "dest": [1], "dest_mode": "logical",
                            "at": ["100us"]}], vps=n)
        lat[n] = res.interrupts.iloc[0].delivery_ns
        assert res.counters["scanned_vcpus"] == (n * 2 if grows else 0)
    if grows:  # linear in N x V: 15 ns per vCPU scanned, V = 2
        assert lat[16] - lat[4] == 12 * 2 * cost("default", "scan_per_vcpu")
        assert lat[64] - lat[16] == 48 * 2 * cost("default", "scan_per_vcpu")
    else:
        assert lat[4] == lat[16] == lat[64]


@pytest.mark.parametrize("design,vendor,posted", [
    ("vm-per-vtl", "intel", True), ("vm-per-vtl", "amd", True),
    ("apic-id-groups", "intel", True), ("apic-id-groups", "amd", False)])
def test_posted_interrupts_follow_the_design(design, vendor, posted):
    res = one(design, [{"kind": "ipi", "rate": 20000, "service": "1us"}], vps=4, apicv=True,
              vendor=vendor)
    c = res.counters
    n = len(res.interrupts)
    if posted:
        assert c["posted"] == n and c["injected"] == 0 and c["kicks"] == 0
        assert c["exits"] == n  # sender exits only: no receiver exit
    else:
        assert c["posted"] == 0 and c["injected"] == n and c["kicks"] == n
        assert c["exits"] == 2 * n
    off = one(design, [{"kind": "ipi", "rate": 20000}], vps=4, apicv=False)
    assert off.counters["posted"] == 0  # nothing to post with when the host offers no APICv


def test_ipi_virtualization_removes_the_sender_exit_where_usable():
    for design, usable in (("vm-per-vtl", True), ("planes", False)):
        res = one(design, [{"kind": "ipi", "senders": [0], "dest": [1], "at": ["100us"]}],
                  apicv=True, ipiv=True)
        expect = (cost("default", "ipiv_send", "posted_delivery") if usable
                  else SEND + cost("default", "posted_delivery"))
        assert res.interrupts.iloc[0].delivery_ns == expect


def test_paired_comparison_sees_identical_arrivals():
    sc = vsmsim.Scenario.model_validate({
        "duration": "20ms", "seed": 5, "vm": {"vps": 8, "vtls": 2},
        "workload": [{"kind": "compute"},
                     {"kind": "timer", "vtl": 1, "rate": 4000,
                      "service": {"dist": "exp", "mean": "10us"}},
                     {"kind": "ipi", "rate": 30000, "service": {"dist": "exp", "mean": "1us"}},
                     {"kind": "external", "rate": 10000},
                     {"kind": "vtl-call", "rate": 3000, "service": "3us"}]})
    cmp = vsmsim.compare(sc, baseline=False)
    cols = ["arrival_ns", "src_vp", "vp", "vtl", "vector", "service_ns"]
    ref = None
    for res in cmp.results.values():
        df = res.interrupts[res.interrupts.kind != "vina"]
        per_source = {w: g.sort_values(["arrival_ns", "vp"])[cols].reset_index(drop=True)
                      for w, g in df.groupby("workload", observed=True)}
        if ref is None:
            ref = per_source
            continue
        assert per_source.keys() == ref.keys()
        for w in ref:
            assert per_source[w].equals(ref[w]), f"workload {w} differs"
    # ... while the designs do differ in what happens to those arrivals
    p50 = {d: r.latency("timer", vtl=1).median() for d, r in cmp.results.items()}
    assert len(set(p50.values())) >= 4


@pytest.mark.parametrize("text,fragments", [
    ('name = "x"\n[path]\n"send.ipi.physcal" = []\n', ["[path] key 'send.ipi.physcal'", "allowed: send.ipi.physical"]),
    ('name = "x"\n[path]\n"send.ipi.physical" = [{ cost = "exitt", payer = "sender" }]\n',
     ["'send.ipi.physical' step 0", "cost = 'exitt'", "allowed: exit"]),
    ('name = "x"\n[path]\n"send.ipi.physical" = [{ cost = "exit", payer = "receiver" }]\n',
     ["payer = 'receiver'", "allowed: sender or none"]),
    ('name = "x"\n[path]\n"switch.call" = [{ cost = "exit", payer = "vp", times = "N*Q" }]\n',
     ["times", "'N*Q'", "N, V, N*V"]),
    ('name = "x"\n[path]\n"switch.call" = [{ cost = "exit", payer = "vp", count = ["exitz"] }]\n',
     ["count 'exitz'", "allowed: exits"]),
    ('name = "x"\n[capabilities]\nposted = "yes"\n[path]\n', ["[capabilities] posted", "true or false"]),
    ('name = "x"\n[path]\n"send.ipi.physical" = []\n', ["[path] is missing", "send.ipi.ipiv"]),
    ('name = "x"\nsauce = 1\n', ["unknown key(s) ['sauce']", "allowed"]),
])
def test_malformed_design_files_get_clear_messages(tmp_path, text, fragments):
    p = tmp_path / "d.toml"
    p.write_text(text)
    with pytest.raises(DesignError) as e:
        load_design(str(p))
    for f in fragments:
        assert f in str(e.value), str(e.value)


def test_a_user_design_file_runs(tmp_path):
    # "VM per VTL, but with an in-kernel switch": C's table with E's switch paths.
    from vsmsim.designs import dump_design
    fast = load_design("planes-inkernel")
    mine = load_design("vm-per-vtl").variant("vm-per-vtl-inkernel", paths={
        p: fast.paths[p] for p in ("switch.call", "switch.return", "switch.interrupt",
                                   "switch.intercept")})
    text = dump_design(mine)
    f = tmp_path / "mine.toml"
    f.write_text(text)
    assert load_design(str(f)).paths["switch.call"] == fast.paths["switch.call"]
    res = one(str(f), [{"kind": "vtl-call", "vps": [0], "at": ["100us"], "service": "10us"}])
    row = res.interrupts.iloc[0]
    assert row.resumed_ns - row.raised_ns == sum(SWITCH["planes-inkernel"]) + 10 * US
    assert res.design == "vm-per-vtl-inkernel"
