"""Question 7: VM per VTL vs planes: what do the extra hand-offs and ioctls cost?

VTL0 calls VTL1 5,000 times per second per VP and VTL1 takes a 1 kHz timer. VM per VTL
hands every switch from one host thread to another (a signal kick of the parked VTL1
thread on a call, a futex wake of VTL0's thread on a return) and syncs state with 27 or
20 ioctls (the QEMU proof of concept); planes re-enter KVM_RUN on the same thread after
moving the shared registers (8 ioctls). How much does that cost per switch, and how
sensitive is it to the host's hand-off latency? This project's machines (VMs) measured an
eventfd wake of ~3.5 us on one CPU and ~25 us across CPUs, a signal kick of a parked vCPU
21-24 us (issue 13; docs/costs.md): whether a VP's VTL threads share a physical CPU
decides which applies.

Look at: round trip p50 per design and hand-off cost, and wakeups/ioctls per switch.
It depends on: `switch.*` paths (hand-offs + state ioctls in vm-per-vtl, 8 ioctls in
planes) and the costs `handoff_futex` and `kick_parked`, swept here together.

    python scenarios/q7_vm_per_vtl_vs_planes.py
"""

SCENARIO = {
    "name": "q7-vm-per-vtl-vs-planes",
    "description": "VTL calls and VTL1 timers under VM per VTL and planes",
    "seed": 7,
    "duration": "50ms",
    "warmup": "2ms",
    "design": "vm-per-vtl",
    "vm": {"vps": 8, "vtls": 2},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "secure-call", "kind": "vtl-call", "vtl": 0, "rate": 40000, "service": "2us"},
        {"name": "vtl1-timer", "kind": "timer", "vtl": 1, "period": "1ms", "service": "10us"},
    ],
}

HANDOFFS = ["1us", "3.5us", "5us", "10us", "25us"]


def main():
    import vsmsim

    sc = vsmsim.Scenario.model_validate(SCENARIO)
    print(f"{'handoff':>7s} {'design':12s} {'rt p50 us':>10s} {'wake/switch':>12s} "
          f"{'ioctl/switch':>13s} {'VTL0 share':>11s}")
    for w in HANDOFFS:
        for design in ("vm-per-vtl", "planes"):
            res = vsmsim.simulate(sc.with_overrides({"design": design,
                                                     "costs.override.handoff_futex": w,
                                                     "costs.override.kick_parked": w}))
            calls = res.measured()
            calls = calls[calls.kind == "vtl-call"]
            rt = (calls.resumed_ns - calls.raised_ns).dropna().astype(float)
            c = res.counters
            sw = max(c["switches"], 1)
            share = res.residency["compute0_ns"].sum() / res.residency["total_ns"].sum()
            print(f"{w:>7s} {design:12s} {rt.median() / 1e3:10.2f} {c['wakeups'] / sw:12.2f} "
                  f"{c['ioctls'] / sw:13.2f} {share:11.3f}")


if __name__ == "__main__":
    main()
