"""The host's speed now against its speed during the calibration: a short, fixed probe.

A shared or nested host does not run at one speed. On this project's machines the same
nine state ioctls took 51 us in one prototype run and 65 us in the next, seconds apart,
and a calibration taken during a slow minute prices every ioctl 30 % high. A prediction
priced at the calibration's moment and a measurement taken at another moment then differ
by the host, not by the model.

:class:`SpeedProbe` times one fixed piece of a VMM switch's work on one vCPU (the sets of
:data:`~vsmsim.calibrate.paths.PUT_KINDS`, a ``KVM_RUN`` round trip, the gets of
:data:`~vsmsim.calibrate.paths.STATE_KINDS` with 100 MSR entries: about 20 syscalls, one
thread, no hand-off), :data:`ROUNDS` times, and reports the median round (ns). The
calibration probes before and after each state-ioctl kind and ``KVM_RUN`` figure and
records the least disturbed probe as ``[host] probe_ns``, the same "lowest median" rule as
the figures beside it (scaling each figure by its own neighbouring probes was tried and
over-corrected: a figure's least disturbed run catches fast stretches of ~10 ms that
probes a few tens of ms away miss);
``vsmsim prototype`` probes right before each chunk of a measurement and after the last,
on the CPUs the prototype's threads are pinned to (the two vCPUs of a VM like this
project's do not run at one speed either).
The ratio of the two, :func:`drift`, is how much slower (> 1) or faster the host ran while
the prototype was measured than while its costs were calibrated; the prediction multiplies
every measured cost by it. The prototype's own times never enter it.
"""

from __future__ import annotations

import statistics

from . import guest64
from .kvm import Kvm
from .measure import _pinned
from .paths import _switch_work, long_mode_vm, timed_work

#: Rounds of the probe's work per measurement (about 2-4 ms on this project's hosts).
ROUNDS = 24


class SpeedProbe:
    """One 64-bit vCPU and its switch work; :meth:`measure` times it. A context manager
    (closes its VM)."""

    def __init__(self, kvm: Kvm):
        self.vm = long_mode_vm(kvm, guest64.OUT_LOOP)
        try:
            vcpu = self.vm.vcpus[0]
            vcpu.run()
            self.fd = vcpu.fd
            self.work, _bufs = _switch_work(kvm, vcpu)
        except BaseException:
            self.vm.close()
            raise

    def measure(self, rounds: int = ROUNDS) -> float:
        """Median ns of one round of the probe's work over *rounds* rounds (two untimed
        rounds first)."""
        samples = [timed_work(self.fd, self.work) for _ in range(rounds + 2)]
        return float(statistics.median(samples[2:]))

    def measure_on(self, cpus, rounds: int = ROUNDS) -> float:
        """:meth:`measure` with this thread pinned to each CPU of *cpus* in turn (the
        CPUs a measurement runs on: the CPUs of a VM like this project's run at different
        speeds from one second to the next), the mean over them."""
        cpus = list(dict.fromkeys(cpus))
        vals = []
        for cpu in cpus:
            with _pinned(cpu):
                vals.append(self.measure(rounds))
        return sum(vals) / len(vals)

    def close(self) -> None:
        """Close the probe's VM."""
        self.vm.close()

    def __enter__(self) -> SpeedProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def drift(probes_during, probe_calibrated: float) -> float:
    """The host's slowdown now against the calibration: the median of *probes_during* (ns,
    probes taken around a measurement) over *probe_calibrated* (``[host] probe_ns``);
    1.0 when either is missing."""
    probes_during = [p for p in probes_during if p and p > 0]
    if not probes_during or not probe_calibrated or probe_calibrated <= 0:
        return 1.0
    return statistics.median(probes_during) / probe_calibrated
