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
