"""The go-vcr version-2 cassette: data model, reader and writer. Pure Python (no mitmproxy).

The writer reproduces go-yaml's bytes exactly, so a cassette written by go-vcr loads and saves
back unchanged; `docs/cassette-format.md` has every rule. The package, one idea per module:

- `model`: the dataclasses (Cassette, Interaction, Request, Response, Chunk, Style) and errors.
- `fields`: the one table of request and response fields (order, kind, when left out) that the
  writer, both readers and the append path read.
- `govalues`: Go's syntax for durations, integers and header names.
- `keyorder`, `scalars`: go-yaml's map key order; how it writes one scalar.
- `emitter`: a port of go-yaml's emitter, for unknown keys.
- `writer`: `dumps`, `dump_interactions`.
- `fastreader`, `fullreader`: the two reading paths (same results); `reader`: `loads`, `load`.
- `append`: what a store needs to add interactions to a file's bytes without knowing YAML.

Everything a caller needs is importable from the package itself.
"""

from . import model
from .append import (
    Ending,
    append_bytes,
    appendable,
    ending,
    loads_appended,
    open_list,
    read_extension,
    tail_ending,
)
from .govalues import canonical_header_name, format_duration, parse_duration
from .model import *  # noqa: F403  (the whole model, as model.__all__ names it)
from .reader import load, loads
from .writer import dump_interactions, dumps

__all__ = [
    "Ending",
    "append_bytes",
    "appendable",
    "canonical_header_name",
    "dump_interactions",
    "dumps",
    "ending",
    "format_duration",
    "load",
    "loads",
    "loads_appended",
    "open_list",
    "parse_duration",
    "read_extension",
    "tail_ending",
]
__all__ += model.__all__
