"""locking.py: the one lock protocol of cassette files (issue 11, item 7).

A tool given a bare path takes the very lock file a store's appends take (found by walking up to
`.llm-vcr/`), a file changed behind the lock is never overwritten, `rewrite_cassette` reads again
after such a change, and a file no store serves needs no lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from llmvcr.cassette import Cassette, dumps, load, loads
from llmvcr.locking import (
    ATTEMPTS,
    CassetteChangedError,
    FileKey,
    LockedCassette,
    lock_cassette,
    lock_file,
    rewrite_cassette,
    store_roots,
)
from llmvcr.store import CassetteStore
from test_store import make_interaction, tags

GovcrCheck = Callable[[Iterable[Path | str]], None]


def cassette_bytes(*tags: str) -> bytes:
    return dumps(Cassette([make_interaction(tag) for tag in tags]))


@contextmanager
def probe(lock: Path) -> Iterator[bool]:
    """Whether someone holds `lock` (a non-blocking try, released at once)."""
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield True
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
        yield False
    finally:
        os.close(fd)


def held(lock: Path) -> bool:
    with probe(lock) as answer:
        return answer


def test_store_roots_are_the_folders_holding_llm_vcr(tmp_path: Path) -> None:
    outer, inner = tmp_path / "cassettes", tmp_path / "cassettes" / "team"
    CassetteStore(outer)
    CassetteStore(inner)
    assert store_roots(inner / "a" / "b.yaml") == [outer, inner]
    assert store_roots(outer / "b.yaml") == [outer]
    assert store_roots(tmp_path / "elsewhere" / "b.yaml") == []
    (tmp_path / "via-link").symlink_to(inner)
    assert store_roots(tmp_path / "via-link" / "b.yaml") == [outer, inner]


def test_a_tool_takes_the_lock_a_store_append_takes(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    store = CassetteStore(root)
    store.append("a/b", [make_interaction("x")])
    lock = lock_file(root, "a/b.yaml")
    assert lock.is_file()  # the store's append made it
    (tmp_path / "link").symlink_to(root / "a")
    for given in (root / "a" / "b.yaml", tmp_path / "link" / "b.yaml", Path(
            os.path.relpath(root / "a" / "b.yaml"))):
        assert not held(lock)
        with lock_cassette(given) as file:
            assert file.path == root / "a" / "b.yaml"
            assert held(lock)
        assert not held(lock)


def test_a_tool_takes_the_lock_of_every_enclosing_store(tmp_path: Path) -> None:
    outer, inner = tmp_path / "cassettes", tmp_path / "cassettes" / "team"
    CassetteStore(outer).append("team/b", [make_interaction("x")])
    CassetteStore(inner).append("b", [make_interaction("y")])
    locks = [lock_file(outer, "team/b.yaml"), lock_file(inner, "b.yaml")]
    with lock_cassette(inner / "b.yaml"):
        assert [held(lock) for lock in locks] == [True, True]
    assert [held(lock) for lock in locks] == [False, False]


def test_a_store_append_writes_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store appends through lock_cassette (one home): the lock is held while it writes, by
    a rewrite (a new file) or in place (a file with entries)."""
    root = tmp_path / "cassettes"
    store = CassetteStore(root)
    seen: list[tuple[str, bool]] = []
    original_replace, original_append = LockedCassette.replace, LockedCassette.append

    def spying_replace(self: LockedCassette, parts: Sequence[bytes], mode_from: bool = True
                       ) -> FileKey:
        seen.append(("replace", held(lock_file(root, "c.yaml"))))
        return original_replace(self, parts, mode_from)

    def spying_append(self: LockedCassette, data: bytes) -> FileKey:
        seen.append(("append", held(lock_file(root, "c.yaml"))))
        return original_append(self, data)

    monkeypatch.setattr(LockedCassette, "replace", spying_replace)
    monkeypatch.setattr(LockedCassette, "append", spying_append)
    store.append("c", [make_interaction("a")])
    store.append("c", [make_interaction("b")])
    assert seen == [("replace", True), ("append", True)]
    assert tags(store.load("c")) == ["a", "b"]


def test_replace_refuses_a_file_changed_behind_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    CassetteStore(root)
    path = root / "c.yaml"
    path.write_bytes(cassette_bytes("old"))
    with lock_cassette(path) as file:
        file.read()
        path.write_bytes(cassette_bytes("theirs"))  # a writer that ignores the lock
        with pytest.raises(CassetteChangedError, match="changed on disk while being rewritten"):
            file.replace([cassette_bytes("ours")])
    assert path.read_bytes() == cassette_bytes("theirs")
    assert sorted(p.name for p in root.iterdir()) == [".llm-vcr", "c.yaml"]  # no temp file


def test_replace_refuses_a_file_made_behind_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with lock_cassette(path) as file:
        with pytest.raises(FileNotFoundError):
            file.read()
        path.write_bytes(cassette_bytes("theirs"))
        with pytest.raises(CassetteChangedError):
            file.replace([cassette_bytes("ours")])
    assert path.read_bytes() == cassette_bytes("theirs")


def test_replace_keeps_the_mode_and_creates_a_missing_file(tmp_path: Path) -> None:
    CassetteStore(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_bytes(cassette_bytes("a"))
    path.chmod(0o640)
    with lock_cassette(path) as file:
        file.read()
        file.replace([cassette_bytes("b")])
    assert (path.stat().st_mode & 0o777, tags(load(path))) == (0o640, ["b"])
    new = tmp_path / "new.yaml"
    with lock_cassette(new) as file:
        with pytest.raises(FileNotFoundError):
            file.read()
        file.replace([cassette_bytes("c")])
    assert tags(load(new)) == ["c"]


def test_rewrite_reads_again_after_a_change_behind_the_lock(
    tmp_path: Path, govcr_check: GovcrCheck
) -> None:
    CassetteStore(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_bytes(cassette_bytes("a"))
    calls: list[list[str]] = []

    def add_z(data: bytes) -> bytes:
        got = loads(data)
        calls.append([i.request.url.split("tag=")[1] for i in got.interactions])
        if len(calls) == 1:
            path.write_bytes(cassette_bytes("a", "b"))  # someone ignoring the lock, meanwhile
        got.interactions.append(make_interaction("z"))
        return dumps(got)

    assert rewrite_cassette(path, add_z) is True
    assert calls == [["a"], ["a", "b"]]
    assert tags(load(path)) == ["a", "b", "z"]
    govcr_check([path])


def test_rewrite_gives_up_on_a_file_that_keeps_changing(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(cassette_bytes("a"))
    calls = 0

    def meddle(data: bytes) -> bytes:
        nonlocal calls
        calls += 1
        path.write_bytes(cassette_bytes(f"theirs{calls}"))
        return cassette_bytes("ours")

    with pytest.raises(CassetteChangedError, match=f"kept changing .* \\({ATTEMPTS} tries\\)"):
        rewrite_cassette(path, meddle)
    assert calls == ATTEMPTS
    assert path.read_bytes() == cassette_bytes(f"theirs{ATTEMPTS}")


def test_rewrite_leaves_a_file_alone_when_nothing_changes(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(cassette_bytes("a"))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert rewrite_cassette(path, lambda data: None) is False
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_a_file_no_store_serves_needs_no_lock(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(cassette_bytes("a"))
    assert rewrite_cassette(path, lambda data: cassette_bytes("b")) is True
    assert tags(load(path)) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no .llm-vcr/ made


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        rewrite_cassette(tmp_path / "missing.yaml", lambda data: data)
