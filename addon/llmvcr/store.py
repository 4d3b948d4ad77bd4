"""Cassette files on disk: names, lazy loading, loads that follow appends, locked appends.

Pure Python (no mitmproxy). One `CassetteStore` serves one cassette folder (`vcr_dir`, its root).
Several threads of one process and several processes (proxies, test runners, the `llm-vcr` tools)
may share a folder:

- Every write holds the cassette's lock (`locking.lock_cassette`, the one the `llm-vcr` tools
  take too: a `flock` on `<root>/.llm-vcr/locks/<sha1>.lock`), so appends from several processes
  and the tools' rewrites all land, none doubled or interleaved. A store makes `<root>/.llm-vcr/`
  (git-ignored by its own file) as soon as it is constructed, so tools beside a proxy find it.
- An append never re-serializes what the file holds: the new interactions' YAML goes after the
  existing bytes, in the file's own layout (a go-vcr file keeps its exact bytes), written in place
  and fsynced, at a cost that does not depend on the file's size. The layout and the next id come
  from the file's last bytes (`cassette.tail_ending`), or from one parse when those do not say.
  A new file, or `interactions: []` to open, is written whole through a temp file and a rename.
- Crash safety (`inplace`): while an append is written, its record sits in the lock file; a
  writer killed mid-append leaves a torn tail that every reader here leaves out, that the next
  locked write cuts off, and that a store cuts off when it is constructed.
- Reads take no lock (a seqlock on the lock file's record). A file that only grew since the
  version cached (same inode, the same bytes at the known end) is read from the known end, and
  the new Cassette begins with the very same Interaction objects (`appended_since`); loads of one
  changed file are single-flight.
- Names never reach outside the root. A name is resolved (symbolic links followed) and checked to
  lie beneath the root at every open, and the file is then opened folder by folder from the root
  without following links (`paths.open_folder_beneath`): a folder swapped for a link after its
  first use cannot redirect a read or a write. Links that stay inside the root are followed; one
  leading outside, a link loop, or a name longer than the file system allows (a segment over its
  NAME_MAX, the whole path over PATH_MAX) raises CassetteNameError, never a bare OSError.

POSIX only (`fcntl`, `dir_fd`), like mitmproxy's usual homes (Linux, macOS).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from . import cassette
from .cassette import Cassette, CassetteError, Ending, Interaction
from .cassette_names import (
    MAX_SEGMENT_BYTES,
    SUFFIX,
    CassetteNameError,
    file_path,
    name_limits,
    validate_name,
)
from .inplace import pread_all, read_committed
from .locking import (
    ATTEMPTS,
    READ_FLAGS,
    CassetteChangedError,
    FileKey,
    LockedCassette,
    file_key,
    lock_cassette,
    lock_file,
    make_state_dir,
    repair_torn_tails,
)
from .paths import LinkInPath, open_folder_beneath
from .tempfiles import process_alive, remove_stale_temp_files

# The naming rules live in `cassette_names`; their names are re-exported here, where callers
# have always imported them.
__all__ = [
    "MAX_SEGMENT_BYTES",
    "SUFFIX",
    "CassetteNameError",
    "CassetteStore",
    "process_alive",
    "validate_name",
]

# The bytes at the end of a loaded version whose digest tells, with the inode and the size,
# that a later version only added bytes after them (appends never rewrite what a file holds).
KNOWN_TAIL_BYTES = 4096


@dataclass(slots=True)
class _Loaded:
    """The parse of one version of a file: the cassette, or the error it raised; `size` bytes
    were parsed (the file's size, less a half-written append's), ending with bytes whose digest
    is `tail` (see `_extension`)."""

    key: FileKey
    cassette: Cassette | None
    error: CassetteError | None
    size: int = 0
    tail: bytes = b""


@dataclass(slots=True)
class _Shape:
    """What an append needs to know of one version of a file, learnt without parsing it."""

    key: FileKey
    ending: Ending


class CassetteStore:
    """The cassette files under `root`.

    Loads are lazy and cached per file version; appends are blocking (run them in a thread) and
    safe against other threads and processes. The cassettes that `load` returns are shared between
    callers: treat them as read-only (an append makes a new Cassette and leaves old ones alone).
    Constructing a store makes the root and its `.llm-vcr/` (quietly skipped when the folder
    cannot be written: a read-only store still serves replays).
    """

    def __init__(self, root: Path | str, started_at: float | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.started_at = time.time() if started_at is None else started_at
        self._started_ns = round(self.started_at * 1_000_000_000)
        self._root_prefix = str(self.root).rstrip(os.sep) + os.sep
        self._lock = threading.Lock()  # guards every dict and set below
        # By the name's path joined to the root (what `cached` stats without resolving links):
        self._lexical: dict[str, Path] = {}  # names checked, joined (no file system call)
        self._loaded: dict[Path, _Loaded] = {}
        self._first_is_new: dict[Path, bool] = {}
        # By the file's real path (what appends resolve under the lock):
        self._shapes: dict[Path, _Shape] = {}
        self._written: set[Path] = set()  # files this store wrote (its own writes are never old)
        self._write_locks: dict[Path, threading.Lock] = {}
        self._load_locks: dict[Path, threading.Lock] = {}
        with suppress(OSError):
            make_state_dir(self.root)  # so tools beside this store find it (and its locks)
        self._limits = name_limits(self.root)
        remove_stale_temp_files(self.root)
        # appends a killed writer left half written are cut off, so go-vcr sees whole files
        repair_torn_tails(self.root)

    # names and paths

    def _joined(self, name: str) -> Path:
        """The name checked and joined to the root, links not resolved (cached: no file system
        call). CassetteNameError for a bad name or one too long for this file system."""
        known = self._lexical.get(name)
        if known is not None:
            return known
        path = file_path(self.root, name, self._limits)
        with self._lock:
            self._lexical[name] = result = Path(path)
        return result

    def _resolve(self, name: str) -> Path:
        """The cassette's real path, resolved now (links followed) and checked beneath the root."""
        real = os.path.realpath(self._joined(name))
        if not real.startswith(self._root_prefix):
            raise CassetteNameError(name, f"it resolves outside the cassette folder {self.root}")
        return Path(real)

    def path_for(self, name: str) -> Path:
        """The cassette's file (symbolic links resolved, now); CassetteNameError for a bad name or
        one that resolves outside the root."""
        return self._resolve(name)

    def names(self) -> list[str]:
        """Every cassette name in the store, sorted, without `.yaml`: the `*.yaml` files beneath
        the root whose path is a valid name (hidden files and folders, such as temp files,
        `.llm-vcr/` and `.git/`, hold none). Folders reached through a symbolic link are not
        entered (they would list files twice, or files outside); a linked file is listed when it
        resolves beneath the root."""
        found: list[str] = []
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                entries = os.scandir(os.path.join(self.root, folder))
            except OSError:
                continue
            with entries:
                for entry in entries:
                    relative = f"{folder}{entry.name}"
                    with suppress(OSError):
                        if entry.is_dir(follow_symlinks=False):
                            if not entry.name.startswith("."):
                                folders.append(relative + "/")
                        elif entry.name.endswith(SUFFIX) and entry.is_file():
                            found.append(relative)
        names = []
        for relative in found:
            try:
                self._resolve(relative)
            except CassetteNameError:
                continue
            names.append(relative.removesuffix(SUFFIX))
        return sorted(names)

    def _name_error(self, name: str, path: Path, e: OSError) -> Exception:
        """What an OSError of opening `name` becomes: CassetteNameError when the name is at
        fault (too long, a link loop), else CassetteError naming the file."""
        if e.errno == errno.ENAMETOOLONG:
            return CassetteNameError(name, "the name is longer than the file system allows")
        if e.errno == errno.ELOOP:
            return CassetteNameError(name, "a symbolic link on its path loops")
        return CassetteError(_os_message(e), str(path))

    def _links_keep_changing(self, name: str) -> CassetteNameError:
        return CassetteNameError(
            name, "a symbolic link on its path loops, or keeps changing while it is opened"
        )

    def cached(self, name: str) -> Cassette | None:
        """The cassette `load` would return, when that needs no parse: its file is unchanged
        since it was last parsed (one stat, no read). None: missing, never loaded or changed.

        The stat follows links without checking them: a key (inode, device, mtime, size) equal
        to the one `load` read beneath the root is that same file, so nothing outside is read."""
        path = self._joined(name)
        try:
            key = file_key(os.stat(path))
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

        Parsed on first use and cached; read again only when the file changed on disk (mtime,
        size, inode), so a `git pull` is seen on the next call. A file that only grew by appends
        since the version cached (same inode, the bytes at the cached end unchanged) is read from
        there: the new Cassette's `interactions` begins with the very same Interaction objects
        (`appended_since` tells the caller). Single flight: threads loading the same changed file
        wait for one parse. An append left half written by a killed writer is left out (the
        next write, or a store's start, cuts it off). A broken file raises CassetteError, and
        keeps raising the same error without being parsed again until it changes. Every call
        resolves the name anew and opens the file beneath the root.
        """
        path = self._joined(name)
        opened = self._open_for_reading(name)
        if opened is None:
            with self._lock:
                self._loaded.pop(path, None)
            return None
        real, fd = opened
        try:
            key = file_key(os.fstat(fd))
            with self._lock:
                known = self._loaded.get(path)
            if known is None or known.key != key:
                with self._load_lock(path):  # one parse, whoever else waits for this file
                    with self._lock:
                        known = self._loaded.get(path)
                    if known is None or known.key != key:
                        known = self._read(path, real, fd, known)
        finally:
            os.close(fd)
        if known.error is not None:
            raise _fresh(known.error)
        return known.cassette

    def appended_since(self, old: Cassette, new: Cassette) -> list[Interaction] | None:
        """The interactions `new` holds after those of `old`, when `new` (a cassette this store
        returned) extends `old`: its `interactions` begins with the very same objects, as after
        appends (this store's, or another process's). None: not an extension; rebuild from
        `new`. Constant time: the store only ever builds an extension by adding to the list of
        the version before, so the first and last of `old`'s objects at their places prove it."""
        if new is old:
            return []
        before, after = old.interactions, new.interactions
        if len(after) < len(before) or (
            before and (after[0] is not before[0] or after[len(before) - 1] is not before[-1])
        ):
            return None
        return after[len(before) :]

    def _read(self, path: Path, real: Path, fd: int, known: _Loaded | None) -> _Loaded:
        """Read the version of the open file `fd`: only the bytes after `known`'s when it only
        grew since, else all of it; cache and return the parse."""
        relative = real.relative_to(self.root).as_posix()

        def read(st: os.stat_result, end: int) -> tuple[FileKey, int, tuple[bytes, bytes] | None,
                                                        bytes]:
            key = file_key(st)
            if known is not None and known.key == key:
                return key, end, None, b""
            grown = _grown(known, key, end, lambda offset, n: pread_all(fd, n, offset))
            return key, end, grown, pread_all(fd, end, 0) if grown is None else b""

        try:
            key, end, grown, data = read_committed(
                lock_file(self.root, relative), relative, fd, read
            )
        except OSError as e:
            raise CassetteError(_os_message(e), str(real)) from e
        if known is not None and known.key == key:
            return known
        if grown is not None:
            assert known is not None
            extended = _extended(known, key, end, *grown)
            if extended is not None:
                return self._keep(path, extended)
            return self._read(path, real, fd, None)  # not plain appends after all: read whole
        return self._keep(path, self._parse(real, key, data))

    def _parse(self, real: Path, key: FileKey, data: bytes) -> _Loaded:
        try:
            loaded = _Loaded(key, cassette.loads(data, str(real)), None)
        except CassetteError as e:
            loaded = _Loaded(key, None, e)
        loaded.size = len(data)
        loaded.tail = _digest(data[-KNOWN_TAIL_BYTES:])
        return loaded

    def _keep(self, path: Path, loaded: _Loaded) -> _Loaded:
        with self._lock:
            self._loaded[path] = loaded
        return loaded

    @contextmanager
    def _load_lock(self, path: Path) -> Iterator[None]:
        with self._lock:
            lock = self._load_locks.setdefault(path, threading.Lock())
        with lock:
            yield

    def _open_for_reading(self, name: str) -> tuple[Path, int] | None:
        """The real path and an open descriptor of the cassette's regular file, reached beneath
        the root without following links; None when it does not exist."""
        for _ in range(ATTEMPTS):
            real = self._resolve(name)
            parts = real.relative_to(self.root).parts
            try:
                folder = open_folder_beneath(self.root, parts[:-1], create=False)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except LinkInPath:
                continue  # a folder became a link since `_resolve`: resolve again
            except OSError as e:
                raise self._name_error(name, real, e) from e
            try:
                fd = os.open(parts[-1], READ_FLAGS, dir_fd=folder)
            except FileNotFoundError:
                return None
            except OSError as e:
                if e.errno == errno.ELOOP:
                    continue
                raise self._name_error(name, real, e) from e
            finally:
                os.close(folder)
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                os.close(fd)
                raise CassetteError(
                    os.strerror(errno.EISDIR) if stat.S_ISDIR(mode) else "not a regular file",
                    str(real),
                )
            return real, fd
        raise self._links_keep_changing(name)

    def is_new(self, name: str) -> bool:
        """Whether this store treats the cassette as new (for modes `record` and `record_once`).

        New = its file did not exist when this store first asked, or it was written after this
        store started (mtime >= started_at). The first answer is kept for the store's life, so a
        cassette that someone else changes meanwhile does not turn new halfway through a run; a
        file found missing later makes the cassette new from then on. CassetteNameError on the
        first question for a name that resolves outside the root.
        """
        path = self._joined(name)
        with self._lock:
            known = self._first_is_new.get(path)
        if known is True:
            return True
        if known is None:
            # The first question (before a recording goes upstream): a name that leads outside
            # the root is refused now. Later ones stat only; reads and writes check every time.
            self._resolve(name)
        try:
            mtime_ns: int | None = os.stat(path).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            mtime_ns = None
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENAMETOOLONG):
                raise self._name_error(name, path, e) from e
            raise
        return self._remember_is_new(path, mtime_ns)

    def _remember_is_new(self, path: Path, mtime_ns: int | None) -> bool:
        """Record the first is_new answer for `path` (or a missing file) and return the kept one."""
        answer = mtime_ns is None or mtime_ns >= self._started_ns
        with self._lock:
            if mtime_ns is None:
                self._first_is_new[path] = True
            return self._first_is_new.setdefault(path, answer)

    # writing

    def append(
        self, name: str, items: Sequence[Interaction], replace_old: bool = False,
        afresh: bool = False,
    ) -> None:
        """Add `items` at the end of the cassette, creating it (and its folders) when missing.

        Blocking: call it from a worker thread. Under `lock_cassette` (the lock every writer of
        the file takes) it cuts off a torn tail a killed writer left, learns the file's layout
        and next id (from its last bytes), and writes the new interactions' YAML in place after
        the file's bytes (fsynced; a new file, or `interactions: []`, through a temp file and a
        rename). With `replace_old` (mode `record`) a file last written before this store
        started, and not by this store, is started afresh instead; with `afresh` (a session's
        first write in mode `record`) any existing file is. Raises CassetteError, leaving
        the file as it is, when the existing file is broken or laid out so that it cannot be
        extended by appending, CassetteNameError when the name leads outside the root. A file
        changed by a writer that ignores the lock is read and appended to again. Nothing to add:
        nothing is written.
        """
        path = self._joined(name)
        items = list(items)
        if not items:
            return
        for _ in range(ATTEMPTS):
            real = self._resolve(name)
            try:
                with (
                    self._write_lock(real),
                    lock_cassette(real, self.root, make_folders=True) as file,
                ):
                    self._append_locked(path, file, items, replace_old, afresh)
                return
            except (LinkInPath, CassetteChangedError):
                continue
            except OSError as e:
                if e.errno in (errno.ENAMETOOLONG, errno.ELOOP):
                    raise self._name_error(name, real, e) from e
                raise
        raise self._links_keep_changing(name)

    def _append_locked(
        self, path: Path, file: LockedCassette, items: list[Interaction], replace_old: bool,
        afresh: bool,
    ) -> None:
        real = file.path
        try:
            old_key = file.stat()  # cuts off an append a killed writer left half written
        except OSError as e:
            if e.errno in (errno.ENAMETOOLONG, errno.ELOOP):
                raise  # the name's fault: `append` says so
            raise CassetteError(_os_message(e), str(real)) from e
        with self._lock:
            ours = real in self._written
        self._remember_is_new(path, None if old_key is None else old_key[0])

        fresh = old_key is None or afresh or (
            replace_old and old_key[0] < self._started_ns and not ours
        )
        if fresh:
            ending = Ending(cassette.NEW_FILE_STYLE, 0)
            added = cassette.dump_interactions(items, ending.style, 0)
            new_key = file.replace((cassette.open_list(None), added), mode_from=not fresh)
            in_place = False
        else:
            assert old_key is not None
            ending, data = self._ending(path, file, old_key)
            added = cassette.dump_interactions(items, ending.style, ending.count)
            in_place = ending.in_place and file.can_append
            if in_place:
                new_key = file.append(added)  # in place: the cost of `added`, not of the file
            else:  # `interactions: []` to open, or no lock file to record the append in
                if data is None:
                    data = file.read()
                new_key = file.replace((cassette.open_list(data), added))
        with self._lock:
            self._written.add(real)
            self._shapes[real] = _Shape(new_key, Ending(ending.style, ending.count + len(items)))
        self._follow(path, file, new_key, in_place)

    def _ending(
        self, path: Path, file: LockedCassette, key: FileKey
    ) -> tuple[Ending, bytes | None]:
        """How to add entries to the file's version `key`: known from this store's last append,
        else read from the file's last bytes (the format package checks them), else from a parse
        of the whole file (then also its bytes), checked to be appendable."""
        real = file.path
        with self._lock:
            shape = self._shapes.get(real)
            loaded = self._loaded.get(path)
        if shape is not None and shape.key == key:
            return shape.ending, None
        if loaded is not None and loaded.key == key and loaded.error is not None:
            raise _fresh(loaded.error)
        found = cassette.tail_ending(file.read_tail, key[1])
        if found is not None:
            return found, None
        data = file.read()
        if loaded is None or loaded.key != key:
            loaded = self._keep(path, self._parse(real, key, data))
        if loaded.error is not None:
            raise _fresh(loaded.error)
        assert loaded.cassette is not None
        style, count = loaded.cassette.style, len(loaded.cassette.interactions)
        reason = cassette.appendable(data, style, count)
        if reason:
            raise CassetteError(
                f"cannot add interactions to this file: {reason}; "
                "re-save it in go-vcr's layout (llm-vcr fmt) first",
                str(real),
            )
        return cassette.ending(data, style, count), data

    def _follow(self, path: Path, file: LockedCassette, key: FileKey, in_place: bool) -> None:
        """Keep the load cache current after an append, without parsing the whole file again:
        when the file only grew since the cached version (by this append, and by others' since
        that version), parse the bytes after it and extend the cached Cassette. Otherwise (a
        file started afresh or rewritten, nothing cached) drop it: the next load reads it."""
        with self._lock:
            known = self._loaded.get(path)
        if known is None or known.key == key:  # nothing kept, or a load already read this
            return
        extended = None
        grown = _grown(known, key, key[1], file.read_at) if in_place else None
        if grown is not None:
            extended = _extended(known, key, key[1], *grown)
        with self._lock:
            if self._loaded.get(path) is known:
                if extended is None:
                    del self._loaded[path]
                else:
                    self._loaded[path] = extended


    @contextmanager
    def _write_lock(self, real: Path) -> Iterator[None]:
        """This process's lock on one cassette (the file lock alone would make threads spin on
        open lock files; this keeps them queued in memory)."""
        with self._lock:
            lock = self._write_locks.setdefault(real, threading.Lock())
        with lock:
            yield


def _fresh(error: CassetteError) -> CassetteError:
    """A new exception with the cached one's text (raising one object again and again would
    grow its traceback with every request)."""
    return type(error)(error.message, error.path, error.line)


def _os_message(e: OSError) -> str:
    return e.strerror or str(e)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _grown(
    known: _Loaded | None, key: FileKey, end: int, read_at: Callable[[int, int], bytes]
) -> tuple[bytes, bytes] | None:
    """The bytes a file gained since the version `known` was parsed from, and the digest of
    the new version's last bytes, when it only grew since (appends never rewrite a file's
    bytes): the same inode and device, at least as long, and the same bytes at the known end.
    Checked in constant time; None when it did not only grow (read it whole)."""
    if known is None or known.cassette is None or known.key[2:] != key[2:] or end < known.size:
        return None
    back = min(known.size, KNOWN_TAIL_BYTES)
    if _digest(read_at(known.size - back, back)) != known.tail:
        return None
    added = read_at(known.size, end - known.size)
    back = min(end, KNOWN_TAIL_BYTES)
    return added, _digest(read_at(end - back, back))


def _extended(known: _Loaded, key: FileKey, end: int, added: bytes, tail: bytes) -> _Loaded | None:
    """`known` extended by the interactions in `added` (bytes appended after it), or None when
    they are not plain appended entries (the caller reads the whole file)."""
    before = known.cassette
    assert before is not None
    new = cassette.read_extension(added, before.style)
    if new is None:
        return None
    if new:
        before = Cassette(before.interactions + new, before.style, before.extra)
    return _Loaded(key, before, None, end, tail)
