"""What the calibration ran on: CPU, virtualization extensions, KVM module, kernel.

Everything is read from ``/proc`` and ``/sys`` (under *root*, so tests can point it at a
fake tree) and from ``os.uname()``; nothing here needs privileges or /dev/kvm.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: KVM vendor modules, most specific first. ``kvm_pvm`` is the Pagetable-based Virtual
#: Machine (PVM) module, which runs guests without VMX/SVM (e.g. inside a cloud VM).
KVM_MODULES = ("kvm_intel", "kvm_amd", "kvm_pvm")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def cpuinfo(root: str | os.PathLike = "/") -> dict:
    """Return the first CPU's fields of ``/proc/cpuinfo`` as a dict (flags as a list)."""
    info: dict = {}
    for line in _read(Path(root, "proc/cpuinfo")).splitlines():
        if not line.strip():
            if info:
                break
            continue
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    info["flags"] = info.get("flags", "").split()
    return info


def kvm_modules(root: str | os.PathLike = "/") -> list[str]:
    """Names of loaded KVM modules (``kvm`` and its vendor modules), from ``/proc/modules``
    or, for built-in modules, ``/sys/module``."""
    names = set()
    for line in _read(Path(root, "proc/modules")).splitlines():
        name = line.split(" ", 1)[0]
        if name == "kvm" or name.startswith("kvm_"):
            names.add(name)
    sys_module = Path(root, "sys/module")
    try:
        for entry in sys_module.iterdir():
            if entry.name == "kvm" or entry.name.startswith("kvm_"):
                names.add(entry.name)
    except OSError:
        pass
    known = [m for m in KVM_MODULES if m in names]
    return known + sorted(names - set(known))


def _module_param(root, module: str, param: str):
    text = _read(Path(root, "sys/module", module, "parameters", param)).strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def detect(root: str | os.PathLike = "/") -> dict:
    """Facts about the host, as TOML-friendly scalars.

    Keys: ``cpu_model``, ``cpu_mhz``, ``cpus``, ``virt_extension`` (``vmx``, ``svm`` or
    ``none``: what the CPU advertises to this kernel), ``nested`` (the ``hypervisor`` flag:
    this kernel itself runs in a VM), ``kvm_module`` (the vendor module in use, or
    ``none``), ``kvm_modules``, ``kernel``, ``machine``, ``python`` and, when readable,
    ``halt_poll_ns``.
    """
    info = cpuinfo(root)
    flags = set(info["flags"])
    modules = kvm_modules(root)
    vendor = [m for m in modules if m != "kvm"]
    uname = os.uname()
    facts = {
        "cpu_model": info.get("model name", "unknown"),
        "cpu_mhz": _float(info.get("cpu MHz")),
        "cpus": os.cpu_count() or 0,
        "virt_extension": "vmx" if "vmx" in flags else "svm" if "svm" in flags else "none",
        "nested": "hypervisor" in flags,
        "kvm_module": vendor[0] if vendor else ("kvm" if modules else "none"),
        "kvm_modules": ", ".join(modules) if modules else "none",
        "kernel": uname.release,
        "machine": uname.machine,
        "python": platform.python_version(),
    }
    if facts["cpu_mhz"] is None:
        del facts["cpu_mhz"]
    halt_poll = _module_param(root, "kvm", "halt_poll_ns")
    if halt_poll is not None:
        facts["halt_poll_ns"] = halt_poll
    return facts


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def describe(facts: dict) -> str:
    """One line saying what the host is, e.g. ``AMD EPYC, no VMX/SVM visible, nested,
    KVM module kvm_pvm, Linux 6.18``."""
    virt = {"vmx": "VMX", "svm": "SVM"}.get(facts.get("virt_extension"), "no VMX/SVM visible")
    nested = "nested (runs under a hypervisor)" if facts.get("nested") else "bare metal"
    return (f"{facts.get('cpu_model', 'unknown CPU')}, {facts.get('cpus', '?')} CPUs, {virt}, "
            f"{nested}, KVM module {facts.get('kvm_module', 'none')}, "
            f"Linux {facts.get('kernel', '?')}")


#: A 1-minute load average above this many runnable tasks per CPU marks a measurement as
#: taken on a busy machine (the figures then carry the load; rerun when it is quiet).
BUSY_LOAD_PER_CPU = 0.3
#: CPU idle below this fraction, sampled just before measuring, also marks it busy.
BUSY_IDLE_FRACTION = 0.8


def load_average(root: str | os.PathLike = "/") -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages from ``/proc/loadavg`` (None if unreadable)."""
    parts = _read(Path(root, "proc/loadavg")).split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def _cpu_times(root) -> tuple[int, int] | None:
    line = _read(Path(root, "proc/stat")).split("\n", 1)[0].split()
    if not line or line[0] != "cpu":
        return None
    vals = [int(x) for x in line[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return idle, sum(vals[:8])


def idle_fraction(interval_s: float = 0.3, root: str | os.PathLike = "/",
                  sleep=None) -> float | None:
    """Fraction of all CPUs' time spent idle over the next *interval_s* seconds (the
    caller sleeps meanwhile, so this is the load of everything else)."""
    import time
    a = _cpu_times(root)
    (sleep or time.sleep)(interval_s)
    b = _cpu_times(root)
    if a is None or b is None or b[1] <= a[1]:
        return None
    return round((b[0] - a[0]) / (b[1] - a[1]), 3)


def load_state(root: str | os.PathLike = "/", interval_s: float = 0.3) -> dict:
    """``load`` (1/5/15-minute load averages as text), ``idle`` (fraction over
    *interval_s*) and ``busy`` (either above its threshold) for the record."""
    load = load_average(root)
    idle = idle_fraction(interval_s, root)
    cpus = os.cpu_count() or 1
    busy = bool((load is not None and load[0] > BUSY_LOAD_PER_CPU * cpus)
                or (idle is not None and idle < BUSY_IDLE_FRACTION))
    out = {"load": " ".join(f"{x:.2f}" for x in load) if load else "unknown", "busy": busy}
    if idle is not None:
        out["idle"] = idle
    return out


def busy_warning(state: dict) -> str:
    """One line warning that the machine was busy, or ``""``."""
    if not state.get("busy"):
        return ""
    return (f"WARNING: the machine was busy (load average {state.get('load')}, CPU idle "
            f"{state.get('idle', '?')} before measuring): figures carry the load; rerun "
            "when it is quiet")
