"""vsmsim.histogram.LogHistogram: its stated guarantee, merging, JSON and bad input.

The guarantee under test: for every q, |estimate - exact| <= rel_error * exact, with
exact = numpy.quantile(values, q, method="inverted_cdf").
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsmsim.errors import InputError
from vsmsim.histogram import LogHistogram

REL = st.sampled_from([1e-6, 1e-3, 0.01, 0.05, 0.3, 0.9])
QS = [0, 1e-9, 0.001, 0.01, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999, 0.9999, 1 - 1e-12, 1]
#: Values in ns: zeros, integers and floats from 1 ns to 1e12 ns, some repeated.
VALUE = st.one_of(st.just(0), st.integers(1, 10**12),
                  st.floats(1.0, 1e12, allow_nan=False, allow_infinity=False),
                  st.sampled_from([1, 2, 3, 999, 1000, 1001, 10**6, 10**12]))
VALUES = st.lists(VALUE, min_size=1, max_size=300)
INTS = st.lists(st.one_of(st.just(0), st.integers(1, 10**12), st.integers(1, 50)),
                min_size=1, max_size=200)


def _check(h: LogHistogram, values, qs=QS, extra=()):
    arr = np.asarray(values, dtype=np.float64)
    for q in [*qs, *extra]:
        exact = float(np.quantile(arr, q, method="inverted_cdf"))
        est = h.quantile(q)
        assert abs(est - exact) <= h.rel_error * exact, (q, est, exact, h.rel_error)


@settings(max_examples=150, deadline=None)
@given(values=VALUES, rel=REL, qs=st.lists(st.floats(0, 1), max_size=10))
def test_every_quantile_is_within_rel_error_of_numpys(values, rel, qs):
    one, many = LogHistogram(rel), LogHistogram(rel)
    for v in values:
        one.add(v)
    many.add_many(np.asarray(values, dtype=np.float64))
    _check(one, values, extra=qs)
    _check(many, values, extra=qs)
    # Scalar and vectorised adding put every value in the same bucket.
    assert one.buckets == many.buckets and one.zero_count == many.zero_count


@settings(max_examples=100, deadline=None)
@given(values=VALUES, rel=REL)
def test_exact_figures(values, rel):
    h = LogHistogram(rel)
    h.add_many(values)
    assert h.count == len(values) and h.zero_count == values.count(0)
    assert h.min == min(values) and h.max == max(values)
    assert h.quantile(0) == min(values) and h.quantile(1) == max(values)
    assert h.sum == pytest.approx(math.fsum(values), rel=1e-12)
    assert h.mean == pytest.approx(math.fsum(values) / len(values), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(values=INTS, rel=REL)
def test_integer_sums_are_exact_and_order_does_not_matter(values, rel):
    a, b = LogHistogram(rel), LogHistogram(rel)
    for v in values:
        a.add(v)
    b.add_many(np.asarray(values[::-1], dtype=np.int64))
    assert a.sum == b.sum == sum(values) and type(a.sum) is int and type(b.sum) is int
    assert a.to_dict() == b.to_dict()


@settings(max_examples=100, deadline=None)
@given(values=VALUES, rel=REL, cut=st.integers(0, 300))
def test_merge_equals_adding_everything_to_one(values, rel, cut):
    left, right, whole = LogHistogram(rel), LogHistogram(rel), LogHistogram(rel)
    left.add_many(values[:cut])
    for v in values[cut:]:
        right.add(v)
    whole.add_many(values)
    left.merge(right)
    a, b = left.to_dict(), whole.to_dict()
    assert a.pop("sum") == pytest.approx(b.pop("sum"), rel=1e-12)
    assert a == b
    assert left.quantiles(QS) == whole.quantiles(QS)


def test_merge_of_integers_is_exact_including_the_sum():
    a, b, whole = LogHistogram(), LogHistogram(), LogHistogram()
    a.add_many([0, 5, 10**12, 7])
    b.add_many([3, 3, 0])
    whole.add_many([0, 5, 10**12, 7, 3, 3, 0])
    a.merge(b)
    assert a == whole and a.sum == 10**12 + 18 and a.count == 7 and a.zero_count == 2
    empty = LogHistogram()
    empty.merge(LogHistogram())
    assert empty.count == 0 and empty.min is None
    empty.merge(a)
    assert empty == a


@settings(max_examples=100, deadline=None)
@given(values=VALUES, rel=REL)
def test_to_dict_round_trips_through_json(values, rel):
    h = LogHistogram(rel)
    h.add_many(values)
    d = json.loads(json.dumps(h.to_dict()))
    back = LogHistogram.from_dict(d)
    assert back.to_dict() == h.to_dict() and back == h
    assert back.quantiles(QS) == h.quantiles(QS)
    # Sparse: only buckets in use are written.
    assert all(c > 0 for _, c in d["buckets"]) and len(d["buckets"]) <= len(set(values))


def test_huge_range_from_1ns_to_1e12ns():
    rng = np.random.default_rng(1)
    values = np.concatenate([np.zeros(100, dtype=np.int64),
                             np.round(np.exp(rng.uniform(0, math.log(1e12), 100_000))).astype(
                                 np.int64), [1, 10**12]])
    for rel in (0.01, 0.001):
        h = LogHistogram(rel)
        h.add_many(values)
        _check(h, values, qs=np.linspace(0, 1, 2001).tolist())
        # About ln(1e12) / (2 rel) buckets, whatever the number of values.
        assert len(h.buckets) <= math.log(1e12) / (2 * rel) + 2


def test_values_on_bucket_boundaries_are_placed_exactly():
    h = LogHistogram(0.01)
    for i in range(-50, 1500, 7):
        b = h.bound(i)
        for v in (b, math.nextafter(b, 0), math.nextafter(b, math.inf)):
            j = h.index(v)
            assert h.bound(j - 1) < v <= h.bound(j)
            assert abs(h.representative(j) - v) <= 0.01 * v
        many = LogHistogram(0.01)
        many.add_many([b, math.nextafter(b, 0), math.nextafter(b, math.inf)])
        assert sorted(many.buckets) == sorted({h.index(b), h.index(math.nextafter(b, 0)),
                                               h.index(math.nextafter(b, math.inf))})


def test_a_hand_computed_case():
    # Ten values 1..10 ns at 10 %: inverted_cdf p50 is the 5th smallest, 5 ns.
    h = LogHistogram(0.1)
    h.add_many(list(range(1, 11)))
    assert h.quantile(0.5) == pytest.approx(5, rel=0.1) and h.quantile(0.5) != 5
    assert h.quantile(0.1) == 1 and h.quantile(0.95) == 10  # exact min and max ranks
    z = LogHistogram()
    z.add_many([0, 0, 0, 7])
    assert z.quantile(0.75) == 0 and z.quantile(0.76) == 7 and z.mean == 1.75


@pytest.mark.parametrize("bad", [0, 0.0, -0.01, -1, 1, 1.0, 1.5, float("nan"), 1e-9, "1%", True])
def test_bad_rel_error_raises_naming_the_value(bad):
    with pytest.raises(ValueError, match=r"rel_error=" + repr(bad).replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.") + " must be"):
        LogHistogram(bad)


def test_merging_histograms_of_different_rel_error_is_refused():
    with pytest.raises(ValueError, match=r"rel_error 0\.02 differs from this histogram's 0\.01"):
        LogHistogram(0.01).merge(LogHistogram(0.02))
    with pytest.raises(InputError, match="only equal ones merge"):
        LogHistogram(0.01).merge([1, 2])


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), -float("inf")])
def test_bad_values_are_refused_whole(bad):
    h = LogHistogram()
    with pytest.raises(InputError, match=r"value .* must be a finite number >= 0 \(ns\)"):
        h.add(bad)
    with pytest.raises(InputError, match=r"must be a finite number >= 0"):
        h.add_many([1, 2, bad])
    assert h.count == 0 and not h.buckets  # nothing half-added
    with pytest.raises(InputError, match=r"value .* must be a finite number"):
        h.add_many(np.array([3, -4], dtype=np.int64))


def test_quantile_input():
    h = LogHistogram()
    with pytest.raises(InputError, match="empty"):
        h.quantile(0.5)
    h.add(5)
    for q in (-0.1, 1.1, float("nan"), "p99"):
        with pytest.raises(InputError, match=r"q=.* must be in \[0, 1\]"):
            h.quantile(q)
    assert h.quantile(0.5) == 5 and h.mean == 5


def test_from_dict_refuses_an_inconsistent_dict():
    h = LogHistogram()
    h.add_many([1, 2, 3])
    d = h.to_dict()
    with pytest.raises(InputError, match="count=4 must be zero_count=0"):
        LogHistogram.from_dict({**d, "count": 4})
    with pytest.raises(InputError, match="not a log-histogram"):
        LogHistogram.from_dict({"buckets": []})
    with pytest.raises(InputError, match="rel_error=2"):
        LogHistogram.from_dict({**d, "rel_error": 2})
    with pytest.raises(InputError, match="bad or missing field"):
        LogHistogram.from_dict({k: v for k, v in d.items() if k != "sum"})


def test_numpy_scalars_are_plain_numbers():
    h = LogHistogram()
    h.add(np.int64(10**12))
    h.add(np.float64(2.5))
    assert type(h.max) is int and h.sum == 10**12 + 2.5 and h.count == 2
