"""Route print() output of Python steps to the log of the step that printed it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

_local = threading.local()


class ThreadRoutedStream:
    """Stands in for sys.stdout/sys.stderr: lines go to the current thread's step log."""

    def __init__(self, original: TextIO, stream: str) -> None:
        self._original = original
        self._stream = stream

    def write(self, text: str) -> int:
        sink: Callable[[str, str], None] | None = getattr(_local, "sink", None)
        if sink is None:
            return self._original.write(text)
        pending = getattr(_local, self._stream, "") + text
        *lines, rest = pending.split("\n")
        for line in lines:
            sink(self._stream, line)
        setattr(_local, self._stream, rest)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def install() -> None:
    if not isinstance(sys.stdout, ThreadRoutedStream):
        sys.stdout = ThreadRoutedStream(sys.stdout, "stdout")  # type: ignore[assignment]
        sys.stderr = ThreadRoutedStream(sys.stderr, "stderr")  # type: ignore[assignment]


def route_to(sink: Callable[[str, str], None] | None) -> None:
    """Send this thread's output to `sink(stream, line)`; None flushes and restores."""
    if sink is None:
        old = getattr(_local, "sink", None)
        if old is not None:
            for stream in ("stdout", "stderr"):
                rest = getattr(_local, stream, "")
                if rest:
                    old(stream, rest)
                setattr(_local, stream, "")
    _local.sink = sink
