"""GET /metrics: every metric in Prometheus's text format, for a caller holding `metrics:read`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from jobport.api.auth import require
from jobport.domain.access import Principal
from jobport.services import metrics as metrics_service
from jobport.services.runtime import Runtime

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in Prometheus's text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request, _: Principal = require("metrics:read")) -> Response:
    """Runs started and finished, their durations and queue waits, queue depths, scheduler
    fires and lag, authentication failures (README "Metrics and health")."""
    rt: Runtime = request.app.state.runtime
    body, content_type = await asyncio.to_thread(metrics_service.render, rt)
    return Response(body, media_type=content_type)
