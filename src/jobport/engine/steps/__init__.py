"""Step kinds: one module each, behind `validate(config)`, `run(config, ctx)` and, optionally,
`render(config, context)`.

The contract every kind keeps: values in a template (`{{ ... }}`) come from callers and are
data. The default `render` treats each config string as plain text, which suits strings that
no interpreter parses (an argv element, an env value, a kwarg). A kind that hands a config
string to an interpreter defines `render` and puts each value in through that interpreter's
own channel: the shell gets variables (templating.render_shell), SQL gets bound parameters,
a URL gets percent-encoded parts. Never splice a value into such a string as text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from jobport.domain.connections import Resolved
from jobport.engine import templating


class StepFailed(Exception):
    """The step ran and failed; the message is what the user sees."""


class StepInterrupted(BaseException):
    """Raised inside a step's thread when it must stop (cancel or timeout).

    A BaseException so that a callable's `except Exception` does not swallow it.
    """


@dataclass
class StepContext:
    """What a running step may use: its name, a logger, the stop signal, the execution's
    mode, and (in a worker) the project's connections and the step's watermark."""

    execution_id: str
    step: str
    log: Callable[[str, str], None]  # (stream, text)
    stop: threading.Event
    grace_seconds: float
    env: dict[str, str] = field(default_factory=dict)
    log_lines: Callable[[str, list[str]], None] | None = None  # (stream, texts)
    project_id: str = ""
    job_id: str = ""
    mode: str = "full"  # the execution's mode: full or delta
    # A connection of the project by name, with its secrets (StepFailed if unknown).
    connection: Callable[[str], Resolved] | None = None
    # The watermark this step's last successful run recorded (None: none yet). A step that
    # keeps one returns it in its result as "watermarkAfter"; it is recorded only if the run
    # succeeds (engine/lifecycle.py).
    watermark: Callable[[], Any] | None = None

    def log_many(self, stream: str, texts: list[str]) -> None:
        if self.log_lines is not None:
            self.log_lines(stream, texts)
        else:
            for text in texts:
                self.log(stream, text)

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


# Imported by kinds() when first asked; the local pool's fork server imports them ahead.
STEP_MODULES = tuple(
    f"jobport.engine.steps.{kind}" for kind in ("command", "http", "python", "sql", "transfer")
)


def kinds() -> dict[str, ModuleType]:
    from jobport.engine.steps import command, http, python, sql, transfer

    return {"command": command, "python": python, "sql": sql, "http": http, "transfer": transfer}


def validate(kind: str, config: dict[str, Any]) -> None:
    """Raise ValueError with a readable reason if `config` does not suit `kind`."""
    module = kinds().get(kind)
    if module is None:
        known = ", ".join(sorted(kinds()))
        raise ValueError(f"unknown step kind {kind!r} (known: {known})")
    module.validate(config)


def check_keys(kind: str, config: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse the config keys a kind does not know (ValueError), naming those it does."""
    unknown = set(config) - set(allowed)
    if unknown:
        raise ValueError(
            f"unknown {kind} config keys {sorted(unknown)} (allowed: {', '.join(allowed)})"
        )


def render(kind: str, config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The step's config with its templates filled in, the way its kind requires."""
    module = kinds()[kind]
    own = getattr(module, "render", None)
    if own is not None:
        return own(config, context)  # type: ignore[no-any-return]
    return templating.render(config, context)  # type: ignore[no-any-return]
