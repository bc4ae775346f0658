"""Host scheduling policies as plug-ins: a small class with a few callbacks.

A policy decides, per physical CPU, which runnable host thread runs next, whether a woken
thread preempts the running one, how long the running one may keep the CPU while others
wait, and (with ``placement = "free"``) on which CPU a woken thread is queued. The
machine (:mod:`vsmsim.host.machine`) does everything else: run queues, the clock,
switch costs, accounting. In the spirit of SimSo's schedulers and the Xen scheduler
simulator's ``sched_ops``. Register your own with :func:`register_policy`; the built-in
ones are :mod:`vsmsim.host.fair` and :mod:`vsmsim.host.fifo`. Times in ns.
"""

from __future__ import annotations

POLICIES: dict[str, type] = {}


def register_policy(cls):
    """Make policy class *cls* usable as ``host.policy = cls.name`` (a class decorator)."""
    if not getattr(cls, "name", ""):
        raise ValueError(f"{cls!r}: a host policy needs a non-empty class attribute 'name'")
    POLICIES[cls.name] = cls
    return cls


class HostPolicy:
    """The callbacks a policy gives; this base is a valid policy with none of them
    interesting (FIFO order, no preemption, no time slices)."""

    name = ""

    def __init__(self, host, cfg):
        self.host = host
        self.cfg = cfg

    def enqueue(self, cpu, t, wakeup: bool, now: int) -> None:
        """Thread *t* joins *cpu*'s run queue (*wakeup*: it was blocked until now)."""
        cpu.rq.append(t)

    def pick(self, cpu, now: int):
        """Remove and return the thread *cpu* runs next, or None if its queue is empty."""
        return cpu.rq.pop(0) if cpu.rq else None

    def wakeup_preempt(self, cpu, t, now: int) -> bool:
        """Whether woken thread *t*, just queued on *cpu*, preempts the running thread."""
        return False

    def slice(self, cpu, now: int):
        """How long (ns) the thread starting on *cpu* now may run while others wait there;
        None: until it blocks."""
        return None

    def ran(self, t, ns: int) -> None:
        """Thread *t* executed *ns* (called whenever it leaves the CPU or is looked at)."""

    def migrated(self, t, src, dst) -> None:
        """Thread *t* moves from CPU *src*'s queue to CPU *dst*'s."""

    def select_cpu(self, t, waker_cpu, now: int, sync: bool = False):
        """The CPU a woken thread *t* is queued on (``placement = "free"``, or an affinity
        of several CPUs): its previous CPU if idle, else the waker's if idle, else the
        first idle CPU it may use; with none idle, the waker's CPU for a *sync* wake-up
        (the waker is about to block, a hand-off) when nothing else waits there, else its
        previous CPU. The shape of Linux's select_task_rq_fair (wake_affine_idle,
        select_idle_sibling), without cache domains."""
        host = self.host
        prev = host.cpus[t.last_cpu] if t.last_cpu >= 0 else host.cpus[t.home]
        if prev.idx in t.allowed and prev.curr is None and not prev.rq:
            return prev
        if waker_cpu is not None and waker_cpu.idx in t.allowed and waker_cpu.curr is None \
                and not waker_cpu.rq:
            return waker_cpu
        for i in t.allowed:
            c = host.cpus[i]
            if c.curr is None and not c.rq:
                return c
        if sync and waker_cpu is not None and waker_cpu.idx in t.allowed and not waker_cpu.rq:
            return waker_cpu
        if prev.idx in t.allowed:
            return prev
        return min((host.cpus[i] for i in t.allowed), key=lambda c: (len(c.rq), c.idx))
