"""Appends in place: how a cassette grows by writing only its new bytes, yet a process killed at
any byte leaves every completed interaction loadable.

Pure Python (no mitmproxy). An append (`locking.LockedCassette.append`, under the cassette's
locks) writes the new entries after the file's last byte and fsyncs the file; the file's earlier
bytes are never rewritten. While it runs, each lock file it holds keeps a record of it (an
`Intent`: which file by device and inode, where the append starts and ends, digests of the bytes
added and of the bytes just before them), written and fdatasynced before the first byte. A lock
file's content is its record:

- empty: no append in place ever ran for this cassette;
- `idle <seq>` (IDLE_SIZE bytes): none in flight; `seq` counts the appends and repairs;
- a JSON line `{"v", "seq", "path", "append": {...}}`: an append in flight, or one whose writer
  was killed before it finished (the kernel then dropped its lock).

So a torn tail (the bytes of an append cut short) is always named by a record, and:

- `torn_end` says where to cut it off: only when the file is the record's (device, inode, and the
  bytes before the append match the digest), longer than the append's start and not exactly its
  complete bytes (an append killed after its fsync but before its record was cleared is whole).
- Writers (`LockedCassette`, under the lock) cut a torn tail off before they first look at the
  file, and stores do it at start (`locking.repair_torn_tails`): from then on go-vcr sees a whole
  file again.
- Readers take no lock: `read_committed` reads the record, the file, and the record again (a
  seqlock: the sequence number changes with every append and repair), keeps only the bytes before
  an append in flight or torn, and tries again when the record changed meanwhile (after three
  tries it waits on a shared lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

INTENT_VERSION = 1
PREFIX_CHECK_BYTES = 4096  # bytes before an append whose digest its record keeps
FAULT_ENV = "LLMVCR_FAULT_SLOW_APPEND"  # tests only: see `write_at`
IDLE_SIZE = len(b"idle %016x\n" % 0)
UNLOCKED_TRIES = 3  # seqlock rounds for a reader before it waits on a shared lock
_RECORD_MAX = 65536


@dataclass(frozen=True, slots=True)
class Intent:
    """One append in place: the file (device, inode), the byte range it writes, the sha256 of
    those bytes (`added`) and of the PREFIX_CHECK_BYTES before them (`before`)."""

    dev: int
    ino: int
    start: int
    end: int
    added: str
    before: str


# (sequence number, the append in flight or None); None for a record that cannot be read (torn
# while being written: a reader tries again; a writer ignores it, nothing was appended yet)
Record = tuple[int, Intent | None]


def encode(seq: int, relative: str, intent: Intent | None) -> bytes:
    if intent is None:
        return b"idle %016x\n" % seq
    fields = {k: getattr(intent, k) for k in Intent.__slots__}
    line = {"v": INTENT_VERSION, "seq": seq, "path": relative, "append": fields}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def decode(data: bytes, relative: str | None) -> tuple[Record, str] | None:
    """The record in a lock file's bytes and the cassette path it names ("" for idle), or None
    when they are not one whole record (or name another path than `relative`, when given)."""
    if not data:
        return (0, None), ""
    if len(data) == IDLE_SIZE and data.startswith(b"idle ") and data.endswith(b"\n"):
        try:
            return (int(data[5:-1], 16), None), ""
        except ValueError:
            return None
    if not data.endswith(b"\n"):
        return None
    try:
        line = json.loads(data)
        if line["v"] != INTENT_VERSION:
            return None
        seq, path, intent = line["seq"], line["path"], Intent(**line["append"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    numbers = (seq, intent.dev, intent.ino, intent.start, intent.end)
    if (
        not all(type(n) is int for n in numbers)
        or not isinstance(path, str)
        or (relative is not None and path != relative)
        or not isinstance(intent.added, str)
        or not isinstance(intent.before, str)
        or not 0 <= intent.start <= intent.end
    ):
        return None
    return (seq, intent), path


def read_record(lock_fd: int, relative: str | None) -> Record | None:
    try:
        data = os.pread(lock_fd, _RECORD_MAX, 0)
    except OSError:
        return None
    found = decode(data, relative)
    return None if found is None else found[0]


class HeldLock:
    """One store's lock on one cassette, held (by `locking.lock_cassette`); its lock file keeps
    the record of the appends in place (`writable`: the lock file could be opened for writing,
    else no append in place can be recorded and the caller rewrites the file instead)."""

    def __init__(self, relative: str, fd: int, writable: bool) -> None:
        self.relative = relative
        self.fd = fd
        self.writable = writable
        self._seq = 0

    def record(self) -> Record | None:
        return read_record(self.fd, self.relative)

    def begin(self, intent: Intent) -> None:
        """Keep `intent` in the lock file, durably, before the append's first byte."""
        found = self.record()
        self._seq = (found[0] if found else 0) + 1
        self._write(encode(self._seq, self.relative, intent))
        os.fdatasync(self.fd)

    def finish(self) -> None:
        """Mark the append over (not synced: a record that comes back after a power loss names
        an append that completed, which `torn_end` recognizes as whole)."""
        self._write(encode(self._seq, self.relative, None))

    def settle(self, seq: int) -> None:
        """After a repair: idle, with a new sequence number (so readers notice)."""
        self._seq = seq + 1
        self._write(encode(self._seq, self.relative, None))

    def _write(self, data: bytes) -> None:
        write_at(self.fd, data, 0, hook=False)
        os.ftruncate(self.fd, len(data))


def intent_for(fd: int, st: os.stat_result, data: bytes) -> Intent:
    """The record of appending `data` at the end of the file `fd` (stat `st`)."""
    start = st.st_size
    back = min(start, PREFIX_CHECK_BYTES)
    return Intent(
        dev=st.st_dev,
        ino=st.st_ino,
        start=start,
        end=start + len(data),
        added=digest(data),
        before=digest(pread_all(fd, back, start - back)),
    )


def torn_end(intent: Intent, fd: int, st: os.stat_result) -> int | None:
    """Where the file `fd` (stat `st`) must be cut to drop the append `intent` left half
    written, or None when it holds no such append: another file (device, inode, or the bytes
    before the append differ), nothing of it written yet, or all of it written."""
    size = st.st_size
    if (st.st_dev, st.st_ino) != (intent.dev, intent.ino) or size <= intent.start:
        return None
    back = min(intent.start, PREFIX_CHECK_BYTES)
    if digest(pread_all(fd, back, intent.start - back)) != intent.before:
        return None
    if size > intent.end:
        return None  # bytes after the append's end are not the append's to judge
    whole = size == intent.end and (
        digest(pread_all(fd, intent.end - intent.start, intent.start)) == intent.added
    )
    # whole: complete (its writer was killed after its fsync, before clearing its record)
    return None if whole else intent.start


def committed_size(record: Record, fd: int) -> tuple[os.stat_result, int]:
    """The file's stat and how many of its bytes hold only completed appends."""
    st = os.fstat(fd)
    cut = None if record[1] is None else torn_end(record[1], fd, st)
    return st, st.st_size if cut is None else cut


def read_committed[T](
    lock_path: str | os.PathLike[str],
    relative: str,
    fd: int,
    body: Callable[[os.stat_result, int], T],
) -> T:
    """`body(stat, end)` for a consistent version of the open cassette `fd`: `end` is how many of
    its bytes hold only completed appends, and `body` reads bytes below it. Takes no lock while
    the lock file's record stays the same around `body` (or there is no lock file: no append in
    place ever ran); waits on a shared lock after UNLOCKED_TRIES changes."""
    try:
        lock_fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        st = os.fstat(fd)
        return body(st, st.st_size)
    try:
        for _ in range(UNLOCKED_TRIES):
            first = read_record(lock_fd, relative)
            if first is not None:
                result = body(*committed_size(first, fd))
                if read_record(lock_fd, relative) == first:
                    return result
        fcntl.flock(lock_fd, fcntl.LOCK_SH)  # no writer now; a crashed one left a whole record
        record = read_record(lock_fd, relative) or (0, None)
        return body(*committed_size(record, fd))
    finally:
        os.close(lock_fd)  # releases the shared lock, if taken


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pread_all(fd: int, n: int, offset: int) -> bytes:
    """`n` bytes at `offset` (fewer at the end of the file)."""
    parts = []
    while n > 0:
        part = os.pread(fd, n, offset)
        if not part:
            break
        parts.append(part)
        n -= len(part)
        offset += len(part)
    return b"".join(parts)


def write_at(fd: int, data: bytes, offset: int, hook: bool = True) -> None:
    """All of `data` at `offset`. The fault hook LLMVCR_FAULT_SLOW_APPEND=<bytes>:<seconds>
    (tests only) writes an append that many bytes at a time with a pause in between, so a test
    can kill a writer in the middle of its write."""
    view = memoryview(data)
    step, pause = len(view) or 1, 0.0
    if hook and (setting := os.environ.get(FAULT_ENV)):
        size, _, seconds = setting.partition(":")
        step, pause = max(1, int(size)), float(seconds or 0)
    while view:
        written = os.pwrite(fd, view[:step], offset)
        view = view[written:]
        offset += written
        if pause and view:
            time.sleep(pause)
