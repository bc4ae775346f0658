"""Shares stay in [0, 1]; an overloaded VM says so in its manifest (and on the CLI)."""

import json

import pytest

import vsmsim
from vsmsim.overload import overload

OVER = {"name": "over", "duration": "5ms", "warmup": "1ms", "design": "vm-per-vtl",
        "vm": {"vps": 2, "vtls": 2},
        "workload": [{"kind": "compute", "vtl": 0},
                     {"kind": "timer", "vtl": 1, "period": "500ns", "service": "1us"}]}


def test_a_500ns_timer_with_a_1us_handler_is_reported_as_200_percent_offered(tmp_path):
    res = vsmsim.simulate(OVER)
    ov = res.meta["overload"]
    assert ov["overloaded"]
    # 1 µs of handler every 500 ns = 2.0 of a VP, on each VP (hand computation).
    assert ov["offered"] == {"vp0": {"vtl1": pytest.approx(2.0)}, "vp1": {"vtl1": pytest.approx(2.0)}}
    assert ov["undelivered"] > 0.9 * ov["raised"]
    assert "VP0 is offered 200%" in ov["message"]
    res.save(tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["overload"]["overloaded"] is True


@pytest.mark.parametrize("scenario", [OVER, {**OVER, "workload": [
    {"kind": "compute", "vtl": 0}, {"kind": "timer", "vtl": 1, "period": "100us",
                                    "service": "10us"}]}])
def test_every_share_is_between_0_and_1(scenario):
    s = vsmsim.simulate(scenario).summary()
    shares = s[(s["unit"] == "share") & (s["metric"] != "vtl0_tax")]
    assert len(shares) > 5
    assert ((shares["value"] >= 0) & (shares["value"] <= 1)).all(), shares


def test_a_light_load_is_not_overloaded():
    res = vsmsim.simulate({**OVER, "workload": [
        {"kind": "compute", "vtl": 0},
        {"kind": "timer", "vtl": 1, "period": "100us", "service": "10us"}]})
    ov = overload(res)
    assert not ov["overloaded"] and ov["message"] == ""
    assert ov["offered"]["vp0"]["vtl1"] == pytest.approx(0.1, rel=0.05)  # 10 µs per 100 µs
