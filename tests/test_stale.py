"""One naming scheme for plot files, and a rerun owns its directory (no stale files)."""

import pytest

from vsmsim.cli import main
from vsmsim.names import plot_stem

SC = ('name = "st"\nduration = "1ms"\n[vm]\nvps = 2\n[[workload]]\nkind = "compute"\n'
      '[[workload]]\nkind = "timer"\nvtl = 1\nperiod = "100us"\n')


@pytest.fixture
def scen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "s.toml"
    p.write_text(SC)
    return p


def test_plot_stem_is_shell_safe():
    assert plot_stem("delivery_p99[timer,vtl1]") == "delivery_p99-timer-vtl1"
    assert plot_stem("residency[vtl0]") == "residency-vtl0"


def test_sweep_plot_and_vsmsim_plot_write_one_naming_scheme(scen, capsys):
    assert main(["sweep", str(scen), "--grid", "vm.vps=1,2", "--executor", "serial",
                 "--out", "sw", "--plot", "delivery_p99[timer,vtl1]"]) == 0
    assert main(["plot", "sw"]) == 0
    files = sorted(p.name for p in (scen.parent / "sw").glob("*.png"))
    assert "delivery_p99-timer-vtl1.png" in files
    assert not [f for f in files if "[" in f or "," in f]


def test_a_rerun_of_another_grid_owns_the_sweep_directory(scen):
    out = scen.parent / "sw"
    assert main(["sweep", str(scen), "--grid", "vm.vps=1,2", "--executor", "serial",
                 "--out", "sw", "--plot", "delivery_p99[timer,vtl1]"]) == 0
    old_runs = {p.name for p in (out / "runs").glob("*.json")}
    assert len(old_runs) == 2
    assert main(["sweep", str(scen), "--grid", "vm.vps=3", "--executor", "serial",
                 "--out", "sw", "--plot", "residency[vtl1]"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["residency-vtl1.png"]
    new_runs = {p.name for p in (out / "runs").glob("*.json")}
    assert len(new_runs) == 1 and not new_runs & old_runs
    import pandas as pd
    assert sorted(pd.read_parquet(out / "runs.parquet")["vm.vps"]) == [3]


def test_the_same_sweep_again_still_resumes(scen, capsys):
    args = ["sweep", str(scen), "--grid", "vm.vps=1,2", "--executor", "serial", "--out", "sw"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "0 ran, 2 reused" in capsys.readouterr().out


def test_replotting_a_comparison_removes_plots_it_no_longer_makes(scen):
    assert main(["compare", str(scen), "--designs", "planes", "--out", "c"]) == 0
    stale = scen.parent / "c" / "latency_gone_vtl9.png"
    stale.write_bytes(b"old")
    assert main(["plot", "c"]) == 0
    assert not stale.exists() and (scen.parent / "c" / "residency.png").is_file()
