"""Regression tests for the input and result defects of issue 14, one (or more) per defect.

Each test reproduces the defect's input and asserts the expected behaviour: bad input is an
:class:`vsmsim.InputError` whose message is one line naming the field, the value and what
is allowed (exit 2 from the command line, nothing written); valid runs pass ``check()``.
Defect 11 (compare with duplicate design names) is fixed with the CLI restructure.
"""

import json
import math

import pandas as pd
import pytest

import vsmsim
from vsmsim import cli
from vsmsim.config import Scenario, load_scenario, scenario_from_dict
from vsmsim.costs import dump_profile, load_profile
from vsmsim.designs import dump_design, load_design
from vsmsim.dists import DIST_KINDS, parse_dist
from vsmsim.schema import MAX_RATE
from vsmsim.units import MAX_NS, parse_duration


def one_line_error(data, *fragments):
    """Validate *data*; it must fail with one line containing every fragment."""
    with pytest.raises(vsmsim.InputError) as e:
        scenario_from_dict(data)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def run_cli(tmp_path, monkeypatch, capsys, *argv):
    """``vsmsim *argv`` in-process in *tmp_path*: (exit code, stdout, stderr lines)."""
    monkeypatch.chdir(tmp_path)
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err.splitlines()


def timer(**kw):
    return {"kind": "timer", **kw}


# ------------------------------------------------------------------ 1: absurd rates
@pytest.mark.parametrize("rate", [float("inf"), 1e300, float("nan"), 1e-300, 2 * MAX_RATE])
def test_defect01_infinite_rate_rejected(rate):
    msg = one_line_error({"workload": [timer(rate=rate)]}, "workload[0].rate")
    assert "1e+09" in msg or "finite" in msg  # the largest rate allowed, or why not a rate


def test_defect01_rate_too_fine_for_the_clock_at_the_end_of_a_long_run():
    # 1e9/s has a mean gap of 1 ns: fine for 10 ms, lost in float rounding after 1e17 ns.
    scenario_from_dict({"duration": "10ms", "workload": [timer(rate=MAX_RATE)]})
    one_line_error({"duration": 10**17, "workload": [timer(rate=MAX_RATE)]},
                   "workload[0].rate", "resolution", "at most")


def test_defect01_cli_validate_rejects_infinite_rate(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text('[[workload]]\nkind = "timer"\nrate = inf\n')
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "validate", "s.toml")
    assert rc == 2 and len(err) == 1 and "workload[0].rate" in err[0] and out == ""


# ------------------------------------------------------------------ 2: time bounds, exact ints
@pytest.mark.parametrize("data,field", [
    ({"workload": [timer(period="1ms", service="1e10s")]}, "workload[0].service"),
    ({"duration": "1e10s", "record": {"timeline": True}}, "duration"),
    ({"duration": "1e12s"}, "duration"),
    ({"workload": [timer(at=["1e30ns"])]}, "workload[0].at"),
    ({"warmup": 10**19}, "warmup"),
])
def test_defect02_times_beyond_int64_rejected(data, field):
    one_line_error(data, field, "1e+18 ns")


def test_defect02_cli_run_with_huge_duration_exits_2_and_writes_nothing(tmp_path, monkeypatch,
                                                                         capsys):
    (tmp_path / "s.toml").write_text('duration = "1e12s"\n')
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "run", "s.toml")
    assert rc == 2 and len(err) == 1 and "duration" in err[0]
    assert not (tmp_path / "results").exists()


def test_defect02_integers_parsed_as_integers():
    assert parse_duration(MAX_NS) == MAX_NS
    assert parse_duration(MAX_NS - 1) == MAX_NS - 1  # not rounded through a float
    assert parse_duration("999999999999999999ns") == 999_999_999_999_999_999
    assert parse_duration("123456789.123456789s") == 123_456_789_123_456_789
    assert parse_duration("2.5ns") == 2 and parse_duration("3.5ns") == 4  # ties to even
    with pytest.raises(vsmsim.InputError) as e:
        scenario_from_dict({"duration": 10**30})
    assert "1000000000000000000000000000000 ns" not in str(e.value)
    assert "1000000000000000000000000000000" in str(e.value)  # the value as written
    sc = scenario_from_dict({"duration": MAX_NS - 1})
    assert sc.duration == MAX_NS - 1


# ------------------------------------------------------------------ 3: booleans are not numbers
@pytest.mark.parametrize("data,field", [
    ({"vm": {"vps": True}}, "vm.vps"),
    ({"vm": {"vtls": True}}, "vm.vtls"),
    ({"seed": True}, "seed"),
    ({"workload": [timer(period="1ms", vtl=True)]}, "workload[0].vtl"),
    ({"context": [{"vtl": True}]}, "context[0].vtl"),
    ({"context": [{"vtl": 0, "tpr": True}]}, "context[0].tpr"),
    ({"workload": [timer(rate=True)]}, "workload[0].rate"),
    ({"workload": [{"kind": "pv-ipi", "period": "1ms", "target_vtl": True}]},
     "workload[0].target_vtl"),
    ({"vm": {"vps": 2}, "workload": [{"kind": "ipi", "period": "1ms", "dest": [True]}]},
     "workload[0].dest"),
    ({"vm": {"vps": "2"}}, "vm.vps"),
    ({"vm": {"vps": 2.0}}, "vm.vps"),
    ({"workload": [timer(rate="5")]}, "workload[0].rate"),
])
def test_defect03_booleans_and_strings_are_not_numbers(data, field):
    one_line_error(data, field, "True" if True in _leaves(data) else "")


def _leaves(d):
    if isinstance(d, dict):
        return [x for v in d.values() for x in _leaves(v)]
    if isinstance(d, list):
        return [x for v in d for x in _leaves(v)]
    return [d]


def test_defect03_numbers_still_accepted():
    sc = scenario_from_dict({"seed": 3, "vm": {"vps": 2, "vtls": 3},
                             "workload": [timer(rate=1000), timer(rate=2.5e3, vtl=1)]})
    assert sc.vm.vps == 2 and sc.workload[0].rate == 1000.0 and isinstance(sc.seed, int)


# ------------------------------------------------------------------ 4: bad design / cost contents
DESIGN_BAD = [
    ("sources", 5, "sources = 5"),
    ("inferred", 7, "inferred = 7"),
    ("description", ["x"], "description"),
]


@pytest.mark.parametrize("key,value,fragment", DESIGN_BAD)
def test_defect04_bad_design_top_level_values(tmp_path, key, value, fragment):
    d = load_design("vm-per-vtl").to_dict()
    d[key] = value
    with pytest.raises(vsmsim.InputError) as e:
        load_design(d)
    assert fragment in str(e.value) and "must be" in str(e.value)


@pytest.mark.parametrize("step,fragment", [
    ({"cost": ["exit"], "payer": "sender"}, "cost = ['exit'] is not a cost"),
    ({"cost": "exit", "payer": "sender", "count": [["exits"]]}, "count [['exits']]"),
    ({"cost": "exit", "payer": ["sender"]}, "payer = ['sender']"),
])
def test_defect04_bad_design_step_values(tmp_path, step, fragment):
    text = dump_design(load_design("vm-per-vtl")).replace(
        '"send.pv-ipi" = [', '"send.pv-ipi" = [\n  ' + _toml(step) + ",", 1)
    f = tmp_path / "d.toml"
    f.write_text(text)
    with pytest.raises(vsmsim.InputError) as e:
        load_design(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and "'send.pv-ipi' step 0" in msg
    assert fragment.split(" [")[0] in msg and "allowed" in msg


def _toml(v):
    from vsmsim._toml import toml_value
    return toml_value(v)


@pytest.mark.parametrize("text,fragment", [
    ('base = "default"\nnotes = 5\n', "notes = 5"),
    ('base = "default"\nhost = 5\n', "host = 5"),
    ('base = "default"\nname = 5\n', "name = 5"),
    ('base = 5\n', "base = 5"),
    ('base = "default"\n[costs]\nexit = { 1 = 2 }\n', "costs.exit"),
])
def test_defect04_bad_cost_file_values(tmp_path, text, fragment):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(vsmsim.InputError) as e:
        load_profile(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and fragment in msg


def test_defect04_cli_bad_design_file_exits_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "d.toml").write_text(_design_with_sources(5))
    (tmp_path / "s.toml").write_text('design = "d.toml"\n')
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "validate", "s.toml")
    assert rc == 2 and len(err) == 1 and "sources = 5" in err[0]


def _design_with_sources(value):
    # Top-level keys must come before the first table in TOML.
    return f"sources = {value}\n" + dump_design(load_design("vm-per-vtl"))


# ------------------------------------------------------------------ 5: non-UTF-8 files
def test_defect05_non_utf8_scenario_design_and_cost_files(tmp_path):
    bad = b'name = "x"\n# caf\xff\n'
    for fname, loader in (("s.toml", load_scenario), ("d.toml", load_design),
                          ("c.toml", load_profile)):
        f = tmp_path / fname
        f.write_bytes(bad)
        with pytest.raises(vsmsim.InputError) as e:
            loader(f)
        msg = str(e.value)
        assert "\n" not in msg and str(f) in msg and "byte 16" in msg and "0xff" in msg


def test_defect05_cli_non_utf8_scenario_exits_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_bytes(b"\xff\n")
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "run", "s.toml")
    assert rc == 2 and len(err) == 1 and "byte 0" in err[0]
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------------ 6: bad base
def test_defect06_bad_base_names_file_and_key(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('base = "nope"\n')
    with pytest.raises(vsmsim.InputError) as e:
        load_profile(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}: base = 'nope': not a built-in profile (default, intel, amd, nested, ideal)")
    assert "costs = 'nope'" not in msg


# ------------------------------------------------------------------ 7: one-line messages
@pytest.mark.parametrize("dest", ["everyone", 5, "Random", {"a": 1}])
def test_defect07_bad_dest_is_one_line(dest):
    msg = one_line_error({"workload": [{"kind": "ipi", "period": "1ms", "dest": dest}]},
                         "workload[0].dest", repr(dest), "random, self, all, all-but-self")
    assert "literal" not in msg and "list[int]" not in msg


@pytest.mark.parametrize("window", [[], [1], [1, 2, 3], 5])
def test_defect07_bad_window_is_one_line(window):
    msg = one_line_error({"record": {"window": window}}, "record.window", "[start, end]")
    assert "Field required" not in msg


def test_defect07_vtl_call_from_missing_vtl_reported_once():
    msg = one_line_error({"vm": {"vtls": 2}, "workload": [{"kind": "vtl-call", "period": "1ms",
                                                           "vtl": 3}]}, "workload[0].vtl")
    assert msg.count("workload[0].vtl") == 1 and "outside 0..1" in msg


# ------------------------------------------------------------------ 8: exact round trips
LOGNORMAL_MEAN = {"duration": "5ms", "workload": [
    timer(period="50us", service={"dist": "lognormal", "mean": "2us", "sigma": 0.5})]}

DISTS = {
    "fixed": "1500ns",
    "exp": {"dist": "exp", "mean": "3us"},
    "lognormal": {"dist": "lognormal", "mean": "2us", "sigma": 0.5},
    "uniform": {"dist": "uniform", "low": "1us", "high": "3.5us"},
    "empirical": {"dist": "empirical", "samples": ["1us", 700, "2.25us"]},
}


def test_defect08_every_kind_is_tested():
    assert set(DISTS) == set(DIST_KINDS)


def _dist_scenario(spec):
    return scenario_from_dict({
        "duration": "2ms", "costs": {"profile": "default", "override": {"uexit": spec}},
        "context": [{"vtl": 1, "vina": {"vector": 0x31, "service": spec}}],
        "workload": [timer(period="100us", service=spec)]})


@pytest.mark.parametrize("kind", DIST_KINDS)
def test_defect08_round_trip_resolved(kind):
    sc = _dist_scenario(DISTS[kind])
    back = Scenario.model_validate(json.loads(json.dumps(sc.resolved())))
    assert back == sc
    assert back.workload[0].service == sc.workload[0].service == parse_dist(DISTS[kind])


@pytest.mark.parametrize("kind", DIST_KINDS)
def test_defect08_round_trip_with_overrides(kind):
    sc = _dist_scenario(DISTS[kind])
    assert sc.with_overrides({}) == sc
    assert sc.with_overrides({"seed": 5}).workload[0].service == sc.workload[0].service
    assert sc.with_overrides({"seed": 5}).context[0].vina.service == sc.context[0].vina.service


@pytest.mark.parametrize("kind", DIST_KINDS)
def test_defect08_round_trip_toml(kind, tmp_path):
    from vsmsim._toml import toml as tomllib
    from vsmsim._toml import toml_value
    d = parse_dist(DISTS[kind])
    assert parse_dist(tomllib.loads(f"v = {toml_value(d.to_spec())}")["v"]) == d
    # Through a cost file too.
    prof = load_profile("default").with_overrides({"exit": DISTS[kind]})
    f = tmp_path / "c.toml"
    f.write_text(dump_profile(prof))
    assert load_profile(f).costs == prof.costs


def test_defect08_lognormal_mean_keeps_its_mean_exactly():
    d = parse_dist({"dist": "lognormal", "mean": "2us", "sigma": 0.5})
    assert d.mean == 2000.0
    assert d.mu == pytest.approx(math.log(2000) - 0.125, abs=1e-15)


def test_defect08_simulate_equals_compare_and_sweep_for_lognormal_mean():
    a = vsmsim.simulate(LOGNORMAL_MEAN)
    b = vsmsim.compare(LOGNORMAL_MEAN, designs=["vm-per-vtl"], baseline=False)["vm-per-vtl"]
    pd.testing.assert_frame_equal(a.interrupts, b.interrupts)
    vsmsim.check(a)
    vina = {"duration": "5ms", "context": [{"vtl": 1, "vina": {
        "vector": 0x31, "service": {"dist": "lognormal", "mean": "2us", "sigma": 0.5}}}],
        "workload": [timer(period="50us", vtl=1)]}
    a = vsmsim.simulate(vina)
    b = vsmsim.compare(vina, designs=["vm-per-vtl"], baseline=False)["vm-per-vtl"]
    pd.testing.assert_frame_equal(a.interrupts, b.interrupts)


# ------------------------------------------------------------------ 9: sweep over seed
def test_defect09_sweep_over_seed():
    res = vsmsim.sweep({"duration": "1ms", "workload": [timer(period="100us")]},
                       grid={"seed": [1, 2]}, replications=2, executor="serial")
    runs = res.runs
    assert len(runs) == 4 and res.failed == 0
    assert list(runs.loc[runs.replication == 0, "seed"]) == [1, 2]
    assert list(res.points["seed"]) == [1, 2]
    assert list(res.points["n"]) == [2, 2]


def test_defect09_cli_sweep_over_seed(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text('duration = "1ms"\n')
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "sweep", "s.toml", "--grid",
                           "seed=1,2", "--executor", "serial", "--out", "sw")
    assert rc == 0, err
    assert (tmp_path / "sw" / "runs.parquet").is_file()
    assert len(pd.read_parquet(tmp_path / "sw" / "runs.parquet")) == 2


# ------------------------------------------------------------------ 10: zero-length handlers
def test_defect10_zero_length_handler_at_the_same_instant_is_no_overlap():
    spec = {"costs": "ideal", "duration": "1ms", "vm": {"vps": 1, "vtls": 2}, "workload": [
        timer(vtl=1, at=[0], service="10us"),
        timer(vtl=0, at=["1us"], vector=0x30, service="5us"),
        timer(vtl=0, at=["1us"], vector=0xF0, service=0)]}
    res = vsmsim.simulate(spec, debug=True)
    assert vsmsim.check(res) == []
    irq = res.interrupts
    assert (irq.service_ns == 0).any()


# ------------------------------------------------------------------ 12: categories of empty tables
def test_defect12_load_result_keeps_categories_of_empty_tables(tmp_path):
    res = vsmsim.simulate({"duration": "1ms", "record": {"timeline": True}})
    assert len(res.switches) == 0 and len(res.interrupts) == 0
    res.save(tmp_path / "r")
    back = vsmsim.load_result(tmp_path / "r")
    for table in ("interrupts", "switches", "timeline"):
        a, b = getattr(res, table), getattr(back, table)
        for col in a.columns:
            if isinstance(a[col].dtype, pd.CategoricalDtype):
                assert list(b[col].cat.categories) == list(a[col].cat.categories), (table, col)
    assert list(back.switches.reason.cat.categories) == ["call", "return", "interrupt",
                                                         "intercept"]
    pd.testing.assert_frame_equal(res.switches, back.switches, check_categorical=True)
    pd.testing.assert_frame_equal(res.interrupts, back.interrupts, check_categorical=True)


# ------------------------------------------------------------------ 13: --set =4
@pytest.mark.parametrize("pair", ["=4", " =4", "="])
def test_defect13_set_with_empty_key_exits_2(tmp_path, monkeypatch, capsys, pair):
    (tmp_path / "s.toml").write_text('duration = "1ms"\n')
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "run", "s.toml", "--set", pair)
    assert rc == 2 and len(err) == 1 and "--set" in err[0] and "key" in err[0]
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------------ 14: .py raising at import
def test_defect14_py_scenario_raising_at_import(tmp_path, monkeypatch, capsys):
    f = tmp_path / "s.py"
    f.write_text("import math\n\nx = math.sqrt(-1)\nSCENARIO = {}\n")
    with pytest.raises(vsmsim.InputError) as e:
        load_scenario(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and "ValueError: math domain error" in msg
    assert "line 3" in msg
    rc, out, err = run_cli(tmp_path, monkeypatch, capsys, "run", "s.py")
    assert rc == 2 and len(err) == 1 and "line 3" in err[0]


def test_defect14_py_scenario_raising_inside_a_helper(tmp_path):
    helper = tmp_path / "helper_mod_defect14.py"
    helper.write_text("def f():\n    raise KeyError('missing')\n")
    f = tmp_path / "s2.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
                 "import helper_mod_defect14\nhelper_mod_defect14.f()\n")
    with pytest.raises(vsmsim.InputError) as e:
        load_scenario(f)
    assert "KeyError" in str(e.value) and "line 4" in str(e.value)  # the user's line


def test_zero_cost_switch_ends_before_what_it_sets_off_dispatches():
    """Found by the recording-modes property test: under `ideal` costs a VTL call's switch
    costs nothing; a latent VTL1 timer (planes-rfc) taken at that switch landed at once and
    dispatched the VP before the switch had ended, so the VP 'entered' VTL1 a second time
    from VTL0 (check: "switch leaves VTL 0 but the VP was in VTL 1")."""
    spec = {"seed": 65, "duration": 200000, "design": "planes-rfc", "costs": "ideal",
            "vm": {"vps": 1, "vtls": 2},
            "workload": [
                {"kind": "timer", "vtl": 0, "service": 0, "period": 20000, "vector": 16},
                {"kind": "ipi", "vtl": 0, "service": 0, "period": 20000, "vector": 16},
                {"kind": "vtl-call", "vtl": 0, "service": 0, "period": 20000},
                {"kind": "timer", "vtl": 1, "service": 0, "rate": 1000.0, "vector": 16}]}
    res = vsmsim.simulate(spec)
    assert vsmsim.check(res, raise_on_error=False) == []
    sw = res.switches
    at = sw[sw["start_ns"] == 20000]
    # the call's entry, then the return: no second entry from VTL0
    assert list(zip(at["from_vtl"], at["to_vtl"])) == [(0, 1), (1, 0)]


def test_two_sends_at_one_instant_are_two_sends_for_the_arrivals_law():
    """Found by the property tests: an `at` list repeating a time makes two sends at that
    instant; the arrivals law counted distinct times, so one unsent send looked extra
    ("23 arrivals ... have no row but unsent_actions = 24")."""
    spec = {"duration": 345000, "design": "apic-id-groups", "vm": {"vps": 1, "vtls": 2},
            "workload": [
                {"kind": "pv-ipi", "vtl": 0, "service": 1, "period": 21000, "vector": 47,
                 "dest": [0]},
                {"kind": "ipi", "vtl": 0, "service": 0, "at": [200000, 200000], "vector": 16},
                {"kind": "intercept", "vtl": 0, "service": 0, "period": 20000}]}
    res = vsmsim.simulate(spec)
    assert vsmsim.check(res, raise_on_error=False) == []
    assert res.counters["unsent_actions"] > 0  # the case the law has to count right
