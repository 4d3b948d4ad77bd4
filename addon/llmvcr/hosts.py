"""The one list of LLM API hosts, and the glob patterns that choose which hosts are recorded.

A pattern is a glob over `host` or over `host:port`, compared case-insensitively:
- `*` is any run of characters (dots included), `?` any one character; everything else is literal
  (no `[...]` classes, so a bracketed IPv6 `[::1]:8080` can be written as it is).
- A pattern with no port matches the host on any port; `localhost:8080` matches only that port.
- `*.openai.azure.com` needs something before the dot: it does not match `openai.azure.com`.
- `*` alone matches every host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_HOSTS: tuple[str, ...] = (
    # OpenAI
    "api.openai.com",
    # Azure OpenAI and Azure AI Foundry
    "*.openai.azure.com",
    "*.cognitiveservices.azure.com",
    "*.services.ai.azure.com",
    "*.inference.ai.azure.com",
    "*.models.ai.azure.com",
    "models.inference.ai.azure.com",
    # Anthropic
    "api.anthropic.com",
    # Google Gemini API and Vertex AI
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "*-aiplatform.googleapis.com",
    # Amazon Bedrock
    "bedrock-runtime.*.amazonaws.com",
    "bedrock-runtime-fips.*.amazonaws.com",
    "bedrock.*.amazonaws.com",
    # Routers and gateways
    "openrouter.ai",
    "ai-gateway.vercel.sh",
    "gateway.ai.cloudflare.com",
    "router.huggingface.co",
    "api-inference.huggingface.co",
    # Other model providers
    "api.x.ai",
    "api.groq.com",
    "api.mistral.ai",
    "codestral.mistral.ai",
    "api.deepseek.com",
    "api.together.xyz",
    "api.together.ai",
    "api.fireworks.ai",
    "api.cohere.com",
    "api.cohere.ai",
    "api.perplexity.ai",
    "api.cerebras.ai",
    "api.z.ai",
    "open.bigmodel.cn",
    "api.moonshot.ai",
    "api.moonshot.cn",
    "api.avian.io",
    "api.deepinfra.com",
    "api.sambanova.ai",
    "api.ai21.com",
    "api.minimax.io",
    "dashscope.aliyuncs.com",
    "dashscope-intl.aliyuncs.com",
)


def _glob_to_regex(pattern: str) -> str:
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def _candidates(host: str, port: int) -> tuple[str, ...]:
    """The texts a pattern may match: the host alone and `host:port` (IPv6 in brackets there)."""
    # A fully qualified `api.openai.com.` is the same host as `api.openai.com`.
    host = host.rstrip(".")
    if ":" in host:  # an IPv6 literal, with or without its brackets
        bare = host.removeprefix("[").removesuffix("]")
        return (bare, f"[{bare}]", f"[{bare}]:{port}")
    return (host, f"{host}:{port}")


class HostPatterns:
    """A set of host globs compiled into one regular expression."""

    __slots__ = ("_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        # Surrounding blanks come from comma-separated lists on the command line; empty entries
        # are dropped rather than read as "match the empty host".
        self.patterns: tuple[str, ...] = tuple(p.strip() for p in patterns if p.strip())
        alternatives = "|".join(f"(?:{_glob_to_regex(p)})" for p in self.patterns)
        self._regex: re.Pattern[str] | None = (
            re.compile(alternatives, re.IGNORECASE | re.DOTALL) if self.patterns else None
        )

    def matches(self, host: str, port: int) -> bool:
        """Whether `host` (on `port`) is one of the patterns' hosts."""
        if self._regex is None:
            return False
        fullmatch = self._regex.fullmatch
        return any(fullmatch(text) is not None for text in _candidates(host, port))

    def __repr__(self) -> str:
        return f"HostPatterns({list(self.patterns)!r})"
