"""Design paths compiled against a cost profile and a VM size, ready for the engine.

A :class:`CompiledPath` turns a design's steps into *segments*: runs of consecutive steps
with the same payer, merged, with zero-length segments dropped. The engine executes the
segments in order: a ``vp`` segment occupies the paying VP (it runs no guest code), a
``none`` segment only delays what follows. With fixed costs the segments are computed once;
with distributions they are sampled each time the path is taken, from the run's cost stream.
"""

from __future__ import annotations

from ..costs import CostProfile
from ..designs import COUNTERS, PATHS, Design

COUNTER_INDEX = {name: i for i, name in enumerate(COUNTERS)}


def _amount(value, n: int, v: int) -> int:
    if value == "N":
        return n
    if value == "V":
        return v
    if value == "N*V":
        return n * v
    return int(value)


class CompiledPath:
    """One path of a design: its segments ``((is_vp, ns), ...)`` and counter increments."""

    __slots__ = ("name", "code", "fixed", "counts", "_parts", "exit_only", "total", "split",
                 "_steps")

    def __init__(self, name, code, steps, profile: CostProfile, n: int, v: int, cost_rng):
        self.name = name
        self.code = code
        counts: dict[int, int] = {}
        parts = []  # [(is_vp, [(dist, times)])]
        for s in steps:
            times = _amount(s.times, n, v)
            for c, amount in s.count:
                idx = COUNTER_INDEX[c]
                counts[idx] = counts.get(idx, 0) + _amount(amount, n, v)
            is_vp = s.payer != "none"
            if parts and parts[-1][0] == is_vp:
                parts[-1][1].append((profile[s.cost], times))
            else:
                parts.append((is_vp, [(profile[s.cost], times)]))
        self.counts = tuple(counts.items())
        # ns (means) before, of and after the design's hand-off step; (total, 0, 0) when
        # the path has none. Only the host layer reads it (docs/host.md).
        split = [0.0, 0.0, 0.0]
        part = 0
        for s in steps:
            d = profile[s.cost]
            ns = (d.fixed if d.fixed is not None else d.mean) * _amount(s.times, n, v)
            if s.handoff:
                split[1] += ns
                part = 2
            else:
                split[part] += ns
        self.split = tuple(split)
        if all(d.fixed is not None for _, items in parts for d, _t in items):
            segs = []
            for is_vp, items in parts:
                ns = sum(d.fixed * t for d, t in items)
                if ns > 0:
                    segs.append((is_vp, ns))
            self.fixed = tuple(_merge(segs))
            self._parts = None
            # ns of a path that is one fixed VP segment (a plain exit), else 0
            f = self.fixed
            self.exit_only = f[0][1] if len(f) == 1 and f[0][0] else 0
            self.total = sum(ns for _vp, ns in f)  # ns of the whole path
            self._steps = [(s.payer != "none", profile[s.cost].fixed, _amount(s.times, n, v))
                           for s in steps]
        else:
            self.fixed = None
            self.exit_only = 0
            self.total = -1
            self._parts = [(is_vp, [(d.sampler(cost_rng), t) for d, t in items])
                           for is_vp, items in parts]
            # the same samplers, step by step (cut() draws what segments() would)
            flat = [x for _vp, items in self._parts for x in items]
            self._steps = [(s.payer != "none", sample, t)
                           for s, (sample, t) in zip(steps, flat)]

    def segments(self):
        """The segments for one traversal: a tuple of ``(is_vp, ns)`` with ns > 0."""
        if self.fixed is not None:
            return self.fixed
        segs = []
        for is_vp, items in self._parts:
            ns = 0
            for sample, times in items:
                for _ in range(times):
                    ns += sample()
            if ns > 0:
                segs.append((is_vp, ns))
        return tuple(_merge(segs))

    def cut(self, i0: int, i1: int):
        """One traversal cut around steps [i0, i1): ``(before, ns, after)``, the segments
        of the steps before, the ns of those steps, the segments of the steps after. Draws
        exactly what :meth:`segments` would (the host layer's errands, docs/host.md)."""
        before, after, mid = [], [], 0
        for i, (is_vp, value, times) in enumerate(self._steps):
            ns = value * times if self.fixed is not None else \
                sum(value() for _ in range(times))
            if i < i0:
                before.append((is_vp, ns))
            elif i < i1:
                mid += ns
            else:
                after.append((is_vp, ns))
        return (tuple(_merge([x for x in before if x[1] > 0])), mid,
                tuple(_merge([x for x in after if x[1] > 0])))


def _merge(segs):
    out = []
    for is_vp, ns in segs:
        if out and out[-1][0] == is_vp:
            out[-1] = (is_vp, out[-1][1] + ns)
        else:
            out.append((is_vp, ns))
    return out


def compile_design(design: Design, profile: CostProfile, n: int, v: int, cost_rng,
                   path_names: list) -> dict[str, CompiledPath]:
    """Compile every path of *design*; path codes index into *path_names* (appended to)."""
    out = {}
    for name in PATHS:
        code = len(path_names)
        path_names.append(name)
        out[name] = CompiledPath(name, code, design.path(name), profile, n, v, cost_rng)
    return out
