"""Fingerprints of result tables over a fixed corpus: the A/B check of engine changes.

Usage::

    python bench/fingerprint.py --save /tmp/before.json      # on the old engine
    python bench/fingerprint.py --compare /tmp/before.json   # on the new one: exit 1 if any differs
    python bench/fingerprint.py --quick ...                  # a smaller corpus (about 20 s)

An optimisation of the engine must keep every result table identical. The corpus: the
standard workload at 4, 64 and (without ``--quick``) 1,024 VPs for a few milliseconds;
the TOML scenario files under every built-in design; the fast-path equivalence scenario
of the tests with jittered costs; random scenarios (seeded, every workload kind,
1-4 VPs, 1-3 VTLs); and the host layer: the equivalence scenario on 3 free CPUs under
every design, and random scenarios on a random ``[host]``. A fingerprint is the SHA-256 of the interrupts, switches and
residency tables and the counters. The tests check the fast paths against the generic
ones on their own (tests/test_engine_equivalence.py); this is the wider net.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import vsmsim  # noqa: E402
from vsmsim.designs import BUILTIN_DESIGNS  # noqa: E402

US = 1000
MIXED = ROOT / "bench" / "mixed.toml"


def mixed(design: str, seed: int):
    """bench/mixed.toml (every kind of event, jittered costs) under *design* and *seed*."""
    return vsmsim.load_scenario(MIXED).with_overrides({"design": design, "seed": seed,
                                                       "duration": "10ms"})


def random_scenario(k: int) -> dict:
    """A random valid scenario, the same for the same *k*."""
    r = random.Random(k)
    n, nvtl = r.randint(1, 4), r.randint(1, 3)
    dur = r.randint(300, 1500) * US

    def service():
        a = r.randint(0, 30) * US
        return r.choice([a, {"dist": "exp", "mean": max(a, 1)},
                         {"dist": "uniform", "low": a // 2, "high": a}])

    def arrivals():
        how = r.choice(["period", "rate", "at"])
        if how == "period":
            return {"period": r.randint(20, 400) * US, "phase": r.randint(0, 100) * US}
        if how == "rate":
            return {"rate": float(r.randint(1000, 40000))}
        return {"at": sorted(r.randint(0, dur - 1) for _ in range(r.randint(1, 4)))}

    workloads = []
    if r.random() < 0.6:
        workloads.append({"kind": "compute", "vtl": r.randrange(nvtl)})
    kinds = ["timer", "ipi", "pv-ipi", "external"] + (["vtl-call", "intercept"] if nvtl > 1
                                                      else [])
    for _ in range(r.randint(1, 5)):
        kind = r.choice(kinds)
        v = r.randrange(nvtl) if kind not in ("vtl-call", "intercept") else r.randrange(nvtl - 1)
        w = {"kind": kind, "vtl": v, "service": service(), **arrivals()}
        if kind in ("timer", "external", "ipi", "pv-ipi"):
            w["vector"] = r.randint(0x10, 0xFF)
        if kind in ("ipi", "pv-ipi"):
            w["dest"] = r.choice(["random", "self", "all", "all-but-self"])
        if kind == "ipi":
            w["dest_mode"] = r.choice(["physical", "logical"])
        if kind == "pv-ipi" and r.random() < 0.5:
            w["target_vtl"] = r.randint(0, v)
        workloads.append(w)
    contexts = [{"vtl": c, "tpr": r.randint(0, 3)} for c in range(nvtl) if r.random() < 0.4]
    for c in contexts:
        if c["vtl"] > 0 and r.random() < 0.5:
            c["vina"] = {"vector": r.randint(0x10, 0xFF), "auto_reset": r.random() < 0.5}
    return {"duration": dur, "seed": k, "design": r.choice(BUILTIN_DESIGNS),
            "vm": {"vps": n, "vtls": nvtl}, "workload": workloads, "context": contexts}


def random_hosted(k: int) -> dict:
    """:func:`random_scenario` *k* on a random ``[host]`` (placement, CPUs, policy,
    halt-polling, noise), the same for the same *k*."""
    r = random.Random(1000 + k)
    d = random_scenario(k)
    d["host"] = {"placement": r.choice(["pinned", "vp-shared", "free"]),
                 "cpus": r.randint(1, 4), "policy": r.choice(["fair", "fifo"]),
                 "halt_poll": r.choice([0, 20_000, 200_000]),
                 "latency": r.choice([600_000, 6_000_000]),
                 "min_granularity": r.choice([75_000, 750_000])}
    if r.random() < 0.5:
        d["host"]["noise"] = [{"utilisation": r.choice([0.1, 0.5]), "burst": "100us"}]
    d["costs"] = {"profile": "default", "override": {"cstate_exit": r.choice([0, 5000]),
                                                     "migration": r.choice([0, 3000])}}
    return d


def corpus(quick: bool):
    std = ROOT / "bench" / "standard.toml"
    for vps in (4, 64) if quick else (4, 64, 1024):
        rate = 50_000 * vps / 64
        yield (f"standard-{vps}", vsmsim.load_scenario(std).with_overrides(
            {"vm.vps": vps, "duration": "10ms" if vps > 64 else "50ms", "workload.3.rate": rate}))
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    for f in files:
        for d in BUILTIN_DESIGNS if not quick else BUILTIN_DESIGNS[:3]:
            sc = vsmsim.load_scenario(f).with_overrides({"design": d, "duration": "30ms"})
            yield f"{f.stem}-{d}", sc
    for i, d in enumerate(BUILTIN_DESIGNS):
        yield f"mixed-{d}", mixed(d, i + 1)
    for k in range(20 if quick else 150):
        yield f"random-{k}", vsmsim.Scenario.model_validate(random_scenario(k))
    # The host layer's VP (engine/hosted.py) overrides some of the VP's steps: an
    # optimisation of those must keep its tables too.
    for i, d in enumerate(BUILTIN_DESIGNS if not quick else BUILTIN_DESIGNS[:2]):
        yield f"mixed-hosted-{d}", mixed(d, i + 1).with_overrides(
            {"host": {"placement": "free", "cpus": 3}})
    for k in range(5 if quick else 40):
        yield f"random-hosted-{k}", vsmsim.Scenario.model_validate(random_hosted(k))


def fingerprint(res) -> str:
    h = hashlib.sha256()
    for df in (res.interrupts, res.switches, res.residency):
        h.update(df.to_csv(index=False).encode())
    h.update(json.dumps(res.counters, sort_keys=True).encode())
    return h.hexdigest()[:16]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save")
    ap.add_argument("--compare")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    got = {}
    for name, sc in corpus(a.quick):
        got[name] = fingerprint(vsmsim.simulate(sc))
    if a.save:
        Path(a.save).write_text(json.dumps(got, indent=1))
        print(f"{len(got)} fingerprints saved to {a.save}")
    if a.compare:
        want = json.loads(Path(a.compare).read_text())
        bad = [k for k in want if k in got and got[k] != want[k]]
        missing = [k for k in want if k not in got]
        print(f"{len(got)} scenarios: {len(bad)} differ, {len(missing)} missing")
        for k in bad:
            print(f"  DIFFERS: {k}")
        return 1 if bad or missing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
