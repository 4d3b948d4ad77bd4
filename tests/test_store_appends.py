"""store.py, appends in place (issue 14): the file's layouts, loads that follow appends (the same
Interaction objects, `appended_since`), single-flight loads, and a torn tail (a writer that died
in the middle of its write) loaded, then repaired. Random SIGKILLs are in test_store_crash.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmvcr import cassette, inplace, locking
from llmvcr.cassette import Cassette, Style
from llmvcr.store import CassetteStore
from test_store import STYLES, ParseSpy, make_interaction, make_items, tags, write_cassette


@pytest.mark.parametrize("style", STYLES)
def test_appends_in_place_keep_every_layout(tmp_path: Path, style: Style) -> None:
    original = write_cassette(tmp_path / "c.yaml", make_items("old", 3), style)
    inode = (tmp_path / "c.yaml").stat().st_ino
    store = CassetteStore(tmp_path)
    store.append("c", [make_interaction("n0")])
    store.append("c", make_items("m", 2))
    data = (tmp_path / "c.yaml").read_bytes()
    assert (tmp_path / "c.yaml").stat().st_ino == inode  # written in place, never replaced
    whole = Cassette([*make_items("old", 3), make_interaction("n0"), *make_items("m", 2)], style)
    assert data.startswith(original)
    assert data == cassette.dumps(whole)


def test_an_empty_cassette_is_opened_by_a_rewrite_then_appended_in_place(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"---\nversion: 2\ninteractions: []\n")
    store = CassetteStore(tmp_path)
    store.append("c", [make_interaction("a")])
    opened = path.stat().st_ino
    store.append("c", [make_interaction("b")])
    assert path.stat().st_ino == opened
    assert path.read_bytes() == cassette.dumps(
        Cassette([make_interaction("a"), make_interaction("b")])
    )


def test_own_appends_extend_the_loaded_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cassette(tmp_path / "c.yaml", make_items("old", 3))
    store = CassetteStore(tmp_path)
    first = store.load("c")
    assert first is not None
    spy = ParseSpy(monkeypatch)
    store.append("c", [make_interaction("n0")])
    second = store.cached("c")  # current without a load: the append extended it
    assert second is not None and second is not first
    assert tags(second) == ["old0", "old1", "old2", "n0"]
    assert all(a is b for a, b in zip(first.interactions, second.interactions, strict=False))
    assert store.appended_since(first, second) == [second.interactions[3]]
    assert store.load("c") is second
    assert spy.sizes == []  # nothing parsed through the whole-file reader


def test_loads_follow_another_store_appends_from_the_known_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cassette(tmp_path / "c.yaml", make_items("old", 3))
    reader, writer = CassetteStore(tmp_path), CassetteStore(tmp_path)
    first = reader.load("c")
    assert first is not None
    spy = ParseSpy(monkeypatch)
    writer.append("c", [make_interaction("w0")])
    writer.append("c", [make_interaction("w1")])
    second = reader.load("c")
    assert second is not None
    assert spy.sizes == []  # only the bytes after the known end were read
    assert tags(second) == ["old0", "old1", "old2", "w0", "w1"]
    assert second.interactions[:3] == first.interactions
    assert all(a is b for a, b in zip(first.interactions, second.interactions, strict=False))
    added = reader.appended_since(first, second)
    assert added is not None and tags(Cassette(added)) == ["w0", "w1"]
    assert [i.id for i in added] == [3, 4]
    assert second == CassetteStore(tmp_path).load("c")
    # a touch (same bytes, new mtime): the same cassette again, nothing added
    os.utime(tmp_path / "c.yaml", ns=(1, 1))
    assert reader.load("c") is second


def test_a_rewritten_file_is_read_whole_and_is_no_extension(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("old", 3))
    store = CassetteStore(tmp_path)
    first = store.load("c")
    assert first is not None
    # what `fmt` or `git checkout` do: a new file (new inode) in its place
    temp = tmp_path / "new.tmp"
    temp.write_bytes(cassette.dumps(Cassette([*make_items("old", 3), make_interaction("x")])))
    temp.replace(path)
    second = store.load("c")
    assert second is not None and tags(second) == ["old0", "old1", "old2", "x"]
    assert second.interactions[0] is not first.interactions[0]
    assert store.appended_since(first, second) is None
    assert store.appended_since(second, second) == []


def test_bytes_changed_at_the_known_end_make_a_whole_read(tmp_path: Path) -> None:
    # the same inode, longer, but its known last bytes changed (rewritten in place by a tool
    # that ignores the lock): not an extension
    path = tmp_path / "c.yaml"
    data = write_cassette(path, make_items("old", 3))
    store = CassetteStore(tmp_path)
    first = store.load("c")
    assert first is not None
    changed = data.replace(b"tag=old2", b"tag=eek2") + cassette.dump_interactions(
        [make_interaction("x")], Style(), 3
    )
    with open(path, "r+b") as f:
        f.write(changed)
    second = store.load("c")
    assert second is not None and tags(second) == ["old0", "old1", "eek2", "x"]
    assert store.appended_since(first, second) is None


def test_bytes_added_that_are_no_entries_make_a_whole_read(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("old", 2))
    store = CassetteStore(tmp_path)
    first = store.load("c")
    assert first is not None
    with open(path, "ab") as f:
        f.write(b"note: added by hand\n")  # a new top-level key, not an interaction
    second = store.load("c")
    assert second is not None and tags(second) == ["old0", "old1"]
    assert second.extra == {"note": "added by hand"}  # what only a whole read sees
    assert store.appended_since(first, second) is None


def test_sixteen_threads_loading_a_cold_cassette_parse_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cassette(tmp_path / "big.yaml", make_items("i", 10_000))
    store = CassetteStore(tmp_path)
    spy = ParseSpy(monkeypatch)
    start = threading.Barrier(16)
    results: list[Cassette | None] = []

    def load() -> None:
        start.wait(timeout=60)
        results.append(store.load("big"))

    threads = [threading.Thread(target=load) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 16 and all(r is results[0] for r in results)
    assert len(spy.sizes) == 1
    assert store.cached("big") is results[0]


# A torn tail: a writer that dies in the middle of writing its append.


def _die_in_the_middle_of_an_append(root: Path, name: str, tag: str) -> None:
    """Fork a child that appends one interaction to `name` and dies (os._exit, no clean-up)
    after writing half of its bytes."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            write_at = inplace.write_at

            def half_then_die(fd: int, data: bytes, offset: int, hook: bool = True) -> None:
                if not hook:  # the lock file's record
                    write_at(fd, data, offset, hook)
                    return
                os.pwrite(fd, data[: len(data) // 2], offset)
                os._exit(0)

            inplace.write_at = half_then_die  # type: ignore[assignment]
            CassetteStore(root).append(name, [make_interaction(tag)])
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_torn_tail_loads_with_every_completed_interaction_and_is_repaired(
    tmp_path: Path, govcr_check: Callable[[Iterable[Path]], None]
) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("done", 2))
    before = CassetteStore(tmp_path)
    assert tags(before.load("c")) == ["done0", "done1"]
    store = CassetteStore(tmp_path)
    store.append("c", [make_interaction("done2")])
    whole = path.read_bytes()

    _die_in_the_middle_of_an_append(tmp_path, "c", "torn")
    torn = path.read_bytes()
    assert len(torn) > len(whole) and torn.startswith(whole)  # half an entry at the end
    # every llm-vcr reader: the completed interactions, the torn one left out
    assert tags(before.load("c")) == ["done0", "done1", "done2"]
    assert tags(store.load("c")) == ["done0", "done1", "done2"]
    assert tags(CassetteStore(tmp_path).load("c")) == ["done0", "done1", "done2"]
    # a store's start cut it off: go-vcr sees a whole file again
    assert path.read_bytes() == whole
    govcr_check([path])


def test_the_next_append_repairs_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("done", 2))
    store = CassetteStore(tmp_path)
    whole = path.read_bytes()
    _die_in_the_middle_of_an_append(tmp_path, "c", "torn")
    assert path.read_bytes() != whole
    store.append("c", [make_interaction("next")])
    assert path.read_bytes() == cassette.dumps(
        Cassette([*make_items("done", 2), make_interaction("next")])
    )


def test_a_tool_rewrite_repairs_a_torn_tail_first(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("done", 2))
    CassetteStore(tmp_path)
    whole = path.read_bytes()
    _die_in_the_middle_of_an_append(tmp_path, "c", "torn")
    seen: list[bytes] = []

    def look(data: bytes) -> None:
        seen.append(data)

    assert not locking.rewrite_cassette(path, look)
    assert seen == [whole]


def test_a_record_left_for_another_file_is_never_acted_on(tmp_path: Path) -> None:
    # a writer died mid-append; then something that ignores the lock changed the bytes before
    # the append (a new file whose inode is the old one's, say): the record's digest of those
    # bytes no longer matches, so nothing is cut
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("done", 2))
    whole = len(path.read_bytes())
    _die_in_the_middle_of_an_append(tmp_path, "c", "torn")
    changed = bytearray(path.read_bytes())
    changed[whole - 20] ^= 1
    with open(path, "r+b") as f:  # same inode, same size
        f.write(changed)
    CassetteStore(tmp_path)  # its start repairs torn tails: not this one
    assert path.read_bytes() == changed
