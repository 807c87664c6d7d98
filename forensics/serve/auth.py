"""Who may talk to the server, checked on every request (pages, API, assets, event streams alike).

- A token, when the server has one (always when it binds beyond loopback): `Authorization: Bearer TOKEN`, the
  `forensics_token` cookie, or `?token=TOKEN` once (the answer sets the cookie, so a browser needs it only in
  the first address). Compared in constant time.
- Without a token (a loopback bind), the Host header must name this machine: a web page elsewhere cannot reach
  the server through DNS rebinding.
- A state-changing request (POST...) whose Origin is another site is refused: a page open in the same browser
  cannot upload to or export from the analyst's server.
"""
from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from forensics.serve.config import is_loopback

COOKIE = "forensics_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        if "=" in part:
            k, v = part.strip().split("=", 1)
            out[k] = v
    return out


class Guard:
    """ASGI middleware in front of the whole app."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def _check(self, scope: Scope) -> tuple[int, str] | tuple[None, str | None]:
        """(refusal status, message), or (None, token to set as cookie or None)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        set_cookie = None
        if self.token is None:
            if not is_loopback(_host_name(host)):
                return 403, (f"this server answers only to localhost addresses (Host: {host!r} refused); bind with "
                             "--host and a --token to serve other machines")
        else:
            given = None
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            elif COOKIE in _cookies(headers.get("cookie", "")):
                given = _cookies(headers["cookie"])[COOKIE]
            else:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                if "token" in query:
                    given = query["token"][0]
                    set_cookie = given
            if given is None:
                return 401, "a token is required: open the address `forensics serve` printed (it ends in ?token=...)"
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, "wrong token"
        if scope.get("method", "GET") not in SAFE_METHODS and "origin" in headers:
            origin = headers["origin"]
            if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
                return 403, f"cross-site request refused (Origin {origin!r} is not this server, {host!r})"
        return None, set_cookie

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        status, detail = self._check(scope)
        if status is not None:
            await _refuse(scope, send, status, detail or "")
            return
        if detail is None:
            return await self.app(scope, receive, send)
        cookie = f"{COOKIE}={detail}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + [(b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _refuse(scope: Scope, send: Callable, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    accepts_html = any(k == b"accept" and b"text/html" in v for k, v in scope.get("headers", []))
    wants_html = accepts_html and not scope.get("path", "").startswith("/api/")
    if wants_html:
        from html import escape

        body = (f"<!doctype html><meta charset=utf-8><title>refused</title><h1>{status}</h1>"
                f"<p>{escape(message)}</p>").encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message, "status": status}).encode()
        ctype = b"application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
