# ruff: noqa: E501  (the cassette text is kept as a YAML library writes it: one line per body)
"""Cassettes written by other go-vcr releases' YAML libraries (issue 11, item 16): a file whose
one-line JSON bodies are double-quoted (where yaml.v3 writes single quotes or a literal block) is
valid. `llm-vcr check` reports no problem with it, and an append keeps its bytes."""

from __future__ import annotations

import io
from pathlib import Path

from llmvcr.cassette import Interaction, Request, Response, dumps, load
from llmvcr.commands.check import check_paths
from llmvcr.store import CassetteStore

# As a go-vcr release on another YAML library writes it: the JSON bodies double-quoted with `\"`.
DOUBLE_QUOTED = '''\
---
version: 2
interactions:
- id: 0
  request:
    proto: HTTP/1.1
    proto_major: 1
    proto_minor: 1
    content_length: 67
    host: ""
    body: "{\\"model\\":\\"gpt-4o-mini\\",\\"messages\\":[{\\"role\\":\\"user\\",\\"content\\":\\"hi\\"}]}"
    headers:
      Content-Type:
      - "application/json"
    url: "https://api.openai.com/v1/chat/completions"
    method: POST
  response:
    proto: HTTP/2.0
    proto_major: 2
    proto_minor: 0
    content_length: 63
    body: "{\\"id\\":\\"chatcmpl-1\\",\\"choices\\":[{\\"message\\":{\\"content\\":\\"hello\\"}}]}"
    headers:
      Content-Type:
      - "application/json"
    status: "200 OK"
    code: 200
    duration: "412.5ms"
'''


def write(tmp_path: Path) -> Path:
    path = tmp_path / "cassettes" / "quoted.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DOUBLE_QUOTED, encoding="utf-8")
    return path


def test_the_hand_written_file_is_what_it_claims(tmp_path: Path) -> None:
    path = write(tmp_path)
    (interaction,) = load(path).interactions
    assert interaction.request.body == (
        b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
    )
    assert b'    body: "{\\"model' in path.read_bytes()
    assert dumps(load(path)) != path.read_bytes()  # not the canonical layout: that is the point


def test_check_reports_nothing_for_the_double_quoted_style(tmp_path: Path, govcr_check) -> None:
    path = write(tmp_path)
    govcr_check([path])
    out = io.StringIO()
    assert check_paths([str(path)], out=out) == 0
    assert out.getvalue() == "checked 1 cassette: 0 errors, 0 warnings\n"


def test_append_keeps_the_existing_bytes(tmp_path: Path, govcr_check) -> None:
    path = write(tmp_path)
    before = path.read_bytes()
    new = Interaction(
        Request(method="POST", url="https://api.openai.com/v1/chat/completions",
                body=b'{"model":"gpt-4o-mini"}', headers={"Content-Type": ["application/json"]}),
        Response(body=b'{"ok":true}', headers={"Content-Type": ["application/json"]}),
    )
    CassetteStore(tmp_path / "cassettes").append("quoted", [new])
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    loaded = load(path).interactions
    assert [i.request.body for i in loaded][1:] == [b'{"model":"gpt-4o-mini"}']
    assert loaded[0].response.body.startswith(b'{"id":"chatcmpl-1"')
    govcr_check([path])
    out = io.StringIO()
    assert check_paths([str(path)], out=out) == 0
