"""What the proxy login of a client names: the cassette (the user name) and the session (the
password, `session=<id>` or `client=<name>`), read at CONNECT and remembered per client
connection, since the requests inside a tunnel carry no Proxy-Authorization of their own.

With mitmproxy's own `proxyauth` set to a real login (not `any`), the user name and password are
that login and name nothing: clients pick cassettes and sessions by header then.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from .client_request import SessionRef, basic_auth, decode_user, session_ref
from .store import CassetteNameError

Login = tuple[str | CassetteNameError | None, SessionRef | None]


class ProxyLogins:
    def __init__(self) -> None:
        self.proxyauth: str | None = None  # mitmproxy's option
        self._by_connection: dict[str, Login] = {}

    def connected(self, flow: http.HTTPFlow) -> None:
        """The CONNECT of a tunnel: remember what its login names."""
        login = self.of(flow)
        if login != (None, None):
            self._by_connection[flow.client_conn.id] = login

    def disconnected(self, client: Any) -> None:
        self._by_connection.pop(client.id, None)

    def of(self, flow: http.HTTPFlow) -> Login:
        """What this request's login names, else its connection's (a CassetteNameError in place
        of a user name that cannot be read)."""
        try:
            login: Login = self._read(flow)
        except CassetteNameError as e:
            return e, None
        if login == (None, None):
            login = self._by_connection.get(flow.client_conn.id, (None, None))
        return login

    def _read(self, flow: http.HTTPFlow) -> tuple[str | None, SessionRef | None]:
        if self.proxyauth and self.proxyauth != "any":
            return None, None
        if "proxyauth" in flow.metadata:
            user, password = flow.metadata["proxyauth"]
            return decode_user(user), session_ref(password)
        value = flow.request.headers.get("Proxy-Authorization")
        if not value:
            return None, None
        user, password = basic_auth(value)
        return user, session_ref(password)
