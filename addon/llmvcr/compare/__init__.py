"""Has a recorded LLM answer drifted? The comparison behind `verify` and `llm-vcr diff`.

Given two responses to the same request (the recorded one and a live one, or those of two
cassettes), after the recorder's own redaction, it gives a verdict (`same`, `benign`, `changed`;
`new` and `removed` for one with no counterpart) and names every difference by JSON path or
stream event, old and new values cut short, plus the JSON keys the new answer added.

| module     | what it holds                                                                 |
| ---------- | ----------------------------------------------------------------------------- |
| `result`   | the verdicts, `Difference`, `Result` (`summary()`, `to_json()`)                |
| `rules`    | `NORMALISED`, the one table of what always changes; `STRUCTURAL_KEYS`          |
| `tree`     | JSON compared position by position (`diff_json`) and by shape (`Shape`)       |
| `streams`  | SSE and AWS event streams compared event by event (types, final event, shapes) |
| `answers`  | the reassembled answers compared (tool calls, errors, blocks, wording)        |
| `classify` | `compare_responses`, `classify` (what `verify` calls), `pair` (what `diff` calls) |

Streams and answers are read with the project's own framing and reassembly (`llmvcr.sse`,
`llmvcr.show`), so every API `llm-vcr show` reads is understood: OpenAI chat and responses,
Azure, Anthropic, Gemini, Bedrock. Anything else is compared as generic JSON or bytes.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from .classify import Pair, classify, classify_pair, compare_responses, framing, pair
from .result import (
    BENIGN,
    CHANGED,
    FAILING,
    NEW,
    REMOVED,
    SAME,
    VERDICTS,
    Difference,
    Result,
)
from .rules import NORMALISED, STRUCTURAL_KEYS, Rule

__all__ = [
    "BENIGN",
    "CHANGED",
    "FAILING",
    "NEW",
    "NORMALISED",
    "REMOVED",
    "SAME",
    "STRUCTURAL_KEYS",
    "VERDICTS",
    "Difference",
    "Pair",
    "Result",
    "Rule",
    "classify",
    "classify_pair",
    "compare_responses",
    "framing",
    "pair",
]
