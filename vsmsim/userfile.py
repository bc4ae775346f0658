"""Reading the text files users write (scenarios, designs, cost profiles).

A file that is not UTF-8 is bad input, reported in one line with the file and the byte
offset, never as the codec's bare message.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError


def read_text(path, error: type[InputError] = InputError) -> str:
    """The UTF-8 text of *path*; a byte that is not UTF-8 raises *error* naming the file,
    the byte offset and its value."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: byte {e.start} (0x{data[e.start]:02x}) is not valid UTF-8; "
                    f"save the file as UTF-8") from None
