"""The host machine: physical CPUs, host threads, run queues and the scheduler's clock.

A host thread is BLOCKED (asleep), WAKING (a wake-up in flight to its CPU), RUNNABLE (in a
CPU's run queue), STARTING (on a CPU that is paying the cost of switching to it) or
RUNNING. What runs on a thread is its *client* (a VP, a background thread): the machine
calls ``client.on_run(now)`` when the thread starts executing, ``client.on_preempt(now)``
when it loses the CPU while still runnable and ``client.on_sleep(now)`` when the machine
puts it to sleep (the end of a halt-polling window); ``client.on_enqueued(now)`` tells it
that its wake-up has reached a run queue (from then on it waits for a CPU). Clients ask for the CPU with
:meth:`Host.wake` and give it up with :meth:`Host.block`, :meth:`Host.halt` or
:meth:`Host.handoff`. The policy (:mod:`vsmsim.host.policy`) decides the order.

Costs of a CPU switching threads, all from the cost profile: ``cstate_exit`` when the CPU
was idle, ``context_switch`` when it ran another thread, plus ``migration`` when the
thread last ran on another CPU. Zero-cost switches happen at once, in the same event, so
that a host layer that changes nothing also moves no event (tests/test_host.py). Times ns.
"""

from __future__ import annotations

from array import array
from itertools import count

from ..engine.clock import at

BLOCKED, WAKING, RUNNABLE, STARTING, RUNNING = range(5)
STATE_NAMES = ("blocked", "waking", "runnable", "starting", "running")


class HostThread:
    """One host thread: a vCPU thread (``vp``, ``vtl``; vtl -1: the VP's one thread) or a
    background thread (vp -1)."""

    __slots__ = ("tid", "name", "vp", "vtl", "allowed", "home", "cpu", "last_cpu", "state",
                 "vruntime", "queued_seq", "client", "polling", "poll_token", "wake_token",
                 "wait_since", "run_ns", "wait_ns", "wakeups", "migrations", "poll_hits",
                 "errand", "errand_q")

    def __init__(self, tid, name, vp, vtl, allowed, home):
        self.tid, self.name, self.vp, self.vtl = tid, name, vp, vtl
        self.allowed = tuple(allowed)   # CPUs it may run on
        self.home = home                # its CPU before it first runs
        self.cpu = -1                   # CPU whose queue or core holds it, -1 when asleep
        self.last_cpu = -1              # CPU it last executed on
        self.state = BLOCKED
        self.vruntime = 0               # fair policy: ns executed (equal weights)
        self.queued_seq = 0             # order of queueing, for ties
        self.client = None
        self.polling = False            # RUNNING, but only halt-polling
        self.poll_token = 0
        self.wake_token = 0
        self.wait_since = 0
        self.run_ns = 0                 # executing (polling included)
        self.wait_ns = 0                # runnable or starting: wanted a CPU, had none
        self.wakeups = 0
        self.migrations = 0
        self.poll_hits = 0              # wakes inside a halt-polling window (no sleep)
        self.errand = None              # [ns left, fn, since, token]: work before its client's
        self.errand_q = []              # errands waiting for the current one (a VMM thread)

    def __repr__(self):
        return f"HostThread({self.name}, {STATE_NAMES[self.state]}, cpu={self.cpu})"


class HostCPU:
    """One physical CPU: the thread on it (``curr``), its run queue and its books."""

    __slots__ = ("idx", "curr", "rq", "executing", "exec_start", "ovh_start", "token",
                 "tick_token", "min_vruntime", "prev", "busy_ns", "ovh_ns", "switches",
                 "migrations")

    def __init__(self, idx):
        self.idx = idx
        self.curr = None          # the thread STARTING or RUNNING here, None when idle
        self.rq = []              # RUNNABLE threads queued here
        self.executing = False    # curr is RUNNING (not paying a switch)
        self.exec_start = 0
        self.ovh_start = 0
        self.token = 0            # bumped on every change of curr: stale events are ignored
        self.tick_token = -1      # token for which a slice end is scheduled
        self.min_vruntime = 0
        self.prev = None          # the thread that executed here last
        self.busy_ns = 0          # threads executing
        self.ovh_ns = 0           # switching: C-state exits, context switches, migrations
        self.switches = 0         # context switches: a different thread starts here
        self.migrations = 0       # threads that arrived here from another CPU


class Host:
    """CPUs, threads and the policy for one run; see the module docstring."""

    def __init__(self, env, cfg, threads, ncpus, policy_cls, costs, free: bool, record: bool):
        self.env = env
        self.cfg = cfg
        self.cpus = [HostCPU(i) for i in range(ncpus)]
        self.threads = threads
        self.policy = policy_cls(self, cfg)
        self.cstate_exit, self.context_switch, self.migration = costs
        self.free = free
        self.seq = count()
        # Per-thread wait intervals of vCPU threads (tid, start, end): how much of a
        # delivery was spent waiting for a CPU (harvest).
        self.waits = array("q")
        # Executing segments (cpu, tid, start, end) when the run records a timeline.
        self.record = record
        self.segs = array("q")

    # ------------------------------------------------------------ what clients call
    def wake(self, t, latency: int = 0, waker_cpu=None, target=None) -> None:
        """Thread *t* wants a CPU. *latency*: ns the wake-up takes to reach the target CPU
        (a design's cross-CPU wake cost); none when the target is *waker_cpu* itself.
        *target*: the CPU, when the caller chose it already."""
        if t.state != BLOCKED:
            return
        t.wakeups += 1
        cpu = target if target is not None else self._target(t, waker_cpu)
        t.cpu = cpu.idx
        if latency > 0 and cpu is not waker_cpu:
            t.state = WAKING
            t.wake_token += 1
            at(self.env, latency, self._arrive, (t, cpu, t.wake_token))
        else:
            self._enqueue_woken(t, cpu, True)

    def block(self, t) -> None:
        """Thread *t* sleeps (it blocks in the kernel) wherever it is."""
        now = self.env.now
        st = t.state
        if st == BLOCKED:
            return
        if st == RUNNING or st == STARTING:
            cpu = self.cpus[t.cpu]
            self._off(cpu, now)
            cpu.curr = None
            t.state = BLOCKED
            t.polling = False
            t.cpu = -1
            self._schedule(cpu, False)
            return
        if st == RUNNABLE:
            self.cpus[t.cpu].rq.remove(t)
            self._close_wait(t, now)
        t.state = BLOCKED  # a WAKING thread's arrival is now stale (wake_token)
        t.wake_token += 1
        t.cpu = -1

    def halt(self, t) -> None:
        """The guest on running thread *t* halted: poll for ``halt_poll`` ns if nothing else
        waits for the CPU (KVM stops polling when another task is runnable), then sleep."""
        poll = self.cfg.halt_poll
        if poll > 0 and not self.cpus[t.cpu].rq:
            t.polling = True
            t.poll_token += 1
            at(self.env, poll, self._poll_end, (t, t.poll_token))
        else:
            self.block(t)

    def unpoll(self, t) -> None:
        """The halted guest on polling thread *t* has work again: a wake without a sleep."""
        t.polling = False
        t.poll_token += 1
        t.poll_hits += 1

    def handoff(self, old, new, latency: int) -> None:
        """Running thread *old* wakes *new* and blocks (a VMM hand-off between vCPU threads).
        On one CPU: *new* is queued first, then *old* sleeps and the CPU switches (the
        policy picks; the woken thread normally wins); across CPUs: *latency* to arrive."""
        if old.state != RUNNING and old.state != STARTING:
            self.block(old)  # not on a CPU (a halted VP's switch): a plain wake
            self.wake(new, latency)
            return
        cpu = self.cpus[old.cpu]
        target = self._target(new, cpu, True) if new.state == BLOCKED else None
        if target is cpu:
            new.wakeups += 1
            new.cpu = cpu.idx
            self._enqueue_woken(new, cpu, False)
            self.block(old)
        else:
            self.block(old)
            self.wake(new, latency, cpu, target)

    def errand(self, t, ns: int, fn) -> None:
        """Thread *t* (a parked vCPU thread) wakes to do *ns* of work, then ``fn()`` runs and
        the thread sleeps again, unless a client took it over meanwhile (it then runs for
        that client): the latency-only steps a design marks ``errand``."""
        if t.errand is not None:  # busy with another (the VMM thread serves every VP)
            t.errand_q.append((ns, fn))
            return
        t.errand = [ns, fn, 0, 0]
        if t.state == BLOCKED:
            self.wake(t)
        elif t.state == RUNNING:
            self._errand_start(t, self.env.now)

    def _errand_start(self, t, now) -> None:
        e = t.errand
        e[2] = now
        e[3] += 1
        at(self.env, e[0], self._errand_end, (t, e[3]))

    def _errand_end(self, arg) -> None:
        t, token = arg
        e = t.errand
        if e is None or token != e[3] or t.state != RUNNING:
            return
        t.errand = None
        if t.errand_q:  # the next errand, at once on the same CPU
            ns, fn = t.errand_q.pop(0)
            t.errand = [ns, fn, 0, e[3]]
            self._errand_start(t, self.env.now)
        elif t.client is not None:
            t.client.on_run(self.env.now)  # taken over meanwhile: it runs on for its client
        else:
            self.block(t)
        e[1]()

    # ------------------------------------------------------------ the scheduler
    def _target(self, t, waker_cpu, sync: bool = False):
        if len(t.allowed) == 1:
            return self.cpus[t.allowed[0]]
        return self.policy.select_cpu(t, waker_cpu, self.env.now, sync)

    def _arrive(self, arg) -> None:
        t, cpu, token = arg
        if t.state != WAKING or token != t.wake_token:
            return
        self._enqueue_woken(t, cpu, True)

    def _make_runnable(self, t, cpu, wakeup: bool, now: int) -> None:
        """*t* becomes RUNNABLE in *cpu*'s run queue (waiting from *now*)."""
        t.state = RUNNABLE
        t.wait_since = now
        t.queued_seq = next(self.seq)
        self.policy.enqueue(cpu, t, wakeup, now)

    def _enqueue_woken(self, t, cpu, check: bool) -> None:
        now = self.env.now
        self._make_runnable(t, cpu, True, now)
        if check:
            cur = cpu.curr
            if cur is None:
                self._schedule(cpu, True)
            elif cur.polling:
                self._sleep_poller(cur)  # a runnable task ends the poll: the CPU switches
            elif cpu.executing and self.policy.wakeup_preempt(cpu, t, now):
                self._preempt(cpu)
            else:
                self._arm_tick(cpu)
        # Told only if it did not start at once (a wake that costs nothing moves nothing).
        if (t.state == RUNNABLE or t.state == STARTING) and t.client is not None \
                and t.errand is None:
            t.client.on_enqueued(now)

    def _schedule(self, cpu, from_idle: bool) -> None:
        """*cpu* has no current thread: start the one the policy picks, or go idle."""
        now = self.env.now
        nxt = self.policy.pick(cpu, now)
        cpu.token += 1
        if nxt is None:
            cpu.curr = None
            if self.free:
                self._pull(cpu)
            return
        ovh = 0
        if from_idle:
            ovh = self.cstate_exit
        elif cpu.prev is not nxt:
            ovh = self.context_switch
        if from_idle or cpu.prev is not nxt:
            cpu.switches += 1  # the idle loop counts as a thread, as in Linux's nr_switches
        if nxt.last_cpu >= 0 and nxt.last_cpu != cpu.idx:
            ovh += self.migration
            nxt.migrations += 1
            cpu.migrations += 1
        cpu.curr = nxt
        nxt.cpu = cpu.idx
        nxt.state = STARTING
        if ovh == 0:
            self._run(cpu, nxt, now)
        else:
            cpu.ovh_start = now
            at(self.env, ovh, self._started, (cpu, cpu.token))

    def _started(self, arg) -> None:
        cpu, token = arg
        if token == cpu.token:
            now = self.env.now
            cpu.ovh_ns += now - cpu.ovh_start
            self._run(cpu, cpu.curr, now)

    def _run(self, cpu, t, now) -> None:
        t.state = RUNNING
        cpu.executing = True
        cpu.exec_start = now
        cpu.prev = t
        t.last_cpu = cpu.idx
        self._close_wait(t, now)
        self._arm_tick(cpu)
        if t.errand is not None:
            self._errand_start(t, now)
        elif t.client is not None:
            t.client.on_run(now)

    def _close_wait(self, t, now) -> None:
        d = now - t.wait_since
        if d > 0:
            t.wait_ns += d
            if t.vp >= 0:
                self.waits.extend((t.tid, t.wait_since, now))
        t.wait_since = now

    def _book(self, cpu, now) -> None:
        """Book *cpu*'s current stretch (its thread executing, or the switch to it) up to
        *now*, changing nothing else."""
        if cpu.executing:
            t = cpu.curr
            ran = now - cpu.exec_start
            t.run_ns += ran
            cpu.busy_ns += ran
            self.policy.ran(t, ran)
            if self.record and ran > 0:
                self.segs.extend((cpu.idx, t.tid, cpu.exec_start, now))
            cpu.exec_start = now
        else:
            cpu.ovh_ns += now - cpu.ovh_start  # a switch (cut short, or up to now)
            cpu.ovh_start = now

    def _off(self, cpu, now) -> None:
        """Book the current thread's time up to *now*; it no longer executes here."""
        self._book(cpu, now)
        cpu.executing = False
        cpu.token += 1

    def _preempt(self, cpu) -> None:
        now = self.env.now
        t = cpu.curr
        self._off(cpu, now)
        self._make_runnable(t, cpu, False, now)
        e = t.errand
        if e is not None:
            e[0] -= now - e[2]  # the errand resumes when the thread runs again
            e[3] += 1
        elif t.client is not None:
            t.client.on_preempt(now)
        self._schedule(cpu, False)
        if self.free:
            for c in self.cpus:
                if c.curr is None and c.idx in t.allowed and t.state == RUNNABLE:
                    self._pull(c)
                    break

    def _arm_tick(self, cpu) -> None:
        if not cpu.executing or not cpu.rq or cpu.tick_token == cpu.token:
            return
        s = self.policy.slice(cpu, self.env.now)
        if s is None:
            return
        cpu.tick_token = cpu.token
        when = max(cpu.exec_start + s, self.env.now)
        at(self.env, when - self.env.now, self._tick, (cpu, cpu.token))

    def _tick(self, arg) -> None:
        cpu, token = arg
        if token != cpu.token:
            return
        cpu.tick_token = -1
        if cpu.rq:
            self._preempt(cpu)  # the slice is used up: the policy picks again

    def _poll_end(self, arg) -> None:
        t, token = arg
        if t.polling and token == t.poll_token:
            self._sleep_poller(t)

    def _sleep_poller(self, t) -> None:
        t.polling = False
        t.poll_token += 1
        client = t.client
        self.block(t)
        if client is not None:
            client.on_sleep(self.env.now)

    def _pull(self, cpu) -> None:
        """Idle *cpu* takes the longest-waiting queued thread it may run (newidle balance)."""
        best = None
        for c in self.cpus:
            if c is cpu:
                continue
            for t in c.rq:
                if cpu.idx in t.allowed and (best is None or t.wait_since < best.wait_since):
                    best = t
        if best is None:
            return
        src = self.cpus[best.cpu]
        src.rq.remove(best)
        self.policy.migrated(best, src, cpu)
        best.cpu = cpu.idx
        best.queued_seq = next(self.seq)
        self.policy.enqueue(cpu, best, False, self.env.now)
        self._schedule(cpu, False)

    # ------------------------------------------------------------ the books
    def settle(self, now: int) -> None:
        """Book executing and waiting time up to *now* (warm-up snapshot, end of run)."""
        for cpu in self.cpus:
            if cpu.curr is not None:
                self._book(cpu, now)
        for t in self.threads:
            if t.state == RUNNABLE or t.state == STARTING:
                self._close_wait(t, now)

    def totals(self) -> dict:
        """Cumulative per-thread and per-CPU figures (subtract a snapshot for a window)."""
        return {
            "threads": [(t.run_ns, t.wait_ns, t.wakeups, t.migrations, t.poll_hits)
                        for t in self.threads],
            "cpus": [(c.busy_ns, c.ovh_ns, c.switches, c.migrations) for c in self.cpus],
        }
