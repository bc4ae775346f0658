"""``kind = "program"``: guest code as SimPy generator functions, one process per context.

Engine hook: ``sim.start_program(vp, vtl, program, widx)`` (see vsmsim/engine/program.py
for what a program may do).
"""

from __future__ import annotations

from typing import Literal

from ..schema import Named, Program, VpSet
from .base import Kind, vp_list


class ProgramWorkload(Named):
    """Guest code as SimPy generator functions ``program(ctx)``, one process per context."""

    kind: Literal["program"]
    vps: VpSet = "all"
    program: Program


class ProgramSource:
    """No arrivals: starts one guest-program process per context when the run starts."""

    def __init__(self, sim, widx, w, seq):
        self.sim, self.widx, self.w = sim, widx, w
        self.vps = vp_list(w.vps, sim.n)

    def start(self):
        for vp in self.vps:
            self.sim.start_program(vp, self.w.vtl, self.w.program, self.widx)


KIND = Kind("program", ProgramWorkload, ProgramSource)
