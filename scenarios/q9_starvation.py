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


def main(argv=None):
    import numpy as np

    import vsmsim
    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args

    args = scenario_args(__doc__, argv)
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    rates = RATES_PER_VP
    if args.quick:
        sc, rates = sc.with_overrides({"duration": "4ms", "warmup": "1ms"}), [1000, 40000]
    n = sc.vm.vps
    rows, failed = [], 0
    for r in rates:
        cmp = vsmsim.compare(sc.with_overrides({"workload.2.rate": r * n}), baseline=False,
                             replications=args.replications)
        for p in cmp.save(f"{args.out}/{sc.name}/compare-{r}", plots=("png",)):
            print(f"plot: {p}")
        failed += len(cmp.failures)
        for d in cmp.designs:
            rows.append([f"{r:,}", d, ci_text(rep_values(cmp, d, "compute_share", "vtl0", 0),
                                              "share"),
                         ci_text(rep_values(cmp, d, "delivery_p99", "timer", 0), "ns"),
                         f"n={np.nanmean(rep_values(cmp, d, 'delivery_n', 'timer', 0)):,.0f}"])
    print(f"\nVTL0 progress under a VTL1 timer storm, mean ±95 % interval over "
          f"{args.replications} replications (n: VTL0 ticks handled per run):")
    print(fixed_table(["VTL1/s per VP", "design", "VTL0 compute share", "VTL0 tick p99",
                       "n"], rows))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
