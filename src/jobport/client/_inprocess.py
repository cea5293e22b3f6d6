"""`InProcessTransport`: a blocking httpx2 transport to an ASGI app in this process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal


class InProcessTransport(httpx2.BaseTransport):
    """Send a `Client`'s requests to an ASGI app in this process, with no socket.

    httpx2 has only an async ASGI transport; this one runs the app on a private event loop
    in a thread (anyio's blocking portal, as Starlette's TestClient does), hands each request
    to httpx2.ASGITransport there and returns the answer read whole (a log stream arrives
    once it has ended). No lifespan events are sent: whoever builds the app gives it what
    it needs. `client` is the (host, port) the app sees the requests come from; `on_close`
    runs when the transport (its client) is closed.
    """

    def __init__(
        self,
        app: Any,
        *,
        client: tuple[str, int] = ("127.0.0.1", 123),
        raise_app_exceptions: bool = True,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._asgi = httpx2.ASGITransport(
            app, raise_app_exceptions=raise_app_exceptions, client=client
        )
        self._on_close = on_close
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._portal: BlockingPortal | None = None

    def _running(self) -> BlockingPortal:
        # Started on the first request: a client that is never used costs no thread.
        with self._lock:
            if self._portal is None:
                self._portal = self._stack.enter_context(start_blocking_portal())
            return self._portal

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()  # its stream is then bytes, which the async transport can read too

        async def send() -> tuple[int, Any, bytes]:
            answer = await self._asgi.handle_async_request(request)
            try:
                # Raw: the answer is decoded (Content-Encoding) once, by the client.
                body = b"".join([chunk async for chunk in answer.aiter_raw()])
            finally:
                await answer.aclose()
            return answer.status_code, answer.headers.raw, body

        status, headers, body = self._running().call(send)
        return httpx2.Response(status, headers=headers, content=body)

    def close(self) -> None:
        with self._lock:
            self._portal = None
            stack, self._stack = self._stack, contextlib.ExitStack()
        try:
            stack.close()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()
