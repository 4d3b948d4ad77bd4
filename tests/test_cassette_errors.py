"""cassette.py: every bad input gives exactly one CassetteError naming the file, the line and the
problem (no YAML traceback chained to it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import SEED
from llmvcr.cassette import CassetteError, load, loads

GOOD = SEED.read_bytes()


def _edit(old: bytes, new: bytes) -> bytes:
    assert GOOD.count(old) == 1
    return GOOD.replace(old, new)


BAD_INPUTS = {
    "not YAML": (
        b"version: 2\ninteractions: [\n  {id: 0\n",
        "x.yaml:4: not valid YAML: did not find expected ',' or '}' (while parsing a flow mapping)",
    ),
    "tab indentation": (
        b"version: 2\ninteractions:\n\t- id: 0\n",
        "x.yaml:3: not valid YAML: found character that cannot start any token "
        "(while scanning for the next token)",
    ),
    "control character": (
        b'---\nversion: 2\ninteractions: []\nx: "a\x01"\n',
        "x.yaml:4: not valid YAML: control characters are not allowed",
    ),
    "not UTF-8": (
        b"---\nversion: 2\ninteractions:\n- id: \xff\n",
        "x.yaml:4: not UTF-8 text (byte 0xff)",
    ),
    "plain text": (
        b"hello world\n",
        "x.yaml:1: not a go-vcr cassette: the document is a scalar, not a mapping",
    ),
    "a list": (
        b"- a\n- b\n",
        "x.yaml:1: not a go-vcr cassette: the document is a list, not a mapping",
    ),
    "empty file": (b"", "x.yaml: empty file, not a go-vcr cassette"),
    "only a comment": (b"# nothing here\n", "x.yaml: empty file, not a go-vcr cassette"),
    "truncated in a quoted scalar": (
        GOOD[: GOOD.index(b"Portuguese")],
        "x.yaml:11: not valid YAML: found unexpected end of stream "
        "(while scanning a quoted scalar)",
    ),
    "truncated in the response body": (
        GOOD[: GOOD.index(b"data: [DONE]")],
        "x.yaml:22: interactions[0].response: missing keys code, duration, headers, status",
    ),
    "version missing": (
        b"---\ninteractions: []\n",
        "x.yaml:2: no version key: not a go-vcr cassette (version 2 expected)",
    ),
    "version 1": (
        b"---\nversion: 1\ninteractions: []\n",
        "x.yaml:2: unsupported cassette version 1 (version 2 expected)",
    ),
    "version quoted": (
        b'---\nversion: "2"\ninteractions: []\n',
        'x.yaml:2: unsupported cassette version "2" (version 2 expected)',
    ),
    "interactions missing": (b"---\nversion: 2\n", "x.yaml:2: no interactions key"),
    "an interaction that is a scalar": (
        b"---\nversion: 2\ninteractions:\n- hello\n",
        "x.yaml:4: interactions[0]: an interaction must be a mapping, found a scalar",
    ),
    "quoted integer": (
        _edit(b"code: 200", b'code: "200"'),
        'x.yaml:45: interactions[0].response.code: quoted integer "200" '
        "(go-vcr needs a plain number)",
    ),
    "not an integer": (
        _edit(b"proto_major: 2", b"proto_major: two"),
        "x.yaml:23: interactions[0].response.proto_major: expected an integer, found 'two'",
    ),
    "a scalar where a list of strings belongs": (
        _edit(b"      Accept:\n      - application/json\n", b"      Accept: application/json\n"),
        "x.yaml:13: interactions[0].request.headers.Accept: a scalar where a list of strings "
        "belongs (write it as `- value`)",
    ),
    "headers as a list": (
        _edit(b"    headers:\n      Content-Type:\n      - text", b"    headers:\n      - text"),
        "x.yaml:42: interactions[0].response.headers: expected a map of string lists, found a list",
    ),
    "unknown duration syntax": (
        _edit(b"duration: 2.195586958s", b"duration: 2 seconds"),
        "x.yaml:46: interactions[0].response.duration: invalid duration '2 seconds': "
        "unknown unit ' seconds' (Go duration syntax expected, such as 1.5s)",
    ),
    "a duration without unit": (
        _edit(b"duration: 2.195586958s", b"duration: 2.5"),
        "x.yaml:46: interactions[0].response.duration: invalid duration '2.5': missing unit "
        "(Go duration syntax expected, such as 1.5s)",
    ),
    "duplicate key": (
        _edit(b"    method: POST\n", b"    method: POST\n    method: GET\n"),
        "x.yaml:21: interactions[0].request: duplicate key 'method'",
    ),
    "a chunks entry without size": (
        _edit(b"    duration: 2.195586958s\n", b"    duration: 2.195586958s\n    chunks:\n"),
        "x.yaml:47: interactions[0].response.chunks: expected a list of {at, size} entries, "
        "found a scalar",
    ),
    "an alias": (
        _edit(b"    url: https", b"    url: &u https").replace(b"method: POST", b"method: *u"),
        "x.yaml:20: YAML aliases (*name) are not allowed in a cassette",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_gives_one_clear_error(case: str) -> None:
    data, message = BAD_INPUTS[case]
    with pytest.raises(CassetteError) as caught:
        loads(data, "x.yaml")
    error = caught.value
    assert str(error) == message
    # one error, not a chain of YAML library exceptions
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert error.path == "x.yaml"


def test_error_fields() -> None:
    with pytest.raises(CassetteError) as caught:
        loads(b"---\nversion: 1\ninteractions: []\n", "cassettes/x.yaml")
    assert (caught.value.path, caught.value.line) == ("cassettes/x.yaml", 2)
    assert caught.value.message == "unsupported cassette version 1 (version 2 expected)"
    assert (
        str(caught.value)
        == "cassettes/x.yaml:2: unsupported cassette version 1 (version 2 expected)"
    )


def test_error_without_path() -> None:
    with pytest.raises(CassetteError) as caught:
        loads(b"---\nversion: 3\ninteractions: []\n")
    assert str(caught.value) == ":2: unsupported cassette version 3 (version 2 expected)"


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["version: 2", "interactions:", "- &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"- &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"  # 9**10 strings once expanded
    started = time.perf_counter()
    with pytest.raises(CassetteError) as caught:
        loads(bomb, "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    assert str(caught.value) == "bomb.yaml:4: YAML aliases (*name) are not allowed in a cassette"


def test_self_referencing_alias_is_refused() -> None:
    data = b"version: 2\ninteractions: &loop\n- *loop\n"
    with pytest.raises(CassetteError, match="aliases"):
        loads(data, "x.yaml")


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CassetteError) as caught:
        load(path)
    assert str(caught.value) == f"{path}: cannot read the cassette: No such file or directory"


def test_load_names_the_file_in_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(b"---\nversion: 1\ninteractions: []\n")
    with pytest.raises(CassetteError) as caught:
        load(path)
    assert str(caught.value) == f"{path}:2: unsupported cassette version 1 (version 2 expected)"
