"""Step config templates: Jinja2 in a sandbox, undefined names are errors."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateError(Exception):
    """A config string failed to render; the message says where and why."""


def _walk(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for key, item in value.items():
            out.extend(_walk(item, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = []
        for index, item in enumerate(value):
            out.extend(_walk(item, f"{path}[{index}]"))
        return out
    return []


def syntax_errors(config: Any) -> list[str]:
    """Every config string that is not a valid template, with the reason."""
    errors = []
    for path, text in _walk(config, ""):
        if "{" not in text:
            continue
        try:
            _env.parse(text)
        except TemplateSyntaxError as exc:
            errors.append(f"{path}: {exc.message} (line {exc.lineno})")
    return errors


def render(value: Any, context: dict[str, Any], path: str = "") -> Any:
    """Render every string inside `value` (dicts and lists are walked)."""
    if isinstance(value, str):
        if "{" not in value:
            return value
        try:
            return _env.from_string(value).render(context)
        except UndefinedError as exc:
            raise TemplateError(f"{path or 'config'}: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateError(f"{path or 'config'}: not allowed: {exc}") from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"{path or 'config'}: {exc.message}") from None
        except Exception as exc:
            raise TemplateError(f"{path or 'config'}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, dict):
        return {k: render(v, context, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
