"""Generate the scenario reference (docs/scenario.md) from the schema itself.

    python -m vsmsim.schema_doc > docs/scenario.md

A test checks that the committed page equals this output, so the page cannot drift from
the code.
"""

from __future__ import annotations

import typing

from pydantic.fields import FieldInfo

from .config import (
    ContextConfig,
    CostsConfig,
    GuestConfig,
    RecordConfig,
    Scenario,
    VinaConfig,
    VMConfig,
)
from .host.config import HostConfig, NoiseConfig
from .units import format_ns
from .workloads import REGISTRY

_NOTES = {
    "duration": "ns, or a string with a unit: ns, us, ms, s",
    "warmup": "ns or with a unit; excluded from summaries, kept in tables",
    "design": "a built-in design name, a path to a design file, or (from Python) a vsmsim.Design (docs/designs.md)",
    "profile": "a built-in profile name, a path to a profile file, or (from Python) a vsmsim.CostProfile",
    "period": "ns or with a unit; per VP",
    "at": "list of times (ns or with a unit)",
    "phase": "ns or with a unit; first arrival",
    "service": "a duration, or a table with dist = fixed, exp, lognormal, uniform or empirical",
    "vps": "'all', a list of VP indices, or a range 'a-b'",
    "senders": "'all', a list of VP indices, or a range 'a-b'",
    "dest": "random | self | all | all-but-self | a list of VPs",
    "vector": "integer 0x10-0xFF; priority class = vector >> 4",
    "program": "a generator function program(ctx), or 'module:function'",
    "override": "cost name = duration or distribution (docs/concepts.md lists the names)",
    "window": "[start, end) in ns or with units",
}


_VALIDATOR_TYPES = {"_dur": "duration", "_pos_dur": "duration (> 0)", "_vector": "vector",
                    "_vp_set": "VP set", "_program": "program", "parse_dist": "distribution",
                    "_design_ref": "design", "_profile_ref": "cost profile"}


def _field_type(f: FieldInfo) -> str:
    for m in f.metadata:
        func = getattr(getattr(m, "func", None), "__name__", "")
        if func in _VALIDATOR_TYPES:
            return _VALIDATOR_TYPES[func]
    if f.annotation is not None and "VinaConfig" in repr(f.annotation):
        return "table (below)"
    if "tuple" in repr(f.annotation):
        return "[duration, duration]"
    return _type_name(f.annotation)


def _type_name(ann) -> str:
    text = repr(ann)
    for a, b in (("typing.", ""), ("Annotated[", ""), ("<class '", ""), ("'>", ""),
                 ("NoneType", "none"), ("Optional[", "")):
        text = text.replace(a, b)
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return ", ".join(repr(a) for a in typing.get_args(ann))
    if "Literal" in text:
        lits = []
        for arg in typing.get_args(ann):
            if typing.get_origin(arg) is typing.Literal:
                lits += [repr(a) for a in typing.get_args(arg)]
        if lits:
            return ", ".join(lits) + (", or a list" if "list" in text else "")
    if "Dist" in text:
        return "duration or distribution"
    if "int" in text and ("_dur" in text or "_pos_dur" in text):
        return "duration"
    if "_vector" in text:
        return "vector"
    if "_vp_set" in text:
        return "VP set"
    if "_program" in text:
        return "program"
    for simple in ("bool", "int", "float", "str"):
        if text.startswith(simple):
            return simple
    return text.split("[")[0].split(",")[0].strip("]")


def _default(f: FieldInfo):
    if f.default_factory is not None:
        v = f.default_factory()
        if hasattr(v, "to_spec"):
            return format_ns(v.to_spec())
        if hasattr(v, "model_dump"):
            return "(table)"
        return repr(v)
    if f.is_required():
        return "required"
    v = f.default
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int) and v > 0xFF and v % 1000 == 0:
        return format_ns(v)
    if isinstance(v, int) and 0x10 <= v <= 0xFF:
        return f"{v:#x}" if f.metadata == [] else repr(v)
    return "none" if v is None else repr(v)


def _limits(f: FieldInfo) -> str:
    out = []
    for m in f.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sym} {getattr(m, attr)}")
    return ", ".join(out)


def _table(model, title: str, key_prefix: str, skip=()) -> list[str]:
    lines = [f"### {title}", "", (model.__doc__ or "").strip().splitlines()[0], "",
             "| key | type | default | allowed / unit |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        note = _NOTES.get(key_prefix + name, _NOTES.get(name, "")) if key_prefix != "vm." else ""
        allowed = "; ".join(x for x in (_limits(f), note, f.description or "") if x)
        lines.append(f"| `{key_prefix}{name}` | {_field_type(f)} | "
                     f"{_default(f)} | {allowed} |")
    return lines + [""]


def reference_markdown() -> str:
    """The scenario reference page, as Markdown."""
    lines = [
        "# Scenario reference",
        "",
        "Generated from the schema by `python -m vsmsim.schema_doc`; do not edit by hand.",
        "A scenario is a TOML file, a `.py` file defining `SCENARIO` (a dict), or a dict",
        "passed to `vsmsim.Scenario.model_validate`. Unknown keys are errors. Durations are",
        "integers of ns or strings with a unit (`800ns`, `2.5us`, `1ms`, `1s`), read exactly",
        "and at most 1e18 ns (about 31.7 years); rates are per second, from 1e-9 to 1e9.",
        "Numbers are strict: `true`, `\"4\"` or `4.0` is not an integer, `true` not a rate.",
        "`costs = \"default\"` is short for `[costs] profile = \"default\"`.",
        "Override any key with `--set key=value` or `Scenario.with_overrides({...})`, using",
        "dotted keys and list indices: `vm.vps`, `workload.1.rate`, `costs.override.uexit`.",
        "",
    ]
    lines += _table(Scenario, "Top level", "", skip=("costs", "vm", "guest", "context", "workload",
                                                      "record", "host"))
    lines += _table(CostsConfig, "[costs]", "costs.")
    lines += _table(VMConfig, "[vm]", "vm.")
    lines += _table(GuestConfig, "[guest]", "guest.")
    lines += _table(ContextConfig, "[[context]]", "")
    lines += _table(VinaConfig, "vina (in [[context]])", "vina.")
    lines += _table(RecordConfig, "[record]", "record.")
    lines += _table(HostConfig, "[host] (docs/host.md)", "host.", skip=("noise",))
    lines += ["`noise` is a list of tables (`[[host.noise]]`), one background thread per listed",
              "CPU each:", ""]
    lines += _table(NoiseConfig, "[[host.noise]]", "noise.")
    lines += ["## Workloads (`[[workload]]`)", "",
              "Every workload has `kind`, an optional `name` and `vtl` (default 0). Arrivals:",
              "exactly one of `period` (every period, on every VP of the set), `rate`",
              "(Poisson, per second for the whole workload, each arrival on one VP drawn",
              "uniformly) or `at` (one-shot times, on every VP of the set); `phase` delays",
              "the first.", ""]
    for kind in REGISTRY.values():
        lines += _table(kind.model, f"kind = \"{kind.name}\"", "", skip=("kind",))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(reference_markdown(), end="")
