"""The web app while it is being built: `avatar serve` answers at once, the page says what it waits for.

Building the page needs the body model's sliders and the face engine's spec (child processes, cached
as JSON); on a first run the body model itself is built first (about 2 minutes, once per user:
avatarclip_core.paths). `WarmingApp` is the ASGI app uvicorn serves from the start: until the real
app is built (in a background thread) it answers

- the page (any GET that accepts HTML) with a short notice that reloads itself every few seconds,
- /healthz with 503 {"status": "preparing", "message": ...},
- everything else (REST calls, Gradio's own requests, websockets) by waiting until the app is ready
  and then passing the request on: a job submitted during the warm-up waits, it does not fail.

Once built, the real app's lifespan (Gradio's startup: its queue) is started on the server's loop
and every request goes straight to it.
"""
from __future__ import annotations

import asyncio
import html
import logging
import threading
from typing import Any, Callable

log = logging.getLogger("avatar.web")

FIRST_RUN_NOTICE = "preparing the body model (first run, about 2 minutes)"
STARTING_NOTICE = "starting the web app"
REFRESH_SECONDS = 5

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh}">
<title>Avatar Studio: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:4rem auto;max-width:40rem;color:#222}}</style></head>
<body><h1>Avatar Studio</h1><p id="warmup-notice">{notice}.</p>
<p>This page reloads by itself; jobs sent now wait and start when the studio is ready.</p></body></html>
"""


def startup_notice() -> str:
    """What the studio waits for: the first-run body model build, or just its own start."""
    from avatarclip_core.paths import body_model_cache_ready

    return STARTING_NOTICE if body_model_cache_ready() else FIRST_RUN_NOTICE


class WarmingApp:
    """ASGI app: `build()` (the real ASGI app) runs in a background thread; meanwhile see the module doc."""

    def __init__(self, build: Callable[[], Any], notice: str | None = None, health_path: str = "/healthz",
                 wait_timeout_s: float = 1800.0, on_ready: Callable[[BaseException | None], None] | None = None):
        self.notice = notice or startup_notice()
        self.health_path = health_path
        self.wait_timeout_s = wait_timeout_s
        self._on_ready = on_ready
        self._app: Any = None
        self._error: BaseException | None = None
        self._built = threading.Event()
        self._inner_started = False
        self._inner_lock: asyncio.Lock | None = None
        self._lifespan: tuple[asyncio.Queue, asyncio.Queue, asyncio.Task] | None = None
        self._thread = threading.Thread(target=self._build, args=(build,), name="avatar-web-build", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._built.is_set() and self._error is None

    def wait_built(self, timeout: float | None = None) -> bool:
        return self._built.wait(timeout)

    def _build(self, build: Callable[[], Any]) -> None:
        try:
            self._app = build()
        except BaseException as exc:  # noqa: BLE001 - shown on the page and in the log, not lost in a thread
            log.exception("the web app could not be built")
            self._error = exc
        finally:
            self._built.set()
            if self._on_ready is not None:
                self._on_ready(self._error)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self._serve_lifespan(receive, send)
        if self._inner_started:
            return await self._app(scope, receive, send)
        if not self._built.is_set() and scope["type"] == "http":
            if scope.get("path") == self.health_path:
                return await self._json(send, 503, {"status": "preparing", "message": self.notice})
            if scope.get("method") == "GET" and _accepts_html(scope):
                return await self._page(send)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._built.wait, self.wait_timeout_s):
            return await self._json(send, 503, {"status": "preparing", "message": self.notice})
        if self._error is not None:
            if scope["type"] != "http":
                return await send({"type": "websocket.close", "code": 1011})
            return await self._json(send, 500, {"status": "failed", "message": "the web app could not start; "
                                                                                "see the server's log"})
        await self._start_inner()
        return await self._app(scope, receive, send)

    async def _start_inner(self) -> None:
        """Run the real app's lifespan startup once (Gradio starts its queue there)."""
        if self._inner_lock is None:
            self._inner_lock = asyncio.Lock()
        async with self._inner_lock:
            if self._inner_started:
                return
            to_app: asyncio.Queue = asyncio.Queue()
            from_app: asyncio.Queue = asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
            task = asyncio.create_task(self._app(scope, to_app.get, from_app.put))
            await to_app.put({"type": "lifespan.startup"})
            getter = asyncio.create_task(from_app.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done and getter.result()["type"] == "lifespan.startup.failed":
                log.error("the web app's startup failed: %s", getter.result().get("message", ""))
            elif getter not in done:
                getter.cancel()  # an app without lifespan support returned at once: nothing to start
            self._lifespan = (to_app, from_app, task)
            self._inner_started = True

    async def _serve_lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().create_task(self._start_when_built())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._lifespan is not None and not self._lifespan[2].done():
                    to_app, from_app, task = self._lifespan
                    await to_app.put({"type": "lifespan.shutdown"})
                    try:
                        await asyncio.wait_for(from_app.get(), timeout=5)
                    except asyncio.TimeoutError:
                        task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_when_built(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._built.wait)
        if self._error is None:
            await self._start_inner()

    async def _page(self, send) -> None:
        body = _PAGE.format(refresh=REFRESH_SECONDS, title=html.escape(self.notice),
                            notice=html.escape(self.notice[:1].upper() + self.notice[1:])).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                                (b"retry-after", str(REFRESH_SECONDS).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _json(send, status: int, data: dict) -> None:
        import json

        body = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})


def _accepts_html(scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept":
            return b"text/html" in value
    return scope.get("path") in ("/", "")


def warming_app(build: Callable[[], Any], health_path: str = "/healthz") -> WarmingApp:
    """`avatar serve`'s app: says on the console what the page says while it warms, and when it is ready."""
    notice = startup_notice()
    if notice == FIRST_RUN_NOTICE:
        print(f"{notice}: the page says so until it is ready; jobs sent meanwhile wait", flush=True)

    def on_ready(error: BaseException | None) -> None:
        print("the studio is ready" if error is None else
              f"error: the web app could not start ({type(error).__name__}: {error})", flush=True)

    return WarmingApp(build, notice, health_path=health_path, on_ready=on_ready)
