"""Cassette files on disk: names, lazy loading, reload on change, atomic and locked appends.

Pure Python (no mitmproxy). One `CassetteStore` serves one cassette folder (`vcr_dir`). Several
threads of one process and several processes (proxies, test runners) may share a folder:

- Reads never lock. Every write goes to a hidden temp file in the cassette's own folder
  (`.<name>.yaml.<pid>.tmp`), is fsynced and renamed over the cassette, so a reader (or a process
  killed at any moment) sees the old file or the new one, never half of one.
- Writes take a per-cassette `flock` on `<root>/.llm-vcr/locks/<sha1>.lock` and re-read the file
  under it, so appends from several processes all land. The kernel drops the lock when its process
  dies: there are no stale locks. `.llm-vcr/` is private state; the store puts a `.gitignore` in it
  so git leaves it alone (adding `.llm-vcr/` to the project's own `.gitignore` does the same).
- An append never re-serializes what the file already holds: the new interactions' YAML is added
  after the existing bytes, in the file's own layout, so a go-vcr file keeps its exact bytes.

POSIX only (`fcntl`), like mitmproxy's usual homes (Linux, macOS).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from . import cassette
from .cassette import Cassette, CassetteError, Interaction, Style

SUFFIX = ".yaml"
STATE_DIR = ".llm-vcr"  # private state under the root: lock files (git-ignored by its own file)
STALE_TEMP_AGE_NS = 3600 * 1_000_000_000  # a temp file untouched this long is abandoned whatever
# The longest name segment: its temp file `.<segment>.yaml.<pid>.tmp` must fit in NAME_MAX (255).
MAX_SEGMENT_BYTES = 200

_TEMP_NAME = re.compile(r"\.(?P<file>.+\.yaml)\.(?P<pid>[0-9]{1,10})\.tmp")
# A line at column 0 that is not an entry of a compact (indent 2) `interactions:` sequence.
_NOT_COMPACT_ENTRY = re.compile(rb"^(?!- | |\n|\Z)", re.MULTILINE)
# A line at column 0 at all (entries of an indented sequence never start there).
_AT_COLUMN_ZERO = re.compile(rb"^(?! |\n|\Z)", re.MULTILINE)
_INTERACTIONS_KEY = b"interactions:\n"

FileKey = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino): "has this file changed?"


class CassetteNameError(ValueError):
    """A cassette name that cannot name a file inside the cassette folder."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid cassette name {name!r}: {reason}")


def validate_name(name: str) -> str:
    """The cassette name without a trailing `.yaml`; raises CassetteNameError when it is unsafe.

    A name is a relative path of `/`-separated segments (nested folders are fine). Rejected: an
    empty name, an absolute one, `..`, an empty segment (`a//b`, a trailing `/`), a segment that
    starts with `.` (hidden files are the store's own: temp files, `.llm-vcr/`), a backslash, NUL
    or any other control character, and a segment too long for a file name.
    """
    if not isinstance(name, str):
        raise CassetteNameError(repr(name), "a cassette name must be a string")
    bare = name.removesuffix(SUFFIX)
    if not bare:
        raise CassetteNameError(name, "the name is empty")
    if "\x00" in bare:
        raise CassetteNameError(name, "NUL is not allowed")
    if any(unicodedata.category(ch) == "Cc" for ch in bare):
        raise CassetteNameError(name, "control characters are not allowed")
    if "\\" in bare:
        raise CassetteNameError(name, "'\\' is not allowed (use '/' for folders)")
    if bare.startswith("/"):
        raise CassetteNameError(name, "an absolute path is not allowed")
    for segment in bare.split("/"):
        if segment == "..":
            raise CassetteNameError(name, "'..' is not allowed")
        if not segment:
            raise CassetteNameError(name, "an empty path segment is not allowed")
        if segment.startswith("."):
            raise CassetteNameError(name, "a segment starting with '.' is not allowed")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise CassetteNameError(name, f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return bare


@dataclass(slots=True)
class _Loaded:
    """The parse of one version of a file: the cassette, or the error it raised."""

    key: FileKey
    cassette: Cassette | None
    error: CassetteError | None


@dataclass(slots=True)
class _Shape:
    """What an append needs to know of a file (its layout, its size) without parsing it again."""

    key: FileKey
    style: Style
    count: int


class CassetteStore:
    """The cassette files under `root`.

    Loads are lazy and cached per file version; appends are blocking (run them in a thread) and
    safe against other threads and processes. The cassettes that `load` returns are shared between
    callers: treat them as read-only (an append makes a new Cassette and leaves old ones alone).
    """

    def __init__(self, root: Path | str, started_at: float | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.started_at = time.time() if started_at is None else started_at
        self._started_ns = round(self.started_at * 1_000_000_000)
        self._root_prefix = str(self.root).rstrip(os.sep) + os.sep
        self._lock = threading.Lock()  # guards every dict and set below
        self._loaded: dict[Path, _Loaded] = {}
        self._shapes: dict[Path, _Shape] = {}
        self._first_is_new: dict[Path, bool] = {}
        self._written: set[Path] = set()  # files this store wrote (its own writes are never old)
        self._write_locks: dict[Path, threading.Lock] = {}
        self._paths: dict[str, Path] = {}  # path_for's answers (realpath costs a stat per part)
        self._remove_stale_temp_files()

    # names and paths

    def path_for(self, name: str) -> Path:
        """The cassette's file (symbolic links resolved); CassetteNameError for a bad name or one
        that resolves outside the root."""
        known = self._paths.get(name)
        if known is not None:
            return known
        bare = validate_name(name)
        path = os.path.realpath(os.path.join(self.root, bare + SUFFIX))
        if not path.startswith(self._root_prefix):
            raise CassetteNameError(name, f"it resolves outside the cassette folder {self.root}")
        self._paths[name] = result = Path(path)
        return result

    def cached(self, name: str) -> Cassette | None:
        """The cassette `load` would return, when that needs no parse: its file is unchanged
        since it was last parsed (one stat, no read). None: missing, never loaded or changed."""
        path = self.path_for(name)
        try:
            key = _key(os.stat(path))
        except OSError:
            return None
        with self._lock:
            known = self._loaded.get(path)
        if known is None or known.key != key:
            return None
        return known.cassette

    # reading

    def load(self, name: str) -> Cassette | None:
        """The cassette, or None when its file does not exist.

        Parsed on first use and cached; parsed again only when the file changed on disk (mtime,
        size or inode), so a `git pull` is seen on the next call. A broken file raises
        CassetteError, and keeps raising the same error without being parsed again until it
        changes.
        """
        path = self.path_for(name)
        try:
            key = _key(os.stat(path))
        except (FileNotFoundError, NotADirectoryError):
            with self._lock:
                self._loaded.pop(path, None)
            return None
        except OSError as e:
            raise CassetteError(_os_message(e), str(path)) from e
        with self._lock:
            known = self._loaded.get(path)
        if known is None or known.key != key:
            known = self._parse_file(path)
            if known is None:
                return None
        if known.error is not None:
            raise _fresh(known.error)
        return known.cassette

    def _parse_file(self, path: Path) -> _Loaded | None:
        """Read and parse the file, caching the outcome under the version actually read."""
        try:
            key, data = _read(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise CassetteError(_os_message(e), str(path)) from e
        return self._parse_bytes(path, key, data)

    def _parse_bytes(self, path: Path, key: FileKey, data: bytes) -> _Loaded:
        try:
            loaded = _Loaded(key, cassette.loads(data, str(path)), None)
        except CassetteError as e:
            loaded = _Loaded(key, None, e)
        with self._lock:
            self._loaded[path] = loaded
        return loaded

    def is_new(self, name: str) -> bool:
        """Whether this store treats the cassette as new (for modes `record` and `record_once`).

        New = its file did not exist when this store first asked, or it was written after this
        store started (mtime >= started_at). The first answer is kept for the store's life, so a
        cassette that someone else changes meanwhile does not turn new halfway through a run; a
        file found missing later makes the cassette new from then on.
        """
        path = self.path_for(name)
        with self._lock:
            known = self._first_is_new.get(path)
        if known is True:
            return True
        try:
            mtime_ns: int | None = os.stat(path).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            mtime_ns = None
        return self._remember_is_new(path, mtime_ns)

    def _remember_is_new(self, path: Path, mtime_ns: int | None) -> bool:
        """Record the first is_new answer for `path` (or a missing file) and return the kept one."""
        answer = mtime_ns is None or mtime_ns >= self._started_ns
        with self._lock:
            if mtime_ns is None:
                self._first_is_new[path] = True
            return self._first_is_new.setdefault(path, answer)

    # writing

    def append(self, name: str, items: Sequence[Interaction], replace_old: bool = False) -> None:
        """Add `items` at the end of the cassette, creating it (and its folders) when missing.

        Blocking: call it from a worker thread. Holds the cassette's cross-process lock, re-reads
        the file under it and writes existing bytes + the new interactions' YAML (in the file's
        layout, ids continuing) to a temp file, fsyncs it and renames it over the cassette. With
        `replace_old` (mode `record`) a file last written before this store started, and not by
        this store, is started afresh instead. Raises CassetteError, leaving the file as it is,
        when the existing file is broken or laid out so that it cannot be extended by appending.
        Nothing to add: nothing is written.
        """
        path = self.path_for(name)
        items = list(items)
        if not items:
            return
        with self._write_lock(path), self._file_lock(path):
            self._append_locked(path, items, replace_old)

    def _append_locked(self, path: Path, items: list[Interaction], replace_old: bool) -> None:
        try:
            old_key: FileKey | None
            old_key, data = _read(path)
        except FileNotFoundError:
            old_key, data = None, b""
        except OSError as e:
            raise CassetteError(_os_message(e), str(path)) from e
        with self._lock:
            ours = path in self._written
        self._remember_is_new(path, None if old_key is None else old_key[0])

        fresh = old_key is None or (replace_old and old_key[0] < self._started_ns and not ours)
        if fresh:
            style, count = cassette.NEW_FILE_STYLE, 0
            data = cassette.dumps(Cassette([], style))
        else:
            assert old_key is not None
            shape = self._shape_of(path, old_key, data)
            style, count = shape.style, shape.count
        added = cassette.dump_interactions(items, style, count)
        new_key = write_atomically(path, (_open_list(data), added), mode_from=not fresh)

        with self._lock:
            self._written.add(path)
            self._shapes[path] = _Shape(new_key, style, count + len(items))
        self._extend_loaded(path, None if fresh else old_key, new_key, style, added)

    def _shape_of(self, path: Path, key: FileKey, data: bytes) -> _Shape:
        """Layout and interaction count of the file's bytes `data`: from the cache when the file
        is the one this store last wrote or loaded, else by parsing it (and checking that
        appending to its bytes is safe)."""
        with self._lock:
            shape = self._shapes.get(path)
            loaded = self._loaded.get(path)
        if shape is not None and shape.key == key:
            return shape
        if loaded is None or loaded.key != key:
            loaded = self._parse_bytes(path, key, data)
        if loaded.error is not None:
            raise _fresh(loaded.error)
        assert loaded.cassette is not None
        style, count = loaded.cassette.style, len(loaded.cassette.interactions)
        reason = _why_not_appendable(data, style, count)
        if reason:
            raise CassetteError(
                f"cannot add interactions to this file: {reason}; "
                "re-save it in go-vcr's layout (llm-vcr fmt) first",
                str(path),
            )
        shape = _Shape(key, style, count)
        with self._lock:
            self._shapes[path] = shape
        return shape

    def _extend_loaded(
        self,
        path: Path,
        old_key: FileKey | None,
        new_key: FileKey,
        style: Style,
        added: bytes,
    ) -> None:
        """Keep the load cache current without parsing the whole file again: parse only the
        interactions just written (`added`) and put them after the cached ones in a new Cassette.
        `old_key` None: the file was started afresh and holds only the added ones."""
        with self._lock:
            before = self._loaded.pop(path, None)
        if before is None or before.cassette is None or (
            old_key is not None and before.key != old_key
        ):
            # Nothing current to extend (a file only ever written, as in mode `record`, is never
            # kept in memory): the next load parses the file.
            return
        try:
            parsed = cassette.loads(_open_list(cassette.dumps(Cassette([], style))) + added)
        except CassetteError:
            return  # the next load reports it, with the whole file's line numbers
        if before is not None and before.cassette is not None and old_key is not None:
            result = Cassette(before.cassette.interactions + parsed.interactions, style)
        else:
            result = Cassette(parsed.interactions, style)
        with self._lock:
            self._loaded[path] = _Loaded(new_key, result, None)

    @contextmanager
    def _write_lock(self, path: Path) -> Iterator[None]:
        """This process's lock on one cassette (the file lock alone would make threads spin on
        open lock files; this keeps them queued in memory)."""
        with self._lock:
            lock = self._write_locks.setdefault(path, threading.Lock())
        with lock:
            yield

    @contextmanager
    def _file_lock(self, path: Path) -> Iterator[None]:
        """The cross-process lock on one cassette, released when the block ends or the process
        dies."""
        lock_path = self._lock_path(path)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            self._make_state_dir()
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _lock_path(self, path: Path) -> Path:
        relative = path.relative_to(self.root).as_posix()
        digest = hashlib.sha1(relative.encode(), usedforsecurity=False).hexdigest()
        return self.root / STATE_DIR / "locks" / f"{digest}.lock"

    def _make_state_dir(self) -> None:
        state = self.root / STATE_DIR
        (state / "locks").mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(state / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as f:
            f.write(b"# llm-vcr's lock files: private state, never committed.\n*\n")

    # start-up

    def _remove_stale_temp_files(self) -> None:
        """Remove temp files that no write will finish: their process is gone, nobody holds
        their cassette's lock, or they are older than an hour. Walks names only (no stat of
        cassettes, no parsing); hidden folders (`.git`, `.llm-vcr`) hold no cassettes."""
        folders = [str(self.root)]
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
                        self._remove_if_stale(
                            entry, Path(folder) / match["file"], int(match["pid"])
                        )

    def _remove_if_stale(self, entry: os.DirEntry[str], cassette_path: Path, pid: int) -> None:
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
        try:
            fd = os.open(self._lock_path(cassette_path), os.O_RDONLY | os.O_CLOEXEC)
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


def _key(st: os.stat_result) -> FileKey:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read(path: Path) -> tuple[FileKey, bytes]:
    """The file's bytes and the version key of exactly those bytes."""
    with open(path, "rb") as f:
        key = _key(os.fstat(f.fileno()))
        return key, f.read()


def _fresh(error: CassetteError) -> CassetteError:
    """A new exception with the cached one's text (raising one object again and again would
    grow its traceback with every request)."""
    return type(error)(error.message, error.path, error.line)


def _os_message(e: OSError) -> str:
    return e.strerror or str(e)


def _open_list(data: bytes) -> bytes:
    """A cassette's bytes ready for entries to follow: `interactions: []` becomes the key of the
    block list that the entries make."""
    empty = cassette.EMPTY_INTERACTIONS_LINE
    if data.endswith(empty):
        return data[: -len(empty)] + _INTERACTIONS_KEY
    return data


def _why_not_appendable(data: bytes, style: Style, count: int) -> str | None:
    """Why adding entries after `data` would not give the same cassette plus those entries (a
    layout go-vcr does not write), or None when it would."""
    if not data.endswith(b"\n"):
        return "it does not end with a line break"
    if count == 0:
        empty = cassette.EMPTY_INTERACTIONS_LINE
        if data.endswith(b"\n" + empty) or data == empty:
            return None
        if data.endswith(b"\n" + _INTERACTIONS_KEY):
            return None
        return "it does not end with its empty `interactions` list"
    start = data.rfind(b"\n" + _INTERACTIONS_KEY)
    if start < 0:
        return "`interactions:` is not followed by a block list at the end of the file"
    tail = memoryview(data)[start + 1 + len(_INTERACTIONS_KEY) :]
    if style.indent == 2:
        ok = tail[:2] == b"- " and not _NOT_COMPACT_ENTRY.search(tail)
    else:
        entry = b" " * style.indent + b"- "
        ok = tail[: len(entry)] == entry and not _AT_COLUMN_ZERO.search(tail)
    if ok:
        return None
    return (
        "`interactions` is not the last key, or its list is not laid out as go-vcr writes it "
        f"(indent {style.indent})"
    )


def write_atomically(path: Path, parts: Sequence[bytes], mode_from: bool) -> FileKey:
    """Replace `path` with `parts` through a fsynced hidden temp file; the new file's key.

    `mode_from`: keep the permission bits of the file being replaced.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{path.name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            for part in parts:
                f.write(part)
        if mode_from:
            with suppress(FileNotFoundError):
                os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        os.fsync(fd)
        key = _key(os.fstat(fd))  # renaming changes neither mtime, size nor inode
        os.close(fd)
        fd = -1
        os.replace(temp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink_quietly(temp)
        raise
    _fsync_folder(folder)
    return key


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):  # file systems without directory fsync
            raise
    finally:
        os.close(fd)


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
