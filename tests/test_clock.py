"""SimPy's event protocol, as vsmsim's clock relies on it: fails if SimPy changes it.

vsmsim pushes its own callback objects onto SimPy's heap and runs SimPy's loop inline
(vsmsim/engine/clock.py). These tests pin the parts of SimPy that this depends on.
"""

import itertools

import pytest
import simpy
from simpy.core import StopSimulation

from vsmsim.engine.clock import Call, Clock, at, processed, push, rearm, run_until


def test_simpy_keeps_clock_queue_and_ids_where_the_clock_expects():
    env = simpy.Environment(5)
    assert env._now == 5 and env.now == 5
    assert isinstance(env._queue, list) and env._queue == []
    assert isinstance(env._eid, itertools.count)
    env.timeout(3)
    when, prio, eid, ev = env._queue[0]  # (time, priority, id, event) tuples
    assert (when, prio, eid) == (8, simpy.events.NORMAL, 0)


def test_clock_aliases_are_simpys_own_objects():
    env = Clock()
    assert env.queue is env._queue and env.ids is env._eid
    env.now = 42
    assert env._now == 42 and simpy.Environment.now.fget(env) == 42
    env._now = 7  # SimPy's own code writes _now
    assert env.now == 7


def test_simpy_step_processes_a_call_like_its_own_events():
    env = Clock()
    seen = []
    at(env, 10, seen.append, "a")
    env.step()  # SimPy's own step, not vsmsim's loop
    assert seen == ["a"] and env.now == 10


def test_run_until_orders_by_time_priority_then_id_and_stops_before_end():
    env = Clock()
    seen = []
    at(env, 5, seen.append, "late-prio", priority=3)
    at(env, 5, seen.append, "done")          # priority 1 runs first at the same time
    at(env, 5, seen.append, "done-2")        # same priority: scheduled order
    at(env, 9, seen.append, "at-end")        # not before end: stays queued
    run_until(env, 9)
    assert seen == ["done", "done-2", "late-prio"]
    assert env.now == 9 and len(env.queue) == 1
    assert processed(env) == 3


def test_rearm_and_push_reuse_a_call():
    env = Clock()
    seen = []
    c = Call(seen.append, "x")
    rearm(env, c, 3, 1)
    run_until(env, 4)
    push(env, 6, next(env.ids), c)
    run_until(env, 10)
    assert seen == ["x", "x"]


def test_simpy_processes_run_on_the_clock():
    env = Clock()
    out = []

    def proc():
        yield env.timeout(7)
        out.append(env.now)
        yield env.timeout(3)
        out.append(env.now)

    env.process(proc())
    run_until(env, 100)
    assert out == [7, 10]


def test_failed_event_crashes_the_run_as_in_simpy():
    env = Clock()

    def proc():
        yield env.timeout(1)
        raise KeyError("boom")

    env.process(proc())
    with pytest.raises(KeyError):
        run_until(env, 10)


def test_stop_simulation_keeps_remaining_callbacks_as_simpy_does():
    env = Clock()
    ev = env.event()
    seen = []

    def stop(_):
        raise StopSimulation("stop")

    ev.callbacks += [stop, lambda e: seen.append("after")]
    ev.succeed()
    with pytest.raises(StopSimulation):
        run_until(env, 10)
    run_until(env, 10)  # the rest of the event's callbacks run when the run resumes
    assert seen == ["after"]
