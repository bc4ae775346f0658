"""Question 7: VM per VTL vs planes: how sensitive is each to where its host threads run?

VTL0 calls VTL1 5,000 times per second per VP (2 us of service) and VTL1 takes a 1 kHz
timer. VM per VTL gives every VTL of every VP its own vCPU thread and hands each switch
from one thread to the other (a signal kick of the parked VTL1 thread on a call, a futex
wake of VTL0's thread on a return; the QEMU proof of concept); planes keep one thread per
VP that re-enters KVM_RUN for the other plane. Under a host layer the hand-off's price is
no longer one number: on one CPU the waking thread blocks and the CPU switches to the
woken one (context_switch), across CPUs the design's wake cost applies, and with fewer CPUs
than threads (overcommit), or with other work on the CPUs (noisy neighbours), a woken
thread may wait for a CPU. Which design wins where: placement pinned (thread k on CPU k
mod cpus), vp-shared (a VP's threads on one CPU), free (the fair policy places threads),
at 0.5x (a CPU for every thread), 1x, 1.5x and 2x VPs per CPU, with and without 30 %
background load on every CPU?

Look at: the VTL call round trip p50, the VTL1 timer's delivery p99 and VTL0's compute
share per design, and the verdict column: the paired difference vm-per-vtl - planes over
replications, called a win only when its 95 % interval excludes zero.
It depends on: the `switch.*` paths and their `handoff = true` steps (docs/host.md), the
costs `kick_parked`, `handoff_futex`, `context_switch`, `migration`, `cstate_exit`, and
the `[host]` section (cpus, placement, policy, noise).

    python scenarios/q7_vm_per_vtl_vs_planes.py
"""

SCENARIO = {
    "name": "q7-vm-per-vtl-vs-planes",
    "description": "VTL calls and VTL1 timers under VM per VTL and planes, on a host",
    "question": "Which of VM per VTL and planes is faster where, as placement, overcommit "
                "and background load on the host change?",
    "seed": 7,
    "duration": "40ms",
    "warmup": "2ms",
    "design": "vm-per-vtl",
    "vm": {"vps": 8, "vtls": 2},
    "host": {"placement": "pinned", "cpus": 8},
    "workload": [
        {"name": "vtl0-work", "kind": "compute", "vtl": 0},
        {"name": "secure-call", "kind": "vtl-call", "vtl": 0, "rate": 40000, "service": "2us"},
        {"name": "vtl1-timer", "kind": "timer", "vtl": 1, "period": "1ms", "service": "10us"},
    ],
}

PLACEMENTS = ["pinned", "vp-shared", "free"]
OVERCOMMIT = [0.5, 1.0, 1.5, 2.0]  # VPs per host CPU (0.5: a CPU for every vm-per-vtl thread)
NOISE = [0.0, 0.3]             # background utilisation of every CPU
DESIGNS = ["vm-per-vtl", "planes"]
#: metric, kind, vtl, label, unit, scale, lower is better
METRICS = [("roundtrip_p50", "vtl-call", 1, "call p50", "us", 1e-3, True),
           ("delivery_p99", "timer", 1, "VTL1 timer p99", "us", 1e-3, True),
           ("compute_share", "vtl0", 0, "VTL0 compute", "%", 100.0, False)]


def configs(vps: int, quick: bool = False):
    """(placement, overcommit, noise, host section) for every cell of the grid."""
    for placement in PLACEMENTS:
        for oc in (OVERCOMMIT[1::2] if quick else OVERCOMMIT):
            for noise in (NOISE[1:] if quick else NOISE):
                host = {"placement": placement, "cpus": max(1, round(vps / oc))}
                if noise:
                    host["noise"] = [{"utilisation": noise, "burst": "500us"}]
                yield placement, oc, noise, host


def verdict(a, b, lower_better: bool) -> tuple[str, str]:
    """(difference text, winner) of paired replications a - b (vm-per-vtl - planes)."""
    import math

    from vsmsim.stats import paired_difference
    n, mean, _sd, lo, hi = paired_difference(a, b)
    if n < 2 or math.isnan(lo):
        return f"{mean:+.2f} (n={n})", "n/a (needs >= 2 replications)"
    if lo <= 0 <= hi:
        return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]", "no clear difference"
    better_a = (mean < 0) == lower_better
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]", DESIGNS[0] if better_a else DESIGNS[1]


def plot(cells, out_png):
    """Grouped bars per host cell and design, 95 % intervals: the call round trip p50 and
    the VTL1 timer's delivery p99 (log scale)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(cells)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(names)), 6.4), sharex=True)
    x = np.arange(len(names))
    for ax, label in zip(axes, ("call p50", "VTL1 timer p99")):
        for k, d in enumerate(DESIGNS):
            mean = [cells[c][label][d][0] for c in names]
            half = [cells[c][label][d][1] for c in names]
            ax.bar(x + (k - 0.5) * 0.4, mean, 0.4, yerr=half, capsize=2, label=d)
        ax.set_ylabel(f"{label} (us)")
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_yscale("log")
    axes[1].set_xticks(x, names, rotation=40, ha="right", fontsize=8)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Question 7: vm-per-vtl vs planes by placement, VPs per CPU and background "
                      "load (mean, 95 % interval)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def main(argv=None):
    from pathlib import Path

    import numpy as np

    import vsmsim
    from vsmsim.report import ci_text, fixed_table, rep_values, scenario_args
    from vsmsim.stats import mean_interval

    args = scenario_args(__doc__, argv)
    sc = vsmsim.Scenario.model_validate(SCENARIO)
    if args.quick:
        sc = sc.with_overrides({"duration": "6ms", "warmup": "1ms", "vm.vps": 4})
    vps = sc.vm.vps
    rows, wins, failed, cells = [], {}, 0, {}
    for placement, oc, noise, host in configs(vps, args.quick):
        cmp = vsmsim.compare(sc.with_overrides({"host": host}), DESIGNS,
                             replications=args.replications)
        failed += len(cmp.failures)
        if cmp.failures:
            continue
        cell = f"{placement} {oc:g}x{' noise' if noise else ''}"
        for metric, kind, vtl, label, unit, scale, lower in METRICS:
            a = np.round(rep_values(cmp, DESIGNS[0], metric, kind, vtl) * scale, 6)
            b = np.round(rep_values(cmp, DESIGNS[1], metric, kind, vtl) * scale, 6)
            diff, who = verdict(a, b, lower)
            fam = metric.split("_")[0]
            n = [np.nanmean(rep_values(cmp, d, f"{fam}_n", kind, vtl)) for d in DESIGNS] \
                if fam in ("roundtrip", "delivery") else None
            rows.append([cell, f"{host['cpus']}", label, ci_text(a, unit), ci_text(b, unit),
                         f"n={n[0]:,.0f}/{n[1]:,.0f}" if n else "-", diff, who])
            wins.setdefault(label, []).append((cell, who))
            if label in ("call p50", "VTL1 timer p99"):
                cells.setdefault(cell, {})[label] = {
                    d: (float(np.nanmean(v)), float(np.nan_to_num(mean_interval(v)[4] -
                                                                  np.nanmean(v))))
                    for d, v in zip(DESIGNS, (a, b))}
    print(f"\n{vps} VPs x 2 VTLs; vm-per-vtl runs {2 * vps} vCPU threads, planes {vps}. "
          f"Mean ±95 % interval over {args.replications} replications; n = samples per run "
          f"(vm-per-vtl/planes); difference = vm-per-vtl - planes, paired, with its 95 % "
          f"interval:")
    print(fixed_table(["host", "cpus", "metric", "vm-per-vtl", "planes", "n", "difference",
                       "better"], rows))
    out = Path(args.out) / sc.name
    out.mkdir(parents=True, exist_ok=True)
    if cells:
        print(f"plot: {plot(cells, out / 'q7_host.png')}")
    print("\nAnswer (a design is better only where the paired interval excludes zero):")
    for label, cs in wins.items():
        by = {}
        for cell, who in cs:
            by.setdefault(who, []).append(cell)
        parts = [f"{who} in {len(c)} of {len(cs)} ({', '.join(c)})" for who, c in by.items()]
        print(f"- {label}: " + "; ".join(parts))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
