"""Where a VP's state lives: the engine's objects against three other layouts.

Usage::

    python bench/layout.py                 # wall time per VP step, 64 and 1,024 VPs, 5 rounds
    python bench/layout.py --rounds 9
    python bench/layout.py --cache         # instructions and simulated cache misses (cachegrind)

Issue 15 asks that the cost per model action grow at most 1.3x from 64 to 1,024 VPs.
``bench/instructions.py --vps 1024 --cache`` finds that the instructions per action hardly
grow (x1.05) while the data-cache misses do (x2.3 at the 1 MB level): each expiry of a
timer whose phase every VP shares walks all VPs, and their state, spread over a VP
object, two ``Context`` objects, their lists and the int objects their slots point to,
does not stay in a 1 MB cache from one walk to the next. The remedy usually proposed is
VP state in arrays. This measures it, and two layouts between, without rewriting the
engine:

- ``objects``: the engine's own ``VP`` and ``Context`` (``vsmsim/engine/vp.py``), built
  as a simulation builds them, so that the layout is the engine's;
- ``packed``: one small object per VP holding only the fields the steps touch (the
  contexts' folded in), residency in one list;
- ``columns``: one ``array('q')`` per field, indexed by VP: a field of 1,024 VPs is 8 KB
  in one place, its ints stored in the column rather than in objects of their own;
- ``lists``: one list per field, indexed by VP (the ints are objects again, the column
  a dense array of pointers).

Every layout does the same steps, field for field, the engine's commonest per-VP steps:

- a *wave*: a VTL0 timer's expiry on every VP in turn, each VP in the state a lazy
  handler end leaves it (``fusion.settle`` booking the last handler, the new row
  appended, ``exit_then_pend`` of the new one with its ``_only_compute_next`` test);
- *touches*: an IPI's handler started and ended on a random VP (``land``,
  ``_handler_started``, ``_start_segment``, ``_seg_end``, ``_back_to_compute``), 12.5 IPIs
  per wave at 64 VPs and in proportion with more (the standard workload's 50,000 IPIs a
  second against its 4,000 VTL0 expiries, at constant per-VP load), two touches each.

All append the same packed interrupt rows and end with the same residency
(tests/test_bench_layout.py). Each layout's steps are written out on their own, line for
line alike: a step shared through a helper would add the very indirection (a call, a
lookup of the field) whose cost is compared. Each size runs the same number of wave
steps (102,400), so per-step figures compare directly. Timing or counting only: a
benchmark, never a test.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from array import array
from itertools import count
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vsmsim.engine.vp import VP  # noqa: E402
from vsmsim.engine.work import W_COMPUTE, W_HANDLER, W_NONE  # noqa: E402
from vsmsim.record import F_END, F_SERVICE, F_START, NF, pack_row  # noqa: E402

# The simulated caches of --cache are bench/instructions.py's (loaded by path, as
# bench/floor.py loads its neighbours).
_spec = importlib.util.spec_from_file_location("bench_instructions", ROOT / "bench" / "instructions.py")
_instructions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_instructions)
CACHE_OPTS = _instructions._CACHE_OPTS

#: VP steps of one run: 1,600 waves of 64 VPs, 100 of 1,024.
STEPS = 102_400
EXIT_NS, SERVICE_NS, PERIOD_NS, IPI_NS = 2132, 2000, 250_000, 1000
TOUCHES_PER_64 = 12.5
#: The layouts: the engine's objects; one small object per VP; one array('q') per field;
#: one list per field.
VARIANTS = ("objects", "packed", "columns", "lists")


# ----------------------------------------------------------------------------- objects
def build_objects(n: int):
    """*n* of the engine's VPs (2 VTLs), each as a lazy handler end leaves it."""
    sim = SimpleNamespace(env=SimpleNamespace(ids=count()))
    rows = array("q")
    vps = []
    for i in range(n):
        vp = VP(sim, i, 2, (0, 0), False, False)
        c = vp.ctxs[0]
        c.compute = True
        irq = len(rows)
        rows.frombytes(pack_row(1, 0, 0xEF, -1, -1, i, 0, 0, 0, -1, -1, -1, 0, 0, 0,
                                SERVICE_NS, -1, irq // NF))
        vp.halted = False
        vp.in_oh = True
        vp.acc_state = vp.slot_exit
        vp.fuse_irq, vp.fuse_t1, vp.fuse_ctx, vp.fuse_lazy = irq, EXIT_NS, c, True
        c.inflight = 1
        vps.append(vp)
    return vps, rows


def wave_objects(vps, rows, now: int, ids) -> None:
    """A VTL0 expiry on every VP, in the engine's lazy-end state (fields as the engine's)."""
    for vp in vps:
        c = vp.ctxs[0]
        # fusion.settle + fused_end: the last handler ended at te; compute since
        irq0 = vp.fuse_irq
        t1 = vp.fuse_t1
        te = t1 + rows[irq0 + F_SERVICE]
        vp.fuse_irq = -1
        vp.fuse_lazy = False
        c.inflight -= 1
        vp.in_oh = False
        acc = vp.acc
        acc[vp.acc_state] += t1 - vp.acc_since
        acc[c.vtl] += te - t1
        vp.acc_state = c.vtl
        vp.acc_since = te
        rows[irq0 + F_START] = t1
        rows[irq0 + F_END] = te
        vp.seg_ev_id = -1
        vp.work = W_COMPUTE
        vp.seg_ctx = c
        vp.seg_start = te
        # the expiry's row, then exit_then_pend fused and lazy
        irq = len(rows)
        rows.frombytes(pack_row(1, 0, 0xEF, -1, -1, vp.idx, 0, now, now, -1, -1, -1, 0, 0,
                                3, SERVICE_NS, -1, irq // NF))
        c.inflight += 1
        if vp.halted or c.handler >= 0 or c.deferred or c.joined or vp.next_vtl != c.vtl:
            raise AssertionError("not the lazy state")
        vp.seg_ctx.compute_ns += now - vp.seg_start
        vp.work = W_NONE
        vp.in_oh = True
        acc[vp.acc_state] += now - vp.acc_since
        vp.acc_state = vp.slot_exit
        vp.acc_since = now
        vp.fuse_irq = irq
        vp.fuse_t1 = now + EXIT_NS
        vp.fuse_ctx = c
        vp.fuse_seq = next(ids)
        vp.seg_ev_id = next(ids)
        if (c.compute and not vp.oh_q and not c.irr_mask and not c.deferred and not c.ret_req
                and not c.prog_pending and c.task_rem < 0):
            for h in vp.above[0]:
                m = h.irr_mask
                if m and h.handler < 0 and (m.bit_length() - 1) >> 4 > h.tpr:
                    break
            else:
                vp.fuse_lazy = True


def touch_objects(vp, now: int, ids) -> None:
    """An IPI's handler on *vp*: it lands, starts, ends, and the VP goes back to compute."""
    c = vp.ctxs[0]
    c.irr_mask |= 1 << 0xFB  # land
    c.irr_id[0xFB] = now
    c.irr_mask ^= 1 << 0xFB  # dispatch takes it
    c.irr_id.pop(0xFB)
    c.handler = now
    c.h_rem = IPI_NS
    acc = vp.acc
    acc[vp.acc_state] += now - vp.acc_since  # _start_segment
    vp.acc_state = c.vtl
    vp.acc_since = now
    vp.work = W_HANDLER
    vp.seg_ctx = c
    vp.seg_start = now
    vp.seg_ev_id = next(ids)
    end = now + IPI_NS  # _seg_end, then _back_to_compute
    c.h_rem = 0
    c.handler = -1
    vp.work = W_COMPUTE
    vp.seg_start = end
    acc[vp.acc_state] += end - vp.acc_since
    vp.acc_since = end


# ----------------------------------------------------------------------------- packed
class Packed:
    """One object per VP holding only the fields the steps touch: context 0's and the
    higher context's folded in (``c_``, ``h_``), residency in one list. What the engine's
    layout would be with every field a step needs in one small object."""

    __slots__ = ("idx", "fuse_irq", "fuse_t1", "fuse_lazy", "fuse_seq", "in_oh", "halted",
                 "next_vtl", "acc_state", "acc_since", "seg_ev_id", "work", "seg_start",
                 "oh_q", "acc", "slot_exit", "c_inflight", "c_handler", "c_h_rem",
                 "c_deferred", "c_joined", "c_compute", "c_compute_ns", "c_irr_mask",
                 "c_irr_id", "c_ret_req", "c_prog_pending", "c_task_rem", "h_irr_mask",
                 "h_handler", "h_tpr")

    def __init__(self, idx: int, irq: int):
        self.idx = idx
        self.fuse_irq, self.fuse_t1, self.fuse_lazy, self.fuse_seq = irq, EXIT_NS, True, 0
        self.in_oh, self.halted, self.next_vtl = True, False, 0
        self.acc = [0] * 5
        self.slot_exit = 3
        self.acc_state, self.acc_since, self.seg_ev_id, self.work, self.seg_start = 3, 0, -1, 0, 0
        self.oh_q = ()
        self.c_inflight, self.c_handler, self.c_h_rem = 1, -1, 0
        self.c_deferred, self.c_joined, self.c_compute, self.c_compute_ns = (), [], True, 0
        self.c_irr_mask, self.c_irr_id, self.c_ret_req, self.c_prog_pending = 0, {}, False, False
        self.c_task_rem, self.h_irr_mask, self.h_handler, self.h_tpr = -1, 0, -1, 0


def build_packed(n: int):
    rows = array("q")
    vps = []
    for i in range(n):
        irq = len(rows)
        rows.frombytes(pack_row(1, 0, 0xEF, -1, -1, i, 0, 0, 0, -1, -1, -1, 0, 0, 0,
                                SERVICE_NS, -1, irq // NF))
        vps.append(Packed(i, irq))
    return vps, rows


def wave_packed(vps, rows, now: int, ids) -> None:
    """wave_objects on Packed: the same reads and writes, field for field."""
    for vp in vps:
        irq0 = vp.fuse_irq
        t1 = vp.fuse_t1
        te = t1 + rows[irq0 + F_SERVICE]
        vp.fuse_irq = -1
        vp.fuse_lazy = False
        vp.c_inflight -= 1
        vp.in_oh = False
        acc = vp.acc
        acc[vp.acc_state] += t1 - vp.acc_since
        acc[0] += te - t1
        vp.acc_state = 0
        vp.acc_since = te
        rows[irq0 + F_START] = t1
        rows[irq0 + F_END] = te
        vp.seg_ev_id = -1
        vp.work = W_COMPUTE
        vp.seg_start = te
        irq = len(rows)
        rows.frombytes(pack_row(1, 0, 0xEF, -1, -1, vp.idx, 0, now, now, -1, -1, -1, 0, 0,
                                3, SERVICE_NS, -1, irq // NF))
        vp.c_inflight += 1
        if vp.halted or vp.c_handler >= 0 or vp.c_deferred or vp.c_joined or vp.next_vtl:
            raise AssertionError("not the lazy state")
        vp.c_compute_ns += now - vp.seg_start
        vp.work = W_NONE
        vp.in_oh = True
        acc[vp.acc_state] += now - vp.acc_since
        vp.acc_state = vp.slot_exit
        vp.acc_since = now
        vp.fuse_irq = irq
        vp.fuse_t1 = now + EXIT_NS
        vp.fuse_seq = next(ids)
        vp.seg_ev_id = next(ids)
        if (vp.c_compute and not vp.oh_q and not vp.c_irr_mask and not vp.c_deferred
                and not vp.c_ret_req and not vp.c_prog_pending and vp.c_task_rem < 0):
            m = vp.h_irr_mask
            if not (m and vp.h_handler < 0 and (m.bit_length() - 1) >> 4 > vp.h_tpr):
                vp.fuse_lazy = True


def touch_packed(vp, now: int, ids) -> None:
    """touch_objects on Packed."""
    vp.c_irr_mask |= 1 << 0xFB
    vp.c_irr_id[0xFB] = now
    vp.c_irr_mask ^= 1 << 0xFB
    vp.c_irr_id.pop(0xFB)
    vp.c_handler = now
    vp.c_h_rem = IPI_NS
    acc = vp.acc
    acc[vp.acc_state] += now - vp.acc_since
    vp.acc_state = 0
    vp.acc_since = now
    vp.work = W_HANDLER
    vp.seg_start = now
    vp.seg_ev_id = next(ids)
    end = now + IPI_NS
    vp.c_h_rem = 0
    vp.c_handler = -1
    vp.work = W_COMPUTE
    vp.seg_start = end
    acc[vp.acc_state] += end - vp.acc_since
    vp.acc_since = end


# ----------------------------------------------------------------------------- columns
class Columns:
    """The same fields, one ``array('q')`` per field indexed by VP (context 0's fields
    prefixed ``c_``, context 1's ``h_``; residency as one column per state)."""

    FIELDS = ("fuse_irq", "fuse_t1", "fuse_lazy", "fuse_seq", "in_oh", "halted", "next_vtl",
              "acc_state", "acc_since", "seg_ev_id", "work", "seg_ctx", "seg_start", "oh_q",
              "c_inflight", "c_handler", "c_h_rem", "c_deferred", "c_joined", "c_compute",
              "c_compute_ns", "c_irr_mask", "c_ret_req", "c_prog_pending", "c_task_rem",
              "c_tpr", "h_irr_mask", "h_handler", "h_tpr")
    #: residency states: VTL0, VTL1, transition, exit, idle (vsmsim.engine.work)
    ACC = 5

    def __init__(self, n: int, lists: bool = False):
        def column():
            return [0] * n if lists else array("q", bytes(8 * n))
        for f in self.FIELDS:
            setattr(self, f, column())
        self.acc = [column() for _ in range(self.ACC)]
        self.c_irr_id = [None] * n


def build_columns(n: int, lists: bool = False):
    cols = Columns(n, lists)
    rows = array("q")
    for i in range(n):
        irq = len(rows)
        rows.frombytes(pack_row(1, 0, 0xEF, -1, -1, i, 0, 0, 0, -1, -1, -1, 0, 0, 0,
                                SERVICE_NS, -1, irq // NF))
        cols.in_oh[i] = 1
        cols.acc_state[i] = 3
        cols.fuse_irq[i], cols.fuse_t1[i], cols.fuse_lazy[i] = irq, EXIT_NS, 1
        cols.c_inflight[i] = 1
        cols.c_compute[i] = 1
        cols.c_handler[i] = cols.h_handler[i] = cols.c_task_rem[i] = -1
    return cols, rows


def wave_columns(cols: Columns, rows, now: int, ids) -> None:
    """wave_objects, on columns: the same reads and writes, field for field."""
    fuse_irq, fuse_t1, fuse_lazy, fuse_seq = cols.fuse_irq, cols.fuse_t1, cols.fuse_lazy, cols.fuse_seq
    in_oh, halted, next_vtl = cols.in_oh, cols.halted, cols.next_vtl
    acc_state, acc_since, seg_ev_id = cols.acc_state, cols.acc_since, cols.seg_ev_id
    work, seg_ctx, seg_start, oh_q = cols.work, cols.seg_ctx, cols.seg_start, cols.oh_q
    c_inflight, c_handler, c_deferred, c_joined = (cols.c_inflight, cols.c_handler,
                                                   cols.c_deferred, cols.c_joined)
    c_compute, c_compute_ns, c_irr_mask = cols.c_compute, cols.c_compute_ns, cols.c_irr_mask
    c_ret_req, c_prog_pending, c_task_rem = cols.c_ret_req, cols.c_prog_pending, cols.c_task_rem
    h_irr_mask, h_handler, h_tpr = cols.h_irr_mask, cols.h_handler, cols.h_tpr
    acc = cols.acc
    acc0 = acc[0]
    for i in range(len(fuse_irq)):
        irq0 = fuse_irq[i]
        t1 = fuse_t1[i]
        te = t1 + rows[irq0 + F_SERVICE]
        fuse_irq[i] = -1
        fuse_lazy[i] = 0
        c_inflight[i] -= 1
        in_oh[i] = 0
        acc[acc_state[i]][i] += t1 - acc_since[i]
        acc0[i] += te - t1
        acc_state[i] = 0
        acc_since[i] = te
        rows[irq0 + F_START] = t1
        rows[irq0 + F_END] = te
        seg_ev_id[i] = -1
        work[i] = W_COMPUTE
        seg_ctx[i] = 0
        seg_start[i] = te
        irq = len(rows)
        rows.frombytes(pack_row(1, 0, 0xEF, -1, -1, i, 0, now, now, -1, -1, -1, 0, 0,
                                3, SERVICE_NS, -1, irq // NF))
        c_inflight[i] += 1
        if halted[i] or c_handler[i] >= 0 or c_deferred[i] or c_joined[i] or next_vtl[i]:
            raise AssertionError("not the lazy state")
        c_compute_ns[i] += now - seg_start[i]
        work[i] = W_NONE
        in_oh[i] = 1
        acc[acc_state[i]][i] += now - acc_since[i]
        acc_state[i] = 3
        acc_since[i] = now
        fuse_irq[i] = irq
        fuse_t1[i] = now + EXIT_NS
        fuse_seq[i] = next(ids)
        seg_ev_id[i] = next(ids)
        if (c_compute[i] and not oh_q[i] and not c_irr_mask[i] and not c_deferred[i]
                and not c_ret_req[i] and not c_prog_pending[i] and c_task_rem[i] < 0):
            m = h_irr_mask[i]
            if not (m and h_handler[i] < 0 and (m.bit_length() - 1) >> 4 > h_tpr[i]):
                fuse_lazy[i] = 1


def touch_columns(cols: Columns, i: int, now: int, ids) -> None:
    """touch_objects on columns. The IRR mask of 256 vectors does not fit an int64: as a
    column it would be four words; here the one word of the vector's class stands for it."""
    bit = 1 << (0xFB & 63)
    cols.c_irr_mask[i] |= bit
    cols.c_irr_id[i] = now
    cols.c_irr_mask[i] ^= bit
    cols.c_irr_id[i] = None
    cols.c_handler[i] = now
    cols.c_h_rem[i] = IPI_NS
    acc = cols.acc
    acc[cols.acc_state[i]][i] += now - cols.acc_since[i]
    cols.acc_state[i] = 0
    cols.acc_since[i] = now
    cols.work[i] = W_HANDLER
    cols.seg_ctx[i] = 0
    cols.seg_start[i] = now
    cols.seg_ev_id[i] = next(ids)
    end = now + IPI_NS
    cols.c_h_rem[i] = 0
    cols.c_handler[i] = -1
    cols.work[i] = W_COMPUTE
    cols.seg_start[i] = end
    acc[cols.acc_state[i]][i] += end - cols.acc_since[i]
    cols.acc_since[i] = end


# ----------------------------------------------------------------------------- runs
def _build(variant: str, n: int):
    """(state, rows, wave, touch, by_object) of *variant* on *n* VPs."""
    if variant == "objects":
        vps, rows = build_objects(n)
        return vps, rows, wave_objects, touch_objects, True
    if variant == "packed":
        vps, rows = build_packed(n)
        return vps, rows, wave_packed, touch_packed, True
    if variant in ("columns", "lists"):
        cols, rows = build_columns(n, lists=variant == "lists")
        return cols, rows, wave_columns, touch_columns, False
    raise ValueError(f"layout {variant!r}: allowed {', '.join(VARIANTS)}")


def totals(variant: str, state) -> tuple:
    """What the steps computed, whatever the layout: residency per state and compute (ns)."""
    if variant == "objects":
        return (tuple(sum(vp.acc[s] for vp in state) for s in range(5)),
                sum(vp.ctxs[0].compute_ns for vp in state))
    if variant == "packed":
        return (tuple(sum(vp.acc[s] for vp in state) for s in range(5)),
                sum(vp.c_compute_ns for vp in state))
    return tuple(sum(a) for a in state.acc), sum(state.c_compute_ns)


def run(variant: str, n: int, steps: int = STEPS, seed: int = 1, digest: bool = False):
    """*steps* wave steps (and their touches) on *n* VPs: the wall s of the loop, and with
    *digest* the interrupt rows as bytes and :func:`totals` too (what the tests compare
    across layouts; left out of the counted runs, whose misses it would add to)."""
    ids = count()
    rng = random.Random(seed)
    waves = max(1, steps // n)
    per_wave = TOUCHES_PER_64 * n / 64
    state, rows, wave, touch, by_object = _build(variant, n)
    # the touches of each wave: 2 per IPI (its sender's exit stands for one), drawn up front
    who = [rng.randrange(n) for _ in range(int(2 * per_wave * waves) + 1)]
    k = 0
    owed = 0.0
    t0 = time.perf_counter()
    for w in range(waves):
        now = (w + 1) * PERIOD_NS
        wave(state, rows, now, ids)
        owed += 2 * per_wave
        while owed >= 1:
            if by_object:
                touch(state[who[k]], now + 5000, ids)
            else:
                touch(state, who[k], now + 5000, ids)
            k += 1
            owed -= 1
    wall_s = time.perf_counter() - t0
    if digest:
        return wall_s, rows.tobytes(), totals(variant, state)
    return wall_s


def wall(rounds: int) -> int:
    """Interleaved rounds in this process; prints ns per wave step and the ratios."""
    sizes, variants = (64, 1024), VARIANTS
    times = {(v, n): [] for v in variants for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            for v in variants:
                gc.collect()
                times[(v, n)].append(run(v, n) / STEPS * 1e9)
    print(f"ns per wave step (and its share of touches), median of {rounds} interleaved "
          f"rounds (min - max):")
    print("| layout | 64 VPs | 1,024 VPs | 1,024 / 64 |")
    print("|---|---|---|---|")
    for v in variants:
        a, b = (statistics.median(times[(v, n)]) for n in sizes)
        print(f"| {v} | {a:.0f} ({min(times[(v, 64)]):.0f} - {max(times[(v, 64)]):.0f}) | "
              f"{b:.0f} ({min(times[(v, 1024)]):.0f} - {max(times[(v, 1024)]):.0f}) | "
              f"{b / a:.2f} |")
    for v in VARIANTS[1:]:
        for n in sizes:
            r = [c / o for c, o in zip(times[(v, n)], times[("objects", n)])]
            print(f"{v} / objects at {n:,} VPs, paired by round: median "
                  f"{statistics.median(r):.2f} ({min(r):.2f} - {max(r):.2f})")
    return 0


def cache() -> int:
    """Instructions and simulated data-cache misses per wave step, under cachegrind (a
    run of STEPS minus one of STEPS / 8, so imports and building cancel out)."""
    if shutil.which("valgrind") is None:
        print("bench/layout.py: valgrind is not installed (apt-get install valgrind)",
              file=sys.stderr)
        return 2
    res = {}
    for v in VARIANTS:
        for n in (64, 1024):
            c = {}
            for steps in (STEPS, STEPS // 8):
                p = subprocess.run(["valgrind", *CACHE_OPTS, "--cachegrind-out-file=/dev/null",
                                    sys.executable, __file__, "--one", v, str(n), str(steps)],
                                   capture_output=True, text=True, cwd=ROOT)
                got = {}
                for key, label in (("ir", "I   refs"), ("d1", "D1  misses"), ("ll", "LLd misses")):
                    m = re.search(label + r":\s+([\d,]+)", p.stderr)
                    if m:
                        got[key] = int(m.group(1).replace(",", ""))
                if p.returncode != 0 or len(got) != 3:
                    print(f"bench/layout.py: valgrind failed: {p.stderr.strip()[-300:]}",
                          file=sys.stderr)
                    return 1
                c[steps] = got
            res[(v, n)] = {k: (c[STEPS][k] - c[STEPS // 8][k]) / (STEPS - STEPS // 8)
                           for k in ("ir", "d1", "ll")}
    print("per wave step (and its share of touches), cachegrind, 32 KB L1 data, 1 MB last level:")
    print("| layout | VPs | instructions | L1 data misses | 1 MB-level misses |")
    print("|---|---|---|---|---|")
    for (v, n), r in res.items():
        print(f"| {v} | {n:,} | {r['ir']:,.0f} | {r['d1']:.1f} | {r['ll']:.2f} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--cache", action="store_true",
                    help="count instructions and simulated cache misses under cachegrind")
    ap.add_argument("--one", nargs=3, metavar=("LAYOUT", "VPS", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:  # one counted run, for --cache
        v, n, steps = args.one
        try:
            run(v, int(n), int(steps))
        except ValueError as e:
            print(f"bench/layout.py: --one: {e}", file=sys.stderr)
            return 2
        return 0
    if args.rounds < 1:
        print(f"bench/layout.py: --rounds {args.rounds}: allowed 1 or more", file=sys.stderr)
        return 2
    return cache() if args.cache else wall(args.rounds)


if __name__ == "__main__":
    sys.exit(main())
