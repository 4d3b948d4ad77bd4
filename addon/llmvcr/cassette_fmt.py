"""`llm-vcr fmt`: rewrite cassettes in canonical form (what `cassette.dumps` writes for them).

Pure Python (no mitmproxy). Each file is loaded and dumped in its own Style; a file whose bytes
would change is replaced atomically (temp file in the same folder, fsync, rename), the others are
not touched. The read, the dump and the rename happen under the file's lock
(`locking.rewrite_cassette`): a proxy appending to the same file waits its turn, and its
interactions land before or after the rewrite, never lost. With `check`, nothing is written (and
nothing locked: renames make every read whole): the files that would change are listed, like
`black --check`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import cassette
from .locking import rewrite_cassette
from .paths import cassette_files


def fmt_paths(
    paths: Sequence[str],
    check: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Format the cassettes at `paths` (files, and folders searched recursively for `*.yaml`).

    Rewrites each file whose canonical bytes differ and prints `reformatted PATH` for it; with
    `check` it writes nothing and prints each such PATH instead. A file that cannot be read or
    parsed gets its CassetteError message on `err` (no traceback). Exit code: 1 when a file could
    not be handled, or (with `check`) when a file would change; else 0.
    """
    files, missing = cassette_files(paths)
    for name in missing:
        print(f"{name}: no such file or folder", file=err)
    failed, changed = bool(missing), False
    for path in files:
        if check:
            try:
                data = path.read_bytes()
                would_change = _canonical(path, data) is not None
            except cassette.CassetteError as e:
                print(e, file=err)
                failed = True
                continue
            except OSError as e:
                print(f"{path}: cannot read the cassette: {e.strerror or e}", file=err)
                failed = True
                continue
            if would_change:
                changed = True
                print(path, file=out)
            continue
        try:
            rewritten = rewrite_cassette(path, lambda data, path=path: _canonical(path, data))
        except cassette.CassetteError as e:
            print(e, file=err)
            failed = True
            continue
        except OSError as e:
            print(f"{path}: cannot rewrite the cassette: {e.strerror or e}", file=err)
            failed = True
            continue
        if rewritten:
            print(f"reformatted {path}", file=out)
    return 1 if failed or (check and changed) else 0


def _canonical(path: Path, data: bytes) -> bytes | None:
    """The canonical bytes of the cassette `data` (read from `path`), or None when they are
    `data` already. Raises CassetteError for a file that does not load."""
    canonical = cassette.dumps(cassette.loads(data, str(path)))
    return None if canonical == data else canonical
