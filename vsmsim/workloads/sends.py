"""What the IPI kinds share: who sends, to whom, which vector, and the destination draw."""

from __future__ import annotations

from pydantic import Field

from ..dists import parse_dist
from ..schema import Arrivals, Dest, DistSpec, Named, Vector, VpSet
from .base import _BLOCK, ArrivalSource, _Blocks


class Sends(Named, Arrivals):
    """Keys shared by the IPI kinds: who sends, to whom, which vector, handler time."""

    senders: VpSet = "all"
    dest: Dest = "random"
    vector: Vector = 0xFB
    service: DistSpec = Field(default_factory=lambda: parse_dist("1us"))


def check_dest(w, sc, where: str) -> list[str]:
    """A listed destination must name VPs of the VM."""
    n = sc.vm.vps
    if isinstance(w.dest, list):
        bad = [v for v in w.dest if not 0 <= v < n]
        if bad or not w.dest:
            return [f"{where}.dest: {w.dest} must list VPs in 0..{n - 1}"]
    return []


class SendSource(ArrivalSource):
    """Arrivals of sends: the destinations of each, drawn from the workload's own stream."""

    def __init__(self, sim, widx, w, seq):
        super().__init__(sim, widx, w, seq)
        n = sim.n
        self._rand = _Blocks(lambda: self.dest_rng.integers(0, max(n - 1, 1), _BLOCK))

    def dests(self, sender):
        d = self.w.dest
        n = self.sim.n
        if d == "random":
            if n == 1:
                return [sender]
            x = self._rand.next()
            return [x + 1 if x >= sender else x]  # never the sender itself
        if d == "self":
            return [sender]
        if d == "all":
            return list(range(n))
        if d == "all-but-self":
            return [v for v in range(n) if v != sender]
        return list(d)
