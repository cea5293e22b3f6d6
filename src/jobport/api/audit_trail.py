"""ASGI middleware that audits every write request and every refused credential."""

from __future__ import annotations

from typing import Any

from jobport.services import audit

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_DENIED = {401, 403, 429}


class AuditMiddleware:
    """One audit entry per write (or refused) request: who, from where, what, and how it ended.

    Routes record nothing themselves: the route's name is the action, the path the target,
    and the principal is what the auth dependency left in the request state.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        recorded = False

        async def watch(message: Any) -> None:
            nonlocal recorded
            # Recorded before the answer leaves: a caller who reads the audit log once it
            # has its answer finds the entry.
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                self._maybe_record(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if not recorded:  # no answer went out at all
                self._maybe_record(scope, 500)

    def _maybe_record(self, scope: Any, status: int) -> None:
        if scope["method"] in _WRITES or status in _DENIED:
            self._record(scope, status)

    def _record(self, scope: Any, status: int) -> None:
        rt = getattr(scope["app"].state, "runtime", None)
        if rt is None:
            return
        state = scope.get("state") or {}
        principal = state.get("principal")
        attempted = state.get("attempted")
        route = scope.get("route")
        if principal is not None:
            who = principal.label
        elif attempted:
            who = attempted if ":" in str(attempted) else f"apiKey:{attempted}"
        else:
            who = None
        outcome = "ok" if status < 400 else "denied" if status in _DENIED else "failed"
        audit.record(
            rt,
            audit.entry(
                action=getattr(route, "name", None) or scope["method"].lower(),
                outcome=outcome,
                principal=who,
                address=state.get("address") or (scope.get("client") or ("unknown",))[0],
                target=f"{scope['method']} {scope['path']}",
                project_id=state.get("project_id"),
                status=status,
            ),
        )
