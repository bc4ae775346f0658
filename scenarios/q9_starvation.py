"""Question 9: does VTL0 starve when VTL1's interrupt rate is high?

VTL1 takes timer interrupts at a growing rate (1 to 40 kHz per VP, 8 us handlers);
VTL0 computes and takes its own 4 kHz tick. How much VTL0 work still completes, and how
late is VTL0's tick, per design? A VTL1 interrupt always preempts VTL0 (rule 6) and VTL0
cannot preempt VTL1 (rule 5), so past some rate VTL0 gets nothing: the switch costs of
each design decide where.

Look at: VTL0 compute share and the VTL0 tick's `delivery_p99` against the VTL1 rate.
It depends on: the cost of a VTL1 entry and exit (deliver.inactive + switch.interrupt +
switch.return) relative to the 8 us handler.

    python scenarios/q9_starvation.py
"""

SCENARIO = {
    "name": "q9-starvation",
    "description": "VTL1 interrupt storm against VTL0 progress",
    "seed": 9,
    "duration": "50ms",
    "warmup": "2ms",
    "vm": {"vps": 4, "vtls": 2},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "vtl0-tick", "kind": "timer", "vtl": 0, "period": "250us", "vector": 0xEF,
         "service": "2us"},
        {"name": "vtl1-storm", "kind": "timer", "vtl": 1, "rate": 40000, "service": "8us"},
    ],
}

RATES_PER_VP = [1000, 5000, 10000, 20000, 40000]


def main():
    import vsmsim

    sc = vsmsim.Scenario.model_validate(SCENARIO)
    n = sc.vm.vps
    print(f"{'VTL1/s/VP':>9s} " + " ".join(f"{d:>16s}" for d in vsmsim.designs.BUILTIN_DESIGNS))
    for r in RATES_PER_VP:
        cells = []
        for design in vsmsim.designs.BUILTIN_DESIGNS:
            res = vsmsim.simulate(sc.with_overrides({"design": design,
                                                     "workload.2.rate": r * n}))
            share = res.residency["compute0_ns"].sum() / res.residency["total_ns"].sum()
            tick = res.latency("timer", vtl=0)
            p99 = tick.quantile(0.99) / 1e3 if len(tick) else float("nan")
            cells.append(f"{share:6.3f} {p99:7.1f}us")
        print(f"{r:9d} " + " ".join(f"{c:>16s}" for c in cells))
    print("cells: VTL0 compute share, VTL0 tick delivery p99")


if __name__ == "__main__":
    main()
