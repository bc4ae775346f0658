"""The workload kinds: one module each, registered here.

Each kind module defines its pydantic model, its cross-checks, its arrival source and a
:class:`~vsmsim.workloads.base.Kind` record that ties them together; this registry builds
from them what the rest of vsmsim needs: the ``Workload`` union of the scenario schema,
:data:`WORKLOAD_KINDS`, the interrupt kinds of the interrupts table and the sources of a
run. Adding a kind is one new module plus its engine hook, then :func:`register`
(``docs/contributing.md`` walks through an example).
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from . import calls, compute, external, ipi, program, pv_ipi, timer
from .base import Kind

#: The registered kinds by name, in registration order (built-ins first).
REGISTRY: dict[str, Kind] = {}
#: Interrupt kinds of the interrupts table, in the order of their codes. ``vina`` is the
#: engine's own (rule 9), not a workload's; kinds registered later are appended after it,
#: so codes never change.
INTERRUPT_KINDS: list[str] = []
#: Called with no arguments after a kind is registered (the schema rebuilds its union).
_listeners: list = []


def register(kind: Kind) -> None:
    """Add workload kind *kind*; scenarios can use ``kind = "<name>"`` from now on."""
    if kind.name in REGISTRY:
        raise ValueError(f"workload kind {kind.name!r} is registered already")
    REGISTRY[kind.name] = kind
    if kind.records is not None and kind.records not in INTERRUPT_KINDS:
        INTERRUPT_KINDS.append(kind.records)
    for fn in _listeners:
        fn()


def unregister(name: str) -> None:
    """Remove a kind registered with :func:`register` (for tests of example kinds)."""
    kind = REGISTRY.pop(name)
    if kind.records is not None and kind.records in INTERRUPT_KINDS[INTERRUPT_KINDS.index("vina"):]:
        INTERRUPT_KINDS.remove(kind.records)
    for fn in _listeners:
        fn()


def on_register(fn) -> None:
    """Call ``fn()`` whenever the set of kinds changes."""
    _listeners.append(fn)


def workload_union():
    """The discriminated union of every registered kind's model (the ``[[workload]]`` type)."""
    models = tuple(k.model for k in REGISTRY.values())
    return Annotated[Union[models], Field(discriminator="kind")]


def workload_kinds() -> tuple[str, ...]:
    """Names of the registered kinds."""
    return tuple(REGISTRY)


def call_kinds() -> tuple[str, ...]:
    """Interrupt kinds whose rows are calls into the next higher VTL (with a round trip)."""
    return tuple(k.records for k in REGISTRY.values() if k.calls_up)


def kind_code(records: str) -> int:
    """The code of interrupt kind *records* in the interrupts table."""
    return INTERRUPT_KINDS.index(records)


def build_sources(sim, seqs) -> list:
    """One source per workload of ``sim.sc``, each with its own seed sequence."""
    return [REGISTRY[w.kind].source(sim, i, w, seq)
            for i, (w, seq) in enumerate(zip(sim.sc.workload, seqs))]


for _k in (timer.KIND, ipi.KIND, pv_ipi.KIND, external.KIND, calls.VTL_CALL, calls.INTERCEPT,
           compute.KIND, program.KIND):
    register(_k)
INTERRUPT_KINDS.insert(len(INTERRUPT_KINDS), "vina")
#: The built-in kinds' names (later registrations are in :func:`workload_kinds`).
WORKLOAD_KINDS = workload_kinds()

__all__ = ["Kind", "REGISTRY", "INTERRUPT_KINDS", "WORKLOAD_KINDS", "register", "unregister",
           "workload_union", "workload_kinds", "call_kinds", "kind_code", "build_sources"]
