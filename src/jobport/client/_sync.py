"""`Client`: the blocking client of one jobport server.

The operations are in _operations.py, written once for both clients; this module says how
`Client` sends a request, runs a plan of several, pauses and follows a log stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2

from jobport.client._common import LogFollow
from jobport.client._operations import Decode, Operations, Plan, json_answer


class Client(Operations[Any, httpx2.BaseTransport]):
    """A blocking client of one jobport server. Use it as a context manager, or `close()` it.

    Its arguments (the server, the credentials, a transport) are `__init__`'s.
    """

    _session = httpx2.Client
    _http: httpx2.Client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, decode: Decode = json_answer, **request: Any) -> Any:
        try:
            response = self._http.request(method, path, **self._options(**request))
        except httpx2.RequestError as exc:
            raise self._unreachable(exc) from exc
        return decode(self._checked(response))

    def _drive(self, plan: Plan[Any]) -> Any:
        try:
            answer = next(plan)
            while True:  # each step has run already: raised in the plan, or this answer
                answer = plan.send(answer)
        except StopIteration as done:
            return done.value

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def follow_logs(self, execution_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """Log lines as the run writes them, until it ends; resumes a dropped connection."""
        follow = LogFollow(self, execution_id, after)
        while True:
            try:
                with self._http.sse(follow.path, **follow.request()) as source:
                    if source.response.is_error:
                        source.response.read()
                    self._checked(source.response)
                    for event in source:
                        if event.event == "end":
                            return
                        line = follow.line(event)
                        if line is not None:
                            yield line
                pause = follow.dropped()
            except httpx2.RequestError as exc:
                pause = follow.failed(exc)
            time.sleep(pause)
