"""Step config templates: Jinja2 in a sandbox, undefined names are errors, values stay data.

A template's values (`{{ ... }}`) come from callers: parameters, earlier results. Where a
config string is handed to an interpreter, a value must never become its syntax. `render`
treats every string as plain text, which is right for data (an argv element, an env value).
`render_shell` is for a string `/bin/sh -c` parses: each value goes into an environment
variable of its own and the text gets a quoted reference to it (`"${JOBPORT_VALUE_1}"`), so
the shell expands it as one word and never parses it. Later kinds follow the same rule with
their own sink: SQL binds values, URLs percent-encode them.
"""

from __future__ import annotations

import contextvars
import functools
import re
import secrets
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

# Set while render_shell renders: the values met so far (see _finalize).
_values: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "jobport_template_values", default=None
)
_nonce = secrets.token_hex(8)  # markers no template text can contain by chance
_MARKER = re.compile(f"\x00{_nonce}:(\\d+)\x00")


def _finalize(value: Any) -> Any:
    """Every `{{ }}` output passes here; under render_shell it becomes a marker."""
    values = _values.get()
    if values is None:
        return value
    values.append(str(value))  # str() of an undefined name raises, as in plain rendering
    return f"\x00{_nonce}:{len(values) - 1}\x00"


_env = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, finalize=_finalize
)

VALUE_VARIABLE = "JOBPORT_VALUE_{}"


class TemplateError(Exception):
    """A config string failed to render; the message says where and why."""


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> Template:
    return _env.from_string(text)


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


def _render_text(text: str, context: dict[str, Any], path: str) -> str:
    try:
        return _compile(text).render(context)
    except UndefinedError as exc:
        raise TemplateError(f"{path or 'config'}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"{path or 'config'}: not allowed: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{path or 'config'}: {exc.message}") from None
    except Exception as exc:
        raise TemplateError(f"{path or 'config'}: {type(exc).__name__}: {exc}") from None


def render(value: Any, context: dict[str, Any], path: str = "") -> Any:
    """Render every string inside `value` (dicts and lists are walked) as plain text."""
    if isinstance(value, str):
        if "{" not in value:
            return value
        return _render_text(value, context, path)
    if isinstance(value, dict):
        return {k: render(v, context, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def render_shell(
    text: str, context: dict[str, Any], path: str = "command"
) -> tuple[str, dict[str, str]]:
    """Render a shell script so that no value is ever parsed by the shell.

    Returns the script, in which each value is a reference to an environment variable, and
    those variables. The reference suits the quoting where the value lands: `"${V}"` outside
    quotes, `${V}` inside double quotes, `'"${V}"'` inside single quotes. Should the scan
    misjudge the quoting (heredocs, nested `$( )`), every one of these forms still leaves the
    author's quotes balanced and the value unparsed: the worst case is a literal `${V}` or
    word splitting, never code.
    """
    if "{" not in text:
        return text, {}
    values: list[str] = []
    token = _values.set(values)
    try:
        rendered = _render_text(text, context, path)
    finally:
        _values.reset(token)
    if not values:
        return rendered, {}
    env = {VALUE_VARIABLE.format(i + 1): v for i, v in enumerate(values)}
    return _place_references(rendered), env


_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\?([A-Za-z0-9_]+))")


def _place_references(script: str) -> str:
    """Replace each value marker with a variable reference quoted for its position.

    Tracks just enough of POSIX sh: single and double quotes, `$'...'`, backslashes, and
    here-documents (whose body expands `${V}` unless the delimiter is quoted).
    """
    out: list[str] = []
    state = "plain"  # plain | single | double | ansi ($'...': \ escapes) | heredoc
    escaped = False
    pending: list[tuple[str, bool, bool]] = []  # here-docs opened on this line
    heredoc: tuple[str, bool, bool] | None = None  # (delimiter, strip tabs, expands)
    i, n = 0, len(script)
    while i < n:
        marker = _MARKER.match(script, i) if script[i] == "\x00" else None
        if marker is not None:
            out.append(_reference(int(marker.group(1)) + 1, state, escaped, heredoc))
            escaped = False
            i = marker.end()
            continue
        char = script[i]
        if state == "heredoc" and heredoc is not None and (i == 0 or script[i - 1] == "\n"):
            end = script.find("\n", i)
            line = script[i : n if end < 0 else end]
            if (line.lstrip("\t") if heredoc[1] else line) == heredoc[0]:
                out.append(line)
                i += len(line)
                heredoc, state = None, "plain"
                if pending:
                    heredoc, state = pending.pop(0), "heredoc"
                continue
        if escaped:
            escaped = False
        elif state == "plain":
            if char == "\\":
                escaped = True
            elif char == "'":
                state = "ansi" if out and out[-1] == "$" else "single"
            elif char == '"':
                state = "double"
            elif script.startswith("<<<", i):  # a here-string, not a here-document
                out.append("<<<")
                i += 3
                continue
            elif char == "<" and (found := _HEREDOC.match(script, i)):
                quoted = found.group(4) is None or script[found.start(4) - 1] == "\\"
                word = next(g for g in found.groups()[1:] if g is not None)
                pending.append((word, found.group(1) == "-", not quoted))
                out.append(found.group(0))
                i = found.end()
                continue
            elif char == "\n" and pending:
                heredoc, state = pending.pop(0), "heredoc"
        elif state == "single":
            if char == "'":
                state = "plain"
        elif state == "ansi":
            if char == "\\":
                escaped = True
            elif char == "'":
                state = "plain"
        elif state == "double":
            if char == "\\":
                escaped = True
            elif char == '"':
                state = "plain"
        elif char == "\\" and heredoc is not None and heredoc[2]:
            escaped = True
        out.append(char)
        i += 1
    return "".join(out)


def _reference(
    index: int, state: str, escaped: bool, heredoc: tuple[str, bool, bool] | None
) -> str:
    name = "${" + VALUE_VARIABLE.format(index) + "}"
    # After a backslash, a newline first: the author's backslash then makes a line
    # continuation, which the shell removes, instead of escaping our quote.
    lead = "\n" if escaped and state in ("plain", "double", "heredoc") else ""
    if state == "plain":
        return f'{lead}"{name}"'
    if state == "double":
        return lead + name
    if state == "heredoc":
        if heredoc is not None and not heredoc[2]:
            raise TemplateError(
                f"command: a value cannot go into a here-document with a quoted delimiter "
                f"({heredoc[0]!r}), where the shell expands nothing; unquote the delimiter or "
                "use the value's $JOBPORT_PARAM_<NAME> variable"
            )
        return lead + name
    if state == "single":
        return f"'\"{name}\"'"
    return f"'\"{name}\"$'"
