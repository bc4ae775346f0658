"""Question 5: what do posted interrupts (APICv/AVIC/IPIv) save per IPI?

An IPI-heavy VTL0 (200,000 IPIs per second over 16 VPs, 1 us handlers) with a light VTL1
timer. The host offers APICv and IPI virtualization (`vm.apicv`, `vm.ipiv`); each design
decides what it can use (APIC ID groups: neither, the disabled logical map inhibits APICv;
planes: APICv but not IPIv in the RFC). The script also runs the host without them.

Look at: exits per IPI, `posted_per_s` vs `injected_per_s`, IPI `delivery_p50/p99`.
It depends on: capabilities `posted` and `ipiv` of each design, the costs
`posted_delivery`, `ipiv_send`, `kick`, `exit`.

    python scenarios/q5_posted_interrupts.py
    vsmsim compare scenarios/q5_posted_interrupts.py     # host with APICv and IPIv
"""

SCENARIO = {
    "name": "q5-posted-interrupts",
    "description": "IPI-heavy VTL0 with APICv and IPIv offered by the host",
    "seed": 5,
    "duration": "50ms",
    "warmup": "2ms",
    "vm": {"vps": 16, "vtls": 2, "apicv": True, "ipiv": True},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "vtl0-ipi", "kind": "ipi", "vtl": 0, "rate": 200000, "dest": "random",
         "service": "1us"},
        {"name": "vtl1-timer", "kind": "timer", "vtl": 1, "period": "1ms", "service": "5us"},
    ],
}


def main(argv=None):
    import numpy as np

    import vsmsim
    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args

    args = scenario_args(__doc__, argv)
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    if args.quick:
        sc = sc.with_overrides({"duration": "4ms", "warmup": "1ms"})
    rows, failed = [], 0
    for label, ov in (("APICv+IPIv", {}), ("nothing", {"vm.apicv": False, "vm.ipiv": False})):
        cmp = vsmsim.compare(sc.with_overrides(ov), baseline=False,
                             replications=args.replications)
        tag = "offered" if not ov else "not-offered"
        for p in cmp.save(f"{args.out}/{sc.name}/compare-{tag}", plots=("png",)):
            print(f"plot: {p}")
        failed += len(cmp.failures)
        for d in cmp.designs:
            n = rep_values(cmp, d, "delivery_n", "ipi", 0)
            posted, injected = rep_values(cmp, d, "posted"), rep_values(cmp, d, "injected")
            # Exits per IPI count every exit of the run: the VTL1 timer adds about 0.16
            # exits per IPI here (1 kHz per VP x ~2 exits, against 12.5 kHz of IPIs per VP).
            rows.append([label, d, ci_text(rep_values(cmp, d, "exits") / n, ""),
                         ci_text(posted / np.maximum(posted + injected, 1), "share"),
                         ci_text(rep_values(cmp, d, "delivery_p50", "ipi", 0), "ns"),
                         ci_text(rep_values(cmp, d, "delivery_p99", "ipi", 0), "ns"),
                         f"n={np.nanmean(n):,.0f}"])
    print(f"\nIPI cost with and without posted interrupts / IPI virtualization, mean ±95 % "
          f"interval over {args.replications} replications (n: IPIs handled per run):")
    print(fixed_table(["host offers", "design", "exits/IPI", "posted", "IPI p50", "IPI p99",
                       "n"], rows))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
