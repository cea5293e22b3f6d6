"""Jobs: a project's jobs (search, labels), a job's page (its definition, recent runs, the
parameter form built from its `parametersSchema`) and Run, which goes to the new run's page.

The form is made from the job's schema (or, without one, from its declared parameters and
their defaults); what the user types is turned into JSON values here and checked by the
service, whose refusal (`invalid_parameters`, `unknown_parameter`, `invalid_context`, ...)
is shown next to the field it names.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from jobport.api.v1.executions import render_listed as render_listed_execution
from jobport.api.v1.jobs import render as render_job
from jobport.console.web import PREFIX, Viewer, form_errors, page, redirect, viewer
from jobport.domain.executions import StartRequest, Trigger
from jobport.domain.jobs import Job
from jobport.domain.projects import Project
from jobport.domain.values import first_problem
from jobport.errors import APIError, JobportError
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services import projects as project_service
from jobport.services import starts

router = APIRouter()

RECENT_RUNS = 10
_INTEGER = re.compile(r"^[+-]?\d{1,30}$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$")
_REQUIRED = re.compile(r"^'(?P<name>.+)' is a required property$")
_INPUT_FORMATS = {"date": "date", "email": "email", "uri": "url"}


@dataclass
class ParamField:
    """One input of the run form: a parameter, the input it gets, its constraints as HTML
    attributes and its description (with the constraints in words) as a hint."""

    name: str
    id: str
    label: str
    kind: str  # text, integer, number, boolean, enum, json
    required: bool = False
    has_default: bool = False
    default: Any = None
    hint: str = ""
    input_type: str = "text"
    attrs: dict[str, str] = field(default_factory=dict)
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label) of an enum
    choices: list[Any] = field(default_factory=list)

    def shown(self, value: Any) -> str:
        """A value as the input holds it."""
        if self.kind == "boolean":
            return "true" if value is True else ""
        if self.kind == "enum" or self.kind == "json":
            return json.dumps(value, ensure_ascii=False)
        return "" if value is None else str(value)


def _resolve(schema: dict[str, Any], node: Any) -> dict[str, Any]:
    """A property's schema, following a local `$ref` ('#/$defs/x') a few times."""
    for _ in range(5):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            break
        target: Any = schema
        for part in node["$ref"].removeprefix("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        node = {
            **(target if isinstance(target, dict) else {}),
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    return node if isinstance(node, dict) else {}


def _type_of(prop: dict[str, Any]) -> str | None:
    kind = prop.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"]
        kind = named[0] if len(named) == 1 else None
    return kind if isinstance(kind, str) else None


def _kind_of_default(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "json"


def _number(value: Any) -> str | None:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _from_schema(index: int, name: str, prop: dict[str, Any], required: bool) -> ParamField:
    kind_name = _type_of(prop)
    f = ParamField(name, f"param-{index}", str(prop.get("title") or name), "text")
    words: list[str] = []
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        f.kind = "enum"
        f.choices = list(prop["enum"])
        f.options = [
            (json.dumps(v, ensure_ascii=False), v if isinstance(v, str) else json.dumps(v))
            for v in f.choices
        ]
    elif kind_name == "boolean":
        f.kind, f.input_type = "boolean", "checkbox"
    elif kind_name in ("integer", "number"):
        f.kind, f.input_type = kind_name, "number"
        step = _number(prop.get("multipleOf"))
        f.attrs["step"] = step or ("1" if kind_name == "integer" else "any")
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if (value := _number(prop.get(key))) is not None:
                f.attrs[attr] = value
                words.append(f"{'at least' if attr == 'min' else 'at most'} {value}")
        for key, word in (("exclusiveMinimum", "more than"), ("exclusiveMaximum", "less than")):
            value = prop.get(key)
            if _number(value) is not None:
                words.append(f"{word} {value}")
                if kind_name == "integer" and isinstance(value, int):
                    f.attrs["min" if key == "exclusiveMinimum" else "max"] = str(
                        value + 1 if key == "exclusiveMinimum" else value - 1
                    )
    elif kind_name == "string" or "type" not in prop:
        f.kind = "text"
        fmt = prop.get("format")
        f.input_type = _INPUT_FORMATS.get(fmt, "text") if isinstance(fmt, str) else "text"
        if isinstance(fmt, str):
            words.append(f"format {fmt}")
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            value = prop.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                f.attrs[attr] = str(value)
                words.append(
                    f"{'at least' if attr == 'minlength' else 'at most'} {value} characters"
                )
        pattern = prop.get("pattern")
        if isinstance(pattern, str):
            # JSON Schema searches for its pattern; an HTML pattern must match the whole value.
            f.attrs["pattern"] = rf"[\s\S]*(?:{pattern})[\s\S]*"
            words.append(f"matches {pattern}")
    else:
        f.kind = "json"
        words.append(f"JSON{' ' + kind_name if kind_name else ''}")
    f.required = required
    if "default" in prop:
        f.has_default, f.default = True, prop["default"]
    description = str(prop.get("description") or "")
    f.hint = "; ".join(x for x in [description, ", ".join(words)] if x)
    return f


def param_fields(job: Job) -> list[ParamField]:
    """The run form's inputs: the schema's properties, then declared parameters it leaves
    out; without a schema, the declared parameters typed by their defaults."""
    spec = job.spec
    defaults = spec.parameters
    fields: list[ParamField] = []
    schema = spec.parameters_schema
    if schema is not None:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = {r for r in schema.get("required") or [] if isinstance(r, str)}
        for name, prop in props.items():
            f = _from_schema(len(fields), str(name), _resolve(schema, prop), name in required)
            fields.append(f)
    named = {f.name for f in fields}
    for name, value in defaults.items():
        if name in named:
            continue
        kind = _kind_of_default(value)
        f = ParamField(name, f"param-{len(fields)}", name, kind)
        f.input_type = {"boolean": "checkbox", "integer": "number", "number": "number"}.get(
            kind, "text"
        )
        if kind in ("integer", "number"):
            f.attrs["step"] = "1" if kind == "integer" else "any"
        if kind == "json":
            f.hint = "JSON"
        fields.append(f)
    for f in fields:
        if f.name in defaults:
            f.has_default, f.default = True, defaults[f.name]
        if f.has_default:
            f.required = False  # the default fills it in
    return fields


class _NotJson(ValueError):
    pass


def _json(text: str) -> Any:
    """JSON typed into a form, held to what a JSON body may carry (api/guard.py)."""

    def no_constant(constant: str) -> Any:
        raise _NotJson(f"{constant} is not a JSON value")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise _NotJson(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise _NotJson("nested too deeply") from None
    except ValueError as exc:
        raise _NotJson(str(exc)) from None
    problem = first_problem(value)
    if problem is not None:
        _, where, reason = problem
        raise _NotJson(f"{where}: {reason}" if where else reason)
    return value


_OMIT = object()


def _value(f: ParamField, raw: str | None) -> Any:
    """What the user typed as the JSON value the API would get; a value that is not of the
    input's type goes as text, for the service to refuse in its own words."""
    if f.kind == "boolean":
        return raw is not None
    if raw is None or raw == "":
        return _OMIT
    if f.kind == "enum":
        return next((c for c in f.choices if json.dumps(c, ensure_ascii=False) == raw), raw)
    if f.kind == "integer" and _INTEGER.match(raw.strip()):
        return int(raw)
    if f.kind == "number" and _NUMBER.match(raw.strip()):
        number = float(raw)
        if not math.isfinite(number):
            return raw
        return int(number) if number.is_integer() and _INTEGER.match(raw.strip()) else number
    if f.kind == "json":
        return _json(raw)
    return raw


def _field_of(error_field: str, reason: str, fields: list[ParamField]) -> str:
    """Which form field a refusal's detail names: 'parameters.x...' is x's input."""
    names = {f.name for f in fields}
    if error_field.startswith("parameters."):
        name = error_field.removeprefix("parameters.")
        for candidate in sorted(names, key=len, reverse=True):
            if name == candidate or name.startswith(candidate + "."):
                return candidate
        return "parameters"
    found = _REQUIRED.match(reason) if error_field == "parameters" else None
    if found and found["name"] in names:
        return found["name"]
    return error_field


def _project(who: Viewer, scope: str, ref: str) -> Project:
    who.authorize(scope, ref)
    return project_service.get(who.rt, ref)


@router.get(PREFIX + "/projects/{project}/jobs")
async def jobs_list(
    request: Request,
    project: str,
    q: str = "",
    label: str = "",
    cursor: str | None = None,
    who: Viewer = Depends(viewer),
) -> Response:
    found_project = _project(who, "jobs:read", project)
    errors: dict[str, str] = {}
    items: list[Job] = []
    next_cursor = None
    try:
        found = await asyncio.to_thread(
            job_service.list_page,
            who.rt,
            found_project.id,
            name_contains=q.strip() or None,
            label=label.strip() or None,
            cursor=cursor or None,
            limit=50,
        )
        items, next_cursor = found.items, found.next_cursor
    except APIError as exc:
        if exc.status >= 500 or exc.status in (401, 403, 404):
            raise
        errors = {"_": exc.message}
        if exc.code == "invalid_filter":
            errors["label"] = exc.message
    labels = sorted(
        {f"{k}:{v}" for j in items for k, v in (j.definition.get("labels") or {}).items()}
    )
    return page(
        request,
        "jobs/list.html",
        who,
        status=422 if errors else 200,
        project=found_project,
        jobs=[(j, render_job(j)) for j in items],
        q=q,
        label=label,
        labels=labels,
        next_cursor=next_cursor,
        errors=errors,
        can_read_runs=who.can("executions:read", found_project.id),
    )


def _job_page(
    request: Request,
    who: Viewer,
    project: Project,
    job: Job,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    fields = param_fields(job)
    recent: list[dict[str, Any]] = []
    can_read_runs = who.can("executions:read", project.id)
    if can_read_runs:
        found = execution_service.list_page(who.rt, project.id, job_ref=job.id, limit=RECENT_RUNS)
        recent = [render_listed_execution(e) for e in found.items]
    if values is None:
        values = {f.name: f.shown(f.default) for f in fields if f.has_default}
        values["mode"] = "full"
        values["context"] = json.dumps(job.spec.context, indent=2) if job.spec.context else ""
    return page(
        request,
        "jobs/detail.html",
        who,
        status=status,
        project=project,
        job=job,
        definition=render_job(job),
        spec=job.spec,
        fields=fields,
        values=values,
        errors=errors or {},
        recent=recent,
        can_read_runs=can_read_runs,
        can_execute=who.can("jobs:execute", project.id),
        has_schema=job.spec.parameters_schema is not None,
    )


@router.get(PREFIX + "/projects/{project}/jobs/{job}")
async def job_detail(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    found_project = _project(who, "jobs:read", project)
    found = await asyncio.to_thread(job_service.get, who.rt, found_project.id, job)
    return _job_page(request, who, found_project, found)


@router.post(PREFIX + "/projects/{project}/jobs/{job}/run")
async def run_job(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("jobs:execute", project)  # as the API's require("jobs:execute")
    found_project = project_service.get(who.rt, project)
    found = await asyncio.to_thread(job_service.get, who.rt, found_project.id, job)
    form = await request.form()
    fields = param_fields(found)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    parameters: dict[str, Any] = {}
    for f in fields:
        raw = form.get("param:" + f.name)
        raw = raw if isinstance(raw, str) else None
        values[f.name] = raw if f.kind != "boolean" else (f.shown(True) if raw else "")
        try:
            value = _value(f, raw)
        except _NotJson as exc:
            errors[f.name] = str(exc)
            continue
        if value is not _OMIT:
            parameters[f.name] = value
    mode = form.get("mode")
    values["mode"] = mode = mode if isinstance(mode, str) else "full"
    context_text = form.get("context")
    context_text = context_text if isinstance(context_text, str) else ""
    values["context"] = context_text
    context: Any = None
    if found.spec.foreach is not None and context_text.strip():
        try:
            context = _json(context_text)
        except _NotJson as exc:
            errors["context"] = str(exc)
    if errors:
        errors["_"] = "The form has mistakes: see the fields marked below."
        return _job_page(
            request, who, found_project, found, status=422, errors=errors, values=values
        )
    try:
        execution, _ = await starts.start(
            who.rt,
            found_project.id,
            found.id,
            StartRequest(
                parameters=parameters,
                mode=mode,
                trigger=Trigger.CONSOLE,
                principal=who.principal.label,
                context=context,
            ),
        )
    except JobportError as exc:
        if isinstance(exc, APIError) and exc.status in (401, 403, 404):
            raise
        found_errors = form_errors(exc)
        for key, reason in list(found_errors.items()):
            if key != "_":
                errors.setdefault(_field_of(key, reason, fields), reason)
        errors["_"] = found_errors["_"]
        status = exc.status if isinstance(exc, APIError) else 422
        return _job_page(
            request, who, found_project, found, status=status, errors=errors, values=values
        )
    return redirect(f"{PREFIX}/runs/{execution.id}", request)
