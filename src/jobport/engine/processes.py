"""Find and kill the processes of a run by the marker in their environment (Linux /proc).

Stdlib only: the reaper (reaper.py) loads this file with `python -I -S`.

Every command step starts with JOBPORT_EXECUTION_ID and JOBPORT_STEP in its environment and
its children inherit them, even those that leave the step's process group or session. A
process counts as the run's only if its own /proc/<pid>/environ says so at the time it is
signalled: a pid or process group number remembered from earlier may belong to someone
else by then. Each process is pinned with a pidfd before its environment is checked, and
signalled through that pidfd, so the signal cannot reach a later process that got the same
pid. A process that clears its environment (`env -i`) is not found; see README.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

EXECUTION_VAR = "JOBPORT_EXECUTION_ID"
STEP_VAR = "JOBPORT_STEP"

_PROC = "/proc"
_pidfd_works = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


class _Gone(Exception):
    pass


def _environ(pid: int) -> bytes:
    """The environment a process started with; empty if it is gone, a zombie or not ours."""
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _start_time(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks), or None when there is no such process."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()  # the name may contain spaces and ')'
    return fields[0], fields[19]


class _Process:
    """One process, pinned so that signals and waiting concern it and no later namesake."""

    def __init__(self, pid: int) -> None:
        global _pidfd_works
        self.pid = pid
        self.fd: int | None = None
        if _pidfd_works:
            try:
                self.fd = os.pidfd_open(pid)
            except ProcessLookupError:
                raise _Gone() from None
            except OSError:  # ENOSYS: a kernel before 5.3; fall back to the start time
                _pidfd_works = False
        if self.fd is None:
            stat = _start_time(pid)
            if stat is None:
                raise _Gone()
            self.started = stat[1]

    def send(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, sig)
            else:
                stat = _start_time(self.pid)
                if stat is not None and stat[1] == self.started:
                    os.kill(self.pid, sig)

    def exited(self) -> bool:
        """True once it has ended (a zombie has ended)."""
        if self.fd is not None:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)
            return bool(poller.poll(0))
        stat = _start_time(self.pid)
        return stat is None or stat[1] != self.started or stat[0] in "ZX"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _markers(execution_id: str, step: str | None) -> list[bytes]:
    wanted = [f"{EXECUTION_VAR}={execution_id}".encode()]
    if step is not None:
        wanted.append(f"{STEP_VAR}={step}".encode())
    return wanted


def _matches(data: bytes, wanted: list[bytes]) -> bool:
    if wanted[0] not in data:  # cheap test first: most processes are not ours
        return False
    entries = set(data.split(b"\0"))
    return all(w in entries for w in wanted)


def _scan(wanted: list[bytes]) -> list[_Process]:
    """Pinned handles on the live processes whose environment carries every marker."""
    found: list[_Process] = []
    me = os.getpid()
    try:
        names = os.listdir(_PROC)
    except OSError:
        return found
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        if not _matches(_environ(pid), wanted):
            continue
        try:
            proc = _Process(pid)
        except _Gone:
            continue
        # Checked again now that the handle pins it: the first read may have been of a
        # process that ended since, its pid taken by another.
        if _matches(_environ(pid), wanted):
            found.append(proc)
        else:
            proc.close()
    return found


def find_run_processes(execution_id: str, step: str | None = None) -> list[int]:
    """Pids of the live processes of this execution (and step, if given), on this host."""
    procs = _scan(_markers(execution_id, step))
    for proc in procs:
        proc.close()
    return sorted(p.pid for p in procs)


def signal_run_processes(execution_id: str, step: str | None, sig: int) -> int:
    """Send `sig` to every live process of the execution (and step); return how many."""
    procs = _scan(_markers(execution_id, step))
    for proc in procs:
        proc.send(sig)
        proc.close()
    return len(procs)


def kill_run_processes(
    execution_id: str, step: str | None = None, *, timeout: float = 10.0
) -> list[int]:
    """SIGKILL every process of the execution (and step) and wait until they are gone.

    Returns the pids still alive after `timeout` (stuck in the kernel, say); empty when
    all are gone.
    """
    wanted = _markers(execution_id, step)
    deadline = time.monotonic() + timeout
    pending: dict[int, _Process] = {}
    try:
        while True:
            # Scanned again after every kill: a child forked just before its parent died
            # is found by the next scan.
            found = _scan(wanted)
            for proc in found:
                proc.send(signal.SIGKILL)
                old = pending.pop(proc.pid, None)
                if old is not None:
                    old.close()
                pending[proc.pid] = proc
            for pid, proc in list(pending.items()):
                if proc.exited():
                    proc.close()
                    del pending[pid]
            if not found and not pending:
                return []
            if time.monotonic() > deadline:
                return sorted(pending)
            _wait_any(list(pending.values()), 0.05)
    finally:
        for proc in pending.values():
            proc.close()


def _wait_any(procs: list[_Process], seconds: float) -> None:
    if not procs:
        return
    fds = [p.fd for p in procs if p.fd is not None]
    if fds and len(fds) == len(procs):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(seconds * 1000)
    else:
        time.sleep(seconds)
