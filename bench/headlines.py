"""q1, q3 and q5 headline numbers per design, one line each (to compare two checkouts).

    python bench/headlines.py     # from the repository root; about a minute

Columns: q1 VTL1 timer delivery p50/p99 (us), q3 VTL call round trip p50/p99 (us), q5
exits per IPI and IPI delivery p50 (us). Designs the checkout does not have print "-".
"""
import sys
from pathlib import Path

# bench/profile.py would shadow the standard library's profile module (see bench/run.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import vsmsim  # noqa: E402

designs = ["apic-id-groups", "apic-namespaces", "vm-per-vtl", "planes", "planes-rfc", "planes-inkernel"]
have = set(vsmsim.designs.BUILTIN_DESIGNS)
q1 = vsmsim.load_scenario("scenarios/q1_preemption.toml")
q3 = vsmsim.load_scenario("scenarios/q3_vtl_call_roundtrip.py")
q5 = vsmsim.load_scenario("scenarios/q5_posted_interrupts.py")
print("design q1_p50_us q1_p99_us q3_rt_p50_us q3_rt_p99_us q5_exits_per_ipi q5_ipi_p50_us")
for d in designs:
    if d not in have:
        print(d, "-")
        continue
    r1 = vsmsim.simulate(q1.with_overrides({"design": d}))
    l1 = r1.latency("timer", vtl=1)
    r3 = vsmsim.simulate(q3.with_overrides({"design": d}))
    m = r3.measured()
    c = m[m.kind == "vtl-call"]
    rt = (c.resumed_ns - c.raised_ns).dropna().astype(float)
    r5 = vsmsim.simulate(q5.with_overrides({"design": d}))
    ipis = r5.measured()
    ipis = ipis[ipis.kind == "ipi"]
    epi = r5.counters["exits"] / max(len(ipis), 1)
    print(d, round(l1.quantile(.5)/1e3, 2), round(l1.quantile(.99)/1e3, 2), round(rt.quantile(.5)/1e3, 2),
          round(rt.quantile(.99)/1e3, 2), round(epi, 3), round(r5.latency("ipi").quantile(.5)/1e3, 2))
