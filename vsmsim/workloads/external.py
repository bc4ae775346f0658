"""``kind = "external"``: device interrupts (IOAPIC/MSI), to VTL0 unless told otherwise.

Engine hook: ``sim.raise_external(vp, vtl, vector, service_ns, widx)``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..dists import parse_dist
from ..schema import Arrivals, DistSpec, Named, Vector, VpSet
from .base import ArrivalSource, Kind


class ExternalWorkload(Named, Arrivals):
    """Device interrupts (IOAPIC/MSI) to VTL0 unless ``vtl`` says otherwise (rule 12)."""

    kind: Literal["external"]
    vps: VpSet = "all"
    vector: Vector = 0x40
    service: DistSpec = Field(default_factory=lambda: parse_dist("2us"))


class ExternalSource(ArrivalSource):
    """Device interrupts (IOAPIC/MSI) asserted for (vp, vtl)."""

    def fire(self, vp):
        w = self.w
        self.sim.raise_external(vp, w.vtl, w.vector, self.service(), self.widx)


KIND = Kind("external", ExternalWorkload, ExternalSource, records="external")
