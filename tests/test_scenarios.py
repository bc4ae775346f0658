"""Every shipped scenario validates and runs (at a short duration), and q8's invariants hold."""

from pathlib import Path

import pytest

import vsmsim

SCENARIOS = sorted(Path(__file__).resolve().parent.parent.joinpath("scenarios").glob("q*.*"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenario_runs(path):
    sc = vsmsim.load_scenario(path)
    short = sc.with_overrides({"duration": "3ms", "warmup": "0ns"}) if not any(
        getattr(w, "at", None) for w in sc.workload) else sc
    res = vsmsim.simulate(short, debug=True)
    vsmsim.check(res)
    assert len(res.interrupts) > 0
    assert res.summary()["metric"].str.startswith("delivery_p50").any()


@pytest.mark.parametrize("design", vsmsim.designs.BUILTIN_DESIGNS)
def test_correctness_scenario_holds_under_every_design(design):
    sc = vsmsim.load_scenario(SCENARIOS[0].parent / "q8_correctness.toml")
    res = vsmsim.simulate(sc.with_overrides({"design": design, "duration": "10ms"}), debug=True)
    vsmsim.check(res)
    masked = res.interrupts[res.interrupts.vector == 0x25]
    assert len(masked) == 4 * 2 and masked.start_ns.isna().all()  # TPR 2 masks class 2
    vina = res.interrupts[res.interrupts.kind == "vina"]
    assert len(vina) > 0 and (vina.vtl == 1).all()


PY = [p for p in SCENARIOS if p.suffix == ".py"]
TOML = [p for p in SCENARIOS if p.suffix == ".toml"]


@pytest.mark.parametrize("path", PY, ids=lambda p: p.name)
def test_python_scenario_prints_its_answer_and_saves_plots(path, tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"scen_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--quick", "--replications", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith(mod.__doc__.strip().splitlines()[0])  # the question
    assert "It depends on:" in out
    assert "±" in out and "95 % interval over 2 replications" in out  # intervals
    assert "n=" in out  # the sample size behind the percentiles
    assert "µs" in out or "%" in out  # units
    assert list(tmp_path.rglob("*.png"))  # the plots are saved


@pytest.mark.parametrize("path", TOML, ids=lambda p: p.name)
def test_toml_scenario_names_its_question_and_a_headline_that_exists(path):
    from vsmsim.report import headline_rows

    sc = vsmsim.load_scenario(path)
    assert sc.question.endswith("?") and sc.headline
    res = vsmsim.simulate(sc.with_overrides({"duration": "3ms", "warmup": "0ns"}))
    values = res.summary().set_index(["metric", "kind", "vtl", "unit"])[["value"]]
    for h in sc.headline:
        if h == "vtl0_tax":
            continue  # needs the VSM-off baseline that compare runs
        assert headline_rows(values, [h]), f"{path.name}: headline {h!r} matches no summary row"
