"""``kind = "vtl-call"`` and ``kind = "intercept"``: entries into the next higher VTL.

Engine hook: ``sim.vtl_call(vp, vtl, service_ns, widx, intercept)``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..dists import parse_dist
from ..schema import Arrivals, DistSpec, Named, StrictInt, VpSet
from .base import ArrivalSource, Kind


class VtlCallWorkload(Named, Arrivals):
    """Code in ``vtl`` calls the next higher VTL (HvCallVtlCall) for ``service`` of work."""

    kind: Literal["vtl-call"]
    vps: VpSet = "all"
    service: DistSpec = Field(default_factory=lambda: parse_dist("5us"))


class InterceptWorkload(Named, Arrivals):
    """Code in ``vtl`` traps into the next higher VTL (secure intercept) for ``service``."""

    kind: Literal["intercept"]
    vps: VpSet = "all"
    service: DistSpec = Field(default_factory=lambda: parse_dist("5us"))
    hypercalls: StrictInt = Field(
        2, ge=0, le=64, description="hypercalls the higher VTL makes to handle each intercept "
        "before its service (path serve.hypercall each): inferred default, a GetVpRegisters "
        "of the intercepted VP and a SetVpRegisters or ModifyVtlProtectionMask")


def check(w, sc, where: str) -> list[str]:
    if w.vtl + 1 == sc.vm.vtls:  # a VTL outside the VM is reported once, by the generic check
        return [f"{where}.vtl: VTL {w.vtl} has no higher VTL to enter (vm.vtls = {sc.vm.vtls})"]
    return []


def never(w: dict) -> bool:
    """Calls into a higher VTL do not exist in the VSM-off twin."""
    return False


class CallSource(ArrivalSource):
    """VTL calls (or intercepts) from context (vp, vtl) into the next higher VTL."""

    def fire(self, vp):
        w = self.w
        self.sim.vtl_call(vp, w.vtl, self.service(), self.widx, w.kind == "intercept",
                          hypercalls=getattr(w, "hypercalls", 0))


VTL_CALL = Kind("vtl-call", VtlCallWorkload, CallSource, check=check, in_vsm_off=never,
                records="vtl-call", calls_up=True)
INTERCEPT = Kind("intercept", InterceptWorkload, CallSource, check=check, in_vsm_off=never,
                 records="intercept", calls_up=True)
