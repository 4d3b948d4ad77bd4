"""mitmproxy entry point: `mitmdump -s addon/vcr.py` (mitmdump puts this folder on sys.path).

Two addons, in this order: `VCR` (record and replay) and `OutputGuard` (no secret in mitmdump's
output, saved flows or log lines; after VCR, so it sees each flow once VCR is done with it).
"""

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
    from llmvcr.output_guard import OutputGuard

    addons = [VCR(), OutputGuard()]
