"""The store's temp files: a write through a temp file (`.<name>.yaml.<pid>.tmp`, renamed over
the cassette) that a killed process never finished leaves one behind; a store removes those at
start. Pure Python (no mitmproxy)."""

from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import suppress
from pathlib import Path

from .locking import lock_file

STALE_TEMP_AGE_NS = 3600 * 1_000_000_000  # a temp file untouched this long is abandoned whatever
_TEMP_NAME = re.compile(r"\.(?P<file>.+\.yaml)\.(?P<pid>[0-9]{1,10})\.tmp")


def remove_stale_temp_files(root: Path) -> None:
    """Remove temp files that no write will finish: their process is gone, nobody holds
    their cassette's lock, or they are older than an hour. Walks names only (no stat of
    cassettes, no parsing); hidden folders (`.git`, `.llm-vcr`) hold no cassettes."""
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.startswith("."):
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    continue
                match = _TEMP_NAME.fullmatch(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    _remove_if_stale(
                        root, entry, Path(folder) / match["file"], int(match["pid"])
                    )

def _remove_if_stale(
    root: Path, entry: os.DirEntry[str], cassette_path: Path, pid: int
) -> None:
    """Remove one temp file unless a write may still be making it.

    A write in flight always holds its cassette's lock, so a free lock means an abandoned
    file; this holds even when the pid in the name is alive by reuse (a restarted container)
    or is this very process, and when the writer runs in another pid namespace.
    """
    try:
        age_ns = time.time_ns() - entry.stat(follow_symlinks=False).st_mtime_ns
    except OSError:
        return
    if age_ns > STALE_TEMP_AGE_NS:
        _unlink_quietly(entry.path)
        return
    relative = cassette_path.relative_to(root).as_posix()
    try:
        fd = os.open(lock_file(root, relative), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        _unlink_quietly(entry.path)  # no lock file: no write ever ran here under this root
        return
    except OSError:
        if not process_alive(pid):  # the lock cannot be checked: fall back on the pid
            _unlink_quietly(entry.path)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return  # held: a write is in flight
    try:
        _unlink_quietly(entry.path)  # under the lock: no new write can make this name now
    finally:
        os.close(fd)  # releases the lock


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or another user's)."""
    if pid <= 0:
        return False  # 0 and negatives would address process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    except (OverflowError, OSError):
        return False
    return True


def _unlink_quietly(path: str | Path) -> None:
    with suppress(OSError):
        os.unlink(path)
