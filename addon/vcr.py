"""mitmproxy entry point: `mitmdump -s addon/vcr.py` (mitmdump puts this folder on sys.path)."""

import logging

try:
    import yaml  # noqa: F401 - the cassette format needs it; check before anything else
except ImportError:
    # An ERROR during start-up makes mitmdump exit, with this one line instead of a traceback.
    logging.getLogger("llmvcr").error(
        "llm-vcr needs PyYAML next to mitmproxy: use ./scripts/llm-vcr or .venv/bin/mitmdump "
        "(with pipx: pipx inject mitmproxy pyyaml)"
    )
    addons = []
else:
    from llmvcr.addon import VCR

    addons = [VCR()]
