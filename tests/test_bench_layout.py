"""bench/layout.py: its four layouts of VP state do the same work, field for field.

The layouts are compared by what they cost (a benchmark, never timed here); what is tested
is that they compute the same thing, so that the comparison is fair.
"""

import importlib.util
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

from vsmsim.record import F_END, F_RAISED, F_START, NF

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_layout", ROOT / "bench" / "layout.py")
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)


@pytest.mark.parametrize("n, steps", [(64, 6400), (1024, 3072)])
def test_every_layout_computes_the_same_rows_and_residency(n, steps):
    runs = {v: layout.run(v, n, steps, digest=True) for v in layout.VARIANTS}
    _, rows, totals = runs["objects"]
    for v, (_, other_rows, other_totals) in runs.items():
        assert other_rows == rows, v
        assert other_totals == totals, v
    # every VP's compute, exit and VTL0 residency are set, and none other
    acc, compute = totals
    assert compute > 0 and acc[0] > 0 and acc[3] > 0
    assert acc[1] == acc[2] == acc[4] == 0


def test_booked_rows_follow_the_fused_delivery_rule():
    """Each expiry's handler starts one receiver exit after it is raised and ends one
    service later (fusion.settle), except the last wave's, still in flight."""
    n, steps = 64, 640
    _, raw, _ = layout.run("objects", n, steps, digest=True)
    rows = array("q")
    rows.frombytes(raw)
    nf = NF
    k = len(rows) // nf
    assert k == n * (steps // n + 1)
    for r in range(k - n):
        raised, start, end = (rows[r * nf + f] for f in (F_RAISED, F_START, F_END))
        assert start - raised == layout.EXIT_NS
        assert end - start == layout.SERVICE_NS
    assert all(rows[r * nf + F_START] == -1 for r in range(k - n, k))


def test_unknown_layout_and_bad_rounds_are_refused():
    with pytest.raises(ValueError, match="allowed objects, packed, columns, lists"):
        layout.run("rows", 8, 8)
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "layout.py"), "--rounds", "0"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--rounds 0: allowed 1 or more" in lines[0]
