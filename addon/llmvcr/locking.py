"""The lock protocol of cassette files: one home for "hold a cassette for a read-modify-write".

Pure Python (no mitmproxy). Every writer of a cassette file (the proxy's appends through
`store.CassetteStore`, `llm-vcr fmt`, `llm-vcr redact`) goes through `lock_cassette`:

- It takes a `flock` on `<root>/.llm-vcr/locks/<sha1>.lock` for each store serving the file (`root`
  is the store's folder, `sha1` that of the file's real path relative to it, `/`-separated), and
  holds it from the read to the rename. The kernel drops it when its process dies: there are no
  stale locks.
- Just before the rename it checks that the file is still the version it read (mtime, size, inode,
  device): only a writer that ignores the lock can have changed it; nothing is then written, the
  caller reads again (`CassetteChangedError`).
- The file is read and written relative to its folder's descriptor, reached from the root without
  following symbolic links (`paths.open_folder_beneath`): rewritten through a hidden temp file
  (`.<name>.<pid>.tmp`) that is fsynced and renamed over the file (`replace`), or grown in place
  (`append`, the store's appends; crash-safe through a record in the lock files, see `inplace`).
  Before a writer first looks at the file, an append a killed writer left half written is cut
  off; `repair_torn_tails` does it for a whole store at its start.

How a tool finds the stores: each `CassetteStore` makes `<root>/.llm-vcr/` (with a `.gitignore`
that ignores the folder itself) when it is constructed, so a tool given a bare file path walks up
from the file's real path and takes the lock of every folder above it that holds `.llm-vcr/`
(`store_roots`; outermost first, so two writers never deadlock; a proxy takes them too, so two
proxies serving nested folders never append to one file at once).
A file with no `.llm-vcr/` above it is served by no proxy, so it needs no lock.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from . import inplace
from .cassette import CassetteError
from .inplace import HeldLock, pread_all
from .paths import LinkInPath, open_folder_beneath

STATE_DIR = ".llm-vcr"  # private state under a store's root: lock files (git-ignored)
# Rounds before giving up on a file that a writer ignoring the lock keeps changing (and, in the
# store, on a path whose links keep changing).
ATTEMPTS = 5
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

# (st_mtime_ns, st_size, st_ino, st_dev): "is this still the same version of the same file?"
FileKey = tuple[int, int, int, int]


def file_key(st: os.stat_result) -> FileKey:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


class CassetteChangedError(CassetteError):
    """The file changed on disk between the read and the rename of a locked rewrite: a writer
    that does not take llm-vcr's lock (an editor, `git checkout`, an older llm-vcr) wrote it."""


def store_roots(path: Path | str) -> list[Path]:
    """The roots of the stores that serve the file `path`, outermost first: the folders above its
    real path (symbolic links resolved) that hold a `.llm-vcr/` folder. Usually one; empty for a
    file no proxy serves (every store makes `.llm-vcr/` when it is constructed)."""
    return _roots_of(Path(os.path.realpath(path)))


def _roots_of(real: Path) -> list[Path]:
    roots: list[Path] = []
    for folder in real.parents:
        with suppress(OSError):
            if stat.S_ISDIR(os.lstat(folder / STATE_DIR).st_mode):
                roots.append(folder)
    return roots[::-1]


def make_state_dir(root: Path) -> None:
    """Make `<root>/.llm-vcr/locks/` (and the root) with the `.gitignore` that keeps git out."""
    state = root / STATE_DIR
    (state / "locks").mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(state / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(b"# llm-vcr's lock files: private state, never committed.\n*\n")


def lock_file(root: Path, relative: str) -> Path:
    """The lock file of the cassette at `relative` (a `/`-separated path) beneath `root`."""
    digest = hashlib.sha1(relative.encode(), usedforsecurity=False).hexdigest()
    return root / STATE_DIR / "locks" / f"{digest}.lock"


class LockedCassette:
    """One cassette file under its stores' locks (see `lock_cassette`). Either `read` it whole
    (or `stat` it and `read_tail`), then `replace` it or `append` to it. The file is opened
    relative to its folder's descriptor, reached from the root without following symbolic links,
    so no call can land outside the root. Before the first look at the file, an append that a
    killed writer left half done is undone (`_repair`)."""

    def __init__(
        self, path: Path, root: Path | None, make_folders: bool, locks: Sequence[HeldLock] = ()
    ) -> None:
        self.path = path
        self.key: FileKey | None = None  # the version last seen; None: the file did not exist
        self._root = root
        self._make_folders = make_folders
        self._locks = list(locks)
        self._read = False
        self._repaired = False
        self._folder_fd = -1
        self._fd = -1  # the file, read-write when it may be written
        self._writable = False

    @property
    def can_append(self) -> bool:
        """Whether `append` may run: the file is open for writing and every lock file can hold
        the record of an append in flight (else the caller rewrites the file)."""
        return self._writable and all(lock.writable for lock in self._locks)

    def stat(self) -> FileKey | None:
        """The file's version (also kept in `key`), or None when it (or, without
        `make_folders`, its folder) does not exist; IsADirectoryError for a folder, LinkInPath
        when a link was swapped in."""
        self._read = True
        self.key = None
        try:
            fd = self._file()
        except FileNotFoundError:
            return None
        self.key = file_key(os.fstat(fd))
        return self.key

    def read(self) -> bytes:
        """The file's bytes (remembering their version in `key`). FileNotFoundError when the
        file (or, without `make_folders`, its folder) does not exist: `replace` then creates
        it; IsADirectoryError for a folder; LinkInPath when a link was swapped in."""
        key = self.stat()
        if key is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.path))
        return pread_all(self._fd, key[1], 0)

    def read_tail(self, n: int) -> bytes:
        """The last `n` bytes of the version `stat` saw."""
        assert self.key is not None, "stat the file first"
        size = self.key[1]
        n = min(n, size)
        return pread_all(self._fd, n, size - n)

    def read_at(self, offset: int, n: int) -> bytes:
        """`n` bytes at `offset` of the file (fewer at its end); `stat` it first."""
        assert self._fd >= 0, "stat the file first"
        return pread_all(self._fd, n, offset)

    def append(self, data: bytes) -> FileKey:
        """Write `data` after the end of the file, in place (its earlier bytes are never
        rewritten), fsync it, and return its new key. Crash-safe through a record kept in the
        lock files while the bytes are written (see docs/internals.md): whoever takes the lock
        next, and every store at start-up, cuts a half-written append off, and readers ignore it
        meanwhile. The file must still be the version `stat` saw (CassetteChangedError, nothing
        written, when a writer ignoring the lock changed it). On a write error the file is cut
        back to its old end and the error raised."""
        assert self.key is not None and self.can_append, "stat the file, and check can_append"
        fd = self._fd
        st = os.fstat(fd)
        if file_key(st) != self.key:
            raise CassetteChangedError(
                "changed on disk while being appended to, by a writer that does not take "
                "llm-vcr's lock; nothing written",
                str(self.path),
            )
        start = st.st_size
        intent = inplace.intent_for(fd, st, data)
        for lock in self._locks:
            lock.begin(intent)
        try:
            inplace.write_at(fd, data, start)
            os.fsync(fd)
        except BaseException:
            with suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise
        finally:
            for lock in self._locks:
                lock.finish()
        self.key = file_key(os.fstat(fd))
        return self.key

    def replace(self, parts: Sequence[bytes], mode_from: bool = True) -> FileKey:
        """Replace the file with `parts` (temp file in its folder, fsync, rename, fsync of the
        folder); the new file's key. Just before the rename the file is checked to be the version
        `read` saw (or still missing): CassetteChangedError, nothing written, when it is not.
        `mode_from`: keep the permission bits of the file being replaced."""
        assert self._read, "read the file before replacing it"
        folder, name = self._folder(), self.path.name
        mode = None
        if mode_from:
            with suppress(FileNotFoundError):
                mode = stat.S_IMODE(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
        temp = f".{name}.{os.getpid()}.tmp"
        fd = os.open(temp, _TEMP_FLAGS, 0o666, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                for part in parts:
                    f.write(part)
            if mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)
            key = file_key(os.fstat(fd))  # renaming changes neither mtime, size nor inode
            os.close(fd)
            fd = -1
            self._check_unchanged(folder, name)
            os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with suppress(OSError):
                os.unlink(temp, dir_fd=folder)
            raise
        _fsync_folder(folder)
        self._close_file()  # the old file's
        self.key = key
        return key

    def _check_unchanged(self, folder: int, name: str) -> None:
        try:
            now: FileKey | None = file_key(os.stat(name, dir_fd=folder, follow_symlinks=False))
        except FileNotFoundError:
            now = None
        if now != self.key:
            raise CassetteChangedError(
                "changed on disk while being rewritten, by a writer that does not take "
                "llm-vcr's lock; nothing written",
                str(self.path),
            )

    def _file(self) -> int:
        """The file's descriptor (opened once, after the repair): read-write when allowed."""
        if self._fd >= 0:
            return self._fd
        folder = self._folder()
        if not self._repaired:
            self._repaired = True
            self._repair(folder)
        try:
            fd = os.open(self.path.name, _WRITE_FLAGS, dir_fd=folder)
            writable = True
        except PermissionError:
            fd, writable = self._open(folder, READ_FLAGS), False
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LinkInPath(self.path.name) from None
            if e.errno != errno.EISDIR:
                raise
            fd, writable = self._open(folder, READ_FLAGS), False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
            raise OSError(code, "not a regular file" if code == errno.EINVAL
                          else os.strerror(code), str(self.path))
        self._fd, self._writable = fd, writable
        return fd

    def _open(self, folder: int, flags: int) -> int:
        try:
            return os.open(self.path.name, flags, dir_fd=folder)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LinkInPath(self.path.name) from None
            raise

    def _repair(self, folder: int) -> None:
        """Cut off an append that a killed writer left half done (its record is still in a lock
        file), then clear the records. Runs under the locks, before the file is first looked at."""
        records = [(lock, lock.record()) for lock in self._locks]
        if not any(record and record[1] for _, record in records):
            return
        try:
            fd = os.open(self.path.name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        except OSError:
            fd = -1  # no file (or not ours to write): nothing to cut
        try:
            for lock, record in records:
                if record is None or record[1] is None:
                    continue
                if fd >= 0 and (cut := inplace.torn_end(record[1], fd, os.fstat(fd))) is not None:
                    os.ftruncate(fd, cut)
                    os.fsync(fd)
                if lock.writable:
                    lock.settle(record[0])
        finally:
            if fd >= 0:
                os.close(fd)

    def _close_file(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _folder(self) -> int:
        if self._folder_fd < 0:
            if self._root is None:  # no store serves the file: nothing to stay beneath
                self._folder_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            else:
                parts = self.path.parent.relative_to(self._root).parts
                self._folder_fd = open_folder_beneath(self._root, parts, self._make_folders)
        return self._folder_fd

    def close(self) -> None:
        self._close_file()
        if self._folder_fd >= 0:
            os.close(self._folder_fd)
            self._folder_fd = -1


@contextmanager
def lock_cassette(
    path: Path | str, root: Path | None = None, *, make_folders: bool = False
) -> Iterator[LockedCassette]:
    """Hold the cassette file `path` for one read-modify-write: read, change, replace (or
    append), under the lock every other writer of the file takes.

    The lock of every store serving the file is taken (`store_roots`, outermost first, so two
    writers never deadlock); with none, no proxy serves the file and no lock is needed. Without
    `root` (a tool's PATH argument) the file's real path is used. With `root` (a CassetteStore),
    `path` must be the real path of a file beneath `root`; its lock is taken even when
    `.llm-vcr/` is missing, and an enclosing store's lock file that cannot be opened is skipped.
    Blocks until the locks are free (a proxy holds one for the few milliseconds of an append).
    `make_folders`: missing folders between the root and the file are created.
    """
    if root is None:
        real = Path(os.path.realpath(path))
        roots = _roots_of(real)
    else:
        real = Path(path)
        roots = sorted({*_roots_of(real), root}, key=lambda folder: len(folder.parts))
    with ExitStack() as stack:
        held = []
        for store_root in roots:
            relative = real.relative_to(store_root).as_posix()
            try:
                held.append(stack.enter_context(_flock(store_root, relative)))
            except OSError:
                if store_root == root or root is None:
                    raise
        locked = LockedCassette(real, roots[-1] if roots else None, make_folders, held)
        stack.callback(locked.close)
        yield locked


def rewrite_cassette(path: Path | str, change: Callable[[bytes], bytes | None]) -> bool:
    """Rewrite the cassette file `path` (a tool's PATH argument) with `change(its bytes)` under
    `lock_cassette`; True when it was replaced, False when `change` returned None (leave it).

    `change` may run more than once: when a writer that ignores the lock changed the file before
    the rename, the file is read again and changed afresh (ATTEMPTS rounds, then
    CassetteChangedError). Errors of `change` and OSError (FileNotFoundError for a missing file)
    propagate; the file is then left as it was.
    """
    for _ in range(ATTEMPTS):
        try:
            with lock_cassette(path) as file:
                new = change(file.read())
                if new is None:
                    return False
                file.replace([new], mode_from=True)
                return True
        except (CassetteChangedError, LinkInPath):
            continue
    raise CassetteChangedError(
        f"kept changing on disk while being rewritten ({ATTEMPTS} tries), by a writer that "
        "does not take llm-vcr's lock; nothing written",
        str(path),
    )


@contextmanager
def _flock(root: Path, relative: str) -> Iterator[HeldLock]:
    """The cross-process lock on one cassette of the store at `root`, released when the block
    ends or the process dies."""
    path = lock_file(root, relative)
    writable = True
    try:
        fd = os.open(path, _LOCK_FLAGS, 0o666)
    except FileNotFoundError:
        make_state_dir(root)
        fd = os.open(path, _LOCK_FLAGS, 0o666)
    except PermissionError:  # a lock folder we may not write: an existing lock file still locks
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        writable = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield HeldLock(relative, fd, writable)
    finally:
        os.close(fd)


def repair_torn_tails(root: Path) -> list[str]:
    """Cut off every append a killed writer left half written in the store at `root` (a store
    does this when it is constructed, so go-vcr sees whole files again); the relative paths of
    the cassettes looked at. Only lock files holding a record are read; each is handled under
    its lock (waiting for an append in flight, which clears its own record)."""
    folder = root / STATE_DIR / "locks"
    seen: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return seen
    for entry in entries:
        try:
            if not entry.name.endswith(".lock") or entry.stat(follow_symlinks=False).st_size == 0:
                continue
            if entry.stat(follow_symlinks=False).st_size == inplace.IDLE_SIZE:
                continue
            with open(entry.path, "rb") as f:
                found = inplace.decode(f.read(), None)
        except OSError:
            continue
        if found is None or found[0][1] is None:
            continue
        relative = found[1]
        if lock_file(root, relative).name != entry.name:
            continue
        real = os.path.realpath(root / relative)
        if not real.startswith(str(root).rstrip(os.sep) + os.sep):
            continue
        with suppress(OSError, LinkInPath, ValueError):
            with lock_cassette(real, root) as file:
                file.stat()
            seen.append(relative)
    return seen


def _fsync_folder(fd: int) -> None:
    """Make a rename in the folder `fd` durable."""
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):  # file systems without directory fsync
            raise
