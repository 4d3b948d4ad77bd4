"""Header names and values (request and response, trailers too) and the status are replayed on
HTTP header lines: a CR, LF or NUL in one is refused when loading, by both readers, with an
error naming the file, the line and the field, never the value (issue 11, item 9)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmvcr.cassette import (
    Cassette,
    CassetteError,
    Interaction,
    Request,
    Response,
    Style,
    dump_interactions,
    dumps,
    loads,
    loads_appended,
)
from llmvcr.cassette.fastreader import fast_loads
from llmvcr.cassette.fullreader import full_loads
from llmvcr.commands.check import check_paths
from test_cassette_fastpath import _loaded, _reference
from test_cassette_roundtrip import TRICKY

INJECTION = "a\r\nSet-Cookie: session=stolen"


COMPACT = Style(2, True)


def _file(
    request: Request | None = None, response: Response | None = None, style: Style = COMPACT
) -> bytes:
    fine = Interaction(Request(url="https://api.example.com/ok"), Response(body=b"{}"))
    bad = Interaction(request or Request(url="https://api.example.com/x"), response or Response())
    return dumps(Cassette([fine, bad], style))


def _line_of(data: bytes, marker: str) -> int:
    """The 1-based line where `marker` (a key or a value as written) first appears in the second
    interaction."""
    second = data.index(b"- id: 1")
    return data[: data.index(marker.encode(), second)].count(b"\n") + 1


CASES = {
    "request header value (LF)": (
        Request(url="u", headers={"X-Note": ["one", "two\nthree"]}),
        None,
        "request.headers.X-Note[1]: the value holds a line feed (LF)",
        "|-",  # a literal block: the error names the line of its indicator
    ),
    "response header value (CR LF), the Set-Cookie injection": (
        None,
        Response(headers={"Content-Type": [INJECTION]}),
        "response.headers.Content-Type[0]: the value holds a carriage return (CR)",
        "Set-Cookie",
    ),
    "response header value (NUL)": (
        None,
        Response(headers={"X-A": ["a\0b"]}),
        "response.headers.X-A[0]: the value holds a NUL",
        "a\\0b",
    ),
    "response header name (LF)": (
        None,
        Response(headers={"X-A\nSet-Cookie": ["v"]}),
        "response.headers: header name 'X-A\\nSet-Cookie' holds a line feed (LF)",
        "? |-",  # go-yaml's complex key: the line of its indicator
    ),
    "response header name (CR)": (
        None,
        Response(headers={"X-A\r": ["v"]}),
        "response.headers: header name 'X-A\\r' holds a carriage return (CR)",
        "X-A",
    ),
    "request trailer value": (
        Request(url="u", trailer={"X-T": ["a\rb"]}),
        None,
        "request.trailer.X-T[0]: the value holds a carriage return (CR)",
        "a\\rb",
    ),
    "response trailer value": (
        None,
        Response(trailer={"X-T": ["a\nb"]}),
        "response.trailer.X-T[0]: the value holds a line feed (LF)",
        "|-",
    ),
    "status (CR LF)": (
        None,
        Response(status="200 OK\r\nSet-Cookie: session=stolen"),
        "response.status: the value holds a carriage return (CR)",
        "status:",
    ),
    "status (LF)": (
        None,
        Response(status="200 OK\nX: y"),
        "response.status: the value holds a line feed (LF)",
        "status:",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("style", [Style(2, True), Style(4, False)], ids=["indent2", "indent4"])
def test_a_line_break_in_a_header_or_status_is_refused_with_file_and_line(
    case: str, style: Style
) -> None:
    request, response, problem, marker = CASES[case]
    data = _file(request, response, style)
    # the fast reader declines the file, so the full reader gives the error, with its line
    assert fast_loads(data) is None
    with pytest.raises(CassetteError) as caught:
        loads(data, "x.yaml")
    error = caught.value
    assert error.path == "x.yaml"
    assert error.line == _line_of(data, marker)
    assert error.message.startswith(f"interactions[1].{problem}; a status or header must not")
    assert "stolen" not in str(error)  # the value itself is never shown
    with pytest.raises(CassetteError) as again:
        full_loads(data, "x.yaml")
    assert str(again.value) == str(error)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_appended_interactions_are_checked_the_same_way(case: str) -> None:
    request, response, problem, _ = CASES[case]
    bad = Interaction(request or Request(url="u"), response or Response())
    with pytest.raises(CassetteError, match=re.escape(problem)):
        loads_appended(dump_interactions([bad], Style(2, True), 7))


def test_a_hand_written_file_is_refused_too() -> None:
    """Not the writer's layout (flow style, a comment): only the full reader reads it."""
    data = (
        b"version: 2  # hand-written\n"
        b"interactions:\n"
        b"- request: {proto: HTTP/1.1, proto_major: 1, proto_minor: 1, content_length: 0,\n"
        b"    host: x, url: 'https://x/', method: GET}\n"
        b"  response:\n"
        b"    proto: HTTP/1.1\n"
        b"    proto_major: 1\n"
        b"    proto_minor: 1\n"
        b"    content_length: 0\n"
        b"    body: ''\n"
        b'    headers: {Content-Type: ["text/plain\\r\\nSet-Cookie: a=b"]}\n'
        b"    status: 200 OK\n"
        b"    code: 200\n"
        b"    duration: 1s\n"
    )
    with pytest.raises(CassetteError) as caught:
        loads(data, "hand.yaml")
    assert str(caught.value).startswith(
        "hand.yaml:11: interactions[0].response.headers.Content-Type[0]: the value holds a "
        "carriage return (CR)"
    )


def test_line_breaks_stay_allowed_where_no_header_line_is_made() -> None:
    """Form values, bodies, URLs and unknown keys are not sent as header lines."""
    request = Request(url="https://x/", form={"text": ["line one\r\nline two\0"]}, body=b"a\nb")
    response = Response(body=b"a\r\nb\0", headers={"Content-Type": ["text/plain"]})
    response.extra = {"note": "two\nlines"}
    data = dumps(Cassette([Interaction(request, response)]))
    loaded = loads(data)
    assert loaded.interactions[0].request.form == request.form
    assert fast_loads(data) is None or fast_loads(data) == loaded


def test_check_reports_the_line_break_as_an_error_with_file_and_line(tmp_path: Path) -> None:
    data = _file(response=Response(headers={"Content-Type": [INJECTION]}))
    path = tmp_path / "injected.yaml"
    path.write_bytes(data)
    out = io.StringIO()
    assert check_paths([str(path)], out) == 1
    line = _line_of(data, "Set-Cookie")
    assert (
        f"{path}:{line}: error: interactions[1].response.headers.Content-Type[0]: the value holds "
        "a carriage return (CR)"
    ) in out.getvalue()
    assert "stolen" not in out.getvalue()


# any text, lone surrogates (written `!!binary`) and line breaks made likely
risky_text = st.text(
    st.one_of(st.characters(), st.sampled_from(TRICKY + "\n\r\0\udcff")), max_size=12
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(risky_text, st.lists(risky_text, max_size=3), max_size=3),
    st.dictionaries(risky_text, st.lists(risky_text, max_size=2), max_size=2),
    risky_text,
    st.sampled_from([Style(2, True), Style(4, False)]),
)
def test_both_readers_agree_on_any_header_or_status(
    headers: dict[str, list[str]], trailer: dict[str, list[str]], status: str, style: Style
) -> None:
    """What `loads` gives (fast reader first) is what the full reader gives: the same cassette
    or the same error."""
    response = Response(status=status, headers=headers, trailer=trailer)
    try:
        data = dumps(Cassette([Interaction(Request(url="u", headers=headers), response)], style))
    except ValueError:
        return  # a string the writer cannot write (a lone surrogate in a key)
    assert _loaded(data) == _reference(data)
