"""`llm-vcr fmt`: rewrite cassettes in canonical form (what `cassette.dumps` writes for them).

Pure Python (no mitmproxy). Each file is loaded and dumped in its own Style; a file whose bytes
would change is replaced atomically (temp file in the same folder, fsync, rename), the others are
not touched. With `check`, nothing is written: the files that would change are listed, like
`black --check`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from . import cassette


def _cassette_files(paths: Sequence[str], err: TextIO) -> Iterator[Path | None]:
    """The files to format: each file named, and every `*.yaml` under each folder named (sorted).
    Yields None for a path that does not exist, after printing why."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.yaml") if p.is_file())
        elif path.exists():
            yield path
        else:
            print(f"{name}: no such file or folder", file=err)
            yield None


def _replace_atomically(path: Path, data: bytes) -> None:
    """Write `data` over `path` through a hidden temp file in the same folder, keeping the mode."""
    mode = stat.S_IMODE(path.stat().st_mode)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


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
    failed = changed = False
    for path in _cassette_files(paths, err):
        if path is None:
            failed = True
            continue
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
            _replace_atomically(path, canonical)
        except OSError as e:
            print(f"{path}: cannot write the cassette: {e.strerror or e}", file=err)
            failed = True
            continue
        print(f"reformatted {path}", file=out)
    return 1 if failed or (check and changed) else 0
