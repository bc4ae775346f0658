"""Prototypes of the designs' VTL switch on /dev/kvm, and the prediction check.

``vsmsim prototype`` (:mod:`vsmsim.prototype.cli`) runs, per design, a minimal VMM in
pure Python over raw KVM ioctls (:mod:`vsmsim.prototype.vmm`) whose VTL call and return
execute the design's built-in switch path table, times the round trips from the guest and from the
VMM, and puts them beside the simulator's prediction of the same workload under a profile
calibrated in the same command (:mod:`vsmsim.prototype.core`). See docs/validation.md.

Python interface::

    from vsmsim.prototype import run_prototypes
    res = run_prototypes(["vm-per-vtl", "planes"], calls=2000,
                         placements=["same-cpu", "cross-cpu"], out="results/prototype")
    res["rows"]    # one dict per design and placement: measured, predicted, ratio, ...
"""

from .core import run_prototypes
from .vmm import DESIGNS, PLACEMENTS, placements_of

__all__ = ["DESIGNS", "PLACEMENTS", "placements_of", "run_prototypes"]
