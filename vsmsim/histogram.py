"""A streaming log-bucket histogram of latencies (ns) with a stated relative error.

For long runs that keep no rows (issue 15's ``record.tables = "summary"``): counts, min,
max and sum are exact; quantiles are estimated from buckets whose widths grow
geometrically, so the memory is the number of distinct buckets in use (about
``ln(max/min) / (2 * rel_error)``: ~1,400 for 1 ns to 1e12 ns at 1 %), whatever the number
of values.

**Guarantee.** For every ``q`` in [0, 1], ``|quantile(q) - exact| <= rel_error * exact``,
where ``exact = numpy.quantile(values, q, method="inverted_cdf")``: the estimate is the
representative of the bucket holding that order statistic, and every value v > 0 lies
within ``rel_error`` of its bucket's representative. 0 has a bucket of its own (exact);
``q = 0`` and ``q = 1`` return the exact min and max.

**Buckets** (DDSketch's, Masson, Rim and Lee, VLDB 2019): with ``gamma = (1 + a) / (1 - a)``,
bucket ``i`` holds the values in ``(gamma**(i-1), gamma**i]`` and is represented by
``2 * gamma**i / (gamma + 1)``, at most ``a`` away from any value of the bucket, relatively.
``a`` is ``rel_error`` shrunk by one part in 1e8 so that floating-point rounding (in the
logarithm, in powers of gamma) cannot push an estimate past ``rel_error``; a value close to
a bucket boundary (in the logarithm's rounding) is placed by comparing it with the boundary
itself, so ``add`` and the vectorised ``add_many`` put every value in the same bucket.

Pure Python; NumPy is used by :meth:`LogHistogram.add_many` if it is installed.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from .errors import InputError

try:
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is a dependency of vsmsim, not of this module
    _np = None

#: Smallest relative error accepted: below it, float rounding is of the order of the margin.
MIN_REL_ERROR = 1e-6
#: Distance (in bucket-index units) from a boundary within which a value's bucket is decided
#: by comparing it with the boundary; the logarithm's error is below 3e-7 of a unit for
#: every float and every rel_error >= MIN_REL_ERROR.
_NEAR = 1e-5
_INF = math.inf


def _check_rel_error(rel_error) -> float:
    ok = isinstance(rel_error, (int, float)) and not isinstance(rel_error, bool) and \
        MIN_REL_ERROR <= rel_error < 1
    if not ok:
        raise InputError(f"LogHistogram: rel_error={rel_error!r} must be a number in "
                         f"[{MIN_REL_ERROR:g}, 1) (e.g. 0.01 for 1 %)")
    return float(rel_error)


def _bad_value(v) -> InputError:
    return InputError(f"LogHistogram: value {v!r} must be a finite number >= 0 (ns)")


class LogHistogram:
    """Counts of values (ns, >= 0) in log buckets; exact count, min, max, sum and mean.

    ``rel_error``: the relative error of every quantile estimate, in [1e-6, 1). Add values
    with :meth:`add` or :meth:`add_many`, combine histograms with :meth:`merge`, estimate
    with :meth:`quantile`; :meth:`to_dict` / :meth:`from_dict` for JSON. Deterministic:
    the same values, in any order, give the same buckets.
    """

    __slots__ = ("rel_error", "gamma", "_inv_lg", "_rep_scale", "buckets", "zero_count",
                 "count", "min", "max", "sum", "_bounds", "_cum")

    def __init__(self, rel_error: float = 0.01):
        self.rel_error = _check_rel_error(rel_error)
        a = self.rel_error * (1 - 1e-8)  # the margin for float rounding (module docstring)
        self.gamma = (1 + a) / (1 - a)
        self._inv_lg = 1.0 / math.log(self.gamma)
        self._rep_scale = 2.0 / (self.gamma + 1.0)
        self.buckets: dict[int, int] = {}  # bucket index -> count (values > 0)
        self.zero_count = 0
        self.count = 0
        self.min = None  # exact, as given (None while empty)
        self.max = None
        self.sum = 0     # exact for integer values (Python ints do not overflow)
        self._bounds: dict[int, float] = {}
        self._cum = None  # (indices, cumulative counts), built by quantile, reset by add

    # ------------------------------------------------------------ buckets
    def bound(self, i: int) -> float:
        """Upper boundary of bucket *i*: ``gamma ** i`` (ns), computed once per bucket."""
        b = self._bounds.get(i)
        if b is None:
            try:
                b = self.gamma ** i
            except OverflowError:
                b = _INF
            self._bounds[i] = b
        return b

    def index(self, v) -> int:
        """The bucket of value *v* > 0 (ns): the *i* with ``bound(i-1) < v <= bound(i)``."""
        x = math.log(v) * self._inv_lg
        i = math.ceil(x)
        f = i - x
        if f < _NEAR or f > 1 - _NEAR:
            i = self._exact_index(v, i)
        return i

    def _exact_index(self, v, i: int) -> int:
        while v > self.bound(i):
            i += 1
        while v <= self.bound(i - 1):
            i -= 1
        return i

    def representative(self, i: int) -> float:
        """The value (ns) that stands for bucket *i*: within rel_error of all its values."""
        return self.bound(i) * self._rep_scale

    # ------------------------------------------------------------ adding
    def add(self, v) -> None:
        """Add one value *v* (ns, a finite number >= 0)."""
        if type(v) is not int and type(v) is not float:
            v = _plain(v)
        if 0 < v < _INF:
            i = self.index(v)
            b = self.buckets
            b[i] = b.get(i, 0) + 1
        elif v == 0:
            self.zero_count += 1
        else:
            raise _bad_value(v)
        self.count += 1
        self.sum += v
        if self.min is None or v < self.min:
            self.min = v
        if self.max is None or v > self.max:
            self.max = v
        self._cum = None

    def add_many(self, values) -> None:
        """Add every value of *values* (an array or iterable of ns, finite, >= 0) at once."""
        if _np is None:  # pragma: no cover
            for v in values:
                self.add(v)
            return
        arr = _np.asarray(values).ravel()
        if arr.size == 0:
            return
        if arr.dtype.kind == "b":
            arr = arr.astype(_np.int64)
        integer = arr.dtype.kind in "iu"
        if not integer:
            if arr.dtype.kind != "f":
                try:
                    arr = arr.astype(_np.float64)
                except (TypeError, ValueError):
                    raise _bad_value(next(v for v in arr.tolist()
                                          if not isinstance(v, (int, float)))) from None
            bad = ~_np.isfinite(arr) | (arr < 0)
        else:
            bad = arr < 0
        if bad.any():
            raise _bad_value(arr[bad][0].item())
        pos = arr[arr > 0]
        if pos.size:
            x = _np.log(pos.astype(_np.float64)) * self._inv_lg
            idx = _np.ceil(x)
            f = idx - x
            idx = idx.astype(_np.int64)
            near = _np.flatnonzero((f < _NEAR) | (f > 1 - _NEAR))
            for j in near.tolist():  # rare: decide against the boundary itself, as add does
                idx[j] = self._exact_index(pos[j].item(), int(idx[j]))
            keys, counts = _np.unique(idx, return_counts=True)
            b = self.buckets
            for i, c in zip(keys.tolist(), counts.tolist()):
                b[i] = b.get(i, 0) + c
        self.zero_count += int(arr.size - pos.size)
        self.count += int(arr.size)
        lo, hi = arr.min().item(), arr.max().item()
        if integer:
            # Exact: int64 when it cannot overflow, else Python ints.
            total = int(arr.sum(dtype=_np.int64)) if max(abs(lo), abs(hi)) * arr.size < 2**62 \
                else sum(arr.tolist())
        else:
            total = float(arr.sum())
        self.sum += total
        self._widen(lo, hi)

    def merge(self, other: "LogHistogram") -> None:
        """Add all of *other*'s values to this histogram (both must have one rel_error)."""
        if not isinstance(other, LogHistogram) or other.rel_error != self.rel_error:
            theirs = getattr(other, "rel_error", type(other).__name__)
            raise InputError(f"LogHistogram.merge: rel_error {theirs!r} differs from this "
                             f"histogram's {self.rel_error!r}; only equal ones merge")
        b = self.buckets
        for i, c in other.buckets.items():
            b[i] = b.get(i, 0) + c
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        if other.count:
            self._widen(other.min, other.max)

    def _widen(self, lo, hi) -> None:
        """Values from *lo* to *hi* were added: extend min and max, drop the quantile cache."""
        if self.min is None or lo < self.min:
            self.min = lo
        if self.max is None or hi > self.max:
            self.max = hi
        self._cum = None

    # ------------------------------------------------------------ reading
    @property
    def mean(self):
        """Exact mean (ns) for integer values; None while empty."""
        return self.sum / self.count if self.count else None

    def quantile(self, q: float):
        """The *q*-quantile (ns), *q* in [0, 1], by nearest rank as numpy's
        ``method="inverted_cdf"``: within rel_error of it, exact at q = 0 and q = 1."""
        if not (isinstance(q, (int, float)) and 0 <= q <= 1):
            raise InputError(f"LogHistogram.quantile: q={q!r} must be in [0, 1]")
        n = self.count
        if n == 0:
            raise InputError("LogHistogram.quantile: the histogram is empty")
        # numpy's inverted_cdf: index n*q - 1, rounded up unless it is whole, at least 0.
        t = n * q - 1.0
        k = math.floor(t)
        if t != k:
            k += 1
        k = max(k, 0)
        if k == 0:
            return self.min
        if k == n - 1:
            return self.max
        if k < self.zero_count:
            return 0
        if self._cum is None:
            keys = sorted(self.buckets)
            cum, run = [], 0
            for i in keys:
                run += self.buckets[i]
                cum.append(run)
            self._cum = (keys, cum)
        keys, cum = self._cum
        i = keys[bisect_right(cum, k - self.zero_count)]
        # The exact value lies in [min, max]: clamping can only bring the estimate closer.
        return min(max(self.representative(i), self.min), self.max)

    def quantiles(self, qs) -> list:
        """:meth:`quantile` of each of *qs*."""
        return [self.quantile(q) for q in qs]

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """A JSON-ready dict: exact figures and the non-empty buckets as [index, count]."""
        return {"kind": "log-histogram", "rel_error": self.rel_error, "count": self.count,
                "zero_count": self.zero_count, "min": self.min, "max": self.max,
                "sum": self.sum, "buckets": [[i, self.buckets[i]] for i in sorted(self.buckets)]}

    @classmethod
    def from_dict(cls, d: dict) -> "LogHistogram":
        """The histogram :meth:`to_dict` wrote (checked: one clear error per bad field)."""
        if not isinstance(d, dict) or d.get("kind") != "log-histogram":
            raise InputError("LogHistogram.from_dict: not a log-histogram dict "
                             f"(kind={d.get('kind') if isinstance(d, dict) else d!r})")
        h = cls(d.get("rel_error"))
        try:
            buckets = {int(i): int(c) for i, c in d["buckets"]}
            h.zero_count, h.count = int(d["zero_count"]), int(d["count"])
            h.min, h.max, h.sum = d["min"], d["max"], d["sum"]
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"LogHistogram.from_dict: bad or missing field ({e})") from None
        if any(c <= 0 for c in buckets.values()) or h.zero_count < 0 or \
                h.count != h.zero_count + sum(buckets.values()):
            raise InputError(f"LogHistogram.from_dict: count={h.count} must be zero_count="
                             f"{h.zero_count} + the buckets' counts (all > 0)")
        h.buckets = buckets
        return h

    def __eq__(self, other) -> bool:
        return isinstance(other, LogHistogram) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"LogHistogram(rel_error={self.rel_error}, count={self.count}, "
                f"buckets={len(self.buckets)}, min={self.min}, max={self.max})")


def _plain(v):
    """A NumPy scalar (or other number) as a Python int or float."""
    if hasattr(v, "__index__") and not isinstance(v, bool):
        return int(v.__index__())
    try:
        return float(v)
    except (TypeError, ValueError):
        raise _bad_value(v) from None
