"""The engine's one door to SimPy: the event queue, the clock, and the event loop.

Every use of SimPy's private attributes (``_queue``, ``_eid``, ``_now``) is in this module;
the rest of the engine uses the public names of :class:`Clock`: ``now``, ``queue``, ``ids``,
``cur_prio``, ``cur_id``, and the functions :func:`at`, :func:`rearm`, :func:`push` and
:func:`run_until`. ``tests/test_clock.py`` fails if SimPy's event protocol changes under
these names (SimPy is pinned to the minor version verified, see ``pyproject.toml``).

SimPy processes an event by popping ``(time, priority, id, event)`` from its heap and
calling each entry of ``event.callbacks``. A :class:`Call` is the smallest object that
satisfies that protocol: a function and one argument. Pushing it straight onto the heap
(what ``Environment.schedule`` does) avoids building a ``Timeout`` per event; a periodic
source re-arms the same object instead of allocating a new one.

Same-time order: entries with equal time run by priority, then by the order they were
scheduled. vsmsim uses priority 0.5 (:data:`WORK_END`, between SimPy's URGENT and NORMAL)
for ends of guest work, 1 (SimPy's NORMAL, :data:`DONE`) for ends of transitions, exits and
path steps, and ``2 + (15 - vtl)`` for workload arrivals, so at one nanosecond work that is
over ends first, everything else that finishes is processed before anything new arrives,
and arrivals for higher VTLs come before those for lower ones.
"""

from __future__ import annotations

from heapq import heappop, heappush

import simpy
from simpy.core import StopSimulation

DONE = 1
#: Heap priority of the end of a segment of guest work (a handler or a task): after SimPy's
#: urgent events (0), before everything else at the same nanosecond (DONE and SimPy's
#: normal events, 1). Work that has no time left is over: it ends before anything can
#: preempt it, whenever its end was scheduled (a fused delivery schedules it earlier than
#: the unfused handler start would: engine/fusion.py).
WORK_END = 0.5


def arrival_priority(vtl: int) -> int:
    """Heap priority of an arrival for *vtl*: higher VTLs first at the same nanosecond."""
    return 2 + (15 - vtl)


class Clock(simpy.Environment):
    """A SimPy environment whose clock, queue and id counter have public, fast names.

    ``now`` is a plain attribute here (SimPy's is a property over ``_now``), so the engine
    reads the time at attribute speed; SimPy's own code keeps using ``_now``, which this
    class turns into an alias of ``now``. ``queue`` is SimPy's heap and ``ids`` its event-id
    counter, the same objects. ``cur_prio`` and ``cur_id`` are the priority and id of the
    event being processed by :func:`run_until` (for same-instant order decisions).
    """

    now = 0  # a plain class default: shadows SimPy's read-only property

    def __init__(self, initial_time: int = 0):
        super().__init__(initial_time)
        self.queue = self._queue
        self.ids = self._eid
        self.cur_prio = 0
        self.cur_id = 0

    @property
    def _now(self):  # SimPy's name for the clock, kept for SimPy's own code
        return self.now

    @_now.setter
    def _now(self, value):
        self.now = value


def _fire(ev):
    ev.fn(ev.arg)


_FIRE = [_fire]


class Call:
    """A schedulable callback ``fn(arg)``; reusable via :func:`rearm`."""

    __slots__ = ("callbacks", "_ok", "_value", "fn", "arg")

    def __init__(self, fn, arg=None):
        # Shared. run_until leaves it in place; SimPy's own step would replace it with None,
        # which rearm and push undo (the engine's per-VP Calls only ever run in run_until).
        self.callbacks = _FIRE
        self._ok = True
        self._value = None
        self.fn = fn
        self.arg = arg


def at(env: Clock, delay: int, fn, arg=None, priority: int = DONE) -> Call:
    """Run ``fn(arg)`` *delay* ns from now; return the scheduled :class:`Call`."""
    c = Call(fn, arg)
    heappush(env.queue, (env.now + delay, priority, next(env.ids), c))
    return c


def rearm(env: Clock, call: Call, when: int, priority: int) -> None:
    """Schedule an already-fired *call* again, at absolute time *when* (ns)."""
    call.callbacks = _FIRE
    heappush(env.queue, (when, priority, next(env.ids), call))


def push(env: Clock, when: int, eid: int, call: Call, priority: int = DONE) -> None:
    """Schedule *call* at absolute time *when* (ns) with an event id drawn earlier."""
    call.callbacks = _FIRE
    heappush(env.queue, (when, priority, eid, call))


def processed(env: Clock) -> int:
    """Events taken from the queue so far, plus those still queued (ids drawn - queued)."""
    import copy
    return next(copy.copy(env.ids)) - len(env.queue)


def run_until(env: Clock, end: int) -> None:
    """Process events of *env* strictly before time *end* (ns), then set the clock to *end*.

    This is ``env.run(until=end)`` with SimPy's ``step`` inlined: the same queue, the same
    order, the same callback protocol, failure check and :class:`StopSimulation` handling
    (the event's remaining callbacks are rescheduled and the exception propagates), minus
    two Python calls per event for vsmsim's own :class:`Call` entries (measured: ~5 % of
    the run time of the standard workload). SimPy's processes and events scheduled by guest
    programs run unchanged. Afterwards ``cur_prio`` and ``cur_id`` are -1: the clock stands
    at *end*, ahead of every event of that nanosecond.
    """
    q = env.queue
    call_type = Call
    while q:
        # Pop first and put back the one event at or past the end: one comparison per
        # event instead of a look at the heap's head and the pop.
        now, prio, eid, ev = heappop(q)
        if now >= end:
            heappush(q, (now, prio, eid, ev))
            break
        env.now = now
        env.cur_prio = prio
        env.cur_id = eid
        if ev.__class__ is call_type:
            # Not marked processed (callbacks = None, as SimPy's step would): a Call stays
            # ready to be pushed again, so the engine's hot paths re-arm it without a store.
            ev.fn(ev.arg)
            continue
        callbacks, ev.callbacks = ev.callbacks, None
        for i, callback in enumerate(callbacks):
            try:
                callback(ev)
            except StopSimulation:
                ev.callbacks = callbacks[i + 1:]
                env.schedule(ev, -1)
                raise
        if not ev._ok and not hasattr(ev, "_defused"):
            exc = type(ev._value)(*ev._value.args)
            exc.__cause__ = ev._value
            raise exc
    env.now = end
    # Nothing of the instant *end* has run: what is settled now (a fused delivery at the
    # run's end, VP.finish) must see the clock ahead of every event of that nanosecond.
    env.cur_prio = -1
    env.cur_id = -1
