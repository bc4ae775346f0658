"""``kind = "compute"``: endless background work of a VTL, lowest priority.

Engine hook: ``sim.set_compute(vp, vtl)``.
"""

from __future__ import annotations

from typing import Literal

from ..schema import Named, VpSet
from .base import Kind, vp_list


class ComputeWorkload(Named):
    """Endless ordinary work of ``vtl``, lowest priority: measures what that VTL gets."""

    kind: Literal["compute"]
    vps: VpSet = "all"


class ComputeSource:
    """No arrivals: marks the contexts as always having background work."""

    def __init__(self, sim, widx, w, seq):
        for vp in vp_list(w.vps, sim.n):
            sim.set_compute(vp, w.vtl)

    def start(self):
        pass


KIND = Kind("compute", ComputeWorkload, ComputeSource)
