"""cassette.py: Go durations, header names, and the exact YAML go-yaml writes (checked by hand)."""

from __future__ import annotations

import warnings

import pytest

from llmvcr.cassette import (
    NEW_FILE_STYLE,
    Cassette,
    CassetteError,
    CassetteWarning,
    Chunk,
    Interaction,
    PlainText,
    Request,
    Response,
    Style,
    canonical_header_name,
    dumps,
    format_duration,
    loads,
    parse_duration,
)

SECOND = 1_000_000_000

# ---- Go durations: the outputs of Go's time.Duration.String() for these values


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (2_195_586_958, "2.195586958s"),
        (853_364_708, "853.364708ms"),
        (117_000_000, "117ms"),
        (1_500, "1.5µs"),
        (999, "999ns"),
        (0, "0s"),
        (61_500_000_000, "1m1.5s"),
        (3_600 * SECOND, "1h0m0s"),
        (-1_500_000_000, "-1.5s"),
        (1_000, "1µs"),
        (1_000_000, "1ms"),
        (SECOND, "1s"),
        (90 * 60 * SECOND, "1h30m0s"),
        (36_000 * SECOND + 1, "10h0m0.000000001s"),
        (1, "1ns"),
        (-1, "-1ns"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
    ],
)
def test_format_duration_matches_go(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    assert parse_duration(text) == ns


def test_micro_sign_is_u00b5() -> None:
    assert format_duration(1_500).encode("utf-8") == b"1.5\xc2\xb5s"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("1.5us", 1_500),
        ("1.5μs", 1_500),  # Greek mu
        ("1.5µs", 1_500),  # micro sign
        ("+2s", 2 * SECOND),
        (".5s", SECOND // 2),
        ("1.s", SECOND),
        ("1h1m1s1ms1us1ns", 3_661_001_001_001),
        ("1.5h", 5_400 * SECOND),
        ("0.1h", 360 * SECOND),
        ("2m-", None),
        ("100ns", 100),
        ("-9223372036854775808ns", -(1 << 63)),
    ],
)
def test_parse_duration_accepts_every_go_form(text: str, ns: int | None) -> None:
    if ns is None:
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(text)
    else:
        assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid duration ''"),
        ("1", "invalid duration '1': missing unit"),
        ("1.5", "invalid duration '1.5': missing unit"),
        ("s", "invalid duration 's'"),
        (".s", "invalid duration '.s'"),
        ("1x", "invalid duration '1x': unknown unit 'x'"),
        ("2 seconds", "invalid duration '2 seconds': unknown unit ' seconds'"),
        ("--1s", "invalid duration '--1s'"),
        ("9223372036854775808ns", "invalid duration '9223372036854775808ns': out of range"),
        ("3000000h", "invalid duration '3000000h': out of range"),
    ],
)
def test_parse_duration_rejects_what_go_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_duration(text)
    assert str(e.value) == reason


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("content-type", "Content-Type"),
        ("USER-AGENT", "User-Agent"),
        ("x-goog-api-key", "X-Goog-Api-Key"),
        ("Accept", "Accept"),
        ("a--b", "A--B"),
        ("x_y", "X_y"),
        ("www-authenticate", "Www-Authenticate"),
        ("foo bar", "foo bar"),  # not a token: Go leaves it alone
        ("ünïcode", "ünïcode"),
        ("", ""),
    ],
)
def test_canonical_header_name(name: str, canonical: str) -> None:
    assert canonical_header_name(name) == canonical


# ---- Exact YAML. Each expectation below was derived by hand from go-yaml's rules (see
# ../shared/docs/cassette-format.md): scalar styles, indentation, key order, block headers.

HEAD = """\
---
version: 2
interactions:
- id: 0
  request:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    content_length: 0
    host: ""
    url: https://api.example.com/v1
    method: POST
  response:
    proto: HTTP/2.0
    proto_major: 2
    proto_minor: 0
    content_length: -1
"""
TAIL = """\
    headers: {}
    status: 200 OK
    code: 200
    duration: 117ms
"""


def one_response(body: bytes, style: Style = NEW_FILE_STYLE) -> Cassette:
    request = Request(method="POST", url="https://api.example.com/v1")
    response = Response(proto="HTTP/2.0", proto_major=2, proto_minor=0, body=body)
    response.duration = 117_000_000
    return Cassette([Interaction(request, response)], style)


@pytest.mark.parametrize(
    ("body", "yaml"),
    [
        ("💘 love", '    body: "\\U0001F498 love"\n'),
        ("a\r\nb\r\n", '    body: "a\\r\\nb\\r\\n"\n'),
        ("data: x\r\n\r\n", '    body: "data: x\\r\\n\\r\\n"\n'),
        ("a\tb", '    body: "a\\tb"\n'),
        ("trail ", "    body: 'trail '\n"),
        (" lead", "    body: ' lead'\n"),
        ("\nlead", "    body: |2-\n\n      lead\n"),
        ("a\u2028b", '    body: "a\\Lb"\n'),
        ("a\u2029b\n", '    body: "a\\Pb\\n"\n'),
        ("\ufeffbom", '    body: "\\uFEFF\\x62\\x6F\\x6D"\n'),
        ("a\ufeffb", '    body: "a\\uFEFFb"\n'),
        ("a\x85b", '    body: "a\\Nb"\n'),
        ("a\x00b", '    body: "a\\0b"\n'),
        ("\x07\x08\x0b\x0c\x1b\x7f\x9f", '    body: "\\a\\b\\v\\f\\e\\x7F\\x9F"\n'),
        ("a\xa0b", "    body: a\xa0b\n"),
        ('say "hi" \\ bye\tnow', '    body: "say \\"hi\\" \\\\ bye\\tnow"\n'),
        ("\ufffe", '    body: "\\uFFFE"\n'),
        ("yes", '    body: "yes"\n'),
        ("n", '    body: "n"\n'),
        ("On", '    body: "On"\n'),
        ("true", '    body: "true"\n'),
        ("False", '    body: "False"\n'),
        ("438", '    body: "438"\n'),
        ("0x1F", '    body: "0x1F"\n'),
        ("017", '    body: "017"\n'),
        ("+1", '    body: "+1"\n'),
        ("1_000", '    body: "1_000"\n'),
        ("1.5", '    body: "1.5"\n'),
        (".inf", '    body: ".inf"\n'),
        ("-0", '    body: "-0"\n'),
        ("2023-06-01", '    body: "2023-06-01"\n'),
        ("2001-12-14T21:59:43Z", '    body: "2001-12-14T21:59:43Z"\n'),
        ("2023-02-30", "    body: 2023-02-30\n"),  # not a date: Go's time.Parse refuses it
        ("12:30", '    body: "12:30"\n'),
        ("~", '    body: "~"\n'),
        ("null", '    body: "null"\n'),
        ("<<", '    body: "<<"\n'),
        ("1e400", "    body: 1e400\n"),  # out of float64 range: go-yaml keeps it a string
        ("- x", "    body: '- x'\n"),
        (": x", "    body: ': x'\n"),
        ("? x", "    body: '? x'\n"),
        ("#x", "    body: '#x'\n"),
        ("a #b", "    body: 'a #b'\n"),
        ("a#b", "    body: a#b\n"),
        ("key: value", "    body: 'key: value'\n"),
        ("ends with:", "    body: 'ends with:'\n"),
        ("a:b", "    body: a:b\n"),
        ("-x", "    body: -x\n"),
        ("-", "    body: '-'\n"),
        ("---", "    body: '---'\n"),
        ("...x", "    body: '...x'\n"),
        ("@x", "    body: '@x'\n"),
        ("it's", "    body: it's\n"),
        ("'quoted'", "    body: '''quoted'''\n"),
        ('{"a":1}', "    body: '{\"a\":1}'\n"),
        ("Olá mundo", "    body: Olá mundo\n"),
        ("x\n", "    body: |\n      x\n"),
        ("a\nb", "    body: |-\n      a\n      b\n"),
        ("data: 1\n\ndata: 2\n\n", "    body: |+\n      data: 1\n\n      data: 2\n\n"),
        ("\n", "    body: |2+\n\n"),
        (" x\ny\n", "    body: |2\n       x\n      y\n"),
        ("line\n\tindented\n", "    body: |\n      line\n      \tindented\n"),
        ("a \nb\n", '    body: "a \\nb\\n"\n'),
        ("a\nb ", '    body: "a\\nb "\n'),
        ("💘\n", '    body: "\\U0001F498\\n"\n'),
        ("a\rb\n", '    body: "a\\rb\\n"\n'),
    ],
)
def test_body_scalar_style(body: str, yaml: str) -> None:
    data = dumps(one_response(body.encode("utf-8")))
    assert data.decode("utf-8") == HEAD + yaml + TAIL
    assert loads(data).interactions[0].response.body == body.encode("utf-8")


@pytest.mark.parametrize(
    ("body", "yaml"),
    [
        (b"", '    body: ""\n'),
        (b"\xff\xfe\x00", "    body: !!binary //4A\n"),
        (b"\x00\x01\x02", '    body: "\\0\\x01\\x02"\n'),  # valid UTF-8: not binary
        (
            b"\xff" * 52,  # 72 base64 characters: lines of 70
            "    body: !!binary |\n"
            "      /////////////////////////////////////////////////////////////////////w\n"
            "      ==\n",
        ),
        (
            b"\xff" * 105,  # 140 base64 characters: two full lines
            "    body: !!binary |\n"
            "      //////////////////////////////////////////////////////////////////////\n"
            "      //////////////////////////////////////////////////////////////////////\n",
        ),
        (
            b"\xff" * 51,  # 68 base64 characters: one plain line
            "    body: !!binary "
            "////////////////////////////////////////////////////////////////////\n",
        ),
    ],
)
def test_binary_and_empty_bodies(body: bytes, yaml: str) -> None:
    data = dumps(one_response(body))
    assert data.decode("utf-8") == HEAD + yaml + TAIL
    assert loads(data).interactions[0].response.body == body


def test_block_scalars_in_go_vcr_layout() -> None:
    style = Style(4, True)
    text = dumps(one_response(b"\nfirst\n  second\n\n", style)).decode("utf-8")
    assert text == (
        "---\n"
        "version: 2\n"
        "interactions:\n"
        "    - id: 0\n"
        "      request:\n"
        "        proto: HTTP/1.1\n"
        "        proto_major: 1\n"
        "        proto_minor: 1\n"
        "        content_length: 0\n"
        '        host: ""\n'
        "        url: https://api.example.com/v1\n"
        "        method: POST\n"
        "      response:\n"
        "        proto: HTTP/2.0\n"
        "        proto_major: 2\n"
        "        proto_minor: 0\n"
        "        content_length: -1\n"
        "        body: |4+\n"
        "\n"
        "            first\n"
        "              second\n"
        "\n"
        "        headers: {}\n"
        "        status: 200 OK\n"
        "        code: 200\n"
        "        duration: 117ms\n"
    )
    assert loads(text).interactions[0].response.body == b"\nfirst\n  second\n\n"
    assert loads(text).style == style


def _full_example(style: Style) -> Cassette:
    request = Request(
        method="POST",
        url="https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse",
        body=b'{"contents":[1]}',
        content_length=16,
        host="generativelanguage.googleapis.com",
        transfer_encoding=["chunked"],
        form={"alt": ["sse"]},
        headers={"X-10": ["b"], "X-2": ["a"], "Content-Type": ["application/json"]},
    )
    response = Response(
        proto="HTTP/2.0",
        proto_major=2,
        proto_minor=0,
        uncompressed=True,
        body=b'data: {"a":1}\n\ndata: {"a":2}\n\n',
        headers={"Content-Type": ["text/event-stream"]},
        duration=853_364_708,
        chunks=[Chunk(853_364_708, 15), Chunk(1_200_000_000, 15)],
    )
    return Cassette([Interaction(request, response)], style)


URL = "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse"
COMPACT_EXAMPLE = f"""\
---
version: 2
interactions:
- id: 0
  request:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    content_length: 16
    transfer_encoding:
    - chunked
    host: generativelanguage.googleapis.com
    body: '{{"contents":[1]}}'
    form:
      alt:
      - sse
    headers:
      Content-Type:
      - application/json
      X-2:
      - a
      X-10:
      - b
    url: {URL}
    method: POST
  response:
    proto: HTTP/2.0
    proto_major: 2
    proto_minor: 0
    content_length: -1
    uncompressed: true
    body: |+
      data: {{"a":1}}

      data: {{"a":2}}

    headers:
      Content-Type:
      - text/event-stream
    status: 200 OK
    code: 200
    duration: 853.364708ms
    chunks:
    - {{at: 853ms, size: 15}}
    - {{at: 1.2s, size: 15}}
"""
GO_VCR_EXAMPLE = f"""\
---
version: 2
interactions:
    - id: 0
      request:
        proto: HTTP/1.1
        proto_major: 1
        proto_minor: 1
        content_length: 16
        transfer_encoding:
            - chunked
        host: generativelanguage.googleapis.com
        body: '{{"contents":[1]}}'
        form:
            alt:
                - sse
        headers:
            Content-Type:
                - application/json
            X-2:
                - a
            X-10:
                - b
        url: {URL}
        method: POST
      response:
        proto: HTTP/2.0
        proto_major: 2
        proto_minor: 0
        content_length: -1
        uncompressed: true
        body: |+
            data: {{"a":1}}

            data: {{"a":2}}

        headers:
            Content-Type:
                - text/event-stream
        status: 200 OK
        code: 200
        duration: 853.364708ms
        chunks:
            - {{at: 853ms, size: 15}}
            - {{at: 1.2s, size: 15}}
"""


@pytest.mark.parametrize(
    ("style", "expected"), [(Style(2, True), COMPACT_EXAMPLE), (Style(4, True), GO_VCR_EXAMPLE)]
)
def test_both_layouts(style: Style, expected: str) -> None:
    assert dumps(_full_example(style)).decode("utf-8") == expected
    loaded = loads(expected)
    assert loaded.style == style
    # chunk times are stored to the millisecond
    assert [c.at for c in loaded.interactions[0].response.chunks or []] == [
        853_000_000,
        1_200_000_000,
    ]
    assert dumps(loaded).decode("utf-8") == expected


EVERY_KEY = """\
---
version: 2
interactions:
- id: 0
  request:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    content_length: 0
    transfer_encoding: []
    trailer: {}
    host: ""
    remote_addr: ""
    request_uri: ""
    body: ""
    form: {}
    headers: {}
    url: https://api.example.com/v1/models
    method: GET
  response:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    transfer_encoding: []
    trailer: {}
    content_length: 2
    uncompressed: false
    body: '{}'
    headers: {}
    status: 200 OK
    code: 200
    duration: 0s
"""


def test_every_key_shape() -> None:
    request = Request(url="https://api.example.com/v1/models")
    response = Response(body=b"{}", content_length=2)
    cassette = Cassette([Interaction(request, response)], Style(2, omit_empty=False))
    assert dumps(cassette).decode("utf-8") == EVERY_KEY
    loaded = loads(EVERY_KEY)
    assert loaded.style == Style(2, omit_empty=False)
    assert loaded.interactions == cassette.interactions
    assert dumps(loaded).decode("utf-8") == EVERY_KEY


def test_empty_cassette() -> None:
    assert dumps(Cassette([])) == b"---\nversion: 2\ninteractions: []\n"
    assert loads(b"---\nversion: 2\ninteractions: []\n").interactions == []


def test_header_values_and_names() -> None:
    response = Response(
        headers={
            "X-a": ["yes", "it's", "", "a: b", "💘", "x\ny"],
            "X-10": [],
            "X-9": ["9"],
            "AB": ["1"],
            "A_b": ["2"],
            "a1b": ["3"],
            "a1_": ["4"],
        }
    )
    cassette = Cassette([Interaction(Request(url="u"), response)])
    text = dumps(cassette).decode("utf-8")
    # go-yaml's key order: a non-letter before a letter (A_b < AB), except right after a digit
    # (a1b < a1_); runs of digits compare as numbers (X-9 < X-10)
    expected_headers = (
        "    headers:\n"
        "      A_b:\n"
        '      - "2"\n'
        "      AB:\n"
        '      - "1"\n'
        "      X-9:\n"
        '      - "9"\n'
        "      X-10: []\n"
        "      X-a:\n"
        '      - "yes"\n'
        "      - it's\n"
        '      - ""\n'
        "      - 'a: b'\n"
        '      - "\\U0001F498"\n'
        "      - |-\n"
        "        x\n"
        "        y\n"
        "      a1b:\n"
        '      - "3"\n'
        "      a1_:\n"
        '      - "4"\n'
    )
    assert expected_headers in text
    # written as go-yaml writes it, but a header value holding a line break is refused when read
    with pytest.raises(CassetteError, match=r"headers\.X-a\[5\]: the value holds a line feed"):
        loads(text)
    response.headers["X-a"].pop()
    assert loads(dumps(cassette)).interactions[0].response.headers == response.headers


def test_long_header_name_is_a_complex_key() -> None:
    name = "X-" + "a" * 127  # 129 bytes: longer than go-yaml's 128-byte simple keys
    response = Response(headers={name: ["v"], "Accept": ["*/*"]})
    text = dumps(Cassette([Interaction(Request(url="u"), response)])).decode("utf-8")
    assert f"      Accept:\n      - '*/*'\n      ? {name}\n      : - v\n" in text
    assert loads(text).interactions[0].response.headers == response.headers


def test_ids_are_renumbered() -> None:
    items = [Interaction(Request(url=f"u{i}"), Response(), id=7) for i in range(3)]
    text = dumps(Cassette(items)).decode("utf-8")
    assert [line for line in text.splitlines() if line.startswith("- id:")] == [
        "- id: 0",
        "- id: 1",
        "- id: 2",
    ]


def test_stored_values_are_kept() -> None:
    # a hand-edited cassette: content_length no longer matches the body; it must stay as stored
    text = HEAD.replace("content_length: 0", "content_length: 999") + "    body: hi\n" + TAIL
    loaded = loads(text)
    assert loaded.interactions[0].request.content_length == 999
    assert dumps(loaded).decode("utf-8") == text


UNKNOWN_KEYS = """\
---
version: 2
recorded_by: llm-vcr
interactions:
- id: 0
  request:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    content_length: 0
    host: ""
    url: https://api.example.com/v1
    method: GET
    note: hand written
  response:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    content_length: -1
    body: ok
    headers: {}
    status: 200 OK
    code: 200
    duration: 1ms
    retries: 3
    cached: true
    seen: 2024-01-02
    quoted: "42"
    nothing:
    tags:
    - a
    - "5"
    meta:
      nested:
        deep: |
          text
      empty: {}
      list: []
  label: first
"""


def test_unknown_keys_round_trip() -> None:
    loaded = loads(UNKNOWN_KEYS)
    assert loaded.extra == {"recorded_by": "llm-vcr"}
    interaction = loaded.interactions[0]
    assert interaction.extra == {"label": "first"}
    assert interaction.request.extra == {"note": "hand written"}
    extra = interaction.response.extra
    assert extra == {
        "retries": "3",
        "cached": "true",
        "seen": "2024-01-02",
        "quoted": "42",
        "nothing": "",
        "tags": ["a", "5"],
        "meta": {"nested": {"deep": "text\n"}, "empty": {}, "list": []},
    }
    # plain scalars that YAML reads as numbers, bools, dates or null stay plain
    assert isinstance(extra["retries"], PlainText)
    assert isinstance(extra["seen"], PlainText)
    assert not isinstance(extra["quoted"], PlainText)
    assert dumps(loaded).decode("utf-8") == UNKNOWN_KEYS


def test_chunks_that_do_not_add_up_are_ignored_with_one_warning() -> None:
    text = COMPACT_EXAMPLE.replace("size: 15}", "size: 16}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = loads(text, "c.yaml")
    assert [str(w.message) for w in caught] == [
        "c.yaml: interactions[0].response.chunks: sizes add up to 32 bytes but the body has "
        "30; ignoring the chunks key"
    ]
    assert caught[0].category is CassetteWarning
    assert loaded.interactions[0].response.chunks is None
    assert "chunks" not in dumps(loaded).decode("utf-8")


def test_chunk_times_are_written_to_the_millisecond() -> None:
    cassette = _full_example(Style())
    response = cassette.interactions[0].response
    response.chunks = [Chunk(1_499_999, 10), Chunk(2_500_000, 10), Chunk(61_000_400_000, 10)]
    response.body = b"x" * 30
    text = dumps(cassette).decode("utf-8")
    assert "    chunks:\n    - {at: 1ms, size: 10}\n    - {at: 3ms, size: 10}\n" in text
    assert "    - {at: 1m1s, size: 10}\n" in text
    assert [c.at for c in loads(text).interactions[0].response.chunks or []] == [
        1_000_000,
        3_000_000,
        61_000_000_000,
    ]


def test_reader_accepts_flow_style_folded_quotes_and_other_spellings() -> None:
    text = (
        "version: 2\n"
        "interactions: [{id: 0, request: {proto: HTTP/1.1, proto_major: 1, proto_minor: 1,\n"
        "  content_length: 0x10, host: '', url: \"https://a.example/\n"
        "  b\", method: GET, headers: {Accept: [a, 'b']}},\n"
        "  response: {proto: HTTP/1.1, proto_major: 1, proto_minor: 1, content_length: -1,\n"
        "  uncompressed: yes, body: ~, headers: {}, status: 200 OK, code: 2_00,\n"
        "  duration: 1m1.5s}}]\n"
    )
    loaded = loads(text)
    request = loaded.interactions[0].request
    response = loaded.interactions[0].response
    assert request.url == "https://a.example/ b"  # a folded double-quoted scalar
    assert request.content_length == 16
    assert request.headers == {"Accept": ["a", "b"]}
    assert response.uncompressed is True
    assert response.body == b""
    assert response.code == 200
    assert response.duration == 61_500_000_000


@pytest.mark.parametrize("spelling", ["0", "1.5us", "1.5μs", "+2s", "1h1m", "0.25ms", "1m0.5s"])
def test_reader_accepts_every_duration_spelling(spelling: str) -> None:
    text = HEAD + "    body: x\n" + TAIL.replace("117ms", spelling)
    assert loads(text).interactions[0].response.duration == parse_duration(spelling)
