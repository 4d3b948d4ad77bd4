"""Which names and values are secrets: the one list every part of llm-vcr reads.

The recorder (`redact`) scrubs by these names, matching (`matching`) compares both sides after the
same scrubbing, `llm-vcr check` (`commands/check.py`) flags what is left, and the log guard masks
the same credential headers. Nothing here edits anything: it is names, patterns and predicates only.

Public, stable names:

- `REDACTED`: the value a scrubbed secret gets.
- `CREDENTIAL_HEADERS` / `SECRET_HEADER_NAME_PARTS` / `is_secret_header(name)`: header names that
  carry credentials (`Authorization`, `api-key`, `Cookie`, `Set-Cookie`, SigV4 ...), any case.
- `SECRET_QUERY_PARAMS` / `is_secret_query_param(name)`: query parameters and form fields whose
  value is a secret (`key`, `sig`, `X-Amz-Signature`, `code` ...), any case.
- `is_secret_field(name)`: JSON object keys (and multipart form parts) whose string value is a
  secret; the rule and its table of examples are in its docstring.
- `SECRET_VALUES` / `secret_kinds(text)`: credential-shaped values wherever they appear (`sk-...`,
  `Bearer ...`, `AIza...`, JWTs, AWS key ids).

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

REDACTED = "REDACTED"

# Header names that carry credentials (lower case); any name containing one of
# SECRET_HEADER_NAME_PARTS counts too (`X-Custom-Api-Key`, `X-Session-Token` ...).
CREDENTIAL_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
        "x-amz-credential",
        "x-amz-signature",
        "ocp-apim-subscription-key",
        "x-functions-key",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)
SECRET_HEADER_NAME_PARTS: tuple[str, ...] = (
    "auth", "key", "token", "secret", "cookie", "session", "password", "signature", "credential",
)

# Query parameters and form fields (lower case, compared after decoding the name).
SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "key",
        "api-key",
        "api_key",
        "apikey",
        "x-api-key",
        "x-goog-api-key",
        "subscription-key",
        "ocp-apim-subscription-key",
        "access_token",
        "refresh_token",
        "id_token",
        "session_token",
        "token",
        "auth",
        "authorization",
        "bearer",
        "jwt",
        "sig",
        "signature",
        "secret",
        "client_secret",
        "private_key",
        "password",
        "passwd",
        "code",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)

# The JSON field rule, on the name folded by `_fold` (lower case, `-`, `_`, `.` and spaces
# dropped, so `api_key`, `apiKey`, `API-Key` and `x-api-key` compare alike).
# Names that are generic words in JSON (`key`, `token`, `code`, `sig`, `signature`) are left out of
# SECRET_FIELDS on purpose; see `is_secret_field`.
_FIELD_AMBIGUOUS: frozenset[str] = frozenset({"key", "token", "code", "sig", "signature"})
SECRET_FIELD_NAME_PARTS: tuple[str, ...] = (
    "secret", "password", "passwd", "apikey", "accesstoken", "refreshtoken", "sessiontoken",
    "securitytoken", "privatekey",
)


# ASCII only, like `bytes.lower()`, so `may_name_secret_field` can fold raw bytes the same way.
_FOLD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "-_. "
)


def _fold(name: str) -> str:
    return name.translate(_FOLD)


SECRET_FIELDS: frozenset[str] = frozenset(
    {_fold(name) for name in SECRET_QUERY_PARAMS if name not in _FIELD_AMBIGUOUS}
    | {"credential", "credentials", "idtoken", "clientsecret", "authtoken", "bearertoken"}
)


# Every name `is_secret_field` accepts contains one of these once folded (a test holds this).
SECRET_FIELD_FRAGMENTS: tuple[bytes, ...] = (
    b"secret", b"passw", b"apikey", b"subscriptionkey", b"privatekey", b"auth", b"bearer",
    b"jwt", b"credential", b"accesstoken", b"refreshtoken", b"idtoken", b"sessiontoken",
    b"securitytoken", b"xamzsignature",
)

_ANY_FRAGMENT = re.compile(b"|".join(SECRET_FIELD_FRAGMENTS))


def may_name_secret_field(data: bytes) -> bool:
    """False only when no JSON key in `data` (raw JSON text) can be a secret field name: the text,
    folded as names are, holds none of `SECRET_FIELD_FRAGMENTS` and no `\\u` escape (which could
    spell one). A fast test that lets the common body skip a walk of its decoded value."""
    if b"\\u" in data:
        return True
    return _ANY_FRAGMENT.search(data.lower().translate(None, b"-_. ")) is not None


def is_secret_header(name: str) -> bool:
    """Does a header of this name carry credentials? (`Authorization`, `X-Custom-Api-Key` ...)"""
    lowered = name.lower()
    if lowered in CREDENTIAL_HEADERS:
        return True
    return any(part in lowered for part in SECRET_HEADER_NAME_PARTS)


def is_secret_query_param(name: str) -> bool:
    """Is the value of this (decoded) query parameter or url-encoded form field a secret?"""
    return name.lower() in SECRET_QUERY_PARAMS


@lru_cache(maxsize=4096)
def is_secret_field(name: str) -> bool:
    """Is a string value under this JSON key (or in a multipart part of this name) a secret?

    The name is folded first: ASCII lower case, with `-`, `_`, `.` and spaces removed. Then, in
    order:

    1. a folded name ending in `tokens` is never a secret (token counts and limits);
    2. a folded name in `SECRET_FIELDS` is a secret: the secret query parameter names, folded,
       except the generic words `key`, `token`, `code`, `sig`, `signature`, plus `credential(s)`,
       `id_token`, `auth_token`, `bearer_token`;
    3. a folded name containing one of `SECRET_FIELD_NAME_PARTS` is a secret (`secret`,
       `password`, `passwd`, `api_key`, `access_token`, `refresh_token`, `session_token`,
       `security_token`, `private_key`, each folded);
    4. nothing else is.

    The caller decides on the value: only a non-empty string other than `REDACTED` counts
    (numbers, booleans, null, objects and lists never do).

    | name                                    | secret? | why                                 |
    |-----------------------------------------|---------|-------------------------------------|
    | `api_key`, `apiKey`, `x-api-key`        | yes     | rules 2 and 3 (`apikey`)            |
    | `aws_secret_access_key`, `client_secret`| yes     | rule 3 (`secret`)                   |
    | `password`, `db_password`, `passwd`     | yes     | rules 2 and 3                       |
    | `access_token`, `refreshToken`          | yes     | rules 2 and 3                       |
    | `id_token`, `auth`, `authorization`     | yes     | rule 2                              |
    | `jwt`, `bearer`, `private_key`          | yes     | rule 2                              |
    | `subscription-key`, `credentials`       | yes     | rule 2                              |
    | `max_tokens`, `prompt_tokens`           | no      | rule 1 (and usually a number)       |
    | `cache_tokens`, `access_tokens`         | no      | rule 1                              |
    | `token_count`, `tokenCount`             | no      | no rule matches (a count)           |
    | `token_type`, `author`, `keys`          | no      | no rule matches                     |
    | `token`                                 | no      | generic: logprobs `{"token": "Hi"}` |
    | `key`                                   | no      | generic: `{"key": "color"}`         |
    | `code`                                  | no      | generic: error codes, code to run   |
    | `signature`, `thoughtSignature`, `sig`  | no      | a thinking block's integrity tag    |
    | `encrypted_content`, `model`, `id`      | no      | no rule matches                     |

    The generic words still count in URLs (`?key=`, `?sig=`, `?code=`), where they are secrets.
    """
    folded = _fold(name)
    if folded.endswith("tokens"):
        return False
    return folded in SECRET_FIELDS or any(part in folded for part in SECRET_FIELD_NAME_PARTS)


# Credential-shaped values, wherever they appear. The look-behinds keep `sk-` and `AIza` from
# matching inside ordinary words (`risk-...`, `task-...`); a bearer token must hold a digit, so
# prose ("Bearer authentication") is not flagged.
SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Bearer token", re.compile(r"\bBearer\s+(?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]{16,}=*")),
    ("sk- key", re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}")),
    ("Google API key", re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}")),
    ("Google OAuth token", re.compile(r"(?<![A-Za-z0-9_-])ya29\.[0-9A-Za-z_-]{20,}")),
    ("AWS access key id", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")),
    ("JWT", re.compile(r"(?<![A-Za-z0-9_-])eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}", re.ASCII)),
)


def secret_kinds(text: str) -> Iterator[tuple[str, int, int]]:
    """The credential-shaped values in `text`: (kind, start offset, length)."""
    for kind, pattern in SECRET_VALUES:
        for match in pattern.finditer(text):
            yield kind, match.start(), match.end() - match.start()
