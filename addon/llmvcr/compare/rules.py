"""The one table of what a comparison normalises, and the keys whose values are structure.

`NORMALISED` lists what changes on every call to an LLM API, so that a re-recording of the same
answer is `same`. Each `Rule` covers object keys by name (wherever they appear, in a whole body
or in any stream event) or by JSON path (`vcr_ignore_json` syntax with `*`, from the root of the
body or of each stream event), and ignores:

- `scope="value"`: the key's value, whatever it is (its type included: `system_fingerprint` is
  null in one answer and a string in the next);
- `scope="numbers"`: the numbers anywhere below the key (token counts, latencies); the keys and
  the other values there are still compared.

The key itself is never normalised away: a normalised key that disappears is still a key removed
(`changed`), one that appears is still a key added (`benign`). To normalise one more field, add
a `Rule` here (with why): nothing else needs to change.

`STRUCTURAL_KEYS` are the string fields whose value is structure, not wording: a different value
there is `changed` (a block's `type`, a message's `role`, a stop reason ...). Every other string
that differs is wording (`benign`); every other number or boolean that differs is a value
(`benign`).

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .. import jsonpath

__all__ = ["NORMALISED", "STRUCTURAL_KEYS", "Rule", "normalised_scope"]

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the normalisation table."""

    name: str
    keys: frozenset[str]  # object keys, wherever they appear
    why: str
    scope: str = "value"  # "value": the whole value is ignored; "numbers": numbers below it
    paths: tuple[str, ...] = field(default=())  # JSON paths (with `*`), from the document root

    def __post_init__(self) -> None:
        if self.scope not in ("value", "numbers"):
            raise ValueError(f"rule {self.name}: scope must be value or numbers")
        for path in self.paths:
            jsonpath.parse(path)  # a bad path fails at import, not on some comparison


NORMALISED: tuple[Rule, ...] = (
    Rule("ids", frozenset({
        "id", "responseId", "call_id", "tool_call_id", "tool_use_id", "toolUseId", "item_id",
        "previous_response_id",
    }), "ids of answers, messages, output items and tool calls are new on every call"),
    Rule("request ids", frozenset({"request_id", "requestId"}),
         "a provider's request id is new on every call"),
    Rule("timestamps", frozenset({
        "created", "created_at", "completed_at", "createTime", "updateTime", "timestamp",
    }), "the time an answer was made"),
    Rule("system_fingerprint", frozenset({"system_fingerprint"}),
         "OpenAI's backend configuration: changes with deployments, null or a string"),
    Rule("usage", frozenset({
        "usage", "usageMetadata", "metrics", "amazon-bedrock-invocationMetrics", "timings",
    }), "token counts and latencies vary from call to call; their keys are still compared",
        scope="numbers"),
    Rule("stream padding", frozenset({"obfuscation"}),
         "OpenAI pads stream events with random text of random length"),
    Rule("sequence numbers", frozenset({"sequence_number"}),
         "the responses API numbers its events: another number of deltas shifts them all"),
    Rule("signatures", frozenset({"signature", "thoughtSignature", "encrypted_content"}),
         "opaque signed or encrypted reasoning state, different on every call"),
)

STRUCTURAL_KEYS: frozenset[str] = frozenset({
    "type",  # a block's, an event's or an error's kind
    "object",  # OpenAI's object kind (chat.completion.chunk, response ...)
    "role",
    "status",  # the responses API's and its items' status; Gemini's error status
    "finish_reason", "stop_reason", "finishReason", "stopReason",
})


def _matches(path: Path, pattern: Path) -> bool:
    return len(path) == len(pattern) and all(
        want in (jsonpath.WILDCARD, got) for got, want in zip(path, pattern, strict=True))


@lru_cache(maxsize=1)
def _by_key(rules: tuple[Rule, ...]) -> dict[str, str]:
    return {key: rule.scope for rule in rules for key in rule.keys}


@lru_cache(maxsize=1)
def _by_path(rules: tuple[Rule, ...]) -> tuple[tuple[Path, str], ...]:
    return tuple((jsonpath.parse(p), rule.scope) for rule in rules for p in rule.paths)


def normalised_scope(path: Sequence[str], rules: tuple[Rule, ...] = NORMALISED) -> str | None:
    """How the value at `path` (object keys and array indices as text) is normalised: "value"
    (ignored whole), "numbers" (numbers below it ignored), or None."""
    if not path:
        return None
    scope = _by_key(rules).get(path[-1])
    if scope is not None:
        return scope
    key = tuple(path)
    for pattern, pattern_scope in _by_path(rules):
        if _matches(key, pattern):
            return pattern_scope
    return None
