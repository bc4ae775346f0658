"""One simulation run: VPs, compiled design paths, workload sources and the recorder.

The :class:`Simulation` owns the cross-VP logic: sending IPIs, delivering interrupts along
the design's paths, VTL calls and intercepts. :mod:`vsmsim.engine.vp` owns what happens on
one VP. Units: every time is an integer of nanoseconds.
"""

from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager

import numpy as np

from ..designs import COUNTERS
from ..record import (
    F_END,
    F_ID,
    F_KIND,
    F_PATH,
    F_RESUMED,
    F_SERVICE,
    F_SRC_VTL,
    F_START,
    F_SWITCHED,
    F_VECTOR,
    F_VTL,
    F_WOKE,
    K_CALL,
    K_EXTERNAL,
    K_INTERCEPT,
    K_IPI,
    K_PVIPI,
    K_TIMER,
    K_VINA,
    NF,
    R_CALL,
    R_INTERCEPT,
    R_INTERRUPT,
    R_RETURN,
    S_EXIT,
    Recorder,
    pack_row,
)
from ..workloads import build_sources
from . import planned
from .clock import DONE, Clock, at, run_until
from .collector import fewer_collections
from .harvest import snapshot
from .paths import compile_design
from .posting import posting
from .program import start_program
from .vp import VP
from .work import SIT_HALTED, SIT_INACTIVE, SIT_INACTIVE_HALTED, SIT_LOWER, SIT_RUNNING

#: Fuse a receiver's delivery exit with the handler it starts (see VP.exit_then_pend);
#: switched off only by the test that checks fused and unfused runs are identical.
FUSE = True
#: A timer expiry takes its delivery path inline when it is a plain exit (raise_timer),
#: and a one-destination physical IPI skips the message walker (_ipi_action). Switched
#: off only by the differential tests, which check them against the generic paths.
FAST_TIMER = True
FAST_IPI = True

#: The fast paths by name: (module, flag). Each short-cuts a generic path and must give
#: the same tables; :func:`fast_paths` switches them for the differential tests.
FAST_PATHS = {"fuse": ("sim", "FUSE"), "timer": ("sim", "FAST_TIMER"),
              "ipi": ("sim", "FAST_IPI"), "resume": ("vp", "FAST_RESUME"),
              "lazy": ("fusion", "LAZY_END"), "plan": ("planned", "PLAN")}


@contextmanager
def fast_paths(**on):
    """Run the body with the named fast paths (keys of :data:`FAST_PATHS`) on or off, for
    example ``fast_paths(fuse=False)``; ``fast_paths(all=False)`` turns every one off."""
    import sys

    from . import fusion as fusion_mod
    from . import planned as planned_mod
    from . import vp as vp_mod
    mods = {"sim": sys.modules[__name__], "vp": vp_mod, "fusion": fusion_mod,
            "planned": planned_mod}
    want = {k: on.get(k, on.get("all", True)) for k in FAST_PATHS}
    bad = set(on) - set(FAST_PATHS) - {"all"}
    if bad:
        raise ValueError(f"fast_paths: unknown {sorted(bad)}; allowed {sorted(FAST_PATHS)}")
    saved = {k: getattr(mods[m], f) for k, (m, f) in FAST_PATHS.items()}
    try:
        for k, (m, f) in FAST_PATHS.items():
            setattr(mods[m], f, want[k])
        yield
    finally:
        for k, (m, f) in FAST_PATHS.items():
            setattr(mods[m], f, saved[k])


C_PENDED, C_COALESCED, C_JOINED, C_REJECTED = (
    COUNTERS.index(k) for k in ("pended", "coalesced", "joined", "rejected"))


def _nothing(_):
    pass


class _Chain:
    """Walks a multi-segment path: VP segments as jobs on *vp*, others as plain delays."""

    __slots__ = ("sim", "vp", "segs", "i", "fn", "arg")

    def __init__(self, sim, vp, segs, fn, arg):
        self.sim, self.vp, self.segs, self.i, self.fn, self.arg = sim, vp, segs, 0, fn, arg

    def step(self, _=None):
        if self.i == len(self.segs):
            self.fn(self.arg)
            return
        is_vp, ns = self.segs[self.i]
        self.i += 1
        if is_vp and self.vp is not None:
            self.vp.push_job(ns, S_EXIT, self.step, None)
        else:
            at(self.sim.env, ns, self.step, None)


class _Send:
    """An IPI's messages, one after another on the sender; each delivers when its path ends."""

    __slots__ = ("sim", "vp", "msgs", "i")

    def __init__(self, sim, vp, msgs):
        self.sim, self.vp, self.msgs, self.i = sim, vp, msgs, 0

    def step(self, _=None):
        sim = self.sim
        if self.i > 0:
            path, targets = self.msgs[self.i - 1]
            for dest, irq in targets:
                sim.deliver(sim.vps[dest], irq, False, path.code)
        if self.i < len(self.msgs):
            path = self.msgs[self.i][0]
            self.i += 1
            sim.run_path(self.vp, path, self.step, None)


class CallRequest:
    """A VTL call or intercept as a guest program in the higher VTL sees it."""

    __slots__ = ("row", "service", "src_vtl", "reason")

    def __init__(self, row, service, src_vtl, reason):
        self.row, self.service, self.src_vtl, self.reason = row, service, src_vtl, reason

    def __repr__(self):
        return (f"CallRequest(row={self.row}, service={self.service}ns, "
                f"src_vtl={self.src_vtl}, reason={self.reason!r})")


def sink_for(sc, workload_names, path_names):
    """The recorder's sink for ``record.tables`` (None for "all": rows stay in memory).
    A stream goes to a fresh temporary directory; ``Result.save`` moves it into place."""
    mode = sc.record.tables
    if mode == "all":
        return None
    import tempfile

    from ..streaming import StreamSink, SummarySink, Tally
    tally = Tally(int(sc.warmup), sc.record.rel_error)
    if mode == "summary":
        return SummarySink(tally)
    return StreamSink(tally, tempfile.mkdtemp(prefix="vsmsim-stream-"), workload_names,
                      path_names)


class Simulation:
    """Builds and runs one scenario. Use :func:`vsmsim.simulate` rather than this class."""

    def __init__(self, scenario, debug: bool = False):
        sc = scenario
        self.sc = sc
        self.debug = debug
        self.env = Clock()
        self.design = sc.loaded_design
        self.profile = sc.loaded_costs
        n, v = sc.vm.vps, sc.vm.vtls
        self.n, self.nvtl = n, v
        # One master seed: stream 0 draws sampled costs, stream 1+i belongs to workload i,
        # so a workload's arrivals do not depend on the design or on the other workloads.
        seeds = np.random.SeedSequence(sc.seed).spawn(len(sc.workload) + 1)
        self.path_names: list[str] = []
        self.cost_rng = np.random.default_rng(seeds[0])
        self.paths = compile_design(self.design, self.profile, n, v, self.cost_rng,
                                    self.path_names)
        p = self.paths
        self.switch_paths = (p["switch.call"], p["switch.return"], p["switch.interrupt"],
                             p["switch.intercept"])
        self.posted, self.ipiv = posting(sc, self.design)
        # Per VTL, per situation: [0] other interrupts, [1] timers.
        self.vtl_paths = tuple((
            (p["deliver.running.posted"] if self.posted[vtl] else p["deliver.running.injected"],
             p["deliver.running.timer"]),
            (p["deliver.halted"], p["deliver.halted.timer"]),
            (p["deliver.inactive"], p["deliver.inactive.timer"]),
            (p["deliver.inactive-halted"], p["deliver.inactive-halted.timer"]),
            (p["deliver.lower"], p["deliver.lower"]),
        ) for vtl in range(v))
        self.send_physical = tuple(p["send.ipi.ipiv"] if self.ipiv[vtl] else p["send.ipi.physical"]
                                   for vtl in range(v))
        # A TPR-masked interrupt for an inactive higher VTL: notified like any other, or
        # (masked_notifies = false) only what deliver.inactive.masked says.
        self.vina_path = p["deliver.vina"]
        self.latent = self.design.capabilities["latent_inactive"]
        self.masked_path = None if self.design.capabilities["masked_notifies"] \
            else p["deliver.inactive.masked"]
        self._combo: dict = {}
        self.joined_code = self._path_code("joined")
        rc = sc.record
        self.workload_names = [w.name or f"{i}:{w.kind}" for i, w in enumerate(sc.workload)]
        self.workload_names.append("vina")
        self.sink = sink_for(sc, self.workload_names, self.path_names)
        self.rec = Recorder(timeline=rc.timeline, window=rc.window, sink=self.sink,
                            chunk_rows=rc.row_group)
        # Counters: the paths' increments are fixed per path, so a traversal only counts
        # the path's use (uses[code]); counter_values() adds them up. The few counters no
        # path carries (pended, coalesced, joined) are counted directly.
        self.counters = [0] * len(COUNTERS)
        self.uses = [0] * len(self.path_names)
        self.by_code = [None] * len(self.path_names)
        for path in p.values():
            self.by_code[path.code] = path
        self.deferred_actions = 0
        self.followups: dict = {}  # intercept row -> hypercalls its service makes first
        tprs = [sc.context_config(vtl).tpr for vtl in range(v)]
        self.host = None
        # Planned VTL entries (engine/planned.py) need a chain fixed at its start: read
        # here, so the fast path's switch (fast_paths(plan=...)) applies to runs built after.
        sw_in, sw_out = self.switch_paths[R_INTERRUPT], self.switch_paths[R_RETURN]
        self.plan_ok = (planned.PLAN and v == 2 and sc.host is None and not rc.timeline
                        and sw_in.fixed is not None and sw_in.total > 0
                        and sw_out.fixed is not None and sw_out.total > 0)
        if sc.host is None:
            self.vps = [VP(self, i, v, tprs, rc.timeline, debug) for i in range(n)]
        else:
            from .hostlink import build_host
            build_host(self, tprs, np.random.default_rng(
                np.random.SeedSequence(sc.seed).spawn(len(sc.workload) + 2)[-1]))
        for vtl in range(v):
            cc = sc.context_config(vtl)
            if cc.idle == "halt":
                for vp in self.vps:
                    vp.ctxs[vtl].idle_halt = True
            if cc.vina is not None:
                for vp in self.vps:
                    c = vp.ctxs[vtl]
                    c.vina_vector = cc.vina.vector
                    c.vina_auto = cc.vina.auto_reset
                    c.vina_service = cc.vina.service.fixed or int(cc.vina.service.mean)
        self.sources = build_sources(self, seeds[1:])
        self.wall_s = 0.0

    # ------------------------------------------------------------------ helpers
    def _path_code(self, name: str) -> int:
        if name not in self.path_names:
            self.path_names.append(name)
        return self.path_names.index(name)

    def count(self, path) -> None:
        """Count one traversal of *path* (its counter increments are added up at the end)."""
        self.uses[path.code] += 1

    def counter_values(self) -> list[int]:
        """The counters so far, in COUNTERS order: the direct ones plus, for every path,
        its uses times its increments."""
        out = list(self.counters)
        for code, n in enumerate(self.uses):
            if n:
                for idx, amount in self.by_code[code].counts:
                    out[idx] += n * amount
        return out

    def run_path(self, vp, path, fn, arg) -> None:
        """Traverse *path*, charging VP segments to *vp* (None: nobody), then ``fn(arg)``."""
        self.uses[path.code] += 1
        segs = path.fixed if path.fixed is not None else path.segments()
        self.run_segs(vp, segs, fn, arg)

    def run_segs(self, vp, segs, fn, arg) -> None:
        """Walk the sampled segments of a path (counters already added), then ``fn(arg)``."""
        if not segs:
            fn(arg)
        elif len(segs) == 1:
            is_vp, ns = segs[0]
            if is_vp and vp is not None:
                vp.push_job(ns, S_EXIT, fn, arg)
            else:
                at(self.env, ns, fn, arg)
        else:
            _Chain(self, vp, segs, fn, arg).step()

    # ------------------------------------------------------------------ delivery
    @staticmethod
    def situation(vp, vtl: int) -> int:
        """Where context (vp, vtl) stands for a delivery starting now (SIT_*)."""
        if vp.halted:
            act = vp.active
            return SIT_HALTED if vtl == act else SIT_INACTIVE_HALTED if vtl > act else SIT_LOWER
        nv = vp.next_vtl
        return SIT_RUNNING if vtl == nv else SIT_INACTIVE if vtl > nv else SIT_LOWER

    def deliver(self, vp, irq: int, timer: bool, send_code: int = -1,
                surfaced: bool = False) -> None:
        """Take interrupt *irq* along the delivery path its target's state selects.

        *surfaced*: a latent interrupt (capability ``latent_inactive``) taken now, at the
        VP's exit, along the path its situation selects.
        """
        rows = self.rec.rows
        vtl = rows[irq + F_VTL]
        c = vp.ctxs[vtl]
        if vp.fuse_irq >= 0 and (c.inflight or vp.plan_k >= 0):
            # a fused delivery may have landed already; a planned entry moved the VP on
            vp.settle(self.env.now)
        if c.inflight or (vp.in_oh and vp.next_vtl == vtl != vp.active):
            self._join(vp, c, irq)
            return
        sit = self.situation(vp, vtl)
        if self.latent and not surfaced and (
                (timer and sit == SIT_INACTIVE) or sit == SIT_INACTIVE_HALTED):
            # As the planes RFC was posted: nothing notifies the VP; the interrupt waits for
            # the VP's next exit or switch (VP._start_job), then takes its path.
            rows[irq + F_WOKE] = 1
            vp.latent.append((irq, timer, send_code))
            return
        path = self.vtl_paths[vtl][sit][timer]
        if (sit == SIT_INACTIVE or sit == SIT_INACTIVE_HALTED) and self.masked_path is not None \
                and rows[irq + F_VECTOR] >> 4 <= c.tpr:
            self._masked(vp, irq)
            return
        if sit:
            rows[irq + F_WOKE] = 1
        if send_code >= 0:
            key = (send_code, path.code)
            code = self._combo.get(key)
            if code is None:
                code = self._combo[key] = self._path_code(
                    f"{self.path_names[send_code]}>{path.name}")
            rows[irq + F_PATH] = code
        else:
            rows[irq + F_PATH] = path.code
        self._take(vp, c, path, irq, sit)

    def _join(self, vp, c, irq: int) -> None:
        """*irq* joins the notification already under way toward context *c* (or the switch
        into it): no path of its own; it pends when that notification lands (or now)."""
        if vp.fuse_irq >= 0:
            vp.settle(self.env.now)  # a fused delivery in flight becomes an ordinary job
        self.rec.rows[irq + F_PATH] = self.joined_code
        self.counters[C_JOINED] += 1
        if c.inflight:
            c.joined.append(irq)
        else:
            vp.pend(irq)

    def _masked(self, vp, irq: int) -> None:
        """A masked interrupt for an inactive higher VTL that notifies nothing: it pends after
        what ``deliver.inactive.masked`` charges (a host thread's wake, say)."""
        path = self.masked_path
        self.rec.rows[irq + F_PATH] = path.code
        self.count(path)
        self.run_segs(vp, path.fixed if path.fixed is not None else path.segments(), vp.pend, irq)

    def _take(self, vp, c, path, irq: int, sit: int) -> None:
        """Walk delivery *path* to *vp* for *irq*; it ends with the interrupt pending."""
        if sit == SIT_LOWER:
            self.counters[C_PENDED] += 1
        self.uses[path.code] += 1
        c.inflight += 1
        ns = path.exit_only
        if ns and FUSE:
            vp.exit_then_pend(ns, irq, c)
            return
        segs = path.fixed if path.fixed is not None else path.segments()
        if FUSE and len(segs) == 1 and segs[0][0]:
            vp.exit_then_pend(segs[0][1], irq, c)
        elif FUSE and len(segs) == 2 and segs[1][0] and not segs[0][0]:
            # A delay nobody pays (the IPI's flight, a host thread's wake), then the
            # receiver's exit: what _Chain does, with the exit fused with the handler.
            at(self.env, segs[0][1], self._exit_after_delay, (vp, segs[1][1], irq, c))
        else:
            self.run_segs(vp, segs, vp.land, irq)

    @staticmethod
    def _exit_after_delay(arg) -> None:
        vp, ns, irq, c = arg
        vp.exit_then_pend(ns, irq, c)

    def raise_timer(self, vp_idx, vtl, vector, service, widx) -> None:
        """A LAPIC timer of context (vp_idx, vtl) expires now."""
        self.raise_timers((vp_idx,), vtl, vector, service, widx)

    def raise_timers(self, vp_idxs, vtl, vector, service, widx) -> None:
        """The LAPIC timers of contexts (vp, vtl) expire now, for every vp of *vp_idxs* in
        order (a periodic timer's expiry on its whole VP set: one call, with what every
        expiry of it shares looked up once)."""
        vps, rec, uses = self.vps, self.rec, self.uses
        now = self.env.now
        by_sit = self.vtl_paths[vtl]
        odd_above = self.latent or self.masked_path is not None  # latent or masked paths
        cls = vector >> 4
        # Recorder.new_interrupt inlined for the commonest row (one call fewer per expiry);
        # the differential test checks it against the call (FAST_TIMER off).
        inline_row = FAST_TIMER and not rec.recycle
        rows = rec.rows
        fast = FUSE and FAST_TIMER
        for vp_idx in vp_idxs:
            vp = vps[vp_idx]
            if vp.fuse_lazy and (vp.plan_k or vtl):
                # its last delivery's handler has ended by now (engine/fusion.py); a planned
                # entry's exit still under way (plan_k 0) is the state of its start, and
                # a VTL0 timer's exit joins it (VP.exit_then_pend)
                vp.settle(now)
            c = vp.ctxs[vtl]
            if c.inflight or (vp.in_oh and vp.next_vtl == vtl != vp.active) or (
                    odd_above and vtl > vp.next_vtl and (self.latent or (
                        self.masked_path is not None and cls <= c.tpr))):
                irq = rec.new_interrupt(widx, K_TIMER, vector, -1, -1, vp_idx, vtl, now,
                                        service, -1, 0)
                self.deliver(vp, irq, True)
                continue
            # situation() and _take(), inlined: a timer is the commonest arrival
            if vp.halted:
                act = vp.active
                sit = SIT_HALTED if vtl == act else SIT_INACTIVE_HALTED if vtl > act else SIT_LOWER
            else:
                nv = vp.next_vtl
                sit = SIT_RUNNING if vtl == nv else SIT_INACTIVE if vtl > nv else SIT_LOWER
            path = by_sit[sit][1]
            if inline_row:
                irq = len(rows)
                rows.frombytes(pack_row(widx, K_TIMER, vector, -1, -1, vp_idx, vtl, now, now,
                                        -1, -1, -1, 1 if sit else 0, 0, path.code, service, -1,
                                        irq // NF))
            else:
                irq = rec.new_interrupt(widx, K_TIMER, vector, -1, -1, vp_idx, vtl, now,
                                        service, path.code, 1 if sit else 0)
            ns = path.exit_only
            if ns and fast:
                if sit == SIT_LOWER:
                    self.counters[C_PENDED] += 1
                uses[path.code] += 1
                c.inflight += 1
                vp.exit_then_pend(ns, irq, c)
                continue
            self._take(vp, c, path, irq, sit)

    def raise_external(self, vp_idx, vtl, vector, service, widx) -> None:
        """A device interrupt for (vp_idx, vtl) is asserted now."""
        irq = self.rec.new_interrupt(widx, K_EXTERNAL, vector, -1, -1, vp_idx, vtl,
                                     self.env.now, service, -1, 0)
        path = self.paths["send.external"]
        vp = self.vps[vp_idx]
        self.run_path(None, path, lambda i: self.deliver(vp, i, False, path.code), irq)

    def raise_vina(self, vp, ctx, lower_vtl) -> None:
        """VINA (rule 9): tell *ctx* that VTL *lower_vtl* has a deliverable interrupt.

        The notification takes the design's ``deliver.vina`` path (the higher VTL's VP
        time: a userspace design must exit to the VMM to inject it) before it pends.
        """
        path = self.vina_path
        irq = self.rec.new_interrupt(len(self.workload_names) - 1, K_VINA, ctx.vina_vector,
                                     vp.idx, lower_vtl, vp.idx, ctx.vtl, self.env.now,
                                     ctx.vina_service, path.code, 0)
        if ctx.inflight:
            self._join(vp, ctx, irq)
            return
        self._take(vp, ctx, path, irq, SIT_RUNNING)

    def surface(self, vp) -> None:
        """The VP exits (or switches): its latent interrupts take their paths now."""
        latent, vp.latent = vp.latent, []
        for irq, timer, send_code in latent:
            self.deliver(vp, irq, timer, send_code, surfaced=True)

    def set_compute(self, vp_idx: int, vtl: int) -> None:
        """Context (vp_idx, vtl) always has background work (a ``compute`` workload)."""
        self.vps[vp_idx].ctxs[vtl].compute = True

    def start_program(self, vp_idx: int, vtl: int, program, widx: int) -> None:
        """Start guest program *program* in context (vp_idx, vtl) (a ``program`` workload)."""
        start_program(self, self.vps[vp_idx].ctxs[vtl], program, widx)

    # ------------------------------------------------------------------ guest actions
    def send_ipi(self, src, vtl, dests, logical, shorthand, vector, services, widx) -> None:
        """Context (src, vtl) writes the ICR now, or when it next runs (an APIC IPI)."""
        vp = self.vps[src]
        vp.act(vp.ctxs[vtl], self._ipi_action,
               (vp, vtl, dests, logical, shorthand, vector, services, widx, self.env.now))

    def _ipi_action(self, arg) -> None:
        vp, vtl, dests, logical, shorthand, vector, services, widx, arrival = arg
        rec, now, p = self.rec, self.env.now, self.paths
        if FAST_IPI and len(dests) == 1 and not shorthand and not logical:
            # One physical destination (the commonest send): what _Send does for one
            # message of one target, without it.
            d = dests[0]
            irq = rec.new_interrupt(widx, K_IPI, vector, vp.idx, vtl, d, vtl, now, services[0],
                                    -1, 0, arrival)
            path = self.send_physical[vtl]
            self.run_path(vp, path, self._sent, (self.vps[d], irq, path.code))
            return
        rows = [(d, rec.new_interrupt(widx, K_IPI, vector, vp.idx, vtl, d, vtl, now, s, -1, 0,
                                      arrival)) for d, s in zip(dests, services)]
        if shorthand:
            msgs = [(p["send.ipi.shorthand"], rows)]
        elif logical:
            from .routing import logical_messages
            msgs = [(p["send.ipi.logical"], m) for m in logical_messages(rows, self.sc.vm.apic_mode)]
        else:
            path = self.send_physical[vtl]
            msgs = [(path, [r]) for r in rows]
        _Send(self, vp, msgs).step()

    def _sent(self, arg) -> None:
        target, irq, code = arg
        self.deliver(target, irq, False, code)

    def send_pv_ipi(self, src, vtl, dests, target_vtl, vector, services, widx) -> None:
        """Context (src, vtl) issues HvCallSendSyntheticClusterIpi to *target_vtl* now."""
        vp = self.vps[src]
        vp.act(vp.ctxs[vtl], self._pv_ipi_action,
               (vp, vtl, dests, target_vtl, vector, services, widx, self.env.now))

    def _pv_ipi_action(self, arg) -> None:
        vp, vtl, dests, target_vtl, vector, services, widx, arrival = arg
        if target_vtl > vtl and not self.sc.vm.cross_vtl_ipi_up:
            # Rejected: HV_STATUS_ACCESS_DENIED (OpenHCL target_vtl_no_higher); no interrupt.
            self.run_path(vp, self.paths["send.pv-ipi.rejected"], _nothing, None)
            return
        rec, now = self.rec, self.env.now
        rows = [(d, rec.new_interrupt(widx, K_PVIPI, vector, vp.idx, vtl, d, target_vtl, now, s,
                                      -1, 0, arrival)) for d, s in zip(dests, services)]
        name = "send.pv-ipi" if target_vtl == vtl else "send.pv-ipi.cross-vtl"
        _Send(self, vp, [(self.paths[name], rows)]).step()

    def vtl_call(self, vp_idx, vtl, service, widx, intercept: bool = False, event=None,
                 hypercalls: int = 0) -> None:
        """Context (vp_idx, vtl) calls (or traps into) the next higher VTL for *service* ns.

        *hypercalls*: for an intercept, how many hypercalls the higher VTL makes to handle
        it before its service (path ``serve.hypercall`` each, on the VP).
        """
        vp = self.vps[vp_idx]
        vp.act(vp.ctxs[vtl], self._call_action,
               (vp, vtl, service, widx, intercept, event, self.env.now, hypercalls))

    def _call_action(self, arg) -> None:
        vp, vtl, service, widx, intercept, event, arrival, hypercalls = arg
        now = self.env.now
        reason = R_INTERCEPT if intercept else R_CALL
        code = self.switch_paths[reason].code
        row = self.rec.new_interrupt(widx, K_INTERCEPT if intercept else K_CALL, 0, vp.idx, vtl,
                                     vp.idx, vtl + 1, now, service, code, 1, arrival)
        self.rec.rows[row + F_SWITCHED] = 1
        if hypercalls:
            self.followups[row] = hypercalls
        c = vp.ctxs[vtl]
        c.call_row = row
        c.call_event = event
        vp._stop_segment(now)
        vp.begin_switch(vtl + 1, reason, row)

    # ------------------------------------------------------------------ VTL call plumbing
    def call_entered(self, c, row: int) -> None:
        """The VTL call or intercept *row* has entered context *c*: serve it.

        An intercept's follow-up hypercalls (``serve.hypercall``, e.g. GetVpRegisters,
        ModifyVtlProtectionMask) come first, on the VP, inside the service window.
        """
        rows = self.rec.rows
        rows[row + F_START] = self.env.now
        c.served_row = row
        k = self.followups.pop(row, 0) if self.followups else 0
        if k:
            self._followup(c, row, k)
        else:
            self._serve(c, row)

    def _followup(self, c, row: int, left: int) -> None:
        if left == 0:
            self._serve(c, row)
            return
        self.run_path(c.vp, self.paths["serve.hypercall"],
                      lambda _: self._followup(c, row, left - 1), None)

    def _serve(self, c, row: int) -> None:
        rows = self.rec.rows
        service = rows[row + F_SERVICE]
        if c.prog is not None:
            req = CallRequest(rows[row + F_ID], service, rows[row + F_SRC_VTL],
                              "intercept" if rows[row + F_KIND] == K_INTERCEPT else "call")
            if c.call_waiter is not None:
                ev, c.call_waiter = c.call_waiter, None
                c.prog_pending = True
                ev.succeed(req)
            else:
                if c.call_inbox == ():
                    c.call_inbox = deque()
                c.call_inbox.append(req)
        else:
            c.task_rem = service
            c.task_done = self.finish_service

    def finish_service(self, c) -> None:
        """Context *c* has finished serving its call (its handler end for the table)."""
        if c.served_row >= 0:
            self.rec.rows[c.served_row + F_END] = self.env.now
            c.served_row = -1

    def call_returned(self, c) -> None:
        """The VTL return into context *c* completes the call it made."""
        rec = self.rec
        rec.rows[c.call_row + F_RESUMED] = self.env.now
        if rec.recycle:
            rec.done(c.call_row)  # a call is final when its caller resumes
        c.call_row = -1
        if c.call_event is not None:
            ev, c.call_event = c.call_event, None
            c.prog_pending = True
            ev.succeed()

    # ------------------------------------------------------------------ run
    def _snapshot(self, _):
        """At the end of warmup: remember residency, work and counters so far."""
        self.snap = snapshot(self)
        if self.host is not None:
            self.host.settle(self.env.now)
            self.host_snap = self.host.totals()

    def run(self, progress=None):
        """Run to the scenario's duration and return self.

        *progress*, if given, is called as ``progress(done_ns, total_ns)`` about a hundred
        times along the way (the run is cut into slices; results are the same).
        """
        t0 = time.perf_counter()
        for vp in self.vps:
            at(self.env, 0, lambda vp: vp.dispatch(), vp, priority=DONE)
        for s in self.sources:
            s.start()
        if self.host is not None:
            for nz in self.noise:
                nz.start()
        end = self.sc.duration
        self.snap = None
        if self.sc.warmup > 0:
            at(self.env, self.sc.warmup, self._snapshot, None, priority=0)
        try:
            with fewer_collections():  # engine/collector.py: why
                if progress is None:
                    run_until(self.env, end)
                else:
                    step = max(end // 100, 1)
                    for t in range(step, end + step, step):
                        run_until(self.env, min(t, end))
                        progress(min(t, end), end)
        except BaseException:
            if self.sink is not None:
                self.sink.discard()  # no half-written stream left behind
            raise
        for vp in self.vps:
            vp.finish(end)
        if self.host is not None:
            self.host.settle(end)
        self.stream_files = {}
        if self.rec.recycle:
            self.rec.finish()
            self.stream_files = self.sink.close()
        self.wall_s = time.perf_counter() - t0
        return self
