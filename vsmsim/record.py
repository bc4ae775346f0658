"""Columnar recording during a run: arrays appended per event, DataFrames built once.

Appending to ``array.array`` columns costs far less than building a tuple or dict per
event; the tables become pandas DataFrames once, at the end, via ``np.frombuffer``.
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
STATES = ("handler", "task", "compute", "wait", "transition", "exit", "halted")
S_HANDLER, S_TASK, S_COMPUTE, S_WAIT, S_TRANSITION, S_EXIT, S_HALTED = range(len(STATES))


#: Fields of one interrupt row, in the order they are stored (all int64).
FIELDS = ("workload", "kind", "vector", "src_vp", "src_vtl", "vp", "vtl", "raised", "arrival",
          "start", "end", "resumed", "woke", "switched", "path", "service", "merged")
NF = len(FIELDS)
(F_WORKLOAD, F_KIND, F_VECTOR, F_SRC_VP, F_SRC_VTL, F_VP, F_VTL, F_RAISED, F_ARRIVAL, F_START,
 F_END, F_RESUMED, F_WOKE, F_SWITCHED, F_PATH, F_SERVICE, F_MERGED) = range(NF)
#: Fields of one switch row, in the order they are stored (all int64).
SW_FIELDS = ("vp", "from_vtl", "to_vtl", "reason", "start", "end")
NSW = len(SW_FIELDS)
SW_VP, SW_FROM, SW_TO, SW_REASON, SW_START, SW_END = range(NSW)
#: Native int64 rows, as array('q') stores them.
_PACK_ROW = Struct(f"={NF}q").pack
_PACK_SWITCH = Struct(f"={NSW}q").pack


class Recorder:
    """Columns for interrupts, switches, VINA clears and (optionally) the VP timeline.

    Interrupts live in one flat ``array('q')`` of :data:`NF` fields per row: appending a
    row is one ``extend`` call, and the engine refers to a row by its *handle*, the offset
    of its first field (row id x NF), so a field is ``rows[handle + F_...]``. Switches
    likewise, :data:`NSW` fields per row.
    """

    def __init__(self, timeline: bool = False, window=None):
        self.rows = array("q")
        self.sw = array("q")
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
                                 service, -1))
        return h

    def new_switch(self, vp, from_vtl, to_vtl, reason, start) -> int:
        """Append a switch row whose end is set later (``sw[h + SW_END]``); return its handle."""
        sw = self.sw
        h = len(sw)
        sw.frombytes(_PACK_SWITCH(vp, from_vtl, to_vtl, reason, start, -1))
        return h

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
        n = len(m)

        def maybe(a):
            out = pd.array(a, dtype="Int64")
            out[a < 0] = pd.NA
            return out

        raised, start, end = m[:, F_RAISED], m[:, F_START], m[:, F_END]
        # copy=False: the columns built here are fresh already; a second copy into
        # consolidated blocks would double the peak memory of a long run.
        return pd.DataFrame(copy=False, data={
            "id": np.arange(n, dtype=np.int64),
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
            "start_ns": maybe(start),
            "end_ns": maybe(end),
            "delivery_ns": maybe(np.where(start >= 0, start - raised, -1)),
            "response_ns": maybe(np.where(end >= 0, end - raised, -1)),
            "woke": m[:, F_WOKE].astype(bool),
            "switched": m[:, F_SWITCHED].astype(bool),
            "path": pd.Categorical.from_codes(m[:, F_PATH].astype(np.int16),
                                              categories=list(path_names)),
            "resumed_ns": maybe(m[:, F_RESUMED]),
            "service_ns": m[:, F_SERVICE].copy(),
            # Merged into an interrupt of the same vector already pending in the IRR (one
            # bit per vector): no handler of its own; merged_into is that interrupt's id.
            "coalesced": m[:, F_MERGED] >= 0,
            "merged_into": maybe(np.where(m[:, F_MERGED] >= 0, m[:, F_MERGED] // NF, -1)),
        })


    def switches_frame(self) -> pd.DataFrame:
        """The switch table of docs/metrics.md."""
        m = np.frombuffer(self.sw, dtype=np.int64).reshape(-1, NSW) if len(self.sw) \
            else np.zeros((0, NSW), np.int64)
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
            "irq": np.where(irq >= 0, irq // NF, -1),
        })
