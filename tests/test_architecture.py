"""The house rules of issue 11: layers, one door to SimPy, immutable designs, compare that
keeps what finished, and a workload kind that is one module plus its engine hook."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import vsmsim
from vsmsim.cli import main as cli_main

PKG = Path(vsmsim.__file__).parent

#: The floors of the package, lowest first. A module may import only from its own floor or
#: below, never from above; the floors are the one-way data flow of the architecture.
FLOORS = [
    ("base", ["_version", "_toml", "errors", "units", "atomic", "names", "stats", "dists", "labels",
              "overrides", "userfile", "histogram"]),
    ("schema", ["schema", "engine.clock", "engine.work"]),
    ("designs and costs", ["costs", "designs"]),
    ("workloads", ["workloads", "host"]),
    ("config", ["config", "schema_doc"]),
    ("engine", ["record", "streaming", "engine"]),
    ("results", ["results", "check", "laws", "trace", "overload", "explain", "host.invariants"]),
    ("runs", ["api", "runner", "sweep", "plots", "calibrate", "prototype", "report"]),
    ("commands", ["cli", "__main__", "__init__"]),
]


def _floor(mod: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"module vsmsim.{mod} has no floor in tests/test_architecture.py"
    return best


def _modules():
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), f, is_pkg


def _imports(mod: str, path: Path, is_pkg: bool):
    """vsmsim-internal modules imported by *mod*, anywhere in the file (lazy ones too)."""
    tree = ast.parse(path.read_text())
    here = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if mod == "__init__":
        here = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("vsmsim"):
                target = node.module[len("vsmsim."):] if node.module != "vsmsim" else ""
            else:
                continue
            for a in node.names:
                full = f"{target}.{a.name}" if target else a.name
                yield full if (PKG / (full.replace(".", "/") + ".py")).exists() or \
                    (PKG / full.replace(".", "/")).is_dir() else (target or "__init__")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("vsmsim."):
                    yield a.name[len("vsmsim."):]


def _graph():
    graph = {}
    for mod, path, is_pkg in _modules():
        graph[mod] = {t for t in _imports(mod, path, is_pkg) if t and t != mod}
    return graph


def test_no_module_imports_from_a_higher_floor():
    bad = []
    for mod, targets in _graph().items():
        for t in targets:
            if _floor(t) > _floor(mod):
                bad.append(f"vsmsim.{mod} (floor {FLOORS[_floor(mod)][0]!r}) imports vsmsim.{t} "
                           f"(floor {FLOORS[_floor(t)][0]!r})")
    assert not bad, "\n".join(bad)


def test_no_import_loop_between_modules():
    graph = _graph()
    # Package __init__ files re-export their children; a child importing its package's
    # siblings through it is not a loop of modules.
    state, loops = {}, []

    def visit(m, stack):
        state[m] = 1
        for t in graph.get(m, ()):
            if t.startswith(m + "."):
                continue  # a package importing its own children
            if state.get(t) == 1:
                loops.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t in graph and state.get(t) is None:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if state.get(m) is None:
            visit(m, [m])
    assert not loops, "\n".join(loops)


def test_simpy_internals_only_in_the_clock():
    pattern = re.compile(r"_queue|_eid|_now\b|_cur_prio|_cur_eid")
    hits = [f"{f.relative_to(PKG)}:{i}" for f in PKG.rglob("*.py") if f.name != "clock.py"
            for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def test_builtin_designs_and_profiles_cannot_be_mutated():
    planes = vsmsim.load_design("planes")
    with pytest.raises(TypeError):
        planes.paths["switch.call"] = ()
    with pytest.raises(TypeError):
        planes.capabilities["posted"] = False
    with pytest.raises(AttributeError):
        planes.name = "other"
    assert vsmsim.load_design("planes").paths["switch.call"]  # unchanged for the next caller
    prof = vsmsim.load_profile("default")
    with pytest.raises(TypeError):
        prof.costs["exit"] = prof.costs["uexit"]
    assert prof.with_overrides({"exit": 5}).mean("exit") == 5 and prof.mean("exit") != 5


def test_a_design_object_and_a_variant_built_in_python_run():
    import pickle

    fast = vsmsim.load_design("planes-inkernel")
    mine = vsmsim.load_design("vm-per-vtl").variant(
        "vm-per-vtl-inkernel", paths={p: fast.paths[p] for p in fast.paths if p.startswith("switch.")})
    assert pickle.loads(pickle.dumps(mine)) == mine
    sc = vsmsim.Scenario.model_validate({"duration": "1ms", "design": mine, "workload": [
        {"kind": "vtl-call", "vps": [0], "at": ["100us"], "service": "10us"}]})
    assert sc.loaded_design is mine and sc.resolved()["design"] == "vm-per-vtl-inkernel"
    res = vsmsim.simulate(sc)
    ref = vsmsim.simulate(sc.with_overrides({"design": "planes-inkernel"}))
    rt = lambda r: int(r.interrupts.resumed_ns.iloc[0] - r.interrupts.raised_ns.iloc[0])  # noqa: E731
    assert res.design == "vm-per-vtl-inkernel" and rt(res) == rt(ref)
    with pytest.raises(vsmsim.InputError, match="switch.call"):
        vsmsim.load_design("planes").variant("bad", paths={"switch.call": [{"cost": "nope",
                                                                            "payer": "vp"}]})


def test_a_design_file_is_parsed_once_while_unchanged(tmp_path, monkeypatch):
    f = tmp_path / "mine.toml"
    f.write_text(vsmsim.dump_design(vsmsim.load_design("planes")).replace(
        'name = "planes"', 'name = "mine"'))
    first = vsmsim.load_design(str(f))
    import vsmsim.designs as designs
    monkeypatch.setattr(designs, "design_from_dict", lambda *a, **k: pytest.fail("parsed again"))
    assert vsmsim.load_design(str(f)) is first
    sc = vsmsim.Scenario.model_validate({"duration": "1ms", "design": str(f)})
    assert sc.with_overrides({"vm.vps": 2}).loaded_design is first


def _failing_for(monkeypatch, bad_design: str):
    import vsmsim.runner as runner
    real = runner.simulate

    def simulate(sc, **kw):
        if sc.loaded_design.name == bad_design:
            raise RuntimeError(f"engine fault under {bad_design}")
        return real(sc, **kw)

    monkeypatch.setattr(runner, "simulate", simulate)


def test_compare_keeps_what_finished_when_a_design_fails(monkeypatch, tmp_path):
    _failing_for(monkeypatch, "planes")
    sc = {"duration": "1ms", "workload": [{"kind": "timer", "vtl": 1, "period": "100us"}]}
    cmp = vsmsim.compare(sc, designs=["vm-per-vtl", "planes", "apic-id-groups"])
    assert cmp.designs == ["vm-per-vtl", "apic-id-groups"]
    assert "RuntimeError: engine fault under planes" in cmp.failures["planes"]
    cmp.save(tmp_path / "cmp")
    manifest = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert manifest["failed"] == {"planes": "RuntimeError: engine fault under planes"}
    assert "Traceback" in manifest["tracebacks"]["planes"]
    assert (tmp_path / "cmp" / "vm-per-vtl" / "manifest.json").is_file()


def test_cli_compare_exits_1_and_names_the_failed_design(monkeypatch, tmp_path, capsys):
    _failing_for(monkeypatch, "planes")
    f = tmp_path / "s.toml"
    f.write_text('duration = "1ms"\n[[workload]]\nkind = "timer"\nvtl = 1\nperiod = "100us"\n')
    code = cli_main(["compare", str(f), "--designs", "vm-per-vtl,planes", "--no-plots",
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "design 'planes' failed: RuntimeError: engine fault under planes" in err
    assert (tmp_path / "out" / "vm-per-vtl" / "manifest.json").is_file()


def test_compare_tells_apart_two_designs_with_one_name(tmp_path):
    f = tmp_path / "my-copy.toml"
    f.write_text(vsmsim.dump_design(vsmsim.load_design("vm-per-vtl")))
    cmp = vsmsim.compare({"duration": "1ms"}, designs=[str(f), "vm-per-vtl"], baseline=False)
    assert cmp.designs == ["my-copy", "vm-per-vtl"]
    with pytest.raises(vsmsim.InputError, match="both named 'vm-per-vtl'"):
        vsmsim.compare({"duration": "1ms"}, designs=["vm-per-vtl", "vm-per-vtl"])


def test_a_new_workload_kind_is_one_module_plus_its_engine_hook():
    import example_kind

    remove = example_kind.install()
    try:
        sc = vsmsim.Scenario.model_validate({
            "duration": "1ms", "costs": "ideal", "vm": {"vps": 2},
            "workload": [{"kind": "doorbell", "vps": [1], "at": ["100us"], "burst": 3,
                          "service": "2us"}]})
        res = vsmsim.simulate(sc)
        rows = res.interrupts
        assert list(rows.kind.astype(str)) == ["doorbell"] * 3
        assert list(rows.vector) == [0x60, 0x61, 0x62]
        # ideal costs on a halted VP: 0x60 starts at once, the others follow back to back.
        assert sorted(rows.start_ns) == [100_000, 102_000, 104_000]
        assert rows.start_ns[rows.vector == 0x60].item() == 100_000
        s = res.summary()
        assert s[(s.metric == "count") & (s.kind == "doorbell")].value.item() == 3
        vsmsim.check(res)
        with pytest.raises(vsmsim.InputError, match=r"workload\[0\].burst: 16 vectors"):
            vsmsim.Scenario.model_validate({"workload": [
                {"kind": "doorbell", "at": [0], "vector": 0xF8, "burst": 16}]})
    finally:
        remove()
    with pytest.raises(vsmsim.InputError, match="'doorbell' is not a workload kind"):
        vsmsim.Scenario.model_validate({"workload": [{"kind": "doorbell", "at": [0]}]})
