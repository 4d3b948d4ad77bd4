"""`llm-vcr fmt`: rewrite cassettes in canonical form (what `cassette.dumps` writes for them).

Each file is loaded and dumped in its own Style; a file whose bytes would change is replaced
atomically (temp file in the same folder, fsync, rename), the others are not touched. The read,
the dump and the rename happen under the file's lock (`locking.rewrite_cassette`): a proxy
appending to the same file waits its turn, and its interactions land before or after the
rewrite, never lost. With `check`, nothing is written (and nothing locked: renames make every
read whole): the files that would change are listed, like `black --check`.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .. import cassette
from ..locking import rewrite_cassette
from .files import for_each_cassette, print_problems


def fmt_paths(
    paths: Sequence[str],
    check: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Format the cassettes at `paths` (files, and folders searched recursively for `*.yaml`).

    Rewrites each file whose canonical bytes differ and prints `reformatted PATH` for it; with
    `check` it writes nothing and prints each such PATH instead. A missing path or a file that
    cannot be read, parsed or written is reported on `err` (`commands.files`' wording, no
    traceback). Exit code: 1 when a path is missing or a file could not be handled, or (with
    `check`) when a file would change; else 0.
    """
    changed = False

    def would_change(path: Path) -> None:
        nonlocal changed
        if _canonical(path, path.read_bytes()) is not None:
            changed = True
            print(path, file=out)

    def rewrite(path: Path) -> None:
        if rewrite_cassette(path, lambda data: _canonical(path, data)):
            print(f"reformatted {path}", file=out)

    outcome = for_each_cassette(paths, would_change if check else rewrite, print_problems(err),
                                writes=not check)
    return 1 if outcome.status or (check and changed) else 0


def _canonical(path: Path, data: bytes) -> bytes | None:
    """The canonical bytes of the cassette `data` (read from `path`), or None when they are
    `data` already. Raises CassetteError for a file that does not load."""
    canonical = cassette.dumps(cassette.loads(data, str(path)))
    return None if canonical == data else canonical
