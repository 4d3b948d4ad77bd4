"""Opening a folder beneath a root without following symbolic links (the store and the lock
protocol open every cassette this way). Which files the PATH arguments of the cassette commands
name is `commands.files`'."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path


class LinkInPath(Exception):
    """A folder on a path that should hold none turned out to be a symbolic link (it was swapped
    in after the path was resolved), or the file itself is one."""


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_folder_beneath(root: Path, parts: Sequence[str], create: bool) -> int:
    """A descriptor of the folder `root/parts[0]/parts[1]/...`, reached one folder at a time
    without following symbolic links, so it is beneath `root` whatever was swapped meanwhile.

    `parts` come from a resolved path (no links in it): a link met on the way raises LinkInPath.
    `create`: missing folders are made (mode 0777 less the umask). Raises FileNotFoundError (a
    missing folder, without `create`), NotADirectoryError (a part is a file), or the OSError of
    the failing call (ENAMETOOLONG, EACCES, ...). The caller closes the descriptor.
    """
    fd = os.open(root, _FOLDER_FLAGS)
    try:
        for part in parts:
            try:
                inner = _open_folder_in(fd, part)
            except FileNotFoundError:
                if not create:
                    raise
                with suppress(FileExistsError):  # another writer made it first: fine
                    os.mkdir(part, 0o777, dir_fd=fd)
                inner = _open_folder_in(fd, part)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_folder_in(fd: int, part: str) -> int:
    try:
        return os.open(part, _FOLDER_FLAGS, dir_fd=fd)
    except NotADirectoryError:
        # O_NOFOLLOW|O_DIRECTORY gives ENOTDIR for a link as for a file: tell them apart
        if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
            raise LinkInPath(part) from None
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LinkInPath(part) from None
        raise
