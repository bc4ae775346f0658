"""The guest work measured on its own, the simulator's prediction, and the segments.

Guest work (the time the guests themselves spend inside a round trip) is measured apart
from the prototypes, on a single vCPU with no switch, so that the prediction does not
see the prototype's result:

* ``vtl1``: VTL1's service program run alone, one KVM_RUN per call (it exits at its
  ``out``): per-call median minus the clock, one Python call and ``kvm_run``; it includes
  the timed loop and every instruction around it (emulated instructions are not free);
* ``vtl0``: VTL0's caller run alone with the host re-entering at once on each call: the
  guest-timed round trip minus ``kvm_run`` and one Python call (the instructions inside
  the caller's ``rdtsc`` window);
* ``service``: VTL1's own rdtsc timing of its loop (reported, and used to pick the loop
  count that gives about the requested service time).
"""

from __future__ import annotations

import fcntl
import statistics
import time

from ..calibrate import guest64
from ..calibrate.kvm import KVM_RUN, Vm
from ..calibrate.paths import _per_call
from .paths import segments, step_segments


def _service_vm(kvm, cpuid, loops: int) -> Vm:
    vm = Vm(kvm, mem_size=guest64.MEM_SIZE, irqchip=True)
    try:
        vcpu = vm.create_vcpu()
        vm.write(guest64.CODE, guest64.SERVICE)
        guest64.set_service(vm, loops)
        guest64.enter_long_mode(vm, vcpu, guest64.CODE, cpuid=cpuid)
    except BaseException:
        vm.close()
        raise
    return vm


def _service_run(kvm, cpuid, loops: int, samples: int, tsc_mhz: float) -> tuple[float, float]:
    """(median host ns per KVM_RUN incl. clock, median guest-timed service ns)."""
    with _service_vm(kvm, cpuid, loops) as vm:
        vcpu = vm.vcpus[0]
        fd = vcpu.fd
        ioctl = fcntl.ioctl
        n = min(samples, guest64.MAX_CALLS - 10)

        def call():
            ioctl(fd, KVM_RUN, 0)

        call()
        guest64.set_service(vm, loops)
        host = _per_call(call, n)
        vcpu.expect_io(guest64.PORT_RETURN)
        ticks = guest64.results(vm, guest64.SERVICE_RESULTS, n)
    return host, statistics.median(ticks) / tsc_mhz * 1e3


def pick_loops(kvm, target_ns: float, tsc_mhz: float) -> int:
    """The service loop count whose guest-timed duration is closest to *target_ns*."""
    cpuid = kvm.supported_cpuid()
    _h, one = _service_run(kvm, cpuid, 1, 50, tsc_mhz)
    _h, nine = _service_run(kvm, cpuid, 9, 50, tsc_mhz)
    per_loop = max((nine - one) / 8, 1.0)
    return max(1, round(1 + (target_ns - one) / per_loop))


def measure_guest_work(kvm, loops: int, tsc_mhz: float, clock_ns: float, python_call_ns: float,
                       kvm_run_ns: float, samples: int = 500, repeat: int = 3,
                       between=None) -> dict:
    """``vtl1``, ``vtl0`` and ``service`` in ns (least disturbed of *repeat* runs).
    *between*, if given, is called before each run (the host-speed probe)."""
    cpuid = kvm.supported_cpuid()
    between = between or (lambda: None)
    vtl1, service = [], []
    for _ in range(repeat):
        between()
        host, svc = _service_run(kvm, cpuid, loops, samples, tsc_mhz)
        vtl1.append(host - clock_ns - python_call_ns - kvm_run_ns)
        service.append(svc)
    vtl0 = []
    for _ in range(repeat):
        between()
        vm = Vm(kvm, mem_size=guest64.MEM_SIZE, irqchip=True)
        with vm:
            vcpu = vm.create_vcpu()
            vm.write(guest64.CODE, guest64.CALLER)
            n = min(samples, guest64.MAX_CALLS)
            guest64.enter_long_mode(vm, vcpu, guest64.CODE, cpuid=cpuid, regs={
                "r12": guest64.CALLER_RESULTS, "r13": guest64.CALLER_RESULTS + 8 * n})
            ioctl, fd = fcntl.ioctl, vcpu.fd
            for _ in range(n + 1):   # the host re-enters at once: no switch
                ioctl(fd, KVM_RUN, 0)
            vcpu.expect_io(guest64.PORT_DONE)
            ticks = guest64.results(vm, guest64.CALLER_RESULTS, n)[10:]
        vtl0.append(statistics.median(ticks) / tsc_mhz * 1e3 - kvm_run_ns - python_call_ns)
    return {"vtl1": min(vtl1), "vtl0": min(vtl0), "service": min(service), "loops": loops}


def measure_vmm_switch(samples: int = 2000, repeat: int = 3) -> float:
    """The prototype VMM's own work per switch (the table's ``vmm_switch``), ns: building
    the target's register and segment-register images (:func:`~vsmsim.prototype.vmm.
    merge_regs`, ``merge_sregs``) as the VMMs do it, timed alone, net of the clock."""
    from ..calibrate.paths import _clock_pair
    from .vmm import merge_regs, merge_sregs
    regs = [bytearray(144) for _ in range(3)]
    sregs = [bytearray(320) for _ in range(3)]
    clock = _clock_pair(samples)

    def switch():
        merge_regs(regs[0], regs[1], regs[2])
        merge_sregs(sregs[0], sregs[1], sregs[2])

    return max(0.0, min(_per_call(switch, samples) for _ in range(repeat)) - clock)


def measured_segments(record) -> dict[str, list[float]]:
    """Per call, ns of each segment of :func:`vsmsim.prototype.paths.segments` from the
    VMM's timestamps; VTL0's KVM_RUN segment is the guest's round trip minus the VMM's
    part (VTL0's exit to its re-entry)."""
    st, names = record.stamps, segments(record.design)
    tsc = record.load["tsc_mhz"]
    rt = [t / tsc * 1e3 for t in record.guest_ticks]
    if all(record.handoffs.values()):
        order = ["call.exit", "call.handoff", "call.woke", "call.run", "return.exit",
                 "return.handoff", "return.woke", "return.run"]
    else:
        order = ["call.exit", "call.run", "return.exit", "return.run"]
    out = {n: [] for n in names}
    for i in range(record.calls):
        for j in range(len(order) - 1):
            out[names[j]].append(st[order[j + 1]][i] - st[order[j]][i])
        out[names[-1]].append(rt[i] - (st[order[-1]][i] - st[order[0]][i]))
    return out


def predicted_segments(design: str, cost_ns: dict[str, float], guest_work: dict) -> dict:
    """Predicted ns per measured segment: the table's steps in it priced with *cost_ns*
    (the profile with the prediction's overrides), plus the guest work measured apart
    (``vtl1`` in VTL1's KVM_RUN segment, ``vtl0`` in VTL0's)."""
    out = {}
    for seg, steps in step_segments(design).items():
        out[seg] = sum(cost_ns[c] * _times(t) for c, t in steps)
    out["VTL1 KVM_RUN + guest work"] += guest_work["vtl1"]
    out["VTL0 KVM_RUN + guest work"] += guest_work["vtl0"]
    return out


def _times(t) -> float:
    if isinstance(t, int):
        return float(t)
    # one VP, two VTLs: N = 1, V = 2
    return {"N": 1.0, "V": 2.0, "N*V": 2.0}[t]


def simulate_roundtrip(design, profile_path: str, overrides: dict, guest_work_ns: float,
                       calls: int = 50) -> dict:
    """Run the simulator on the prototype's workload: one VP, two VTLs, VTL0 calling VTL1
    (``vtl-call``) with a service of *guest_work_ns*, one call at a time.

    *design* is a built-in name or a design file. Returns ``median``, ``p10``, ``p90``,
    ``n`` of the round trips (ns), the counters per call and the scenario used.
    """
    from ..api import simulate

    period_ns = 2_000_000   # far longer than any round trip: calls never overlap
    scenario = {
        "name": "prototype-prediction",
        "seed": 0,
        "duration": period_ns * (calls + 1),
        "design": str(design),
        "costs": {"profile": str(profile_path), "override": dict(overrides)},
        "vm": {"vps": 1, "vtls": 2},
        "workload": [{"name": "vtl-call", "kind": "vtl-call", "vtl": 0,
                      "period": period_ns, "phase": 1000,
                      "service": f"{max(0, round(guest_work_ns))}ns"}],
    }
    t0 = time.perf_counter()
    res = simulate(scenario)
    calls_df = res.measured()
    calls_df = calls_df[calls_df.kind == "vtl-call"]
    rt = (calls_df.resumed_ns - calls_df.raised_ns).dropna().astype(float).tolist()
    n = len(rt)
    per_call = {k: v / n for k, v in res.counters.items()} if n else {}
    from ..calibrate.measure import quantile
    return {"median": statistics.median(rt), "p10": quantile(rt, 0.1),
            "p90": quantile(rt, 0.9), "n": n, "counters": per_call, "scenario": scenario,
            "wall_s": time.perf_counter() - t0}
