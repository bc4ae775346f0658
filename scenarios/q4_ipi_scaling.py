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

    python scenarios/q4_ipi_scaling.py          # prints the table, ~1 minute
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


def main():
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    print(f"{'mode':9s} {'VPs':>5s} {'design':16s} {'IPI p50 us':>11s} {'scanned/s':>12s} "
          f"{'overhead':>9s}")
    overhead = {}
    for mode in MODES:
        for n in VPS:
            for design in DESIGNS:
                res = vsmsim.simulate(variant(sc, n, mode).with_overrides({"design": design}))
                kind = "pv-ipi" if mode == "pv-ipi" else "ipi"
                lat = res.latency(kind)
                share = res.residency["compute0_ns"].sum() / res.residency["total_ns"].sum()
                overhead[(mode, n, design)] = 1 - share
                secs = res.measured_ns / 1e9
                print(f"{mode:9s} {n:5d} {design:16s} {lat.median() / 1e3:11.2f} "
                      f"{res.counters['scanned_vcpus'] / secs:12.3g} {1 - share:9.4f}")
    for mode in MODES:
        for other in DESIGNS[1:]:
            worse = [n for n in VPS
                     if overhead[(mode, n, "apic-id-groups")] > overhead[(mode, n, other)]]
            better = [n for n in VPS if n not in worse]
            print(f"{mode}: APIC ID groups vs {other}: cheaper for VTL0 at "
                  f"{better or 'no'} VPs, dearer at {worse or 'no'} VPs")

if __name__ == "__main__":
    main()
