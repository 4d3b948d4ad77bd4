"""Where llm-vcr keeps what it makes or downloads once for the runtimes (pure; no mitmproxy).

`cache_dir()`: `$LLM_VCR_CACHE` if set, else `$XDG_CACHE_HOME/llm-vcr`, else `~/.cache/llm-vcr`.
Outside any clone, so a CI machine that keeps `~/.cache` pays a download once.
`locked(path)`: an exclusive lock file, so concurrent `llm-vcr run`s make a thing once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

CACHE_VARIABLE = "LLM_VCR_CACHE"


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """The cache folder for `environ` (default: this process's); not created here."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_VARIABLE):
        return Path(os.path.expanduser(env[CACHE_VARIABLE])).absolute()
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).absolute() / "llm-vcr"


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created with its folder) for the block."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
