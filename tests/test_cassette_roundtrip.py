"""cassette.py round trips: the go-vcr corpus and the seed byte for byte, arbitrary cassettes
through dumps/loads, and appending interactions to a file's bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SEED, corpus_files
from llmvcr import cassette
from llmvcr.cassette import (
    EMPTY_INTERACTIONS_LINE,
    Cassette,
    Chunk,
    Interaction,
    Request,
    Response,
    Style,
    dump_interactions,
    dumps,
    loads,
)
from llmvcr.cassette.fields import LINE_BREAKING
from support.reference_writer import reference_dumps

STYLES = [Style(2, True), Style(2, False), Style(4, True), Style(4, False)]


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(p.parents[2])))
def test_corpus_file_round_trips_byte_for_byte(corpus_dir: Path, path: Path) -> None:
    data = path.read_bytes()
    loaded = loads(data, str(path))
    assert dumps(loaded) == data
    # the general emitter (the port of go-yaml's) agrees with the fast writer
    assert reference_dumps(loaded) == data


def test_corpus_has_both_layouts(corpus_dir: Path) -> None:
    indents = {loads(p.read_bytes()).style.indent for p in corpus_files()}
    assert indents == {2, 4}


def test_seed_round_trips_byte_for_byte() -> None:
    data = SEED.read_bytes()
    loaded = loads(data, str(SEED))
    assert loaded.style == cassette.NEW_FILE_STYLE
    assert dumps(loaded) == data


# ---- arbitrary cassettes

# every code point that is a character (no surrogates), with the troublesome ones made likely
TRICKY = "\r\t\x00\x85\xa0\u2028\u2029\ufeff\ufffe💘 :#-?'\"\\|>%@`&*!,[]{}~"
text_chars = st.characters(blacklist_categories=("Cs",))
any_text = st.text(st.one_of(text_chars, st.sampled_from(TRICKY)), max_size=24)
line_text = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
        st.sampled_from(TRICKY),
    ),
    max_size=24,
)
# strings whose plain form YAML would read as something else, or that need quotes
SCALAR_WORDS = "", "yes", "No", "438", "0x1F", "2023-06-01", "12:30", "~", "null", "<<", "- x"
SCALAR_WORDS += ": x", "#x", "1.5", ".inf", "-", "---", "...", "a: b", "Olá", "1e400", "017", "+1"
scalar_words = st.sampled_from(SCALAR_WORDS)
short_text = st.one_of(line_text, scalar_words)
multi_line_text = st.lists(
    st.one_of(line_text, st.sampled_from(["", " ", "  indented", "\tx", "data: {}", "a "])),
    min_size=1,
    max_size=6,
).map("\n".join)
body = st.one_of(
    st.binary(max_size=120),
    st.one_of(any_text, short_text, multi_line_text).map(lambda s: s.encode("utf-8")),
)
header_name = st.one_of(
    st.sampled_from(["Accept", "Content-Type", "User-Agent", "X-2", "X-10", "A_b", "AB", "a1_"]),
    st.text(
        st.characters(codec="ascii", categories=("L", "Nd", "Pd", "Pc")), min_size=1, max_size=8
    ),
    line_text.filter(bool),
    # not simple keys for go-yaml (too long, a line break) or not UTF-8
    st.sampled_from(["X-" + "a" * 130, "multi\nline", " lead\nx\n", "\udcff\udcfe", "a\u2028b"]),
)
string_lists = st.dictionaries(header_name, st.lists(short_text, max_size=3), max_size=4)
# headers, trailers and the status are replayed on HTTP header lines: no CR, LF or NUL (the
# readers refuse them; test_cassette_errors.py has those cases)
header_lists = string_lists.map(
    lambda lists: {
        name: [v for v in values if not LINE_BREAKING.search(v)]
        for name, values in lists.items()
        if not LINE_BREAKING.search(name)
    }
)
durations = st.integers(0, 10 * 3600 * 1_000_000_000)
int64 = st.integers(-(2**63), 2**63 - 1)
extra_value = st.recursive(
    st.one_of(short_text, multi_line_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(short_text, children, max_size=3)
    ),
    max_leaves=6,
)
extra_keys = st.dictionaries(
    st.sampled_from(["note", "x-extra", "retries", "meta"]), extra_value, max_size=2
)


@st.composite
def chunks_for(draw: st.DrawFn, body_length: int) -> list[Chunk] | None:
    if draw(st.booleans()):
        return None
    cuts = sorted(draw(st.lists(st.integers(0, body_length), max_size=4)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, body_length], strict=True)]
    times = sorted(
        draw(st.lists(st.integers(0, 36_000_000), min_size=len(sizes), max_size=len(sizes)))
    )
    return [Chunk(ms * 1_000_000, size) for ms, size in zip(times, sizes, strict=True)]


@st.composite
def requests(draw: st.DrawFn) -> Request:
    return Request(
        method=draw(st.sampled_from(["GET", "POST", "PUT"]) | short_text),
        url=draw(short_text),
        body=draw(body),
        headers=draw(header_lists),
        form=draw(string_lists),
        proto=draw(st.sampled_from(["HTTP/1.1", "HTTP/2.0"])),
        proto_major=draw(st.integers(0, 3)),
        proto_minor=draw(st.integers(0, 3)),
        content_length=draw(int64),
        transfer_encoding=draw(st.lists(short_text, max_size=2)),
        trailer=draw(header_lists),
        host=draw(short_text),
        remote_addr=draw(short_text),
        request_uri=draw(short_text),
        extra=draw(extra_keys),
    )


@st.composite
def responses(draw: st.DrawFn) -> Response:
    response_body = draw(body)
    return Response(
        status=draw(
            st.sampled_from(["200 OK", "429 Too Many Requests"])
            | short_text.filter(lambda s: not LINE_BREAKING.search(s))
        ),
        code=draw(st.integers(100, 599)),
        headers=draw(header_lists),
        body=response_body,
        proto=draw(st.sampled_from(["HTTP/1.1", "HTTP/2.0"])),
        proto_major=draw(st.integers(1, 2)),
        proto_minor=draw(st.integers(0, 1)),
        transfer_encoding=draw(st.lists(short_text, max_size=2)),
        trailer=draw(header_lists),
        content_length=draw(int64),
        uncompressed=draw(st.booleans()),
        duration=draw(durations),
        chunks=draw(chunks_for(len(response_body))),
        extra=draw(extra_keys),
    )


@st.composite
def cassettes(draw: st.DrawFn) -> Cassette:
    items = draw(
        st.lists(st.builds(Interaction, requests(), responses(), extra=extra_keys), max_size=3)
    )
    for n, item in enumerate(items):
        item.id = n
    return Cassette(items, draw(st.sampled_from(STYLES)), draw(extra_keys))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cassettes())
def test_dumps_then_loads_gives_the_same_cassette(original: Cassette) -> None:
    data = dumps(original)
    assert reference_dumps(original) == data
    loaded = loads(data)
    assert loaded.interactions == original.interactions
    assert loaded.extra == original.extra
    if original.interactions:
        assert loaded.style.indent == original.style.indent
    assert dumps(loaded) == data


# ---- appending to a file's bytes (what the store does)


def _interaction(n: int) -> Interaction:
    request = Request(method="POST", url=f"https://api.example.com/v1/{n}", body=b'{"n":%d}' % n)
    request.content_length = len(request.body)
    response = Response(body=b"data: %d\n\n" % n, headers={"Content-Type": ["text/event-stream"]})
    return Interaction(request, response)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("existing", "added"), [(0, 1), (0, 3), (1, 1), (2, 2)])
def test_appending_interactions_equals_dumping_them_all(
    style: Style, existing: int, added: int
) -> None:
    old = [_interaction(n) for n in range(existing)]
    new = [_interaction(n) for n in range(existing, existing + added)]
    data = dumps(Cassette(old, style))
    if not old:
        assert data.endswith(EMPTY_INTERACTIONS_LINE)
        data = data[: -len(EMPTY_INTERACTIONS_LINE)] + b"interactions:\n"
    appended = data + dump_interactions(new, style, existing)
    assert appended == dumps(Cassette(old + new, style))
    assert loads(appended).interactions == [
        Interaction(i.request, i.response, n) for n, i in enumerate(old + new)
    ]
