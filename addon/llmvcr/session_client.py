"""The `llm-vcr` command's side of sessions: talk to a running proxy's control API (`control`)
and make the proxy URL that puts a client's every request in a session.

The control API is an ordinary request through the proxy to `http://llm-vcr.invalid/...`, so the
proxy's own credentials (`--auth`) are all it needs. The proxy URL a client gets:

- a proxy without a login: `http://<cassette>:session%3D<id>@host:port` (the user name picks the
  cassette, the password the session; any client that takes a proxy URL carries both);
- a proxy with a login (`serve --auth`), or when asked (`port: true`): the session's own port,
  `http://user:pass@host:<session port>`, since the password is then the login.
"""

from __future__ import annotations

import base64
import http.client
import json
from dataclasses import dataclass
from urllib.parse import quote

from .control import CONTROL_HOST

TIMEOUT = 30.0


class ControlError(Exception):
    """A control request that failed, with a one-line message for the user."""


@dataclass(frozen=True)
class Proxy:
    """A running llm-vcr proxy: where it listens, and its login (`USER:PASS`) if it has one."""

    host: str
    port: int
    auth: str | None = None

    @property
    def shown(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, port: int | None = None, user: str | None = None, password: str | None = None
            ) -> str:
        """`http://[user[:password]@]host:port`, the parts percent-encoded; the proxy's own
        login when it has one."""
        if self.auth:
            user, _, password = self.auth.partition(":")
        host = f"[{self.host}]" if ":" in self.host else self.host
        credentials = ""
        if user is not None or password is not None:
            credentials = quote(user or "", safe="")
            if password is not None:
                credentials += ":" + quote(password, safe="")
            credentials += "@"
        return f"http://{credentials}{host}:{port or self.port}"


def call(proxy: Proxy, method: str, path: str, body: object = None) -> dict[str, object]:
    """One control request through `proxy`; its JSON answer, or ControlError."""
    payload = b"" if body is None else json.dumps(body).encode()
    headers = {"Host": CONTROL_HOST, "Content-Type": "application/json", "Connection": "close"}
    if proxy.auth:
        token = base64.b64encode(proxy.auth.encode()).decode()
        headers["Proxy-Authorization"] = f"Basic {token}"
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        connection.request(method, f"http://{CONTROL_HOST}{path}", payload, headers)
        answer = connection.getresponse()
        status, raw = answer.status, answer.read()
    except OSError as e:
        raise ControlError(
            f"cannot reach an llm-vcr proxy at {proxy.shown}: {e.strerror or e}"
        ) from None
    finally:
        connection.close()
    if status == 407:
        raise ControlError(f"the proxy at {proxy.shown} wants a login: give --auth USER:PASS")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ControlError(
            f"the proxy at {proxy.shown} answered {status} without JSON: is it llm-vcr?"
        ) from None
    if status >= 400:
        error = data.get("error", {}) if isinstance(data, dict) else {}
        raise ControlError(f"{error.get('message', 'refused')} (HTTP {status})")
    return data


def open_session(proxy: Proxy, fields: dict[str, object]) -> dict[str, object]:
    """Open a session; with a proxy login, one on a port of its own (see the module docstring)."""
    if proxy.auth:
        fields = {**fields, "port": True}
    return call(proxy, "POST", "/v1/sessions", fields)


def report(proxy: Proxy, session: str) -> dict[str, object]:
    return call(proxy, "GET", f"/v1/sessions/{quote(session, safe='')}")


def close_session(proxy: Proxy, session: str) -> dict[str, object]:
    return call(proxy, "DELETE", f"/v1/sessions/{quote(session, safe='')}")


def session_url(proxy: Proxy, opened: dict[str, object]) -> str:
    """The proxy URL that puts a client in the session `opened` (the control API's answer)."""
    port = opened.get("port")
    if isinstance(port, int):
        return proxy.url(port=port)
    cassette = opened.get("cassette")
    return proxy.url(user=str(cassette or "-"), password=f"session={opened['session']}")
