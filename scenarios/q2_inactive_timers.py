"""Question 2: how late are VTL1 periodic timers while VTL1 is inactive?

VTL1 arms a 1 kHz periodic timer on every VP. VTL0 is either busy (compute) or idle
(halted). How late does each expiry reach VTL1's handler, and how many host wake-ups,
userspace exits and ioctls does each expiry cost, per design?

Look at: `wakeup_p50` / `wakeup_p99` for kind=timer, vtl=1, and the counters per expiry
printed by this script (wakeups, uexits, ioctls divided by the number of VTL1 expiries).
It depends on: the design's `deliver.inactive.timer` (VTL0 busy) and
`deliver.inactive-halted.timer` (VTL0 halted) paths, then `switch.interrupt`.

    python scenarios/q2_inactive_timers.py            # both variants, all designs
    vsmsim compare scenarios/q2_inactive_timers.py    # the busy variant only
"""

SCENARIO = {
    "name": "q2-inactive-timers",
    "description": "VTL1 1 kHz timers while VTL0 is busy (the halted variant drops compute)",
    "seed": 2,
    "duration": "200ms",
    "warmup": "5ms",
    "vm": {"vps": 8, "vtls": 2},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "vtl1-timer", "kind": "timer", "vtl": 1, "period": "1ms", "phase": "137us",
         "service": "10us"},
    ],
}


def main(argv=None):
    import vsmsim
    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args

    args = scenario_args(__doc__, argv)
    busy = vsmsim.Scenario.model_validate(SCENARIO)
    if args.quick:
        busy = busy.with_overrides({"duration": "6ms", "warmup": "1ms"})
    halted = busy.with_overrides({"name": "q2-inactive-timers-halted",
                                  "workload": busy.to_input()["workload"][1:]})
    rows, failed = [], 0
    for label, sc in (("busy", busy), ("halted", halted)):
        cmp = vsmsim.compare(sc, baseline=False, replications=args.replications)
        out = f"{args.out}/{sc.name}/compare"
        for p in cmp.save(out, plots=("png",)):
            print(f"plot: {p}")
        failed += len(cmp.failures)
        for design in cmp.designs:
            n = rep_values(cmp, design, "wakeup_n", "timer", 1)
            per = {c: rep_values(cmp, design, c) / n for c in ("wakeups", "uexits", "ioctls")}
            rows.append([label, design,
                         ci_text(rep_values(cmp, design, "wakeup_p50", "timer", 1), "ns"),
                         ci_text(rep_values(cmp, design, "wakeup_p99", "timer", 1), "ns"),
                         f"n={n.mean():,.0f}",
                         *(ci_text(per[c], "") for c in ("wakeups", "uexits", "ioctls"))])
    print(f"\nVTL1 timer wake-up latency and host work per expiry, mean ±95 % interval over "
          f"{args.replications} replications (n: expiries per run):")
    print(fixed_table(["VTL0", "design", "wake-up p50", "wake-up p99", "n", "wakeups/exp",
                       "uexits/exp", "ioctls/exp"], rows))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
