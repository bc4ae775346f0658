"""Cost profiles: the named costs, in nanoseconds, that design paths charge.

A cost profile is a TOML file::

    name = "host"
    description = "what was measured, where"
    base = "default"          # optional: costs not listed come from this profile
    [costs]
    exit = "1000ns"           # a duration, or a distribution table (see vsmsim.dists)
    uexit = { dist = "lognormal", median = "9us", sigma = 0.3 }
    [notes]                   # optional: the source or measurement of each cost
    exit = "..."
    [host]                    # optional: free-form facts about the measured host

Built-in profiles: ``default`` (published KVM figures on one named Intel server CPU),
``intel``, ``amd``, ``nested`` (an L1 hypervisor) and ``ideal`` (every cost zero, for
checking the scheduler against theory); see docs/costs.md for every value and its source.
Each file-backed profile names its CPU and the frequency its cycle counts were converted
at under ``[host]`` (``cpu``, ``ghz``). Scenarios name one of these or a
path to a file, and may override single costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ._toml import toml as tomllib
from ._toml import toml_str as _toml_str
from ._toml import toml_value as _toml_value
from .dists import Dist, fixed, parse_dist
from .errors import InputError
from .units import UnitError
from .userfile import read_text

#: Every cost a design path may name, with a one-line meaning. Units: ns.
COST_NAMES = {
    "exit": "in-kernel exit + entry (exit handled by KVM), e.g. CPUID",
    "uexit": "extra for a userspace exit (KVM_RUN returns to the VMM and re-enters)",
    "kvm_run": "one return from KVM_RUN to userspace of a thread that was in it (half a round trip)",
    "icr_exit": "ICR-write exit of an IPI sender without IPI virtualization (x2APIC MSR fastpath)",
    "ioctl_regs": "KVM_GET_REGS or KVM_SET_REGS",
    "ioctl_sregs": "KVM_GET_SREGS2 or KVM_SET_SREGS2",
    "ioctl_fpu": "KVM_GET_XSAVE(2) or KVM_SET_XSAVE (FPU/xsave area)",
    "ioctl_xcrs": "KVM_GET_XCRS or KVM_SET_XCRS",
    "ioctl_debugregs": "KVM_GET_DEBUGREGS or KVM_SET_DEBUGREGS",
    "ioctl_msrs": "KVM_GET_MSRS or KVM_SET_MSRS, fixed part (add msr_entry per entry)",
    "msr_entry": "one entry of a KVM_GET_MSRS / KVM_SET_MSRS call",
    "ioctl_lapic": "KVM_GET_LAPIC or KVM_SET_LAPIC",
    "ioctl_events": "KVM_GET_VCPU_EVENTS or KVM_SET_VCPU_EVENTS",
    "ioctl_mp_state": "KVM_GET_MP_STATE or KVM_SET_MP_STATE",
    "ioctl_tlb_flush_inhibit": "KVM_HYPERV_SET_TLB_FLUSH_INHIBIT (VSM series)",
    "ioctl_signal_msi": "KVM_SIGNAL_MSI (a VM ioctl: inject an MSI from the VMM)",
    "ioctl": "legacy: one generic vCPU ioctl (calibrate output, VMM-time estimate); no built-in design uses it",
    "handoff_futex": "VMM thread hand-off: wake a vCPU thread waiting on a condition variable (futex)",
    "handoff_eventfd": "VMM thread hand-off through an eventfd (write, then the poller wakes)",
    "kick_parked": "signal kick of a vCPU thread parked (blocked) in KVM_RUN, until it runs",
    "msi_halted": "an interrupt (MSI, IPI) waking a halted or parked vCPU in the kernel, until it runs",
    "wakeup": "legacy: host thread wake-up, blocked to running (calibrate output); no built-in design uses it",
    "kick": "host IPI forcing a running vCPU out",
    "map_lookup": "APIC map lookup, O(1)",
    "scan_per_vcpu": "slow-path destination scan, per vCPU scanned",
    "posted_delivery": "posted-interrupt delivery to a running vCPU (no receiver exit)",
    "ipiv_send": "sender cost of an ICR write under IPI virtualization (no exit)",
    "timer_expiry": "LAPIC/TSC-deadline timer expiry to guest",
    "vtl_state_switch": "in-kernel switch to another plane's vCPU: vcpu_put, vcpu_load, VMCS/VMCB switch",
    "vmm_switch": "VMM switch logic per VTL switch in userspace",
    # Measured by vsmsim calibrate and used by the prototypes (docs/calibration.md).
    "kvm_run_roundtrip": "KVM_RUN round trip: guest exit to the VMM and re-entry (exit + uexit)",
    "handoff_futex_cross": "one-way futex wake of a blocked thread on another CPU",
    "handoff_eventfd_cross": "one-way eventfd wake of a blocked thread on another CPU",
    "kick_parked_cross": "signal kick of a vCPU thread parked in KVM_RUN, from another CPU",
    "first_run_after_migration": "extra of the first KVM_RUN after a cross-CPU hand-off",
    # Charged by the host layer ([host] section, docs/host.md), not by design paths.
    "context_switch": "host: a CPU switching from one host thread to another (same-CPU hand-off, preemption)",
    "cstate_exit": "host: extra for a thread woken on an idle CPU (C-state exit) beyond the design's wake cost",
    "migration": "host: extra for the first run of a thread on another CPU than its last (cold caches)",
    "wake_cold_cross": "extra VMM time per hand-off of a thread woken on another (idle) CPU "
                       "(reported; the prototypes apply the ratio cross_cpu_slowdown instead)",
}

BUILTIN_PROFILES = ("default", "intel", "amd", "nested", "ideal")


class CostProfileError(InputError):
    """A cost profile that cannot be used; the message names the key and what is allowed."""


@dataclass(frozen=True)
class CostProfile:
    """A named set of cost distributions (ns), with optional notes and host facts.

    Immutable (read-only mappings), so one loaded profile is shared by every run; make a
    changed copy with :meth:`with_overrides`.
    """

    name: str
    costs: Mapping[str, Dist]
    description: str = ""
    notes: Mapping[str, str] = field(default_factory=dict)
    host: Mapping = field(default_factory=dict)

    def __post_init__(self):
        for name in ("costs", "notes", "host"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    __hash__ = None  # value equality; the mappings are not hashable

    def __reduce__(self):  # read-only mappings do not pickle; rebuild from plain dicts
        return (CostProfile, (self.name, dict(self.costs), self.description, dict(self.notes),
                              _plain(self.host)))

    def __getitem__(self, name: str) -> Dist:
        return self.costs[name]

    def mean(self, name: str) -> float:
        """Mean of cost *name*, in ns."""
        return self.costs[name].mean

    def with_overrides(self, overrides: dict) -> "CostProfile":
        """Return a copy with some costs replaced; *overrides* maps names to specs."""
        costs = dict(self.costs)
        for key, spec in (overrides or {}).items():
            _check_name(key, "costs.override")
            try:
                costs[key] = parse_dist(spec)
            except UnitError as e:
                raise CostProfileError(f"costs.override.{key}: {e}") from None
        if not overrides:
            return self
        return CostProfile(self.name, costs, self.description, self.notes, self.host)

    def to_dict(self) -> dict:
        """The profile as a plain dict in file form (for manifests and round trips)."""
        out = {"name": self.name, "description": self.description,
               "costs": {k: self.costs[k].to_spec() for k in COST_NAMES}}
        if self.notes:
            out["notes"] = dict(self.notes)
        if self.host:
            out["host"] = _plain(self.host)
        return out


def _plain(value):
    """Read-only mappings (nested too) as plain dicts, for JSON and TOML writers."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_name(key: str, where: str) -> None:
    if key not in COST_NAMES:
        raise CostProfileError(
            f"{where}.{key}: unknown cost {key!r}; allowed: {', '.join(COST_NAMES)}"
        )


def profile_from_dict(data: dict, *, source: str = "<dict>", _depth: int = 0) -> CostProfile:
    """Build a :class:`CostProfile` from file-form data, validating every key."""
    allowed = {"name", "description", "base", "costs", "notes", "host"}
    extra = set(data) - allowed
    if extra:
        raise CostProfileError(
            f"{source}: unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}"
        )
    base_name = data.get("base")
    if base_name is not None:
        if _depth > 4:
            raise CostProfileError(f"{source}: base chain too deep")
        if not isinstance(base_name, str) or not base_name:
            raise CostProfileError(f"{source}: base = {base_name!r} must be the name of a "
                                   f"built-in profile ({', '.join(BUILTIN_PROFILES)}) or a file")
        try:
            base = load_profile(base_name, _depth=_depth + 1)
        except CostProfileError as e:
            raise CostProfileError(f"{source}: base = {base_name!r}: {_reason(e, base_name)}") \
                from None
        costs = dict(base.costs)
        notes = dict(base.notes)
    else:
        costs, notes = {}, {}
    raw = data.get("costs", {})
    if not isinstance(raw, dict):
        raise CostProfileError(f"{source}: [costs] must be a table of name = duration")
    for key, spec in raw.items():
        _check_name(key, f"{source}: costs")
        if isinstance(spec, dict) and not all(isinstance(k, str) for k in spec):
            raise CostProfileError(f"{source}: costs.{key}: {spec!r} is not a distribution")
        try:
            costs[key] = parse_dist(spec)
        except UnitError as e:
            raise CostProfileError(f"{source}: costs.{key}: {e}") from None
    missing = [k for k in COST_NAMES if k not in costs]
    if missing:
        raise CostProfileError(
            f"{source}: [costs] is missing {', '.join(missing)} (set them, or add base = \"default\")"
        )
    raw_notes = data.get("notes", {})
    if not isinstance(raw_notes, dict) or not all(isinstance(v, str) for v in raw_notes.values()):
        raise CostProfileError(f"{source}: notes = {raw_notes!r} must be a table of "
                               f"cost name = \"source of that cost\"")
    notes.update(raw_notes)
    host = data.get("host", {})
    if not isinstance(host, dict):
        raise CostProfileError(f"{source}: host = {host!r} must be a table of facts "
                               f"about the measured host")
    name = data.get("name", Path(source).stem)
    description = data.get("description", "")
    for key, v in (("name", name), ("description", description)):
        if not isinstance(v, str):
            raise CostProfileError(f"{source}: {key} = {v!r} must be a string")
    return CostProfile(name=name, costs=costs, description=description, notes=notes,
                       host=dict(host))


def _reason(err: CostProfileError, name: str) -> str:
    """The message of a failed base profile, without its own ``costs = ...:`` prefix."""
    text = str(err)
    prefix = f"costs = {name!r}: "
    return text[len(prefix):] if text.startswith(prefix) else text


#: Built-in profiles, parsed once per process (they are immutable).
_builtin: dict = {}


def load_profile(name_or_path, *, _depth: int = 0) -> CostProfile:
    """Return a built-in profile by name (:data:`BUILTIN_PROFILES`) or load one from a file."""
    if isinstance(name_or_path, CostProfile):
        return name_or_path
    if isinstance(name_or_path, dict):
        return profile_from_dict(name_or_path, _depth=_depth)
    name = str(name_or_path)
    if name in _builtin:
        return _builtin[name]
    if name == "ideal":
        _builtin[name] = CostProfile("ideal", {k: fixed(0) for k in COST_NAMES},
                                     "Every cost zero: pure scheduling, for checking against theory")
        return _builtin[name]
    if name in BUILTIN_PROFILES:
        text = resources.files("vsmsim").joinpath(f"data/costs/{name}.toml").read_text()
        _builtin[name] = profile_from_dict(tomllib.loads(text), source=name, _depth=_depth)
        return _builtin[name]
    path = Path(name)
    if not path.is_file():
        raise CostProfileError(
            f"costs = {name!r}: not a built-in profile ({', '.join(BUILTIN_PROFILES)}) "
            f"and no such file"
        )
    try:
        data = tomllib.loads(read_text(path, CostProfileError))
    except tomllib.TOMLDecodeError as e:
        raise CostProfileError(f"{path}: TOML syntax error: {e}") from None
    return profile_from_dict(data, source=str(path), _depth=_depth)


def dump_profile(profile: CostProfile) -> str:
    """Return *profile* as TOML text that :func:`load_profile` reads back unchanged."""
    d = profile.to_dict()
    lines = [f"name = {_toml_str(d['name'])}", f"description = {_toml_str(d['description'])}", "",
             "[costs]"]
    for k, v in d["costs"].items():
        lines.append(f"{k} = {_toml_value(v)}")
    for section in ("notes", "host"):
        if d.get(section):
            lines += ["", f"[{section}]"]
            for k, v in d[section].items():
                lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"
