"""VPs on host threads: a VP runs only while the thread it is on holds a physical CPU.

:class:`HostedVP` is the :class:`~vsmsim.engine.vp.VP` of a run with a ``[host]``
section (a run without one uses the plain VP, so the host layer costs it nothing). It
adds four things, each at the one place where a VP starts something:

- *waiting*: a job (exit, transition) or guest code that starts while the VP's thread is
  off the CPU waits until the host scheduler runs the thread (:meth:`on_run`); guest
  code that waits is "steal" in the residency and the timeline;
- *preemption*: the host takes the CPU from a running VP (:meth:`on_preempt`): its guest
  segment stops, or its job's remaining time is kept, and resumes when the thread runs;
- *halting*: a VP that halts gives its thread to :meth:`Host.halt` (halt-polling, sleep);
- *hand-offs*: in a design with a thread per VTL, a VTL switch runs its steps up to the
  design's ``handoff`` step on the old thread, then the old thread wakes the new one and
  sleeps, and the rest runs on the new thread once the host runs it. The hand-off step's
  table cost is the wake-up's latency when the new thread is on another CPU; on the same
  CPU the host's context switch replaces it.

Nothing is fused (VP.exit_then_pend becomes the plain job) so that a preempted VP only
ever has one job or one guest segment to put aside. Times in ns.
"""

from __future__ import annotations

from ..host.machine import BLOCKED, RUNNABLE, RUNNING
from ..record import F_SERVICE, F_START, S_EXIT, S_STEAL, S_TRANSITION
from .clock import Call, at
from .vp import VP
from .work import W_HANDLER


def _stale(_):
    pass


class HostedVP(VP):
    """A VP whose progress needs its current host thread on a CPU (module docstring)."""

    __slots__ = ("host", "threads", "thread", "per_vtl", "oncpu", "waiting", "job_rem",
                 "job_t", "job_state", "end_id", "late_irq", "slot_steal")

    def __init__(self, sim, idx, nvtl, tprs, timeline, debug, host, threads, per_vtl):
        super().__init__(sim, idx, nvtl, tprs, timeline, debug)
        self.acc.append(0)  # one more residency slot: steal
        self.slot_steal = len(self.acc) - 1
        self.host = host
        self.threads = threads        # per VTL: the thread that runs it
        self.per_vtl = per_vtl
        self.thread = threads[0]
        self.thread.client = self
        self.oncpu = False            # the current thread executes (or halt-polls)
        self.waiting = False          # the VP wants its thread on a CPU and waits for it
        self.job_rem = -1             # ns of a job put aside while off the CPU, -1: none
        self.job_t = 0                # when the scheduled job ends
        self.job_state = S_EXIT       # the job's timeline state (S_EXIT or S_TRANSITION)
        self.end_id = -1        # a switch's end keeps the event id it would have had
        self.late_irq = -1            # a handler chosen while off the CPU: starts at on_run

    # ------------------------------------------------------------ the host's callbacks
    def on_enqueued(self, now: int) -> None:
        """The thread is in a run queue (its wake-up arrived): from now the VP's waiting is
        steal, whatever it waits to do."""
        if self.waiting and self.acc_state != self.slot_steal:
            self._account(self.slot_steal, now)
            if self.tl:
                self._timeline(S_STEAL, now)

    def on_run(self, now: int) -> None:
        """The thread executes from *now*: resume what was put aside."""
        self.oncpu = True
        self.waiting = False
        if self.in_oh and self.job_rem >= 0:
            st = self.job_state
            slot = self.slot_transition if st == S_TRANSITION else self.slot_exit
            if self.acc_state != slot:
                self._account(slot, now)
                if self.tl:
                    self._timeline(st, now)
            rem, self.job_rem = self.job_rem, -1
            eid = self.end_id
            if eid >= 0 and self.job_fn == self._end_switch:
                self.end_id = -1
            else:
                eid = next(self.env.ids)
            self._schedule_job_end(now + rem, self.job_fn, self.job_arg, eid)
            return
        self.dispatch()

    def on_preempt(self, now: int) -> None:
        """The host took the CPU: put the job or the guest segment aside."""
        self.oncpu = False
        self.waiting = True
        if self.in_oh:
            if self.job_rem < 0:  # its end is scheduled: take it back
                self.job_rem = self.job_t - now
                self.job_call.fn = _stale
                self.job_call = Call(self._job_end)
        elif self.work:
            self._stop_segment(now)
        self._account(self.slot_steal, now)
        if self.tl:
            self._timeline(S_STEAL, now)

    def on_sleep(self, now: int) -> None:
        """The halt-polling window ended: the thread sleeps."""
        self.oncpu = False

    def _need_cpu(self) -> None:
        if not self.waiting and not self.oncpu:
            self.waiting = True
            self.host.wake(self.thread)  # may run it at once (an idle CPU, no switch cost)

    # ------------------------------------------------------------ the VP's gates
    def _begin_job(self, ns, state, fn, arg, now):
        self.job_state = state
        VP._start_job(self, ns, state, fn, arg, now)

    def _schedule_job_end(self, when, fn, arg, eid):
        self.job_t = when
        VP._schedule_job_end(self, when, fn, arg, eid)

    def _start_job(self, ns, state, fn, arg, now):
        if state == S_TRANSITION and self.per_vtl and fn == self._end_switch:
            new = self.threads[arg[1]]
            if new is not self.thread:
                pre, hand, post = self.sim.handoff_split(arg[2], ns)
                self.end_id = next(self.env.ids)
                self._job_on_thread(pre, state, self._handoff, (new, hand, post, arg), now)
                return
        self._job_on_thread(ns, state, fn, arg, now)

    def _job_on_thread(self, ns, state, fn, arg, now):
        if self.oncpu:
            if self.thread.polling:
                self.host.unpoll(self.thread)
            self._begin_job(ns, state, fn, arg, now)
            return
        self.job_state = state
        self.in_oh = True
        self.halted = False
        if self.waiting and self.thread.state >= RUNNABLE:  # queued already: steal
            if self.acc_state != self.slot_steal:
                self._account(self.slot_steal, now)
                if self.tl:
                    self._timeline(S_STEAL, now)
        else:
            self._account(self.slot_transition if state == S_TRANSITION else self.slot_exit, now)
            if self.tl:
                self._timeline(state, now)
        self.job_fn, self.job_arg, self.job_rem = fn, arg, ns
        self._need_cpu()
        if self.latent:
            self.sim.surface(self)

    def _handoff_needed(self, to: int) -> bool:
        return self.per_vtl and self.threads[to] is not self.thread

    def _handoff(self, x) -> None:
        """The switch reached its hand-off: the new VTL's thread takes over the VP."""
        new, hand, post, arg = x
        old = self.thread
        old.client = None
        self.thread = new
        self.oncpu = False
        self.waiting = True
        self.in_oh = True
        self.job_fn, self.job_arg, self.job_rem = self._end_switch, arg, post
        self.job_state = S_TRANSITION
        if new.state != BLOCKED and hand > 0:
            # The new thread is awake (an errand of a delivery): the hand-off still takes its
            # latency before the new thread serves this VP; then it does so when its
            # errand is done (or at once, if it slept again meanwhile).
            self.host.block(old)
            at(self.env, hand, self._claim, new)
            return
        new.client = self
        self.host.handoff(old, new, hand)

    def _claim(self, new) -> None:
        new.client = self
        if new.state == BLOCKED:
            self.host.wake(new)
        elif new.state == RUNNING and new.errand is None:
            self.on_run(self.env.now)

    def _start_segment(self, c, w, rem, now):
        if self.oncpu:
            if self.thread.polling:
                self.host.unpoll(self.thread)
            irq = self.late_irq
            if irq >= 0 and w == W_HANDLER and c.handler == irq:
                self.late_irq = -1
                rows = self.sim.rec.rows
                if c.h_rem == rows[irq + F_SERVICE]:
                    rows[irq + F_START] = now  # it starts now, not when it was chosen
            VP._start_segment(self, c, w, rem, now)
            return
        # Guest code to run, but the thread is off the CPU: wait for it; on_run dispatches.
        self.halted = False
        if w == W_HANDLER:  # chosen now, started when the thread runs
            self.late_irq = c.handler
        if self.acc_state != self.slot_steal:
            self._account(self.slot_steal, now)
        if self.tl:
            self._timeline(S_STEAL, now)
        self._need_cpu()

    def _dispatch_once(self):
        if self.waiting:
            return  # on_run dispatches
        VP._dispatch_once(self)
        if self.halted and self.oncpu and not self.thread.polling:
            self.host.halt(self.thread)  # polls, or sleeps at once
            self.oncpu = self.thread.polling

    def act(self, c, fn, arg):
        if self.waiting:  # guest code cannot act while its thread waits for a CPU
            self._defer(c, fn, arg)
            return
        VP.act(self, c, fn, arg)

    def exit_then_pend(self, ns, irq, c):
        self.push_job(ns, S_EXIT, self.land, irq)  # never fused (module docstring)


__all__ = ["HostedVP"]
