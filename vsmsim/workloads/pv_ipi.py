"""``kind = "pv-ipi"``: Hyper-V PV IPIs (HvCallSendSyntheticClusterIpi), maybe cross-VTL.

Engine hook: ``sim.send_pv_ipi(src, vtl, dests, target_vtl, vector, services, widx)``.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ..schema import MAX_VTLS, StrictInt
from .base import Kind
from .sends import Sends, SendSource, check_dest


class PvIpiWorkload(Sends):
    """Hyper-V PV IPIs (HvCallSendSyntheticClusterIpi), optionally to another VTL."""

    kind: Literal["pv-ipi"]
    target_vtl: Optional[StrictInt] = Field(None, ge=0, lt=MAX_VTLS)


def check(w, sc, where: str) -> list[str]:
    errs = check_dest(w, sc, where)
    vtls = sc.vm.vtls
    if w.target_vtl is not None:
        if w.target_vtl >= vtls:
            errs.append(f"{where}.target_vtl: {w.target_vtl} is outside 0..{vtls - 1}")
        elif w.target_vtl > w.vtl and not sc.vm.cross_vtl_ipi_up:
            errs.append(f"{where}.target_vtl: VTL {w.vtl} may not target higher VTL "
                        f"{w.target_vtl} (vm.cross_vtl_ipi_up = false)")
    return errs


def in_vsm_off(w: dict) -> bool:
    """VTL0's PV IPIs to VTL0 stay; those aimed at a higher VTL do not exist without VSM."""
    return w["vtl"] == 0 and w.get("target_vtl") in (None, 0)


class PvIpiSource(SendSource):
    """Hyper-V PV IPIs, to the sender's VTL or to ``target_vtl``."""

    def fire(self, vp):
        w = self.w
        dests = self.dests(vp)
        services = [self.service() for _ in dests]
        target = w.vtl if w.target_vtl is None else w.target_vtl
        self.sim.send_pv_ipi(vp, w.vtl, dests, target, w.vector, services, self.widx)


KIND = Kind("pv-ipi", PvIpiWorkload, PvIpiSource, check=check, in_vsm_off=in_vsm_off,
            records="pv-ipi")
