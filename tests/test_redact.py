from __future__ import annotations

import copy
import json

import pytest

from llmvcr.cassette import Chunk, Request, Response
from llmvcr.redact import (
    DEFAULT_KEEP_HEADERS,
    REDACTED,
    SECRET_QUERY_PARAMS,
    Redactor,
    redact_url,
)

SECRET = "sk-live-0123456789abcdef"

SECRET_HEADERS = ["Authorization", "api-key", "x-api-key", "x-goog-api-key", "Cookie"]


def make_request(**changes: object) -> Request:
    request = Request(
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
        body=b'{"model":"gpt-5","user":"alice"}',
        headers={
            "accept": ["application/json"],
            "content-type": ["application/json"],
            "user-agent": ["OpenAI/Python 1.0"],
            "Authorization": [f"Bearer {SECRET}"],
            "api-key": [SECRET],
            "X-Api-Key": [SECRET],
            "x-goog-api-key": [SECRET],
            "Cookie": [f"session={SECRET}"],
            "OpenAI-Organization": ["org-123"],
        },
    )
    request.content_length = len(request.body)
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def test_default_allow_list() -> None:
    assert DEFAULT_KEEP_HEADERS == ("Accept", "Content-Type", "User-Agent")


@pytest.mark.parametrize("name", SECRET_HEADERS)
def test_request_secret_headers_are_dropped(name: str) -> None:
    request = make_request()
    assert any(k.lower() == name.lower() for k in request.headers)
    redacted = Redactor().request(request)
    assert all(k.lower() != name.lower() for k in redacted.headers)
    assert SECRET not in repr(redacted)


def test_request_keeps_allow_listed_headers_in_canonical_case() -> None:
    redacted = Redactor().request(make_request())
    assert redacted.headers == {
        "Accept": ["application/json"],
        "Content-Type": ["application/json"],
        "User-Agent": ["OpenAI/Python 1.0"],
    }


def test_custom_allow_list_is_case_insensitive() -> None:
    redacted = Redactor(keep_headers=["openai-organization", "ACCEPT"]).request(make_request())
    assert redacted.headers == {"Openai-Organization": ["org-123"], "Accept": ["application/json"]}


def test_header_names_differing_only_in_case_are_merged() -> None:
    request = make_request(headers={"accept": ["a"], "ACCEPT": ["b"]})
    assert Redactor().request(request).headers == {"Accept": ["a", "b"]}


def test_response_set_cookie_and_other_headers_are_dropped() -> None:
    response = Response(
        headers={
            "set-cookie": [f"__cf_bm={SECRET}; path=/"],
            "Set-Cookie": [f"_cfuvid={SECRET}"],
            "content-type": ["application/json"],
            "openai-organization": ["org-123"],
            "x-request-id": ["req_1"],
        },
        body=b"{}",
    )
    redacted = Redactor().response(response)
    assert redacted.headers == {"Content-Type": ["application/json"]}
    assert SECRET not in repr(redacted)


def test_trailers_follow_the_allow_list_too() -> None:
    response = Response(trailer={"x-secret-trailer": [SECRET], "content-type": ["text/plain"]})
    assert Redactor().response(response).trailer == {"Content-Type": ["text/plain"]}


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "api-key",
        "api_key",
        "apikey",
        "access_token",
        "token",
        "sig",
        "signature",
        "x-goog-api-key",
        "client_secret",
        "password",
        "auth",
        "code",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "KEY",
    ],
)
def test_each_secret_query_parameter_is_redacted(name: str) -> None:
    assert name.lower() in SECRET_QUERY_PARAMS
    url = f"https://generativelanguage.googleapis.com/v1beta/models/g:gen?alt=sse&{name}={SECRET}"
    assert redact_url(url) == (
        f"https://generativelanguage.googleapis.com/v1beta/models/g:gen?alt=sse&{name}={REDACTED}"
    )


def test_url_is_kept_byte_for_byte_apart_from_the_secret_values() -> None:
    url = (
        "https://Example.COM:8443/a%2Fb/c d?z=1&q=hello+world%21&key=abc%3D%3D"
        "&empty=&flag&q=again&Api%5FKey=xyz#frag?key=not-a-query"
    )
    assert redact_url(url) == (
        "https://Example.COM:8443/a%2Fb/c d?z=1&q=hello+world%21&key=REDACTED"
        "&empty=&flag&q=again&Api%5FKey=REDACTED#frag?key=not-a-query"
    )


def test_urls_without_secrets_are_unchanged() -> None:
    for url in [
        "https://api.openai.com/v1/chat/completions",
        "https://a.example/x?alt=sse&keys=1&monkey=2",
        "/v1/models?limit=5",
        "",
    ]:
        assert redact_url(url) == url


def test_userinfo_password_is_redacted() -> None:
    assert redact_url(f"https://user:{SECRET}@host.example/p?x=1") == (
        "https://user:REDACTED@host.example/p?x=1"
    )


def test_request_url_form_and_request_uri_are_redacted() -> None:
    request = make_request(
        url=f"https://h.example/v1?key={SECRET}&alt=sse",
        request_uri=f"/v1?key={SECRET}&alt=sse",
        form={"key": [SECRET], "alt": ["sse"], "Token": [SECRET, SECRET]},
    )
    redacted = Redactor().request(request)
    assert redacted.url == "https://h.example/v1?key=REDACTED&alt=sse"
    assert redacted.request_uri == "/v1?key=REDACTED&alt=sse"
    assert redacted.form == {"key": [REDACTED], "alt": ["sse"], "Token": [REDACTED, REDACTED]}


def test_form_encoded_body_secrets_are_redacted() -> None:
    body = f"grant_type=client_credentials&client_secret={SECRET}&scope=a+b".encode()
    request = make_request(
        headers={"Content-Type": ["application/x-www-form-urlencoded"]},
        body=body,
        content_length=len(body),
    )
    redacted = Redactor().request(request)
    assert redacted.body == b"grant_type=client_credentials&client_secret=REDACTED&scope=a+b"
    assert redacted.content_length == len(redacted.body)


def test_request_json_body_paths_are_redacted() -> None:
    request = make_request(body=b'{"model": "gpt-5", "user": "alice", "metadata": {"id": 7}}')
    request.content_length = len(request.body)
    redacted = Redactor(json_paths=["user", "metadata.id"]).request(request)
    assert json.loads(redacted.body) == {
        "model": "gpt-5",
        "user": REDACTED,
        "metadata": {"id": REDACTED},
    }
    assert redacted.content_length == len(redacted.body)


def test_json_body_without_matching_paths_is_left_byte_exact() -> None:
    body = b'{ "model" : "gpt-5" }\n'
    redacted = Redactor(json_paths=["user"]).request(make_request(body=body))
    assert redacted.body == body


def test_plain_json_response_keeps_content_length_consistent() -> None:
    body = '{"id": "resp_1", "text": "Olá"}'.encode()
    response = Response(
        headers={"Content-Type": ["application/json"]}, body=body, content_length=len(body)
    )
    redacted = Redactor(json_paths=["id"]).response(response)
    assert redacted.body == '{"id":"REDACTED","text":"Olá"}'.encode()
    assert redacted.content_length == len(redacted.body)


def test_unknown_content_length_stays_unknown() -> None:
    response = Response(headers={"Content-Type": ["application/json"]}, body=b'{"id":"abc"}')
    assert Redactor(json_paths=["id"]).response(response).content_length == -1


SSE_BODY = (
    b'data: {"id":"chatcmpl-1","choices":[{"delta":{"content":"Ol\xc3\xa1"}}]}\r\n\r\n'
    b": keep-alive comment\r\n\r\n"
    b'event: message\ndata:{"id": "chatcmpl-1", "choices": []}\n\n'
    b"data: [DONE]\n\n"
)


def sse_response(body: bytes = SSE_BODY) -> Response:
    sizes = [40, len(body) - 60, 20]
    return Response(
        headers={"Content-Type": ["text/event-stream; charset=utf-8"]},
        body=body,
        content_length=len(body),
        chunks=[Chunk(at=(i + 1) * 1_000_000, size=size) for i, size in enumerate(sizes)],
    )


def test_sse_data_lines_are_redacted_keeping_the_framing() -> None:
    response = sse_response()
    redacted = Redactor(json_paths=["id"]).response(response)
    assert redacted.body == (
        b'data: {"id":"REDACTED","choices":[{"delta":{"content":"Ol\xc3\xa1"}}]}\r\n\r\n'
        b": keep-alive comment\r\n\r\n"
        b'event: message\ndata:{"id":"REDACTED","choices":[]}\n\n'
        b"data: [DONE]\n\n"
    )
    assert redacted.content_length == len(redacted.body)
    assert redacted.chunks is not None
    assert [c.at for c in redacted.chunks] == [c.at for c in response.chunks or []]
    assert sum(c.size for c in redacted.chunks) == len(redacted.body)
    assert all(c.size >= 0 for c in redacted.chunks)


def test_sse_chunks_that_do_not_add_up_are_dropped_when_the_body_changes() -> None:
    response = sse_response()
    response.chunks = [Chunk(at=1, size=3)]
    assert Redactor(json_paths=["id"]).response(response).chunks is None


def test_chunks_are_kept_when_nothing_changes() -> None:
    response = sse_response()
    redacted = Redactor(json_paths=["nothing.here"]).response(response)
    assert redacted.body == response.body
    assert redacted.chunks == response.chunks
    assert redacted.chunks is not response.chunks


@pytest.mark.parametrize(
    "make",
    [
        make_request,
        lambda: make_request(
            url=f"https://h.example/v1?key={SECRET}", form={"key": [SECRET]}, body=b'{"user":1}'
        ),
    ],
)
def test_request_redaction_is_idempotent_and_does_not_modify_its_input(make) -> None:
    redactor = Redactor(json_paths=["user"])
    request = make()
    before = copy.deepcopy(request)
    once = redactor.request(request)
    assert request == before
    assert redactor.request(once) == once


def test_response_redaction_is_idempotent_and_does_not_modify_its_input() -> None:
    redactor = Redactor(json_paths=["id", "choices.*.delta"])
    response = sse_response()
    response.headers["Set-Cookie"] = [SECRET]
    before = copy.deepcopy(response)
    once = redactor.response(response)
    assert response == before
    assert once.body != response.body
    assert redactor.response(once) == once


def test_bad_json_path_fails_when_configured() -> None:
    with pytest.raises(ValueError, match="empty"):
        Redactor(json_paths=["a..b"])


def test_chunks_on_event_boundaries_still_carry_one_event_each() -> None:
    events = [
        b'data: {"id":"a1","n":1}\n\n',
        b'data: {"id":"a22","n":2}\n\n',
        b"data: [DONE]\n\n",
    ]
    body = b"".join(events)
    response = sse_response(body)
    response.chunks = [Chunk(at=i, size=len(e)) for i, e in enumerate(events)]
    redacted = Redactor(json_paths=["id"]).response(response)
    new_events = [
        b'data: {"id":"REDACTED","n":1}\n\n',
        b'data: {"id":"REDACTED","n":2}\n\n',
        b"data: [DONE]\n\n",
    ]
    assert redacted.body == b"".join(new_events)
    assert redacted.chunks == [Chunk(at=i, size=len(e)) for i, e in enumerate(new_events)]


def test_kept_names_follow_go_canonical_form() -> None:
    redactor = Redactor(keep_headers=["x-goog-api-client", "WWW-AUTHENTICATE", "odd name", "x_y"])
    headers = {
        "x-goog-api-client": ["a"],
        "www-authenticate": ["b"],
        "odd name": ["c"],  # not a valid token: Go leaves such a name as it is
        "x_y": ["d"],
    }
    assert redactor.headers(headers) == {
        "X-Goog-Api-Client": ["a"],
        "Www-Authenticate": ["b"],
        "odd name": ["c"],
        "X_y": ["d"],
    }


# ---- secret JSON fields, URLs in JSON strings, multipart parts: scrubbed by default ---------
# (issue 11, item 5: a fresh recording never fails `llm-vcr check`)

NESTED = {
    "model": "m",
    "api_key": SECRET,
    "config": {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG", "region": "us-east-1",
               "clients": [{"client_secret": "cs-123", "name": "a"}]},
    "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {
            "url": "https://acct.blob.core.windows.net/c/x.png?sv=2021&sig=abc%2Bdef&se=2030"}},
        {"type": "text", "text": "see https://example.com/p?key=k123 and https://example.com/q"},
    ]}],
    "max_tokens": 50, "prompt_tokens": 12, "password": "", "refresh_token": REDACTED,
    "token": "Hello", "signature": "EqQBCkgIARAB", "access_token": 12345, "secret": None,
}


def test_request_json_secret_fields_and_urls_are_scrubbed_by_default() -> None:
    body = json.dumps(NESTED, indent=2).encode()
    redacted = Redactor().request(make_request(body=body, content_length=len(body)))
    value = json.loads(redacted.body)
    assert value["api_key"] == REDACTED
    assert value["config"]["aws_secret_access_key"] == REDACTED
    assert value["config"]["region"] == "us-east-1"
    assert value["config"]["clients"] == [{"client_secret": REDACTED, "name": "a"}]
    parts = value["messages"][0]["content"]
    assert parts[0]["image_url"]["url"] == (
        "https://acct.blob.core.windows.net/c/x.png?sv=2021&sig=REDACTED&se=2030")
    assert parts[1]["text"] == "see https://example.com/p?key=REDACTED and https://example.com/q"
    # not secrets: numbers, empty strings, REDACTED, generic names, token counts
    for name in ("max_tokens", "prompt_tokens", "password", "refresh_token", "token",
                 "signature", "access_token", "secret"):
        assert value[name] == NESTED[name], name
    assert redacted.content_length == len(redacted.body)
    assert SECRET.encode() not in redacted.body and b"abc%2Bdef" not in redacted.body
    assert Redactor().request(redacted) == redacted  # idempotent


def test_json_without_secrets_keeps_its_bytes() -> None:
    body = b'{ "model": "m",\n  "max_tokens": 5, "token": "x", "url": "https://a.example/b" }'
    assert Redactor().request(make_request(body=body, content_length=len(body))).body == body


def test_response_json_and_sse_secret_fields_are_scrubbed() -> None:
    body = b'{"access_token":"ya29.abc","token_type":"Bearer","expires_in":3599}'
    response = Response(body=body, content_length=len(body),
                        headers={"Content-Type": ["application/json"]})
    redacted = Redactor().response(response)
    assert json.loads(redacted.body) == {"access_token": REDACTED, "token_type": "Bearer",
                                         "expires_in": 3599}
    assert redacted.content_length == len(redacted.body)
    sse = (b'data: {"url":"https://x.example/i.png?sig=SECRETSIG&sp=r"}\n\n'
           b'data: {"delta":"hi"}\n\ndata: [DONE]\n\n')
    chunks = [Chunk(1, 60), Chunk(2, len(sse) - 60)]
    redacted = Redactor().response(Response(body=sse, chunks=chunks, content_length=-1,
                                            headers={"Content-Type": ["text/event-stream"]}))
    assert b"SECRETSIG" not in redacted.body
    assert redacted.body.endswith(b'data: {"delta":"hi"}\n\ndata: [DONE]\n\n')
    assert sum(c.size for c in redacted.chunks or []) == len(redacted.body)


def multipart_body(api_key: bytes) -> bytes:
    return (b"--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n" + api_key
            + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"password\""
            b"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: "
            b"form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ--\r\n")


def test_multipart_secret_parts_are_scrubbed_keeping_the_framing() -> None:
    body = multipart_body(SECRET.encode())
    request = make_request(body=body, content_length=len(body),
                           headers={"Content-Type": ["multipart/form-data; boundary=XyZ"]})
    redacted = Redactor().request(request)
    assert redacted.body == multipart_body(b"REDACTED")
    assert redacted.content_length == len(redacted.body)
    assert Redactor().request(redacted).body == redacted.body
    # without a Content-Type the boundary comes from the body's first line
    assert Redactor().request(make_request(body=body, headers={})).body == redacted.body
