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


def main(argv=None):
    import numpy as np

    import vsmsim
    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args

    args = scenario_args(__doc__, argv)
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    handoffs = HANDOFFS
    if args.quick:
        sc, handoffs = sc.with_overrides({"duration": "4ms", "warmup": "1ms"}), ["1us", "25us"]
    rows, failed = [], 0
    for w in handoffs:
        cmp = vsmsim.compare(sc.with_overrides({"costs.override.handoff_futex": w,
                                                "costs.override.kick_parked": w}),
                             ["vm-per-vtl", "planes"], replications=args.replications)
        failed += len(cmp.failures)
        for p in cmp.save(f"{args.out}/{sc.name}/compare-handoff-{w}", plots=("png",)):
            print(f"plot: {p}")
        for d in cmp.designs:
            sw = rep_values(cmp, d, "switches")
            rows.append([w, d, ci_text(rep_values(cmp, d, "roundtrip_p50", "vtl-call", 1), "ns"),
                         f"n={np.nanmean(rep_values(cmp, d, 'roundtrip_n', 'vtl-call', 1)):,.0f}",
                         ci_text(rep_values(cmp, d, "wakeups") / sw, ""),
                         ci_text(rep_values(cmp, d, "ioctls") / sw, ""),
                         ci_text(rep_values(cmp, d, "vtl0_tax", "", 0), "share")])
    print(f"\nVTL call round trip and host work per switch against the hand-off cost "
          f"(handoff_futex = kick_parked), mean ±95 % interval over {args.replications} "
          f"replications (counters and switches over the same measured window):")
    print(fixed_table(["hand-off", "design", "round trip p50", "n", "wakeups/switch",
                       "ioctls/switch", "VTL0 tax"], rows))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
