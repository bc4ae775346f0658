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


def main():
    import vsmsim

    busy = vsmsim.Scenario.model_validate(SCENARIO)
    halted = busy.with_overrides({"name": "q2-inactive-timers-halted",
                                  "workload": busy.to_input()["workload"][1:]})
    rows = []
    for label, sc in (("busy", busy), ("halted", halted)):
        cmp = vsmsim.compare(sc, baseline=False)
        cmp.save(f"results/{sc.name}/compare")
        for design, res in cmp.results.items():
            lat = res.latency("timer", vtl=1)
            n = len(lat)
            c = res.counters
            rows.append((label, design, lat.median() / 1e3, lat.quantile(0.99) / 1e3,
                         c["wakeups"] / n, c["uexits"] / n, c["ioctls"] / n))
    print(f"{'VTL0':7s} {'design':16s} {'p50 us':>8s} {'p99 us':>8s} {'wake/exp':>9s} "
          f"{'uexit/exp':>9s} {'ioctl/exp':>9s}")
    for r in rows:
        print(f"{r[0]:7s} {r[1]:16s} {r[2]:8.2f} {r[3]:8.2f} {r[4]:9.2f} {r[5]:9.2f} {r[6]:9.2f}")


if __name__ == "__main__":
    main()
