"""Question 3: what does a VTL call/return round trip cost, and a Windows VSM boot?

VTL0 makes VTL calls into VTL1 (each served in 2 us) at 2,500 calls per second per VP,
among VTL0's own 4 kHz tick and a 1 kHz (on average) VTL1 timer that calls can collide with.
How long is the round trip (call issued to VTL0 resumed) per design, and what is the
projected switch overhead of a Windows VSM boot, which makes 10^5 to 10^6 VTL transitions
(seed thread; later series report minutes of switch time)?

Look at: `roundtrip_p50` / `roundtrip_p99` for kind=vtl-call, `switch_mean` for call and
return, and the projection this script prints (transitions x mean call/return switch time).
It depends on: `switch.call` and `switch.return` of each design: uexit + cross-thread
hand-offs + state ioctls in the VMM designs (27 + 20 in vm-per-vtl, 18 + 18 in the APIC ID
designs), a plane re-entry with 8 ioctls in planes, an in-kernel switch in
planes-inkernel; and on `uexit`, `kick_parked`, `handoff_futex`, the `ioctl_*` costs,
`vmm_switch`, `vtl_state_switch` (docs/costs.md).

    python scenarios/q3_vtl_call_roundtrip.py
"""

SCENARIO = {
    "name": "q3-vtl-call-roundtrip",
    "description": "VTL0 calls VTL1 for a 2 us service, 2.5k calls/s per VP, among timers",
    "seed": 3,
    "duration": "100ms",
    "warmup": "2ms",
    "vm": {"vps": 8, "vtls": 2},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "secure-call", "kind": "vtl-call", "vtl": 0, "rate": 20000, "service": "2us"},
        # Background interrupts a call can collide with: VTL0's tick, a VTL1 timer.
        {"name": "vtl0-tick", "kind": "timer", "vtl": 0, "period": "250us", "vector": 0xEF,
         "service": "2us"},
        {"name": "vtl1-timer", "kind": "timer", "vtl": 1, "rate": 8000, "service": "10us"},
    ],
}


def main(argv=None):
    import numpy as np

    import vsmsim
    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args

    args = scenario_args(__doc__, argv)
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    if args.quick:
        sc = sc.with_overrides({"duration": "6ms", "warmup": "1ms"})
    cmp = vsmsim.compare(sc, replications=args.replications)
    for p in cmp.save(f"{args.out}/{sc.name}/compare", plots=("png",)):
        print(f"plot: {p}")
    rows = []
    for d in cmp.designs:
        calls = rep_values(cmp, d, "switch_count", "call")
        rets = rep_values(cmp, d, "switch_count", "return")
        mean_switch = ((rep_values(cmp, d, "switch_mean", "call") * calls
                        + rep_values(cmp, d, "switch_mean", "return") * rets) / (calls + rets))
        rows.append([d, ci_text(rep_values(cmp, d, "roundtrip_p50", "vtl-call", 1), "ns"),
                     ci_text(rep_values(cmp, d, "roundtrip_p99", "vtl-call", 1), "ns"),
                     f"n={np.nanmean(rep_values(cmp, d, 'roundtrip_n', 'vtl-call', 1)):,.0f}",
                     ci_text(mean_switch, "ns"),
                     ci_text(1e5 * mean_switch, "ns"), ci_text(1e6 * mean_switch, "ns")])
    print(f"\nVTL call round trip and projected VSM boot switch time (10^5 and 10^6 "
          f"transitions x the mean call/return switch), mean ±95 % interval over "
          f"{args.replications} replications:")
    print(fixed_table(["design", "round trip p50", "p99", "n", "switch mean",
                       "1e5 transitions", "1e6 transitions"], rows))
    return 1 if cmp.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
