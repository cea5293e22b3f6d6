"""Readiness: can this node serve, i.e. do the database and the broker answer (GET /readyz)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from jobport.services.runtime import Runtime

NOT_USED = "not used"
OK = "ok"

# A probe comes every few seconds. A check that hangs (a broker that accepts the connection
# and never answers) is given up after CHECK_SECONDS, and is not started again while it
# still hangs: its thread is not one of the pool's that serve requests, and there is only
# ever one per check.
CHECK_SECONDS = 2.0
_running: dict[str, threading.Thread] = {}
_lock = threading.Lock()
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


def readiness(rt: Runtime, timeout: float = CHECK_SECONDS) -> tuple[bool, dict[str, str]]:
    """(ready, {check: "ok", "not used" or what failed}) for the database and the broker,
    checked at the same time, each for at most `timeout` seconds."""
    checks: dict[str, Callable[[], None] | None] = {"database": rt.check_database}
    executor = getattr(rt.dispatcher, "executor", None)
    uses_broker = rt.settings.executor != "local" and executor is not None
    checks["broker"] = executor.check if uses_broker else None  # type: ignore[union-attr]
    started = {name: _start(name, check) for name, check in checks.items() if check}
    answers = {name: NOT_USED for name, check in checks.items() if check is None}
    for name, (thread, outcome) in started.items():
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                outcome.setdefault("error", f"no answer within {timeout:g} s")
        answers[name] = outcome.get("error", OK)
    return all(a in (OK, NOT_USED) for a in answers.values()), answers


def _start(name: str, check: Callable[[], None]) -> tuple[threading.Thread | None, dict[str, str]]:
    """The thread running `check` and where it writes its error; no thread while the last
    one still hangs."""
    outcome: dict[str, str] = {}
    with _lock:
        previous = _running.get(name)
        if previous is not None and previous.is_alive():
            outcome["error"] = "the previous check has not answered yet"
            return None, outcome

        def run() -> None:
            try:
                check()
            except Exception as exc:
                outcome["error"] = _said(exc)

        thread = threading.Thread(target=run, name=f"readiness-{name}", daemon=True)
        _running[name] = thread
        thread.start()
    return thread, outcome


def _said(exc: Exception) -> str:
    """The first line of an error, without any credentials of a URL in it (the probe is
    public)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return _CREDENTIALS.sub("***@", text)[:300]
