"""The scenario's ``[host]`` section: physical CPUs, placement, policy, noisy neighbours.

A scenario without ``[host]`` runs as before: every host thread has a CPU of its own and is
free the moment it wakes. With it, the host threads the design has (one per vCPU) run on
``cpus`` physical CPUs under a host scheduler (:mod:`vsmsim.host.policy`). Durations are ns.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from ..schema import Duration, PositiveDuration, Strict, StrictFloat, StrictInt

MAX_CPUS = 4096
PLACEMENTS = ("pinned", "vp-shared", "free")


class NoiseConfig(Strict):
    """Background threads (other VMs, host daemons), one pinned to each listed CPU.

    Each is busy ``utilisation`` of the time in bursts of mean ``burst`` (exponential run
    and sleep times, drawn from the run's seed)."""

    cpus: Union[Literal["all"], list[StrictInt]] = Field("all", description="the CPUs that "
                                                          "get one background thread each")
    utilisation: StrictFloat = Field(description="fraction of the CPU the background thread "
                                     "wants, 0 < u < 1")
    burst: PositiveDuration = Field(1_000_000, description="mean length of one busy burst")


    @field_validator("utilisation")
    @classmethod
    def _fraction(cls, v):
        if not 0.0 < v < 1.0:
            raise ValueError(f"{v!r} is not a fraction of a CPU; allowed: 0 < utilisation < 1")
        return v


class HostConfig(Strict):
    """Physical CPUs and the host scheduler under the vCPU threads (docs/host.md)."""

    cpus: Optional[StrictInt] = Field(None, ge=1, le=MAX_CPUS, description="physical CPUs; "
                                      "default: enough for the placement (one per thread, or "
                                      "one per VP for vp-shared)")
    placement: Literal["pinned", "vp-shared", "free"] = Field(
        "pinned", description="pinned: the k-th vCPU thread created (every VTL0 vCPU, then every "
        "VTL1 vCPU) on CPU k mod cpus; vp-shared: a VP's threads share CPU vp mod cpus; free: "
        "the policy places threads at each wake-up")
    affinity: dict[str, list[StrictInt]] = Field(
        default_factory=dict, description="explicit CPUs per thread, e.g. {\"vp0.vtl1\" = [2]} "
        "or {\"vp3\" = [0, 1]} (all of that VP's threads) or {\"vmm\" = [0]} (the VMM's main "
        "thread); overrides the placement's choice")
    policy: str = Field("fair", description="host scheduling policy: fair or fifo (or one "
                        "registered with vsmsim.host.register_policy)")
    halt_poll: Duration = Field(0, description="halt-polling window (KVM halt_poll_ns): a "
                                "halted vCPU thread polls this long before it sleeps; a wake "
                                "inside it skips the wake-up cost (KVM's default is 200us; 0 "
                                "keeps the design tables' wake costs)")
    latency: PositiveDuration = Field(6_000_000, description="fair: target latency "
                                      "(sysctl_sched_latency): the period shared by runnable threads")
    min_granularity: PositiveDuration = Field(750_000, description="fair: the shortest slice "
                                              "(sysctl_sched_min_granularity)")
    wakeup_granularity: Duration = Field(1_000_000, description="fair: a woken thread preempts "
                                         "the running one when owed more than this "
                                         "(sysctl_sched_wakeup_granularity)")
    noise: list[NoiseConfig] = Field(default_factory=list)

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, v):
        from .policy import POLICIES
        if v not in POLICIES:
            raise ValueError(f"{v!r} is not a host policy; allowed: {', '.join(POLICIES)}")
        return v

    @field_validator("affinity")
    @classmethod
    def _thread_names(cls, v):
        import re
        for name, cpus in v.items():
            if not re.fullmatch(r"vp\d+(\.vtl\d+)?|vmm", name):
                raise ValueError(f"key {name!r} is not a thread name; write vpN (all of a VP's "
                                 f"threads), vpN.vtlM or vmm (the VMM's main thread)")
            if not cpus:
                raise ValueError(f"{name} = []: a thread needs at least one CPU")
        return v


def effective_cpus(host: HostConfig, n: int, per_vp: int, vmm: bool = False) -> int:
    """``host.cpus``, or its default: one CPU per thread (*per_vp* threads for each of the
    *n* VPs, plus the VMM's main thread if *vmm*), or one per VP for ``vp-shared``."""
    if host.cpus is not None:
        return host.cpus
    return n if host.placement == "vp-shared" else n * per_vp + (1 if vmm else 0)


def check_host(host: HostConfig, n: int, nvtl: int, per_vp: int, vmm: bool = False) -> list[str]:
    """Problems of *host* against a VM of *n* VPs and *nvtl* VTLs whose design has *per_vp*
    host threads per VP (and a VMM main thread if *vmm*; one line each)."""
    errs = []
    cpus = effective_cpus(host, n, per_vp, vmm)
    for name, allowed in host.affinity.items():
        bad = [c for c in allowed if not 0 <= c < cpus]
        if name == "vmm":
            if bad:
                errs.append(f"host.affinity.vmm: CPU {bad[0]} is out of range 0..{cpus - 1} "
                            f"(host.cpus = {cpus})")
            continue
        parts = name.split(".")
        vp = int(parts[0][2:])
        if vp >= n:
            errs.append(f"host.affinity.{name}: VP {vp} is out of range 0..{n - 1} (vm.vps = {n})")
        if len(parts) == 2 and int(parts[1][3:]) >= nvtl:
            errs.append(f"host.affinity.{name}: VTL {parts[1][3:]} is outside 0..{nvtl - 1} "
                        f"(vm.vtls = {nvtl})")
        bad = [c for c in allowed if not 0 <= c < cpus]
        if bad:
            errs.append(f"host.affinity.{name}: CPU {bad[0]} is out of range 0..{cpus - 1} "
                        f"(host.cpus = {cpus})")
    for i, nz in enumerate(host.noise):
        if nz.cpus != "all":
            bad = [c for c in nz.cpus if not 0 <= c < cpus]
            if bad:
                errs.append(f"host.noise[{i}].cpus: CPU {bad[0]} is out of range 0..{cpus - 1} "
                            f"(host.cpus = {cpus})")
    return errs
