"""The scheduler against theory, under the ``ideal`` profile (every cost zero).

- Fixed-priority response-time analysis: one periodic timer per VTL, released together at
  t = 0 (the critical instant). A higher VTL preempts a lower one at once (rule 6), so the
  worst-case response of VTL k's handler is the least fixed point of
  R = C_k + sum over higher VTLs j of ceil(R / T_j) * C_j, and the simulation must hit it
  exactly.
- M/M/1: Poisson device interrupts with exponential handlers on one VP: a single FIFO
  server. Mean response 1/(mu - lambda), mean wait rho/(mu - lambda), and P(R > t) =
  exp(-(mu - lambda) t).
"""

import math

import numpy as np
import pytest
from conftest import run

US = 1000


def rta(tasks):
    """Worst-case response times for [(T, C)] listed from highest to lowest priority."""
    out = []
    for k, (_t, c) in enumerate(tasks):
        r = c
        while True:
            nxt = c + sum(math.ceil(r / tj) * cj for tj, cj in tasks[:k])
            if nxt == r:
                break
            r = nxt
        out.append(r)
    return out


@pytest.mark.parametrize("tasks", [
    # (period, service) in us, highest VTL first
    [(100, 20), (250, 60)],
    [(50, 10), (120, 35)],
    [(1000, 300), (2000, 500)],
    [(40, 9), (100, 20), (300, 70)],
    [(60, 5), (75, 20), (500, 100)],
])
def test_fixed_priority_response_times_match_rta(tasks):
    nvtl = len(tasks)
    hyper = math.lcm(*[t for t, _ in tasks])
    workloads = [{"kind": "timer", "vtl": nvtl - 1 - k, "period": f"{t}us", "service": f"{c}us",
                  "vector": 0xE0 + k} for k, (t, c) in enumerate(tasks)]
    res = run({"duration": f"{2 * hyper}us", "costs": "ideal",
               "vm": {"vps": 1, "vtls": nvtl}, "workload": workloads})
    expected = rta([(t * US, c * US) for t, c in tasks])
    for k, r in enumerate(expected):
        got = res.latency("timer", vtl=nvtl - 1 - k, which="response")
        assert got.max() == r, f"VTL{nvtl - 1 - k}: simulated {got.max()} ns, RTA {r} ns"


def test_mm1_mean_response_wait_and_busy_share():
    lam, mean_service = 40_000.0, 10 * US  # per s, ns: rho = 0.4
    mu = 1e9 / mean_service
    # One vector would coalesce (the IRR holds a pending vector once), so the queue is fed
    # by 160 Poisson streams of rate lam/160, vectors 0x60-0xFF: together one Poisson
    # stream of rate lam. A stream's next arrival finds its own vector still pending with
    # probability ~ (lam/160) x mean wait ~ 0.2 %: those coalesce, and are counted.
    res = run({"duration": "3s", "warmup": "10ms", "costs": "ideal", "seed": 7,
               "vm": {"vps": 1, "vtls": 1},
               "workload": [{"kind": "external", "rate": lam / 160, "vps": [0],
                             "vector": 0x60 + k,
                             "service": {"dist": "exp", "mean": f"{mean_service}ns"}}
                            for k in range(160)]})
    assert 0 < res.counters["coalesced"] < 0.005 * len(res.interrupts)
    resp = res.latency("external", which="response").to_numpy(dtype=float) / 1e9
    wait = res.latency("external", which="delivery").to_numpy(dtype=float) / 1e9
    rho = lam / mu
    assert len(resp) > 100_000
    # The APIC serves the highest pending vector first, not the oldest: not FIFO, but
    # non-preemptive and blind to service times, so the mean wait and response are those
    # of M/M/1 FIFO (Kleinrock's conservation law); the tail is not, and is not tested.
    assert np.mean(resp) == pytest.approx(1 / (mu - lam), rel=0.04)
    assert np.mean(wait) == pytest.approx(rho / (mu - lam), rel=0.06)
    # the server is busy rho of the time
    r = res.residency.iloc[0]
    assert r.vtl0_ns / r.total_ns == pytest.approx(rho, rel=0.03)
