"""Tests for vsmsim.calibrate: real KVM where /dev/kvm works, format and errors everywhere.

No timing assertions beyond broad sanity bounds: the figures depend on the host.
"""

from __future__ import annotations

import argparse
import struct

import pytest
from conftest import kvm_mark

from vsmsim.calibrate import (
    DEFAULT_OUT,
    DEVICE_ENV,
    add_arguments,
    calibrate_data,
    guest,
    host,
    run,
)
from vsmsim.calibrate import profile as cal_profile
from vsmsim.calibrate.measure import EMULATION_THRESHOLD_NS, Figure, quantile
from vsmsim.costs import COST_NAMES, dump_profile, load_profile, profile_from_dict

# Broad sanity bounds (ns) for measured costs: any real host is far inside them.
BOUNDS = {"exit": (10, 1e6), "uexit": (10, 1e7), "wakeup": (10, 1e7), "ioctl": (10, 1e6),
          "kick": (10, 1e7)}
#: The per-path costs (first_run_after_migration may be ~0: clamped to 1 ns).
PATH_COSTS = ("kvm_run_roundtrip", "kvm_run", "ioctl_regs", "ioctl_sregs", "ioctl_fpu", "ioctl_xcrs",
              "ioctl_debugregs", "ioctl_msrs", "ioctl_lapic", "ioctl_events", "ioctl_mp_state",
              "ioctl_tlb_flush_inhibit", "handoff_futex", "handoff_eventfd", "kick_parked",
              "msr_entry")


needs_kvm = kvm_mark("calibration")


def _args(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def quick_calibration():
    """One quick calibration shared by the tests that need real KVM."""
    return calibrate_data(repeat=2, quick=True)


# --- real KVM ----------------------------------------------------------------------------

@needs_kvm
def test_quick_calibration_writes_a_loadable_profile(quick_calibration, tmp_path):
    data, _rows = quick_calibration
    path = cal_profile.write_atomic(tmp_path / "host.toml", cal_profile.to_toml(data))
    prof = load_profile(str(path))
    assert set(prof.costs) == set(COST_NAMES)
    assert data["costs"], "nothing was measured"
    for cost, spec in data["costs"].items():
        value = prof.mean(cost)
        lo, hi = BOUNDS.get(cost, (0.5, 1e7))
        assert lo < value < hi, f"{cost} = {value} ns outside sanity bounds ({spec})"
        assert prof.notes[cost].startswith(("measured", "derived"))
    for cost in COST_NAMES:
        if cost not in data["costs"]:
            assert prof.mean(cost) == load_profile("default").mean(cost)
            assert "default, not measured here" in prof.notes[cost]
    assert {"ioctl", "uexit", "wakeup"} <= set(data["costs"])
    assert set(PATH_COSTS) <= set(data["costs"])
    # one consistent subtraction: uexit is kvm_run minus exit, and both overheads are recorded
    assert prof.mean("uexit") + prof.mean("exit") == pytest.approx(prof.mean("kvm_run_roundtrip"), abs=1)
    assert prof.mean("kvm_run") == pytest.approx(prof.mean("uexit") / 2, abs=1)
    assert prof.host["python_call_ns"] > 0 and prof.host["clock_pair_ns"] > 0
    assert isinstance(prof.host["busy"], bool) and prof.host["load_before"]
    assert isinstance(prof.host["emulated"], bool)
    assert prof.host["kvm_module"]
    if not prof.host["emulated"]:
        assert "exit" in data["costs"]


@needs_kvm
def test_quick_calibration_reports_the_variants_it_does_not_price(quick_calibration):
    from vsmsim.calibrate.measure import cpu_pair
    data, rows = quick_calibration
    by_key = {r["figure"]: r for r in rows}
    # probed before the overheads, before each state kind, after KVM_RUN; the lowest kept
    assert by_key["host_probe"]["n"] >= 3
    assert 0 < data["host"]["probe_ns"] <= by_key["host_probe"]["p10"]
    if cpu_pair() is None:
        pytest.skip("one CPU: no cross-CPU variants")
    for key in ("handoff_futex_cross_busy", "handoff_eventfd_cross_busy",
                "kick_parked_cross_polled"):
        assert by_key[key]["cost"] == "" and by_key[key]["median"] > 0, key
    assert "SCHED_IDLE" in by_key["handoff_futex_cross_busy"]["what"]
    assert "halt-poll" in by_key["kick_parked_cross_polled"]["what"]
    assert "past halt polling" in by_key["kick_parked_cross"]["what"]


@needs_kvm
def test_quick_calibration_figures_are_positive(quick_calibration):
    _data, rows = quick_calibration
    by_key = {r["figure"]: r for r in rows}
    import math
    # Raw timings are durations, so positive whatever the load; guest_insn and guest_cpuid
    # are differences of two loops, which a busy machine can push below zero (no timing
    # assertion on those: only that they were measured and ordered).
    for key in ("ioctl_trivial", "ioctl_get_regs", "kvm_run_io", "guest_insn", "guest_cpuid",
                "vcpu_irq_halt", "vcpu_irq_spin", "wakeup_threads"):
        row = by_key[key]
        if key not in ("guest_insn", "guest_cpuid"):
            assert row["median"] > 0 and row["p10"] > 0, key
        assert all(math.isfinite(row[q]) for q in ("p10", "median", "p90")), key
        assert row["p10"] <= row["median"] <= row["p90"], key
        assert row["n"] == 2
    assert 10 < by_key["tsc_mhz"]["median"] < 20_000


@needs_kvm
def test_run_prints_table_and_writes_atomically(tmp_path, capsys):
    out = tmp_path / "sub" / "host.toml"
    assert run(_args("--quick", "--repeat", "1", "--out", str(out))) == 0
    text = capsys.readouterr().out
    assert "figure" in text and "kvm_run_io" in text and "uexit" in text
    assert load_profile(str(out)).host["repeat"] == 1
    assert [p.name for p in out.parent.iterdir()] == ["host.toml"]  # no temp file left


# --- everywhere --------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["missing", "/dev/null"])
def test_no_kvm_gives_one_line_and_exit_code_2(device, tmp_path, monkeypatch, capsys):
    path = str(tmp_path / "no-such-kvm") if device == "missing" else device
    monkeypatch.setenv(DEVICE_ENV, path)
    out = tmp_path / "host.toml"
    assert run(_args("--quick", "--out", str(out))) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("vsmsim calibrate: ") and "not available" in lines[0]
    assert path in lines[0] and "Traceback" not in captured.err
    assert not out.exists()


def test_arguments_defaults_and_validation():
    args = _args()
    assert (args.out, args.repeat, args.quick) == (DEFAULT_OUT, 5, False)
    assert _args("--repeat", "3", "--quick").repeat == 3
    with pytest.raises(SystemExit):
        _args("--repeat", "0")


def _figures(insn_ns: float) -> dict[str, Figure]:
    """Synthetic figures as the measurements would return them (ns per run)."""
    def fig(key, *vals, unit="ns"):
        return Figure(key, list(vals), f"synthetic {key}", unit=unit)
    return {
        "ioctl_trivial": fig("ioctl_trivial", 400, 420, 410),
        "ioctl_get_regs": fig("ioctl_get_regs", 600, 640, 620),
        "kvm_run_io": fig("kvm_run_io", 4000, 4100, 4200),
        "tsc_mhz": fig("tsc_mhz", 3000, 3000, 3000, unit="MHz"),
        "guest_insn": fig("guest_insn", insn_ns, insn_ns, insn_ns),
        "guest_cpuid": fig("guest_cpuid", 900, 950, 1000),
        "vcpu_irq_halt": fig("vcpu_irq_halt", 9000, 9500, 9900),
        "vcpu_irq_spin": fig("vcpu_irq_spin", 6000, 6100, 6200),
        "wakeup_threads": fig("wakeup_threads", 5000, 6000, 7000),
        "wakeup_same_cpu": fig("wakeup_same_cpu", 1000, 1100, 1200),
        "wakeup_cross_cpu": fig("wakeup_cross_cpu", 3000, 3100, 3200),
    }


FACTS = {"cpu_model": "Test CPU", "cpus": 4, "virt_extension": "vmx", "nested": False,
         "kvm_module": "kvm_intel", "kvm_modules": "kvm_intel, kvm", "kernel": "6.1",
         "machine": "x86_64", "python": "3.11"}


def test_native_figures_map_to_costs():
    data, rows = cal_profile.build(_figures(0.5), FACTS, {"repeat": 3, "quick": False})
    prof = cal_profile.to_profile(data)
    assert data["host"]["emulated"] is False
    assert prof.mean("exit") == 950
    assert prof.mean("ioctl") == 620
    assert prof.mean("uexit") == (4100 - 420) - 950          # round trip - ioctl - exit
    assert prof.mean("wakeup") == 3100 - 420                # cross-CPU, minus one ioctl
    assert "one CPU" in prof.notes["wakeup"]
    assert prof.mean("kick") == 6100 - 4100                 # running vCPU - round trip
    assert "median" in prof.notes["uexit"] and "n=3" in prof.notes["uexit"]
    assert {r["figure"] for r in rows} >= {"uexit_extra", "kick", "vcpu_wakeup"}


def test_path_figures_map_to_the_tables_meaning():
    """kick_parked and msi_halted are timed to KVM_RUN's return; the tables charge kvm_run
    after them, so the cost is the figure minus kvm_run. msr_entry is the per-entry slope,
    wake_cold_cross and vtl_state_switch (its stock-KVM stand-in) map as measured."""
    def fig(key, *vals):
        return Figure(key, list(vals), f"synthetic {key}")
    figs = _figures(500)
    figs.update({
        "clock_pair": fig("clock_pair", 50, 60), "python_call": fig("python_call", 400, 450),
        "kvm_run_roundtrip": fig("kvm_run_roundtrip", 8000, 8400),
        "kick_parked": fig("kick_parked", 20000, 25000),
        "kick_parked_cross": fig("kick_parked_cross", 21000, 22000),
        "msi_halted": fig("msi_halted", 40000, 50000),
        "msr_entry_get": fig("msr_entry_get", 40, 44), "msr_entry_set": fig("msr_entry_set", 60, 50),
        "wake_cold_cross": fig("wake_cold_cross", 12000, 9000),
        "vcpu_switch": fig("vcpu_switch", 300, 200),
    })
    data, _rows = cal_profile.build(figs, FACTS, {"repeat": 2, "quick": True})
    prof = cal_profile.to_profile(data)
    half = round((8000 - load_profile("default").mean("exit")) / 2)
    assert prof.mean("kvm_run") == half
    assert prof.mean("kick_parked") == 20000 - half
    assert prof.mean("kick_parked_cross") == 21000 - half
    assert prof.mean("msi_halted") == 40000 - half
    assert "minus kvm_run" in prof.notes["kick_parked"]
    assert prof.mean("msr_entry") == 47   # get and set paired per run: (50, 47), the lower
    assert prof.mean("wake_cold_cross") == 10500   # a difference: the median of runs
    assert prof.mean("vtl_state_switch") == 200
    assert "stand-in" in prof.notes["vtl_state_switch"]


def test_emulated_guest_keeps_exit_and_kick_defaults():
    data, _rows = cal_profile.build(_figures(500), FACTS, {"repeat": 3, "quick": True})
    prof = cal_profile.to_profile(data)
    default = load_profile("default")
    assert 500 > EMULATION_THRESHOLD_NS and data["host"]["emulated"] is True
    for cost in ("exit", "kick"):
        assert cost not in data["costs"]
        assert prof.mean(cost) == default.mean(cost)
        assert "emulated" in prof.notes[cost]
    # exit + uexit still adds up to the measured round trip net of the Python call
    assert prof.mean("uexit") + prof.mean("exit") == 4100 - 420


def test_profile_file_round_trips(tmp_path):
    data, _rows = cal_profile.build(_figures(0.5), FACTS, {"repeat": 3, "quick": False})
    text = cal_profile.to_toml(data)
    assert 'base = "default"' in text
    path = cal_profile.write_atomic(tmp_path / "p" / "host.toml", text)
    loaded = load_profile(str(path))
    built = cal_profile.to_profile(data)
    assert {k: loaded[k] for k in COST_NAMES} == {k: built[k] for k in COST_NAMES}
    assert loaded.host == data["host"] and loaded.notes == built.notes
    # and through vsmsim's own dump/load
    again = load_profile(str(cal_profile.write_atomic(tmp_path / "d.toml", dump_profile(loaded))))
    assert {k: again[k] for k in COST_NAMES} == {k: loaded[k] for k in COST_NAMES}
    assert profile_from_dict(loaded.to_dict()).costs == loaded.costs


def test_host_detection_from_a_fake_tree(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: Fake Xeon\ncpu MHz\t\t: 2100.000\n"
        "flags\t\t: fpu vmx hypervisor x2apic\n\nprocessor\t: 1\nmodel name\t: other\n")
    (tmp_path / "proc" / "modules").write_text("kvm_intel 1 0 - Live 0x0\nkvm 2 1 kvm_intel\n")
    params = tmp_path / "sys" / "module" / "kvm" / "parameters"
    params.mkdir(parents=True)
    (params / "halt_poll_ns").write_text("200000\n")
    facts = host.detect(tmp_path)
    assert facts["cpu_model"] == "Fake Xeon" and facts["cpu_mhz"] == 2100.0
    assert facts["virt_extension"] == "vmx" and facts["nested"] is True
    assert facts["kvm_module"] == "kvm_intel" and facts["halt_poll_ns"] == 200000
    assert "Fake Xeon" in host.describe(facts)
    bare = host.detect(tmp_path / "nothing")
    assert bare["kvm_module"] == "none" and bare["virt_extension"] == "none"


def test_quantile_and_figure_spread():
    assert quantile([1, 2, 3, 4, 5], 0.5) == 3
    assert quantile([0, 10], 0.1) == pytest.approx(1.0)
    assert quantile([7], 0.9) == 7
    fig = Figure("x", [1000, 2000, 3000], "x", per_run="each: 10 calls")
    assert fig.median == 2000 and fig.p10 == pytest.approx(1200) and fig.n == 3
    assert "n=3 runs (each: 10 calls)" in fig.spread()


def test_guest_timed_loop_jumps_back_to_its_start():
    for body in guest.OPS.values():
        prog = guest.timed_loop(body)
        assert prog[-2] == 0xEB and len(prog) + struct.unpack("b", prog[-1:])[0] == 0
        jnz = prog.index(b"\x66\x4e" + b"\x75", 10) + 2
        loop_start = jnz + 2 + struct.unpack("b", prog[jnz + 1:jnz + 2])[0]
        assert prog[loop_start:loop_start + len(body)] == body and loop_start == 10
