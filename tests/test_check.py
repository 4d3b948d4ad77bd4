"""`llm-vcr check`: the corpus passes; planted secrets and broken files are found at their line,
and no secret is ever echoed."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmvcr.commands.check import check_bytes, check_paths

SEED = Path(__file__).resolve().parent.parent / "cassettes" / "simple_streaming.yaml"
ACCEPT_VALUE = "      - application/json\n"  # the request's first header value in the seed
URL_END = "chat/completions\n"

BEARER = "Bearer sk-proj-Zq8Xv2Lm9Rt4Wy6Np1Bc3Df5Gh7Jk0"
GOOGLE_KEY = "AIzaSyD4r8Qv0Lm2Np6Xt9Wz1Bc3Df5Gh7Jk0Mq"
SK_KEY = "sk-ant-api03-Hc7Vb2Nm5Qw8Er1Ty4Ui6Op9As3Df0Gh"
AWS_KEY = "AKIAZX7Q4R2T6Y8U1I3O"


def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def line_of(text: str, marker: str) -> int:
    """The 1-based line of the first occurrence of `marker` (found by plain text search)."""
    return text[: text.index(marker)].count("\n") + 1


def check(tmp_path: Path, text: str, name: str = "planted.yaml") -> tuple[int, str, Path]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    status = check_paths([str(path)], out=out)
    return status, out.getvalue(), path


def test_seed_is_clean(tmp_path: Path) -> None:
    status, output, _ = check(tmp_path, seed_text())
    assert status == 0
    assert output == "checked 1 cassette: 0 errors, 0 warnings\n"


def test_corpus_passes(corpus_dir: Path) -> None:
    out = io.StringIO()
    assert check_paths([str(corpus_dir)], out=out) == 0
    lines = out.getvalue().splitlines()
    assert not [line for line in lines if ": error: " in line]
    # The hand-edited Vertex cassettes: found, and only as warnings.
    length_warnings = [line for line in lines if "content_length" in line]
    assert len(length_warnings) == 8
    assert all("vertex" in line and ": warning: " in line for line in length_warnings)
    assert re.fullmatch(r"checked 29\d cassettes: 0 errors, \d+ warnings", lines[-1])


def test_bearer_token_header(tmp_path: Path) -> None:
    text = seed_text().replace(
        ACCEPT_VALUE, f"{ACCEPT_VALUE}      Authorization:\n      - {BEARER}\n", 1
    )
    status, output, path = check(tmp_path, text)
    assert status == 1
    line = line_of(text, "Authorization:")
    kind = f"Bearer token, {len(BEARER)} chars"
    assert f"{path}:{line}: error: secret: Authorization header ({kind})" in output.splitlines()
    assert BEARER.split()[1] not in output
    assert ": warning: " not in output  # the planted file is canonical


def test_key_in_query_and_form(tmp_path: Path) -> None:
    text = seed_text().replace(URL_END, f"chat/completions?api-version=1&key={GOOGLE_KEY}\n", 1)
    form = f"    form:\n      key:\n      - {GOOGLE_KEY}\n"
    text = text.replace("    headers:\n", f"{form}    headers:\n", 1)
    status, output, path = check(tmp_path, text)
    assert status == 1
    lines = output.splitlines()
    length = f"({len(GOOGLE_KEY)} chars)"
    url_line, form_line = line_of(text, "    url: "), line_of(text, "      key:")
    assert f"{path}:{url_line}: error: secret: query parameter key in url {length}" in lines
    assert f"{path}:{form_line}: error: secret: form field key {length}" in lines
    assert GOOGLE_KEY not in output
    assert GOOGLE_KEY[4:20] not in output


def test_redacted_values_are_fine(tmp_path: Path) -> None:
    text = seed_text().replace(URL_END, "chat/completions?key=REDACTED\n", 1)
    form = "    form:\n      key:\n      - REDACTED\n"
    text = text.replace("    headers:\n", f"{form}    headers:\n", 1)
    status, output, _ = check(tmp_path, text)
    assert status == 0, output


def test_sk_key_in_bodies(tmp_path: Path) -> None:
    text = seed_text().replace('"content":"Olá"', f'"content":"Olá {SK_KEY}"', 1)
    text = text.replace("Say hi in Portuguese", f"Say hi {SK_KEY}", 1)
    status, output, path = check(tmp_path, text)
    assert status == 1
    lines = output.splitlines()
    request_line = line_of(text, "    body: '")
    response_line = line_of(text, f'"content":"Olá {SK_KEY}"')
    assert response_line > request_line + 10  # inside the response's literal block
    length = f"({len(SK_KEY)} chars)"
    assert f"{path}:{request_line}: error: secret: sk- key in request body {length}" in lines
    assert f"{path}:{response_line}: error: secret: sk- key in response body {length}" in lines
    assert SK_KEY not in output
    assert SK_KEY[3:] not in output
    # The request body changed length: the stored content_length no longer fits it.
    assert any(": warning: interaction 0: request content_length 225" in line for line in lines)


def test_set_cookie_and_key_shaped_values_in_other_headers(tmp_path: Path) -> None:
    content_type = "      - text/event-stream; charset=utf-8\n"
    cookie = "      Set-Cookie:\n      - session=s3cr3tvalue\n"
    text = seed_text().replace(content_type, content_type + cookie, 1)
    text = text.replace("(https://charm.land/fantasy)", f"(https://charm.land/fantasy) {AWS_KEY}")
    status, output, path = check(tmp_path, text)
    assert status == 1
    lines = output.splitlines()
    cookie = f"{line_of(text, 'Set-Cookie:')}: error: secret: Set-Cookie header (value, 19 chars)"
    assert f"{path}:{cookie}" in lines
    agent_line = line_of(text, AWS_KEY)
    assert (
        f"{path}:{agent_line}: error: secret: AWS access key id in request header User-Agent "
        "(20 chars)" in lines
    )
    assert "s3cr3tvalue" not in output
    assert AWS_KEY not in output


def test_prose_is_not_a_secret(tmp_path: Path) -> None:
    prose = "Use Bearer authentication for the risk-assessment-framework-overview task"
    text = seed_text().replace('"content":"Olá"', f'"content":"{prose}"', 1)
    status, output, _ = check(tmp_path, text)
    assert status == 0, output


def test_broken_file_names_the_line(tmp_path: Path) -> None:
    text = seed_text().replace("    code: 200\n", '    code: "200"\n', 1)
    status, output, path = check(tmp_path, text)
    assert status == 1
    first = output.splitlines()[0]
    assert first.startswith(f"{path}:{line_of(text, 'code: ')}: error: ")
    assert "code" in first


def test_not_yaml_and_missing(tmp_path: Path) -> None:
    status, output, path = check(tmp_path, "---\nversion: 2\ninteractions: [\n")
    assert status == 1
    assert re.match(rf"{re.escape(str(path))}:\d+: error: not valid YAML", output)
    out = io.StringIO()
    assert check_paths([str(tmp_path / "absent.yaml")], out=out) == 1
    assert f"{tmp_path / 'absent.yaml'}: error: no such file or directory" in out.getvalue()


def test_warnings_only_exit_zero(tmp_path: Path) -> None:
    text = seed_text().replace("    content_length: 225\n", "    content_length: 230\n", 1)
    text = text.replace('    host: ""\n', "    host: ''\n", 1)  # same value, not canonical
    status, output, path = check(tmp_path, text)
    assert status == 0
    lines = output.splitlines()
    assert (
        f"{path}:{line_of(text, 'content_length: 230')}: warning: interaction 0: request "
        "content_length 230 does not match the body (225 bytes)" in lines
    )
    # `host: ''` is not the canonical layout, and that is no warning of check's (issue 11, 16)
    assert not [line for line in lines if "canonical" in line]
    assert lines[-1] == "checked 1 cassette: 0 errors, 1 warning"


def test_response_content_length_rules(tmp_path: Path) -> None:
    wrong = seed_text().replace("    content_length: -1\n", "    content_length: 5\n", 1)
    status, output, _ = check(tmp_path, wrong)
    assert status == 0
    assert "response content_length 5 does not match the body" in output
    uncompressed = wrong.replace("    content_length: 5\n",
                                 "    content_length: 5\n    uncompressed: true\n", 1)
    status, output, _ = check(tmp_path, uncompressed)
    assert status == 0
    assert "content_length" not in output


def test_chunks_that_do_not_fit_are_a_warning(tmp_path: Path) -> None:
    text = seed_text().replace(
        "    duration: 2.195586958s\n",
        "    duration: 2.195586958s\n    chunks:\n    - {at: 2.196s, size: 10}\n",
        1,
    )
    status, output, path = check(tmp_path, text)
    assert status == 0
    assert f"{path}:{line_of(text, 'chunks:')}: warning: " in output


@pytest.mark.parametrize("header", ["X-Api-Key", "Api-Key", "X-Goog-Api-Key", "Proxy-Authorization",
                                    "X-Amz-Security-Token", "Cookie"])
def test_secret_header_names(header: str) -> None:
    value = "x" * 24
    text = SEED.read_text(encoding="utf-8").replace(
        "      User-Agent:\n", f"      {header}:\n      - {value}\n      User-Agent:\n", 1
    )
    findings = check_bytes(text.encode(), "x.yaml")
    errors = [f for f in findings if f.severity == "error"]
    assert [(f.line, f.message) for f in errors] == [
        (line_of(text, f"{header}:"), f"secret: {header} header (value, 24 chars)")
    ]
    assert all(value not in str(f) for f in findings)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_files_give_findings_not_crashes(data: st.DataObject) -> None:
    lines = SEED.read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        edit = data.draw(st.sampled_from(["drop", "double", "indent", "garble"]))
        if edit == "drop":
            del lines[i]
        elif edit == "double":
            lines.insert(i, lines[i])
        elif edit == "indent":
            lines[i] = "  " + lines[i]
        else:
            lines[i] = data.draw(st.text(alphabet=" -:'\"{}[]|>&*!#%@ab01\t", max_size=12)) + "\n"
        if not lines:
            break
    findings = check_bytes("".join(lines).encode(), "damaged.yaml")
    assert all(f.severity in ("error", "warning") and f.path == "damaged.yaml" for f in findings)


# ---- secrets in JSON fields, URLs in JSON strings, multipart parts (issue 11, item 5) ---------

def cassette_text(request_body: str, response_body: str, request_type: str = "application/json",
                  response_type: str = "application/json") -> str:
    """One interaction, bodies as literal blocks (one YAML line per body line)."""
    def block(body: str) -> str:
        return "|-\n" + "".join(f"      {line}\n" for line in body.split("\n"))

    return (
        "---\nversion: 2\ninteractions:\n- id: 0\n  request:\n    proto: HTTP/1.1\n"
        "    proto_major: 1\n    proto_minor: 1\n"
        f"    content_length: {len(request_body.encode())}\n    host: \"\"\n"
        f"    body: {block(request_body)}"
        f"    headers:\n      Content-Type:\n      - {request_type}\n"
        "    url: https://api.example.com/v1/things\n    method: POST\n  response:\n"
        "    proto: HTTP/1.1\n    proto_major: 1\n    proto_minor: 1\n"
        f"    content_length: {len(response_body.encode())}\n"
        f"    body: {block(response_body)}"
        f"    headers:\n      Content-Type:\n      - {response_type}\n"
        "    status: 200 OK\n    code: 200\n    duration: 1ms\n"
    )


PLANTED = {
    "api_key": "planted-api-key-0001",
    "aws_secret_access_key": "planted-aws-secret-0002",
    "client_secret": "planted-client-secret-0003",
}
SAS_SIG = "planted%2Bsas%2Bsig0004"
JSON_REQUEST = json.dumps({
    "model": "m",
    "credentials": {"aws_secret_access_key": PLANTED["aws_secret_access_key"]},
    "api_key": PLANTED["api_key"],
    "oauth": [{"client_secret": PLANTED["client_secret"]}],
    "image": {"url": f"https://acct.blob.core.windows.net/c/x.png?sv=2021&sig={SAS_SIG}"},
    "max_tokens": 10, "prompt_tokens": 3, "cache_tokens": 1, "token_count": "12",
    "password": "", "refresh_token": "REDACTED", "access_token": 42, "token": "Hi",
    "signature": "EqQBCkgIARAB", "secret": None,
}, indent=1)
CLEAN_RESPONSE = '{"id": "x", "usage": {"prompt_tokens": 3}}'


def test_json_secret_fields_are_found_at_their_line_and_never_shown(tmp_path: Path) -> None:
    text = cassette_text(JSON_REQUEST, CLEAN_RESPONSE)
    status, output, path = check(tmp_path, text)
    assert status == 1
    errors = [line for line in output.splitlines() if ": error: " in line]
    expected = {
        f"{path}:{line_of(text, '\"api_key\"')}: error: secret: JSON field api_key in request "
        "body (20 chars)",
        f"{path}:{line_of(text, '\"aws_secret_access_key\"')}: error: secret: JSON field "
        "aws_secret_access_key in request body (23 chars)",
        f"{path}:{line_of(text, '\"client_secret\"')}: error: secret: JSON field client_secret "
        "in request body (26 chars)",
        f"{path}:{line_of(text, '\"url\"')}: error: secret: query parameter sig in a URL in "
        f"request body ({len(SAS_SIG)} chars)",
    }
    assert set(errors) == expected, output
    for value in [*PLANTED.values(), SAS_SIG, "planted-", "planted%"]:
        assert value not in output


def test_sse_data_lines_in_responses_are_searched(tmp_path: Path) -> None:
    sse = ('data: {"type":"delta","delta":"hi","max_tokens":5}\n\n'
           'data: {"session":{"refresh_token":"planted-refresh-0005"}}\n\n'
           'data: {"image":"https://x.example/a.png?se=1&sig=plantedsig0006"}\n\n'
           'data: [DONE]')
    text = cassette_text('{"model": "m"}', sse, response_type="text/event-stream")
    status, output, path = check(tmp_path, text)
    assert status == 1
    assert (f"{path}:{line_of(text, 'refresh_token')}: error: secret: JSON field refresh_token "
            "in response body (20 chars)") in output
    assert (f"{path}:{line_of(text, 'plantedsig0006')}: error: secret: query parameter sig in a "
            "URL in response body (14 chars)") in output
    assert "planted-refresh" not in output and "plantedsig" not in output
    assert output.count(": error: ") == 2 and output.endswith("2 errors, 0 warnings\n")


def test_multipart_and_url_encoded_form_secrets(tmp_path: Path) -> None:
    body = ('--b1\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            '--b1\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nplanted-mp-0007\r\n'
            '--b1\r\nContent-Disposition: form-data; name="empty_password"\r\n\r\n\r\n'
            '--b1\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhi\r\n'
            '--b1--\r\n')
    text = cassette_text(body, CLEAN_RESPONSE,
                         request_type="multipart/form-data; boundary=b1")
    status, output, path = check(tmp_path, text)
    assert status == 1, output
    assert (f"{path}:{line_of(text, 'planted-mp-0007')}: error: secret: multipart field api_key "
            "in request body (15 chars)") in output
    assert output.count(": error: ") == 1 and "planted-mp" not in output

    form = "grant_type=client_credentials&client_secret=planted-form-0008&scope=all"
    text = cassette_text(form, CLEAN_RESPONSE, request_type="application/x-www-form-urlencoded")
    status, output, _ = check(tmp_path, text, "form.yaml")
    assert status == 1
    assert "error: secret: form field client_secret in request body (17 chars)" in output
    assert "planted-form" not in output


def test_scrubbed_and_harmless_json_passes(tmp_path: Path) -> None:
    harmless = json.dumps({"api_key": "REDACTED", "password": "", "max_tokens": 5,
                           "client_secret": None, "prompt_tokens": 9, "token": "the",
                           "url": "https://a.example/x?sig=REDACTED&sv=1", "key": "color",
                           "code": "invalid_api_key", "signature": "EqQBCkgIAR"})
    status, output, _ = check(tmp_path, cassette_text(harmless, harmless))
    assert status == 0, output
    assert output.endswith("0 errors, 0 warnings\n")


def test_a_fresh_recording_passes_and_redact_cleans_an_old_file(tmp_path: Path) -> None:
    """What the recorder saves (`Redactor`) passes check; `llm-vcr redact` (commands/redact.py,
    which applies the same Redactor) turns an old file that fails into one that passes."""
    import subprocess
    import sys

    from llmvcr.cassette import dumps, loads
    from llmvcr.commands.redact import redact_cassette
    from llmvcr.redact import Redactor

    text = cassette_text(JSON_REQUEST, CLEAN_RESPONSE)
    old = loads(text.encode(), "old.yaml")
    fresh = dataclasses.replace(old, interactions=[
        dataclasses.replace(i, request=Redactor().request(i.request),
                            response=Redactor().response(i.response))
        for i in old.interactions])
    assert check_bytes(dumps(fresh), "fresh.yaml") == []
    cleaned, report = redact_cassette(old)
    assert report and check_bytes(dumps(cleaned), "cleaned.yaml") == []

    path = tmp_path / "old.yaml"
    path.write_text(text, encoding="utf-8")
    cli = [sys.executable, "-m", "llmvcr.cli"]
    before = subprocess.run([*cli, "check", str(path)], capture_output=True, text=True)
    assert before.returncode == 1 and "JSON field api_key" in before.stdout
    redacted = subprocess.run([*cli, "redact", str(path)], capture_output=True, text=True)
    assert redacted.returncode == 0, redacted.stderr
    after = subprocess.run([*cli, "check", str(path)], capture_output=True, text=True)
    assert after.returncode == 0, after.stdout
    for run in (before, after):
        for value in [*PLANTED.values(), SAS_SIG]:
            assert value not in run.stdout and value not in run.stderr
    for value in [*PLANTED.values(), SAS_SIG]:
        assert value not in path.read_text(encoding="utf-8")


def test_redact_output_names_no_json_secret() -> None:
    """A changed JSON request body is not split as a form: nothing of it is printed."""
    from llmvcr.cassette import loads
    from llmvcr.commands.redact import redact_cassette

    _, report = redact_cassette(loads(cassette_text(JSON_REQUEST, CLEAN_RESPONSE).encode(), "x"))
    printed = " ".join(change for _, changes in report for change in changes)
    for value in [*PLANTED.values(), SAS_SIG]:
        assert value not in printed
    assert "redacted secret fields in the request body" in printed
