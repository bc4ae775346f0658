"""``fair``: a proportional-share policy in the spirit of Linux's CFS.

Every thread has a virtual runtime (ns executed; all threads weigh the same). A CPU runs
the queued thread with the smallest one. A thread that slept is placed no further back
than the CPU's minimum virtual runtime minus half the target latency (CFS's sleeper
credit, ``place_entity`` with GENTLE_FAIR_SLEEPERS), so it cannot bank sleep time. While
others wait, the running thread's slice is ``latency / nr_running``, at least
``min_granularity`` (``sched_slice``). A woken thread preempts the running one when the
running one's virtual runtime exceeds the woken one's by more than
``wakeup_granularity`` (``check_preempt_wakeup``/``wakeup_preempt_entity``). Not modelled:
weights (nice levels), cgroups, EEVDF's lag and deadlines (Linux 6.6+), load balancing
beyond "an idle CPU pulls a waiting thread" (docs/host.md).
"""

from __future__ import annotations

from .policy import HostPolicy, register_policy


@register_policy
class Fair(HostPolicy):
    name = "fair"

    def enqueue(self, cpu, t, wakeup, now):
        if wakeup:
            self._update_min(cpu, now)
            floor = cpu.min_vruntime - self.cfg.latency // 2
            if t.vruntime < floor:
                t.vruntime = floor
        cpu.rq.append(t)

    def pick(self, cpu, now):
        rq = cpu.rq
        if not rq:
            return None
        best = min(rq, key=_order)
        rq.remove(best)
        self._advance_min(cpu, best.vruntime)
        return best

    def _update_min(self, cpu, now):
        """min_vruntime follows the smallest of the running thread's (as of *now*) and the
        queued threads' virtual runtimes, and never goes back (update_min_vruntime)."""
        lowest = None
        cur = cpu.curr
        if cur is not None:
            lowest = cur.vruntime + (now - cpu.exec_start if cpu.executing else 0)
        for t in cpu.rq:
            if lowest is None or t.vruntime < lowest:
                lowest = t.vruntime
        if lowest is not None and lowest > cpu.min_vruntime:
            cpu.min_vruntime = lowest

    def _advance_min(self, cpu, vr):
        lowest = vr
        for t in cpu.rq:
            if t.vruntime < lowest:
                lowest = t.vruntime
        if lowest > cpu.min_vruntime:
            cpu.min_vruntime = lowest

    def wakeup_preempt(self, cpu, t, now):
        cur = cpu.curr
        if cur is None or not cpu.executing:
            return False
        vr = cur.vruntime + (now - cpu.exec_start)
        return vr - t.vruntime > self.cfg.wakeup_granularity

    def slice(self, cpu, now):
        if not cpu.rq:
            return None
        return max(self.cfg.latency // (len(cpu.rq) + 1), self.cfg.min_granularity)

    def ran(self, t, ns):
        t.vruntime += ns

    def migrated(self, t, src, dst):
        t.vruntime += dst.min_vruntime - src.min_vruntime


def _order(t):
    return (t.vruntime, t.queued_seq)
