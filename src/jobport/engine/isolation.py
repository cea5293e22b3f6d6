"""What a command step's process gets: a clean environment and, optionally, another OS user.

The environment of a command step is built, never inherited: PATH, HOME, LANG, LC_ALL,
TZ and TMPDIR (those set in the worker; PATH falls back to the system default), then the
variables named by JOBPORT_STEP_ENV_PASSTHROUGH, then the run's context (JOBPORT_EXECUTION_ID,
JOBPORT_STEP, JOBPORT_JOB, JOBPORT_MODE, JOBPORT_ATTEMPT and what the runner adds), then the
step's own `env`. The server's own JOBPORT_* settings never pass, whatever the
passthrough says.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobport.engine.processes import EXECUTION_VAR, STEP_VAR

BASE_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
# They tell which processes are a run's (processes.py): a step may not set them itself.
RESERVED_VARS = (EXECUTION_VAR, STEP_VAR)
_SETTINGS_PREFIX = "JOBPORT_"
_CAP_SETGID, _CAP_SETUID = 6, 7


class StepUserError(ValueError):
    """JOBPORT_STEP_USER names no user of this host."""


@dataclass(frozen=True)
class StepUser:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def switches(self) -> bool:
        """Whether running as this user means changing ids (it may be the worker's own)."""
        return (self.uid, self.gid) != (os.geteuid(), os.getegid())


def resolve_user(value: str) -> StepUser | None:
    """The user JOBPORT_STEP_USER names (a name or a uid); None when it is empty."""
    value = value.strip()
    if not value:
        return None
    try:
        entry = pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
    except KeyError:
        raise StepUserError(
            f"JOBPORT_STEP_USER={value!r}: there is no such user on this host"
        ) from None
    return StepUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def can_switch_user() -> bool:
    """Whether this process may take another uid and gid (root, or CAP_SETUID+CAP_SETGID)."""
    try:
        with open("/proc/self/status") as f:
            caps = next(line for line in f if line.startswith("CapEff:"))
        effective = int(caps.split()[1], 16)
    except (OSError, StopIteration, ValueError, IndexError):
        return os.geteuid() == 0
    return all(effective >> cap & 1 for cap in (_CAP_SETGID, _CAP_SETUID))


@dataclass(frozen=True)
class StepSetup:
    """Fixed when a worker starts: the base environment and the user steps run as."""

    base: dict[str, str] = field(default_factory=dict)
    user: StepUser | None = None


def _passed(environ: Mapping[str, str], patterns: Iterable[str]) -> dict[str, str]:
    patterns = list(patterns)
    return {
        name: value
        for name, value in environ.items()
        if not name.startswith(_SETTINGS_PREFIX)
        and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


def build_setup(
    passthrough: Iterable[str] = (), user: str = "", environ: Mapping[str, str] | None = None
) -> StepSetup:
    """The setup for `environ` (default: this process's) and the two settings."""
    environ = os.environ if environ is None else environ
    step_user = resolve_user(user)
    base = {name: environ[name] for name in BASE_VARS if environ.get(name)}
    base.setdefault("PATH", os.defpath)
    if step_user is not None:
        base["HOME"] = step_user.home
    elif "HOME" not in base:
        try:
            base["HOME"] = pwd.getpwuid(os.geteuid()).pw_dir
        except KeyError:
            base["HOME"] = "/"
    return StepSetup({**base, **_passed(environ, passthrough)}, step_user)


_setup: StepSetup | None = None


def configure(passthrough: Iterable[str] = (), user: str = "") -> StepSetup:
    """Fix this process's setup from its environment now (workers: before shedding secrets)."""
    global _setup
    _setup = build_setup(passthrough, user)
    return _setup


def current() -> StepSetup:
    """This process's setup; outside a worker, one from its environment and no settings."""
    global _setup
    if _setup is None:
        _setup = build_setup()
    return _setup


def environment(context: Mapping[str, str], step_env: Mapping[str, Any]) -> dict[str, str]:
    """The whole environment of a command step's process."""
    env = {**current().base, **context, **{k: str(v) for k, v in step_env.items()}}
    for name in RESERVED_VARS:  # the runner's value, whatever the step says
        if name in context:
            env[name] = context[name]
    return env


def shed_settings() -> list[str]:
    """Remove the server's JOBPORT_* variables from this process's environment.

    For worker processes, once they hold their settings: Python steps run in the worker
    and should not find the database URL or the token secret in os.environ, nor pass them
    to what they start. Returns the names removed.
    """
    names = [name for name in os.environ if name.startswith(_SETTINGS_PREFIX)]
    for name in names:
        del os.environ[name]
    return names
