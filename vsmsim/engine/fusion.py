"""Fused deliveries: a receiver's exit and the handler it starts, as one event.

The commonest pair of events is "the receiving vCPU exits to take an interrupt" (an
overhead job) followed at once by "its handler starts". When nothing else can happen
on the VP in between, the pair is fused: one completion event at the handler's end
instead of two. Anything that touches the VP before the handler would have started
splits the pair again (the job's end is scheduled with the event id it would have had),
so a fused run is event-for-event the same as an unfused one.

Measured on the standard workload (bench/): it removes a quarter of the SimPy events; the
differential test (tests/test_engine_equivalence.py) checks that fused and unfused runs
give the same tables row for row.

Lazy ends (``LAZY_END``, the fast path ``lazy``): when the handler's end would only send
the VP back to its background compute (what ``VP._back_to_compute`` does: nothing else
pending, queued or due then, which cannot change without touching the VP), its end is
not scheduled at all. The VP stays in the fused state until something touches it (the
next expiry of its timer, mostly) or the run ends, and :meth:`FusedDeliveries.settle`
then books the handler's end and the compute since, at the time and in the same-instant
order the scheduled end would have had (its event id is drawn all the same). That saves
the event and, with many VPs whose timers share an instant, a walk over all of them.
"""

from __future__ import annotations

from heapq import heappush

from ..record import F_END, F_SERVICE, F_START, F_SWITCHED, F_VECTOR, S_EXIT, S_HANDLER
from .clock import DONE, WORK_END, push
from .work import W_COMPUTE, W_HANDLER, W_NONE

LAZY_END = True


class FusedDeliveries:
    """Mixin of :class:`~vsmsim.engine.vp.VP`: the fused exit-then-handler fast path."""

    __slots__ = ()

    def exit_then_pend(self, ns: int, irq: int, c) -> None:
        """Deliver *irq* to context *c* after *ns* of receiver exit: a job, fused with the
        handler if possible."""
        if c.vtl > self.active and self.sim.plan_ok:
            # a higher VTL's interrupt: its whole entry planned if fixed (engine/planned.py)
            if self.fuse_irq >= 0:
                self.settle(self.env.now)  # what push_job does first
            if self._can_plan(c, irq):
                self._plan_start(ns, irq)
                return
        if self.in_oh or self.oh_q or self.dispatching or self.halted:
            if self.plan_k == 0 and c.vtl == 0 and self._plan_can_join(c, irq):
                self._plan_join(irq, ns)  # queued behind a planned entry's exit
                return
            self.push_job(ns, S_EXIT, self.land, irq)
            return
        rows = self.sim.rec.rows
        vtl = c.vtl
        if (vtl != self.active or self.next_vtl != vtl or c.handler >= 0 or c.deferred
                or c.joined  # others joined it on the way: they pend when it lands (land)
                or rows[irq + F_VECTOR] >> 4 <= c.tpr
                # a handler of no time would end at the exit's end, ahead of events that
                # the unfused run processes before that exit end (clock.WORK_END)
                or not rows[irq + F_SERVICE]):
            self.push_job(ns, S_EXIT, self.land, irq)
            return
        env = self.env
        now = env.now
        w = self.work
        if w == W_COMPUTE:  # the commonest: _stop_segment of background work, inlined
            self.seg_ctx.compute_ns += now - self.seg_start
            self.work = W_NONE
            self.seg_ev_id = -1
        elif w:
            self._stop_segment(now)
        self.in_oh = True
        self.acc[self.acc_state] += now - self.acc_since  # _account, inlined
        self.acc_state = self.slot_exit
        self.acc_since = now
        if self.tl:
            self._timeline(S_EXIT, now)
        t1 = now + ns
        self.fuse_irq = irq
        self.fuse_t1 = t1
        self.fuse_ctx = c
        self.fuse_seq = next(env.ids)  # the id the unfused job end would have had
        eid = self.seg_ev_id = next(env.ids)
        # Lazy end: the handler's end would only send the VP back to compute (none of the
        # tests can change before the VP is touched again).
        if LAZY_END and not self.tl and not self.sim.rec.recycle and self._only_compute_next(c):
            self.fuse_lazy = True
        else:
            heappush(env.queue, (t1 + rows[irq + F_SERVICE], WORK_END, eid, self.seg_call))
        if self.latent:  # an exit: latent interrupts are taken now (VP._start_job)
            self.sim.surface(self)

    def fused_end(self, te: int):
        """Book a fused delivery that ran undisturbed, its handler ending at *te* (ns); return
        its context. The caller decides what the VP does next."""
        irq = self.fuse_irq
        self.fuse_irq = -1
        c = self.fuse_ctx
        c.inflight -= 1
        t1 = self.fuse_t1
        self.in_oh = False
        self.acc[self.acc_state] += t1 - self.acc_since
        self.acc[c.vtl] += te - t1
        self.acc_state = c.vtl
        self.acc_since = te
        rec = self.sim.rec
        rows = rec.rows
        rows[irq + F_START] = t1
        rows[irq + F_END] = te
        if c.entered_irq:
            rows[irq + F_SWITCHED] = 1
            c.entered_irq = False
        if self.tl:
            self._timeline(S_HANDLER, t1, irq)
            self.tl_vtl = c.vtl
        if rec.recycle:
            rec.done(irq)
        self.seg_ev_id = -1
        return c

    def settle(self, now: int) -> None:
        """Resolve a fused delivery before the VP is looked at, at time *now* (ns)."""
        if self.plan_k >= 0:  # a planned VTL entry under way (engine/planned.py)
            self.settle_plan()
            return
        t1 = self.fuse_t1
        env = self.env
        lazy, self.fuse_lazy = self.fuse_lazy, False
        if now < t1 or (now == t1 and (env.cur_prio, env.cur_id) < (DONE, self.fuse_seq)):
            # Something happens before the handler would start: back to an ordinary job.
            irq = self.fuse_irq
            self.fuse_irq = -1
            self.seg_ev_id = -1  # the fused completion is stale now
            self._schedule_job_end(t1, self.land, irq, self.fuse_seq)
            return
        irq = self.fuse_irq
        if lazy:
            te = t1 + self.sim.rec.rows[irq + F_SERVICE]
            eid = self.seg_ev_id
            if now > te or (now == te and (WORK_END, eid) < (env.cur_prio, env.cur_id)):
                # Its end came first: what _seg_end and _back_to_compute did at te (set
                # here, not through _back_to_compute: the VP's state is that of te, but what
                # touches it now may already have changed a context, land's IRR say).
                c = self.fused_end(te)
                self.work = W_COMPUTE
                self.seg_ctx = c
                self.seg_start = te
                return
            push(env, te, eid, self.seg_call, WORK_END)  # the end it stands for, now due
        # The handler started at t1 and has been running since.
        self.fuse_irq = -1
        c = self.fuse_ctx
        c.inflight -= 1  # the delivery landed at t1
        self.in_oh = False
        self._account(c.vtl, t1)
        self._handler_started(c, irq, t1)
        self.work = W_HANDLER
        self.seg_ctx = c
        self.seg_start = t1
        if self.tl:
            self._timeline(S_HANDLER, t1, irq)
