"""The append API of the format (`llmvcr.cassette.append`): whether a file's bytes can be
extended, the bytes of a new file or of an extended one, and reading back only what was added."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmvcr.cassette import (
    NEW_FILE_STYLE,
    Cassette,
    Ending,
    Interaction,
    Request,
    Response,
    Style,
    append_bytes,
    appendable,
    dump_interactions,
    dumps,
    ending,
    loads,
    loads_appended,
    open_list,
    read_extension,
    tail_ending,
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


def _tail_reader(data: bytes, reads: list[int] | None = None) -> Callable[[int], bytes]:
    def read_tail(n: int) -> bytes:
        if reads is not None:
            reads.append(n)
        return data[len(data) - n :]

    return read_tail


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("count", [1, 3])
def test_tail_ending_reads_the_style_and_next_id_from_the_last_entry(
    style: Style, count: int
) -> None:
    data = dumps(Cassette([_interaction(n) for n in range(count)], style))
    reads: list[int] = []
    found = tail_ending(_tail_reader(data, reads), len(data))
    assert found == Ending(style, count, in_place=True)
    assert found == ending(data, style, count)
    assert reads == [len(data)]  # a small file: read once, whole


def test_tail_ending_reads_only_the_end_of_a_big_file() -> None:
    data = dumps(Cassette([_interaction(n) for n in range(3000)], Style(4, True)))
    reads: list[int] = []
    assert tail_ending(_tail_reader(data, reads), len(data)) == Ending(Style(4, True), 3000)
    assert reads == [64 * 1024] and len(data) > 2 * 64 * 1024


def test_tail_ending_grows_its_look_for_a_big_last_entry() -> None:
    big = _interaction(1)
    big.response.body = b"x" * 300_000
    data = dumps(Cassette([_interaction(0), big]))
    reads: list[int] = []
    assert tail_ending(_tail_reader(data, reads), len(data)) == Ending(NEW_FILE_STYLE, 2)
    assert reads == [64 * 1024, 256 * 1024, len(data)]


@pytest.mark.parametrize(
    "data",
    [
        dumps(Cassette([])),  # no entry: the whole file says (open_list must rewrite it)
        b"---\nversion: 2\ninteractions:\n",
        dumps(Cassette([_interaction(0)])).replace(b"method: POST", b'method: "POST"'),
        dumps(Cassette([_interaction(0)])) + b"note: x\n",
        dumps(Cassette([_interaction(0)]))[:-5],  # cut short
    ],
)
def test_tail_ending_leaves_other_files_to_a_whole_read(data: bytes) -> None:
    assert tail_ending(_tail_reader(data), len(data)) is None


def test_tail_ending_declines_an_entry_both_key_shapes_write_alike() -> None:
    full = _interaction(0)
    full.request.form = {"a": ["b"]}
    full.request.headers = {"A": ["b"]}
    full.request.transfer_encoding = ["chunked"]
    full.request.trailer = {"T": ["v"]}
    full.request.host = "h"
    full.request.remote_addr = "r"
    full.request.request_uri = "/u"
    full.response.transfer_encoding = ["chunked"]
    full.response.trailer = {"T": ["v"]}
    full.response.uncompressed = True
    full.response.duration = 1
    one, other = Style(2, True), Style(2, False)
    assert dump_interactions([full], one, 0) == dump_interactions([full], other, 0)
    data = dumps(Cassette([full], one))
    assert tail_ending(_tail_reader(data), len(data)) is None


def test_an_empty_list_is_opened_by_a_rewrite() -> None:
    data = dumps(Cassette([]))
    assert ending(data, NEW_FILE_STYLE, 0) == Ending(NEW_FILE_STYLE, 0, in_place=False)
    opened = b"---\nversion: 2\ninteractions:\n"
    assert ending(opened, NEW_FILE_STYLE, 0).in_place


@pytest.mark.parametrize("style", STYLES)
def test_read_extension_takes_only_entries_at_the_file_indent(style: Style) -> None:
    added = dump_interactions([_interaction(3), _interaction(4)], style, 3)
    assert read_extension(added, style) == [_interaction(3), _interaction(4)]
    assert read_extension(b"", style) == []
    other = Style(6 - style.indent, style.omit_empty)
    assert read_extension(added, other) is None
    assert read_extension(b"note: x\n", style) is None
