"""KVM designs for VSM as data: tables of paths, each an ordered list of costed steps.

A design file (TOML) looks like::

    name = "my-design"
    description = "one line for `vsmsim list`"
    sources = ["where each path comes from"]
    inferred = ["which parts are inferences rather than statements of the source"]

    [capabilities]
    posted = true         # posted interrupts (APICv/AVIC) usable when vm.apicv is set
    ipiv = false          # IPI virtualization usable when vm.ipiv is set

    [path]
    "send.ipi.physical" = [
      { cost = "exit", payer = "sender", count = ["exits"] },
      { cost = "map_lookup", payer = "sender" },
    ]

A step names a cost from the profile (:data:`vsmsim.costs.COST_NAMES`), who pays it, how
many times it is charged (``times``: an integer or ``"N"``, ``"V"``, ``"N*V"`` with N the
VPs and V the VTLs) and which counters it bumps (``count``: a list of names, each +1, or a
table name = amount, where an amount may also be ``"N"``, ``"V"``, ``"N*V"``).
``handoff = true`` (at most one step per path) marks where, under a ``[host]`` section, a
host thread wakes another: in a switch path of a ``thread_per_vtl`` design, the hand-off
from the old VTL's thread to the new one's; in a delivery path, the wake of the receiving
VP's halted thread (skipped when that thread is still halt-polling). ``errand = true``
marks consecutive latency-only steps of a delivery path that, under ``[host]``, run as CPU
work on the target VTL's own thread (woken for them, in a ``thread_per_vtl`` design);
``errand = "vmm"`` on the VMM's main thread instead. See docs/host.md.

``payer`` is ``sender`` (send paths: the sending VP's time), ``receiver`` (deliver paths:
the receiving VP's time), ``vp`` (switch paths: the switching VP's time) or ``none`` (no
VP's time: latency only, e.g. a host thread waking on another CPU while the guest runs on).
:data:`PATHS` lists every path a design must give and what it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ._toml import toml as tomllib
from ._toml import toml_value
from .costs import COST_NAMES
from .errors import InputError
from .userfile import read_text

#: Every path of a design, with the VP that "sender"/"receiver"/"vp" steps charge.
PATHS = {
    "send.ipi.physical": "ICR write, physical destination, one per destination (sender)",
    "send.ipi.ipiv": "ICR write, physical destination, with IPI virtualization in use (sender)",
    "send.ipi.logical": "ICR write, logical destination, one per cluster message (sender)",
    "send.ipi.shorthand": "ICR write with the all / all-but-self shorthand (sender)",
    "send.pv-ipi": "HvCallSendSyntheticClusterIpi to the sender's own VTL (sender)",
    "send.pv-ipi.cross-vtl": "the same hypercall aimed at another VTL (sender)",
    "send.external": "device interrupt routing, IOAPIC/MSI (no VP pays sender steps)",
    "deliver.running.posted": "interrupt to the running context, posted (receiver)",
    "deliver.running.injected": "interrupt to the running context, injected after a kick (receiver)",
    "deliver.running.timer": "LAPIC timer expiry of the running context (receiver)",
    "deliver.halted": "interrupt for the VTL a halted VP sits in (receiver)",
    "deliver.halted.timer": "timer expiry for the VTL a halted VP sits in (receiver)",
    "deliver.inactive": "interrupt for a higher VTL while a lower VTL runs: notification (receiver)",
    "deliver.inactive.timer": "timer of a higher VTL expiring while a lower VTL runs (receiver)",
    "deliver.inactive-halted": "interrupt for a higher VTL while the VP is halted (receiver)",
    "deliver.inactive-halted.timer": "higher-VTL timer expiring while the VP is halted (receiver)",
    "deliver.lower": "interrupt for a VTL lower than the active one: pends in its IRR (receiver)",
    "switch.call": "VTL call, lower to next higher VTL (vp)",
    "switch.return": "VTL return, to the next lower enabled VTL (vp)",
    "switch.interrupt": "entry into a higher VTL for a deliverable interrupt, after notification (vp)",
    "switch.intercept": "secure intercept: lower VTL traps into the higher one (vp)",
    "deliver.inactive.masked": "interrupt for an inactive higher VTL whose TPR masks it, in a "
                               "design with masked_notifies = false: what still happens (receiver)",
    "deliver.vina": "VINA: the higher VTL is told that a lower VTL has an interrupt (receiver)",
    "send.pv-ipi.rejected": "a PV IPI to a higher VTL when vm.cross_vtl_ipi_up is false: "
                            "the hypercall fails with access denied (sender)",
    "serve.hypercall": "one hypercall the higher VTL makes to the VMM while handling an "
                       "intercept: Get/SetVpRegisters, ModifyVtlProtectionMask (vp)",
}
#: Paths that may be left out; the engine then uses the path named here instead.
OPTIONAL_PATHS = {
    "deliver.halted.timer": "deliver.halted",
    "deliver.inactive.timer": "deliver.inactive",
    "deliver.inactive-halted.timer": "deliver.inactive-halted",
    # None: an empty path when the design gives none.
    "deliver.inactive.masked": None,
    "deliver.vina": None,
    "send.pv-ipi.rejected": None,
    "serve.hypercall": None,
}
COUNTERS = ("exits", "uexits", "wakeups", "ioctls", "scanned_vcpus", "posted", "injected",
            "kicks", "hypercalls", "vmm_switches", "pended", "coalesced", "joined", "rejected")
TIMES = ("N", "V", "N*V")
CAPABILITIES = {"posted": "posted interrupts usable when the host offers APICv/AVIC (vm.apicv)",
                "masked_notifies": "an interrupt for an inactive higher VTL is notified even when "
                                   "that VTL's TPR masks it (false: path deliver.inactive.masked)",
                "per_vtl_vm": "each VTL is its own KVM VM: APICv inhibits apply per VTL",
                "logical_map_disabled": "the logical APIC map is disabled (aliased logical IDs): "
                                        "on AMD this inhibits AVIC VM-wide",
                "ipiv": "IPI virtualization usable when the host offers it (vm.ipiv)",
                "latent_inactive": "a timer of an inactive higher VTL, and any interrupt for one "
                                   "while the VP is halted, notifies nothing: it is taken at the "
                                   "VP's next exit or switch (planes RFC as posted)",
                "thread_per_vtl": "each VTL of a VP is its own vCPU with its own host thread (N x V "
                                  "threads; a VTL switch hands off between them); false: one "
                                  "thread per VP (the host layer, docs/host.md)"}
#: Capabilities that are true unless a design says otherwise (the others default to false).
CAPABILITY_DEFAULTS = {"masked_notifies": True}
BUILTIN_DESIGNS = ("apic-id-groups", "apic-namespaces", "vm-per-vtl", "planes", "planes-rfc",
                   "planes-inkernel")


class DesignError(InputError):
    """A design that cannot be used; the message names the table, the key and what is allowed."""


def host_role(handoff, errand) -> str:
    """Where a step runs under a ``[host]`` section, in words ("" for the VP's own thread):
    what ``show design`` and ``explain`` print beside it (docs/host.md)."""
    if handoff:
        return "hand-off"
    if errand == "vmm":
        return "errand on the VMM thread"
    return "errand on the target VTL's thread" if errand else ""


@dataclass(frozen=True)
class Step:
    """One costed step of a path: ``times`` x cost ``cost``, paid by ``payer``."""

    cost: str
    payer: str          # "sender", "receiver", "vp" (the VP whose time it takes) or "none"
    times: object = 1   # int, or "N", "V", "N*V"
    count: tuple = ()   # ((counter, amount), ...) where amount is int or "N"/"V"/"N*V"
    handoff: bool = False  # the host layer's hand-off point (docs/host.md)
    errand: object = False  # host layer: True, on the target VTL's own (parked) thread;
    #                         "vmm": on the VMM's main thread (docs/host.md)

    @property
    def host_role(self) -> str:
        """:func:`host_role` of this step."""
        return host_role(self.handoff, self.errand)


@dataclass(frozen=True, eq=True)
class Design:
    """A validated design: capabilities and a path (list of steps) per event kind.

    Immutable: ``paths`` and ``capabilities`` are read-only mappings, so a design loaded
    once can be shared by every run and caller. Make a changed copy with :meth:`variant`.
    """

    name: str
    description: str
    paths: Mapping[str, tuple[Step, ...]]
    capabilities: Mapping[str, bool]
    sources: tuple = ()
    inferred: tuple = ()
    file: str = ""

    def __post_init__(self):
        for name, value in (("paths", self.paths), ("capabilities", self.capabilities)):
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "inferred", tuple(self.inferred))

    __hash__ = None  # value equality; the mappings are not hashable

    def __reduce__(self):  # read-only mappings do not pickle; rebuild from plain dicts
        return (Design, (self.name, self.description, dict(self.paths), dict(self.capabilities),
                         self.sources, self.inferred, self.file))

    @property
    def vmm_thread(self) -> bool:
        """Whether a path runs work on the VMM's main thread (an ``errand = "vmm"`` step)."""
        return any(s.errand == "vmm" for steps in self.paths.values() for s in steps)

    def path(self, name: str) -> tuple[Step, ...]:
        """The steps of path *name*, following :data:`OPTIONAL_PATHS` fallbacks."""
        while name not in self.paths:
            name = OPTIONAL_PATHS[name]
            if name is None:
                return ()
        return self.paths[name]

    def to_dict(self) -> dict:
        """The design in file form (for manifests, :func:`dump_design` and :meth:`variant`)."""
        def step(s):
            d = {"cost": s.cost, "payer": s.payer}
            if s.times != 1:
                d["times"] = s.times
            if s.count:
                d["count"] = dict(s.count)
            if s.handoff:
                d["handoff"] = True
            if s.errand:
                d["errand"] = s.errand
            return d
        out = {"name": self.name, "description": self.description,
               "capabilities": dict(self.capabilities),
               "path": {k: [step(s) for s in v] for k, v in self.paths.items()}}
        if self.sources:
            out["sources"] = list(self.sources)
        if self.inferred:
            out["inferred"] = list(self.inferred)
        return out

    def variant(self, name: str, *, description: str | None = None, paths: dict | None = None,
                capabilities: dict | None = None, sources=None, inferred=None) -> "Design":
        """A new, validated design: this one with some paths or capabilities replaced.

        *paths* maps path names to lists of steps, each a :class:`Step` or a file-form
        table (``{"cost": "exit", "payer": "vp", "count": ["exits"]}``), or to another
        design's ``paths[name]``. Errors are :class:`DesignError` naming the path and step.
        """
        d = self.to_dict()
        d["name"] = name
        if description is not None:
            d["description"] = description
        for key, steps in (paths or {}).items():
            d["path"][key] = [_step_dict(s) for s in steps]
        d["capabilities"].update(capabilities or {})
        if sources is not None:
            d["sources"] = list(sources)
        if inferred is not None:
            d["inferred"] = list(inferred)
        return design_from_dict(d, source=name)


def _step_dict(s) -> dict:
    if isinstance(s, Step):
        d = {"cost": s.cost, "payer": s.payer, "times": s.times}
        if s.count:
            d["count"] = dict(s.count)
        if s.handoff:
            d["handoff"] = True
        if s.errand:
            d["errand"] = s.errand
        return d
    return s


def _payer_ok(path: str, payer: str) -> bool:
    if payer == "none":
        return True
    if path.startswith("send."):
        return payer == "sender"
    if path.startswith("deliver."):
        return payer == "receiver"
    return payer == "vp"


def _times(value, where: str):
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 0 or value in TIMES):
        raise DesignError(f"{where}: {value!r} is not allowed; use an integer >= 0 or one of "
                          f"{', '.join(TIMES)}")
    return value


def design_from_dict(data: dict, source: str = "<dict>") -> Design:
    """Validate file-form *data* into a :class:`Design`."""
    allowed = {"name", "description", "sources", "inferred", "capabilities", "path"}
    extra = set(data) - allowed
    if extra:
        raise DesignError(f"{source}: unknown key(s) {sorted(extra)} at top level; allowed: "
                          f"{', '.join(sorted(allowed))}")
    caps_in = data.get("capabilities", {})
    if not isinstance(caps_in, dict):
        raise DesignError(f"{source}: [capabilities] must be a table")
    for k, v in caps_in.items():
        if k not in CAPABILITIES:
            raise DesignError(f"{source}: [capabilities] key {k!r} is unknown; allowed: "
                              f"{', '.join(CAPABILITIES)}")
        if not isinstance(v, bool):
            raise DesignError(f"{source}: [capabilities] {k} = {v!r} must be true or false")
    caps = {k: bool(caps_in.get(k, CAPABILITY_DEFAULTS.get(k, False))) for k in CAPABILITIES}
    raw_paths = data.get("path")
    if not isinstance(raw_paths, dict):
        raise DesignError(f"{source}: missing table [path]; it must give the paths "
                          f"{', '.join(k for k in PATHS if k not in OPTIONAL_PATHS)}")
    paths = {}
    for name, steps in raw_paths.items():
        if name not in PATHS:
            raise DesignError(f"{source}: [path] key {name!r} is not a path; allowed: "
                              f"{', '.join(PATHS)}")
        if not isinstance(steps, list):
            raise DesignError(f"{source}: [path] {name!r} must be a list of steps "
                              f"({{ cost = ..., payer = ... }})")
        out = []
        for i, st in enumerate(steps):
            where = f"{source}: [path] {name!r} step {i}"
            if not isinstance(st, dict):
                raise DesignError(f"{where}: must be a table {{ cost = ..., payer = ... }}")
            bad = set(st) - {"cost", "payer", "times", "count", "handoff", "errand"}
            if bad:
                raise DesignError(f"{where}: unknown key(s) {sorted(bad)}; allowed: cost, payer, "
                                  f"times, count, handoff, errand")
            cost = st.get("cost")
            if not isinstance(cost, str) or cost not in COST_NAMES:
                raise DesignError(f"{where}: cost = {cost!r} is not a cost; allowed: "
                                  f"{', '.join(COST_NAMES)}")
            payer = st.get("payer")
            if not isinstance(payer, str) or payer not in ("sender", "receiver", "vp", "none") or not _payer_ok(name, payer):
                want = ("sender or none" if name.startswith("send.") else
                        "receiver or none" if name.startswith("deliver.") else "vp")
                raise DesignError(f"{where}: payer = {payer!r} is not allowed here; allowed: {want}")
            times = _times(st.get("times", 1), f"{where}: times")
            cnt = st.get("count", {})
            if isinstance(cnt, list):
                for c in cnt:
                    if not isinstance(c, str) or c not in COUNTERS:
                        raise DesignError(f"{where}: count {c!r} is not a counter; allowed: "
                                          f"{', '.join(COUNTERS)}")
                cnt = {c: 1 for c in cnt}
            if not isinstance(cnt, dict):
                raise DesignError(f"{where}: count must be a list of counter names or a table")
            for c, amount in cnt.items():
                if c not in COUNTERS:
                    raise DesignError(f"{where}: count {c!r} is not a counter; allowed: "
                                      f"{', '.join(COUNTERS)}")
                _times(amount, f"{where}: count.{c}")
            handoff = st.get("handoff", False)
            if not isinstance(handoff, bool):
                raise DesignError(f"{where}: handoff = {handoff!r} must be true or false")
            if handoff and any(s.handoff for s in out):
                raise DesignError(f"{where}: handoff = true twice in one path; a path has at "
                                  f"most one hand-off step")
            if handoff and not (name.startswith("switch.") or name.startswith("deliver.")):
                raise DesignError(f"{where}: handoff = true is allowed only in switch.* and "
                                  f"deliver.* paths")
            errand = st.get("errand", False)
            if errand not in (False, True, "vmm") or isinstance(errand, int) and \
                    not isinstance(errand, bool):
                raise DesignError(f"{where}: errand = {errand!r} is not allowed; allowed: true "
                                  f"(the target VTL's own thread), \"vmm\" (the VMM's main "
                                  f"thread) or false")
            if errand and not (name.startswith("deliver.") and payer == "none"):
                raise DesignError(f"{where}: errand is allowed only on payer = \"none\" "
                                  f"steps of deliver.* paths")
            if errand and handoff:
                raise DesignError(f"{where}: a step is a hand-off or an errand, not both")
            if errand and any(s.errand for s in out) and out[-1].errand != errand:
                raise DesignError(f"{where}: the errand steps of a path must be consecutive "
                                  f"and on one thread")
            out.append(Step(cost, payer, times, tuple(cnt.items()), handoff, errand))
        paths[name] = tuple(out)
    missing = [k for k in PATHS if k not in paths and k not in OPTIONAL_PATHS]
    if missing:
        raise DesignError(f"{source}: [path] is missing {', '.join(missing)}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise DesignError(f"{source}: name = {name!r} must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise DesignError(f"{source}: description = {description!r} must be a string")
    return Design(name=name, description=description, paths=paths,
                  capabilities=caps, sources=_strings(data, "sources", source),
                  inferred=_strings(data, "inferred", source), file=source)


def _strings(data: dict, key: str, source: str) -> list[str]:
    """Top-level *key* of a design file: a list of strings (one line per source)."""
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise DesignError(f"{source}: {key} = {v!r} must be a list of strings")
    return list(v)


_cache: dict = {}


def load_design(name_or_path) -> Design:
    """Return a built-in design by name, or load and validate a design file.

    Designs are immutable, so a built-in, or a file unchanged since it was last read, is
    parsed once per process and the same object returned each time.
    """
    if isinstance(name_or_path, Design):
        return name_or_path
    if isinstance(name_or_path, dict):
        return design_from_dict(name_or_path)
    key = str(name_or_path)
    if key in BUILTIN_DESIGNS:
        if key not in _cache:
            text = resources.files("vsmsim").joinpath(f"data/designs/{key}.toml").read_text()
            _cache[key] = design_from_dict(tomllib.loads(text), source=key)
        return _cache[key]
    path = Path(key)
    if not path.is_file():
        raise DesignError(f"design = {key!r}: not a built-in design ({', '.join(BUILTIN_DESIGNS)}) "
                          f"and no such file")
    st = path.stat()
    stamp = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    hit = _cache.get(stamp)
    if hit is not None and hit.file == str(path):
        return hit
    try:
        data = tomllib.loads(read_text(path, DesignError))
    except tomllib.TOMLDecodeError as e:
        raise DesignError(f"{path}: TOML syntax error: {e}") from None
    _cache[stamp] = design = design_from_dict(data, source=str(path))
    return design


def dump_design(design: Design) -> str:
    """The design as TOML text that :func:`load_design` reads back (for your own variants)."""
    d = design.to_dict()
    lines = [f"name = {toml_value(d['name'])}", f"description = {toml_value(d['description'])}",
             "", "[capabilities]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in d["capabilities"].items()]
    lines += ["", "[path]"]
    for name, steps in d["path"].items():
        if not steps:
            lines.append(f'"{name}" = []')
            continue
        lines.append(f'"{name}" = [')
        lines += [f"  {toml_value(s)}," for s in steps]
        lines.append("]")
    return "\n".join(lines) + "\n"


def list_designs() -> list[Design]:
    """The built-in designs, in the order of docs/designs.md."""
    return [load_design(n) for n in BUILTIN_DESIGNS]
