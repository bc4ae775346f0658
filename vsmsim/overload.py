"""Overload: offered handler load per VP and context, and interrupts never delivered.

A scenario can offer a VP more work than it has time for (a 500 ns timer with a 1 µs
handler offers 200 %). The run then measures a saturated VM: queues grow for the whole
run, latencies depend on the run's length, and most interrupts are never handled. This
module says so, so that such numbers are not read as a design's latency.

The offered load of a context is the service time (``service_ns``, the handler's or the
called service's CPU time) of the interrupts raised for it in the measured window, over
the window's length: a share of one VP. Path costs (exits, switches) come on top, so a VP
can saturate below 100 % offered; the warning uses the offered load alone (a lower bound of
the demand) and the undelivered interrupts (the symptom).
"""

from __future__ import annotations

#: A VP whose contexts together are offered at least this share of its time is overloaded.
OFFERED_LIMIT = 1.0
#: Interrupts still pending at the end, as a share of those raised, that mean overload.
UNDELIVERED_LIMIT = 0.05


def overload(result) -> dict:
    """``{"overloaded", "offered", "vp_offered", "undelivered", "raised", "message"}``.

    ``offered``: ``{"vp<i>": {"vtl<v>": share}}`` for every context that was offered work;
    ``vp_offered``: per VP, the sum over its contexts; ``undelivered``: interrupts raised
    in the measured window and never handled (of ``raised``). ``message`` is one line, or
    "" when the run is not overloaded.
    """
    secs_ns = max(result.measured_ns, 1)
    offered: dict[str, dict[str, float]] = {}
    vp_offered: dict[str, float] = {}
    tallied = result.meta.get("overload_inputs")
    if tallied is not None:  # record.tables stream / summary: from the run's tally
        for key, ns in sorted(tallied["offered"].items(),
                              key=lambda kv: tuple(int(x) for x in kv[0].split(","))):
            vp, vtl = key.split(",")
            if ns > 0:
                offered.setdefault(f"vp{vp}", {})[f"vtl{vtl}"] = ns / secs_ns
        raised, undelivered = int(tallied["raised"]), int(tallied["undelivered"])
    else:
        df = result.measured()
        if len(df):
            load = df.groupby(["vp", "vtl"], observed=True)["service_ns"].sum() / secs_ns
            for (vp, vtl), v in load.items():
                if v > 0:
                    offered.setdefault(f"vp{int(vp)}", {})[f"vtl{int(vtl)}"] = float(v)
        raised = int(len(df))
        undelivered = int(df["start_ns"].isna().sum()) if raised else 0
    for vp, ctx in offered.items():
        vp_offered[vp] = float(sum(ctx.values()))
    worst = max(vp_offered.items(), key=lambda kv: kv[1], default=(None, 0.0))
    over = worst[1] >= OFFERED_LIMIT or (raised >= 20 and undelivered > UNDELIVERED_LIMIT * raised)
    message = ""
    if over:
        parts = []
        if worst[0] is not None:
            ctx = ", ".join(f"{k.upper()} {v:.0%}" for k, v in offered[worst[0]].items())
            parts.append(f"{worst[0].upper()} is offered {worst[1]:.0%} of its time in handlers "
                         f"({ctx})")
        parts.append(f"{undelivered:,} of {raised:,} interrupts raised after the warmup were "
                     f"never delivered")
        message = ("overload: " + "; ".join(parts) + "; the VM is saturated, so latencies "
                   "and rates describe the backlog, not the design")
    return {"overloaded": bool(over), "offered": offered, "vp_offered": vp_offered,
            "max_vp_offered": float(worst[1]), "undelivered": undelivered, "raised": raised,
            "message": message}
