"""The cassette commands of `llm-vcr`, one module each, named after the command: `fmt`, `show`,
`check`, `redact`; `files` is the per-file loop they share. Pure Python (no mitmproxy)."""
