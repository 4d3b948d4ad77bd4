"""The append API of the format (`llmvcr.cassette.append`): whether a file's bytes can be
extended, the bytes of a new file or of an extended one, and reading back only what was added."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmvcr.cassette import (
    NEW_FILE_STYLE,
    Cassette,
    Interaction,
    Request,
    Response,
    Style,
    append_bytes,
    appendable,
    dump_interactions,
    dumps,
    loads,
    loads_appended,
    open_list,
)
from llmvcr.cassette import append as append_module

STYLES = [Style(2, True), Style(2, False), Style(4, True), Style(4, False)]


def _interaction(n: int) -> Interaction:
    request = Request(method="POST", url=f"https://api.example.com/v1/{n}", body=b'{"n":%d}' % n)
    request.content_length = len(request.body)
    response = Response(body=b"data: %d\n\n" % n, headers={"Content-Type": ["text/event-stream"]})
    return Interaction(request, response, n)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("count", [0, 1, 3])
def test_what_the_writer_writes_is_appendable_and_appends_equal_dumping_all(
    style: Style, count: int
) -> None:
    old = [_interaction(n) for n in range(count)]
    data = dumps(Cassette(old, style))
    assert appendable(data, style, count) is None
    new = [_interaction(n) for n in range(count, count + 2)]
    whole = append_bytes(data, new, style, count)
    assert whole == dumps(Cassette(old + new, style))
    assert whole == open_list(data) + dump_interactions(new, style, count)


def test_a_new_file_is_written_in_the_new_file_style() -> None:
    items = [_interaction(0), _interaction(1)]
    assert append_bytes(None, items, Style(4, False), 0) == dumps(Cassette(items, NEW_FILE_STYLE))
    assert open_list(None) == b"---\nversion: 2\ninteractions:\n"


@pytest.mark.parametrize(
    ("data", "style", "count", "reason"),
    [
        (b"---\nversion: 2\ninteractions: []", Style(2, True), 0, "line break"),
        (b"---\nversion: 2\ninteractions: []\nnote: x\n", Style(2, True), 0, "empty"),
        (
            dumps(Cassette([_interaction(0)])) + b"note: x\n",
            Style(2, True),
            1,
            "not the last key",
        ),
        (
            dumps(Cassette([_interaction(0)], Style(4, True))) + b"note: x\n",
            Style(4, True),
            1,
            "not the last key",
        ),
        (b"---\nversion: 2\ninteractions: [{id: 0}]\n", Style(2, True), 1, "block list"),
    ],
)
def test_files_that_cannot_be_extended_say_why(
    data: bytes, style: Style, count: int, reason: str
) -> None:
    why = appendable(data, style, count)
    assert why is not None and reason in why


@pytest.mark.parametrize("style", STYLES)
def test_loads_appended_reads_only_the_added_entries_on_the_fast_path(
    style: Style, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = dumps(Cassette([_interaction(n) for n in range(5)], style))
    added = dump_interactions([_interaction(5), _interaction(6)], style, 5)

    def no_full_reader(*args: object) -> None:
        raise AssertionError("the full reader was used")

    monkeypatch.setattr(append_module, "loads", no_full_reader)
    new = loads_appended(added)
    assert new == [_interaction(5), _interaction(6)]
    monkeypatch.undo()
    assert loads(open_list(existing) + added).interactions[5:] == new


def test_loads_appended_falls_back_to_the_full_reader() -> None:
    """Unknown keys are left to the full reader by the fast one: the ids stay the file's."""
    items = [_interaction(3), _interaction(4)]
    items[0].extra = {"note": "kept"}
    new = loads_appended(dump_interactions(items, Style(4, True), 3))
    assert [i.id for i in new] == [3, 4]
    assert new[0].extra == {"note": "kept"}
    assert new == items


def test_go_vcr_loads_appended_files(
    tmp_path: Path, govcr_check: Callable[[Iterable[Path]], None]
) -> None:
    paths = [tmp_path / "new.yaml"]
    paths[0].write_bytes(append_bytes(None, [_interaction(0)], NEW_FILE_STYLE, 0))
    for style in STYLES:
        data = dumps(Cassette([_interaction(0)], style))
        path = tmp_path / f"indent{style.indent}-{'omit' if style.omit_empty else 'full'}.yaml"
        path.write_bytes(append_bytes(data, [_interaction(1), _interaction(2)], style, 1))
        paths.append(path)
    govcr_check(paths)
