"""A mitmproxy script that MitmProxy loads last: it prints when mitmdump's startup is over.

mitmdump opens its port before the addons' `running` hooks run, and exits when an error was
logged during startup, so an open port does not yet mean a working proxy. This script's
`running` hook runs after every other addon's (addons run in load order) and prints READY, or
FAILED when an ERROR was logged since it was loaded; `MitmProxy.wait_ready` waits for one of them.
(An error while loading an earlier script makes mitmdump exit before it even listens.)
(This folder holds only mitmproxy scripts: `-s` puts a script's folder first on `sys.path`.)
"""

from __future__ import annotations

import logging

READY = "llm-vcr tests: mitmdump startup complete"
FAILED = "llm-vcr tests: errors were logged during startup"


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


_errors = _ErrorCounter()


def load(loader: object) -> None:
    # Installed here, not at import, so that importing READY/FAILED elsewhere changes nothing.
    logging.getLogger().addHandler(_errors)


def running() -> None:
    logging.getLogger().removeHandler(_errors)  # later errors are the tests' business
    print(FAILED if _errors.count else READY, flush=True)
