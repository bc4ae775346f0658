"""The scenario schema: defaults, units, overrides, and a clear message for each bad value."""

import pytest

import vsmsim
from vsmsim.config import scenario_from_dict
from vsmsim.dists import parse_dist
from vsmsim.units import UnitError, parse_duration

BASE = {"vm": {"vps": 4, "vtls": 2}, "workload": [{"kind": "compute", "vtl": 0}]}


def bad(data, *fragments):
    with pytest.raises(vsmsim.ScenarioError) as e:
        scenario_from_dict(data)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


@pytest.mark.parametrize("text,ns", [("800ns", 800), ("2.5us", 2500), ("1ms", 1_000_000),
                                     ("1s", 1_000_000_000), (1500, 1500), ("0.5 us", 500)])
def test_durations(text, ns):
    assert parse_duration(text) == ns


def test_defaults_are_filled_in_and_resolved():
    sc = scenario_from_dict({"workload": [{"kind": "timer", "period": "1ms"}]})
    r = sc.resolved()
    assert r["vm"] == {"vps": 1, "vtls": 2, "apic_mode": "x2apic", "apicv": True, "ipiv": False,
                       "cross_vtl_ipi_up": False, "vendor": "intel", "deprecate_auto_eoi": False}
    assert r["guest"] == {"auto_eoi": False}
    assert r["workload"][0]["service"] == 1000 and r["workload"][0]["vector"] == 0xEC
    assert r["costs"] == {"profile": "default", "override": {}}
    assert vsmsim.Scenario.model_validate(r) == sc  # the resolved form validates back


def test_with_overrides_dotted_and_indexed():
    sc = scenario_from_dict({**BASE, "workload": [{"kind": "ipi", "rate": 100}]})
    sc2 = sc.with_overrides({"design": "planes", "vm.vps": 64, "workload[0].rate": 5,
                             "costs.override.uexit": "6us"})
    assert (sc2.design, sc2.vm.vps, sc2.workload[0].rate) == ("planes", 64, 5)
    assert sc2.costs.override == {"uexit": "6us"}
    assert sc.vm.vps == 4  # the original is untouched
    with pytest.raises(vsmsim.ScenarioError, match="no key 'vpz'.*allowed here: vps"):
        sc.with_overrides({"vm.vpz": 3})


def test_distributions():
    assert parse_dist("5us").fixed == 5000
    assert parse_dist({"dist": "exp", "mean": "2us"}).mean == 2000
    assert parse_dist({"dist": "uniform", "low": "1us", "high": "3us"}).mean == 2000
    assert parse_dist({"dist": "lognormal", "mean": "2us", "sigma": 0.5}).mean == pytest.approx(2000)
    assert parse_dist({"dist": "empirical", "samples": ["1us", 3000]}).mean == 2000
    with pytest.raises(UnitError, match="allowed: fixed, exp, lognormal, uniform, empirical"):
        parse_dist({"dist": "gamma", "mean": 3})


@pytest.mark.parametrize("data,fragments", [
    ({**BASE, "duration": "5xs"}, ["duration", "'5xs'", "ns, us, ms, s"]),
    ({**BASE, "duration": "-3ms"}, ["duration", "negative"]),
    ({**BASE, "warmup": "20ms", "duration": "10ms"}, ["warmup", "shorter than duration"]),
    ({**BASE, "vm": {"vps": 0}}, ["vm.vps", "greater than or equal to 1"]),
    ({**BASE, "vm": {"vtls": 17}}, ["vm.vtls", "less than or equal to 16"]),
    ({**BASE, "vm": {"vps": 2, "apic_mode": "x3apic"}}, ["vm.apic_mode", "'xapic-flat'"]),
    ({**BASE, "bogus": 1}, ["unknown key(s) 'bogus'", "allowed: name"]),
    ({**BASE, "vm": {"vps": 2, "cpus": 3}}, ["vm", "unknown key(s) 'cpus'", "allowed: vps"]),
    ({**BASE, "workload": [{"kind": "timer", "vtl": 3, "period": "1ms"}]},
     ["workload[0].vtl", "outside 0..1"]),
    ({**BASE, "workload": [{"kind": "timer", "vps": [9], "period": "1ms"}]},
     ["workload[0].vps", "VP 9", "0..3"]),
    ({**BASE, "workload": [{"kind": "timer", "period": "1ms", "vector": 0x0F}]},
     ["workload[0].vector", "0x10-0xFF"]),
    ({**BASE, "workload": [{"kind": "timer"}]}, ["workload[0]", "exactly one of period, rate, at"]),
    ({**BASE, "workload": [{"kind": "timer", "period": "1ms", "rate": 5}]},
     ["exactly one of period, rate, at", "period, rate"]),
    ({**BASE, "workload": [{"kind": "laser", "rate": 5}]}, ["workload[0]", "'laser'", "allowed: timer"]),
    ({**BASE, "workload": [{"kind": "ipi", "rate": -5}]}, ["workload[0].rate", "greater than 0"]),
    ({**BASE, "workload": [{"kind": "ipi", "rate": 5, "service": {"dist": "exp"}}]},
     ["workload[0].service", "needs key 'mean'"]),
    ({**BASE, "workload": [{"kind": "vtl-call", "vtl": 1, "rate": 5}]},
     ["workload[0].vtl", "no higher VTL"]),
    ({**BASE, "vm": {"vps": 16, "apic_mode": "xapic-flat"},
      "workload": [{"kind": "ipi", "rate": 5, "dest_mode": "logical"}]}, ["at most 8 VPs"]),
    ({**BASE, "context": [{"vtl": 1, "tpr": 16}]}, ["context[0].tpr", "less than or equal to 15"]),
    ({**BASE, "design": "nope"}, ["design = 'nope'", "apic-id-groups"]),
    ({**BASE, "costs": "cheap"}, ["costs = 'cheap'", "default, intel, amd, nested, ideal"]),
    ({**BASE, "costs": {"profile": "default", "override": {"exitt": 5}}},
     ["costs.override.exitt", "allowed: exit"]),
    ({**BASE, "costs": {"profile": "default", "override": {"exit": "3 parsecs"}}},
     ["costs.override.exit", "not a duration"]),
])
def test_each_bad_value_gets_its_message(data, fragments):
    bad(data, *fragments)


def test_load_scenario_files(tmp_path):
    t = tmp_path / "s.toml"
    t.write_text('name = "x"\nduration = "2ms"\n[vm]\nvps = 2\n[[workload]]\nkind = "compute"\n')
    assert vsmsim.load_scenario(t).vm.vps == 2
    t.write_text("name = \n")
    with pytest.raises(vsmsim.ScenarioError, match="TOML syntax error"):
        vsmsim.load_scenario(t)
    p = tmp_path / "s.py"
    p.write_text("SCENARIO = {'name': 'py', 'workload': [{'kind': 'compute'}]}\n")
    assert vsmsim.load_scenario(p).name == "py"
    with pytest.raises(vsmsim.ScenarioError, match="no such scenario file"):
        vsmsim.load_scenario(tmp_path / "missing.toml")
    (tmp_path / "s.yaml").write_text("")
    with pytest.raises(vsmsim.ScenarioError, match="allowed: .toml, .py"):
        vsmsim.load_scenario(tmp_path / "s.yaml")


def test_costs_table_form_and_override_apply():
    sc = scenario_from_dict({**BASE, "costs": {"profile": "ideal", "override": {"icr_exit": "2us",
                                                                          "exit": "2us"}},
                             "duration": "1ms",
                             "workload": [{"kind": "compute"},
                                          {"kind": "ipi", "at": ["10us"], "senders": [0],
                                           "dest": [1]}]})
    res = vsmsim.simulate(sc)
    row = res.interrupts.iloc[0]
    assert row.delivery_ns == 2000  # the ICR-write exit costs 2 us, posted delivery is free
    halted = vsmsim.simulate(sc.with_overrides({"workload": sc.to_input()["workload"][1:]}))
    # to a halted receiver the entry is an exit too: the ICR exit, then the entry
    assert halted.interrupts.iloc[0].delivery_ns == 4000
