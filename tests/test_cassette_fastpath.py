"""The cassette fast reader: taken for every file the writer would write (the corpus, the seed,
random cassettes) with the full reader's result, and never for anything else, so that `loads`
behaves exactly as the full reader does on every input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SEED, corpus_files
from llmvcr import cassette
from llmvcr.cassette import (
    Cassette,
    CassetteError,
    CassetteWarning,
    Chunk,
    Interaction,
    Request,
    Response,
    Style,
    dumps,
    fastreader,
    fullreader,
    loads,
    reader,
    scalars,
)
from test_cassette_roundtrip import TRICKY, cassettes


def _reference(data: bytes | str) -> Cassette | str:
    """What the full reader makes of `data` (with the chunks check loads adds): a cassette, or
    the text of its CassetteError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CassetteWarning)
            loaded = fullreader.full_loads(data, "x.yaml")
            reader.check_chunks(loaded.interactions, "x.yaml")
            return loaded
    except CassetteError as e:
        return str(e)


def _loaded(data: bytes | str) -> Cassette | str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CassetteWarning)
            return loads(data, "x.yaml")
    except CassetteError as e:
        return str(e)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(p.parents[2])))
def test_fast_reader_reads_every_corpus_file_as_the_full_reader(
    corpus_dir: Path, path: Path
) -> None:
    data = path.read_bytes()
    fast = fastreader.fast_loads(data)
    assert fast is not None
    assert fast == fullreader.full_loads(data, str(path))


def test_fast_reader_reads_the_seed_as_the_full_reader() -> None:
    data = SEED.read_bytes()
    fast = fastreader.fast_loads(data)
    assert fast is not None
    assert fast == fullreader.full_loads(data, str(SEED))
    assert loads(data.decode("utf-8")) == fast  # a str goes the same way


def _without_extras(c: Cassette) -> Cassette:
    """The fast reader leaves unknown keys to the full reader: the same cassette without them."""
    c.extra = {}
    for item in c.interactions:
        item.extra, item.request.extra, item.response.extra = {}, {}, {}
    return c


def _all_keys_simple(c: Cassette) -> bool:
    maps = [m for i in c.interactions for m in (i.request.headers, i.request.form)]
    maps += [m for i in c.interactions for m in (i.request.trailer, i.response.headers)]
    maps += [i.response.trailer for i in c.interactions]
    return all(scalars.simple_key_text(name) is not None for m in maps for name in m)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cassettes().map(_without_extras))
def test_fast_reader_reads_back_what_dumps_writes(original: Cassette) -> None:
    data = dumps(original)
    fast = fastreader.fast_loads(data)
    if not _all_keys_simple(original):
        # go-yaml's `? key` form: left to the full reader, which must still agree
        assert fast is None or fast == _reference(data)
        return
    assert fast is not None
    assert fast.interactions == original.interactions
    assert fast == _reference(data)
    if original.interactions:
        assert fast.style.indent == original.style.indent


def test_equal_maps_are_loaded_as_one_shared_object() -> None:
    headers = {"Content-Type": ["application/json"], "X-2": ["a", "b"]}
    items = [
        Interaction(Request(url=f"https://x/{n}", headers=dict(headers)), Response(headers={}))
        for n in range(3)
    ]
    data = dumps(Cassette(items))
    loaded = fastreader.fast_loads(data)
    assert loaded is not None
    assert [i.request.headers for i in loaded.interactions] == [headers] * 3
    first = loaded.interactions[0].request.headers
    assert all(i.request.headers is first for i in loaded.interactions)
    # empty maps are never shared: each interaction gets its own
    assert loaded.interactions[0].response.headers is not loaded.interactions[1].response.headers


def test_chunks_that_do_not_fit_are_dropped_with_a_warning_on_the_fast_path() -> None:
    response = Response(body=b"abcdef", chunks=[Chunk(1_000_000, 2), Chunk(2_000_000, 3)])
    data = dumps(Cassette([Interaction(Request(url="https://x/"), response)]))
    fast = fastreader.fast_loads(data)
    assert fast is not None and fast.interactions[0].response.chunks is not None
    with pytest.warns(CassetteWarning, match="sizes add up to 5 bytes but the body has 6"):
        loaded = loads(data, "x.yaml")
    assert loaded.interactions[0].response.chunks is None


# ---- files the fast reader must leave to the full reader


def _seed_text() -> str:
    return SEED.read_text("utf-8")


def _edit(pattern: str, replacement: str, count: int = 1) -> str:
    text, n = re.subn(pattern, replacement, _seed_text(), count=count, flags=re.M)
    assert n, pattern
    return text


HAND_EDITED = {
    "extra space after a key": _edit(r"^    proto: HTTP/1.1$", "    proto:  HTTP/1.1"),
    "trailing space": _edit(r"^    method: POST$", "    method: POST "),
    "comment line": _edit(r"^  response:$", "  # recorded by hand\n  response:"),
    "comment after a value": _edit(r"^    code: 200$", "    code: 200 # ok"),
    "flow-style headers": _edit(
        r"^    headers:\n      Content-Type:\n      - text/event-stream; charset=utf-8$",
        "    headers: {Content-Type: [text/event-stream; charset=utf-8]}",
    ),
    "quoted integer": _edit(r"^    code: 200$", '    code: "200"'),
    "version 1": _edit(r"^version: 2$", "version: 1"),
    "no document marker": _seed_text().removeprefix("---\n"),
    "truncated in a body": _seed_text()[:3000],
    "truncated in a key": _seed_text()[: _seed_text().index("duration:") + 4],
    "no final line break": _seed_text().rstrip("\n"),
    "CRLF line ends": _seed_text().replace("\n", "\r\n"),
    "tab indentation": _edit(r"^    method: POST$", "\tmethod: POST"),
    "unknown key": _edit(r"^    method: POST$", "    method: POST\n    note: hello"),
    "keys out of order": _edit(
        r"^    url: (.*)\n    method: POST$", r"    method: POST\n    url: \1"
    ),
    "duplicate key": _edit(r"^    method: POST$", "    method: POST\n    method: GET"),
    "missing key": _edit(r"^    host: \"\"\n", ""),
    "anchor and alias": _edit(
        r"^    headers:\n      Accept:\n      - application/json$",
        "    headers:\n      Accept: &a\n      - application/json",
    ).replace("      Content-Type:\n      - application/json", "      Content-Type: *a", 1),
    "plain null host": _edit(r'^    host: ""$', "    host: ~"),
    "id out of sequence": _edit(r"^- id: 0$", "- id: 7"),
    "4-space keys in a 2-space file": _edit(r"^    method: POST$", "      method: POST"),
    "folded block": _edit(r"^    body: \|\+$", "    body: >+"),
    "unknown escape": _seed_text().replace('host: ""', 'host: "a\\qb"'),
    "indentation indicator not needed": _edit(r"^    body: \|\+$", "    body: |2+"),
    "second document": _seed_text() + "---\nversion: 2\ninteractions: []\n",
    "empty interactions, null": "---\nversion: 2\ninteractions:\n",
    "byte order mark": "\ufeff" + _seed_text(),
}


@pytest.mark.parametrize("name", sorted(HAND_EDITED))
def test_fast_reader_gives_up_on_hand_edited_files(name: str) -> None:
    text = HAND_EDITED[name]
    assert text != _seed_text()
    data = text.encode("utf-8")
    assert fastreader.fast_loads(data) is None
    assert _loaded(data) == _reference(data)
    assert _loaded(text) == _reference(text)


def test_fast_reader_gives_up_on_bytes_that_are_not_utf8() -> None:
    data = _seed_text().replace("Olá", "Ol\udce1").encode("utf-8", "surrogateescape")
    assert fastreader.fast_loads(data) is None
    assert _loaded(data) == _reference(data)
    assert "not UTF-8 text" in str(_loaded(data))


def test_empty_cassette_loads_the_same_in_both_layouts() -> None:
    for style in (Style(2, True), Style(4, False)):
        data = dumps(Cassette([], style))
        fast = fastreader.fast_loads(data)
        assert fast is not None
        assert fast == _reference(data)


# ---- the writer's faster string escapes, against their plain definitions


@given(st.text(st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(TRICKY))))
def test_double_quoted_escapes_each_character_as_its_definition(s: str) -> None:
    expected = "".join(
        scalars.escape_char(c) if scalars.NEEDS_ESCAPE.fullmatch(c) else c for c in s
    )
    if s.startswith("\ufeff"):
        expected = "".join(map(scalars.escape_char, s))
    assert scalars.double_quoted(s) == expected


@given(
    st.lists(st.sampled_from(["", "a", " b", "\tc", "data: {}", "x y"]), min_size=2).map(
        "\n".join
    ),
    st.sampled_from([2, 6, 8]),
)
def test_literal_block_indents_every_non_empty_line(s: str, indent: int) -> None:
    text = scalars.literal_text(s, indent, 2)
    body = text.split("\n", 1)[1]
    expected = re.sub(r"^(?=.)", " " * indent, s, flags=re.M)
    assert body == (expected if s.endswith("\n") else expected + "\n")


@given(
    st.lists(
        st.one_of(
            st.integers(0, 10**12),
            st.integers(0, 10**6).map(lambda n: n * 1000),
            st.integers(0, 10**6).map(lambda n: n * 1_000_000),
            st.integers(-(10**12), 5 * 3600 * 10**9),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_fast_reader_reads_durations_as_go_does(durations: list[int]) -> None:
    items = [Interaction(Request(), Response(duration=ns)) for ns in durations]
    data = dumps(Cassette(items))
    fast = fastreader.fast_loads(data)
    assert fast is not None
    read = [i.response.duration for i in fast.interactions]
    assert read == durations
    assert read == [cassette.parse_duration(cassette.format_duration(ns)) for ns in durations]
