"""Distributions of durations (service times and costs), in nanoseconds.

A distribution is written in a scenario or cost profile as either a plain duration
(``"5us"``, a fixed value) or a table with a ``dist`` key:

=============  ===============================================  ==========================
``dist``       keys                                             meaning
=============  ===============================================  ==========================
``fixed``      ``value``                                        always ``value``
``exp``        ``mean``                                         exponential
``lognormal``  ``median`` or ``mean``, and ``sigma`` (unitless)  log-normal; sigma of ln(x)
``uniform``    ``low``, ``high``                                uniform on [low, high]
``empirical``  ``samples`` (list of durations)                  resampled with replacement
=============  ===============================================  ==========================

Samples are rounded to whole nanoseconds. A distribution keeps exactly what was written
(a lognormal keeps whether its median or its mean was given, as whole ns), so
``parse_dist(d.to_spec()) == d`` for every distribution, through JSON and TOML too. Samplers draw from their own
``numpy.random.Generator`` in blocks, so a run's numbers depend only on the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .units import UnitError, parse_duration

DIST_KINDS = ("fixed", "exp", "lognormal", "uniform", "empirical")
_BLOCK = 4096


@dataclass(frozen=True)
class Dist:
    """A distribution of durations in ns. ``params`` holds ns values (sigma is unitless):

    fixed ``(value,)``, exp ``(mean,)``, uniform ``(low, high)``, empirical ``(samples,)``,
    lognormal ``(key, ns, sigma)`` with *key* ``"median"`` or ``"mean"`` as written.
    """

    kind: str
    params: tuple

    @property
    def mean(self) -> float:
        """Mean of the distribution, in ns."""
        k, p = self.kind, self.params
        if k == "fixed":
            return float(p[0])
        if k == "exp":
            return float(p[0])
        if k == "lognormal":
            key, ns, sigma = p
            return float(ns) if key == "mean" else ns * math.exp(sigma * sigma / 2)
        if k == "uniform":
            return (p[0] + p[1]) / 2
        return float(np.mean(p[0]))

    @property
    def mu(self) -> float:
        """For a lognormal: the mean of ln(x), x in ns."""
        key, ns, sigma = self.params
        return math.log(ns) - (sigma * sigma / 2 if key == "mean" else 0.0)

    @property
    def fixed(self):
        """The constant value in ns if this distribution is fixed, else None."""
        return self.params[0] if self.kind == "fixed" else None

    def to_spec(self):
        """Return the spec form (plain ns number or table) that :func:`parse_dist` reads back."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "exp":
            return {"dist": "exp", "mean": p[0]}
        if k == "lognormal":
            return {"dist": "lognormal", p[0]: p[1], "sigma": p[2]}
        if k == "uniform":
            return {"dist": "uniform", "low": p[0], "high": p[1]}
        return {"dist": "empirical", "samples": list(p[0])}

    def sampler(self, rng: np.random.Generator):
        """Return a zero-argument callable that yields integer ns samples."""
        if self.kind == "fixed":
            v = self.params[0]
            return lambda: v
        draw = self._block_drawer(rng)
        buf: list = []

        def sample():
            if not buf:
                buf.extend(draw().tolist())
                buf.reverse()
            return buf.pop()

        return sample

    def _block_drawer(self, rng):
        k, p = self.kind, self.params
        if k == "exp":
            return lambda: np.rint(rng.exponential(p[0], _BLOCK)).astype(np.int64)
        if k == "lognormal":
            mu, sigma = self.mu, p[2]
            return lambda: np.rint(rng.lognormal(mu, sigma, _BLOCK)).astype(np.int64)
        if k == "uniform":
            return lambda: np.rint(rng.uniform(p[0], p[1], _BLOCK)).astype(np.int64)
        arr = np.asarray(p[0], dtype=np.int64)
        return lambda: rng.choice(arr, _BLOCK)


def fixed(ns: int) -> Dist:
    """A fixed distribution of *ns* nanoseconds."""
    return Dist("fixed", (int(ns),))


def parse_dist(value, *, allow_zero: bool = True) -> Dist:
    """Read a duration or a distribution table into a :class:`Dist`.

    Raises :class:`~vsmsim.units.UnitError` naming the key and what is allowed.
    """
    if isinstance(value, Dist):
        return value
    if not isinstance(value, dict):
        return fixed(parse_duration(value, allow_zero=allow_zero))
    kind = value.get("dist")
    if kind not in DIST_KINDS:
        raise UnitError(f"dist = {kind!r} is not a distribution; allowed: {', '.join(DIST_KINDS)}")
    allowed = {
        "fixed": {"value"},
        "exp": {"mean"},
        "lognormal": {"median", "mean", "sigma"},
        "uniform": {"low", "high"},
        "empirical": {"samples"},
    }[kind]
    extra = set(value) - allowed - {"dist"}
    if extra:
        raise UnitError(
            f"unknown key(s) {sorted(extra)} for dist = {kind!r}; allowed: {sorted(allowed)}"
        )

    def need(key):
        if key not in value:
            raise UnitError(f"dist = {kind!r} needs key {key!r}")
        return value[key]

    if kind == "fixed":
        return fixed(parse_duration(need("value"), allow_zero=allow_zero))
    if kind == "exp":
        return Dist("exp", (parse_duration(need("mean"), allow_zero=False),))
    if kind == "lognormal":
        sigma = need("sigma")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 <= sigma <= 5:
            raise UnitError(f"sigma = {sigma!r} must be a number from 0 to 5 (sigma of ln x)")
        if ("median" in value) == ("mean" in value):
            raise UnitError("dist = 'lognormal' needs exactly one of 'median' or 'mean'")
        key = "median" if "median" in value else "mean"
        return Dist("lognormal", (key, parse_duration(value[key], allow_zero=False),
                                  float(sigma)))
    if kind == "uniform":
        lo, hi = parse_duration(need("low")), parse_duration(need("high"))
        if hi < lo:
            raise UnitError(f"uniform high ({hi} ns) must be >= low ({lo} ns)")
        return Dist("uniform", (lo, hi))
    samples = need("samples")
    if not isinstance(samples, (list, tuple)) or not samples:
        raise UnitError("dist = 'empirical' needs a non-empty list 'samples' of durations")
    return Dist("empirical", (tuple(parse_duration(s) for s in samples),))
