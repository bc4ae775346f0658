"""Columnar recording during a run: arrays appended per event, DataFrames built once.

Appending to ``array.array`` columns costs far less than building a tuple or dict per
event; the tables become pandas DataFrames once, at the end, via ``np.frombuffer``.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

#: Interrupt kinds, in the order of their codes in the recorder.
KINDS = ("timer", "ipi", "pv-ipi", "external", "vtl-call", "intercept", "vina")
K_TIMER, K_IPI, K_PVIPI, K_EXTERNAL, K_CALL, K_INTERCEPT, K_VINA = range(len(KINDS))
#: Switch reasons, in the order of their codes.
REASONS = ("call", "return", "interrupt", "intercept")
R_CALL, R_RETURN, R_INTERRUPT, R_INTERCEPT = range(len(REASONS))
#: Timeline segment states, in the order of their codes.
STATES = ("handler", "task", "compute", "wait", "transition", "exit", "halted")
S_HANDLER, S_TASK, S_COMPUTE, S_WAIT, S_TRANSITION, S_EXIT, S_HALTED = range(len(STATES))


class Recorder:
    """Columns for interrupts, switches, VINA clears and (optionally) the VP timeline."""

    def __init__(self, timeline: bool = False, window=None):
        self.workload = array("i")
        self.kind = array("b")
        self.vector = array("h")
        self.src_vp = array("i")
        self.src_vtl = array("b")
        self.vp = array("i")
        self.vtl = array("b")
        self.raised = array("q")
        self.arrival = array("q")
        self.start = array("q")
        self.end = array("q")
        self.resumed = array("q")
        self.woke = array("b")
        self.switched = array("b")
        self.path = array("h")
        self.service = array("q")
        self.sw_vp = array("i")
        self.sw_from = array("b")
        self.sw_to = array("b")
        self.sw_reason = array("b")
        self.sw_start = array("q")
        self.sw_end = array("q")
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
        """Append an interrupt row (start/end unknown yet) and return its id.

        *arrival* is when the workload produced it, if earlier than *raised* (a send or call
        deferred until the sending context could run); -1 means the same as *raised*.
        """
        i = len(self.raised)
        self.workload.append(workload)
        self.kind.append(kind)
        self.vector.append(vector)
        self.src_vp.append(src_vp)
        self.src_vtl.append(src_vtl)
        self.vp.append(vp)
        self.vtl.append(vtl)
        self.raised.append(raised)
        self.arrival.append(raised if arrival < 0 else arrival)
        self.start.append(-1)
        self.end.append(-1)
        self.resumed.append(-1)
        self.woke.append(woke)
        self.switched.append(0)
        self.path.append(path)
        self.service.append(service)
        return i

    def new_switch(self, vp, from_vtl, to_vtl, reason, start) -> int:
        """Append a switch row whose end is filled in by :meth:`end_switch`; return its index."""
        i = len(self.sw_start)
        self.sw_vp.append(vp)
        self.sw_from.append(from_vtl)
        self.sw_to.append(to_vtl)
        self.sw_reason.append(reason)
        self.sw_start.append(start)
        self.sw_end.append(-1)
        return i

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
        """The interrupt table of ARCHITECTURE.md (missing start/end as <NA>)."""
        n = len(self.raised)

        def col(a, dtype):
            return np.frombuffer(a, dtype=dtype, count=n) if n else np.zeros(0, dtype)

        raised = col(self.raised, np.int64)
        start = col(self.start, np.int64)
        end = col(self.end, np.int64)
        resumed = col(self.resumed, np.int64)

        def maybe(a):
            out = pd.array(a, dtype="Int64")
            out[a < 0] = pd.NA
            return out

        wl = col(self.workload, np.int32)
        df = pd.DataFrame({
            "id": np.arange(n, dtype=np.int64),
            "workload": pd.Categorical.from_codes(wl, categories=list(workload_names))
            if n else pd.Categorical([], categories=list(workload_names)),
            "kind": pd.Categorical.from_codes(col(self.kind, np.int8), categories=list(KINDS)),
            "vector": col(self.vector, np.int16).astype(np.int64),
            "src_vp": col(self.src_vp, np.int32).astype(np.int64),
            "src_vtl": col(self.src_vtl, np.int8).astype(np.int64),
            "vp": col(self.vp, np.int32).astype(np.int64),
            "vtl": col(self.vtl, np.int8).astype(np.int64),
            "arrival_ns": col(self.arrival, np.int64).copy(),
            "raised_ns": raised.copy(),
            "start_ns": maybe(start),
            "end_ns": maybe(end),
            "delivery_ns": maybe(np.where(start >= 0, start - raised, -1)),
            "response_ns": maybe(np.where(end >= 0, end - raised, -1)),
            "woke": col(self.woke, np.int8).astype(bool),
            "switched": col(self.switched, np.int8).astype(bool),
            "path": pd.Categorical.from_codes(col(self.path, np.int16), categories=list(path_names)),
            "resumed_ns": maybe(resumed),
            "service_ns": col(self.service, np.int64).copy(),
        })
        return df

    def switches_frame(self) -> pd.DataFrame:
        """The switch table of ARCHITECTURE.md."""
        n = len(self.sw_start)

        def col(a, dtype):
            return np.frombuffer(a, dtype=dtype, count=n) if n else np.zeros(0, dtype)

        end = col(self.sw_end, np.int64)
        endcol = pd.array(end, dtype="Int64")
        endcol[end < 0] = pd.NA
        return pd.DataFrame({
            "vp": col(self.sw_vp, np.int32).astype(np.int64),
            "from_vtl": col(self.sw_from, np.int8).astype(np.int64),
            "to_vtl": col(self.sw_to, np.int8).astype(np.int64),
            "reason": pd.Categorical.from_codes(col(self.sw_reason, np.int8), categories=list(REASONS)),
            "start_ns": col(self.sw_start, np.int64).copy(),
            "end_ns": endcol,
        })

    def timeline_frame(self) -> pd.DataFrame:
        """Per-VP state segments: vp, state, vtl, start_ns, end_ns, irq (-1 if none)."""
        n = len(self.tl_start)

        def col(a, dtype):
            return np.frombuffer(a, dtype=dtype, count=n) if n else np.zeros(0, dtype)

        return pd.DataFrame({
            "vp": col(self.tl_vp, np.int32).astype(np.int64),
            "state": pd.Categorical.from_codes(col(self.tl_state, np.int8), categories=list(STATES)),
            "vtl": col(self.tl_vtl, np.int8).astype(np.int64),
            "start_ns": col(self.tl_start, np.int64).copy(),
            "end_ns": col(self.tl_end, np.int64).copy(),
            "irq": col(self.tl_irq, np.int64).copy(),
        })
