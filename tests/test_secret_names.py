"""The one list of secret names (`secret_names`): every rule with positive and negative cases."""

from __future__ import annotations

import json

import pytest

from llmvcr.secret_names import (
    CREDENTIAL_HEADERS,
    SECRET_FIELD_FRAGMENTS,
    SECRET_FIELD_NAME_PARTS,
    SECRET_FIELDS,
    SECRET_QUERY_PARAMS,
    _fold,
    is_secret_field,
    is_secret_header,
    is_secret_query_param,
    may_name_secret_field,
    secret_kinds,
)

SECRET_FIELD_NAMES = [
    "api_key", "apiKey", "API-Key", "x-api-key", "x_goog_api_key", "aws_secret_access_key",
    "client_secret", "clientSecret", "secret", "password", "db_password", "passwd",
    "access_token", "accessToken", "refresh_token", "refreshToken", "id_token", "session_token",
    "auth", "authorization", "jwt", "bearer", "private_key", "subscription-key", "credentials",
    "X-Amz-Security-Token", "auth_token",
]
PLAIN_FIELD_NAMES = [
    "max_tokens", "prompt_tokens", "cache_tokens", "completion_tokens", "cached_tokens",
    "access_tokens", "maxOutputTokens", "token_count", "tokenCount", "token_type", "token", "key",
    "keys", "code", "sig", "signature", "thoughtSignature", "author", "authors",
    "encrypted_content", "model", "id", "content", "",
]


@pytest.mark.parametrize("name", SECRET_FIELD_NAMES)
def test_secret_field_names(name: str) -> None:
    assert is_secret_field(name)


@pytest.mark.parametrize("name", PLAIN_FIELD_NAMES)
def test_plain_field_names(name: str) -> None:
    assert not is_secret_field(name)


def test_every_query_name_is_a_field_name_except_the_generic_words() -> None:
    generic = {"key", "token", "code", "sig", "signature"}
    for name in SECRET_QUERY_PARAMS:
        assert is_secret_field(name) == (name not in generic), name


def test_the_prefilter_can_see_every_secret_field_name() -> None:
    """`may_name_secret_field` is only sound if each name the rule accepts holds a fragment."""
    for name in [*SECRET_FIELDS, *SECRET_FIELD_NAME_PARTS, *SECRET_FIELD_NAMES]:
        folded = _fold(name).encode()
        assert any(fragment in folded for fragment in SECRET_FIELD_FRAGMENTS), name
    for name in SECRET_FIELD_NAMES:
        assert may_name_secret_field(json.dumps({name: "v"}).encode()), name
        # a key spelt with \u escapes is decoded before the rule: the prefilter says "maybe"
        escaped = "".join(f"\\u{ord(c):04x}" for c in name)
        assert may_name_secret_field(f'{{"{escaped}": "v"}}'.encode())


def test_the_prefilter_passes_an_ordinary_request() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi\nthere"}],
            "max_tokens": 5, "stream_options": {"include_usage": True}}
    assert not may_name_secret_field(json.dumps(body).encode())


def test_fold_is_ascii_only() -> None:
    # U+212A KELVIN SIGN lower-cases to "k" in Python; the rule and the prefilter both ignore it
    assert not is_secret_field("api\u212aey")
    assert _fold("API-Key_x.y z") == "apikeyxyz"


@pytest.mark.parametrize("name", ["Authorization", "api-key", "X-API-KEY", "x-goog-api-key",
                                  "Cookie", "Set-Cookie", "X-Amz-Security-Token",
                                  "X-Custom-Session", "Proxy-Authorization"])
def test_secret_headers(name: str) -> None:
    assert is_secret_header(name)


@pytest.mark.parametrize("name", ["Content-Type", "Accept", "User-Agent", "X-Request-Id"])
def test_plain_headers(name: str) -> None:
    assert not is_secret_header(name)


def test_credential_headers_are_lower_case() -> None:
    assert all(name == name.lower() for name in CREDENTIAL_HEADERS)
    assert all(name == name.lower() for name in SECRET_QUERY_PARAMS)


def test_query_params_any_case() -> None:
    assert is_secret_query_param("SIG") and is_secret_query_param("X-Amz-Signature")
    assert is_secret_query_param("code") and not is_secret_query_param("sv")


def test_secret_kinds_name_the_kind_and_span() -> None:
    text = 'x "sk-ant-api03-Hc7Vb2Nm5Qw8Er1Ty4Ui6Op9As3Df0Gh" task-abcdefghijklmnopqrstu'
    found = list(secret_kinds(text))
    assert [kind for kind, _, _ in found] == ["sk- key"]
    _, start, length = found[0]
    assert text[start : start + length].startswith("sk-ant-")
