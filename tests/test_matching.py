from __future__ import annotations

import json

import pytest

from llmvcr import matching
from llmvcr.cassette import Interaction, Request, Response
from llmvcr.matching import MatchOptions, RequestIndex, explain_miss
from llmvcr.redact import Redactor

URL = "https://api.openai.com/v1/chat/completions"


def req(
    body: bytes | str | dict = b"",
    method: str = "POST",
    url: str = URL,
    headers: dict[str, list[str]] | None = None,
) -> Request:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return Request(method=method, url=url, body=body, headers=headers or {})


def recorded(*requests: Request) -> list[Interaction]:
    return [
        Interaction(request=r, response=Response(body=f"answer {i}".encode()), id=i)
        for i, r in enumerate(requests)
    ]


def answer(hit: Interaction | None) -> bytes | None:
    return None if hit is None else hit.response.body


# ---- bodies ----------------------------------------------------------------------------------


def test_json_key_order_whitespace_and_crlf_are_free() -> None:
    index = RequestIndex(recorded(req('{"model":"m","messages":[{"role":"user","content":"hi"}]}')))
    live = req('{\r\n  "messages": [ {"content": "hi", "role": "user"} ],\r\n  "model": "m"\r\n}')
    assert answer(index.take(live)) == b"answer 0"


def test_json_numbers_compare_by_value() -> None:
    index = RequestIndex(recorded(req('{"temperature": 1.0, "n": 2}')))
    assert index.take(req('{"n": 2.0, "temperature": 1}')) is not None


def test_a_different_json_value_misses() -> None:
    index = RequestIndex(recorded(req({"model": "m", "stream": True})))
    assert index.take(req({"model": "m", "stream": False})) is None
    assert index.take(req({"model": "m", "stream": 1})) is None  # true is not 1
    assert index.take(req({"model": "m"})) is None


def test_ignored_json_paths_are_left_out() -> None:
    original = {
        "model": "m",
        "metadata": {"request_id": "r-1", "tag": "x"},
        "messages": [{"id": "a", "content": "hi"}, {"id": "b", "content": "yo"}],
    }
    live = {
        "model": "m",
        "metadata": {"request_id": "r-2", "tag": "x"},
        "messages": [{"id": "c", "content": "hi"}, {"id": "d", "content": "yo"}],
    }
    assert RequestIndex(recorded(req(original))).take(req(live)) is None
    options = MatchOptions(ignore_json=("metadata.request_id", "messages.*.id"))
    assert RequestIndex(recorded(req(original)), options).take(req(live)) is not None
    # ignoring some paths does not ignore the rest
    live["metadata"]["tag"] = "y"
    assert RequestIndex(recorded(req(original)), options).take(req(live)) is None


def test_bad_ignore_path_fails_when_configured() -> None:
    with pytest.raises(ValueError):
        MatchOptions(ignore_json=("a..b",))


def multipart(boundary: str, file_content: bytes, *, header: bool = True) -> Request:
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="model"\r\n\r\n'
            "whisper-1\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + file_content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": [f"multipart/form-data; boundary={boundary}"]} if header else {}
    return req(body, url="https://api.openai.com/v1/audio/transcriptions", headers=headers)


def test_multipart_matches_whatever_the_boundary() -> None:
    index = RequestIndex(recorded(multipart("aaaa1111", b"RIFF\x00\x01wav")))
    assert index.take(multipart("zzzz-9999-other", b"RIFF\x00\x01wav")) is not None


def test_multipart_boundary_taken_from_the_body_without_a_content_type() -> None:
    index = RequestIndex(recorded(multipart("aaaa1111", b"data", header=False)))
    assert index.take(multipart("bbbb2222", b"data", header=False)) is not None


def test_multipart_with_different_content_misses() -> None:
    index = RequestIndex(recorded(multipart("aaaa1111", b"RIFF\x00\x01wav")))
    assert index.take(multipart("bbbb2222", b"RIFF\x00\x02wav")) is None


def test_other_bodies_compare_byte_for_byte() -> None:
    index = RequestIndex(recorded(req(b"plain text body")))
    assert index.take(req(b"plain text body ")) is None
    assert index.take(req(b"plain text body")) is not None
    broken = RequestIndex(recorded(req(b'{"a": 1')))
    assert broken.take(req(b'{"a":1')) is None
    assert broken.take(req(b'{"a": 1')) is not None


# ---- method, URL, headers --------------------------------------------------------------------


def test_method_is_case_sensitive() -> None:
    index = RequestIndex(recorded(req(method="GET", url="https://api.openai.com/v1/models")))
    assert index.take(req(method="get", url="https://api.openai.com/v1/models")) is None
    assert index.take(req(method="POST", url="https://api.openai.com/v1/models")) is None
    assert index.take(req(method="GET", url="https://api.openai.com/v1/models")) is not None


@pytest.mark.parametrize(
    "live",
    [
        "https://h.example/v1/x?b=2&a=1&a=0",
        "HTTPS://H.Example/v1/x?a=1&b=2&a=0",
        "https://h.example:443/v1/x?a=0&a=1&b=2",
        "https://h.example/v1/x?a=1&a=0&b=%32#fragment",
    ],
)
def test_url_query_order_case_and_default_port_are_free(live: str) -> None:
    index = RequestIndex(recorded(req(method="GET", url="https://h.example/v1/x?a=1&b=2&a=0")))
    assert index.take(req(method="GET", url=live)) is not None


@pytest.mark.parametrize(
    "live",
    [
        "https://h.example/v1/x?a=1&b=3&a=0",
        "https://h.example/v1/x?a=1&b=2",
        "https://h.example/v1/x?a=1&b=2&a=0&a=0",
        "https://h.example/v1/X?a=1&b=2&a=0",
        "https://h.example:8443/v1/x?a=1&b=2&a=0",
        "http://h.example/v1/x?a=1&b=2&a=0",
        "https://other.example/v1/x?a=1&b=2&a=0",
    ],
)
def test_url_differences_that_count(live: str) -> None:
    index = RequestIndex(recorded(req(method="GET", url="https://h.example/v1/x?a=1&b=2&a=0")))
    assert index.take(req(method="GET", url=live)) is None


def test_headers_are_ignored_unless_asked_for() -> None:
    original = req({"a": 1}, headers={"User-Agent": ["sdk/1"], "X-Team": ["red"]})
    live = req({"a": 1}, headers={"user-agent": ["sdk/2"]})
    assert RequestIndex(recorded(original)).take(live) is not None

    options = MatchOptions(match_headers=("USER-AGENT",))
    assert RequestIndex(recorded(original), options).take(live) is None
    same = req({"a": 1}, headers={"user-agent": ["sdk/1"], "X-Other": ["z"]})
    assert RequestIndex(recorded(original), options).take(same) is not None


def test_live_secrets_match_redacted_recordings() -> None:
    redactor = Redactor()
    stored = redactor.request(req({"a": 1}, url="https://h.example/v1?key=OLD-SECRET&alt=sse"))
    live = redactor.request(
        req(
            {"a": 1},
            url="https://h.example/v1?alt=sse&key=NEW-SECRET",
            headers={"x-api-key": ["k"]},
        )
    )
    assert RequestIndex(recorded(stored)).take(live) is not None


# ---- order, reuse, bookkeeping ---------------------------------------------------------------


def test_identical_requests_get_their_answers_in_recorded_order_then_miss() -> None:
    same = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    other = req({"model": "m", "messages": [{"role": "user", "content": "bye"}]})
    index = RequestIndex(recorded(req(same), other, req(same)))
    assert answer(index.take(req(same))) == b"answer 0"
    assert answer(index.take(req(same))) == b"answer 2"
    assert index.take(req(same)) is None
    assert [i.id for i in index.unused()] == [1]
    assert index.used_ids() == {0, 2}


def test_reuse_answers_with_the_first_match_every_time() -> None:
    index = RequestIndex(recorded(req({"x": 1}), req({"x": 1})))
    for _ in range(3):
        assert answer(index.take(req({"x": 1}), reuse=True)) == b"answer 0"
    # reuse used nothing up: a plain take still gets the first one, then the second
    assert answer(index.take(req({"x": 1}))) == b"answer 0"
    assert answer(index.take(req({"x": 1}))) == b"answer 1"
    assert index.take(req({"x": 1})) is None
    assert answer(index.take(req({"x": 1}), reuse=True)) == b"answer 0"
    assert index.take(req({"x": 2}), reuse=True) is None


def test_add_used_counts_as_used_and_can_answer_with_reuse() -> None:
    index = RequestIndex(recorded(req({"x": 1})))
    new = Interaction(request=req({"x": 2}), response=Response(body=b"new"))
    index.add_used(new)
    assert len(index) == 2
    assert [i.request.body for i in index.unused()] == [b'{"x": 1}']
    assert index.take(req({"x": 2})) is None
    assert index.take(req({"x": 2}), reuse=True) is new


def test_mark_used() -> None:
    index = RequestIndex(recorded(req({"x": 1}), req({"x": 1})))
    index.mark_used(0)
    assert answer(index.take(req({"x": 1}))) == b"answer 1"
    assert index.unused() == []


def test_large_index_answers_through_the_hash_path(monkeypatch: pytest.MonkeyPatch) -> None:
    count = 100_000
    response = Response(body=b"{}")
    interactions = [
        Interaction(request=req(b'{"model":"m","n":%d}' % n), response=response, id=n)
        for n in range(count)
    ]
    index = RequestIndex(interactions)
    assert len(index) == count

    # Each lookup computes one key and never compares interactions one by one.
    keys_made = 0
    make_key = matching._KeyMaker.key

    def counting_key(self: matching._KeyMaker, request: Request) -> object:
        nonlocal keys_made
        keys_made += 1
        return make_key(self, request)

    def no_scan(*args: object) -> object:
        raise AssertionError("take() compared interactions one by one")

    monkeypatch.setattr(matching._KeyMaker, "key", counting_key)
    monkeypatch.setattr(matching, "_compare", no_scan)
    probes = [0, 1, count // 2, count - 1, 12_345]
    for n in probes:
        hit = index.take(req(b'{"n": %d, "model": "m"}' % n))
        assert hit is interactions[n]
    assert index.take(req(b'{"n": 0, "model": "m"}')) is None
    assert index.take(req(b'{"n": %d, "model": "m"}' % count)) is None
    assert keys_made == len(probes) + 2
    assert len(index.unused()) == count - len(probes)


# ---- explain_miss ----------------------------------------------------------------------------


def chat(content: str, **extra: object) -> dict:
    return {"model": "gpt-5", "messages": [{"role": "user", "content": content}], **extra}


def test_explain_miss_names_the_request_closest_paths_and_unused_count() -> None:
    interactions = recorded(
        req(method="GET", url="https://api.openai.com/v1/models"),
        req(chat("Hello", temperature=0.5)),
        req(chat("something else entirely", temperature=0.1, top_p=1)),
    )
    text = explain_miss(req(chat("Hi", temperature=0.5)), interactions, MatchOptions(), {0})
    lines = text.splitlines()
    assert lines[0].startswith(f"POST {URL}")
    assert f"#1 POST {URL}" in lines[1]
    assert 'body messages.0.content: "Hi" != "Hello"' in text
    assert "temperature" not in text  # equal there
    assert lines[-1] == "2 of 3 interactions still unused"


def test_explain_miss_shows_absent_values_method_and_query() -> None:
    interactions = recorded(req({"a": 1, "b": 2}, url=URL + "?alt=sse"))
    text = explain_miss(req({"a": 1, "c": 3}, method="PUT"), interactions, MatchOptions())
    assert "method: PUT != POST" in text
    assert 'query alt: (absent) != "sse"' in text
    assert "body b: (absent) != 2" in text
    assert "body c: 3 != (absent)" in text
    assert "1 of 1 interactions still unused" in text


def test_explain_miss_prefers_the_same_endpoint() -> None:
    big = {f"k{i}": i for i in range(20)}
    interactions = recorded(
        req(method="GET", url="https://api.openai.com/v1/models"),
        req(big),
    )
    text = explain_miss(req({**big, "k3": -1, "k4": -1, "k5": -1}), interactions, MatchOptions())
    assert f"#1 POST {URL}" in text


def test_explain_miss_shortens_values_and_caps_the_path_list() -> None:
    long_recorded = "x" * 200
    original = {f"field{i}": "old" for i in range(9)} | {"prompt": long_recorded}
    live = {f"field{i}": "new" for i in range(9)} | {"prompt": "short"}
    text = explain_miss(req(live), recorded(req(original)), MatchOptions())
    body_lines = [line for line in text.splitlines() if line.strip().startswith("body ")]
    assert len(body_lines) == 5
    assert "and 5 more body differences" in text
    assert "prompt" not in text  # the 10th difference, beyond the first 5

    shown = explain_miss(
        req({"prompt": "short"}), recorded(req({"prompt": long_recorded})), MatchOptions()
    )
    line = next(line for line in shown.splitlines() if "body prompt" in line)
    value = line.split(" != ", 1)[1]
    assert value.startswith('"xxx') and value.endswith("…")
    assert 50 <= len(value) <= 60


def test_explain_miss_respects_ignored_paths_and_escapes_dotted_keys() -> None:
    options = MatchOptions(ignore_json=("metadata",))
    interactions = recorded(req({"metadata": {"id": 1}, "a.b": 1}))
    text = explain_miss(req({"metadata": {"id": 2}, "a.b": 2}), interactions, options)
    assert "metadata" not in text
    assert r"body a\.b: 2 != 1" in text


def test_explain_miss_for_an_empty_cassette() -> None:
    text = explain_miss(req({"a": 1}), [], MatchOptions())
    assert text.startswith(f"POST {URL}")
    assert "no interactions" in text


def test_explain_miss_when_every_match_was_used() -> None:
    interactions = recorded(req({"a": 1}), req({"a": 2}), req({"a": 1}))
    text = explain_miss(req({"a": 1}), interactions, MatchOptions(), {0, 2})
    assert "#0, #2" in text
    assert "used" in text
    assert "1 of 3 interactions still unused" in text


def test_explain_miss_through_the_index_tracks_use() -> None:
    index = RequestIndex(recorded(req({"a": 1}), req({"a": 2})))
    index.take(req({"a": 1}))
    text = index.explain_miss(req({"a": 3}))
    assert "1 of 2 interactions still unused" in text
    assert "body a: 3 != 2" in text  # the unused one is preferred on a tie


def test_explain_miss_shows_only_match_headers_values() -> None:
    interactions = recorded(
        req({"a": 1}, headers={"X-Secret": ["s3cr3t-recorded"], "X-Team": ["red"]})
    )
    live = req({"a": 2}, headers={"X-Secret": ["s3cr3t-live"], "x-team": ["blue"]})
    text = explain_miss(live, interactions, MatchOptions(match_headers=("X-Team",)))
    assert 'header x-team: "blue" != "red"' in text
    assert "s3cr3t" not in text
    assert "X-Secret" not in text and "x-secret" not in text


def test_explain_miss_redacts_secret_query_values() -> None:
    live = req({"a": 1}, url=URL + "?key=sk-live-123")
    text = explain_miss(live, recorded(req({"a": 2}, url=URL + "?key=REDACTED")), MatchOptions())
    assert "sk-live-123" not in text
    # both sides are compared scrubbed: the secret values are no difference, the body is
    assert "query key" not in text and "body a: 1 != 2" in text
    assert text.startswith(f"POST {URL}?key=REDACTED")


def test_explain_miss_never_shows_a_recorded_secret() -> None:
    recorded_secret = "s3cr3t-recorded-value"
    interactions = recorded(req({"a": 2, "api_key": recorded_secret},
                                url=URL + f"?sig={recorded_secret}"))
    text = explain_miss(req({"a": 1}), interactions, MatchOptions())
    assert recorded_secret not in text
    assert "body a: 1 != 2" in text


# ---- both sides scrubbed alike (issue 11, items 5 and 15) ------------------------------------

SAS = ("https://acct.blob.core.windows.net/images/out.png?sv=2021-08-06&se=2030-01-01T00%3A00Z"
       "&sr=b&sp=r&sig=")


@pytest.mark.parametrize("incoming_sig", ["REALsig%2Bvalue%3D", "OTHERsig%2Bvalue%3D", "REDACTED"])
def test_recorded_signed_url_replays_whatever_the_incoming_sig(incoming_sig: str) -> None:
    """A foreign cassette keeps `sig=REAL...`; the incoming request (scrubbed by the addon, or not)
    has the same or another signature: it matches."""
    index = RequestIndex(recorded(req(method="GET", url=SAS + "REALsig%2Bvalue%3D")))
    live = req(method="GET", url=SAS + incoming_sig)
    assert answer(index.take(live)) == b"answer 0"
    assert answer(index.take(Redactor().request(live), reuse=True)) == b"answer 0"


def test_a_signed_url_with_another_unsigned_parameter_still_misses() -> None:
    index = RequestIndex(recorded(req(method="GET", url=SAS + "REAL")))
    assert index.take(req(method="GET", url=SAS.replace("sp=r", "sp=w") + "REAL")) is None


def test_recorded_json_secret_fields_match_the_scrubbed_request() -> None:
    """A cassette recorded before the JSON rule (key in the body) replays for a request the
    recorder scrubs today; the other fields still count."""
    old = {"model": "m", "api_key": "real-key-123", "auth": {"client_secret": "cs-1"},
           "image": {"url": SAS + "REAL"}}
    index = RequestIndex(recorded(req(old)))
    live = dict(old, api_key="another-key")
    scrubbed = Redactor().request(req(live))
    assert b"another-key" not in scrubbed.body and b"REAL" not in scrubbed.body
    assert answer(index.take(scrubbed, reuse=True)) == b"answer 0"
    assert answer(index.take(req(live), reuse=True)) == b"answer 0"
    assert index.take(req(dict(live, model="other")), reuse=True) is None
    # a number or an empty string under a secret-like name is not scrubbed: it still counts
    index = RequestIndex(recorded(req({"max_tokens": 5, "password": ""})))
    assert index.take(req({"max_tokens": 6, "password": ""})) is None
    assert index.take(req({"max_tokens": 5, "password": "x"})) is None


def test_recorded_multipart_and_form_secrets_match_the_scrubbed_request() -> None:
    def upload(key: str) -> Request:
        body = (b"--b1\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n"
                + key.encode() + b"\r\n--b1\r\nContent-Disposition: form-data; name=\"file\"; "
                b"filename=\"a.txt\"\r\n\r\nhello\r\n--b1--\r\n")
        return req(body, headers={"Content-Type": ["multipart/form-data; boundary=b1"]})

    index = RequestIndex(recorded(upload("real-key")))
    assert answer(index.take(Redactor().request(upload("other-key")))) == b"answer 0"
    form = {"Content-Type": ["application/x-www-form-urlencoded"]}
    index = RequestIndex(recorded(req(b"a=1&client_secret=real", headers=form)))
    assert answer(index.take(Redactor().request(req(b"a=1&client_secret=x", headers=form)))) \
        == b"answer 0"
    assert index.take(req(b"a=2&client_secret=real", headers=form)) is None


def test_explain_miss_for_multipart_and_raw_bodies() -> None:
    text = explain_miss(multipart("b2", b"two"), recorded(multipart("b1", b"one!")), MatchOptions())
    assert 'body part 1 (name="file"): content (3 bytes != 4 bytes)' in text
    text = explain_miss(req(b"abcd"), recorded(req(b"abXd")), MatchOptions())
    assert "first difference at byte 2" in text
    text = explain_miss(req(b"abcd"), recorded(req({"a": 1})), MatchOptions())
    assert "body: 4 bytes != JSON" in text
