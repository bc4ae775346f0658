"""Columnar recording during a run: arrays appended per event, DataFrames built once.

Appending to ``array.array`` columns costs far less than building a tuple or dict per
event; the tables become pandas DataFrames once, at the end, via ``np.frombuffer``.

``record.tables`` other than ``"all"`` (``"stream"``, ``"summary"``) keep memory bounded:
a row's slot is recycled once the row is final (its handler ended, it merged into a
pending interrupt, or its VTL call returned; a switch once it ended), after its bytes
were copied to a chunk that a *sink* (:mod:`vsmsim.streaming`) writes out and tallies.
Rows carry their id (``F_ID``), since a slot no longer says which row it holds.
"""

from __future__ import annotations

from array import array
from struct import Struct

import numpy as np
import pandas as pd

from .workloads import INTERRUPT_KINDS, kind_code

#: Interrupt kinds, in the order of their codes in the recorder (the workload registry's
#: list: kinds registered later are appended, so these codes never change).
KINDS = INTERRUPT_KINDS
K_TIMER, K_IPI, K_PVIPI, K_EXTERNAL, K_CALL, K_INTERCEPT, K_VINA = (
    kind_code(k) for k in ("timer", "ipi", "pv-ipi", "external", "vtl-call", "intercept", "vina"))
#: Switch reasons, in the order of their codes.
REASONS = ("call", "return", "interrupt", "intercept")
R_CALL, R_RETURN, R_INTERRUPT, R_INTERCEPT = range(len(REASONS))
#: Timeline segment states, in the order of their codes.
#: "steal": with a host layer, the VP has guest code to run but its thread waits for a CPU.
STATES = ("handler", "task", "compute", "wait", "transition", "exit", "halted", "steal")
S_HANDLER, S_TASK, S_COMPUTE, S_WAIT, S_TRANSITION, S_EXIT, S_HALTED, S_STEAL = range(len(STATES))


#: Fields of one interrupt row, in the order they are stored (all int64).
#: ``merged`` is the id of the interrupt it merged into (-1: none); ``id`` the row's own id.
FIELDS = ("workload", "kind", "vector", "src_vp", "src_vtl", "vp", "vtl", "raised", "arrival",
          "start", "end", "resumed", "woke", "switched", "path", "service", "merged", "id")
NF = len(FIELDS)
(F_WORKLOAD, F_KIND, F_VECTOR, F_SRC_VP, F_SRC_VTL, F_VP, F_VTL, F_RAISED, F_ARRIVAL, F_START,
 F_END, F_RESUMED, F_WOKE, F_SWITCHED, F_PATH, F_SERVICE, F_MERGED, F_ID) = range(NF)
#: Fields of one switch row, in the order they are stored (all int64).
SW_FIELDS = ("vp", "from_vtl", "to_vtl", "reason", "start", "end", "id")
NSW = len(SW_FIELDS)
SW_VP, SW_FROM, SW_TO, SW_REASON, SW_START, SW_END, SW_ID = range(NSW)
#: Native int64 rows, as array('q') stores them.
_ROW = Struct(f"={NF}q")
_SWITCH = Struct(f"={NSW}q")
_PACK_ROW, _PACK_ROW_INTO = _ROW.pack, _ROW.pack_into
_PACK_SWITCH, _PACK_SWITCH_INTO = _SWITCH.pack, _SWITCH.pack_into
#: One interrupt row (the FIELDS, in order) as bytes to append to ``Recorder.rows``: what
#: ``Recorder.new_interrupt`` does, for the engine's one inlined use
#: (``Simulation.raise_timers``).
pack_row = _PACK_ROW
#: Record modes (``record.tables``).
TABLE_MODES = ("all", "stream", "summary")


class Recorder:
    """Columns for interrupts, switches, VINA clears and (optionally) the VP timeline.

    Interrupts live in one flat ``array('q')`` of :data:`NF` fields per row: appending a
    row is one ``extend`` call, and the engine refers to a row by its *handle*, the offset
    of its first field (row id x NF), so a field is ``rows[handle + F_...]``. Switches
    likewise, :data:`NSW` fields per row.
    """

    def __init__(self, timeline: bool = False, window=None, sink=None, chunk_rows: int = 65536):
        self.rows = array("q")
        self.sw = array("q")
        # Recycling (record.tables "stream" / "summary"): final rows go to *sink*.
        self.recycle = sink is not None
        self.sink = sink
        if sink is not None:
            self.chunk_rows = chunk_rows
            # per table (0: interrupts, 1: switches): free slots, final rows not yet sent
            self.frees = self.free, self.sw_free = [], []
            self.outs = [array("q"), array("q")]
            self.sends = (sink.interrupts, sink.switches)
            self.next_id = self.sw_next_id = 0
            self.new_interrupt = self._new_interrupt_recycled
            self.new_switch = self._new_switch_recycled
        self.clears = []  # (vp, vtl, t_ns): VINA cleared by software
        self.timeline = timeline
        self.window = window
        self.tl_vp = array("i")
        self.tl_state = array("b")
        self.tl_vtl = array("b")
        self.tl_start = array("q")
        self.tl_end = array("q")
        self.tl_irq = array("q")

    def new_interrupt(self, workload, kind, vector, src_vp, src_vtl, vp, vtl, raised, service,
                      path, woke, arrival=-1) -> int:
        """Append an interrupt row (start/end unknown yet) and return its handle.

        *arrival* is when the workload produced it, if earlier than *raised* (a send or call
        deferred until the sending context could run); -1 means the same as *raised*.
        """
        rows = self.rows
        h = len(rows)
        # One packed row appended as bytes: array.extend of a tuple converts every item
        # through argument parsing (measured here: ~1,180 ns a row against ~440 ns).
        rows.frombytes(_PACK_ROW(workload, kind, vector, src_vp, src_vtl, vp, vtl, raised,
                                 raised if arrival < 0 else arrival, -1, -1, -1, woke, 0, path,
                                 service, -1, h // NF))
        return h

    def new_switch(self, vp, from_vtl, to_vtl, reason, start) -> int:
        """Append a switch row whose end is set later (``sw[h + SW_END]``); return its handle."""
        sw = self.sw
        h = len(sw)
        sw.frombytes(_PACK_SWITCH(vp, from_vtl, to_vtl, reason, start, -1, h // NSW))
        return h

    # ------------------------------------------------------------------ recycling
    def _new_interrupt_recycled(self, workload, kind, vector, src_vp, src_vtl, vp, vtl, raised,
                                service, path, woke, arrival=-1) -> int:
        i = self.next_id
        self.next_id = i + 1
        fields = (workload, kind, vector, src_vp, src_vtl, vp, vtl, raised,
                  raised if arrival < 0 else arrival, -1, -1, -1, woke, 0, path, service, -1, i)
        if self.free:
            h = self.free.pop()
            _PACK_ROW_INTO(self.rows, h * 8, *fields)
            return h
        h = len(self.rows)
        self.rows.frombytes(_PACK_ROW(*fields))
        return h

    def _new_switch_recycled(self, vp, from_vtl, to_vtl, reason, start) -> int:
        i = self.sw_next_id
        self.sw_next_id = i + 1
        if self.sw_free:
            h = self.sw_free.pop()
            _PACK_SWITCH_INTO(self.sw, h * 8, vp, from_vtl, to_vtl, reason, start, -1, i)
            return h
        h = len(self.sw)
        self.sw.frombytes(_PACK_SWITCH(vp, from_vtl, to_vtl, reason, start, -1, i))
        return h

    def done(self, h: int) -> None:
        """Interrupt row *h* is final: copy it out and free its slot (recycling only)."""
        self._final(self.rows, h, NF, 0)

    def switch_done(self, h: int) -> None:
        """Switch row *h* is final (it ended): copy it out and free its slot."""
        self._final(self.sw, h, NSW, 1)

    def _final(self, rows, h: int, width: int, k: int) -> None:
        out = self.outs[k]
        out.extend(rows[h:h + width])
        self.frees[k].append(h)
        if len(out) >= self.chunk_rows * width:
            self.sends[k](np.frombuffer(out, dtype=np.int64).reshape(-1, width))
            self.outs[k] = array("q")

    def finish(self) -> None:
        """At the end of the run (recycling only): hand the sink the rows still open (not
        final: pending interrupts, calls not returned, switches under way), then close it."""
        for k, (rows, width) in enumerate(((self.rows, NF), (self.sw, NSW))):
            freed = set(self.frees[k])
            live = array("q")
            for h in range(0, len(rows), width):
                if h not in freed:
                    live.extend(rows[h:h + width])
            for a in (self.outs[k], live):
                if len(a):
                    self.sends[k](np.frombuffer(a, dtype=np.int64).reshape(-1, width))
            self.outs[k] = array("q")

    def segment(self, vp, state, vtl, start, end, irq=-1):
        """Record one timeline segment [start, end) if the timeline is on and in the window."""
        if end <= start:
            return
        w = self.window
        if w is not None:
            if end <= w[0] or start >= w[1]:
                return
        self.tl_vp.append(vp)
        self.tl_state.append(state)
        self.tl_vtl.append(vtl)
        self.tl_start.append(start)
        self.tl_end.append(end)
        self.tl_irq.append(irq)

    # ------------------------------------------------------------------ tables
    def interrupts_frame(self, workload_names, path_names) -> pd.DataFrame:
        """The interrupt table of docs/metrics.md (missing start/end as <NA>)."""
        m = np.frombuffer(self.rows, dtype=np.int64).reshape(-1, NF) if len(self.rows) \
            else np.zeros((0, NF), np.int64)
        return interrupt_table(m, workload_names, path_names)

    def switches_frame(self) -> pd.DataFrame:
        """The switch table of docs/metrics.md."""
        m = np.frombuffer(self.sw, dtype=np.int64).reshape(-1, NSW) if len(self.sw) \
            else np.zeros((0, NSW), np.int64)
        return switch_table(m)

    def timeline_frame(self) -> pd.DataFrame:
        """Per-VP state segments: vp, state, vtl, start_ns, end_ns, irq (-1 if none),
        sorted by VP then start.

        Segments are recorded as they close, in an order that depends on the engine's fast
        paths; sorting (segments of a VP never share a start, empty ones are not kept)
        makes the table the same whichever path ran.
        """
        n = len(self.tl_start)

        def col(a, dtype):
            return np.frombuffer(a, dtype=dtype, count=n) if n else np.zeros(0, dtype)

        vp, start = col(self.tl_vp, np.int32).astype(np.int64), col(self.tl_start, np.int64)
        order = np.lexsort((start, vp))
        irq = col(self.tl_irq, np.int64)[order]
        return pd.DataFrame({
            "vp": vp[order],
            "state": pd.Categorical.from_codes(col(self.tl_state, np.int8)[order],
                                               categories=list(STATES)),
            "vtl": col(self.tl_vtl, np.int8).astype(np.int64)[order],
            "start_ns": start[order],
            "end_ns": col(self.tl_end, np.int64)[order],
            "irq": irq,
        })


def _maybe(a):
    out = pd.array(a, dtype="Int64")
    out[a < 0] = pd.NA
    return out


def interrupt_table(m: np.ndarray, workload_names, path_names) -> pd.DataFrame:
    """The interrupt table of docs/metrics.md from raw rows *m* (shape (n, NF), int64)."""
    raised, start, end = m[:, F_RAISED], m[:, F_START], m[:, F_END]
    merged = m[:, F_MERGED]
    # copy=False: the columns built here are fresh already; a second copy into
    # consolidated blocks would double the peak memory of a long run.
    return pd.DataFrame(copy=False, data={
        "id": m[:, F_ID].copy(),
        "workload": pd.Categorical.from_codes(m[:, F_WORKLOAD].astype(np.int32),
                                              categories=list(workload_names)),
        "kind": pd.Categorical.from_codes(m[:, F_KIND].astype(np.int8), categories=list(KINDS)),
        "vector": m[:, F_VECTOR].copy(),
        "src_vp": m[:, F_SRC_VP].copy(),
        "src_vtl": m[:, F_SRC_VTL].copy(),
        "vp": m[:, F_VP].copy(),
        "vtl": m[:, F_VTL].copy(),
        "arrival_ns": m[:, F_ARRIVAL].copy(),
        "raised_ns": raised.copy(),
        "start_ns": _maybe(start),
        "end_ns": _maybe(end),
        "delivery_ns": _maybe(np.where(start >= 0, start - raised, -1)),
        "response_ns": _maybe(np.where(end >= 0, end - raised, -1)),
        "woke": m[:, F_WOKE].astype(bool),
        "switched": m[:, F_SWITCHED].astype(bool),
        "path": pd.Categorical.from_codes(m[:, F_PATH].astype(np.int16),
                                          categories=list(path_names)),
        "resumed_ns": _maybe(m[:, F_RESUMED]),
        "service_ns": m[:, F_SERVICE].copy(),
        # Merged into an interrupt of the same vector already pending in the IRR (one
        # bit per vector): no handler of its own; merged_into is that interrupt's id.
        "coalesced": merged >= 0,
        "merged_into": _maybe(merged),
    })


def switch_table(m: np.ndarray) -> pd.DataFrame:
    """The switch table of docs/metrics.md from raw rows *m* (shape (n, NSW), int64)."""
    end = pd.array(m[:, SW_END], dtype="Int64")
    end[m[:, SW_END] < 0] = pd.NA
    return pd.DataFrame(copy=False, data={
        "vp": m[:, SW_VP].copy(),
        "from_vtl": m[:, SW_FROM].copy(),
        "to_vtl": m[:, SW_TO].copy(),
        "reason": pd.Categorical.from_codes(m[:, SW_REASON].astype(np.int8),
                                            categories=list(REASONS)),
        "start_ns": m[:, SW_START].copy(),
        "end_ns": end,
    })
