"""Forget the per-session state Gradio keeps for raw REST calls once their result was read.

A raw call (`POST /gradio_api/call/<api>` then `GET /gradio_api/call/<api>/<event_id>`, as the
README's curl example does) sends no session hash, so Gradio (6.31) makes the event's own id its
session and keeps, per call and long after it finished:
  * a SessionState in `state_holder` holding a copy of the config of every component of the page
    (~1 MB with our hundreds of sliders), evicted only beyond `state_session_capacity` (10,000
    sessions: ~10 GB);
  * the session's message queue (`pending_messages_per_session`, 2,000 kept) and an empty set in
    `pending_event_ids_session` (never removed).
gradio_client and the page reuse one session hash for many calls, so only raw calls pile up.

`ReapRawSessions` (ASGI middleware) drops those three entries when the GET that delivered the
event's result ends, and a sweep every `sweep_every` seconds drops those of raw calls whose result
nobody fetched within `linger` seconds. Only sessions named after one of their own events are
touched, and only once that event left the queue: Gradio chose that name, no page or client can
hold it, and nothing reads the session again. Browser and gradio_client sessions are never touched.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

log = logging.getLogger("avatar.web")

# GET <root>/gradio_api/call/<api_name>/<event_id> (and Gradio's /call/v2/ spelling)
_RESULT_PATH = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/([0-9A-Za-z_-]{1,100})/?$")


class ReapRawSessions:
    def __init__(self, app: Any, blocks: Any, linger: float = 600.0, sweep_every: float = 60.0,
                 analytics_events: int = 100) -> None:
        self.app = app
        self.blocks = blocks
        queue = self._queue()
        if queue is not None:
            # Gradio also keeps timing records of the last 10,000 events (~3 KB each, and summed
            # again after every event) for its monitoring page, which this app does not serve
            queue.ANALYTICS_MAX_EVENTS = min(queue.ANALYTICS_MAX_EVENTS, int(analytics_events))
        self.linger = float(linger)
        self.sweep_every = float(sweep_every)
        self._sweeper: asyncio.Task | None = None
        self.reaped = 0  # sessions dropped so far (tests, logs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._sweeper is None:  # the server's event loop exists now
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        match = _RESULT_PATH.search(scope.get("path", "")) if scope.get("method") == "GET" else None
        try:
            await self.app(scope, receive, send)
        finally:
            if match:
                asyncio.get_running_loop().create_task(self._reap_when_done(match.group(1)))

    async def _reap_when_done(self, event_id: str, patience: float = 60.0) -> None:
        # Gradio sends the result before it lets go of the event (it awaits some bookkeeping in
        # between), so the GET may end while the event is still listed: wait for it to go.
        deadline = time.monotonic() + patience
        queue = self._queue()
        while queue is not None and event_id in queue.event_ids_to_events and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        try:
            self.reap(event_id)
        except Exception:  # noqa: BLE001  (bookkeeping must never take the server down)
            log.exception("forgetting the session of REST call %s failed", event_id)

    # -- the bookkeeping of gradio.queueing.Queue and gradio.state_holder.StateHolder ------------
    def _queue(self):
        return getattr(self.blocks, "_queue", None)

    def reap(self, event_id: str) -> bool:
        """Forget the session of a finished raw call (session named after the event); False when
        there is none, or its event is still queued or running, or its result was not read yet."""
        queue = self._queue()
        if queue is None or event_id in queue.event_ids_to_events:
            return False
        if queue.pending_event_ids_session.get(event_id):  # the result was not delivered yet
            return False
        return self._drop(event_id)

    def _drop(self, session: str) -> bool:
        queue = self._queue()
        holder = getattr(self.blocks, "state_holder", None)
        found = False
        if holder is not None:
            with holder.lock:
                found = holder.session_data.pop(session, None) is not None
                holder.time_last_used.pop(session, None)
        found = queue.pending_messages_per_session.pop(session, None) is not None or found
        found = queue.pending_event_ids_session.pop(session, None) is not None or found
        self.reaped += found
        return found

    def sweep(self, now: float | None = None) -> int:
        """Drop the sessions of raw calls finished more than `linger` s ago whose result was never
        fetched (their event id is still listed in their own session). Returns how many."""
        queue = self._queue()
        holder = getattr(self.blocks, "state_holder", None)
        if queue is None:
            return 0
        now = time.time() if now is None else now
        dropped = 0
        for session, ids in list(queue.pending_event_ids_session.items()):
            if session not in ids or any(i in queue.event_ids_to_events for i in ids):
                continue  # not a raw call's session, or its event is still queued or running
            used = holder.time_last_used.get(session) if holder is not None else None
            if used is not None and now - used.timestamp() < self.linger:
                continue
            dropped += self._drop(session)
        return dropped

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            try:
                n = self.sweep()
                if n:
                    log.info("forgot the state of %d finished REST call(s) nobody fetched", n)
            except Exception:  # noqa: BLE001  (bookkeeping must never take the server down)
                log.exception("sweeping finished REST sessions failed")

