"""The garbage collector's threshold during a run (vsmsim/engine/collector.py): raised while
the engine runs, put back afterwards whatever happens, and never over the user's own
choice."""

from __future__ import annotations

import gc
import threading

import pytest

import vsmsim
from vsmsim.engine.collector import YOUNG_THRESHOLD

SMALL = {"name": "gc", "duration": "200us", "vm": {"vps": 2, "vtls": 2},
         "workload": [{"name": "t", "kind": "timer", "vtl": 1, "vps": "all",
                       "period": "50us", "service": "2us", "vector": 0xEC}]}


@pytest.fixture(autouse=True)
def _default_collector():
    before, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(700, 10, 10)
    gc.enable()
    yield
    gc.set_threshold(*before)
    (gc.enable if enabled else gc.disable)()


def _run(progress):
    return vsmsim.simulate(SMALL, progress=progress)


def test_a_run_raises_the_young_threshold_and_puts_it_back():
    seen = []
    _run(lambda done, total: seen.append(gc.get_threshold()))
    assert seen and set(seen) == {(YOUNG_THRESHOLD, 10, 10)}
    assert gc.get_threshold() == (700, 10, 10)


def test_a_failing_run_puts_it_back():
    def boom(done, total):
        raise RuntimeError("stop")
    with pytest.raises(RuntimeError):
        _run(boom)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("setup, expect", [
    (lambda: gc.disable(), (700, 10, 10)),           # disabled: left as it is
    (lambda: gc.set_threshold(500_000, 5, 5), (500_000, 5, 5)),  # higher already
    (lambda: gc.set_threshold(0), (0, 10, 10)),      # 0: automatic collection off
])
def test_the_users_own_choice_is_left_alone(setup, expect):
    setup()
    seen = []
    _run(lambda done, total: seen.append(gc.get_threshold()))
    assert set(seen) == {expect}
    assert gc.get_threshold() == expect


def test_a_change_the_user_makes_during_the_run_is_kept():
    _run(lambda done, total: gc.set_threshold(1234, 10, 10))
    assert gc.get_threshold() == (1234, 10, 10)


def test_nested_runs_restore_once_the_outer_one_ends():
    inner_after = []

    def outer(done, total):
        if not inner_after:
            _run(None)
            inner_after.append(gc.get_threshold())
    _run(outer)
    assert inner_after == [(YOUNG_THRESHOLD, 10, 10)]  # the outer run is still under way
    assert gc.get_threshold() == (700, 10, 10)


def test_concurrent_runs_in_threads_restore_once_both_have_ended():
    both_started = threading.Barrier(2, timeout=30)
    errors = []

    def worker():
        first = []

        def progress(done, total):
            if not first:
                first.append(1)
                both_started.wait()
        try:
            _run(progress)
        except Exception as e:  # reported below: an assert in a thread would be lost
            errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert gc.get_threshold() == (700, 10, 10)

