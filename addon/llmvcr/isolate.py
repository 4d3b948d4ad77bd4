"""`llm-vcr run --isolate`: the command runs where the only way out is the proxy (pure; no
mitmproxy).

On Linux the command runs in a network namespace of its own (`llmvcr.isolate_namespace`, run as
a script, sets it up and starts the command): its loopback is not the host's, so the proxy is
reached through a relay. This side of it:

- `check_available()`: LaunchError (exit 2) when the OS cannot make the namespace (not Linux;
  no root and no unprivileged user namespaces), before any proxy starts.
- `Isolation(proxy_port, folder)`: listens on a Unix socket in `folder` (Unix sockets are not
  tied to a network namespace) and carries each connection to the proxy on 127.0.0.1; gives the
  wrapped command line; reads the report the namespace side wrote.
- `report_line(report)`: the one line `run` prints: the names the command looked up (each would
  have bypassed the proxy: a proxied client sends the name to the proxy instead) and the
  addresses it tried to connect to without a name.

Inside, every connection other than to the proxy's port is refused at once and every name
lookup answered "no such name", so a bypassing client fails fast in its own words.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from llmvcr.isolate_namespace import splice
from llmvcr.launcher import LaunchError

NAMESPACE_SCRIPT = Path(__file__).resolve().parent / "isolate_namespace.py"
SOCKET_NAME = "proxy.sock"
REPORT_NAME = "isolate.json"
PROBE_TIMEOUT = 60.0


def check_available() -> None:
    """LaunchError (exit 2) unless this machine can run a command in its own network namespace."""
    if not sys.platform.startswith("linux"):
        raise LaunchError(
            f"--isolate needs Linux network namespaces, which {sys.platform} does not have: run "
            "without it (or inside a Linux container or VM)", 2,
        )
    try:
        result = subprocess.run(
            [sys.executable, "-I", str(NAMESPACE_SCRIPT), "--probe"],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LaunchError(f"--isolate: cannot test for network namespaces: {e}", 2) from None
    if result.returncode != 0:
        said = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        raise LaunchError(
            f"--isolate: this system does not allow a network namespace here ({said[0]}): it "
            "needs root, or unprivileged user namespaces (sysctl "
            "kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0; in a container, "
            "CAP_SYS_ADMIN); run without --isolate", 2,
        )


class Isolation:
    """The host side of one isolated run: a Unix-socket relay to the proxy, and the report."""

    def __init__(self, proxy_port: int, folder: Path) -> None:
        self.proxy_port = proxy_port
        self.folder = folder
        self.socket_path = folder / SOCKET_NAME
        self.report_path = folder / REPORT_NAME
        self._listener: socket.socket | None = None

    def __enter__(self) -> Isolation:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        self.socket_path.chmod(0o600)  # only the command (same uid) may use it
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, name="isolate-relay", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                proxy = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=30)
                proxy.settimeout(None)
            except OSError:
                client.close()
                continue
            splice(client, proxy)

    def command(self, command: Sequence[str]) -> list[str]:
        """`command` wrapped so it runs inside the namespace."""
        return [sys.executable, "-I", str(NAMESPACE_SCRIPT), "--socket", str(self.socket_path),
                "--port", str(self.proxy_port), "--report", str(self.report_path),
                "--", *command]

    def report(self) -> dict[str, list[str]] | None:
        """What the command tried ({"names": [...], "addresses": [...]}); None without a report
        (the namespace side could not be set up, or was killed)."""
        try:
            data = json.loads(self.report_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return {key: [str(item) for item in data.get(key) or []] for key in ("names", "addresses")}


def report_line(report: dict[str, list[str]] | None) -> str:
    """The run's one line about what bypassed the proxy (without the `llm-vcr: ` prefix)."""
    if report is None:
        return "--isolate: no report from the namespace (it did not start, or was killed)"
    tried = [f"{name} (name lookup)" for name in report["names"]] + report["addresses"]
    if not tried:
        return "--isolate: nothing tried to bypass the proxy"
    return ("--isolate: blocked what would have bypassed the proxy: " + ", ".join(tried))
