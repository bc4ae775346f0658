"""Reading overrides and grids from text: ``--set key=value`` and ``--grid key=v1,v2``.

Values read as TOML values when they are ones (numbers, true/false, lists, quoted strings,
inline tables), else as plain strings. Bad input raises :class:`vsmsim.InputError` with one
line naming the argument and what is expected.
"""

from __future__ import annotations

from ._toml import toml as tomllib
from .errors import InputError


def parse_value(text: str):
    """A value: a TOML value if it reads as one (numbers, true, [..]), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(pairs) -> dict:
    """``["vm.vps=64", "design=planes"]`` as ``{"vm.vps": 64, "design": "planes"}``."""
    out = {}
    for p in pairs or []:
        key, eq, value = p.partition("=")
        if not eq or not key.strip():
            raise InputError(f"--set {p!r}: expected key=value, e.g. --set vm.vps=64")
        out[key.strip()] = parse_value(value.strip())
    return out


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,[0,1],"a,b"`` on the commas outside brackets, braces and quotes."""
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(items) -> dict:
    """``["vm.vps=4,16", "design=planes,vm-per-vtl"]`` as ``{key: [values]}``."""
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--grid {item!r}: expected key=v1,v2,..., e.g. --grid vm.vps=4,16,64")
        key, _, text = item.partition("=")
        key = key.strip()
        if key in grid:
            raise InputError(f"--grid {key!r} is given twice; list all its values in one --grid")
        vals = split_values(text)
        if not key or any(v == "" for v in vals):
            raise InputError(f"--grid {item!r}: expected key=v1,v2,..., e.g. --grid vm.vps=4,16,64")
        grid[key] = [parse_value(v) for v in vals]
    return grid
