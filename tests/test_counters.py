"""Every counter covers the measured window, and equals what the tables and paths imply.

The engine bumps a counter at each step of a path; the tables record which paths ran. So,
over the measured window, each counter must equal the sum, over the switches that started
in it (by reason) and the interrupts raised in it (by delivery path), of that path's
``count`` amounts in the design table. q7's scenario (calls, VTL1 timers, busy VTL0) with
a warmup is the case that showed the old mix of windows (interrupts and switches counted
from t = 0).
"""

from collections import Counter

import pytest
from handsums import SWITCH_IOCTLS

import vsmsim
from vsmsim.designs import COUNTERS

SCENARIO = {
    "name": "counters", "seed": 7, "duration": "10ms", "warmup": "2ms",
    "vm": {"vps": 4, "vtls": 2},
    "workload": [
        {"kind": "compute", "vtl": 0},
        {"kind": "vtl-call", "vtl": 0, "rate": 40000, "service": "2us"},
        {"kind": "timer", "vtl": 1, "period": "1ms", "service": "10us"},
    ],
}


def _amount(a, n, v):
    return {"N": n, "V": v, "N*V": n * v}[a] if isinstance(a, str) else int(a)


def _path_counts(design: dict, path: str, n: int, v: int) -> Counter:
    out = Counter()
    for step in design["path"].get(path, []):
        for name, a in (step.get("count") or {}).items():
            out[name] += _amount(a, n, v)
    return out


def expected_counters(res) -> Counter:
    """Counters implied by the measured tables and the design's path table."""
    sc, d = res.scenario, res.meta["design"]
    n, v, w = int(sc["vm"]["vps"]), int(sc["vm"]["vtls"]), int(sc["warmup"])
    out = Counter()
    sw = res.switches[res.switches["start_ns"] >= w]
    for reason, k in sw["reason"].value_counts().items():
        for name, a in _path_counts(d, f"switch.{reason}", n, v).items():
            out[name] += a * int(k)
    irq = res.measured()
    irq = irq[~irq["kind"].isin(["vtl-call", "intercept"])]  # their path is the switch's
    for path, k in irq["path"].value_counts().items():
        for name, a in _path_counts(d, str(path), n, v).items():
            out[name] += a * int(k)
    # The engine's own counters: interrupts that joined a notification under way (their
    # row's path), and those merged into a pending vector.
    out["joined"] = int((irq["path"] == "joined").sum())
    out["coalesced"] = int(irq["coalesced"].sum())
    return out


@pytest.mark.parametrize("design", ["vm-per-vtl", "planes", "apic-id-groups"])
def test_every_counter_matches_the_tables_over_the_measured_window(design):
    res = vsmsim.simulate({**SCENARIO, "design": design})
    exp = expected_counters(res)
    for name in COUNTERS:
        assert res.counters[name] == exp[name], name
    w = int(res.scenario["warmup"])
    assert res.counters["interrupts"] == int((res.interrupts["raised_ns"] >= w).sum())
    assert res.counters["switches"] == int((res.switches["start_ns"] >= w).sum())
    assert res.counters["interrupts"] < len(res.interrupts)  # the warmup's rows left out
    assert res.counters["switches"] < len(res.switches)


def test_rates_and_ratios_use_one_window():
    res = vsmsim.simulate({**SCENARIO, "design": "vm-per-vtl"})
    s = res.summary().set_index("metric")["value"]
    secs = res.measured_ns / 1e9
    for name in ("switches", "interrupts", "ioctls", "deferred_actions"):
        assert s[f"{name}_per_s"] == pytest.approx(res.counters[name] / secs)
    # The state ioctls of each switch, written out by hand from the QEMU proof of concept
    # (tests/handsums.py, not the design table): ioctl/switch is their mix, exactly.
    sw = res.switches[res.switches["start_ns"] >= int(res.scenario["warmup"])]
    per = SWITCH_IOCTLS["vm-per-vtl"]
    ioctls = sum(per[str(reason)] * int(k) for reason, k in sw["reason"].value_counts().items())
    assert res.counters["ioctls"] == ioctls
