"""Property tests (Hypothesis) over the schema, the engine and the command line (issue 14).

- Random valid scenarios across the schema (every workload kind but programs, every
  design, costs fixed, jittered or zero, contexts with TPR and VINA, timelines and
  windows, warmups) run with the engine's debug assertions and ``check()``; the same
  scenario and seed give identical tables, and the fused engine equals the unfused one.
- A random single mutation of a valid scenario (a bad value in one field, or an unknown
  key) raises :class:`vsmsim.InputError` with one line naming that field.
- A sample of the command line with such a mutation (in the file or through ``--set``)
  exits 2 with one stderr line and writes nothing.

The example budget is fixed and the examples derandomized, so every run of the suite
tries the same cases.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vsmsim
from vsmsim import cli
from vsmsim._toml import toml_value
from vsmsim.config import scenario_from_dict
from vsmsim.designs import BUILTIN_DESIGNS
from vsmsim.engine import sim as engine_sim

COMMON = dict(derandomize=True, database=None, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.data_too_large])
#: Example budgets (the whole file runs in about a minute on two cores).
RUNS, MUTATIONS, CLI_SAMPLES = 400, 2500, 200

US = 1000


# ------------------------------------------------------------------ valid scenarios
def dists(draw, lo_us=0, hi_us=8):
    kind = draw(st.sampled_from(["fixed", "fixed", "exp", "lognormal-median", "lognormal-mean",
                                 "uniform", "empirical"]))
    a = draw(st.integers(max(lo_us, 0) * US, hi_us * US))
    if kind == "fixed":
        return draw(st.sampled_from([a, f"{a}ns", f"{a / 1000:g}us"]))
    a = max(a, 1)
    if kind == "exp":
        return {"dist": "exp", "mean": a}
    if kind.startswith("lognormal"):
        key = kind.split("-")[1]
        return {"dist": "lognormal", key: a, "sigma": draw(st.sampled_from([0, 0.3, 0.8]))}
    if kind == "uniform":
        return {"dist": "uniform", "low": a // 2, "high": a}
    return {"dist": "empirical", "samples": draw(st.lists(st.integers(0, a), min_size=1,
                                                           max_size=4))}


@st.composite
def valid_scenarios(draw):
    n = draw(st.integers(1, 4))
    nvtl = draw(st.integers(1, 3))
    dur = draw(st.integers(200, 1500)) * US
    vtl = st.integers(0, nvtl - 1)
    vps_sel = st.one_of(st.just("all"), st.lists(st.integers(0, n - 1), min_size=1, max_size=n,
                                                 unique=True),
                        st.just(f"0-{n - 1}"))

    def arrivals():
        how = draw(st.sampled_from(["period", "rate", "at"]))
        if how == "period":
            out = {"period": draw(st.integers(20, 400)) * US}
            if draw(st.booleans()):
                out["phase"] = draw(st.integers(0, 100)) * US
            return out
        if how == "rate":
            return {"rate": float(draw(st.integers(1000, 40000)))}
        return {"at": draw(st.lists(st.integers(0, dur - 1), min_size=1, max_size=4))}

    workloads = []
    if draw(st.booleans()):
        workloads.append({"kind": "compute", "vtl": draw(vtl), "vps": draw(vps_sel)})
    kinds = ["timer", "ipi", "pv-ipi", "external"] + (["vtl-call", "intercept"] if nvtl > 1
                                                      else [])
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=5)):
        v = draw(vtl) if kind not in ("vtl-call", "intercept") else draw(st.integers(0, nvtl - 2))
        w = {"kind": kind, "vtl": v, "service": dists(draw), **arrivals()}
        if kind in ("timer", "external", "vtl-call", "intercept"):
            w["vps"] = draw(vps_sel)
        if kind in ("timer", "external", "ipi", "pv-ipi"):
            w["vector"] = draw(st.integers(0x10, 0xFF))
        if kind in ("ipi", "pv-ipi"):
            w["senders"] = draw(vps_sel)
            w["dest"] = draw(st.one_of(
                st.sampled_from(["random", "self", "all", "all-but-self"]),
                st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)))
        if kind == "ipi":
            w["dest_mode"] = draw(st.sampled_from(["physical", "logical"]))
        if kind == "pv-ipi" and draw(st.booleans()):
            w["target_vtl"] = draw(st.integers(0, v))  # down or same: always allowed
        if draw(st.booleans()):
            w["name"] = f"w{len(workloads)}"
        workloads.append(w)
    contexts = []
    for c in draw(st.lists(vtl, unique=True, max_size=nvtl)):
        ctx = {"vtl": c, "tpr": draw(st.integers(0, 3))}
        if c > 0 and draw(st.booleans()):
            ctx["vina"] = {"vector": draw(st.integers(0x10, 0xFF)),
                           "auto_reset": draw(st.booleans()), "service": dists(draw, hi_us=3)}
        contexts.append(ctx)
    costs = draw(st.sampled_from(["default", "ideal", "jitter"]))
    if costs == "jitter":
        costs = {"profile": "default", "override": {
            k: {"dist": "lognormal", "median": m, "sigma": 0.4}
            for k, m in (("exit", "1us"), ("uexit", "4us"), ("wakeup", "5us"), ("kick", "1500ns"))
        }}
    record = {}
    if draw(st.booleans()):
        record["timeline"] = True
        if draw(st.booleans()):
            a = draw(st.integers(0, dur // 2))
            record["window"] = [a, draw(st.integers(a + 1, dur))]
    return {
        "seed": draw(st.integers(0, 2**32)), "duration": dur,
        "warmup": draw(st.sampled_from([0, 0, dur // 4])),
        "design": draw(st.sampled_from(BUILTIN_DESIGNS)), "costs": costs,
        "vm": {"vps": n, "vtls": nvtl,
               "apic_mode": draw(st.sampled_from(["xapic-flat", "xapic-cluster", "x2apic"])),
               "apicv": draw(st.booleans()), "ipiv": draw(st.booleans())},
        "context": contexts, "workload": workloads, "record": record,
    }


def tables(res):
    return (res.interrupts, res.switches, res.residency, res.timeline)


def assert_same(a, b):
    for x, y in zip(tables(a), tables(b)):
        if x is None or y is None:
            assert x is None and y is None
        else:
            pd.testing.assert_frame_equal(x, y)
    assert a.counters == b.counters


@settings(max_examples=RUNS, **COMMON)
@given(spec=valid_scenarios())
def test_random_valid_scenarios_keep_every_law(spec):
    sc = vsmsim.Scenario.model_validate(spec)
    assert vsmsim.Scenario.model_validate(sc.resolved()) == sc  # exact round trip
    res = vsmsim.simulate(sc, debug=True)
    assert vsmsim.check(res) == []
    assert_same(res, vsmsim.simulate(vsmsim.Scenario.model_validate(spec)))  # deterministic
    with engine_sim.fast_paths(all=False):  # every fast path against the generic ones
        plain = vsmsim.simulate(sc)
    assert_same(res, plain)


# ------------------------------------------------------------------ single mutations
#: Values that are wrong for every field of that type, whatever the rest of the scenario.
BAD = {
    "int": [True, "3", 2.5, -1, [1]],
    "duration": [True, "5 parsecs", -1, "1e30s", "inf", [1]],
    "positive": [0, "0ns"],
    "rate": [True, "fast", 0, -5.0, float("inf"), float("nan"), 1e300],
    "vector": [True, 5, 0x100, "0x30", 1.5],
    "dest": ["everyone", True, 5, [True], [-1], {}],
    "bool": ["maybe", [1], 5],
    "choice": ["bogus", 7, True],
    "dist": [{"dist": "bogus"}, {"dist": "exp"}, {"dist": "lognormal", "mean": 5, "sigma": 9},
             {"dist": "uniform", "low": 5, "high": 1}, {"dist": "empirical", "samples": []}],
    "vps": [True, "lots", [], [-1], 1.5],
    "design": ["no-such-design", 5],
    "table": [5, "x", [1]],
}
FIELD_TYPES = {
    "seed": "int", "duration": "positive", "warmup": "duration", "design": "design",
    "vm.vps": "int", "vm.vtls": "int", "vm.apic_mode": "choice", "vm.apicv": "bool",
    "vm.ipiv": "bool", "vtl": "int", "tpr": "int", "target_vtl": "int", "period": "positive",
    "phase": "duration", "rate": "rate", "at": "duration", "service": "dist", "vector": "vector",
    "dest": "dest", "dest_mode": "choice", "vps": "vps", "senders": "vps", "kind": "choice",
    "auto_reset": "bool", "timeline": "bool", "window": "duration", "vina": "table",
}


def mutation_sites(spec: dict):
    """(path, type, where) for every leaf: path into the dict, type in BAD, and the field
    as error messages name it (``workload[1].rate``)."""
    out = []
    for k in ("seed", "duration", "warmup", "design"):
        out.append(((k,), FIELD_TYPES[k], k))
    for k in spec["vm"]:
        out.append((("vm", k), FIELD_TYPES[f"vm.{k}"], f"vm.{k}"))
    for table in ("context", "workload"):
        for i, item in enumerate(spec[table]):
            for k, v in item.items():
                if k == "name" or (k == "vina" and v is None):
                    continue
                if k == "vina":
                    for vk in v:
                        out.append(((table, i, "vina", vk), FIELD_TYPES.get(vk, "table"),
                                    f"{table}[{i}].vina.{vk}"))
                    continue
                if k == "at":
                    out.append(((table, i, "at", 0), "duration", f"{table}[{i}].at"))
                    continue
                kind = FIELD_TYPES[k]
                if k == "vtl" and item.get("kind") in ("vtl-call", "intercept"):
                    kind = "int"
                out.append(((table, i, k), kind, f"{table}[{i}].{k}" if k != "kind" else
                            f"{table}[{i}]"))
    if spec["record"].get("timeline"):
        out.append((("record", "timeline"), "bool", "record.timeline"))
    if "window" in spec["record"]:
        out.append((("record", "window", 1), "duration", "record.window"))
    # Unknown keys, at each table.
    out.append((("bogus_key",), "unknown", "bogus_key"))
    out.append((("vm", "bogus_key"), "unknown", "bogus_key"))
    for i in range(len(spec["workload"])):
        out.append((("workload", i, "bogus_key"), "unknown", "bogus_key"))
    return out


def apply(spec, path, value):
    node = spec
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


@st.composite
def mutations(draw):
    spec = draw(valid_scenarios())
    path, kind, where = draw(st.sampled_from(mutation_sites(spec)))
    value = 1 if kind == "unknown" else draw(st.sampled_from(BAD[kind]))
    bad = copy.deepcopy(spec)
    apply(bad, path, value)
    return spec, bad, path, value, where


def assert_one_line_naming(msg: str, where: str):
    assert "\n" not in msg, msg
    assert where in msg, f"{where!r} not in {msg!r}"
    assert "Traceback" not in msg


@settings(max_examples=MUTATIONS, **COMMON)
@given(m=mutations())
def test_single_mutations_are_one_line_naming_the_field(m):
    spec, bad, path, value, where = m
    scenario_from_dict(copy.deepcopy(spec))  # the original is valid
    with pytest.raises(vsmsim.InputError) as e:
        scenario_from_dict(bad)
    assert_one_line_naming(str(e.value), where)


# ------------------------------------------------------------------ the command line
def to_toml(spec: dict) -> str:
    """The scenario as TOML: every key at the top level, tables inline."""
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in spec.items())


@settings(max_examples=CLI_SAMPLES, **COMMON)
@given(m=mutations(), command=st.sampled_from(["run", "validate", "compare", "sweep"]),
       via_set=st.booleans())
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(m, command, via_set, tmp_path_factory,
                                                                capsys):
    spec, bad, path, value, where = m
    tmp = tmp_path_factory.mktemp("cli")
    scalar = not isinstance(value, (dict, list)) and path[-1] != 0 and path[0] != "bogus_key"
    if via_set and scalar:
        (tmp / "s.toml").write_text(to_toml(spec))
        key = ".".join(str(p) for p in path)
        extra = ["--set", f"{key}={toml_value(value)}"]
    else:
        (tmp / "s.toml").write_text(to_toml(bad))
        extra = []
    out = tmp / "out"
    argv = [command, str(tmp / "s.toml"), *extra]
    if command != "validate":
        argv += ["--out", str(out)]
    if command == "sweep":
        argv += ["--executor", "serial", "--grid", "seed=1,2"]
    if command == "compare":
        argv += ["--designs", "planes", "--no-plots"]
    import os
    old = os.getcwd()
    os.chdir(tmp)
    try:
        rc = cli.main(argv)
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert rc == 2, (argv, captured.err)
    assert len(err) == 1 and err[0].startswith(f"vsmsim {command}: "), captured.err
    assert not out.exists() and not (tmp / "results").exists()
    assert captured.out == ""
