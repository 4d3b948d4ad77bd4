"""`llm-vcr fmt`: rewrite cassettes in canonical form (what `cassette.dumps` writes for them).

Pure Python (no mitmproxy). Each file is loaded and dumped in its own Style; a file whose bytes
would change is replaced atomically (temp file in the same folder, fsync, rename), the others are
not touched. With `check`, nothing is written: the files that would change are listed, like
`black --check`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from . import cassette
from .paths import cassette_files
from .store import write_atomically


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
        try:
            data = path.read_bytes()
            canonical = cassette.dumps(cassette.loads(data, str(path)))
        except cassette.CassetteError as e:
            print(e, file=err)
            failed = True
            continue
        except OSError as e:
            print(f"{path}: cannot read the cassette: {e.strerror or e}", file=err)
            failed = True
            continue
        if canonical == data:
            continue
        changed = True
        if check:
            print(path, file=out)
            continue
        try:
            write_atomically(path, [canonical], mode_from=True)
        except OSError as e:
            print(f"{path}: cannot write the cassette: {e.strerror or e}", file=err)
            failed = True
            continue
        print(f"reformatted {path}", file=out)
    return 1 if failed or (check and changed) else 0
