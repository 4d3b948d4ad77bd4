"""store.py and paths: names never reach outside the root (issue 11, item 8).

A symbolic link leading out of the root, a folder swapped for one after its first use (or between
resolving a name and opening it), a link loop, a name too long for the file system: each raises
CassetteNameError (never a bare OSError) and nothing is read or written outside the root. Also:
`CassetteStore.names()` and the `.llm-vcr/` folder a store makes when it starts.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmvcr import locking
from llmvcr import store as store_module
from llmvcr.cassette import Cassette, dumps
from llmvcr.paths import LinkInPath, open_folder_beneath
from llmvcr.store import CassetteNameError, CassetteStore, validate_name
from test_store import make_interaction, tags

GovcrCheck = Callable[[Iterable[Path | str]], None]


def every_call(store: CassetteStore, name: str) -> dict[str, Callable[[], object]]:
    """Each store operation on `name` that touches its file."""
    return {
        "path_for": lambda: store.path_for(name),
        "load": lambda: store.load(name),
        "append": lambda: store.append(name, [make_interaction("new")]),
    }


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A cassette root and a folder outside it holding a cassette that must never change."""
    root, outside = tmp_path / "cassettes", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "x.yaml").write_bytes(dumps(Cassette([make_interaction("outside")])))
    return root, outside


# links out of the root


def test_a_linked_file_out_of_the_root_is_refused(dirs: tuple[Path, Path]) -> None:
    root, outside = dirs
    before = files_under(outside)
    (root / "x.yaml").symlink_to(outside / "x.yaml")
    store = CassetteStore(root)
    calls = {**every_call(store, "x"), "is_new": lambda: store.is_new("x")}
    for what, call in calls.items():
        with pytest.raises(CassetteNameError, match="outside the cassette folder"):
            call()
        assert files_under(outside) == before, what
    assert store.cached("x") is None
    assert "x" not in store.names()


def test_a_folder_swapped_for_a_link_after_its_first_use(
    dirs: tuple[Path, Path], govcr_check: GovcrCheck
) -> None:
    root, outside = dirs
    before = files_under(outside)
    store = CassetteStore(root)
    store.append("a/x", [make_interaction("first")])
    loaded = store.load("a/x")
    assert store.cached("a/x") is loaded
    # `a` becomes a link to the outside folder, which holds an `x.yaml` of its own
    (root / "a").rename(root / "a-moved")
    (root / "a").symlink_to(outside)

    assert store.cached("a/x") is None  # a different file: never the outside one's content
    for what, call in every_call(store, "a/x").items():
        with pytest.raises(CassetteNameError, match="outside the cassette folder"):
            call()
        assert files_under(outside) == before, what
    assert tags(CassetteStore(root).load("a-moved/x")) == ["first"]
    govcr_check([root / "a-moved" / "x.yaml"])


@pytest.mark.parametrize("operation", ["load", "append"])
def test_a_folder_swapped_between_resolving_and_opening(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """The race a check-then-open leaves: the name resolves inside, then its folder becomes a
    link before the open. The open (folder by folder, no links followed) notices; the name is
    resolved again, now outside: refused."""
    root, outside = dirs
    before = files_under(outside)
    store = CassetteStore(root)
    store.append("a/x", [make_interaction("first")])
    resolve = CassetteStore._resolve
    swaps: list[str] = []

    def resolve_then_swap(self: CassetteStore, name: str) -> Path:
        real = resolve(self, name)
        if not swaps:
            swaps.append(name)
            (root / "a").rename(root / "a-moved")
            (root / "a").symlink_to(outside)
        return real

    monkeypatch.setattr(CassetteStore, "_resolve", resolve_then_swap)
    with pytest.raises(CassetteNameError, match="outside the cassette folder"):
        every_call(store, "a/x")[operation]()
    assert swaps == ["a/x"]
    assert files_under(outside) == before
    assert tags(CassetteStore(root).load("a-moved/x")) == ["first"]


def test_a_folder_swapped_for_a_link_inside_the_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    store = CassetteStore(root)
    store.append("a/x", [make_interaction("first")])
    (root / "a").rename(root / "b")
    (root / "a").symlink_to(root / "b")
    store.append("a/x", [make_interaction("second")])
    assert tags(store.load("a/x")) == ["first", "second"]
    assert store.path_for("a/x") == root.resolve() / "b" / "x.yaml"


def test_a_link_loop_is_a_name_error(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    root.mkdir()
    (root / "loop").symlink_to(root / "loop")
    (root / "loop.yaml").symlink_to(root / "loop.yaml")
    store = CassetteStore(root)
    for name in ("loop/x", "loop"):
        calls = every_call(store, name)
        del calls["path_for"]  # resolving alone opens nothing
        calls["is_new"] = lambda name=name: store.is_new(name)
        for call in calls.values():
            with pytest.raises(CassetteNameError, match="loop"):
                call()
    assert [f for f in files_under(root) if not f.startswith(".llm-vcr/")] == []  # no write


# names too long for the file system


def test_a_segment_too_long_is_a_name_error(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path)
    name = "a/" + "x" * 201
    calls = {**every_call(store, name), "cached": lambda: store.cached(name),
             "is_new": lambda: store.is_new(name)}
    for call in calls.values():
        with pytest.raises(CassetteNameError, match="longer than 200 bytes"):
            call()
    assert not (tmp_path / "a").exists()


def test_a_path_too_long_in_total_is_a_name_error(tmp_path: Path) -> None:
    """Segments each short enough, together past PATH_MAX (4096 on Linux)."""
    store = CassetteStore(tmp_path)
    name = "/".join(["d" * 200] * 21)
    calls = {**every_call(store, name), "cached": lambda: store.cached(name),
             "is_new": lambda: store.is_new(name)}
    for call in calls.values():
        with pytest.raises(CassetteNameError, match="longer than this file system allows"):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".llm-vcr"]
    # the longest path that fits is fine
    fits = "/".join(["d" * 200] * 10)
    store.append(fits, [make_interaction("deep")])
    assert tags(store.load(fits)) == ["deep"]
    assert fits in store.names()


def test_a_file_system_name_error_is_a_name_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system with a shorter NAME_MAX than the store assumed: ENAMETOOLONG from the open
    becomes CassetteNameError, for reads and writes."""

    def too_long(*args: object, **kwargs: object) -> int:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))

    store = CassetteStore(tmp_path)
    monkeypatch.setattr(store_module, "open_folder_beneath", too_long)
    monkeypatch.setattr(locking, "open_folder_beneath", too_long)
    with pytest.raises(CassetteNameError, match="longer than the file system allows"):
        store.load("a/x")
    with pytest.raises(CassetteNameError, match="longer than the file system allows"):
        store.append("a/x", [make_interaction("a")])


def test_a_name_that_is_not_unicode_text_is_a_name_error() -> None:
    with pytest.raises(CassetteNameError, match="not valid Unicode"):
        validate_name("caf\udce9")


# open_folder_beneath


def test_open_folder_beneath_follows_no_link(tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_bytes(b"")
    fd = open_folder_beneath(tmp_path, ["real", "sub"], create=False)
    os.close(fd)
    with pytest.raises(LinkInPath):
        open_folder_beneath(tmp_path, ["link", "sub"], create=False)
    with pytest.raises(NotADirectoryError):
        open_folder_beneath(tmp_path, ["file"], create=False)
    with pytest.raises(FileNotFoundError):
        open_folder_beneath(tmp_path, ["new", "deeper"], create=False)
    fd = open_folder_beneath(tmp_path, ["new", "deeper"], create=True)
    os.close(fd)
    assert (tmp_path / "new" / "deeper").is_dir()


# names()


def test_names_lists_every_cassette_once(tmp_path: Path) -> None:
    root, outside = tmp_path / "cassettes", tmp_path / "outside"
    store = CassetteStore(root)
    for name in ("top", "a/b", "a/c/d", "olá/日本"):
        store.append(name, [make_interaction(name)])
    outside.mkdir()
    (outside / "o.yaml").write_bytes(b"")
    (root / "notes.txt").write_bytes(b"")
    (root / ".hidden.yaml").write_bytes(b"")
    (root / ".git").mkdir()
    (root / ".git" / "x.yaml").write_bytes(b"")
    (root / "a" / ".b.yaml.123.tmp").write_bytes(b"")
    (root / "folder.yaml").mkdir()
    (root / "linked-dir").symlink_to(root / "a")  # not entered: it would list a/b twice
    (root / "alias.yaml").symlink_to(root / "top.yaml")  # a linked file inside: listed
    (root / "escape.yaml").symlink_to(outside / "o.yaml")  # a linked file outside: not listed
    (root / "escape-dir").symlink_to(outside)
    assert store.names() == ["a/b", "a/c/d", "alias", "olá/日本", "top"]
    assert CassetteStore(tmp_path / "empty").names() == []


# the state folder


def test_a_store_makes_its_state_folder_when_it_starts(tmp_path: Path) -> None:
    root = tmp_path / "not-yet" / "cassettes"
    CassetteStore(root)
    state = root / ".llm-vcr"
    assert (state / "locks").is_dir()
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"
    assert locking.store_roots(root / "any" / "x.yaml") == [root]


def test_a_read_only_store_still_starts_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(root: Path) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(root / ".llm-vcr"))

    monkeypatch.setattr(store_module, "make_state_dir", read_only)  # root ignores chmod
    root = tmp_path / "cassettes"
    root.mkdir()
    shutil.copy(Path(__file__).parent.parent / "cassettes" / "simple_streaming.yaml",
                root / "seed.yaml")
    store = CassetteStore(root)
    assert not (root / ".llm-vcr").exists()
    loaded = store.load("seed")
    assert loaded is not None and len(loaded.interactions) == 1
