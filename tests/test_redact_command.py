"""`llm-vcr redact`: secrets out, names reported (never values), layout kept, idempotent."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
from pathlib import Path

from llmvcr.cassette import Cassette, Interaction, Request, Response, Style, dumps, load, loads
from llmvcr.commands.check import check_file
from llmvcr.commands.redact import redact_cassette, redact_paths

SEED = Path(__file__).resolve().parent.parent / "cassettes" / "simple_streaming.yaml"

TOKEN = "sk-proj-Zq8Xv2Lm9Rt4Wy6Np1Bc3Df5Gh7Jk0"
COOKIE = "session=Qw8Er1Ty4Ui6Op9"
GOOGLE_KEY = "AIzaSyD4r8Qv0Lm2Np6Xt9Wz1Bc3Df5Gh7Jk0Mq"
SECRETS = (TOKEN, COOKIE, GOOGLE_KEY)


def planted_seed() -> str:
    """The seed with Authorization and Cookie headers and a `?key=` (in url and form, as go-vcr
    records a query), in the canonical key order."""
    text = SEED.read_text(encoding="utf-8")
    accept = "      - application/json\n"
    text = text.replace(accept, f"{accept}      Authorization:\n      - Bearer {TOKEN}\n", 1)
    content_type = "      Content-Type:\n      - application/json\n"
    text = text.replace(content_type, f"{content_type}      Cookie:\n      - {COOKIE}\n", 1)
    text = text.replace("chat/completions\n", f"chat/completions?key={GOOGLE_KEY}\n", 1)
    form = f"    form:\n      key:\n      - {GOOGLE_KEY}\n"
    return text.replace("    headers:\n", f"{form}    headers:\n", 1)


def redact(*paths: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = redact_paths([str(p) for p in paths], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_redact_removes_the_secrets_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "planted.yaml"
    path.write_text(planted_seed(), encoding="utf-8")
    assert dumps(load(path)) == path.read_bytes()  # planted canonically: only redaction changes it
    assert any(f.severity == "error" for f in check_file(path))

    status, output, err = redact(path)
    assert (status, err) == (0, "")
    assert output.splitlines() == [
        f"{path}: interaction 0: removed request header Authorization; removed request header "
        "Cookie; redacted query parameter key",
        "redacted 1 cassette, 0 unchanged",
    ]
    data = path.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in data
        assert secret not in output
    assert b"?key=REDACTED\n" in data
    assert dumps(load(path)) == data  # what `fmt --check` accepts
    assert check_file(path) == []
    # Everything else is as it was: the seed with the query redacted.
    seed = load(SEED).interactions[0]
    after = load(path).interactions[0]
    assert after.response == seed.response
    assert after.request.headers == seed.request.headers
    assert after.request.body == seed.request.body
    assert after.request.form == {"key": ["REDACTED"]}


def test_second_run_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "planted.yaml"
    path.write_text(planted_seed(), encoding="utf-8")
    redact(path)
    before = path.read_bytes()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # a past mtime any rewrite would change
    status, output, _ = redact(path)
    assert status == 0
    assert output == "redacted 0 cassettes, 1 unchanged\n"
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planted.yaml"]  # no temp file left


def test_clean_corpus_files_are_untouched(corpus_dir: Path, tmp_path: Path) -> None:
    folder = corpus_dir / "fantasy" / "TestBedrockCommon" / "bedrock-anthropic-claude-haiku-4-5"
    copy = tmp_path / "bedrock"
    shutil.copytree(folder, copy)
    stamps = {p: p.stat().st_mtime_ns for p in copy.iterdir()}
    status, output, _ = redact(copy)
    assert status == 0
    assert output == f"redacted 0 cassettes, {len(stamps)} unchanged\n"
    assert {p: p.stat().st_mtime_ns for p in copy.iterdir()} == stamps


def test_layout_of_the_file_is_kept(corpus_dir: Path, tmp_path: Path) -> None:
    """A go-vcr default layout file (indent 4, every key written) keeps that layout: the result
    is byte for byte the file as it was before the secrets were added."""
    source = corpus_dir / "fantasy/TestGoogleCommon/gemini-2.5-flash/tool_streaming.yaml"
    original = dataclasses.replace(load(source), style=Style(4, False))
    clean = dumps(original)
    planted = loads(clean)
    for interaction in planted.interactions:
        interaction.request.headers["X-Goog-Api-Key"] = [GOOGLE_KEY]
        interaction.response.headers["Set-Cookie"] = [COOKIE]
    path = tmp_path / "indent4.yaml"
    path.write_bytes(dumps(planted))
    assert b"\n    - id: 0\n" in path.read_bytes()

    status, output, _ = redact(path)
    assert status == 0
    assert path.read_bytes() == clean
    assert output.count("removed request header X-Goog-Api-Key; removed response header "
                        "Set-Cookie") == len(planted.interactions)


def test_header_names_become_canonical(tmp_path: Path) -> None:
    cassette = load(SEED)
    headers = cassette.interactions[0].request.headers
    headers["user-agent"] = headers.pop("User-Agent")
    path = tmp_path / "lower.yaml"
    path.write_bytes(dumps(cassette))
    status, output, _ = redact(path)
    assert status == 0
    assert "renamed request header user-agent to User-Agent" in output
    assert path.read_bytes() == SEED.read_bytes()


def test_broken_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = "---\nversion: 3\ninteractions: []\n"
    broken.write_text(text)
    status, output, err = redact(broken, tmp_path / "absent.yaml")
    assert status == 1
    assert f"llm-vcr: {broken}:2: " in err
    assert f"{tmp_path / 'absent.yaml'}: no such file or directory" in err
    assert broken.read_text() == text
    assert output == "redacted 0 cassettes, 0 unchanged, 1 failed\n"


def _one(request: Request, response: Response) -> Cassette:
    return Cassette(interactions=[Interaction(request, response)])


def test_form_fields_are_named_other_bodies_are_not_split() -> None:
    """A url-encoded form names the fields it redacted; a JSON body that changed (its secret
    fields scrubbed) is only said to have changed: splitting it at `&` and `=` would print
    whatever stands there."""
    form = Request(method="POST", url="https://api.example.com/token",
                   body=f"grant=x&api_key={TOKEN}".encode(),
                   headers={"Content-Type": ["application/x-www-form-urlencoded"]})
    _, report = redact_cassette(_one(form, Response()))
    assert report == [(0, ["redacted form fields api_key in the body"])]

    body = f'{{"q": "a&b=c{TOKEN}", "api_key": "{TOKEN}"}}'.encode()
    json_request = Request(method="POST", url="https://api.example.com/v1", body=body,
                           headers={"Content-Type": ["application/json"]})
    answer = Response(body=f'{{"client_secret": "{TOKEN}"}}'.encode(),
                      headers={"Content-Type": ["application/json"]})
    _, report = redact_cassette(_one(json_request, answer))
    assert report == [(0, ["redacted secret fields in the request body",
                           "redacted secret fields in the response body"])]
    assert TOKEN not in repr(report)
