"""Smoke test of the benchmark runner (bench/run.py --quick): it runs and its JSON is sane.

No timing assertions: the benchmark's targets are printed as PASS/MISS, never tested.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "bench" / "run.py"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    p = subprocess.run([sys.executable, str(RUNNER), "--quick", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text()), p.stdout


def test_report_has_machine_and_date(quick):
    data, stdout = quick
    assert data["quick"] is True
    assert data["date"] and data["machine"]["python"].startswith("3.")
    assert data["machine"]["nproc"] >= 1 and data["machine"]["cpu"]
    for needle in ("model actions per s", "SimPy event ids drawn per model action", "peak RSS",
                   "Markdown for bench/README.md"):
        assert needle in stdout
    assert "PASS" in stdout or "MISS" in stdout


def test_standard_figures_are_consistent(quick):
    data, _ = quick
    std, sc = data["standard"], data["scenario"]
    assert std["interrupts_delivered"] > 0 and std["switches"] > 0
    assert std["model_actions"] == std["interrupts_delivered"] + std["switches"]
    # every processed event was popped off the heap; fused deliveries draw ids they never use
    assert 0 < std["heap_pops"] <= std["simpy_events"]
    assert 500 < std["bytes_per_vp"] < 100_000
    assert std["interrupt_rows"] >= std["interrupts_delivered"]
    assert len(std["wall_s"]) == data["rounds"] and all(w > 0 for w in std["wall_s"])
    assert std["wall_s_min"] <= std["wall_s_median"]
    assert std["actions_per_s"] == pytest.approx(std["model_actions"] / std["wall_s_median"])
    assert std["wall_per_sim_s_median"] == pytest.approx(std["wall_s_median"] / sc["duration_s"])
    assert all(c > 0 for c in std["cpu_s"]) and std["cpu_per_sim_s_median"] > 0
    # The engine's own time is part of the whole simulate() call.
    assert 0 < std["engine_per_sim_s_median"] <= std["wall_per_sim_s_median"]
    # Every model action needs at least one SimPy event.
    assert std["simpy_events"] >= std["model_actions"] and std["events_per_action"] >= 1
    assert std["peak_rss_mb"] >= std["rss_before_mb"] > 0
    for k in ("bytes_per_interrupt_rss", "bytes_per_interrupt_traced",
              "bytes_per_interrupt_table"):
        assert std[k] > 0, k


def test_baselines_and_ratio(quick):
    data, _ = quick
    n = data["standard"]["model_actions"]
    for key in ("baseline", "baseline_processes"):
        b = data[key]
        assert b["pending"] == 1024 and b["events"] == n
        assert b["events_per_s"] == pytest.approx(n / b["wall_s_median"])
    assert data["ratio"] == pytest.approx(
        data["standard"]["actions_per_s"] / data["baseline"]["events_per_s"])


def test_reference_figures_are_consistent(quick):
    data, stdout = quick
    ref, std, sc = data["reference"], data["standard"], data["scenario"]
    rounds = data["rounds"]
    # The reference ran the workload row's size: VPs, duration, IPI rate, seed.
    assert (ref["vps"], ref["duration_ns"], ref["ipi_rate"]) == (
        sc["vps"], round(sc["duration_s"] * 1e9), sc["ipi_rate"])
    assert ref["model_actions"] == ref["delivered"] + ref["switches"] > 0
    assert ref["delivered"] == (ref["delivered_timer0"] + ref["delivered_timer1"]
                                + ref["delivered_ipi"])
    # Timers do not depend on costs: one VTL1 expiry per VP and ms, two switches each.
    assert ref["delivered_timer1"] == sc["vps"] * round(sc["duration_s"] * 1e3)
    assert ref["switches"] == 2 * ref["delivered_timer1"] == std["switches"]
    assert len(ref["wall_s"]) == len(ref["ratio"]) == len(ref["engine_ratio"]) == rounds
    assert all(w > 0 for w in ref["wall_s"]) and ref["wall_s_min"] <= ref["wall_s_median"]
    # Round i's ratio is that round's simulate wall over that round's reference wall.
    for w, e, r, x, y in zip(std["wall_s"], std["engine_s"], ref["wall_s"], ref["ratio"],
                             ref["engine_ratio"]):
        assert x == pytest.approx(w / r) and y == pytest.approx(e / r) and y <= x
    assert ref["ratio_min"] <= ref["ratio_median"] <= ref["ratio_max"]
    assert ref["ratio_median"] == pytest.approx(statistics.median(ref["ratio"]))
    assert ref["engine_ratio_median"] == pytest.approx(statistics.median(ref["engine_ratio"]))
    assert ref["engine_ratio_min"] <= ref["engine_ratio_median"] <= ref["engine_ratio_max"]
    target = [t for t in data["targets"] if "hand-written reference" in t["target"]]
    assert len(target) == 1 and target[0]["value"] == ref["ratio_median"]
    assert target[0]["pass"] == (ref["ratio_median"] <= 1.0)
    assert "simulate wall / reference wall" in stdout and "reference wall s" in stdout


def test_scaling_tables(quick):
    data, _ = quick
    vps, dur = data["scaling"]["vps"], data["scaling"]["duration"]
    assert [r["vps"] for r in vps] == sorted(r["vps"] for r in vps) and len(vps) >= 2
    assert [r["duration_s"] for r in dur] == sorted(r["duration_s"] for r in dur)
    for prev, row in zip(vps, vps[1:]):
        # Constant per-VP load: more VPs, more model actions.
        assert row["model_actions"] > prev["model_actions"]
        assert row["ipi_rate"] / row["vps"] == pytest.approx(prev["ipi_rate"] / prev["vps"])
        assert row["size_factor"] == pytest.approx(row["vps"] / prev["vps"])
    for row in vps + dur:
        assert row["wall_s"] > 0 and row["cpu_s"] > 0 and row["peak_rss_mb"] > 0
        assert row["actions_per_s"] == pytest.approx(row["model_actions"] / row["wall_s"])
    assert {t["target"] for t in data["targets"]} >= {"peak RSS MB"}
    assert all(isinstance(t["pass"], bool) for t in data["targets"])


def test_report_reprints_saved_json(quick, tmp_path):
    data, _ = quick
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    p = subprocess.run([sys.executable, str(RUNNER), "--report", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "| figure | value |" in p.stdout


@pytest.mark.parametrize("args, says", [
    (["--vps", "0"], "--vps 0: allowed 1 to 4096"),
    (["--vps", "8", "--spread", "9"], "--spread 9: allowed 1 to --vps (8)"),
    (["--long", "1ms"], "--long 1ms must be longer than --short 1ms"),
    (["--short", "5xs"], "--short '5xs'"),
    (["--drop", "4"], "--drop [4]: allowed 0 to 3"),
])
def test_instruction_counter_refuses_bad_options_in_one_line(args, says):
    """bench/instructions.py checks its options before it looks for valgrind."""
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "instructions.py"), *args],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], p.stderr
