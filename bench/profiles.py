"""py-spy profiles for bench/run.py `--profile DIR`: record a phase, say where the CPU went.

(Not named profile.py: bench/ is first on sys.path when run.py runs, and a `profile` module
there would shadow the standard library's, which cProfile imports.)

One `py-spy record --pid <server> --subprocesses --gil --format raw --rate 200 --nonblocking
--full-filenames` per phase records the server process and every process below it (the local
pool: the fork server and its worker processes; the resource tracker) into one raw file.
py-spy starts each stack of a process below the server with one `process <pid>:"<cmdline>"`
frame per generation, so `summarise` tells them apart: a stack with one such frame is the
server's, a deeper one a worker's. Celery's `jobport worker` processes are not below the
server; each gets a py-spy of its own (also with --subprocesses, for its pool process) whose
samples all count as the workers'.

With --gil a sample is taken only from the thread holding the GIL, so samples / rate is
about the seconds a process spent running Python (per process, not per thread).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 200
TOP = 15
CHAIN = 0.9

# Library and project frames that say nothing about where a request or a run spends its
# time: the command line, the server's start-up and serving loop (every sample of the event
# loop's thread sits under them), the worker processes' start.
GENERIC = (
    "typer/",
    "click/",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/lifespan/",
    "uvicorn/_compat.py",
    "jobport/cli/",
    "jobport/__main__.py",
)


def py_spy() -> str | None:
    """The py-spy next to this Python (the venv's), else the one on PATH; None if absent."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


@dataclass
class Recording:
    """py-spy processes recording one phase; `stop` ends them and waits for their files."""

    procs: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 20.0) -> list[str]:
        """SIGINT every py-spy (it writes its file on SIGINT); the problems seen, if any."""
        for proc, _ in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
        until = time.monotonic() + timeout
        for proc, path in self.procs:
            try:
                _, err = proc.communicate(timeout=max(0.1, until - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if not path.exists():
                text = (err or b"").decode(errors="replace").strip().splitlines()
                self.errors.append(f"{path.name}: py-spy wrote nothing ({' '.join(text[-2:])})")
        return self.errors


def record(exe: str, pid: int, path: Path) -> subprocess.Popen[bytes]:
    """Start recording `pid` and the processes below it into `path` (raw format)."""
    cmd = [
        exe, "record", "--pid", str(pid), "--subprocesses", "--gil", "--nonblocking",
        "--format", "raw", "--rate", str(RATE), "--full-filenames", "--output", str(path),
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def start(
    exe: str, directory: Path, stem: str, server_pid: int, celery_pids: list[int]
) -> Recording:
    """Record the server (and what is below it) into `<stem>-server.txt`, each celery worker
    into `<stem>-worker<i>.txt`. Waits a moment so that py-spy is attached when the phase
    starts."""
    directory.mkdir(parents=True, exist_ok=True)
    rec = Recording()
    targets = [(server_pid, directory / f"{stem}-server.txt")] + [
        (pid, directory / f"{stem}-worker{i}.txt") for i, pid in enumerate(celery_pids)
    ]
    for pid, path in targets:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        rec.procs.append((record(exe, pid, path), path))
    time.sleep(0.5)
    for proc, path in rec.procs:
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
            rec.errors.append(f"{path.name}: py-spy exited: {err.splitlines()[-1] if err else ''}")
    return rec


# -- the summary --------------------------------------------------------------------------


def parse_frame(frame: str) -> tuple[str, str] | None:
    """`name (path:line)` -> (name, path); None for a `process ...` frame or garbage."""
    if frame.startswith("process ") or not frame.endswith(")") or " (" not in frame:
        return None
    name, _, where = frame[:-1].rpartition(" (")
    path = where.rsplit(":", 1)[0] if where.rsplit(":", 1)[-1].isdigit() else where
    return name, path


def short_path(path: str) -> str | None:
    """The project's or a library's path from its package on (`jobport/store/db.py`,
    `sqlalchemy/engine/base.py`); None for the standard library and anything else."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if path.startswith("jobport/"):
        return path
    if "/jobport/" in path:
        return "jobport/" + path.rsplit("/jobport/", 1)[1]
    if path.startswith(("site-packages/", "dist-packages/")):
        return path.split("/", 1)[1]
    return None


def summarise(files: list[tuple[Path, bool]], top: int = TOP) -> dict[str, Any]:
    """The server's and the workers' samples in py-spy raw files, and for each the `top`
    functions (name and file, all lines together) by inclusive share: the fraction of the
    group's samples whose stack holds the function at least once.

    `files`: (path, split). With split, a stack with one `process` frame is the server's and
    a deeper one a worker's; without, every stack is a worker's. Only the project's and the
    libraries' frames are ranked, less GENERIC's and those in every sample of the group (the
    serving loop of a process, say): they would fill the top with 100% and say nothing.

    A chain of wrappers (the ASGI middlewares, each calling the next) would fill it too, at
    nearly the same share: a function found in the same samples as an entry already ranked
    (at least CHAIN of its samples and of the entry's) joins that entry, which then names the
    innermost of them, with its share, and how many callers it stands for. Each entry of
    `top`: (function, share, callers folded in, the outermost caller's share).
    """
    groups: dict[str, dict[str, Any]] = {
        g: {"samples": 0, "stacks": {}, "processes": set()} for g in ("server", "workers")
    }
    weights: list[int] = []  # the sample count of each stack line, by its index
    for path, split in files:
        with contextlib.suppress(FileNotFoundError), open(path, errors="replace") as f:
            for line in f:
                stack, _, count_text = line.rstrip("\n").rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = stack.split(";")
                procs = [fr.split(":", 1)[0] for fr in frames if fr.startswith("process ")]
                group = groups["server" if split and len(procs) <= 1 else "workers"]
                group["samples"] += count
                if procs:
                    group["processes"].add(procs[-1].split()[-1])
                index = len(weights)
                weights.append(count)
                for frame in frames:
                    parsed = parse_frame(frame)
                    if parsed is None:
                        continue
                    short = short_path(parsed[1])
                    if short is None or short.startswith(GENERIC):
                        continue
                    group["stacks"].setdefault(f"{parsed[0]} ({short})", set()).add(index)
    out: dict[str, Any] = {}
    for name, g in groups.items():
        total = g["samples"]
        counts = {k: sum(weights[i] for i in lines) for k, lines in g["stacks"].items()}
        ranked = sorted((k for k in counts if counts[k] < total), key=lambda k: -counts[k])
        # Each entry: [innermost function, its lines, callers folded in, outermost count].
        entries: list[list[Any]] = []
        for key in ranked:
            lines = g["stacks"][key]
            for entry in entries:
                both = sum(weights[i] for i in lines & entry[1])
                if both >= CHAIN * counts[entry[0]] and both >= CHAIN * counts[key]:
                    entry[0], entry[1], entry[2] = key, lines, entry[2] + 1
                    break
            else:
                entries.append([key, lines, 0, counts[key]])
        entries.sort(key=lambda e: -counts[e[0]])
        out[name] = {
            "samples": total,
            "seconds": round(total / RATE, 2),
            "processes": len(g["processes"]),
            "top": [
                (k, round(counts[k] / total, 4), folded, round(outer / total, 4))
                for k, _, folded, outer in entries[:top]
            ],
        }
    return out
