"""The hand-written callback reference of issue 15 (bench/reference.py) is a correct model.

Hand-computed cases on one or two VPs, the IPIs' accounting, and agreement with
``vsmsim.simulate`` under the ``ideal`` (zero) costs: exact when the reference replays
vsmsim's own IPI arrivals, statistical when it draws its own. No timing assertions.
"""

import importlib.util
import math
from pathlib import Path

import pytest

import vsmsim

ROOT = Path(__file__).resolve().parent.parent
# Loaded by path: putting bench/ on sys.path would let bench/profile.py shadow the
# standard library's profile module.
_spec = importlib.util.spec_from_file_location("bench_reference", ROOT / "bench" / "reference.py")
ref_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref_mod)
reference = ref_mod.reference

MS = 1_000_000
US = 1_000


def test_one_vp_without_ipis_for_10_ms():
    r = reference(vps=1, duration_ns=10 * MS, ipi_rate=0)
    # Expiries at 0, 250 us, ..., 9.75 ms (VTL0) and 0, 1, ..., 9 ms (VTL1); 10 ms is the end.
    assert r["delivered_timer0"] == 40 and r["delivered_timer1"] == 10
    assert r["switches"] == 20 and r["delivered_ipi"] == 0 and r["coalesced"] == 0
    assert r["delivered"] == 50 and r["model_actions"] == 70
    r = reference(vps=3, duration_ns=10 * MS, ipi_rate=0)
    assert (r["delivered_timer0"], r["delivered_timer1"], r["switches"]) == (120, 30, 60)


def test_vtl0_timer_at_0_waits_for_vtl1_handler():
    # Both expire at t=0; VTL1 goes first and runs 20 us, VTL0's expiry pends meanwhile.
    before = reference(vps=1, duration_ns=20 * US, ipi_rate=0)
    after = reference(vps=1, duration_ns=20 * US + 1, ipi_rate=0)
    assert (before["delivered_timer1"], before["delivered_timer0"]) == (1, 0)
    assert before["switches"] == 1  # the entry; the return is at 20 us, the end
    assert (after["delivered_timer0"], after["switches"]) == (1, 2)


def test_vtl1_suspends_a_vtl0_handler_which_resumes_with_its_remaining_time():
    # One IPI to VP 1 at 999.5 us: its 1 us handler is preempted at 1 ms with 500 ns left;
    # VTL1 runs to 1.020 ms; the IPI handler resumes and ends at 1.0205 ms; only then does
    # VTL0's timer expiry of 1 ms (pended) start.
    ipis = [(999_500, 0, 1)]
    at = lambda t: reference(vps=2, duration_ns=t, ipis=ipis)  # noqa: E731
    # Before: 0, 250, 500, 750 us on both VPs; VP 0's 1 ms expiry starts at 1.020 ms.
    assert at(1_020_000)["delivered_timer0"] == 2 * 4
    assert at(1_020_001)["delivered_timer0"] == 2 * 4 + 1
    # VP 1's only after the IPI's remaining 500 ns (not at 1.020 ms, nor 1.021 ms).
    assert at(1_020_500)["delivered_timer0"] == 2 * 4 + 1
    assert at(1_020_501)["delivered_timer0"] == 2 * 4 + 2
    r = at(2 * MS)
    assert r["delivered_ipi"] == 1 and r["switches"] == 2 * 2 * 2 and r["coalesced"] == 0


def test_ipis_pend_while_a_handler_runs_and_a_repeat_coalesces():
    # VP 1 idle at 300 us: the first IPI starts at once (to 301 us); the second pends; the
    # third finds its vector pending and merges into it. The second starts at 301 us.
    ipis = [(300_000, 0, 1), (300_200, 0, 1), (300_400, 0, 1)]
    r = reference(vps=2, duration_ns=MS, ipis=ipis)
    assert (r["ipis"], r["ipis_sent"], r["delivered_ipi"], r["coalesced_ipi"]) == (3, 3, 2, 1)
    assert reference(vps=2, duration_ns=301_000, ipis=ipis)["delivered_ipi"] == 1
    assert reference(vps=2, duration_ns=301_001, ipis=ipis)["delivered_ipi"] == 2
    assert reference(vps=2, duration_ns=300_500, ipis=ipis)["ipis_pending"] == 1


def test_a_sender_in_vtl1_sends_when_its_vtl0_is_free_again():
    # One VP sending to itself (the only VP) at 1.010 ms, in VTL1: VTL1 returns at 1.020 ms,
    # the pended VTL0 timer runs to 1.022 ms, then the IPI is sent and starts at once.
    ipis = [(1_010_000, 0, 0)]
    mid = reference(vps=1, duration_ns=1_015_000, ipis=ipis)
    assert (mid["ipis"], mid["ipis_sent"], mid["ipis_unsent"], mid["ipis_deferred"]) == (1, 0, 1, 1)
    assert reference(vps=1, duration_ns=1_022_000, ipis=ipis)["delivered_ipi"] == 0
    done = reference(vps=1, duration_ns=1_022_001, ipis=ipis)
    assert (done["delivered_ipi"], done["ipis_sent"], done["ipis_unsent"]) == (1, 1, 0)


@pytest.mark.parametrize("vps,rate,seed", [(64, 50_000, 7), (4, 500_000, 1), (2, 2_000_000, 3),
                                           (1, 300_000, 5)])
def test_every_ipi_is_delivered_coalesced_or_still_waiting(vps, rate, seed):
    r = reference(vps=vps, duration_ns=20 * MS, ipi_rate=rate, seed=seed)
    assert r["ipis"] == r["ipis_sent"] + r["ipis_unsent"]
    assert r["ipis_sent"] == r["delivered_ipi"] + r["coalesced_ipi"] + r["ipis_pending"]
    assert r["delivered"] == r["delivered_timer0"] + r["delivered_timer1"] + r["delivered_ipi"]
    assert r["delivered_timer1"] == vps * 20 and r["switches"] == 2 * vps * 20
    if rate * 20e-3 / vps >= 1_000:  # heavy load: repeats do coalesce
        assert r["coalesced_ipi"] > 0
    # Poisson: within 4 standard deviations of rate x duration.
    assert abs(r["ipis"] - rate * 0.02) <= 4 * math.sqrt(rate * 0.02)


def test_deterministic_per_seed():
    a = reference(vps=8, duration_ns=10 * MS, ipi_rate=100_000, seed=11)
    assert reference(vps=8, duration_ns=10 * MS, ipi_rate=100_000, seed=11) == a
    assert reference(vps=8, duration_ns=10 * MS, ipi_rate=100_000, seed=12)["ipis"] != a["ipis"]


def test_bad_input_names_the_value():
    for kw in ({"vps": 0}, {"duration_ns": 0}, {"ipi_rate": -1}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))}={next(iter(kw.values()))}"):
            reference(**kw)


def _engine(vps: int, rate: float, duration_ns: int):
    sc = vsmsim.load_scenario(ROOT / "bench" / "standard.toml").with_overrides(
        {"duration": duration_ns, "costs": "ideal", "vm.vps": vps, "workload.3.rate": rate})
    res = vsmsim.simulate(sc)
    i = res.interrupts
    started = i[i.start_ns.notna()]
    timer = started[started.kind == "timer"]
    ipi = i[i.kind == "ipi"]
    return {"delivered_timer0": int((timer.vtl == 0).sum()),
            "delivered_timer1": int((timer.vtl == 1).sum()),
            "delivered_ipi": int((started.kind == "ipi").sum()),
            "switches": len(res.switches), "coalesced_ipi": int(ipi.coalesced.sum()),
            "coalesced": int(i.coalesced.sum()),
            "ipis_pending": int((ipi.start_ns.isna() & ~ipi.coalesced).sum()),
            # Rows of IPIs exist once sent; a send that waited was raised after it arrived.
            "ipis_deferred": int((ipi.raised_ns > ipi.arrival_ns).sum()),
            "arrivals": sorted(zip(ipi.arrival_ns.tolist(), ipi.src_vp.tolist(),
                                   ipi.vp.tolist()))}


def test_standard_workload_for_20_ms_agrees_with_simulate_under_ideal_costs():
    eng = _engine(64, 50_000, 20 * MS)
    r = reference(vps=64, duration_ns=20 * MS, ipi_rate=50_000, seed=7)
    for k in ("delivered_timer0", "delivered_timer1", "switches"):
        assert r[k] == eng[k], k
    assert (r["delivered_timer0"], r["delivered_timer1"], r["switches"]) == (64 * 80, 64 * 20,
                                                                             64 * 40)
    # IPIs come from different random streams (random.Random vs NumPy): both must realise
    # 50,000/s x 20 ms = 1,000 arrivals; a Poisson count's standard deviation is sqrt(1,000)
    # (3.2 %), so each lies within 3 of them and the two differ by a few percent.
    for n in (r["delivered_ipi"], eng["delivered_ipi"]):
        assert abs(n - 1_000) <= 3 * math.sqrt(1_000)


@pytest.mark.parametrize("vps,rate", [(64, 50_000), (4, 500_000), (2, 2_000_000), (1, 300_000),
                                      (8, 1_000_000)])
def test_replaying_simulates_ipis_gives_its_counts_exactly(vps, rate):
    # The same arrivals (time, sender, destination) through both models: the rules agree,
    # including coalescing and sends that wait for their sender's VTL0.
    eng = _engine(vps, rate, 20 * MS)
    r = reference(vps=vps, duration_ns=20 * MS, ipis=eng.pop("arrivals"))
    assert {k: r[k] for k in eng} == eng
    if rate / vps >= 250_000:
        assert eng["coalesced_ipi"] > 0
    assert eng["ipis_deferred"] > 0


def test_floor_writes_exactly_the_rows_of_a_full_recording(capsys):
    spec = importlib.util.spec_from_file_location("bench_floor", ROOT / "bench" / "floor.py")
    floor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floor)
    from vsmsim.record import F_END, F_START, NF, NSW, SW_END, SW_START
    rec = floor.recorder_rows(1000, 300)
    assert len(rec.rows) == 1000 * NF and len(rec.sw) == 300 * NSW
    starts, ends = rec.rows[F_START::NF], rec.rows[F_END::NF]
    assert all(e - s == 2000 for s, e in zip(starts, ends))     # start and end both set
    assert list(rec.sw[SW_START::NSW]) == list(rec.sw[SW_END::NSW])
    assert len(floor.tuple_rows(10)) == 10 and len(floor.column_rows(10)[0]) == 10
    assert floor.run(["--rounds", "1", "--vps", "2", "--duration", "0.002"]) == 0
    out = capsys.readouterr().out
    assert "floor = (reference + recorder alone) / reference = " in out
    assert floor.run(["--vps", "0"]) == 2


def test_floor_scaling_runs_the_benchmarks_scaling_rows():
    """bench/floor.py --scaling times vsmsim on the scenario of bench/run.py's scaling rows
    (per-VP load kept): the same model actions."""
    spec = importlib.util.spec_from_file_location("bench_floor", ROOT / "bench" / "floor.py")
    floor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floor)
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    bench_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_run)
    import vsmsim
    sc = bench_run.variant(bench_run.load_standard(False), 256, 0.004)
    want = bench_run.model_actions(vsmsim.simulate(sc))["model_actions"]
    _wall, actions = floor._engine(256, 4 * MS)
    assert actions == want > 0
