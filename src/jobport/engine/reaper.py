"""A worker's reaper: a helper process that kills its runs' processes when the worker dies.

Each worker process starts one (`python -I -S reaper.py <worker pid>`, stdlib only) in a
session of its own, so that a `kill -9` of the server's process group does not reach it,
and tells it over a pipe which executions have command steps going: "+<id>" before a
command step starts, "-<id>" after it ended. When the pipe reaches end of file (the
worker is gone, however it died), the reaper kills the processes of the executions still
counted, found by the marker in their environment (processes.py), and exits. A restart
does the same before it concludes those runs (dispatcher.py), for when the reaper died too.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

log = logging.getLogger("jobport.reaper")


class Reaper:
    """The worker's side: starts the reaper and reports which executions run commands."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._active: collections.Counter[str] = collections.Counter()
        self._stopped = False

    def start(self) -> None:
        with self._lock:
            self._respawn()

    def _respawn(self) -> None:
        """Start a reaper (again) and tell it every active execution. Never raises: without
        a reaper the worker still works, and a restart still cleans up after it."""
        old, self._proc = self._proc, None
        if old is not None:  # it died (killed by hand, say): reap it
            with contextlib.suppress(OSError):
                old.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                old.wait(1)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                env={},
                start_new_session=True,
            )
            self._write("".join(f"+{eid}\n" for eid, n in self._active.items() for _ in range(n)))
        except OSError:
            log.exception("could not start the reaper; will try again at the next command step")

    def _write(self, text: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        if text:
            self._proc.stdin.write(text.encode())
            self._proc.stdin.flush()

    def _count(self, execution_id: str, delta: int) -> None:
        with self._lock:
            self._active[execution_id] += delta
            if self._active[execution_id] <= 0:
                del self._active[execution_id]
            if self._stopped:
                return
            if self._proc is not None and self._proc.poll() is None:
                try:
                    self._write(f"{'+' if delta > 0 else '-'}{execution_id}\n")
                    return
                except OSError:
                    pass
            self._respawn()  # a new one gets every active execution, this one included

    @contextlib.contextmanager
    def watching(self, execution_id: str) -> Iterator[None]:
        """Around a command step: if the worker dies meanwhile, its processes are killed."""
        self._count(execution_id, 1)
        try:
            yield
        finally:
            self._count(execution_id, -1)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)


_reaper: Reaper | None = None


def install() -> Reaper:
    """Start this worker process's reaper; command steps report to it from now on."""
    global _reaper
    if _reaper is None:
        _reaper = Reaper()
        _reaper.start()
    return _reaper


@contextlib.contextmanager
def watching(execution_id: str) -> Iterator[None]:
    """Report a command step to this process's reaper, if it has one (workers do)."""
    if _reaper is None:
        yield
    else:
        with _reaper.watching(execution_id):
            yield


# -- the reaper process ------------------------------------------------------------


def _load_processes() -> ModuleType:
    # -I -S: neither PYTHONPATH nor site-packages, so jobport is not importable; load the
    # one stdlib-only module this needs from beside this file.
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "processes.py")
    spec = importlib.util.spec_from_file_location("jobport_reaper_processes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(worker: int) -> None:
    processes = _load_processes()
    active: collections.Counter[str] = collections.Counter()
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 1.0)
        if not ready:
            # The pipe may stay open after the worker died if a process it forked without
            # exec still holds it; a new parent says the worker is gone all the same.
            if os.getppid() != worker:
                break
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace")
            if text.startswith("+"):
                active[text[1:]] += 1
            elif text.startswith("-"):
                active[text[1:]] -= 1
    for execution_id, count in active.items():
        if count <= 0:
            continue
        left = processes.kill_run_processes(execution_id, timeout=30.0)
        note = f"; still alive after SIGKILL: {left}" if left else ""
        with contextlib.suppress(OSError):  # the server's log may be a pipe nobody reads now
            print(
                f"jobport reaper: worker {worker} is gone; killed the processes of execution "
                f"{execution_id}{note}",
                file=sys.stderr,
                flush=True,
            )


if __name__ == "__main__":
    _main(int(sys.argv[1]))
