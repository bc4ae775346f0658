"""The floor under issue 15's 1.0x target: what full recording alone costs against the reference.

Usage::

    python bench/floor.py                  # 64 VPs, 1 simulated s, 3 rounds
    python bench/floor.py --rounds 5
    python bench/floor.py --scaling --rounds 9   # and the growth per action, 64 -> 1,024 VPs

The hand-written reference (``bench/reference.py``) records nothing. ``vsmsim.simulate``
must, by the target's own terms ("full recording and costs"), write a row for every
interrupt and every VTL switch. This script times, in one process and interleaved:

1. ``reference()`` on the standard workload (its counts give the rows a full recording
   of the same run holds: one interrupt row per delivery, one switch row per switch);
2. vsmsim's recorder (``vsmsim.record.Recorder``) appending exactly those rows and setting
   the fields the engine sets later (an interrupt's start and end, a switch's end), with no
   model at all: the cheapest a full recording can be with this recorder;
3. for comparison, two other ways to hold a row in pure Python: a list of tuples, and one
   ``array('q')`` per column (bytes per row printed too: the recorder's packed rows are 8
   bytes a field; a tuple of Python ints is twice that, ~144 MB more per simulated second
   of the standard workload, past the peak-memory target of 250 MB);
4. with ``--scaling``, the reference alone at 64, 256 and 1,024 VPs with the same model
   actions (1, 0.25, 0.0625 s), fastest of the rounds: how much of the engine's growth per
   action with VPs (issue 15's second target) SimPy's heap and the working set impose on
   a model that does nothing else; and ``vsmsim.simulate`` at 64 and 1,024 VPs in the
   same rounds, with both growths paired round by round (the scaling table of
   bench/run.py keeps the fastest of each row, and one slow row moves its ratio).

The floor is (reference + recording alone) / reference: an engine that did the model's
work as cheaply as the reference and recorded with this recorder could not go below it.
Timing only, so a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
import tracemalloc
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vsmsim.record import F_END, F_START, NF, SW_END, Recorder  # noqa: E402

# Loaded by path: bench/ on sys.path would let bench/profile.py shadow the standard
# library's profile module.
_spec = importlib.util.spec_from_file_location("bench_reference", ROOT / "bench" / "reference.py")
_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref)
reference = _ref.reference
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_run)  # its scaling rows' scenario and action count (--scaling)


def recorder_rows(n_int: int, n_sw: int) -> Recorder:
    """vsmsim's recorder with *n_int* interrupt rows and *n_sw* switch rows, written as the
    engine writes them (append, then the start and end fields; a switch, then its end)."""
    rec = Recorder()
    new_int, new_sw = rec.new_interrupt, rec.new_switch
    rows, sw = rec.rows, rec.sw
    per = max(1, n_int // max(1, n_sw)) if n_sw else n_int + 1
    t = 0
    k = 0
    for i in range(n_int):
        t += 1000
        h = new_int(2, 0, 0xEF, -1, -1, i & 63, 0, t, 2000, 1, 0)
        rows[h + F_START] = t
        rows[h + F_END] = t + 2000
        if k < n_sw and i % per == 0:
            s = new_sw(i & 63, 0, 1, 2, t)
            sw[s + SW_END] = t
            k += 1
    while k < n_sw:
        s = new_sw(0, 0, 1, 2, t)
        sw[s + SW_END] = t
        k += 1
    return rec


def tuple_rows(n: int) -> list:
    """The same interrupt rows as tuples in a list (no switch rows)."""
    out = []
    append = out.append
    t = 0
    for i in range(n):
        t += 1000
        append((2, 0, 0xEF, -1, -1, i & 63, 0, t, t, t, t + 2000, -1, 0, 0, 1, 2000, -1, i))
    return out


def column_rows(n: int) -> list:
    """The same interrupt rows, one ``array('q')`` per field (no switch rows)."""
    cols = [array("q") for _ in range(NF)]
    appends = [c.append for c in cols]
    t = 0
    for i in range(n):
        t += 1000
        for a, v in zip(appends, (2, 0, 0xEF, -1, -1, i & 63, 0, t, t, t, t + 2000, -1, 0,
                                  0, 1, 2000, -1, i)):
            a(v)
    return cols


def timed(fn, *args) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def bytes_per_row(fn, n: int) -> float:
    gc.collect()
    tracemalloc.start()
    keep = fn(n)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del keep
    return size / n


def _engine(vps: int, duration_ns: int):
    """``vsmsim.simulate`` of bench/run.py's scaling row at *vps* VPs (per-VP load kept):
    (wall s, model actions)."""
    import vsmsim

    sc = _run.variant(_run.load_standard(False), vps, duration_ns / 1e9)
    gc.collect()
    t0 = time.perf_counter()
    res = vsmsim.simulate(sc)
    wall = time.perf_counter() - t0
    return wall, _run.model_actions(res)["model_actions"]


def scaling(rounds: int) -> None:
    """The reference alone at 64, 256 and 1,024 VPs with the same model actions, and
    ``vsmsim.simulate`` at 64 and 1,024, interleaved; the growth per action of each,
    paired round by round (one round's two sizes ran a few seconds apart)."""
    sizes = ((64, 1_000_000_000), (256, 250_000_000), (1024, 62_500_000))
    walls = {v: [] for v, _d in sizes}
    eng = {64: [], 1024: []}
    for _ in range(rounds):
        for v, d in sizes:
            walls[v].append(timed(reference, v, d, 50_000 * v / 64, 7))
            if v in eng:
                wall, actions = _engine(v, d)
                eng[v].append(wall / actions)
    best = {v: min(w) for v, w in walls.items()}
    print("reference alone, same model actions (fastest of "
          f"{rounds}): " + ", ".join(f"{v} VPs {best[v]:.3f} s" for v in best)
          + f"; per action 1,024 / 64 VPs = {best[1024] / best[64]:.2f}")
    ref_g = [b / a for a, b in zip(walls[64], walls[1024])]
    eng_g = [b / a for a, b in zip(eng[64], eng[1024])]
    over = [e / r for e, r in zip(eng_g, ref_g)]
    for name, g in (("reference", ref_g), ("vsmsim.simulate", eng_g),
                    ("vsmsim's growth / the reference's", over)):
        print(f"per action, 1,024 / 64 VPs, {name}, paired by round: median "
              f"{statistics.median(g):.2f} (min - max {min(g):.2f} - {max(g):.2f}, "
              f"{rounds} rounds)")


def run(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vps", type=int, default=64)
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    ap.add_argument("--scaling", action="store_true",
                    help="also the reference alone at 64, 256 and 1,024 VPs")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.vps < 1 or args.duration <= 0:
        print("floor: --rounds and --vps must be >= 1 and --duration > 0", file=sys.stderr)
        return 2
    dur = round(args.duration * 1e9)
    rate = 50_000 * args.vps / 64
    counts = reference(args.vps, dur, rate, 7)
    n_int, n_sw = counts["delivered"], counts["switches"]
    ref_t, rec_t, tup_t, col_t = [], [], [], []
    for _ in range(args.rounds):
        ref_t.append(timed(reference, args.vps, dur, rate, 7))
        rec_t.append(timed(recorder_rows, n_int, n_sw))
        tup_t.append(timed(tuple_rows, n_int + n_sw))
        col_t.append(timed(column_rows, n_int + n_sw))
    ref, rec = statistics.median(ref_t), statistics.median(rec_t)
    n = n_int + n_sw
    print(f"standard workload, {args.vps} VPs, {args.duration:g} s: {n_int:,} interrupt rows + "
          f"{n_sw:,} switch rows = {n:,} rows ({counts['model_actions']:,} model actions); "
          f"medians of {args.rounds} interleaved rounds")
    print(f"{'':44s} {'wall s':>8s} {'ns per row':>10s} {'x reference':>11s} {'bytes/row':>9s}")
    print(f"{'reference (no recording, no costs)':44s} {ref:8.3f} {ref / n * 1e9:10.0f} "
          f"{1.0:11.2f} {'-':>9s}")
    rows = (("vsmsim's recorder alone (packed rows)", rec_t, None),
            ("  alternative: list of tuples", tup_t, tuple_rows),
            ("  alternative: an array('q') per column", col_t, column_rows))
    for name, ts, fn in rows:
        m = statistics.median(ts)
        size = f"{bytes_per_row(fn, 100_000):9.0f}" if fn else f"{8 * NF:9d}"
        print(f"{name:44s} {m:8.3f} {m / n * 1e9:10.0f} {m / ref:11.2f} {size}")
    print(f"floor = (reference + recorder alone) / reference = {(ref + rec) / ref:.2f}: an engine "
          "doing the model's work as cheaply as the reference and recording every row could "
          "not go below it")
    if args.scaling:
        scaling(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(run())
