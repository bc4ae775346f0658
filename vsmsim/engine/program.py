"""Guest programs: SimPy generator functions that run as the code of one context.

A program is ``def program(ctx): ...`` yielding the events that ``ctx`` methods return::

    def guest_thread(ctx):
        while True:
            yield ctx.run("200us")               # 200 us of CPU time in this VTL
            yield ctx.vtl_call(service="8us")    # blocks until the higher VTL returns
            ctx.send_ipi(dest=3, vector=0xFB)    # an ICR write, no yield needed

``ctx.run(work)`` completes when the context has received that much CPU time, however
often it was preempted: preemption is invisible to guest code. Programs may also yield
plain SimPy events (``ctx.sleep`` or ``ctx.env.timeout``): the context then has no work
and the VP runs background compute or halts in that VTL. A program in a higher VTL leaves
it only by ``ctx.vtl_return()`` (rule 5); only while it waits in ``ctx.next_call()`` (a
secure kernel's idle loop) does the VTL return by itself, unless its context has
``idle = "halt"``.
"""

from __future__ import annotations

from ..dists import parse_dist
from ..units import parse_duration


class ProgramContext:
    """What a guest program sees of its execution context (vp, vtl). Times in ns."""

    def __init__(self, sim, ctx, widx):
        self._sim = sim
        self._c = ctx
        self._vp = ctx.vp
        self._widx = widx
        self.env = sim.env
        self.vp = ctx.vp.idx
        self.vtl = ctx.vtl

    @property
    def now(self) -> int:
        """Simulated time, ns."""
        return self.env.now

    def _work(self, work) -> int:
        if isinstance(work, dict):
            # Programs draw nothing at random, so designs compare on equal terms: a
            # distribution given here stands for its mean.
            return int(round(parse_dist(work).mean))
        return parse_duration(work)

    def run(self, work):
        """Consume *work* (duration) of CPU time in this context; an event."""
        c = self._c
        ev = self.env.event()
        ns = self._work(work)
        if ns == 0:
            ev.succeed()
            return ev

        def done(_c):
            c.prog_pending = True
            ev.succeed()

        c.task_rem = ns
        c.task_done = done
        return ev

    def vtl_call(self, service="0ns"):
        """HvCallVtlCall into the next higher VTL; the event fires when it returns.

        *service* is the work the higher VTL does for it, unless a program there serves
        calls itself (it receives the value as ``request.service``). In a VM with one VTL
        (VSM off) it returns at once.
        """
        ev = self.env.event()
        if self._no_higher_vtl():
            return ev.succeed()
        self._sim.vtl_call(self.vp, self.vtl, parse_duration(service), self._widx, False, ev)
        return ev

    def _no_higher_vtl(self) -> bool:
        # In a VM without VSM (vm.vtls = 1, e.g. the VSM-off twin of vtl0_tax) there is no
        # secure kernel to call: calls and intercepts return at once and cost nothing.
        if self._sim.nvtl == 1:
            return True
        if self.vtl + 1 >= self._sim.nvtl:
            raise ValueError(f"VTL {self.vtl} has no higher VTL to call (vm.vtls = {self._sim.nvtl})")
        return False

    def intercept(self, service="0ns"):
        """A secure intercept into the next higher VTL; the event fires on the return."""
        ev = self.env.event()
        if self._no_higher_vtl():
            return ev.succeed()
        self._sim.vtl_call(self.vp, self.vtl, parse_duration(service), self._widx, True, ev)
        return ev

    def next_call(self):
        """Wait for the next VTL call or intercept into this context; yields a CallRequest."""
        c = self._c
        ev = self.env.event()
        if c.call_inbox:
            ev.succeed(c.call_inbox.popleft())
        else:
            c.call_waiter = ev
        return ev

    def vtl_return(self):
        """HvCallVtlReturn to the next lower VTL; the event fires when the return completes."""
        if self.vtl == 0:
            raise ValueError("VTL0 cannot return: there is no lower VTL")
        c = self._c
        ev = self.env.event()
        c.ret_req = True
        c.ret_event = ev
        self._vp.dispatch()
        return ev

    def send_ipi(self, dest, vector=0xFB, service="1us", dest_mode="physical"):
        """Write the ICR: an IPI in this VTL to *dest* (a VP, a list, 'self', 'all', 'all-but-self')."""
        n = self._sim.n
        shorthand = dest in ("all", "all-but-self")
        if dest == "self":
            dests = [self.vp]
        elif dest == "all":
            dests = list(range(n))
        elif dest == "all-but-self":
            dests = [v for v in range(n) if v != self.vp]
        else:
            dests = [dest] if isinstance(dest, int) else list(dest)
        ns = parse_duration(service)
        self._sim.send_ipi(self.vp, self.vtl, dests, dest_mode == "logical" and not shorthand,
                           shorthand, vector, [ns] * len(dests), self._widx)

    def send_pv_ipi(self, dest, vector=0xFB, service="1us", target_vtl=None):
        """HvCallSendSyntheticClusterIpi to *dest* in *target_vtl* (default: this VTL)."""
        dests = [dest] if isinstance(dest, int) else list(dest)
        ns = parse_duration(service)
        tv = self.vtl if target_vtl is None else target_vtl
        if tv >= self._sim.nvtl:
            if self._sim.nvtl == 1:
                return  # VSM off: there is no higher VTL to notify
            raise ValueError(f"target_vtl {tv} does not exist (vm.vtls = {self._sim.nvtl})")
        self._sim.send_pv_ipi(self.vp, self.vtl, dests, tv, vector, [ns] * len(dests), self._widx)

    def set_tpr(self, cls: int) -> None:
        """Write this context's TPR (CR8): classes <= *cls* stay pending.

        Takes effect at once and costs nothing (a CR8 write does not exit with APICv or
        TPR shadowing): a pending interrupt whose class is now above the TPR is delivered
        at once, in this VTL (lapic.c apic_set_tpr -> apic_update_ppr).
        """
        if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls <= 15:
            raise ValueError(f"set_tpr({cls!r}): the TPR is a priority class, an integer 0-15")
        self._c.tpr = cls
        self._vp.dispatch()

    def sleep(self, duration):
        """Block this program for *duration* without using CPU (a plain SimPy timeout)."""
        return self.env.timeout(parse_duration(duration))

    def clear_vina(self):
        """Software clears the VINA assertion of this context (rule 9)."""
        c = self._c
        c.vina_asserted = False
        self._sim.rec.clears.append((self.vp, self.vtl, self.env.now))


def _drive(pctx, gen):
    """Run generator *gen*; after each yield, let the VP re-dispatch (the program decided)."""
    c = pctx._c
    value = None
    while True:
        try:
            ev = gen.send(value)
        except StopIteration:
            c.prog_pending = False
            c.prog_done = True
            pctx._vp.dispatch()
            return
        c.prog_pending = False
        pctx._vp.dispatch()
        value = yield ev


def start_program(sim, ctx, program, widx) -> None:
    """Attach *program* to context *ctx* and start it as a SimPy process at time 0."""
    pctx = ProgramContext(sim, ctx, widx)
    ctx.prog = pctx
    gen = program(pctx)
    if not hasattr(gen, "send"):
        raise TypeError(f"program {program!r} must be a generator function (use yield)")
    sim.env.process(_drive(pctx, gen))
