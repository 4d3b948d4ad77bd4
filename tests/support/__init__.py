"""End-to-end test infrastructure: fake LLM upstreams, a real mitmdump subprocess, TLS material.

- `support.tls`: throwaway CA + server certificate for 127.0.0.1 (`make_upstream_tls`).
- `support.fake_upstream`: `FakeUpstream` (Hypercorn over TLS, HTTP/1.1 + HTTP/2), the canned
  LLM payloads, `FakeResponse` for scripting exact responses, the seed conversation.
- `support.proxy`: `MitmProxy` (a `mitmdump` subprocess, optionally with `addon/vcr.py`), client
  builders that go through it, `route_to` (map_remote from real API hosts to a fake upstream).
- `support/mitm_scripts/`: mitmproxy scripts (`-s`) the proxies load: the startup marker, and
  `stream_responses.py` for plain proxies that should not buffer streams.

The pytest fixtures that wire these together live in `tests/conftest.py`.
"""
