"""Authentication and authorisation at the HTTP edge: who calls, and may they."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request


def require(scope: str) -> Any:
    """A route dependency: the authenticated caller, holding `scope` on the path's project.

    Use as a parameter default: `caller: Principal = require("jobs:read")`.
    """

    async def caller(request: Request) -> Any:
        return None

    caller.jobport_scope = scope  # type: ignore[attr-defined]
    return Depends(caller)
