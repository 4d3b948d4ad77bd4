"""The commands of `llm-vcr` that are more than launching a proxy, one module each, named after
the command: the cassette commands `fmt`, `show`, `check`, `redact` (with `files`, the per-file
loop they share), and `session`. Pure Python (no mitmproxy)."""
