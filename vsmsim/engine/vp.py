"""Virtual processors as state machines, one execution context per VTL.

A VP is, at any instant, in exactly one of these states:

- running guest code of its *active* context (a handler, a task, background compute, or
  waiting zero time for a guest program to say what it does next);
- paying an overhead *job*: a VTL transition (switch path) or an exit (the VP's share of a
  send or delivery path); no guest code runs;
- halted: VTL0 has nothing to do and no higher VTL has a deliverable interrupt.

Preemption does not throw ``simpy.Interrupt``: the VP remembers when the current work
segment started and how much work was left; preempting it subtracts the elapsed time and
forgets the event id of its completion, so that the stale completion is ignored when it
fires.

Decision rules applied by :meth:`VP.dispatch` (docs/model.md sections 2 and 3), in order:

1. queued overhead jobs run first (the VP is trapped in the hypervisor);
2. the highest VTL above the active one with a deliverable interrupt (pending class above
   its TPR; RFLAGS.IF is irrelevant) is entered at once (rules 6, 7, 10);
3. in the active context: the handler in service runs to completion; else the highest
   pending class above the TPR starts a handler (FIFO within a class); else guest actions
   that waited for this context to run (IPI sends, VTL calls); else a return the
   guest program asked for; else the guest program's zero-time wait; else its task (a
   ``ctx.run`` or a VTL call's service); else background compute;
4. with nothing to run, a higher VTL returns to the next lower enabled VTL (TLFS
   HvCallVtlReturn) and VTL0 halts.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush

from ..designs import COUNTERS
from ..record import (
    F_END,
    F_ID,
    F_MERGED,
    F_SERVICE,
    F_START,
    F_SWITCHED,
    F_VECTOR,
    F_VTL,
    R_CALL,
    R_INTERCEPT,
    R_INTERRUPT,
    R_RETURN,
    S_COMPUTE,
    S_HALTED,
    S_HANDLER,
    S_TASK,
    S_TRANSITION,
    S_WAIT,
    SW_END,
)
from .clock import DONE, WORK_END, Call, at
from .fusion import FusedDeliveries
from .planned import PlannedEntries
from .work import (
    OFF_EXIT,
    OFF_IDLE,
    OFF_TRANSITION,
    RESIDENCY_EXTRA,
    W_COMPUTE,
    W_HANDLER,
    W_NONE,
    W_TASK,
    W_WAIT,
)

_W_STATE = (S_HALTED, S_HANDLER, S_TASK, S_COMPUTE, S_WAIT)
#: At a handler's end, go straight back to background compute when that is what dispatch
#: would do (VP._back_to_compute); switched off only by the differential test.
FAST_RESUME = True
C_COALESCED = COUNTERS.index("coalesced")


class Context:
    """The (vp, vtl) execution context: a local APIC, its work, and guest-program hooks."""

    __slots__ = ("vp", "vtl", "irr_id", "irr_mask", "tpr", "handler", "h_rem", "task_rem",
                 "task_done", "compute", "compute_ns", "task_ns", "deferred", "prog", "prog_pending",
                 "ret_req", "ret_event", "call_row", "call_waiter", "call_inbox",
                 "entered_irq", "vina_vector", "vina_auto", "vina_service", "vina_asserted", "call_event",
                 "served_row", "inflight", "joined", "idle_halt", "prog_done")

    def __init__(self, vp, vtl: int, tpr: int = 0):
        self.vp = vp
        self.vtl = vtl
        # The IRR: one bit per vector (bit v set: vector v pending), and the interrupt that
        # each pending vector stands for. A vector raised again while pending merges into it.
        self.irr_mask = 0
        self.irr_id = {}         # vector -> interrupt handle
        self.tpr = tpr           # task-priority class: classes <= tpr stay pending
        self.inflight = 0        # delivery paths toward this context not yet landed
        self.joined = []         # interrupts that joined the one in flight: pend with it
        self.idle_halt = False   # context.idle = "halt": with nothing to run, halt here
        self.prog_done = False   # its guest program has finished
        self.handler = -1        # interrupt id in service (runs to completion)
        self.h_rem = 0           # ns of handler work left
        self.task_rem = -1       # ns of task work left, -1 when there is no task
        self.task_done = None    # fn(ctx) called when the task completes
        self.compute = False     # endless background work of this VTL
        self.compute_ns = 0      # ns of background work completed
        self.task_ns = 0         # ns of task work completed (programs, VTL call services)
        # Queues start as the empty tuple and become a deque on first use (most contexts
        # never queue anything; an empty deque is ~600 bytes, x 3 per VP).
        self.deferred = ()       # guest actions (sends, calls) waiting for this context to run
        self.prog = None         # the guest program's api object, if any
        self.prog_pending = False  # the program resumes at this instant: wait for it
        self.ret_req = False     # the program asked for a VTL return
        self.ret_event = None
        self.call_row = -1       # this context's outstanding VTL call/intercept (its row)
        self.call_waiter = None  # program event waiting in next_call()
        self.call_inbox = ()
        self.served_row = -1     # the call/intercept this (higher) context is serving
        self.call_event = None   # program event resolved when this context's call returns
        self.entered_irq = False  # entered for an interrupt: next handler start 'switched'
        self.vina_vector = 0
        self.vina_auto = True
        self.vina_service = 0
        self.vina_asserted = False


class VP(FusedDeliveries, PlannedEntries):
    """One virtual processor: its contexts, the active VTL, and the dispatcher."""

    __slots__ = ("sim", "env", "idx", "ctxs", "nvtl", "active", "next_vtl", "halted", "in_oh",
                 "oh_q", "work", "seg_ctx", "seg_start", "seg_ev_id", "seg_call", "dispatching", "again",
                 "above",
                 "acc", "slot_transition", "slot_exit", "slot_idle", "acc_state", "acc_since", "tl", "tl_state", "tl_since", "tl_irq", "tl_vtl", "runnable", "latent",
                 "debug", "fuse_irq", "fuse_t1", "fuse_seq", "fuse_ctx", "fuse_lazy", "job_call", "job_fn",
                 "job_arg", "plan_k", "plan_call", "plan_phases", "plan_ts", "plan_irq",
                 "plan_irq0", "plan_x0", "plan_seg_id", "plan_sw_in", "plan_sw_out")

    def __init__(self, sim, idx: int, nvtl: int, tprs, timeline: bool, debug: bool):
        self.sim = sim
        self.env = sim.env
        self.idx = idx
        self.nvtl = nvtl
        self.ctxs = [Context(self, v, tprs[v]) for v in range(nvtl)]
        # above[v]: the contexts of the VTLs above v, highest first (what dispatch scans)
        self.above = [tuple(self.ctxs[u] for u in range(nvtl - 1, v, -1)) for v in range(nvtl)]
        self.active = 0          # rule 3: a VP starts in VTL0
        self.next_vtl = 0        # the VTL the VP is in, or switching to
        self.halted = True       # nothing runs until dispatch finds work
        self.in_oh = False       # an overhead job (transition or exit) is in progress
        self.oh_q = ()           # queued jobs: (ns, state, fn, arg); a deque once used
        self.work = W_NONE       # what the current guest segment is
        self.seg_ctx = None
        self.seg_start = 0
        # The event id of the live completion of the current handler or task segment (or
        # fused delivery), -1 if none. A preempted segment's completion stays in the heap
        # and is recognised as stale by its id, so one Call object serves them all.
        self.seg_ev_id = -1
        self.seg_call = Call(self._seg_end)
        self.dispatching = False
        self.again = False
        # residency accumulators (ns): one per VTL, then engine.work.RESIDENCY_EXTRA
        self.acc = [0] * (nvtl + len(RESIDENCY_EXTRA))
        self.slot_transition = nvtl + OFF_TRANSITION
        self.slot_exit = nvtl + OFF_EXIT
        self.slot_idle = nvtl + OFF_IDLE
        self.acc_state = self.slot_idle
        self.acc_since = 0
        self.tl = timeline
        self.tl_state = S_HALTED
        self.tl_since = 0
        self.tl_irq = -1
        self.tl_vtl = 0
        self.debug = debug
        # Bit v set: VTL v is runnable, entered and not yet returned from (VTL0 always is).
        # A return goes to the highest runnable VTL below (OpenVMM vtl_return / run loop).
        self.runnable = 1
        # Interrupts that notified nothing (design capability latent_inactive): taken when
        # the VP next exits or switches. [(irq, timer, send_code)]
        self.latent = []
        self.fuse_irq = -1       # a delivery exit fused with its handler (engine.fusion)
        self.fuse_t1 = 0
        self.fuse_seq = 0
        self.fuse_ctx = None
        self.fuse_lazy = False   # its handler's end is not scheduled: settled when touched
        self.job_call = Call(self._job_end)
        self.job_fn = None
        self.job_arg = None
        # A planned VTL entry (engine/planned.py): steps ended so far, -1 if none under way
        self.plan_k = -1
        self.plan_call = None    # the Call of its phases' events, made at the first plan
        self.plan_phases = ()
        self.plan_ts = ()        # when each phase began, then when the last one ended (ns)
        self.plan_irq = self.plan_irq0 = -1
        self.plan_x0 = 0
        self.plan_seg_id = -1
        self.plan_sw_in = self.plan_sw_out = -1

    # ------------------------------------------------------------ accounting
    def _account(self, state: int, now: int) -> None:
        self.acc[self.acc_state] += now - self.acc_since
        self.acc_state = state
        self.acc_since = now

    def _timeline(self, state: int, now: int, irq: int = -1) -> None:
        # A segment carries the VTL active when it began: for a transition, the VTL left.
        if self.tl_since < now:
            self.sim.rec.segment(self.idx, self.tl_state, self.tl_vtl, self.tl_since, now,
                                 self.tl_irq)
        self.tl_state = state
        self.tl_since = now
        self.tl_irq = self.sim.rec.rows[irq + F_ID] if irq >= 0 else -1  # the id: slots recycle
        self.tl_vtl = self.active

    def finish(self, now: int) -> None:
        """Close the books at the end of the run (ns)."""
        if self.fuse_irq >= 0:
            self.settle(now)
        if self.work:
            self._stop_segment(now)
        self._account(self.acc_state, now)
        if self.tl:
            self._timeline(self.tl_state, now)

    # ------------------------------------------------------------ jobs
    def push_job(self, ns: int, state: int, fn, arg) -> None:
        """Queue *ns* of overhead on this VP (exit or transition); then ``fn(arg)``."""
        if self.fuse_irq >= 0:
            self.settle(self.env.now)
        if self.in_oh or self.oh_q or self.dispatching:
            q = self.oh_q
            if q == ():
                q = self.oh_q = deque()
            q.append((ns, state, fn, arg))
            self.dispatch()
        else:
            # Nothing queued ahead of it: start it now (what dispatch would do, cheaper).
            now = self.env.now
            if self.work:
                self._stop_segment(now)
            self._start_job(ns, state, fn, arg, now)

    def _start_job(self, ns, state, fn, arg, now):
        self.in_oh = True
        self.halted = False
        acc_state = self.slot_transition if state == S_TRANSITION else self.slot_exit
        self.acc[self.acc_state] += now - self.acc_since
        self.acc_state = acc_state
        self.acc_since = now
        if self.tl:
            self._timeline(state, now)
        # Through _schedule_job_end, not inlined: the host layer's HostedVP overrides it.
        self._schedule_job_end(now + ns, fn, arg, next(self.env.ids))
        if self.latent:
            self.sim.surface(self)

    def _schedule_job_end(self, when, fn, arg, eid):
        # A VP has at most one job in flight, so one Call object serves all its job ends.
        self.job_fn = fn
        self.job_arg = arg
        heappush(self.env.queue, (when, DONE, eid, self.job_call))

    def _job_end(self, _):
        self.in_oh = False
        fn, arg = self.job_fn, self.job_arg
        # fn usually changes state and would dispatch; hold that and dispatch once after.
        self.dispatching = True
        fn(arg)
        self.dispatching = False
        self.dispatch()

    # ------------------------------------------------------------ segments
    def _stop_segment(self, now: int) -> None:
        w = self.work
        if w == W_NONE:
            return
        c = self.seg_ctx
        el = now - self.seg_start
        if w == W_HANDLER:
            c.h_rem -= el
        elif w == W_TASK:
            c.task_rem -= el
            c.task_ns += el
        elif w == W_COMPUTE:
            c.compute_ns += el
        if self.debug:
            assert c.h_rem >= 0 and (c.task_rem >= 0 or c.task_rem == -1), "negative remaining work"
        self.work = W_NONE
        self.seg_ev_id = -1

    def _start_segment(self, c: Context, w: int, rem: int, now: int) -> None:
        if self.debug:
            assert not self.in_oh and c.vtl == self.active == self.next_vtl
            assert rem >= 0
        if self.acc_state != c.vtl:
            self._account(c.vtl, now)
        self.halted = False
        self.work = w
        self.seg_ctx = c
        self.seg_start = now
        if self.tl:
            self._timeline(_W_STATE[w], now, c.handler if w == W_HANDLER else -1)
        if w == W_HANDLER or w == W_TASK:
            env = self.env
            eid = self.seg_ev_id = next(env.ids)
            heappush(env.queue, (now + rem, WORK_END, eid, self.seg_call))
        else:
            self.seg_ev_id = -1

    def _seg_end(self, _) -> None:
        if self.env.cur_id != self.seg_ev_id:
            return  # preempted: this completion is stale
        now = self.env.now
        if self.fuse_irq >= 0:
            # A fused delivery ran undisturbed: its exit, then its whole handler.
            c = self.fused_end(now)
            # What dispatch would do next, in its commonest case: back to this VTL's
            # background work. Anything else goes through dispatch (and the differential
            # test checks this shortcut against it).
            if not self._back_to_compute(c, now):
                self.dispatch()
            return
        c = self.seg_ctx
        w = self.work
        self.work = W_NONE
        self.seg_ev_id = -1
        if w == W_HANDLER:
            c.h_rem = 0
            irq = c.handler
            c.handler = -1
            rec = self.sim.rec
            rec.rows[irq + F_END] = now
            if rec.recycle:
                rec.done(irq)
            if self.fuse_irq < 0 and self._back_to_compute(c, now):
                return
        else:
            c.task_ns += c.task_rem
            c.task_rem = -1
            done, c.task_done = c.task_done, None
            if done is not None:
                self.dispatching = True
                done(c)
                self.dispatching = False
        self.dispatch()

    def _back_to_compute(self, c: Context, now: int) -> bool:
        """At a handler's end in context *c*: if what dispatch would do next is to go back to
        *c*'s background compute (its commonest answer), do that and return True; else
        change nothing and return False. The differential tests check this shortcut against
        dispatch (``FAST_RESUME``)."""
        if not (FAST_RESUME and c.compute and c.vtl == self.active == self.next_vtl
                and not self.in_oh and self._only_compute_next(c)):
            return False
        if self.acc_state != c.vtl:
            self._account(c.vtl, now)
        self.work = W_COMPUTE
        self.seg_ctx = c
        self.seg_start = now
        if self.tl:
            self._timeline(S_COMPUTE, now)
        return True

    def _only_compute_next(self, c: Context) -> bool:
        """Whether dispatch, once a handler in the running context *c* has ended, would only
        send the VP back to *c*'s background compute: nothing pending, queued or due in *c*
        or above it. Shared by :meth:`_back_to_compute` and the lazy ends (engine/fusion.py),
        which must decide alike."""
        if not (c.compute and not self.oh_q and not c.irr_mask and not c.deferred
                and not c.ret_req and not c.prog_pending and c.task_rem < 0):
            return False
        for h in self.above[c.vtl]:
            m = h.irr_mask
            if m and h.handler < 0 and (m.bit_length() - 1) >> 4 > h.tpr:
                return False
        return True

    # ------------------------------------------------------------ dispatch
    def dispatch(self) -> None:
        """Re-evaluate what this VP does now (see the module docstring for the rules)."""
        if self.fuse_irq >= 0:
            self.settle(self.env.now)
        if self.dispatching:
            self.again = True
            return
        # No try/finally: an exception here ends the run, and the VP with it.
        self.dispatching = True
        self._dispatch_once()
        while self.again:
            self.again = False
            self._dispatch_once()
        self.dispatching = False

    def _dispatch_once(self) -> None:
        if self.in_oh:
            return
        now = self.env.now
        if self.oh_q:
            if self.work:
                self._stop_segment(now)
            ns, state, fn, arg = self.oh_q.popleft()
            self._start_job(ns, state, fn, arg, now)
            return
        act = self.active
        for h in self.above[act]:
            m = h.irr_mask  # deliverable: highest vector's class above TPR, none in service
            if m and h.handler < 0 and (m.bit_length() - 1) >> 4 > h.tpr:
                if self.work:
                    self._stop_segment(now)
                self.begin_switch(h.vtl, R_INTERRUPT, -1)
                return
        c = self.ctxs[act]
        if c.handler >= 0:
            if self.work != W_HANDLER or self.seg_ctx is not c:
                if self.work:
                    self._stop_segment(now)
                self._start_segment(c, W_HANDLER, c.h_rem, now)
            return
        m = c.irr_mask
        if m and (m.bit_length() - 1) >> 4 > c.tpr:
            if self.work:
                self._stop_segment(now)
            vec = m.bit_length() - 1  # the highest pending vector (PPR = TPR: none in service)
            c.irr_mask = m ^ (1 << vec)
            irq = c.irr_id.pop(vec)
            self._handler_started(c, irq, now)
            self._start_segment(c, W_HANDLER, c.h_rem, now)
            return
        if c.deferred:
            if self.work:
                self._stop_segment(now)
            # A guest action (IPI send, VTL call) issued while this context could not run;
            # pending interrupts were taken first, as the guest has interrupts enabled.
            fn, arg = c.deferred.popleft()
            fn(arg)
            self.again = True
            return
        if c.ret_req and act > 0:
            if self.work:
                self._stop_segment(now)
            self.begin_switch(self.return_target(), R_RETURN, -1)
            return
        if c.prog_pending:
            if self.work != W_WAIT or self.seg_ctx is not c:
                if self.work:
                    self._stop_segment(now)
                self._start_segment(c, W_WAIT, 0, now)
            return
        if c.task_rem >= 0:
            if self.work != W_TASK or self.seg_ctx is not c:
                if self.work:
                    self._stop_segment(now)
                self._start_segment(c, W_TASK, c.task_rem, now)
            return
        if c.compute:
            if self.work != W_COMPUTE or self.seg_ctx is not c:
                if self.work:
                    self._stop_segment(now)
                self._start_segment(c, W_COMPUTE, 0, now)
            return
        if self.work:
            self._stop_segment(now)
        # Nothing to run. A higher VTL leaves only by a VTL return (rule 5): built-in handler
        # work returns when done (a secure kernel's idle loop), unless its context is set to
        # halt; a guest program that waits on anything but next_call() halts in its VTL.
        if act > 0 and not c.idle_halt and (c.prog is None or c.call_waiter is not None
                                            or c.prog_done):
            self.begin_switch(self.return_target(), R_RETURN, -1)
            return
        if not self.halted:
            self.halted = True
            self._account(self.slot_idle, now)
            if self.tl:
                self._timeline(S_HALTED, now)

    def return_target(self) -> int:
        """The VTL a return from the active VTL goes to: the highest one below it that is
        runnable, i.e. entered and not returned from, or with a deliverable interrupt
        (OpenVMM ``vtl_return`` clears the returning VTL; its run loop then runs the highest
        runnable VTL, ``process_apic`` making VTLs with pending interrupts runnable)."""
        runnable, ctxs = self.runnable, self.ctxs
        for v in range(self.active - 1, 0, -1):
            if runnable >> v & 1:
                return v
            h = ctxs[v]
            m = h.irr_mask
            if m and h.handler < 0 and (m.bit_length() - 1) >> 4 > h.tpr:
                return v
        return 0

    def _handler_started(self, c: Context, irq: int, t: int) -> None:
        """Interrupt *irq* is now in service in context *c*, since time *t* (ns)."""
        rows = self.sim.rec.rows
        rows[irq + F_START] = t
        if c.entered_irq:  # the first handler after an entry for an interrupt
            rows[irq + F_SWITCHED] = 1
            c.entered_irq = False
        c.handler = irq
        c.h_rem = rows[irq + F_SERVICE]

    # ------------------------------------------------------------ VTL switches
    def begin_switch(self, to: int, reason: int, row: int) -> None:
        """Start a VTL transition from the active VTL to *to* (switch path of the design).

        *row* is the interrupt-table row of the VTL call or intercept that causes it (-1
        otherwise). The caller must have stopped the current segment.
        """
        frm = self.active
        if self.debug:
            # Rule 5: only a return goes down; nothing preempts a higher VTL from below.
            assert (to < frm) if reason == R_RETURN else (to > frm), (frm, to, reason)
        sim = self.sim
        now = self.env.now
        self.next_vtl = to
        self.halted = False
        ret_event = None
        if reason == R_RETURN:
            self.runnable &= ~(1 << frm)
            leaving = self.ctxs[frm]
            if leaving.served_row >= 0:
                sim.finish_service(leaving)
            leaving.ret_req = False
            if leaving.ret_event is not None:
                ret_event, leaving.ret_event = leaving.ret_event, None
                leaving.prog_pending = True
        path = sim.switch_paths[reason]
        sim.uses[path.code] += 1
        sw = sim.rec.new_switch(self.idx, frm, to, reason, now)
        ns = path.total
        if ns < 0:  # sampled costs: this traversal's
            ns = 0
            for _vp, d in path.segments():
                ns += d
        arg = (sw, to, reason, row, ret_event)
        if ns == 0 and not self._handoff_needed(to):
            # A switch that costs nothing ends now. What it sets off (latent interrupts
            # taken at it, a VINA raised on entry, a zero-cost delivery landing) must not
            # dispatch the VP before the switch has ended: hold dispatch until then.
            held, self.dispatching = self.dispatching, True
            if self.latent:  # a switch is an exit too (see _start_job)
                sim.surface(self)
            self._end_switch(arg)
            self.dispatching = held
            self.again = True
            return
        self._start_job(ns, S_TRANSITION, self._end_switch, arg, now)

    def _handoff_needed(self, to: int) -> bool:
        """Whether a switch to *to* changes host threads (a hosted VP's; asked only of a
        switch that costs nothing, which then still takes the hand-off)."""
        return False

    def _end_switch(self, arg) -> None:
        sw, to, reason, row, ret_event = arg
        sim = self.sim
        now = self.env.now
        rec = sim.rec
        rec.sw[sw + SW_END] = now
        if rec.recycle:
            rec.switch_done(sw)
        self.active = to
        c = self.ctxs[to]
        if reason != R_RETURN:
            self.runnable |= 1 << to
        if c.vina_vector:
            if c.vina_auto:
                c.vina_asserted = False  # AutoReset: cleared on entry
            if not c.vina_asserted:
                # A lower VTL's interrupt already deliverable when this VTL is entered
                # (OpenHCL cvm_handle_cross_vtl_interrupts runs on every entry too).
                for v in range(to - 1, -1, -1):
                    lc = self.ctxs[v]
                    m = lc.irr_mask
                    if m and lc.handler < 0 and (m.bit_length() - 1) >> 4 > lc.tpr:
                        c.vina_asserted = True
                        sim.raise_vina(self, c, v)
                        break
        if reason == R_INTERRUPT:
            c.entered_irq = True
        elif reason == R_RETURN:
            c.entered_irq = False
            if c.call_row >= 0:
                sim.call_returned(c)
            if ret_event is not None:
                ret_event.succeed()  # the program that returned goes on (its VTL is inactive)
        elif reason == R_CALL or reason == R_INTERCEPT:
            sim.call_entered(c, row)

    # ------------------------------------------------------------ interrupts
    def pend(self, irq: int) -> None:
        """Make interrupt *irq* pending in its context's IRR and re-dispatch."""
        self._irr_put(self.ctxs[self.sim.rec.rows[irq + F_VTL]], irq)
        self.dispatch()

    def land(self, irq: int) -> None:
        """The delivery path of *irq* has ended: it pends, with any that joined it."""
        rows = self.sim.rec.rows
        c = self.ctxs[rows[irq + F_VTL]]
        c.inflight -= 1
        vec = rows[irq + F_VECTOR]
        bit = 1 << vec
        if c.irr_mask & bit or c.vtl < self.next_vtl:
            self._irr_put(c, irq)  # merges, or may raise VINA
        else:  # the common case, inlined: a new vector for the running or a higher VTL
            c.irr_mask |= bit
            c.irr_id[vec] = irq
        if c.joined:
            for j in c.joined:
                self._irr_put(c, j)
            c.joined = []
        self.dispatch()

    def _irr_put(self, c: Context, irq: int) -> None:
        """Set *irq*'s vector in the IRR of *c*, or merge it into the one already pending."""
        sim = self.sim
        rows = sim.rec.rows
        vec = rows[irq + F_VECTOR]
        bit = 1 << vec
        if c.irr_mask & bit:
            rows[irq + F_MERGED] = rows[c.irr_id[vec] + F_ID]
            sim.counters[C_COALESCED] += 1
            if sim.rec.recycle:
                sim.rec.done(irq)  # a merged interrupt is final
            return
        c.irr_mask |= bit
        c.irr_id[vec] = irq
        # VINA (rule 9): only for an interrupt the lower VTL could take now (class above
        # its TPR, no handler in service: OpenHCL is_interrupt_pending(check_rflags)),
        # and only for the VTL that runs: a VP still switching into a higher VTL checks
        # the lower VTLs when the entry completes (VP._end_switch).
        # While a switch into a higher VTL is under way, its entry checks instead.
        if c.vtl < self.next_vtl == self.active and vec >> 4 > c.tpr and c.handler < 0:
            h = self.ctxs[self.next_vtl]
            if h.vina_vector and not h.vina_asserted:
                h.vina_asserted = True
                sim.raise_vina(self, h, c.vtl)

    def act(self, c: Context, fn, arg) -> None:
        """Perform guest action ``fn(arg)`` of context *c* now, or when *c* next runs.

        The context can act when it is the active one and the VP is not trapped in an
        overhead job. A halted VP acts at once: an arrival on it stands for guest code that
        became runnable (the model charges no wake-up for that; see docs/limits.md).
        """
        if self.fuse_irq >= 0:
            self.settle(self.env.now)
        if not self.in_oh and self.active == c.vtl and self.next_vtl == c.vtl and not c.deferred:
            fn(arg)
            self.dispatch()
        else:
            self._defer(c, fn, arg)

    def _defer(self, c: Context, fn, arg) -> None:
        """Keep guest action ``fn(arg)`` of context *c* until *c* runs (dispatch takes it)."""
        self.sim.deferred_actions += 1
        q = c.deferred
        if q == ():
            q = c.deferred = deque()
        q.append((fn, arg))


__all__ = ["VP", "Context", "at"]
