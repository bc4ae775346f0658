"""compare --replications: intervals per design, paired differences, winners only beyond noise."""

import math
import subprocess
import sys

import pandas as pd
import pytest

import vsmsim
from vsmsim.stats import mean_interval, paired_difference, t_quantile
from vsmsim.sweep import replication_seed

# Poisson arrivals and exponential handlers: each replication draws different arrivals.
SC = {"name": "cmp", "seed": 3, "duration": "4ms", "warmup": "500us", "vm": {"vps": 2, "vtls": 2},
      "workload": [{"kind": "compute", "vtl": 0},
                   {"kind": "timer", "vtl": 1, "rate": 20000, "service": {"dist": "exp", "mean": "3us"}},
                   {"kind": "ipi", "vtl": 0, "rate": 20000, "service": "1us"}]}


def test_paired_difference_by_hand():
    n, mean, sd, lo, hi = paired_difference([3.0, 4.0, 5.0], [2.0, 2.0, 2.0])
    half = t_quantile(0.975, 2) * 1.0 / math.sqrt(3)  # 4.3027 * sd 1 / sqrt 3
    assert (n, mean, sd) == (3, 2.0, 1.0)
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))
    assert half == pytest.approx(2.48414, abs=1e-5)
    assert math.isnan(mean_interval([1.0])[3])  # one run: no interval


@pytest.fixture(scope="module")
def cmp():
    return vsmsim.compare(SC, ["vm-per-vtl", "planes-inkernel"], replications=4)


def test_replications_use_the_sweep_seeds_and_replication_0_is_the_plain_compare(cmp):
    seeds = sorted(set(cmp.runs["seed"]))
    assert seeds == sorted(replication_seed(3, r) for r in range(4))
    plain = vsmsim.compare(SC, ["vm-per-vtl", "planes-inkernel"])
    pd.testing.assert_frame_equal(cmp.summary(), plain.summary())
    assert set(plain.runs["replication"]) == {0} and cmp.replications == 4


def test_every_metric_gets_an_interval_and_replications_differ(cmp):
    iv = cmp.intervals().set_index(["metric", "kind", "vtl", "design"])
    row = iv.loc[("delivery_p99", "timer", 1, "vm-per-vtl")]
    assert row["n_runs"] == 4 and row["sd"] > 0 and row["ci_low"] < row["mean"] < row["ci_high"]
    raw = cmp.runs[(cmp.runs.metric == "delivery_p99") & (cmp.runs.design == "vm-per-vtl")
                   & (cmp.runs.kind == "timer")]["value"]
    assert row["mean"] == pytest.approx(raw.mean())
    assert {"vtl0_tax", "delivery_n", "exits_per_s"} <= set(iv.index.get_level_values(0))


def test_winner_only_when_the_paired_interval_excludes_zero(cmp):
    d = cmp.differences().set_index(["metric", "kind", "vtl"])
    p99 = d.loc[("delivery_p99", "timer", 1)]
    assert p99["reference"] == "vm-per-vtl" and p99["design"] == "planes-inkernel"
    assert p99["ci_high"] < 0 and p99["verdict"] == "lower, better"
    for _, r in d.iterrows():
        if r["verdict"].startswith(("lower", "higher")):
            assert r["ci_low"] > 0 or r["ci_high"] < 0
        elif r["verdict"] == "no clear difference":
            assert r["ci_low"] <= 0 <= r["ci_high"]


def test_a_design_against_its_copy_never_wins(tmp_path):
    f = tmp_path / "copy.toml"
    f.write_text(vsmsim.dump_design(vsmsim.load_design("planes")))
    c = vsmsim.compare(SC, ["planes", str(f)], replications=3, baseline=False)
    d = c.differences()
    assert len(d) > 10
    assert (d["verdict"] == "no clear difference").all()
    assert (d["mean_diff"] == 0).all()  # paired: the same arrivals, the same numbers
    iv = c.intervals()
    assert (iv[iv.metric == "delivery_p99"]["sd"] > 0).all()  # unpaired, they are noisy


def test_one_replication_calls_no_winner():
    c = vsmsim.compare(SC, ["vm-per-vtl", "planes-inkernel"], baseline=False)
    assert (c.differences()["verdict"] == "one replication: no interval").all()


def test_workers_give_the_same_numbers(cmp):
    c = vsmsim.compare(SC, ["vm-per-vtl", "planes-inkernel"], replications=4, workers=2)
    pd.testing.assert_frame_equal(c.runs, cmp.runs)


UNGUARDED = """
import vsmsim
sc = {"name": "u", "duration": "1ms", "vm": {"vps": 2},
      "workload": [{"kind": "compute"}, {"kind": "timer", "vtl": 1, "period": "100us"}]}
res = vsmsim.sweep(sc, grid={"vm.vps": [1, 2]}, replications=2, executor="process", workers=2)
print("FAILED", res.failed, "EXECUTOR", res.executor)
"""


def test_a_sweep_without_main_guard_falls_back_to_serial_with_a_warning(tmp_path):
    f = tmp_path / "noguard.py"
    f.write_text(UNGUARDED)
    r = subprocess.run([sys.executable, str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "FAILED 0 EXECUTOR serial" in r.stdout
    assert "RuntimeWarning" in r.stderr and "__name__" in r.stderr and "noguard.py:5" in r.stderr


def test_a_guarded_script_keeps_the_process_pool(tmp_path):
    body = UNGUARDED.replace("res = ", "def main():\n    res = ").replace('print("F', '    print("F')
    f = tmp_path / "guard.py"
    f.write_text(body + "\nif __name__ == '__main__':\n    main()\n")
    r = subprocess.run([sys.executable, str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "FAILED 0 EXECUTOR process" in r.stdout and "RuntimeWarning" not in r.stderr
