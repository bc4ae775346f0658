"""Which host threads a run has and where they may run.

One thread per vCPU object of the design: ``N x V`` when the design gives each VTL of a
VP its own vCPU (capability ``thread_per_vtl``: vm-per-vtl, apic-id-groups,
apic-namespaces), ``N`` otherwise (planes: one vCPU thread switches planes). Then one
background thread per CPU and noise entry. Placement gives each vCPU thread its CPUs:

- ``pinned``: the k-th thread created on CPU k mod cpus, threads created VM by VM as a
  VMM would (every VP's VTL0 vCPU, then every VP's VTL1 vCPU: vp0.vtl0 .. vpN-1.vtl0,
  vp0.vtl1 ..), so with N CPUs the VTL0 threads get one each;
- ``vp-shared``: every thread of VP i on CPU i mod cpus;
- ``free``: any CPU; the policy places it at each wake-up;

and ``host.affinity`` overrides that per thread (``vpN`` for all of a VP's threads).
"""

from __future__ import annotations

from .config import effective_cpus
from .machine import HostThread


def vcpu_threads(host_cfg, n: int, nvtl: int, per_vtl: bool,
                 vmm: bool = False) -> tuple[list, int]:
    """The vCPU threads and the CPU count: ``(threads, ncpus)``; with *per_vtl* thread
    ``vp * nvtl + vtl`` serves (vp, vtl), else thread ``vp`` serves every VTL of vp. With
    *vmm*, a last thread ``vmm``: the VMM's main thread (after the vCPU threads under
    ``pinned``, on CPU 0 under ``vp-shared``, anywhere under ``free``)."""
    per_vp = nvtl if per_vtl else 1
    ncpus = effective_cpus(host_cfg, n, per_vp, vmm)
    everywhere = tuple(range(ncpus))
    threads = []
    for vp in range(n):
        for j in range(per_vp):
            k = len(threads)
            vtl = j if per_vtl else -1
            name = f"vp{vp}.vtl{vtl}" if per_vtl else f"vp{vp}"
            if host_cfg.placement == "vp-shared":
                allowed = (vp % ncpus,)
            elif host_cfg.placement == "free":
                allowed = everywhere
            else:
                allowed = ((j * n + vp) % ncpus,)  # created VM by VM (docstring)
            given = host_cfg.affinity.get(name, host_cfg.affinity.get(f"vp{vp}"))
            if given is not None:
                allowed = tuple(sorted(set(given)))
            home = allowed[0] if len(allowed) == 1 else (j * n + vp) % ncpus
            threads.append(HostThread(k, name, vp, vtl, allowed,
                                      home if home in allowed else allowed[0]))
    if vmm:
        k = len(threads)
        allowed = (everywhere if host_cfg.placement == "free" else
                   (0,) if host_cfg.placement == "vp-shared" else (k % ncpus,))
        allowed = tuple(sorted(set(host_cfg.affinity.get("vmm", allowed))))
        threads.append(HostThread(k, "vmm", -1, -1, allowed, allowed[0]))
    return threads, ncpus


def noise_threads(host_cfg, ncpus: int, first_tid: int) -> list:
    """``[(thread, noise_cfg)]``: one background thread per CPU of each noise entry."""
    out = []
    for i, nz in enumerate(host_cfg.noise):
        cpus = range(ncpus) if nz.cpus == "all" else nz.cpus
        for c in cpus:
            t = HostThread(first_tid + len(out), f"noise{i}.cpu{c}", -1, -1, (c,), c)
            out.append((t, nz))
    return out
