"""The command line through subprocess: exit codes, one-line messages, outputs present."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
Q8 = ROOT / "scenarios" / "q8_correctness.toml"


def vsmsim(*args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "vsmsim", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = 'name = "tiny"\nduration = "2ms"\n[vm]\nvps = 2\n[[workload]]\nkind = "compute"\n' \
       '[[workload]]\nkind = "timer"\nvtl = 1\nperiod = "500us"\n'


def test_run_writes_a_complete_result_and_trace(tmp_path):
    s = write(tmp_path, GOOD)
    r = vsmsim("run", s, "--trace", "--set", "vm.vps=3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "tiny" / "vm-per-vtl"
    names = {p.name for p in out.iterdir()}
    assert {"interrupts.parquet", "switches.parquet", "summary.csv", "manifest.json",
            "trace.json", "timeline.parquet"} <= names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["vm"]["vps"] == 3
    json.loads((out / "trace.json").read_text())
    assert "tiny [vm-per-vtl]" in r.stdout


def test_compare_writes_tables_and_plots(tmp_path):
    s = write(tmp_path, GOOD)
    r = vsmsim("compare", s, "--designs", "planes,vm-per-vtl", "--out", tmp_path / "c", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    c = tmp_path / "c"
    assert (c / "comparison.csv").is_file() and (c / "planes" / "manifest.json").is_file()
    assert (c / "residency.png").is_file() and (c / "latency_timer_vtl1.png").is_file()
    r2 = vsmsim("plot", c, cwd=tmp_path)
    assert r2.returncode == 0 and "residency.png" in r2.stdout


def test_validate_list_and_calibrate_without_kvm(tmp_path):
    r = vsmsim("validate", Q8, cwd=tmp_path)
    assert r.returncode == 0 and "ok" in r.stdout
    r = vsmsim("list", "--scenarios", ROOT / "scenarios", cwd=tmp_path)
    assert r.returncode == 0
    for name in ("apic-id-groups", "planes-inkernel", "default", "ideal", "q1_preemption.toml"):
        assert name in r.stdout
    env_cal = subprocess.run([sys.executable, "-m", "vsmsim", "calibrate", "--quick"],
                             cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "VSMSIM_KVM_DEVICE": str(tmp_path / "nokvm")})
    assert env_cal.returncode == 2 and len(env_cal.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,text,fragment", [
    (["run", "missing.toml"], None, "no such scenario file"),
    (["run", "{s}"], "name = \n", "TOML syntax error"),
    (["run", "{s}"], GOOD + "bogus = 1\n", "unknown key(s) 'bogus'"),
    (["run", "{s}"], GOOD.replace('"2ms"', '"2 fortnights"'), "duration"),
    (["run", "{s}"], GOOD.replace("vps = 2", "vps = -1"), "vm.vps"),
    (["run", "{s}", "--set", "design=warp"], GOOD, "design = 'warp'"),
    (["run", "{s}", "--set", "costs=cheap"], GOOD, "costs = 'cheap'"),
    (["run", "{s}", "--set", "vm.cores=4"], GOOD, "no key 'cores'"),
    (["run", "{s}", "--set", "vm.vps"], GOOD, "expected key=value"),
    (["compare", "{s}", "--designs", "planes,nope"], GOOD, "design = 'nope'"),
    (["run", "{s}", "--trace", "--trace-window", "5ms", "1ms"], GOOD, "END must be after START"),
    (["plot", "{d}"], None, "not a vsmsim result"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, text, fragment):
    s = write(tmp_path, text) if text is not None else tmp_path / "s.toml"
    (tmp_path / "empty").mkdir()
    argv = [a.format(s=s, d=tmp_path / "empty") for a in args]
    r = vsmsim(*argv, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists()


def test_sweep_then_plot_its_directory(tmp_path):
    s = write(tmp_path, GOOD)
    r = vsmsim("sweep", s, "--grid", "vm.vps=1,2", "--grid", "design=planes,vm-per-vtl",
               "--replications", "2", "--executor", "serial", "--out", tmp_path / "sw",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "8 runs" in r.stdout and "0 failed" in r.stdout
    r2 = vsmsim("plot", tmp_path / "sw", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert (tmp_path / "sw" / "delivery_p99-timer-vtl1.png").is_file()
