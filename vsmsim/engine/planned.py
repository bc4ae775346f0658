"""Planned VTL entries: a higher VTL's interrupt taken from VTL0 compute, booked in one go.

The commonest chain of a VSM workload is a VTL1 interrupt (its timer, mostly) reaching a VP
that runs VTL0 background work: the receiver's exit, the switch into VTL1, the VTL1
handler, the return, and VTL0's compute again. When nothing else is under way on the VP,
every step of that chain is fixed when it starts: the generic engine's four events
(exit end, switch end, handler end, return end) come one after the other, each deciding
what the previous one already implied.

A planned entry keeps the four events, with the times, priorities and event ids the
generic path gives them, so that every event of the run is processed in the same order
as without it; what it leaves out is the model's work at each of them. Each event only
does what another VP could see at that moment (the switch rows are appended when the
generic switches begin, so the switch table keeps its order; the event id of the next
step is drawn when the generic one would be), and the last one books everything else
(the interrupt's row, the switch ends, residency, the VP's state) at once. Keeping the
events is what makes it exact without a new same-instant rule: a chain planned without
them would have to guess the ids its later steps get, which decide ties with other
events of their nanosecond (bench/README.md, "Planned VTL entries").

A VTL0 delivery whose exit reaches the VP while the VTL1 exit is under way (under the
designs whose VTL1 delivery is an exit at once, the planes ones, the VTL0 timer of the
same instant: every fourth VTL0 expiry of the standard workload, whose timers share phase
0) joins the plan (``ENTRY_WITH_VTL0``): its exit queued behind VTL1's, as push_job
queues it, and its handler after the return, as two more phases.

Anything that touches the VP before the return has ended (an interrupt, a guest action, the
warm-up's snapshot, the run's end) goes through the entry points that settle a fused
delivery first (docs/contributing.md), and :meth:`PlannedEntries.settle_plan` then books
the steps already taken and leaves the VP exactly as the generic path would have at that
moment, with the generic handler on the event of the step under way. From there the
generic engine goes on.

Taken only when the chain is fixed (``Simulation.plan_ok``: two VTLs, fixed switch costs
that are not zero, no timeline, no host layer; and the VP's state,
:meth:`PlannedEntries._can_plan`). Under ``record.tables = "stream"`` or ``"summary"`` a
chain's rows are handed to the sink when it is booked, a few microseconds after the
generic path would (so a streamed file's rows, in the order they became final, may come
in another order; sorted by id, as results hold them, they are the same). The
differential tests check it against the generic path (fast path ``plan``), and
tests/test_planned.py builds its touches.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush

from ..record import (
    F_END,
    F_SERVICE,
    F_START,
    F_SWITCHED,
    F_VECTOR,
    R_INTERRUPT,
    R_RETURN,
    S_EXIT,
    SW_END,
)
from .clock import DONE, WORK_END, Call
from .work import W_COMPUTE, W_HANDLER, W_NONE

#: Plan VTL1 entries from VTL0 compute; switched off only by the differential tests.
PLAN = True

#: The phases of a chain, in the order they can come: the VTL1 interrupt's exit, a VTL0
#: timer's exit queued behind it, the switch into VTL1, its handler, the return, the VTL0
#: handler. Each phase's end is one event of the generic path.
P_EXIT1, P_EXIT0, P_SWITCH_IN, P_HANDLER1, P_RETURN, P_HANDLER0 = range(6)
ENTRY = (P_EXIT1, P_SWITCH_IN, P_HANDLER1, P_RETURN)
ENTRY_WITH_VTL0 = (P_EXIT1, P_EXIT0, P_SWITCH_IN, P_HANDLER1, P_RETURN, P_HANDLER0)


class PlannedEntries:
    """Mixin of :class:`~vsmsim.engine.vp.VP`: the planned VTL entry fast path."""

    __slots__ = ()

    def _can_plan(self, c1, irq: int) -> bool:
        """Whether the delivery of *irq* to context *c1* (VTL1), its exit about to start,
        runs the fixed chain: the VP in VTL0 background compute with nothing else under
        way, pending, queued or deferred in either VTL."""
        if (self.in_oh or self.oh_q or self.dispatching or self.halted or self.active
                or self.next_vtl or self.work != W_COMPUTE or self.latent or self.runnable != 1):
            return False
        c0 = self.ctxs[0]
        if (c0.handler >= 0 or c0.irr_mask or c0.deferred or c0.ret_req or c0.prog is not None
                or c0.task_rem >= 0 or not c0.compute or c0.vina_vector or c0.call_row >= 0
                or c0.prog_pending or c0.inflight):
            return False
        if (c1.inflight != 1 or c1.irr_mask or c1.joined or c1.handler >= 0 or c1.deferred
                or c1.ret_req or c1.prog is not None or c1.task_rem >= 0 or c1.compute
                or c1.idle_halt or c1.vina_vector or c1.served_row >= 0
                or c1.ret_event is not None or c1.call_row >= 0 or c1.prog_pending
                or c1.entered_irq):
            return False
        rows = self.sim.rec.rows
        return rows[irq + F_VECTOR] >> 4 > c1.tpr and rows[irq + F_SERVICE] > 0

    def _plan_start(self, ns: int, irq: int) -> None:
        """The receiver's exit of *ns* for *irq* starts now: what push_job does for it (the
        VP is idle of jobs), its end's event on the plan's Call."""
        env = self.env
        now = env.now
        self.seg_ctx.compute_ns += now - self.seg_start  # _stop_segment of compute
        self.work = W_NONE
        self.seg_ev_id = -1
        self.in_oh = True  # _start_job of the exit
        self.acc[self.acc_state] += now - self.acc_since
        self.acc_state = self.slot_exit
        self.acc_since = now
        self.job_fn = self.land
        self.job_arg = irq
        call = self.plan_call
        if call is None:
            call = self.plan_call = Call(self._plan_step)
        heappush(env.queue, (now + ns, DONE, next(env.ids), call))
        self.plan_k = 0
        self.plan_phases = ENTRY
        self.plan_ts = [now]
        self.plan_irq = irq
        # the entry points that settle a fused delivery settle the plan (fusion.settle)
        self.fuse_irq = irq
        self.fuse_lazy = True

    def _plan_can_join(self, c0, irq0: int) -> bool:
        """Whether a VTL0 delivery *irq0* whose exit reaches the VP now, while the plan's
        exit is under way, can join the plan: its exit queued behind the plan's (what
        push_job does), its handler to run after VTL1 returns (a timer of the same instant
        as VTL1's, mostly)."""
        if self.plan_k or self.plan_phases is not ENTRY or c0.inflight != 1 or c0.joined:
            return False
        rows = self.sim.rec.rows
        return rows[irq0 + F_VECTOR] >> 4 > c0.tpr and rows[irq0 + F_SERVICE] > 0

    def _plan_join(self, irq0: int, ns: int) -> None:
        """*irq0*'s exit of *ns* joins the plan (its caller has counted its path and its
        delivery in flight, as for push_job)."""
        self.plan_phases = ENTRY_WITH_VTL0
        self.plan_irq0 = irq0
        self.plan_x0 = ns

    def _plan_step(self, _) -> None:
        """A phase of the chain has ended (its event, in its generic place): start the next,
        as the generic path would, or book the whole chain after the last."""
        k = self.plan_k + 1
        env = self.env
        now = env.now
        self.plan_ts.append(now)
        phases = self.plan_phases
        if k == len(phases):
            self.plan_k = -1
            self.fuse_irq = -1
            self.fuse_lazy = False
            self._plan_done()
            return
        self.plan_k = k
        p = phases[k]
        sim = self.sim
        if p == P_SWITCH_IN or p == P_RETURN:  # VP.begin_switch
            reason = R_INTERRUPT if p == P_SWITCH_IN else R_RETURN
            path = sim.switch_paths[reason]
            sim.uses[path.code] += 1
            if p == P_SWITCH_IN:
                self.plan_sw_in = sim.rec.new_switch(self.idx, 0, 1, reason, now)
            else:
                self.plan_sw_out = sim.rec.new_switch(self.idx, 1, 0, reason, now)
            heappush(env.queue, (now + path.total, DONE, next(env.ids), self.plan_call))
        elif p == P_HANDLER1 or p == P_HANDLER0:  # VP._start_segment of the handler
            irq = self.plan_irq if p == P_HANDLER1 else self.plan_irq0
            eid = self.plan_seg_id = next(env.ids)
            heappush(env.queue, (now + sim.rec.rows[irq + F_SERVICE], WORK_END, eid,
                                 self.plan_call))
        else:  # P_EXIT0: the queued VTL0 exit (VP._dispatch_once, _start_job)
            heappush(env.queue, (now + self.plan_x0, DONE, next(env.ids), self.plan_call))

    def settle_plan(self) -> None:
        """Something touches the VP during its chain: book the phases that ended and leave
        the VP as the generic path would have it now; the phase under way ends generically."""
        k = self.plan_k
        self.plan_k = -1
        self.fuse_irq = -1
        self.fuse_lazy = False
        self._plan_book(k)
        self.plan_call = None  # it carries the generic phase's event now: a new one next time

    def _plan_done(self) -> None:
        """Set what the generic path has set by the end of an untouched chain, the VP back
        in VTL0 compute: what :meth:`_plan_book` does for all the phases, written out (the
        commonest case; the tests of touched and untouched chains check both)."""
        ts = self.plan_ts
        c0, c1 = self.ctxs
        rec = self.sim.rec
        rows = rec.rows
        acc = self.acc
        if self.plan_phases is ENTRY:
            t0, t_in, t2, t3, t4 = ts  # the switch in from t_in, the return from t3
            te = t4
        else:  # VTL0's exit queued from t1, its handler from t4 to te
            t0, _t1, t_in, t2, t3, t4, te = ts
            irq0 = self.plan_irq0
            c0.inflight -= 1
            rows[irq0 + F_START] = t4
            rows[irq0 + F_END] = te
            c0.h_rem = 0
        irq1 = self.plan_irq
        c1.inflight -= 1
        rows[irq1 + F_START] = t2
        rows[irq1 + F_SWITCHED] = 1
        rows[irq1 + F_END] = t3
        c1.h_rem = 0
        c0.entered_irq = False
        sw = rec.sw
        sw[self.plan_sw_in + SW_END] = t2
        sw[self.plan_sw_out + SW_END] = t4
        if rec.recycle:  # the rows are final: hand them out (VP._end_switch, _seg_end)
            rec.switch_done(self.plan_sw_in)
            rec.done(irq1)
            rec.switch_done(self.plan_sw_out)
            if self.plan_phases is not ENTRY:
                rec.done(self.plan_irq0)
        acc[self.slot_exit] += t_in - t0
        acc[self.slot_transition] += (t2 - t_in) + (t4 - t3)
        acc[1] += t3 - t2
        self.acc_state = 0  # VTL0 from the return's end (its handler, then compute)
        self.acc_since = t4
        self.in_oh = False
        self.work = W_COMPUTE
        self.seg_ctx = c0
        self.seg_start = te

    def _plan_book(self, k: int) -> None:
        """Set what the generic path has set once the first *k* phases of the chain have
        ended, *k* short of all of them (:meth:`_plan_done` for all)."""
        phases = self.plan_phases
        ts = self.plan_ts
        c0, c1 = self.ctxs
        rec = self.sim.rec
        rows = rec.rows
        acc = self.acc
        irq1 = self.plan_irq
        joined = phases is ENTRY_WITH_VTL0
        irq0 = self.plan_irq0 if joined else -1
        # What each phase that ended did at its end, and its residency.
        for i in range(k):
            p = phases[i]
            end = ts[i + 1]
            if p == P_EXIT1:
                c1.inflight -= 1  # VP.land
                acc[self.slot_exit] += end - ts[i]
            elif p == P_EXIT0:
                c0.inflight -= 1
                acc[self.slot_exit] += end - ts[i]
            elif p == P_SWITCH_IN:  # VP._end_switch, then _handler_started after an entry
                rec.sw[self.plan_sw_in + SW_END] = end
                if rec.recycle:
                    rec.switch_done(self.plan_sw_in)
                rows[irq1 + F_START] = end
                rows[irq1 + F_SWITCHED] = 1
                acc[self.slot_transition] += end - ts[i]
            elif p == P_HANDLER1:  # VP._seg_end
                rows[irq1 + F_END] = end
                if rec.recycle:
                    rec.done(irq1)
                c1.h_rem = 0
                acc[1] += end - ts[i]
            else:  # P_RETURN (VTL0's handler, the last phase, has not ended: k is short)
                rec.sw[self.plan_sw_out + SW_END] = end
                if rec.recycle:
                    rec.switch_done(self.plan_sw_out)
                c0.entered_irq = False
                if joined:
                    rows[irq0 + F_START] = end
                acc[self.slot_transition] += end - ts[i]
        # The IRRs: each interrupt pends from its exit's end until its handler starts.
        ended = phases[:k]
        if P_EXIT1 in ended and P_SWITCH_IN not in ended:
            vec = rows[irq1 + F_VECTOR]
            c1.irr_mask |= 1 << vec
            c1.irr_id[vec] = irq1
        if joined and P_EXIT0 in ended and P_RETURN not in ended:
            vec = rows[irq0 + F_VECTOR]
            c0.irr_mask |= 1 << vec
            c0.irr_id[vec] = irq0
        call = self.plan_call
        # The phase under way, as the generic path left the VP when it began.
        p = phases[k]
        start = ts[k]
        self.acc_state = (self.slot_exit if p <= P_EXIT0 else
                          self.slot_transition if p == P_SWITCH_IN or p == P_RETURN else
                          1 if p == P_HANDLER1 else 0)
        self.acc_since = start
        if p == P_EXIT1:  # the state of the start, and the VTL0 exit queued behind it
            if joined:
                q = self.oh_q
                if q == ():
                    q = self.oh_q = deque()
                q.append((self.plan_x0, S_EXIT, self.land, irq0))
            call.fn = self._job_end
        elif p == P_EXIT0:
            self.job_arg = irq0
            call.fn = self._job_end
        elif p == P_SWITCH_IN:
            self.next_vtl = 1
            self.job_fn = self._end_switch
            self.job_arg = (self.plan_sw_in, 1, R_INTERRUPT, -1, None)
            call.fn = self._job_end
        elif p == P_RETURN:
            self.active = 1
            self.seg_ctx = c1  # what the handler left (dead while no work runs)
            self.seg_start = ts[k - 1]
            self.job_fn = self._end_switch
            self.job_arg = (self.plan_sw_out, 0, R_RETURN, -1, None)
            call.fn = self._job_end
        else:  # a handler running: VTL1's after the entry, or VTL0's after the return
            if p == P_HANDLER1:
                c, irq = c1, irq1
                self.active = self.next_vtl = 1
                self.runnable = 3
                self.job_arg = (self.plan_sw_in, 1, R_INTERRUPT, -1, None)
            else:
                c, irq = c0, irq0
                self.job_arg = (self.plan_sw_out, 0, R_RETURN, -1, None)
            self.in_oh = False
            c.handler = irq
            c.h_rem = rows[irq + F_SERVICE]
            self.work = W_HANDLER
            self.seg_ctx = c
            self.seg_start = start
            self.seg_ev_id = self.plan_seg_id
            self.job_fn = self._end_switch
            call.fn = self._seg_end
