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


def main():
    import vsmsim

    sc = vsmsim.Scenario.model_validate(SCENARIO)
    cmp = vsmsim.compare(sc)
    cmp.save(f"results/{sc.name}/compare")
    print(f"{'design':16s} {'rt p50 us':>10s} {'rt p99 us':>10s} {'switch us':>10s} "
          f"{'1e5 trans s':>11s} {'1e6 trans s':>11s}")
    for design, res in cmp.results.items():
        calls = res.measured()
        calls = calls[calls.kind == "vtl-call"]
        rt = (calls.resumed_ns - calls.raised_ns).dropna().astype(float)
        sw = res.switches[res.switches.reason.isin(["call", "return"])]
        mean_switch = float((sw.end_ns - sw.start_ns).dropna().astype(float).mean())
        print(f"{design:16s} {rt.median() / 1e3:10.2f} {rt.quantile(0.99) / 1e3:10.2f} "
              f"{mean_switch / 1e3:10.2f} {1e5 * mean_switch / 1e9:11.3f} "
              f"{1e6 * mean_switch / 1e9:11.2f}")


if __name__ == "__main__":
    main()
