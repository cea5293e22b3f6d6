"""GET /healthz (the process answers) and GET /readyz (its database and broker answer)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from jobport import __version__
from jobport.api.auth import public
from jobport.errors import APIError
from jobport.services import health
from jobport.services.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(_: None = public("load balancers probe it")) -> dict[str, Any]:
    """Alive: the server answers. Nothing else is checked (a liveness probe must not restart
    a node because its database is down; /readyz says that)."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    responses={503: {"description": "The database or the broker does not answer (`not_ready`)."}},
)
async def readyz(request: Request, _: None = public("load balancers probe it")) -> dict[str, Any]:
    """Ready: the database answers and, with the Celery executor, the broker does; each is
    given at most 2 s. `checks` says `ok`, `not used`, or what failed."""
    rt: Runtime = request.app.state.runtime
    ready, checks = await asyncio.to_thread(health.readiness, rt)
    if not ready:
        failed = "; ".join(
            f"{name}: {said}"
            for name, said in checks.items()
            if said != health.OK and said != health.NOT_USED
        )
        raise APIError(
            f"not ready: {failed}", code="not_ready", status=503, details={"checks": checks}
        )
    return {"status": "ready", "checks": checks}
