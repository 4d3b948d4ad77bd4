"""Reading a cassette: `loads` and `load`, whichever reader takes the file.

A file in the writer's own form goes through the fast reader; any other file (or one the fast
reader declines) through the full reader, which also gives every error its line. Both give the
same Cassette for the same bytes; the checks that follow here apply to both.
"""

from __future__ import annotations

import os
import warnings

from .fastreader import fast_loads
from .fullreader import full_loads
from .model import Cassette, CassetteError, CassetteWarning, Interaction


def loads(data: bytes | str, path: str | None = None) -> Cassette:
    """A cassette from its YAML. Raises CassetteError (naming `path`, the line and the problem)
    for anything go-vcr would not load, and for aliases. Values are kept as stored (no length is
    recomputed); the Style (indent, key shape) is taken from the file.

    The loaded objects may share parts: equal header, form and trailer maps (and their lists)
    can be one object used by many interactions, so treat loaded values as read-only and build
    new maps and lists to change them."""
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
    fast_data = data
    if isinstance(data, str):
        try:
            fast_data = data.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: the full reader names the problem
            fast_data = b""
    loaded = fast_loads(fast_data) if fast_data else None
    if loaded is None:
        loaded = full_loads(data, path)
    check_chunks(loaded.interactions, path)
    return loaded




def check_chunks(interactions: list[Interaction], path: str | None) -> None:
    for n, interaction in enumerate(interactions):
        response = interaction.response
        if response.chunks is None:
            continue
        total = sum(chunk.size for chunk in response.chunks)
        if total != len(response.body):
            where = f"{path}: " if path else ""
            warnings.warn(
                f"{where}interactions[{n}].response.chunks: sizes add up to {total} bytes but the "
                f"body has {len(response.body)}; ignoring the chunks key",
                CassetteWarning,
                stacklevel=3,
            )
            response.chunks = None



def load(path: str | os.PathLike[str]) -> Cassette:
    """The cassette in the file at `path`; CassetteError also when the file cannot be read."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CassetteError(f"cannot read the cassette: {e.strerror or e}", name) from None
    return loads(data, name)
