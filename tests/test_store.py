"""store.py: cassette names, lazy loading, reload on change, appends, stale temp files.

Multi-process behaviour (concurrent appends, SIGKILL in the middle of a write) is in
test_store_processes.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from llmvcr import cassette
from llmvcr.cassette import (
    NEW_FILE_STYLE,
    Cassette,
    CassetteError,
    Chunk,
    Interaction,
    Request,
    Response,
    Style,
)
from llmvcr.locking import LockedCassette
from llmvcr.store import CassetteNameError, CassetteStore, validate_name

HOUR = 3600.0
STYLES = [Style(2, True), Style(4, True), Style(2, False), Style(4, False)]


def make_interaction(tag: str) -> Interaction:
    """A small streamed chat completion; `tag` makes it unique and findable in the file."""
    body = b'{"messages":[{"content":"' + tag.encode() + b'","role":"user"}],"model":"m"}'
    sse = b'data: {"delta":"' + tag.encode() + b'"}\n\ndata: [DONE]\n\n'
    return Interaction(
        Request(
            method="POST",
            url=f"https://api.example.com/v1/chat/completions?tag={tag}",
            body=body,
            headers={"Content-Type": ["application/json"]},
            content_length=len(body),
        ),
        Response(
            headers={"Content-Type": ["text/event-stream"]},
            body=sse,
            proto="HTTP/2.0",
            proto_major=2,
            proto_minor=0,
            duration=1_500_000,
            chunks=[Chunk(at=2_000_000, size=len(sse) - 14), Chunk(at=5_000_000, size=14)],
        ),
    )


def make_items(prefix: str, n: int) -> list[Interaction]:
    return [make_interaction(f"{prefix}{i}") for i in range(n)]


def write_cassette(path: Path, items: list[Interaction], style: Style = NEW_FILE_STYLE) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cassette.dumps(Cassette(list(items), style))
    path.write_bytes(data)
    return data


def set_mtime(path: Path, seconds: float) -> None:
    os.utime(path, ns=(round(seconds * 1e9), round(seconds * 1e9)))


def tags(c: Cassette | None) -> list[str]:
    assert c is not None
    return [i.request.url.rsplit("tag=", 1)[1] for i in c.interactions]


class ParseSpy:
    """Records the size of every `cassette.loads` call the store makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.texts: list[bytes] = []
        real = cassette.loads

        def spy(data: bytes | str, path: str | None = None) -> Cassette:
            raw = data.encode() if isinstance(data, str) else bytes(data)
            self.sizes.append(len(raw))
            self.texts.append(raw)
            return real(data, path)

        monkeypatch.setattr(cassette, "loads", spy)

    def parsed(self, marker: str) -> bool:
        """Whether some parse saw `marker` (a tag) in its input."""
        return any(marker.encode() in text for text in self.texts)


# names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("simple", "simple"),
        ("simple.yaml", "simple"),
        ("nested/sub/test", "nested/sub/test"),
        ("nested/sub/test.yaml", "nested/sub/test"),
        ("TestChat/openai-gpt-5/streaming", "TestChat/openai-gpt-5/streaming"),
        ("with space", "with space"),
        ("olá/日本", "olá/日本"),
        ("a.b", "a.b"),
        ("x.yaml.yaml", "x.yaml"),
        ("trailing.", "trailing."),
    ],
)
def test_validate_name_accepts(name: str, expected: str) -> None:
    assert validate_name(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        (".yaml", "empty"),
        ("..", "'..' is not allowed"),
        ("a/../b", "'..' is not allowed"),
        ("a/..", "'..' is not allowed"),
        ("/etc/passwd", "absolute"),
        ("/x.yaml", "absolute"),
        ("a\\b", "'\\'"),
        ("..\\x", "'\\'"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("a\tb", "control"),
        ("a\x1b[31m", "control"),
        ("a\x7f", "control"),
        ("a\x85", "control"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        ("a/.yaml", "empty path segment"),
        (".hidden", "starting with '.'"),
        ("a/.git/x", "starting with '.'"),
        (".", "starting with '.'"),
        ("./a", "starting with '.'"),
        ("a/./b", "starting with '.'"),
        (".llm-vcr/locks/x", "starting with '.'"),
        ("x" * 201, "longer than"),
    ],
)
def test_validate_name_rejects(name: str, reason: str) -> None:
    with pytest.raises(CassetteNameError) as caught:
        validate_name(name)
    assert isinstance(caught.value, ValueError)
    assert reason in str(caught.value)
    assert repr(name) in str(caught.value)


def test_name_error_message_names_the_name() -> None:
    with pytest.raises(CassetteNameError) as caught:
        validate_name("../x")
    assert str(caught.value) == "invalid cassette name '../x': '..' is not allowed"


def test_path_for_is_inside_the_root(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path / "cassettes")
    assert store.path_for("a/b") == tmp_path.resolve() / "cassettes" / "a" / "b.yaml"
    assert store.path_for("a/b.yaml") == store.path_for("a/b")
    with pytest.raises(CassetteNameError):
        store.path_for("../outside")


def test_a_symlink_out_of_the_root_is_refused_for_reads_and_writes(tmp_path: Path) -> None:
    root, outside = tmp_path / "cassettes", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "inside").symlink_to(root / "real")
    store = CassetteStore(root)
    for call in (
        lambda: store.path_for("escape/x"),
        lambda: store.load("escape/x"),
        lambda: store.append("escape/x", [make_interaction("a")]),
    ):
        with pytest.raises(CassetteNameError, match="outside the cassette folder"):
            call()
    assert list(outside.iterdir()) == []
    store.append("inside/x", [make_interaction("a")])
    assert (root / "real" / "x.yaml").is_file()
    assert tags(store.load("inside/x")) == ["a"]


# loading


def test_load_missing_is_none(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    assert store.load("nope") is None
    assert store.load("deeper/nope") is None


def test_start_parses_nothing_and_load_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        write_cassette(tmp_path / f"group{n % 2}" / f"c{n}.yaml", make_items(f"c{n}-", 2))
    spy = ParseSpy(monkeypatch)
    store = CassetteStore(tmp_path)
    assert spy.sizes == []
    first = store.load("group0/c0")
    assert tags(first) == ["c0-0", "c0-1"]
    assert store.load("group0/c0.yaml") is first
    assert len(spy.sizes) == 1


def test_reload_when_the_file_changes(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("old", 1))
    assert tags(store.load("c")) == ["old0"]
    # a teammate's `git pull`: a new file, same name, different content
    replacement = tmp_path / "incoming.yaml"
    write_cassette(replacement, make_items("new", 2))
    os.replace(replacement, path)
    assert tags(store.load("c")) == ["new0", "new1"]


def test_reload_when_rewritten_in_place_with_the_same_size(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    path = tmp_path / "c.yaml"
    write_cassette(path, [make_interaction("aaaa")])
    set_mtime(path, 1_000_000)
    assert tags(store.load("c")) == ["aaaa"]
    size, inode = path.stat().st_size, path.stat().st_ino
    write_cassette(path, [make_interaction("bbbb")])
    set_mtime(path, 1_000_001)
    assert (path.stat().st_size, path.stat().st_ino) == (size, inode)
    assert tags(store.load("c")) == ["bbbb"]


def test_load_after_delete_is_none(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    write_cassette(tmp_path / "c.yaml", make_items("x", 1))
    assert store.load("c") is not None
    (tmp_path / "c.yaml").unlink()
    assert store.load("c") is None


def test_broken_file_error_is_cached_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(b"---\nversion: 2\ninteractions: [\n")
    spy = ParseSpy(monkeypatch)
    store = CassetteStore(tmp_path)
    with pytest.raises(CassetteError) as first:
        store.load("broken")
    assert str(path) in str(first.value)
    with pytest.raises(CassetteError) as second:
        store.load("broken")
    assert str(second.value) == str(first.value)
    assert len(spy.sizes) == 1  # not parsed again per request
    write_cassette(path, make_items("fixed", 1))
    assert tags(store.load("broken")) == ["fixed0"]
    assert len(spy.sizes) == 2


def test_a_folder_where_the_file_should_be_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").mkdir()
    store = CassetteStore(tmp_path)
    with pytest.raises(CassetteError):
        store.load("odd")
    with pytest.raises(CassetteError):
        store.append("odd", [make_interaction("a")])


def test_concurrent_loads_and_appends_in_threads(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                store.append("shared", [make_interaction(f"t{n}-{i}")])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(50):
                loaded = store.load("shared")
                if loaded is not None:
                    assert [i.id for i in loaded.interactions] == list(
                        range(len(loaded.interactions))
                    )
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = tags(store.load("shared"))
    assert sorted(got) == sorted(f"t{n}-{i}" for n in range(4) for i in range(10))
    for n in range(4):  # each thread's appends stay in its order
        mine = [t for t in got if t.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(10)]
    assert tags(CassetteStore(tmp_path).load("shared")) == got


# is_new


def test_is_new_for_a_file_missing_when_first_asked(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path, started_at=time.time())
    assert store.is_new("later")
    # someone else creates it with an old timestamp: still new for this store
    path = tmp_path / "later.yaml"
    write_cassette(path, make_items("x", 1))
    set_mtime(path, store.started_at - HOUR)
    assert store.is_new("later")


def test_is_new_by_mtime_against_started_at(tmp_path: Path) -> None:
    started = time.time()
    old, recent = tmp_path / "old.yaml", tmp_path / "recent.yaml"
    write_cassette(old, make_items("o", 1))
    write_cassette(recent, make_items("r", 1))
    set_mtime(old, started - 10)
    set_mtime(recent, started + 10)
    store = CassetteStore(tmp_path, started_at=started)
    assert not store.is_new("old")
    assert store.is_new("recent")
    assert store.is_new("recent.yaml")


def test_is_new_keeps_its_first_answer_until_the_file_goes(tmp_path: Path) -> None:
    started = time.time()
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("o", 1))
    set_mtime(path, started - 10)
    store = CassetteStore(tmp_path, started_at=started)
    assert not store.is_new("c")
    # another process adds to it meanwhile: this store keeps replaying it as an old cassette
    set_mtime(path, started + 10)
    assert not store.is_new("c")
    # the file goes away: from now on the cassette is new, also once it is back
    path.unlink()
    assert store.is_new("c")
    write_cassette(path, make_items("n", 1))
    set_mtime(path, started - 10)
    assert store.is_new("c")
    # a different store that started before the new file was written sees it as old
    assert not CassetteStore(tmp_path, started_at=started).is_new("c")


def test_is_new_after_this_store_appends(tmp_path: Path) -> None:
    started = time.time() - 10
    old = tmp_path / "old.yaml"
    write_cassette(old, make_items("o", 1))
    set_mtime(old, started - 10)
    store = CassetteStore(tmp_path, started_at=started)
    store.append("created", [make_interaction("c")])
    store.append("old", [make_interaction("n")])
    assert store.is_new("created")
    assert not store.is_new("old")  # it existed before: adding episodes does not make it new


# appending


def test_append_creates_the_file_and_its_folders(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path / "cassettes")
    items = make_items("n", 2)
    store.append("deep/er/c", items)
    path = tmp_path / "cassettes" / "deep" / "er" / "c.yaml"
    assert path.read_bytes() == cassette.dumps(Cassette(make_items("n", 2), NEW_FILE_STYLE))
    assert path.read_bytes() == cassette.dumps(Cassette(make_items("n", 2)))
    assert tags(store.load("deep/er/c")) == ["n0", "n1"]


def test_append_nothing_writes_nothing(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    store.append("c", [])
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize("style", STYLES, ids=str)
@pytest.mark.parametrize("existing", [0, 1, 3])
def test_append_equals_dumps_of_the_combined_cassette(
    tmp_path: Path, style: Style, existing: int
) -> None:
    path = tmp_path / "c.yaml"
    written = write_cassette(path, make_items("old", existing), style)
    # an empty cassette (`interactions: []`) shows no layout: it keeps what the reader makes of it
    style = cassette.loads(written).style if existing == 0 else style
    store = CassetteStore(tmp_path)
    store.append("c", make_items("new", 2))
    combined = make_items("old", existing) + make_items("new", 2)
    assert path.read_bytes() == cassette.dumps(Cassette(combined, style))
    store.append("c", [make_interaction("more")])
    combined.append(make_interaction("more"))
    assert path.read_bytes() == cassette.dumps(Cassette(combined, style))
    reloaded = CassetteStore(tmp_path).load("c")
    assert reloaded is not None and reloaded.style == style
    assert store.load("c") == reloaded


def test_append_to_the_seed_keeps_its_bytes(tmp_path: Path) -> None:
    from conftest import SEED

    shutil.copyfile(SEED, tmp_path / "seed.yaml")
    store = CassetteStore(tmp_path)
    store.append("seed", [make_interaction("x")])
    data = (tmp_path / "seed.yaml").read_bytes()
    assert data.startswith(SEED.read_bytes())
    seed = cassette.loads(SEED.read_bytes())
    assert data == cassette.dumps(Cassette([*seed.interactions, make_interaction("x")], seed.style))


def test_append_to_every_corpus_cassette(corpus_dir: Path, tmp_path: Path) -> None:
    # go-vcr's files, both layouts and shapes: the bytes stay, the list grows by one
    from conftest import corpus_files

    files = corpus_files()
    for n, source in enumerate(files):
        shutil.copyfile(source, tmp_path / f"c{n}.yaml")
    store = CassetteStore(tmp_path)
    added = cassette.loads(cassette.dumps(Cassette([make_interaction("added")]))).interactions
    for n, source in enumerate(files):
        original = source.read_bytes()
        store.append(f"c{n}", [make_interaction("added")])
        data = (tmp_path / f"c{n}.yaml").read_bytes()
        before = cassette.loads(original)
        empty = cassette.EMPTY_INTERACTIONS_LINE
        if original.endswith(empty):  # `interactions: []` opens into the list that follows
            original = original.removesuffix(empty) + b"interactions:\n"
        assert data == original + cassette.dump_interactions(
            [make_interaction("added")], before.style, len(before.interactions)
        ), source
        after = cassette.loads(data)
        added[0].id = len(before.interactions)
        assert after.interactions == [*before.interactions, *added], source
        assert after.style == before.style, source


def test_appended_interactions_get_the_next_ids_and_the_load_cache_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cassette(tmp_path / "c.yaml", make_items("old", 2))
    store = CassetteStore(tmp_path)
    before = store.load("c")
    assert before is not None
    spy = ParseSpy(monkeypatch)
    store.append("c", make_items("new", 2))
    after = store.load("c")
    assert after is not before
    assert tags(before) == ["old0", "old1"]  # what callers already hold is left alone
    assert tags(after) == ["old0", "old1", "new0", "new1"]
    assert [i.id for i in after.interactions] == [0, 1, 2, 3]
    assert not spy.parsed("old0")  # the existing interactions were not parsed again
    assert after == CassetteStore(tmp_path).load("c")


def test_append_to_a_large_cassette_reads_its_tail_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, style = tmp_path / "big.yaml", Style(4, True)
    big = [make_interaction("first-of-many")] + [make_interaction(f"b{i}") for i in range(1, 5000)]
    original = write_cassette(path, big, style)
    store = CassetteStore(tmp_path)

    spy = ParseSpy(monkeypatch)
    monkeypatch.setattr(LockedCassette, "read", no_whole_read)
    store.append("big", [make_interaction("n0")])  # the first append: the file's tail only
    store.append("big", [make_interaction("n1")])
    assert spy.sizes == []  # nothing parsed, nothing read whole

    added = cassette.dump_interactions([make_interaction("n0")], style, 5000)
    added += cassette.dump_interactions([make_interaction("n1")], style, 5001)
    assert path.read_bytes() == original + added
    loaded = store.load("big")
    assert loaded is not None
    assert len(loaded.interactions) == 5002 and loaded.style == style
    assert tags(loaded)[-3:] == ["b4999", "n0", "n1"]
    assert [i.id for i in loaded.interactions[-3:]] == [4999, 5000, 5001]


def no_whole_read(self: LockedCassette) -> bytes:
    raise AssertionError("the whole file was read")


def test_a_hand_edited_last_entry_makes_the_first_append_parse_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the control of the test above: when the tail is not in the writer's own form, the store
    # parses the whole file (and checks it can be extended), once
    data = write_cassette(tmp_path / "c.yaml", make_items("old", 3))
    last = data.rindex(b"    method: POST\n")  # the same text, double-quoted by hand
    edited = data[:last] + b'    method: "POST"\n' + data[last + 17 :]
    assert tags(cassette.loads(edited)) == ["old0", "old1", "old2"]
    (tmp_path / "c.yaml").write_bytes(edited)
    store = CassetteStore(tmp_path)
    spy = ParseSpy(monkeypatch)
    store.append("c", [make_interaction("n0")])
    store.append("c", [make_interaction("n1")])
    assert len(spy.sizes) == 1 and spy.parsed("old0")
    assert tags(store.load("c")) == ["old0", "old1", "old2", "n0", "n1"]
    assert (tmp_path / "c.yaml").read_bytes().startswith(edited)


def test_appends_from_two_stores_interleave(tmp_path: Path) -> None:
    a, b = CassetteStore(tmp_path), CassetteStore(tmp_path)
    a.append("c", [make_interaction("a0")])
    b.append("c", [make_interaction("b0")])
    a.append("c", [make_interaction("a1")])  # must notice b's write
    b.append("c", [make_interaction("b1")])
    expected = cassette.dumps(Cassette([make_interaction(t) for t in ["a0", "b0", "a1", "b1"]]))
    assert (tmp_path / "c.yaml").read_bytes() == expected
    assert tags(a.load("c")) == tags(b.load("c")) == ["a0", "b0", "a1", "b1"]


def test_replace_old_starts_an_old_file_afresh(tmp_path: Path) -> None:
    started = time.time()
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("old", 3), Style(4, False))
    set_mtime(path, started - HOUR)
    store = CassetteStore(tmp_path, started_at=started)
    store.append("c", [make_interaction("r0")], replace_old=True)
    assert path.read_bytes() == cassette.dumps(Cassette([make_interaction("r0")], NEW_FILE_STYLE))
    # its own writes are never old to it, even with a timestamp from before its start
    set_mtime(path, started - HOUR)
    store.append("c", [make_interaction("r1")], replace_old=True)
    assert tags(store.load("c")) == ["r0", "r1"]
    assert tags(CassetteStore(tmp_path).load("c")) == ["r0", "r1"]


def test_replace_old_keeps_a_file_written_after_the_start(tmp_path: Path) -> None:
    started = time.time() - 10
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("other", 2), Style(4, True))
    set_mtime(path, started + 5)  # another proxy recorded it after this one started
    store = CassetteStore(tmp_path, started_at=started)
    store.append("c", [make_interaction("mine")], replace_old=True)
    expected = cassette.dumps(
        Cassette([*make_items("other", 2), make_interaction("mine")], Style(4, True))
    )
    assert path.read_bytes() == expected


def test_without_replace_old_an_old_file_is_appended_to(tmp_path: Path) -> None:
    started = time.time()
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("old", 1))
    set_mtime(path, started - HOUR)
    store = CassetteStore(tmp_path, started_at=started)
    store.append("c", [make_interaction("new")])
    assert tags(store.load("c")) == ["old0", "new"]


def test_append_refuses_a_broken_file_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    broken = b"---\nversion: 2\ninteractions:\n- id: 0\n  request: [\n"
    path.write_bytes(broken)
    store = CassetteStore(tmp_path)
    with pytest.raises(CassetteError) as caught:
        store.append("broken", [make_interaction("x")])
    assert str(path) in str(caught.value)
    assert path.read_bytes() == broken
    assert sorted(p.name for p in tmp_path.iterdir()) == [".llm-vcr", "broken.yaml"]


def test_replace_old_replaces_an_old_file_without_reading_it(tmp_path: Path) -> None:
    # mode `record` re-records old cassettes whatever they hold, like go-vcr's RecordOnly
    path = tmp_path / "broken.yaml"
    path.write_bytes(b"<<<<<<< HEAD\nnot yaml: [\n")
    set_mtime(path, time.time() - HOUR)
    store = CassetteStore(tmp_path)
    store.append("broken", [make_interaction("x")], replace_old=True)
    assert path.read_bytes() == cassette.dumps(Cassette([make_interaction("x")]))


def test_append_refuses_a_layout_it_cannot_extend(tmp_path: Path) -> None:
    # loadable, but `interactions` is not the last key: bytes added at the end would land in
    # the wrong place, so the store says so instead of writing
    data = cassette.dumps(Cassette(make_items("a", 1)))
    moved = data.replace(b"version: 2\n", b"") + b"version: 2\n"
    assert len(cassette.loads(moved).interactions) == 1
    path = tmp_path / "moved.yaml"
    path.write_bytes(moved)
    store = CassetteStore(tmp_path)
    with pytest.raises(CassetteError, match="cannot add interactions"):
        store.append("moved", [make_interaction("x")])
    assert path.read_bytes() == moved


def test_append_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, make_items("a", 1))
    path.chmod(0o640)
    CassetteStore(tmp_path).append("c", [make_interaction("b")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_lock_files_stay_out_of_git(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    store.append("a/b", [make_interaction("x")])
    state = tmp_path / ".llm-vcr"
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"
    assert [p.suffix for p in (state / "locks").iterdir()] == [".lock"]
    # no temp file is left next to the cassette
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.yaml"]


# stale temp files


def test_start_removes_abandoned_temp_files_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    abandoned = [
        tmp_path / ".top.yaml.4194999.tmp",  # pid that cannot be alive
        tmp_path / "a" / "b" / f".c.yaml.{os.getpid()}.tmp",  # alive pid, nobody writing
        tmp_path / "a" / ".x.yaml.1.tmp",
    ]
    kept = [
        tmp_path / "top.yaml",
        tmp_path / ".notes",
        tmp_path / ".c.yaml.tmp",
        tmp_path / "c.yaml.123.tmp",
        tmp_path / ".c.json.123.tmp",
        tmp_path / ".git" / ".c.yaml.4194999.tmp",  # hidden folders hold no cassettes
    ]
    for path in abandoned + kept:
        path.write_bytes(b"half a cassette")
    CassetteStore(tmp_path)
    assert [p for p in abandoned if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []


def test_start_with_a_missing_root(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path / "not-yet")
    assert store.load("x") is None
    store.append("x", [make_interaction("a")])
    assert tags(store.load("x")) == ["a"]
