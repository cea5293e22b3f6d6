"""Python step callables the tests run inside real workers (tests/ is on PYTHONPATH)."""

from __future__ import annotations

import os
import time
from typing import Any


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def records(n: int | str = 3) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"row {i}", "score": i * 1.5, "ok": i % 2 == 0} for i in range(int(n))
    ]


def boom(message: str = "it broke") -> None:
    print("about to fail")
    raise ValueError(message)


def sleep(seconds: float | str = 60) -> str:
    time.sleep(float(seconds))
    return "slept"


def busy(seconds: float | str = 60) -> str:
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        sum(range(1000))
    return "done"


def hard_crash() -> None:
    os._exit(9)


def chatty(lines: int | str = 10) -> int:
    for i in range(int(lines)):
        print(f"line {i}")
    return int(lines)


def flaky(marker: str) -> str:
    """Fails the first time it is called for `marker`, succeeds after."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first call fails")
    return "second call works"


def unstorable() -> dict[str, Any]:
    """Returns and prints what no store keeps as it is: NaN, a lone surrogate, a NUL."""
    import datetime as dt

    print("a lone \udc00 surrogate and a NUL \x00 here")
    return {
        "nan": float("nan"),
        "inf": float("inf"),
        "text": "lone \udc00 and NUL \x00",
        "when": dt.datetime(2026, 11, 30),
        "tuple": (1, 2),
    }


def environment() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in ("JOBPORT_DATABASE_URL", "PATH")}


def note(path: str, value: Any, seconds: float | str = 0) -> Any:
    """Appends `value` as a line to the file at `path`, then sleeps: a side effect a test
    can count (how many times an item ran)."""
    with open(path, "a") as out:
        out.write(f"{value}\n")
    time.sleep(float(seconds))
    return value


def fail_if(value: Any, bad: Any) -> Any:
    """Fails when `value` equals `bad` (a foreach item that fails), else returns it."""
    if str(value) == str(bad):
        raise RuntimeError(f"item {value} is bad")
    return value


def accumulate(total: Any, value: Any) -> dict[str, Any]:
    """A foreach step's result that carries an accumulator: the running sum."""
    start = 0 if str(total) in ("None", "") else int(total)
    return {"accumulator": start + int(value)}


def stamp(path: str) -> float:
    """Appends the time it ran (seconds since the epoch) to the file at `path`."""
    now = time.time()
    with open(path, "a") as out:
        out.write(f"{now}\n")
    return now


def record(path: str, value: str) -> str:
    """Appends `value` as a line to `path` (one write: lines of concurrent runs never mix)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{value}\n".encode())
    finally:
        os.close(fd)
    return value


def thread_ident() -> int:
    """The step thread's identity (a worker reuses its step threads across runs)."""
    import threading

    return threading.get_ident()
