"""Perfetto / Chrome trace export: slices match the tables, flows pair up, window and cap."""

import dataclasses
import json
from collections import defaultdict

import pytest

import vsmsim
from vsmsim.errors import InputError
from vsmsim.trace import OVERHEAD_TID, PID_BASE, TID_BASE, build_trace, trace_events, write_trace


@pytest.fixture(scope="module")
def res():
    sc = vsmsim.Scenario.model_validate({
        "name": "tracedemo", "duration": "8ms", "vm": {"vps": 3, "vtls": 3},
        "record": {"timeline": True}, "design": "vm-per-vtl",
        "workload": [{"kind": "compute", "vtl": 0},
                     {"kind": "timer", "vtl": 1, "period": "1ms", "service": "20us"},
                     {"kind": "timer", "vtl": 2, "period": "700us", "service": "10us"},
                     {"kind": "vtl-call", "vtl": 0, "rate": 2000, "service": "5us"},
                     {"kind": "pv-ipi", "vtl": 1, "rate": 3000},
                     {"kind": "ipi", "vtl": 0, "rate": 20000, "dest": "all"}]})
    return vsmsim.simulate(sc)


def real(events):
    return [e for e in events if e["ph"] != "M"]


def test_file_parses_with_named_tracks(res, tmp_path):
    path = write_trace(res, tmp_path / "t" / "trace.json")
    doc = json.loads(path.read_text())
    assert doc["displayTimeUnit"] == "ns"
    assert doc["metadata"]["design"] == "vm-per-vtl" and not doc["metadata"]["truncated"]
    ev = doc["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in ev if e["name"] == "process_name"}
    assert procs == {PID_BASE + vp: f"VP {vp}" for vp in range(3)}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["name"] == "thread_name"}
    assert threads[(PID_BASE + 2, TID_BASE + 1)] == "VTL 1"
    assert threads[(PID_BASE, OVERHEAD_TID)] == "transitions & exits"
    assert all(isinstance(e["ts"], float) for e in real(ev))
    assert [p.name for p in path.parent.iterdir()] == ["trace.json"]  # no temp file left


def test_handler_slices_match_interrupts(res):
    df = res.interrupts.set_index("id")
    started = df[df["start_ns"].notna()]
    handlers = [e for e in trace_events(res) if e["ph"] == "X" and e["cat"] == "handler"]
    assert sorted(e["args"]["id"] for e in handlers) == sorted(started.index)
    for e in handlers:
        row = df.loc[e["args"]["id"]]
        end = row["end_ns"] if not row.isna()["end_ns"] else int(res.scenario["duration"])
        assert round(e["ts"] * 1000) == row["start_ns"]
        assert round(e["dur"] * 1000) == end - row["start_ns"]
        assert (e["pid"], e["tid"]) == (PID_BASE + row["vp"], TID_BASE + row["vtl"])
        assert e["args"]["raised_ns"] == row["raised_ns"] and e["args"]["path"] == row["path"]


def test_transitions_match_switches(res):
    tr = [e for e in trace_events(res) if e["ph"] == "X" and e["cat"] == "transition"]
    sw = res.switches
    assert len(tr) == len(sw)
    assert sorted(round(e["ts"] * 1000) for e in tr) == sorted(sw["start_ns"])
    assert all(e["tid"] == OVERHEAD_TID for e in tr)
    exits = [e for e in trace_events(res) if e["ph"] == "X" and e["cat"] == "exit"]
    assert len(exits) == int((res.timeline["state"] == "exit").sum())


def binding(events):
    """Which slice each flow event binds to under Perfetto's rule (innermost open slice of
    its thread, events in file order); also checks that slices of a thread nest."""
    stacks = defaultdict(list)
    bound = {}

    def ns(us):  # as Perfetto reads them: ts and dur each rounded to ns
        return round(us * 1000)

    for e in real(events):
        st = stacks[(e.get("pid"), e.get("tid"))]
        if e["ph"] == "X":
            start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
            while st and st[-1][1] <= start:
                st.pop()
            if st:
                assert end <= st[-1][1], (e, st[-1][2])
            st.append((start, end, e))
        elif e["ph"] in "sf":
            bound[(e["ph"], e["id"])] = st[-1][2] if st else None
    return bound


def test_flow_arrows_pair_up_and_bind_to_send_and_handler(res):
    ev = trace_events(res)
    s = {e["id"]: e for e in ev if e["ph"] == "s"}
    f = {e["id"]: e for e in ev if e["ph"] == "f"}
    assert s and set(s) == set(f)
    df = res.interrupts.set_index("id")
    kinds = set(df.loc[list(s), "kind"].astype(str))
    assert {"ipi", "pv-ipi", "vtl-call"} <= kinds
    for fid, e in s.items():
        row = df.loc[fid]
        assert round(e["ts"] * 1000) == row["raised_ns"]
        assert (e["pid"], e["tid"]) == (PID_BASE + row["src_vp"], TID_BASE + row["src_vtl"])
        assert round(f[fid]["ts"] * 1000) == row["start_ns"] and f[fid]["bp"] == "e"
        assert (e["cat"], e["name"]) == (f[fid]["cat"], f[fid]["name"])
    bound = binding(ev)
    for fid in s:
        assert bound[("s", fid)]["cat"] == "send" and bound[("s", fid)]["args"]["id"] == fid
        assert bound[("f", fid)]["cat"] == "handler" and bound[("f", fid)]["args"]["id"] == fid


def test_pending_counter(res):
    ev = trace_events(res)
    c = [e for e in ev if e["ph"] == "C"]
    assert c and all(v >= 0 for e in c for v in e["args"].values())
    last = {}
    for e in c:
        last[e["pid"]] = e["args"]
    df = res.interrupts[~res.interrupts["kind"].isin(["vtl-call", "intercept"])]
    never = df[df["start_ns"].isna()].groupby(["vp", "vtl"]).size()
    for pid, vals in last.items():
        for key, v in vals.items():
            assert v == never.get((pid - PID_BASE, int(key[3:])), 0)


def test_window_keeps_only_overlapping_events(res):
    full = real(trace_events(res))
    ev = real(trace_events(res, window=["2ms", "4ms"]))
    assert 0 < len(ev) < len(full)
    for e in ev:
        if e["ph"] == "X":
            assert e["ts"] < 4000 and (e["ts"] + e["dur"] > 2000 or e["ts"] >= 2000)
        else:
            assert 2000 <= e["ts"] < 4000
    df = res.interrupts
    inside = df[df["start_ns"].notna() & (df["start_ns"] < 4_000_000)
                & (df["end_ns"].fillna(10**12) > 2_000_000)]
    handlers = [e for e in ev if e["ph"] == "X" and e["cat"] == "handler"]
    assert len(handlers) == len(inside)
    assert {e["id"] for e in ev if e["ph"] == "s"} == {e["id"] for e in ev if e["ph"] == "f"}
    same = real(trace_events(res, window=(2_000_000, 4_000_000)))
    assert same == ev
    with pytest.raises(InputError):
        trace_events(res, window=["4ms", "2ms"])
    with pytest.raises(InputError):
        trace_events(res, window=["2 parsecs", "4ms"])


def test_cap_bounds_events_and_says_so(res):
    doc = build_trace(res, max_events=300)
    ev = real(doc["traceEvents"])
    assert len(ev) <= 300
    meta = doc["metadata"]
    assert meta["truncated"] and "max_events=300" in meta["note"]
    marker = [e for e in ev if e["ph"] == "i"]
    assert len(marker) == 1 and marker[0]["ts"] * 1000 == meta["truncated_at_ns"]
    assert all(e["ts"] <= marker[0]["ts"] for e in ev)
    assert {e["id"] for e in ev if e["ph"] == "s"} == {e["id"] for e in ev if e["ph"] == "f"}
    assert not build_trace(res, max_events=10**6)["metadata"]["truncated"]


def test_without_timeline(res):
    ev = trace_events(dataclasses.replace(res, timeline=None))
    cats = {e.get("cat") for e in real(ev)}
    assert {"handler", "transition", "send", "flow"} <= cats
    assert not cats & {"exit", "work", "idle"}


# ---------------------------------------------------------------- path steps (issue 17)
def _inside(parent, events):
    a, b = round(parent["ts"] * 1000), round((parent["ts"] + parent["dur"]) * 1000)
    return [e for e in events if e["cat"] == "step" and e["pid"] == parent["pid"]
            and e["tid"] == parent["tid"] and a <= round(e["ts"] * 1000) < b]


def test_transitions_carry_their_path_cause_and_one_sub_slice_per_step(res):
    from handsums import SWITCH_STEPS

    ev = [e for e in trace_events(res) if e["ph"] == "X"]
    tr = [e for e in ev if e["cat"] == "transition" and not e["args"].get("unfinished")]
    assert tr
    for e in tr:
        reason = e["args"]["reason"]
        assert e["args"]["path"] == f"switch.{reason}"
        subs = _inside(e, ev)
        names = [s["args"]["cost"] + (f"*{s['args']['times']}" if s["args"]["times"] != 1 else "")
                 for s in subs]
        assert names == SWITCH_STEPS["vm-per-vtl"][reason]  # written by hand, not from the table
        assert sum(round(s["dur"] * 1000) for s in subs) == round(e["dur"] * 1000)
    causes = [e for e in tr if e["args"]["reason"] == "interrupt"]
    assert causes and all("cause_id" in e["args"] for e in causes)
    df = res.interrupts.set_index("id")
    ends = [df.loc[e["args"]["cause_id"], "start_ns"] == round((e["ts"] + e["dur"]) * 1000)
            for e in causes]
    assert sum(ends) >= 0.9 * len(ends)  # the handler usually starts as the entry ends


def test_exit_slices_name_their_cause_and_latency_only_steps_sit_on_a_host_track(res):
    from handsums import INACTIVE_TIMER_STEPS

    ev = [e for e in trace_events(res) if e["ph"] == "X"]
    timer_exits = [e for e in ev if e["cat"] == "exit" and e["args"].get("path") ==
                   "deliver.inactive.timer"]
    assert timer_exits
    none, recv = INACTIVE_TIMER_STEPS["vm-per-vtl"]
    df = res.interrupts.set_index("id")
    for e in timer_exits:
        assert e["name"].startswith("exit: timer #") and e["args"]["cause_kind"] == "timer"
        assert [s["args"]["cost"] for s in _inside(e, ev)] == recv
        irq = e["args"]["cause_id"]
        host = [h for h in ev if h["cat"] == "host" and h["args"]["id"] == irq]
        assert [h["args"]["cost"] for h in host] == none
        # The host steps run from the raise; the receiver's exit follows when the VP is free.
        assert round(host[0]["ts"] * 1000) == df.loc[irq, "raised_ns"]
        assert round((host[-1]["ts"] + host[-1]["dur"]) * 1000) <= round(e["ts"] * 1000)
    meta = [e for e in trace_events(res) if e["ph"] == "M" and e["name"] == "thread_name"]
    assert any(m["args"]["name"] == "host (latency only)" for m in meta)


def test_steps_can_be_left_out(res):
    ev = trace_events(res, steps=False)
    assert not [e for e in ev if e.get("cat") in ("step", "host")]
