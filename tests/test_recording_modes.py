"""record.tables = "stream" and "summary": bounded memory, the same answers.

"stream" must give the same rows as "all" (read back in id order) and "summary" the same
summary: every count, mean and maximum exactly, every percentile exactly while its column
has at most 4096 distinct values, and within ``record.rel_error`` of the nearest-rank
percentile beyond. Small chunks (row_group = 1024) make the recorder recycle slots and
hand over chunks many times in each run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from test_properties import COMMON, valid_scenarios

import vsmsim
from vsmsim import streaming
from vsmsim.cli import main
from vsmsim.results import load_result

MIXED = Path(__file__).resolve().parent.parent / "bench" / "mixed.toml"


def mixed(design: str, seed: int, duration: str = "20ms") -> dict:
    """bench/mixed.toml (every kind of event, jittered costs) with a 1 ms warm-up."""
    return vsmsim.load_scenario(MIXED).with_overrides(
        {"design": design, "seed": seed, "duration": duration, "warmup": "1ms"}).resolved()


def with_tables(spec: dict, mode: str) -> dict:
    out = dict(spec)
    out["record"] = {**spec.get("record", {}), "tables": mode, "row_group": 1024}
    return out


def same_summary(a, b):
    sa, sb = a.summary(), b.summary()
    assert list(sa.columns) + ["rel_error"] == list(sb.columns)
    m = sa.merge(sb, on=["metric", "kind", "vtl", "unit"], how="outer", indicator=True,
                 suffixes=("_a", "_b"))
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    exact = m[m["rel_error"] == 0]
    assert np.allclose(exact["value_a"], exact["value_b"], rtol=1e-12, atol=0), \
        exact[~np.isclose(exact["value_a"], exact["value_b"], rtol=1e-12)]
    return m


@pytest.mark.parametrize("design,seed", [("vm-per-vtl", 1), ("planes-rfc", 2),
                                         ("apic-id-groups", 3)])
def test_stream_rows_and_summary_equal_all(design, seed):
    spec = mixed(design, seed)
    a = vsmsim.simulate(spec)
    b = vsmsim.simulate(with_tables(spec, "stream"))
    assert a.interrupts is not None and b.interrupts is None     # nothing loaded yet
    pd.testing.assert_frame_equal(a.interrupts, b.rows("interrupts"))
    pd.testing.assert_frame_equal(a.switches, b.rows("switches"))
    pd.testing.assert_frame_equal(a.residency, b.residency)
    assert a.counters == b.counters
    assert a.meta["overload"] == b.meta["overload"]
    same_summary(a, b)
    assert vsmsim.check(b) == vsmsim.check(a) == []


@pytest.mark.parametrize("design,seed", [("vm-per-vtl", 4), ("planes", 5)])
def test_summary_is_exact_where_it_says_so_and_within_its_error_elsewhere(design, seed,
                                                                         monkeypatch):
    # a low limit of distinct values, so that short runs estimate too (4096 in real runs)
    monkeypatch.setattr(streaming, "EXACT_LIMIT", 50)
    spec = mixed(design, seed, duration="40ms")
    a = vsmsim.simulate(spec)
    b = vsmsim.simulate(with_tables(spec, "summary"))
    assert b.interrupts is None and b.switches is None
    assert a.counters == b.counters and a.meta["overload"] == b.meta["overload"]
    m = same_summary(a, b)
    est = m[m["rel_error"] > 0]
    assert len(est) >= 10  # exp services: more than 50 distinct latencies in many columns
    df = a.measured()
    df = df[~df["coalesced"]]
    sw = a.switches[a.switches["start_ns"] >= 1_000_000]
    for _, r in est.iterrows():
        col, p = r["metric"].rsplit("_", 1)
        q = float(p[1:]) / 100
        g = df[(df["kind"] == r["kind"]) & (df["vtl"] == r["vtl"])]
        if col == "wakeup":
            g, col = g[g["woke"]], "delivery"
        if col == "switch":
            s = sw[sw["reason"] == r["kind"]]
            vals = (s["end_ns"] - s["start_ns"]).dropna().to_numpy(dtype=float)
        else:
            vals = ((g["resumed_ns"] - g["raised_ns"]) if col == "roundtrip"
                    else g[f"{col}_ns"]).dropna().to_numpy(dtype=float)
        exact = np.quantile(vals, q, method="inverted_cdf")
        assert abs(r["value_b"] - exact) <= r["rel_error"] * exact, (r["metric"], r["kind"])


@settings(max_examples=120, **COMMON)
@given(spec=valid_scenarios())
def test_random_scenarios_stream_and_summarise_like_all(spec):
    spec.pop("record", None)
    a = vsmsim.simulate(spec)
    b = vsmsim.simulate(with_tables(spec, "stream"))
    pd.testing.assert_frame_equal(a.interrupts, b.rows("interrupts"))
    pd.testing.assert_frame_equal(a.switches, b.rows("switches"))
    assert a.counters == b.counters
    same_summary(a, vsmsim.simulate(with_tables(spec, "summary")))


def test_results_save_and_load_in_each_mode(tmp_path):
    spec = mixed("vm-per-vtl", 6)
    a = vsmsim.simulate(spec)
    for mode in ("stream", "summary"):
        b = vsmsim.simulate(with_tables(spec, mode))
        b.save(tmp_path / mode)
        c = load_result(tmp_path / mode)
        assert c.tables == mode
        pd.testing.assert_frame_equal(b.summary(), c.summary())
        if mode == "stream":
            pd.testing.assert_frame_equal(a.interrupts, c.rows("interrupts"))
            pd.testing.assert_frame_equal(a.switches, c.rows("switches"))
        else:
            assert not (tmp_path / mode / "interrupts.parquet").exists()
            with pytest.raises(vsmsim.InputError, match="record.tables"):
                c.rows("interrupts")


def test_a_summary_run_says_what_it_cannot_do(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text('duration = "5ms"\n[[workload]]\nkind = "timer"\nvtl = 0\nperiod = "100us"\n')
    out = tmp_path / "r"
    assert main(["run", str(f), "--set", "record.tables=summary", "--out", str(out)]) == 0
    assert "interrupts" in capsys.readouterr().out
    rc = main(["run", str(f), "--set", "record.tables=summary", "--trace", "--out",
               str(tmp_path / "r2")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "record.tables" in err, err
    rc = main(["run", str(f), "--set", "record.tables=everything", "--out", str(tmp_path / "r3")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "record.tables" in err and "summary" in err


def _stream_dirs():
    import glob
    import tempfile

    from vsmsim.names import STREAM_PREFIX
    return set(glob.glob(f"{tempfile.gettempdir()}/{STREAM_PREFIX}*"))


def test_streamed_results_cross_processes_and_leave_nothing_behind():
    """compare with a process pool sends streamed results back to the parent, which then
    owns their files; a run that stops half-way, or streams nothing, leaves no directory."""
    before = _stream_dirs()
    spec = with_tables(mixed("vm-per-vtl", 7, duration="5ms"), "stream")
    cmp = vsmsim.compare(spec, ["vm-per-vtl", "planes"], replications=2, workers=2)
    assert not cmp.failures
    res = cmp.results["planes"]
    plain = vsmsim.simulate({**mixed("planes", 7, duration="5ms")})
    pd.testing.assert_frame_equal(plain.interrupts, res.rows("interrupts"))
    assert "vtl0_tax" in set(cmp.intervals()["metric"])  # the replications' summaries
    del cmp, res

    def stop(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vsmsim.simulate(spec, progress=stop)
    empty = with_tables({"duration": "1ms", "workload": [{"kind": "compute"}]}, "stream")
    assert vsmsim.simulate(empty).rows("interrupts").empty
    import gc
    gc.collect()
    assert _stream_dirs() <= before
