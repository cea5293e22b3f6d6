"""`AsyncClient`: the asyncio twin of `Client`, the same methods awaited.

The operations are in _operations.py, written once for both clients; this module says how
`AsyncClient` sends a request, runs a plan of several, pauses and follows a log stream,
each awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx2

from jobport.client._common import LogFollow
from jobport.client._operations import Decode, Operations, Plan, json_answer


class AsyncClient(Operations[Awaitable[Any], httpx2.AsyncBaseTransport]):
    """The asyncio twin of `Client`: the same methods, awaited. Use it as `async with`, or
    `await aclose()` it.

    Its arguments (the server, the credentials, a transport) are `__init__`'s, as `Client`'s.
    """

    _session = httpx2.AsyncClient
    _http: httpx2.AsyncClient

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, *, decode: Decode = json_answer, **request: Any
    ) -> Any:
        try:
            response = await self._http.request(method, path, **self._options(**request))
        except httpx2.RequestError as exc:
            raise self._unreachable(exc) from exc
        return decode(self._checked(response))

    async def _drive(self, plan: Plan[Any]) -> Any:
        try:
            step = next(plan)
            while True:  # await each step; give the plan its answer, or raise its error there
                try:
                    answer = await step
                except BaseException as exc:
                    step = plan.throw(exc)
                else:
                    step = plan.send(answer)
        except StopIteration as done:
            return done.value

    def _sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)

    async def follow_logs(self, execution_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Log lines as the run writes them, until it ends; resumes a dropped connection."""
        follow = LogFollow(self, execution_id, after)
        while True:
            try:
                async with self._http.sse(follow.path, **follow.request()) as source:
                    if source.response.is_error:
                        await source.response.aread()
                    self._checked(source.response)
                    async for event in source:
                        if event.event == "end":
                            return
                        line = follow.line(event)
                        if line is not None:
                            yield line
                pause = follow.dropped()
            except httpx2.RequestError as exc:
                pause = follow.failed(exc)
            await asyncio.sleep(pause)
