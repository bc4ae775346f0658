"""``fifo``: run to completion in arrival order (SCHED_FIFO threads of one priority).

A woken thread waits at the tail of its CPU's queue; the running thread keeps the CPU
until it blocks: no time slices, no wake-up preemption.
"""

from __future__ import annotations

from .policy import HostPolicy, register_policy


@register_policy
class Fifo(HostPolicy):
    name = "fifo"
