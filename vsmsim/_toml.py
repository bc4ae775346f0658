"""tomllib on Python >= 3.11, tomli before."""

try:  # pragma: no cover - depends on the interpreter
    import tomllib as toml
except ImportError:  # pragma: no cover
    import tomli as toml  # type: ignore[no-redef]

__all__ = ["toml", "toml_str", "toml_value"]


def toml_str(s: str) -> str:
    """A TOML basic string."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def toml_value(v) -> str:
    """A TOML value for a Python scalar, list or dict (inline table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return toml_str(str(v))
