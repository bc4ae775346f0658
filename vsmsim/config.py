"""The scenario schema: what users write, validated before anything runs.

A scenario is a TOML file (or a ``.py`` file defining ``SCENARIO``, or a dict) with the keys
documented in ``docs/scenario.md``. Durations are integers of nanoseconds after
validation; distributions are :class:`vsmsim.dists.Dist`. Every error names the field, the
value and what is allowed. The workload kinds live in :mod:`vsmsim.workloads`, one module
each; the field types they share in :mod:`vsmsim.schema`.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from . import workloads
from ._toml import toml as tomllib
from .costs import CostProfile, load_profile
from .designs import Design, load_design
from .dists import parse_dist
from .errors import InputError
from .host.config import HostConfig, check_host
from .schema import (
    MAX_VPS,
    MAX_VTLS,
    DistSpec,
    Duration,
    PositiveDuration,
    Strict,
    StrictInt,
    Vector,
    _rate_problem,
    _window,
)
from .userfile import read_text

__all__ = ["Scenario", "ScenarioError", "load_scenario", "scenario_from_dict", "MAX_VPS",
           "MAX_VTLS"]


class ScenarioError(InputError):
    """A scenario that cannot run; ``str(e)`` has one line per problem."""


def _loaded_ref(cls, load, name: str, what: str):
    """A validator for a design or cost-profile field: a name or a path (kept as given, for
    the manifest), a loaded *cls* object, or its table given inline (loaded here)."""
    def ref(v):
        if isinstance(v, (str, cls)):
            return v
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return load(v)
        raise ValueError(f"{v!r} is not a {what}; give a built-in name, a file's path or a "
                         f"vsmsim.{cls.__name__}")
    ref.__name__ = name  # the reference page (schema_doc) names the type by it
    return ref


def _ref_label(v, info):
    # JSON (manifests, resolved()): a name or path; Python (to_input): the object itself.
    if isinstance(v, str) or not info.mode_is_json():
        return v
    return getattr(v, "file", "") or v.name


DesignRef = Annotated[Union[str, Design],
                      BeforeValidator(_loaded_ref(Design, load_design, "_design_ref", "design")),
                      PlainSerializer(_ref_label)]
ProfileRef = Annotated[Union[str, CostProfile],
                       BeforeValidator(_loaded_ref(CostProfile, load_profile, "_profile_ref",
                                                   "cost profile")),
                       PlainSerializer(_ref_label)]


class VinaConfig(Strict):
    """Virtual interrupt notification assist (TLFS): notify this VTL of lower-VTL interrupts."""

    vector: Vector
    auto_reset: bool = True
    service: DistSpec = Field(default_factory=lambda: parse_dist("1us"),
                              description="handler time of the notification (its mean if a distribution)")


class ContextConfig(Strict):
    """Per-VTL settings that apply to that VTL's context on every VP."""

    vtl: StrictInt = Field(ge=0, lt=MAX_VTLS)
    tpr: StrictInt = Field(0, ge=0, le=15, description="task-priority class 0-15 (as CR8)")
    vina: Optional[VinaConfig] = None
    idle: Literal["return", "halt"] = Field(
        "return", description="with nothing to run, a higher VTL returns (a secure kernel's idle "
        "loop) or halts in this VTL; a guest program that waits on anything but next_call() halts")


class VMConfig(Strict):
    """The partition: VPs, VTLs, APIC mode and what the host offers."""

    vps: StrictInt = Field(1, ge=1, le=MAX_VPS)
    vtls: StrictInt = Field(2, ge=1, le=MAX_VTLS)
    apic_mode: Literal["xapic-flat", "xapic-cluster", "x2apic"] = "x2apic"
    apicv: bool = True
    ipiv: bool = False
    cross_vtl_ipi_up: bool = Field(
        False, description="whether a lower VTL may send a PV IPI to a higher VTL (TLFS: "
        "unspecified; OpenHCL rejects it: send_synthetic_cluster_ipi, target_vtl_no_higher)")
    vendor: Literal["intel", "amd"] = Field(
        "intel", description="host CPU vendor: which APICv inhibits apply (docs/designs.md, posting)")
    deprecate_auto_eoi: bool = Field(
        False, description="the VMM advertises AutoEOI as deprecated (HV_DEPRECATING_AEOI_RECOMMENDED)")


class GuestConfig(Strict):
    """What the guest OS does that changes how the host can deliver interrupts."""

    auto_eoi: bool = Field(
        False, description="VTL0's SynIC uses AutoEOI (Windows does unless told it is deprecated); "
        "inhibits APICv (APICV_INHIBIT_REASON_HYPERV) unless vm.deprecate_auto_eoi")


class CostsConfig(Strict):
    """Which cost profile, and single costs overridden for this scenario."""

    profile: ProfileRef = "default"
    override: dict[str, Any] = Field(default_factory=dict)


class RecordConfig(Strict):
    """What to record beyond the interrupt and switch tables."""

    timeline: bool = Field(False, description="record every VP state segment (for traces and timeline plots)")
    window: Optional[Annotated[tuple[Duration, Duration], BeforeValidator(_window)]] = Field(
        None, description="only record timeline segments inside [start, end)")
    tables: Literal["all", "stream", "summary"] = Field(
        "all", description="`all`: every interrupt and switch row in memory (the default); "
        "`stream`: rows written to Parquet as the run goes, memory bounded (the same rows, "
        "in the order they became final); `summary`: no rows, exact counts and estimated "
        "percentiles (docs/metrics.md, long runs)")
    rel_error: float = Field(0.01, ge=1e-4, le=0.1, description="stream and summary: relative "
                             "error bound of a percentile estimated from the log-bucket "
                             "histogram (a column with at most 4096 distinct values is exact)")
    row_group: StrictInt = Field(65536, ge=1024, le=2**24, description="stream and summary: "
                                 "rows per chunk handed to the sink (a Parquet row group)")


class Scenario(Strict):
    """A complete, validated scenario. Times are ns; see docs/scenario.md for every key."""

    name: str = "scenario"
    description: str = ""
    question: str = Field("", description="the question the scenario answers; `compare` prints "
                          "it above its answer and report.html opens with it")
    headline: list[str] = Field(default_factory=list, description="the summary metrics that "
                                "answer the question, as sweep columns (`delivery_p99[timer,vtl1]`, "
                                "`vtl0_tax`, or a bare metric for all its kinds): `compare` prints "
                                "them with units, n and intervals (docs/metrics.md)")
    seed: StrictInt = Field(0, ge=0, le=2**63 - 1)
    duration: PositiveDuration = 10_000_000
    warmup: Duration = 0
    design: DesignRef = "vm-per-vtl"
    costs: CostsConfig = Field(default_factory=CostsConfig)
    vm: VMConfig = Field(default_factory=VMConfig)
    guest: GuestConfig = Field(default_factory=GuestConfig)
    context: list[ContextConfig] = Field(default_factory=list)
    workload: list[workloads.workload_union()] = Field(default_factory=list)
    record: RecordConfig = Field(default_factory=RecordConfig)
    host: Optional[HostConfig] = Field(None, description="physical CPUs and the host scheduler "
                                       "under the vCPU threads (docs/host.md); absent: every "
                                       "thread has its own CPU and wakes at once")
    # Loaded once by validation; what the simulation runs with.
    _design: Design = PrivateAttr(None)
    _costs: CostProfile = PrivateAttr(None)

    @property
    def loaded_design(self) -> Design:
        """The design this scenario runs, loaded (immutable, shared)."""
        return self._design

    @property
    def loaded_costs(self) -> CostProfile:
        """The cost profile with ``costs.override`` applied (immutable)."""
        return self._costs

    @field_validator("costs", mode="before")
    @classmethod
    def _costs_name(cls, v):
        # `costs = "default"` is shorthand for `[costs] profile = "default"`.
        return {"profile": v} if isinstance(v, (str, Path, CostProfile)) else v

    @model_validator(mode="after")
    def _cross_checks(self):
        n, vtls = self.vm.vps, self.vm.vtls
        errs = []
        if self.warmup >= self.duration:
            errs.append(f"warmup: {self.warmup} ns must be shorter than duration ({self.duration} ns)")
        seen = set()
        for i, c in enumerate(self.context):
            if c.vtl >= vtls:
                errs.append(f"context[{i}].vtl: {c.vtl} is outside 0..{vtls - 1} (vm.vtls = {vtls})")
            if c.vtl in seen:
                errs.append(f"context[{i}].vtl: VTL {c.vtl} is configured twice")
            seen.add(c.vtl)
        for i, w in enumerate(self.workload):
            where = f"workload[{i}]"
            if w.vtl >= vtls:
                errs.append(f"{where}.vtl: {w.vtl} is outside 0..{vtls - 1} (vm.vtls = {vtls})")
            for key in ("vps", "senders"):
                sel = getattr(w, key, "all")
                if sel != "all":
                    bad = [v for v in sel if v >= n]
                    if bad:
                        errs.append(f"{where}.{key}: VP {bad[0]} is out of range 0..{n - 1} (vm.vps = {n})")
            errs += workloads.REGISTRY[w.kind].check(w, self, where)
            if getattr(w, "rate", None) is not None:
                why = _rate_problem(w.rate, self.duration, w.phase)
                if why:
                    errs.append(f"{where}.rate: {why}")
            if getattr(w, "at", None) is not None:
                late = [t for t in w.at if t >= self.duration]
                if late:
                    errs.append(f"{where}.at: {late[0]} ns is not before the end of the run "
                                f"(duration = {self.duration} ns)")
        # Design and cost profile are loaded here, once, before anything runs.
        try:
            self._costs = load_profile(self.costs.profile).with_overrides(self.costs.override)
        except InputError as e:
            errs.append(str(e))
        try:
            self._design = load_design(self.design)
        except InputError as e:
            errs.append(str(e))
        if self.host is not None and self._design is not None:
            per_vtl = self._design.capabilities["thread_per_vtl"] and vtls > 1
            errs += check_host(self.host, n, vtls, vtls if per_vtl else 1,
                               self._design.vmm_thread)
        if self.record.window is not None and self.record.window[1] <= self.record.window[0]:
            errs.append(f"record.window: {list(self.record.window)} must be [start, end) with end > start")
        if errs:
            raise ValueError("\n".join(errs))
        return self

    @classmethod
    def model_validate(cls, obj, *args, **kwargs) -> "Scenario":
        """Validate *obj* (a dict) into a Scenario; bad input raises :class:`ScenarioError`
        with one line per problem, naming the field, the value and what is allowed."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as e:
            raise ScenarioError(format_validation_error(e)) from None

    # ---------------------------------------------------------------- public helpers
    def with_overrides(self, overrides: dict) -> "Scenario":
        """Return a new scenario with dotted keys replaced, e.g. ``{"vm.vps": 64}``.

        List items are addressed by index: ``"workload.1.rate"`` or ``"workload[1].rate"``.
        An unknown key raises :class:`ScenarioError` naming it.
        """
        data = self.to_input()
        for key, value in overrides.items():
            _set_dotted(data, key, value)
        return scenario_from_dict(data)

    def to_input(self) -> dict:
        """The scenario as a plain dict that validates back to an equal scenario."""
        data = self.model_dump(mode="python")
        # Programs are kept as the callables themselves so that overrides keep them.
        for w_in, w_out in zip(self.workload, data["workload"]):
            if w_in.kind == "program":
                w_out["program"] = w_in.program
        return data

    def resolved(self) -> dict:
        """The resolved scenario (defaults filled in) as JSON-ready data, times in ns."""
        return self.model_dump(mode="json")

    def context_config(self, vtl: int) -> ContextConfig:
        """The per-VTL settings of *vtl* (defaults when the scenario gives none)."""
        for c in self.context:
            if c.vtl == vtl:
                return c
        return ContextConfig(vtl=vtl)


#: Top-level tables that may be absent (None); a dotted override into one creates it.
OPTIONAL_TABLES = {"host": HostConfig}


def _set_dotted(data: dict, key: str, value) -> None:
    parts = [p for p in re.split(r"\.|\[(\d+)\]", key) if p]
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(f"override {key!r}: {part!r} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ScenarioError(f"override {key!r}: {'.'.join(parts[:i])} is not a table")
        if part not in node:
            if part == "override" or (i > 0 and parts[i - 1] == "override"):
                node[part] = value if last else {}
                node = node[part]
                continue
            raise ScenarioError(f"override {key!r}: no key {part!r}; allowed here: "
                                f"{', '.join(map(str, node))}")
        if last:
            node[part] = value
        else:
            if isinstance(node[part], (str, int, float)) and parts[i] == "costs":
                node[part] = {"profile": node[part]}
            if node[part] is None and i == 0 and part in OPTIONAL_TABLES:
                # `host.cpus=4` on a scenario without [host] creates it, with its defaults
                node[part] = OPTIONAL_TABLES[part]().model_dump(mode="python")
            node = node[part]


def format_validation_error(err: ValidationError, source: str = "") -> str:
    """One line per problem: ``field.path: message`` with the offending value."""
    lines = []
    for e in err.errors():
        loc = []
        for part in e["loc"]:
            if isinstance(part, int):
                loc.append(f"[{part}]")
            elif part in workloads.REGISTRY and loc and loc[-1].startswith("["):
                continue  # the discriminator tag pydantic inserts into the path
            elif part.startswith("function-"):
                continue
            else:
                loc.append(("." if loc else "") + part)
        where = "".join(loc)
        msg = e["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        if e["type"] not in ("value_error",) and "input" in e and not isinstance(e["input"], dict):
            msg = f"{e['input']!r}: {msg}"
        if e["type"] == "union_tag_invalid":
            msg = (f"kind {e['input'].get('kind')!r} is not a workload kind; allowed: "
                   f"{', '.join(workloads.workload_kinds())}") if isinstance(e["input"], dict) else msg
        if e["type"] == "union_tag_not_found":
            msg = f"missing key 'kind'; allowed: {', '.join(workloads.workload_kinds())}"
        for m in msg.split("\n"):
            lines.append(f"{where}: {m}" if where and not m.startswith(where.split('.')[0]) else m)
    text = "\n".join(lines)
    return f"{source}: {text}".replace("\n", f"\n{source}: ") if source else text


def _misplaced_keys_hint(data: dict) -> str:
    """A hint for top-level keys written after a ``[table]`` header, where TOML puts them."""
    found = []
    for table, value in data.items():
        field = Scenario.model_fields.get(table)
        if field is None:
            continue
        if isinstance(value, dict):
            model = field.annotation if isinstance(field.annotation, type) else None
            allowed = set(getattr(model, "model_fields", {}))
            found += [(f"[{table}]", k) for k in value
                      if k in Scenario.model_fields and k not in allowed]
        elif isinstance(value, list) and value and isinstance(value[-1], dict):
            allowed = {f for k in workloads.REGISTRY.values() for f in k.model.model_fields} \
                if table == "workload" else set()
            found += [(f"[[{table}]]", k) for k in value[-1]
                      if k in Scenario.model_fields and k not in allowed]
    if not found:
        return ""
    where, key = found[0]
    return (f" (hint: {key!r} is a top-level key, but it comes after the {where} header, and "
            f"TOML puts every key after a header into that table: move it above the first "
            f"[table] line)")


def scenario_from_dict(data: dict, source: str = "") -> Scenario:
    """Validate *data* into a :class:`Scenario`, raising :class:`ScenarioError` on bad input."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source or 'scenario'}: expected a table of keys, got {type(data).__name__}")
    try:
        return Scenario.model_validate(copy.copy(data))
    except ScenarioError as e:
        if not source:
            raise
        raise ScenarioError("\n".join(f"{source}: {line}" for line in str(e).splitlines())) \
            from None


def _import_failure(path: Path, exc: BaseException) -> str:
    """One line for a .py scenario that raised at import: file, line of its code, exception."""
    import traceback
    line = None
    for fr in traceback.extract_tb(exc.__traceback__):
        if Path(fr.filename).resolve() == path.resolve():
            line = fr.lineno
    text = str(exc).strip().splitlines()
    what = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    where = f" on line {line}" if line is not None else ""
    return f"{path}: raised {what}{where} while loading"


def load_scenario(path) -> Scenario:
    """Load a scenario from a ``.toml`` file or a ``.py`` file that defines ``SCENARIO``.

    ``SCENARIO`` may be a dict or a :class:`Scenario`. Raises :class:`ScenarioError` with a
    one-line reason for a missing file, a syntax error or an invalid key.
    """
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    if p.suffix == ".toml":
        try:
            data = tomllib.loads(read_text(p, ScenarioError))
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{path}: TOML syntax error: {e}") from None
        try:
            return scenario_from_dict(data, str(path))
        except ScenarioError as e:
            hint = _misplaced_keys_hint(data)
            if not hint:
                raise
            raise ScenarioError(f"{e}{hint}") from None
    if p.suffix == ".py":
        name = "vsmsim_scenario_" + re.sub(r"\W", "_", p.stem)
        spec = importlib.util.spec_from_file_location(name, p)
        module = importlib.util.module_from_spec(spec)
        import sys
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as e:
            raise ScenarioError(f"{path}: Python syntax error on line {e.lineno}: {e.msg}") from None
        except Exception as e:  # the user's code raised while defining SCENARIO
            raise ScenarioError(_import_failure(p, e)) from None
        sc = getattr(module, "SCENARIO", None)
        if sc is None:
            raise ScenarioError(f"{path}: defines no SCENARIO (a dict or vsmsim.Scenario)")
        if isinstance(sc, Scenario):
            return sc
        return scenario_from_dict(sc, str(path))
    raise ScenarioError(f"{path}: unknown scenario file type {p.suffix!r}; allowed: .toml, .py")


def _rebuild_workload_union() -> None:
    # A kind registered after import (vsmsim.workloads.register) joins the union.
    Scenario.model_fields["workload"].annotation = list[workloads.workload_union()]
    Scenario.model_rebuild(force=True)


workloads.on_register(_rebuild_workload_union)
