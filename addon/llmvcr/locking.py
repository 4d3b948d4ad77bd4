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
  following symbolic links (`paths.open_folder_beneath`), through a hidden temp file
  (`.<name>.<pid>.tmp`) that is fsynced and renamed over the file.

How a tool finds the stores: each `CassetteStore` makes `<root>/.llm-vcr/` (with a `.gitignore`
that ignores the folder itself) when it is constructed, so a tool given a bare file path walks up
from the file's real path and takes the lock of every folder above it that holds `.llm-vcr/`
(`store_roots`; outermost first, so two tools never deadlock; a proxy takes only its own store's).
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

from .cassette import CassetteError
from .paths import LinkInPath, open_folder_beneath

STATE_DIR = ".llm-vcr"  # private state under a store's root: lock files (git-ignored)
# Rounds before giving up on a file that a writer ignoring the lock keeps changing (and, in the
# store, on a path whose links keep changing).
ATTEMPTS = 5
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC

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
    real = Path(os.path.realpath(path))
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
    """One cassette file under its stores' locks (see `lock_cassette`): `read` it, then
    `replace` it. The file is opened relative to its folder's descriptor, reached from the root
    without following symbolic links, so neither call can land outside the root."""

    def __init__(self, path: Path, root: Path | None, make_folders: bool) -> None:
        self.path = path
        self.key: FileKey | None = None  # the version `read` saw; None: the file did not exist
        self._root = root
        self._make_folders = make_folders
        self._read = False
        self._folder_fd = -1

    def read(self) -> bytes:
        """The file's bytes (remembering their version in `key`). FileNotFoundError when the
        file (or, without `make_folders`, its folder) does not exist: `replace` then creates
        it; IsADirectoryError for a folder; LinkInPath when a link was swapped in."""
        self._read = True
        self.key = None
        try:
            fd = os.open(self.path.name, READ_FLAGS, dir_fd=self._folder())
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LinkInPath(self.path.name) from None
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
                raise OSError(code, "not a regular file" if code == errno.EINVAL
                              else os.strerror(code), str(self.path))
            data = f.read()
        self.key = file_key(st)
        return data

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

    def _folder(self) -> int:
        if self._folder_fd < 0:
            if self._root is None:  # no store serves the file: nothing to stay beneath
                self._folder_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            else:
                parts = self.path.parent.relative_to(self._root).parts
                self._folder_fd = open_folder_beneath(self._root, parts, self._make_folders)
        return self._folder_fd

    def close(self) -> None:
        if self._folder_fd >= 0:
            os.close(self._folder_fd)
            self._folder_fd = -1


@contextmanager
def lock_cassette(
    path: Path | str, root: Path | None = None, *, make_folders: bool = False
) -> Iterator[LockedCassette]:
    """Hold the cassette file `path` for one read-modify-write: read, change, replace, under the
    lock every other writer of the file takes.

    Without `root` (a tool's PATH argument), the file's real path is used and the lock of every
    store serving it is taken (`store_roots`, outermost first, so two tools never deadlock); with
    none, no proxy serves the file and no lock is needed. With `root` (a CassetteStore), `path`
    must be the real path of a file beneath `root` and only that store's lock is taken. Blocks
    until the locks are free (a proxy holds one for the few milliseconds of an append).
    `make_folders`: missing folders between the root and the file are created.
    """
    if root is None:
        real = Path(os.path.realpath(path))
        roots = store_roots(real)
    else:
        real, roots = Path(path), [root]
    with ExitStack() as stack:
        for store_root in roots:
            stack.enter_context(_flock(store_root, real.relative_to(store_root).as_posix()))
        locked = LockedCassette(real, roots[-1] if roots else None, make_folders)
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
def _flock(root: Path, relative: str) -> Iterator[None]:
    """The cross-process lock on one cassette of the store at `root`, released when the block
    ends or the process dies."""
    path = lock_file(root, relative)
    try:
        fd = os.open(path, _LOCK_FLAGS, 0o666)
    except FileNotFoundError:
        make_state_dir(root)
        fd = os.open(path, _LOCK_FLAGS, 0o666)
    except PermissionError:  # a lock folder we may not write: an existing lock file still locks
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync_folder(fd: int) -> None:
    """Make a rename in the folder `fd` durable."""
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):  # file systems without directory fsync
            raise
