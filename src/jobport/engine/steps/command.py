"""The `command` step: a shell string or an argv list, run in its own process group."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import re
import signal
import subprocess
import threading
from typing import IO, Any

from jobport.engine import isolation, reaper, templating
from jobport.engine.processes import kill_run_processes, signal_run_processes
from jobport.engine.steps import StepContext, StepFailed, StepInterrupted, check_keys

_ALLOWED = ("command", "env", "cwd")


def validate(config: dict[str, Any]) -> None:
    check_keys("command", config, _ALLOWED)
    command = config.get("command")
    if isinstance(command, str):
        if not command.strip():
            raise ValueError("command is empty")
    elif isinstance(command, list):
        if not command or not all(isinstance(a, str) for a in command):
            raise ValueError("command must be a non-empty list of strings")
    else:
        raise ValueError("command must be a string (run by /bin/sh -c) or a list of strings")
    env = config.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str | int | float) for v in env.values()):
        raise ValueError("env must be an object of strings")
    reserved = sorted(set(env) & set(isolation.RESERVED_VARS))
    if reserved:
        raise ValueError(f"env may not set {', '.join(reserved)}: jobport sets it")
    if "cwd" in config and not isinstance(config["cwd"], str):
        raise ValueError("cwd must be a string")


def render(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """A shell string gets its values as quoted variable references (templating.render_shell);
    an argv list, `env` and `cwd` take them as plain text, since no shell parses them. The
    parameters also arrive as `JOBPORT_PARAM_<NAME>` variables."""
    rendered = templating.render({k: v for k, v in config.items() if k != "command"}, context)
    env = {**parameter_variables(context.get("params") or {}), **rendered.get("env", {})}
    command = config["command"]
    if isinstance(command, str):
        command, values = templating.render_shell(command, context, "command")
        env.update(values)
    else:
        command = templating.render(command, context, "command")
    return {**rendered, "command": command, "env": env}


def parameter_variables(params: dict[str, Any]) -> dict[str, str]:
    """`JOBPORT_PARAM_<NAME>` for each parameter: strings as they are, other values as JSON."""
    out = {}
    for name, value in params.items():
        key = "JOBPORT_PARAM_" + re.sub(r"[^A-Z0-9_]", "_", str(name).upper())
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


try:  # loaded once here: dlopen between fork and exec could deadlock
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None
_PR_SET_PDEATHSIG = 1


def _die_with_worker() -> None:
    """Runs in the child before exec: die with the worker instead of running on as an orphan."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _enter_as_user(cwd: str | None, home: str) -> None:
    """Runs in the child after it took the step user's ids, before exec.

    Popen's own `cwd` changes directory before the ids change, which would let the step
    user start inside a directory it may not enter; here the kernel checks as that user.
    """
    _die_with_worker()
    try:
        if cwd:
            os.chdir(cwd)
        else:
            try:
                os.chdir(home)
            except OSError:
                os.chdir("/")  # a user without a home, like nobody's /nonexistent
    except OSError as exc:
        os.write(2, f"jobport: cannot enter {cwd!r} as the step user: {exc.strerror}\n".encode())
        os._exit(126)


def _pump(stream: IO[bytes], name: str, ctx: StepContext) -> None:
    """Read whole chunks and hand over every complete line in them at once."""
    fd = stream.fileno()
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        if lines:
            ctx.log_many(name, [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines])
    if pending:
        ctx.log_many(name, [pending.decode("utf-8", "replace").rstrip("\r")])
    stream.close()


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _start(config: dict[str, Any], ctx: StepContext) -> subprocess.Popen[bytes]:
    command = config["command"]
    setup = isolation.current()
    cwd = config.get("cwd") or None
    kwargs: dict[str, Any] = {"cwd": cwd, "preexec_fn": _die_with_worker}
    user = setup.user
    if user is not None and user.switches:
        if not isolation.can_switch_user():
            raise StepFailed(
                f"cannot run the step as user {user.name!r} (JOBPORT_STEP_USER): the worker "
                f"runs as uid {os.geteuid()} without the right to change user; run the "
                "server as root or give it CAP_SETUID and CAP_SETGID"
            )
        if cwd and not os.path.isdir(cwd):
            raise StepFailed(f"could not start the command: no directory {cwd!r}")
        kwargs = {
            "cwd": None,
            "preexec_fn": functools.partial(_enter_as_user, cwd, user.home),
            "user": user.uid,
            "group": user.gid,
            "extra_groups": [],  # none of the worker's groups (or the user's own) either
        }
    try:
        return subprocess.Popen(
            command,
            shell=isinstance(command, str),
            executable="/bin/sh" if isinstance(command, str) else None,
            env=isolation.environment(ctx.env, config.get("env", {})),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,  # the worker's database and reaper pipe stay out of the step
            **kwargs,
        )
    except PermissionError as exc:
        if user is not None and user.switches:
            raise StepFailed(
                f"could not start the command as user {user.name!r} (JOBPORT_STEP_USER): {exc}"
            ) from exc
        raise StepFailed(f"could not start the command: {exc}") from exc
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise StepFailed(f"could not start the command: {exc}") from exc


def run(config: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    # Watched from before the start: a worker that dies at any point after leaves no
    # process of this step behind.
    with reaper.watching(ctx.execution_id):
        proc = _start(config, ctx)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, "stdout", ctx), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, "stderr", ctx), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        try:
            while True:
                try:
                    code = proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    if ctx.stopping:
                        raise StepInterrupted() from None
        except StepInterrupted:
            _stop(proc, ctx)
            raise
        finally:
            for pump in pumps:
                pump.join(timeout=2)
    if code != 0:
        raise StepFailed(f"command exited with code {code}")
    return {"exitCode": code}


def _stop(proc: subprocess.Popen[bytes], ctx: StepContext) -> None:
    """SIGTERM the step's processes, SIGKILL them after the grace period.

    Its process group, and by the marker in their environment those that left the group
    (setsid) but not the ones of other steps.
    """
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        signal_run_processes(ctx.execution_id, ctx.step, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=ctx.grace_seconds)
    if proc.returncode is None:
        # The leader is not reaped yet, so the group number still is this step's.
        _kill_group(proc, signal.SIGKILL)
    left = kill_run_processes(ctx.execution_id, ctx.step)
    if left:
        ctx.log("system", f"processes {left} did not exit after SIGKILL")
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        ctx.log("system", f"process {proc.pid} did not exit after SIGKILL")
