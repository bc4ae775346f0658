"""``kind = "ipi"``: APIC IPIs (ICR writes) within one VTL.

Engine hook: ``sim.send_ipi(src, vtl, dests, logical, shorthand, vector, services, widx)``.
"""

from __future__ import annotations

from typing import Literal

from ..schema import MAX_VPS
from .base import Kind
from .sends import Sends, SendSource, check_dest

#: How many VPs a logical destination can address, per APIC mode.
LOGICAL_LIMIT = {"xapic-flat": 8, "xapic-cluster": 60, "x2apic": MAX_VPS}


class IpiWorkload(Sends):
    """APIC IPIs (ICR writes) within one VTL, from senders to destinations."""

    kind: Literal["ipi"]
    dest_mode: Literal["physical", "logical"] = "physical"


def check(w, sc, where: str) -> list[str]:
    errs = check_dest(w, sc, where)
    if w.dest_mode == "logical":
        limit = LOGICAL_LIMIT[sc.vm.apic_mode]
        if sc.vm.vps > limit:
            errs.append(f"{where}.dest_mode: logical destinations in {sc.vm.apic_mode} "
                        f"mode address at most {limit} VPs; vm.vps = {sc.vm.vps}")
    return errs


class IpiSource(SendSource):
    """APIC IPIs: random or listed VPs (physical or logical), or a shorthand."""

    def __init__(self, sim, widx, w, seq):
        super().__init__(sim, widx, w, seq)
        # What every send of this workload shares, decided once (an IPI is a frequent
        # arrival: 50,000 a simulated second in bench/standard.toml).
        self.shorthand = w.dest in ("all", "all-but-self")
        self.logical = w.dest_mode == "logical" and not self.shorthand
        self.send = sim.send_ipi

    def fire(self, vp):
        w = self.w
        dests = self.dests(vp)
        service = self.service
        self.send(vp, w.vtl, dests, self.logical, self.shorthand, w.vector,
                  [service() for _ in dests], self.widx)


KIND = Kind("ipi", IpiWorkload, IpiSource, check=check, records="ipi")
