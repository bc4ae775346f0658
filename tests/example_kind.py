"""A workload kind written the way docs/contributing.md describes: one module plus one
engine hook. Used by tests/test_architecture.py; not part of the package.

``kind = "doorbell"``: a device rings a doorbell that raises ``burst`` MSIs at once on one
VP, vectors ``vector``, ``vector + 1``, ... (a multi-queue NIC, say).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vsmsim.dists import parse_dist
from vsmsim.engine.sim import Simulation
from vsmsim.schema import Arrivals, DistSpec, Named, Vector, VpSet
from vsmsim.workloads import kind_code
from vsmsim.workloads.base import ArrivalSource, Kind


class DoorbellWorkload(Named, Arrivals):
    """Doorbells: each arrival raises ``burst`` device interrupts on one VP at once."""

    kind: Literal["doorbell"]
    vps: VpSet = "all"
    vector: Vector = 0x60
    burst: int = Field(4, ge=1, le=16)
    service: DistSpec = Field(default_factory=lambda: parse_dist("1us"))


def check(w, sc, where):
    if w.vector + w.burst - 1 > 0xFF:
        return [f"{where}.burst: {w.burst} vectors from {w.vector:#x} pass 0xFF"]
    return []


class DoorbellSource(ArrivalSource):
    def fire(self, vp):
        w = self.w
        self.sim.raise_doorbell(vp, w.vtl, w.vector, w.burst, self.service, self.widx)


KIND = Kind("doorbell", DoorbellWorkload, DoorbellSource, check=check, records="doorbell")


def raise_doorbell(sim, vp_idx, vtl, vector, burst, service, widx):
    """The engine hook (in a real kind, a method of Simulation in engine/sim.py)."""
    code, path = kind_code("doorbell"), sim.paths["send.external"]
    vp = sim.vps[vp_idx]
    for k in range(burst):
        irq = sim.rec.new_interrupt(widx, code, vector + k, -1, -1, vp_idx, vtl, sim.env.now,
                                    service(), -1, 0)
        sim.run_path(None, path, lambda i: sim.deliver(vp, i, False, path.code), irq)


def install():
    """Register the kind and its hook; returns a function that removes both."""
    from vsmsim import workloads
    Simulation.raise_doorbell = raise_doorbell
    workloads.register(KIND)

    def remove():
        workloads.unregister("doorbell")
        del Simulation.raise_doorbell
    return remove
