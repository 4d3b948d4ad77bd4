"""Reading LLM traffic back: the answer a response holds, what a request asked, and `show`'s
rendering of both. Pure Python (no mitmproxy).

| module        | what it holds                                                              |
| ------------- | -------------------------------------------------------------------------- |
| `eventstream` | AWS event-stream framing (`decode_event_stream`); SSE framing is `llmvcr.sse` |
| `answer`      | `Answer`, `Block`, the `AnswerBuilder` the readers feed, JSON accessors    |
| `openai`      | chat completions and the responses API (also Azure, OpenRouter ...)        |
| `anthropic`   | Anthropic messages (also inside Bedrock and Vertex AI)                     |
| `gemini`      | Gemini `generateContent` (also Vertex AI)                                  |
| `bedrock`     | Bedrock Converse and the invoke/Converse event streams                     |
| `reassemble`  | `reassemble(response)`: the framing and API told by shape, then read       |
| `request`     | `summarize_request(request)`: the conversation a request sends             |
| `render`      | `Renderer`: the text `llm-vcr show` prints                                 |

The names other code uses are exported here.
"""

from __future__ import annotations

from .answer import Answer, Block
from .eventstream import EventStreamError, EventStreamMessage, decode_event_stream
from .reassemble import reassemble, reassemble_body
from .request import Message, Prompt, summarize_request

__all__ = [
    "Answer",
    "Block",
    "EventStreamError",
    "EventStreamMessage",
    "Message",
    "Prompt",
    "decode_event_stream",
    "reassemble",
    "reassemble_body",
    "summarize_request",
]
