"""A test's cassette name: `<test file path without .py>/<Class.>test_name[id]`, safe and unique.

Pure functions over plain values (no pytest, no mitmproxy). The name is relative to the cassette
folder (`--vcr-dir`), and passes the store's rules (`llmvcr.store.validate_name`):

    tests/chat/test_api.py::TestChat::test_stream[gpt-4o]
        -> tests/chat/test_api/TestChat.test_stream[gpt-4o]

Every path segment and the test segment keep the characters that are safe in a file name on every
system (ASCII letters and digits, `_ - . [ ] = + , @`); any other character becomes `_`, and a
segment that sanitising changed gets `-` and a short hash of its original text, so two ids that
differ only in unsafe characters (`a/b`, `a:b`) still get two cassettes. The hash goes inside the
brackets of a parametrized id, where it reads as part of the id. A segment too long for a file
name is cut and hashed the same way; a segment starting with `.` (hidden, the store's own) is
prefixed with `_` and hashed.
"""

from __future__ import annotations

import hashlib
import string

from llmvcr.store import MAX_SEGMENT_BYTES, validate_name

SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_-.[]=+,@")
HASH_LENGTH = 8
# Room for ".yaml" and the store's own temp-file suffixes next to a segment at its longest.
MAX_TEST_SEGMENT = MAX_SEGMENT_BYTES - 40


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


def safe_segment(text: str, limit: int = MAX_TEST_SEGMENT) -> str:
    """`text` as one safe path segment (see the module docstring); unchanged when already safe."""
    cleaned = "".join(ch if ch in SAFE_CHARACTERS else "_" for ch in text) or "_"
    if cleaned.startswith("."):
        cleaned = "_" + cleaned
    if cleaned == text and len(cleaned) <= limit:
        return text
    tag = short_hash(text)
    head = cleaned[:-1][: limit - HASH_LENGTH - 2]
    if cleaned.endswith("]") and "[" in head:
        # test_x[a_b] -> test_x[a_b-1a2b3c4d]: the hash stays inside the id.
        return f"{head}-{tag}]"
    return f"{cleaned[: limit - HASH_LENGTH - 1]}-{tag}"


def cassette_name_for(file_path: str, nodeid_parts: list[str]) -> str:
    """The cassette name of one test.

    `file_path`: the test file's path relative to the rootdir, `/`-separated (its `.py` is
    dropped); `nodeid_parts`: the node id after the file, `["TestChat", "test_stream[gpt-4o]"]`
    (classes, then the test's name with its parameter id). ValueError (CassetteNameError) only if
    the result breaks the store's rules, which the sanitising makes impossible in practice.
    """
    folders = [part for part in file_path.split("/") if part not in ("", ".")]
    if folders and folders[-1].endswith(".py"):
        folders[-1] = folders[-1][: -len(".py")]
    segments = [safe_segment(part) for part in folders]
    test = ".".join(nodeid_parts) or "test"
    return validate_name("/".join([*segments, safe_segment(test)]))
