"""`llm-vcr show`: print cassettes for a reviewer (the text is `show.render`'s).

Each file is loaded; the warnings of a file that loads with a part ignored (a `chunks` key that
does not fit its body) go to stderr as `llm-vcr: warning: ...`, then the file is printed. A
missing path or a file that does not load is reported the `commands.files` way and the other
files are still shown.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..cassette import CassetteWarning, load
from ..show.render import Paint, Renderer
from .files import for_each_cassette, print_problems


def show_paths(
    paths: Sequence[str],
    raw: bool = False,
    out: TextIO = sys.stdout,
    color: bool | None = None,
    err: TextIO | None = None,
) -> int:
    """Print each cassette's interactions for a reviewer; 0, or 1 when a path is missing or a
    cassette does not load (those go to `err`, default stderr, as `llm-vcr: path:line: problem`).

    `color`: ANSI colours; None = only when `out` is a terminal.
    """
    err = err if err is not None else sys.stderr
    if color is None:
        isatty = getattr(out, "isatty", None)
        color = bool(isatty and isatty())
    renderer = Renderer(out, Paint(color), raw)

    def show(path: Path) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CassetteWarning)
            cassette = load(path)
        for warning in caught:
            err.write(f"llm-vcr: warning: {warning.message}\n")
        renderer.cassette(str(path), cassette)

    return for_each_cassette(paths, show, print_problems(err), writes=False).status
