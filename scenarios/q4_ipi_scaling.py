"""Question 4: how does IPI cost scale with vCPU count, and where does APIC ID groups break even?

Every VP sends IPIs (2,000 per second per VP) to random VPs, with physical or logical
destinations or as Hyper-V PV IPIs, and makes 1,000 VTL calls per second. Under APIC ID
groups the logical map is off, so a logical or PV IPI scans all N x V vCPUs; under APIC
namespaces and VM per VTL the logical map still works and a PV IPI scans N.

Look at: the sender-side IPI latency (`delivery_p50`, kind=ipi or pv-ipi) against N, and
`scanned_vcpus_per_s`; the last column is the VP time not left to VTL0 (1 - VTL0 compute
share): the design whose overhead grows with N loses past the break-even N printed at
the end. It depends on: `send.ipi.logical` / `send.pv-ipi` (`scan_per_vcpu` x N*V or N),
`posted` capability (APIC ID groups cannot post), and the switch paths for the calls.

    python scenarios/q4_ipi_scaling.py          # the table and the break-even N (~15 s)
"""

import vsmsim

SCENARIO = {
    "name": "q4-ipi-scaling",
    "description": "IPIs with physical, logical or PV destinations as the VM grows",
    "seed": 4,
    "duration": "20ms",
    "warmup": "1ms",
    "vm": {"vps": 16, "vtls": 2, "apic_mode": "x2apic"},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "vtl0-ipi", "kind": "ipi", "vtl": 0, "rate": 32000, "dest": "random",
         "dest_mode": "logical", "service": "1us"},
        {"name": "secure-call", "kind": "vtl-call", "vtl": 0, "rate": 16000, "service": "2us"},
    ],
}

DESIGNS = ["apic-id-groups", "apic-namespaces", "vm-per-vtl", "planes", "planes-inkernel"]
VPS = [4, 16, 64, 256]
MODES = ["physical", "logical", "pv-ipi"]


def variant(sc, n, mode):
    """The scenario at *n* VPs with IPIs of *mode*, at constant per-VP load."""
    data = sc.to_input()
    ipi = dict(data["workload"][1])
    ipi["rate"] = 2000 * n
    if mode == "pv-ipi":
        ipi = {k: v for k, v in ipi.items() if k != "dest_mode"}
        ipi["kind"] = "pv-ipi"
    else:
        ipi["dest_mode"] = mode
    data["workload"][1] = ipi
    data["workload"][2]["rate"] = 1000 * n
    data["vm"]["vps"] = n
    return vsmsim.Scenario.model_validate(data)


def main(argv=None):
    import numpy as np

    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args

    args = scenario_args(__doc__, argv)
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    vps = VPS
    if args.quick:
        sc, vps = sc.with_overrides({"duration": "2ms", "warmup": "500us"}), [4, 16]
    rows, verdicts, failed = [], {}, 0
    for mode in MODES:
        for n in vps:
            cmp = vsmsim.compare(variant(sc, n, mode), DESIGNS, baseline=False,
                                 replications=args.replications)
            failed += len(cmp.failures)
            if n == vps[-1]:
                for p in cmp.save(f"{args.out}/{sc.name}/compare-{mode}-{n}", plots=("png",)):
                    print(f"plot: {p}")
            kind = "pv-ipi" if mode == "pv-ipi" else "ipi"
            secs = cmp[DESIGNS[0]].measured_ns / 1e9
            for d in cmp.designs:
                rows.append([mode, n, d, ci_text(rep_values(cmp, d, "delivery_p50", kind, 0), "ns"),
                             f"n={np.nanmean(rep_values(cmp, d, 'delivery_n', kind, 0)):,.0f}",
                             ci_text(rep_values(cmp, d, "scanned_vcpus") / secs, "1/s"),
                             ci_text(1 - rep_values(cmp, d, "compute_share", "vtl0", 0), "share")])
            # Paired: the VP time not left to VTL0, APIC ID groups minus each other design.
            diff = cmp.differences(reference="apic-id-groups")
            diff = diff[(diff["metric"] == "compute_share") & (diff["kind"] == "vtl0")]
            for _, r in diff.iterrows():
                verdicts[(mode, r["design"], n)] = r
    print(f"\nIPI cost against vCPU count, mean ±95 % interval over {args.replications} "
          f"replications (n: IPIs handled per run; overhead: 1 - VTL0 compute share):")
    print(fixed_table(["mode", "VPs", "design", "IPI p50", "n", "scanned vCPUs", "overhead"],
                      rows))
    print("\nBreak-even: APIC ID groups against each design, on the VTL0 compute share "
          "(paired per replication; a side is called only when its interval excludes 0):")
    for mode in MODES:
        for other in DESIGNS[1:]:
            calls = []
            for n in vps:
                r = verdicts[(mode, other, n)]
                # compute_share(other) - compute_share(groups) > 0: groups leaves VTL0 less.
                side = ("groups dearer" if r["ci_low"] > 0 else "groups cheaper"
                        if r["ci_high"] < 0 else "within noise")
                calls.append(f"{n}: {side}")
            dearer = [n for n in vps if verdicts[(mode, other, n)]["ci_low"] > 0]
            if not dearer:
                even = f"groups not shown dearer up to {vps[-1]} VPs"
            elif dearer[0] == vps[0]:
                even = f"groups dearer already at {vps[0]} VPs"
            else:
                prev = vps[vps.index(dearer[0]) - 1]
                even = f"break-even between {prev} and {dearer[0]} VPs"
            print(f"  {mode:9s} vs {other:16s} {'; '.join(calls)} -> {even}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
