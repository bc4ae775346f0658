"""Noisy neighbours: background threads that want a fraction of their CPU.

Each one alternates a busy burst (exponential, mean ``burst``) and a sleep (exponential,
mean ``burst * (1 - u) / u``), so that alone on a CPU it would use ``u`` of it; it starts
asleep, with a sleep drawn the same way. Draws come from the run's own stream for host
noise, so the workloads' arrivals do not change when noise is added. Times in ns.
"""

from __future__ import annotations

from ..engine.clock import at


class Noise:
    """The client of one background thread."""

    def __init__(self, host, thread, utilisation: float, burst: int, rng):
        self.host = host
        self.t = thread
        self.burst = float(burst)
        self.sleep = float(burst) * (1.0 - utilisation) / utilisation
        self.rng = rng
        self.rem = 0        # ns of the current burst still to run
        self.since = 0
        self.token = 0
        thread.client = self

    def start(self) -> None:
        at(self.host.env, self._draw(self.sleep), self._wake, None)

    def _draw(self, mean: float) -> int:
        return max(1, int(round(self.rng.exponential(mean))))

    def _wake(self, _) -> None:
        self.rem = self._draw(self.burst)
        self.host.wake(self.t)

    def on_run(self, now: int) -> None:
        self.since = now
        self.token += 1
        at(self.host.env, self.rem, self._done, self.token)

    def on_preempt(self, now: int) -> None:
        self.rem -= now - self.since
        self.token += 1

    def on_sleep(self, now: int) -> None:  # never polls
        pass

    def on_enqueued(self, now: int) -> None:
        pass

    def _done(self, token) -> None:
        if token != self.token:
            return
        self.rem = 0
        self.host.block(self.t)
        at(self.host.env, self._draw(self.sleep), self._wake, None)
