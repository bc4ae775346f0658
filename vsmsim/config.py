"""The scenario schema: what users write, validated before anything runs.

A scenario is a TOML file (or a ``.py`` file defining ``SCENARIO``, or a dict) with the keys
documented in ``docs/scenario.md``. Durations are integers of nanoseconds after
validation; distributions are :class:`vsmsim.dists.Dist`. Every error names the field, the
value and what is allowed.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from ._toml import toml as tomllib
from .dists import Dist, parse_dist
from .errors import InputError
from .units import parse_duration
from .userfile import read_text

MAX_VTLS = 16
MAX_VPS = 4096


class ScenarioError(InputError):
    """A scenario that cannot run; ``str(e)`` has one line per problem."""


def _dur(v):
    return parse_duration(v)


def _pos_dur(v):
    return parse_duration(v, allow_zero=False)


# --- strict numbers (issue 14, defects 1 and 3): a bool is never a number, nor is a string;
# floats must be finite. Pydantic's lax mode would read `true` as 1 and "3" as 3.
def _strict_int(v):
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, bool) or not hasattr(v, "__index__") or isinstance(v, float):
            raise ValueError(f"{v!r} is not an integer")
    return int(v.__index__())


def _strict_float(v):
    import math
    import numbers
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{v!r} is not a number")
    x = float(v)
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"{v!r} is not a finite number")
    return x


StrictInt = Annotated[int, BeforeValidator(_strict_int)]
StrictFloat = Annotated[float, BeforeValidator(_strict_float)]

#: Poisson rates (per second, whole source): a mean gap of at least 1 ns, and at least one
#: arrival per 31.7 years (a gap beyond MAX_NS would never come).
MIN_RATE, MAX_RATE = 1e-9, 1e9


def _rate(v):
    x = _strict_float(v)
    if not MIN_RATE <= x <= MAX_RATE:
        raise ValueError(f"{v!r} per second: a rate must be greater than 0, from {MIN_RATE:g} "
                         f"to {MAX_RATE:g} (at most one arrival per ns on average)")
    return x


Rate = Annotated[float, BeforeValidator(_rate)]


def _rate_problem(rate: float, duration: int, phase: int) -> str:
    """Why *rate* cannot advance the float arrival clock up to *duration*, or ""."""
    import math
    gap = 1e9 / rate
    # Gaps well below the clock's float resolution at the end of the run would be lost.
    ulp = math.ulp(float(duration + phase))
    if gap < 16 * ulp:
        return (f"{rate:g} per second gives a mean gap of {gap:.3g} ns, below the clock's "
                f"resolution ({ulp:g} ns) at {duration} ns; allowed: at most "
                f"{1e9 / (16 * ulp):.3g} per second for this duration")
    return ""


def _window(v):
    """record.window: a list [start, end] of two durations (one clear line otherwise)."""
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"{v!r} is not a window; write [start, end], e.g. [\"1ms\", \"3ms\"]")
    return tuple(v)


_DEST_WORDS = ("random", "self", "all", "all-but-self")


def _dest(v):
    """An IPI destination: one word of _DEST_WORDS or a list of VP indices (one error line)."""
    if isinstance(v, str) and v in _DEST_WORDS:
        return v
    if isinstance(v, (list, tuple)):
        out = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                raise ValueError(f"{x!r} in {list(v)} is not a VP index (integer >= 0)")
            out.append(x)
        return out
    raise ValueError(f"{v!r} is not a destination; allowed: {', '.join(_DEST_WORDS)} "
                     f"or a list of VP indices")


Dest = Annotated[Union[Literal["random", "self", "all", "all-but-self"], list[int]],
                 BeforeValidator(_dest)]


Duration = Annotated[int, BeforeValidator(_dur)]
PositiveDuration = Annotated[int, BeforeValidator(_pos_dur)]
DistSpec = Annotated[Dist, BeforeValidator(parse_dist), PlainSerializer(lambda d: d.to_spec())]


def _vector(v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{v!r} is not a vector; write an integer 0x10-0xFF")
    if not 0x10 <= v <= 0xFF:
        raise ValueError(f"{v:#x} is not a usable vector; allowed 0x10-0xFF (0-15 are reserved)")
    return v


Vector = Annotated[int, BeforeValidator(_vector)]


def _vp_set(v):
    """'all', an int, a list of ints, or a range string 'a-b' (inclusive)."""
    if v == "all":
        return "all"
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a VP set; write 'all', a list, or a range like '0-3'")
    if isinstance(v, int):
        return [v]
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", v)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"range {v!r} is empty; write 'low-high'")
            return list(range(a, b + 1))
        if v.strip().isdigit():
            return [int(v)]
        raise ValueError(f"{v!r} is not a VP set; write 'all', a list, or a range like '0-3'")
    if isinstance(v, (list, tuple)):
        out = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int) or x < 0:
                raise ValueError(f"{x!r} in {list(v)} is not a VP index (integer >= 0)")
            out.append(x)
        if not out:
            raise ValueError("an empty list selects no VP; write 'all', a list, or a range")
        return out
    raise ValueError(f"{v!r} is not a VP set; write 'all', a list, or a range like '0-3'")


VpSet = Annotated[Union[Literal["all"], list[int]], BeforeValidator(_vp_set)]


class Strict(BaseModel):
    """Base: unknown keys are errors that list the allowed keys."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True,
                              validate_assignment=False)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data):
        if isinstance(data, dict):
            extra = [k for k in data if k not in cls.model_fields]
            if extra:
                raise ValueError(
                    f"unknown key(s) {', '.join(map(repr, extra))}; allowed: "
                    f"{', '.join(cls.model_fields)}"
                )
        return data


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


class VMConfig(Strict):
    """The partition: VPs, VTLs, APIC mode and what the host offers."""

    vps: StrictInt = Field(1, ge=1, le=MAX_VPS)
    vtls: StrictInt = Field(2, ge=1, le=MAX_VTLS)
    apic_mode: Literal["xapic-flat", "xapic-cluster", "x2apic"] = "x2apic"
    apicv: bool = True
    ipiv: bool = False
    cross_vtl_ipi_up: bool = Field(
        True, description="whether a lower VTL may send a PV IPI to a higher VTL (TLFS: unspecified)")


class Arrivals(Strict):
    """Shared arrival keys: exactly one of period (per VP), rate (total, Poisson), at."""

    period: Optional[PositiveDuration] = None
    rate: Optional[Rate] = Field(None, description="per second, Poisson, whole source; "
                                 "1e-9 to 1e9, and a mean gap the clock resolves at duration")
    at: Optional[list[Duration]] = None
    phase: Duration = 0

    @model_validator(mode="after")
    def _one_arrival_kind(self):
        given = [k for k in ("period", "rate", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of period, rate, at (got {', '.join(given) or 'none'})")
        return self


class _Named(Strict):
    name: Optional[str] = None
    vtl: StrictInt = Field(0, ge=0, lt=MAX_VTLS)


class TimerWorkload(_Named, Arrivals):
    """LAPIC timer of context (vp, vtl): periodic, Poisson or one-shot expiries."""

    kind: Literal["timer"]
    vps: VpSet = "all"
    vector: Vector = 0xEC
    service: DistSpec = Field(default_factory=lambda: parse_dist("1us"))


class _Sends(_Named, Arrivals):
    """Keys shared by the IPI kinds: who sends, to whom, which vector, handler time."""

    senders: VpSet = "all"
    dest: Dest = "random"
    vector: Vector = 0xFB
    service: DistSpec = Field(default_factory=lambda: parse_dist("1us"))


class IpiWorkload(_Sends):
    """APIC IPIs (ICR writes) within one VTL, from senders to destinations."""

    kind: Literal["ipi"]
    dest_mode: Literal["physical", "logical"] = "physical"


class PvIpiWorkload(_Sends):
    """Hyper-V PV IPIs (HvCallSendSyntheticClusterIpi), optionally to another VTL."""

    kind: Literal["pv-ipi"]
    target_vtl: Optional[StrictInt] = Field(None, ge=0, lt=MAX_VTLS)


class ExternalWorkload(_Named, Arrivals):
    """Device interrupts (IOAPIC/MSI) to VTL0 unless ``vtl`` says otherwise (rule 12)."""

    kind: Literal["external"]
    vps: VpSet = "all"
    vector: Vector = 0x40
    service: DistSpec = Field(default_factory=lambda: parse_dist("2us"))


class VtlCallWorkload(_Named, Arrivals):
    """Code in ``vtl`` calls the next higher VTL (HvCallVtlCall) for ``service`` of work."""

    kind: Literal["vtl-call"]
    vps: VpSet = "all"
    service: DistSpec = Field(default_factory=lambda: parse_dist("5us"))


class InterceptWorkload(_Named, Arrivals):
    """Code in ``vtl`` traps into the next higher VTL (secure intercept) for ``service``."""

    kind: Literal["intercept"]
    vps: VpSet = "all"
    service: DistSpec = Field(default_factory=lambda: parse_dist("5us"))


class ComputeWorkload(_Named):
    """Endless ordinary work of ``vtl``, lowest priority: measures what that VTL gets."""

    kind: Literal["compute"]
    vps: VpSet = "all"


def _program(v):
    if callable(v):
        return v
    if isinstance(v, str) and ":" in v:
        mod, _, attr = v.partition(":")
        try:
            obj = importlib.import_module(mod)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"{v!r} cannot be imported: {e}") from None
        if callable(obj):
            return obj
    raise ValueError(f"{v!r} is not a program; give a generator function or 'module:function'")


def _program_name(f):
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"


Program = Annotated[Callable, BeforeValidator(_program), PlainSerializer(_program_name)]


class ProgramWorkload(_Named):
    """Guest code as SimPy generator functions ``program(ctx)``, one process per context."""

    kind: Literal["program"]
    vps: VpSet = "all"
    program: Program


Workload = Annotated[
    Union[TimerWorkload, IpiWorkload, PvIpiWorkload, ExternalWorkload, VtlCallWorkload,
          InterceptWorkload, ComputeWorkload, ProgramWorkload],
    Field(discriminator="kind"),
]
WORKLOAD_KINDS = ("timer", "ipi", "pv-ipi", "external", "vtl-call", "intercept", "compute",
                  "program")


class CostsConfig(Strict):
    """Which cost profile, and single costs overridden for this scenario."""

    profile: str = "default"
    override: dict[str, Any] = Field(default_factory=dict)


class RecordConfig(Strict):
    """What to record beyond the interrupt and switch tables."""

    timeline: bool = Field(False, description="record every VP state segment (for traces and timeline plots)")
    window: Optional[Annotated[tuple[Duration, Duration], BeforeValidator(_window)]] = Field(
        None, description="only record timeline segments inside [start, end)")


class Scenario(Strict):
    """A complete, validated scenario. Times are ns; see docs/scenario.md for every key."""

    name: str = "scenario"
    description: str = ""
    seed: StrictInt = Field(0, ge=0, le=2**63 - 1)
    duration: PositiveDuration = 10_000_000
    warmup: Duration = 0
    design: str = "vm-per-vtl"
    costs: CostsConfig = Field(default_factory=CostsConfig)
    vm: VMConfig = Field(default_factory=VMConfig)
    context: list[ContextConfig] = Field(default_factory=list)
    workload: list[Workload] = Field(default_factory=list)
    record: RecordConfig = Field(default_factory=RecordConfig)

    @field_validator("costs", mode="before")
    @classmethod
    def _costs_name(cls, v):
        # `costs = "default"` is shorthand for `[costs] profile = "default"`.
        return {"profile": v} if isinstance(v, str) else v

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
            dest = getattr(w, "dest", None)
            if isinstance(dest, list):
                bad = [v for v in dest if not 0 <= v < n]
                if bad or not dest:
                    errs.append(f"{where}.dest: {dest} must list VPs in 0..{n - 1}")
            if w.kind in ("vtl-call", "intercept") and w.vtl + 1 == vtls:
                errs.append(f"{where}.vtl: VTL {w.vtl} has no higher VTL to enter (vm.vtls = {vtls})")
            if w.kind == "pv-ipi" and w.target_vtl is not None:
                if w.target_vtl >= vtls:
                    errs.append(f"{where}.target_vtl: {w.target_vtl} is outside 0..{vtls - 1}")
                elif w.target_vtl > w.vtl and not self.vm.cross_vtl_ipi_up:
                    errs.append(f"{where}.target_vtl: VTL {w.vtl} may not target higher VTL "
                                f"{w.target_vtl} (vm.cross_vtl_ipi_up = false)")
            if w.kind == "ipi" and w.dest_mode == "logical":
                limit = {"xapic-flat": 8, "xapic-cluster": 60, "x2apic": MAX_VPS}[self.vm.apic_mode]
                if n > limit:
                    errs.append(f"{where}.dest_mode: logical destinations in {self.vm.apic_mode} "
                                f"mode address at most {limit} VPs; vm.vps = {n}")
            if getattr(w, "rate", None) is not None:
                why = _rate_problem(w.rate, self.duration, w.phase)
                if why:
                    errs.append(f"{where}.rate: {why}")
            if getattr(w, "at", None) is not None:
                late = [t for t in w.at if t >= self.duration]
                if late:
                    errs.append(f"{where}.at: {late[0]} ns is not before the end of the run "
                                f"(duration = {self.duration} ns)")
        # Design and cost profile names are checked here, before anything runs.
        from .costs import load_profile
        from .designs import load_design
        try:
            load_profile(self.costs.profile).with_overrides(self.costs.override)
        except InputError as e:
            errs.append(str(e))
        try:
            load_design(self.design)
        except InputError as e:
            errs.append(str(e))
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
            node = node[part]


def format_validation_error(err: ValidationError, source: str = "") -> str:
    """One line per problem: ``field.path: message`` with the offending value."""
    lines = []
    for e in err.errors():
        loc = []
        for part in e["loc"]:
            if isinstance(part, int):
                loc.append(f"[{part}]")
            elif part in WORKLOAD_KINDS and loc and loc[-1].startswith("["):
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
                   f"{', '.join(WORKLOAD_KINDS)}") if isinstance(e["input"], dict) else msg
        if e["type"] == "union_tag_not_found":
            msg = f"missing key 'kind'; allowed: {', '.join(WORKLOAD_KINDS)}"
        for m in msg.split("\n"):
            lines.append(f"{where}: {m}" if where and not m.startswith(where.split('.')[0]) else m)
    text = "\n".join(lines)
    return f"{source}: {text}".replace("\n", f"\n{source}: ") if source else text


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
        return scenario_from_dict(data, str(path))
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
