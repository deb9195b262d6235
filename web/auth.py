"""Optional API token (AVATAR_API_TOKEN) for the whole web server.

When a token is set, every request (the page, Gradio's REST API and its event streams, uploads,
downloads) must carry either
  * the header `Authorization: Bearer <token>` (REST clients, gradio_client, curl), or
  * the session cookie set by the page's own sign-in form at /login (browsers).
The cookie holds an HMAC of the token, never the token. Tokens are never accepted in URLs (they
would end up in access logs), and the token is never logged.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from web.health import HEALTH_PATH

COOKIE_NAME = "avatar_session"
OPEN_PATHS = ("/login", "/logout")
MAX_LOGIN_BODY = 4096


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"avatar-studio-session-v1", hashlib.sha256).hexdigest()


def _headers(scope: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def request_is_authorized(headers: dict[str, str], token: str) -> bool:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    cookie_header = headers.get("cookie")
    if cookie_header:
        try:
            cookie = SimpleCookie()
            cookie.load(cookie_header)
        except Exception:
            return False
        morsel = cookie.get(COOKIE_NAME)
        if morsel is not None and hmac.compare_digest(morsel.value.encode(), session_value(token).encode()):
            return True
    return False


async def _send_simple(send, status: int, body: bytes, content_type: str, extra: list | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Avatar Studio: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:360px;margin:12vh auto;padding:0 16px}}
input,button{{font-size:1rem;padding:8px;width:100%;box-sizing:border-box;margin-top:8px}}
.err{{color:#c62828}}</style></head><body><h2>Avatar Studio</h2>
<p>This server needs its access token.</p>{error}
<form method="post" action="{action}"><input type="password" name="token" placeholder="Access token"
autocomplete="current-password" autofocus required><button type="submit">Sign in</button></form></body></html>"""


class TokenGate:
    """Pure ASGI middleware (streaming-safe): lets authorised requests through, answers the rest.

    Unauthorised page loads (GET asking for HTML) are redirected to the sign-in form; anything
    else gets 401 with a JSON body.
    """

    def __init__(self, app: Any, token: str | None, root_path: str = ""):
        self.app = app
        self.token = token or None
        self.root = root_path.rstrip("/")

    async def __call__(self, scope, receive, send):
        if self.token is None or scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if scope["type"] == "http" and path == HEALTH_PATH:  # probes: counts only (web/health.py)
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and path in OPEN_PATHS:
            return await self._login(scope, receive, send, path)
        headers = _headers(scope)
        if request_is_authorized(headers, self.token):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", ""):
            return await _send_simple(send, 303, b"", "text/plain", [(b"location", f"{self.root}/login".encode())])
        body = b'{"detail": "authentication required: send the header Authorization: Bearer <AVATAR_API_TOKEN>"}'
        return await _send_simple(send, 401, body, "application/json", [(b"www-authenticate", b"Bearer")])

    async def _login(self, scope, receive, send, path):
        action = f"{self.root}/login"
        if path == "/logout":
            cookie = f"{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
            return await _send_simple(send, 303, b"", "text/plain",
                                      [(b"location", action.encode()), (b"set-cookie", cookie.encode())])
        if scope.get("method") == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > MAX_LOGIN_BODY:
                    return await _send_simple(send, 413, b"request too large", "text/plain")
                if not message.get("more_body"):
                    break
            given = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
            if given and hmac.compare_digest(given.encode(), self.token.encode()):
                secure = "; Secure" if scope.get("scheme") == "https" else ""
                cookie = f"{COOKIE_NAME}={session_value(self.token)}; Path=/; HttpOnly; SameSite=Strict{secure}"
                return await _send_simple(send, 303, b"", "text/plain",
                                          [(b"location", f"{self.root}/".encode()), (b"set-cookie", cookie.encode())])
            await asyncio.sleep(0.5)  # slows down guessing
            page = LOGIN_PAGE.format(action=html.escape(action), error='<p class="err">Wrong token.</p>')
            return await _send_simple(send, 401, page.encode(), "text/html; charset=utf-8")
        page = LOGIN_PAGE.format(action=html.escape(action), error="")
        return await _send_simple(send, 200, page.encode(), "text/html; charset=utf-8")
