"""`OPTIONS` and `Allow` that name every method of a path, not only those of one route.

Starlette answers a method a path does not take with 405 and the `Allow` of the first route
whose path matched, so `/api/v1/keys` said `Allow: GET` although `POST` is there too (each
method is its own route). This middleware looks at every route of the app instead: `OPTIONS`
on a known path answers 204 with the full list, and a 405 gets the full list in `Allow`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path  # what the router matches on (FastAPI uses it too)
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AllowedMethods:
    """ASGI middleware: answer `OPTIONS`, and complete `Allow` on every 405."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Built on the first request: routes are all included by then, and never change after.
        self._table: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allowed = self.allowed(scope)
            # A route that declares OPTIONS itself keeps it; a path no route has stays a 404.
            if allowed and "OPTIONS" not in allowed:
                headers = {"Allow": _header(allowed | {"OPTIONS"})}
                await Response(status_code=204, headers=headers)(scope, receive, send)
                return

        async def complete_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = self.allowed(scope)
                if allowed:
                    headers = MutableHeaders(scope=message)
                    headers["Allow"] = _header(allowed | {"OPTIONS"})
            await send(message)

        await self.app(scope, receive, complete_allow)

    def allowed(self, scope: Scope) -> set[str]:
        """Every method some route takes on this request's path (empty: no route has it)."""
        if self._table is None:
            self._table = _route_table(scope["app"].routes)
        path = get_route_path(scope)
        methods: set[str] = set()
        for pattern, route_methods in self._table:
            if pattern.match(path):
                methods |= route_methods
        return methods


def _route_table(routes: list[Any]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    table = []
    for route in iter_route_contexts(routes):
        pattern = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        # Mounts and websocket routes have no methods: they say nothing about Allow.
        if pattern is not None and methods:
            table.append((pattern, frozenset(m.upper() for m in methods)))
    return table


def _header(methods: set[str]) -> str:
    return ", ".join(sorted(methods))
