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

    def fire(self, vp):
        w = self.w
        dests = self.dests(vp)
        services = [self.service() for _ in dests]
        shorthand = w.dest in ("all", "all-but-self")
        self.sim.send_ipi(vp, w.vtl, dests, w.dest_mode == "logical" and not shorthand,
                          shorthand, w.vector, services, self.widx)


KIND = Kind("ipi", IpiWorkload, IpiSource, check=check, records="ipi")
