"""Python's cyclic garbage collector during a run: fewer young-generation collections.

The engine frees its per-event objects (heap entries, argument tuples) by reference
counting; it creates no garbage cycles per event (after the standard workload for 10 or
for 100 simulated ms with the collector off, ``gc.collect()`` finds the same ~1,700
unreachable objects: set-up and tables). The collector still counts them: its
young generation is collected whenever 700 more container objects exist than at the last
collection. When many VPs' timers share an instant (every VP's timer at phase 0, the
benchmark's standard workload), one expiry puts an entry per VP on the event heap at once:
from about 700 VPs on, every such instant triggers a collection that walks the whole
instant's events and, every tenth time, the older generation too, and the survivors then
set off a full collection of every object of the process (NumPy, pandas, the user's).
Measured with ``bench/instructions.py --vps 1024 --cache`` (cachegrind, a 1 MB last
level like this machine's L2 per core): at 1,024 VPs these collections were a third of
the cache misses added per model action over 64 VPs (119 misses per action with them, 91
without, 33 at 64 VPs either way), and 2.7 % of the instructions.

During :meth:`vsmsim.engine.sim.Simulation.run` the young generation's threshold is
therefore raised to :data:`YOUNG_THRESHOLD` (unless it is higher already, or the collector
is disabled) and put back afterwards, also when the run fails. Garbage cycles that a guest
program creates are still collected, after at most that many net new objects (some
10 MB, inferred at ~100 bytes each). Nested and concurrent runs in one process (threads) share one raise: the first to
start saves the thresholds, the last to end restores them, unless the user changed them
in between.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

#: Net new container objects between young-generation collections during a run
#: (Python's default is 700).
YOUNG_THRESHOLD = 100_000

_lock = threading.Lock()
_runs = 0          # runs under way in this process
_saved = None      # the thresholds before the first of them, or None if left alone
_set = None        # the thresholds that first run set


@contextmanager
def fewer_collections():
    """Raise the collector's young-generation threshold for the duration of the block."""
    global _runs, _saved, _set
    with _lock:
        if _runs == 0:
            _saved = _set = None
            now = gc.get_threshold()
            if gc.isenabled() and 0 < now[0] < YOUNG_THRESHOLD:
                _saved = now
                _set = (YOUNG_THRESHOLD,) + now[1:]
                gc.set_threshold(*_set)
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0 and _saved is not None:
                if gc.get_threshold() == _set:  # a change made meanwhile is the user's: keep it
                    gc.set_threshold(*_saved)
                _saved = _set = None
