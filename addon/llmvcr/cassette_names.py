"""Cassette names: which names are safe, and how long a name a folder's file system allows.

Pure Python (no mitmproxy), no state. A cassette name is a relative path of `/`-separated
segments, without `.yaml` (`validate_name` says which are refused). `file_path` adds `SUFFIX`,
joins it to the store's root and checks the result against the root's `name_limits` (a
segment's temp file `.<segment>.yaml.<pid>.tmp` must fit in NAME_MAX, the whole path in
PATH_MAX). Every refusal is a `CassetteNameError` naming the name and the reason.
`llmvcr.store` re-exports `SUFFIX`, `MAX_SEGMENT_BYTES`, `CassetteNameError`, `validate_name`.
"""

from __future__ import annotations

import os
import unicodedata
from contextlib import suppress
from functools import lru_cache
from pathlib import Path

__all__ = [
    "MAX_SEGMENT_BYTES",
    "SUFFIX",
    "CassetteNameError",
    "file_path",
    "name_limits",
    "validate_name",
]

SUFFIX = ".yaml"
# The longest name segment: its temp file `.<segment>.yaml.<pid>.tmp` must fit in NAME_MAX (255).
MAX_SEGMENT_BYTES = 200
_TEMP_EXTRA_BYTES = len(".") + len(SUFFIX) + len(".4294967295.tmp")  # temp name beyond segment


class CassetteNameError(ValueError):
    """A cassette name that cannot name a file inside the cassette folder."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid cassette name {name!r}: {reason}")


@lru_cache(maxsize=4096)  # a proxy checks the same few names on every request
def validate_name(name: str) -> str:
    """The cassette name without a trailing `.yaml`; raises CassetteNameError when it is unsafe.

    A name is a relative path of `/`-separated segments (nested folders are fine). Rejected: an
    empty name, an absolute one, `..`, an empty segment (`a//b`, a trailing `/`), a segment that
    starts with `.` (hidden files are the store's own: temp files, `.llm-vcr/`), a backslash, NUL
    or any other control character, text that is not valid Unicode (lone surrogates), and a
    segment too long for a file name.
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
    try:
        bare.encode()
    except UnicodeEncodeError:
        raise CassetteNameError(name, "the name is not valid Unicode text") from None
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


def name_limits(root: Path) -> tuple[int, int]:
    """The longest name segment and the longest path (PATH_MAX, counting its NUL) that files
    under `root` may have (POSIX defaults when the file system does not say)."""
    found = {"PC_NAME_MAX": 255, "PC_PATH_MAX": 4096}
    for setting in found:
        with suppress(OSError, ValueError):
            if (value := os.pathconf(root, setting)) > 0:
                found[setting] = value
    return min(MAX_SEGMENT_BYTES, found["PC_NAME_MAX"] - _TEMP_EXTRA_BYTES), found["PC_PATH_MAX"]


def file_path(root: Path, name: str, limits: tuple[int, int]) -> str:
    """The file of cassette `name` beneath `root` (validated, `SUFFIX` added, joined; no file
    system call, links not resolved). CassetteNameError for a name `validate_name` refuses, or
    one longer than `limits` (`name_limits(root)`) allow."""
    segment_max, path_max = limits
    bare = validate_name(name)
    if max(len(segment.encode()) for segment in bare.split("/")) > segment_max:
        raise CassetteNameError(
            name, f"a segment is longer than this file system allows ({segment_max} bytes)"
        )
    path = os.path.join(root, bare + SUFFIX)
    if len(os.fsencode(path)) >= path_max:
        raise CassetteNameError(
            name, f"the file's path would be {len(os.fsencode(path))} bytes, longer than "
            f"this file system allows ({path_max - 1})"
        )
    return path
