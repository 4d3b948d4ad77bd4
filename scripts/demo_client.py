"""The demo's client: an ordinary openai SDK program, unaware of llm-vcr.

It sends exactly the request recorded in cassettes/simple_streaming.yaml (to an Azure OpenAI
endpoint that does not exist for us) and prints the streamed answer. `scripts/demo` runs it under
`llm-vcr run --mode replay`, which sets HTTPS_PROXY and the CA variables, so the answer comes from
the cassette. Run alone, it would try the real endpoint and fail.
"""

from __future__ import annotations

import sys

from openai import OpenAI


def main() -> int:
    client = OpenAI(
        base_url="https://fantasy-playground-resource.openai.azure.com/openai/v1",
        api_key="demo-key-not-a-secret",
        max_retries=0,  # a miss is answered with a clear error at once; no retry would help
    )
    stream = client.chat.completions.create(
        model="gpt-5-mini",
        messages=[
            {"role": "system", "content": "You are a helpful assistant"},
            {"role": "user", "content": "Say hi in Portuguese"},
        ],
        max_completion_tokens=4000,
        stream_options={"include_usage": True},
        stream=True,
    )
    print("assistant: ", end="", flush=True)
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                print(choice.delta.content, end="", flush=True)
    print()
    if usage is not None:
        tokens = f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens"
        print(f"(usage: {tokens})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
