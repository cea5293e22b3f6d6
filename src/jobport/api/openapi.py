"""The OpenAPI document, made true: every error an operation can answer, in one shape.

FastAPI documents a route's success and its own 422 (in a shape we never send). `install()`
completes the document once, when it is first asked for, by walking the routes:

- every operation gets the statuses it can answer from what the route declares: 401, 403
  and 429 when it needs credentials, 404 when its path names something, 400 `invalid_json`
  and 413 when it reads a JSON body, 422 always (the input guard refuses NUL characters in
  any path or query); statuses only the route knows (409 from a Conflict, a second success)
  it declares itself with `responses=`;
- every error response refers to one schema, `Error` (the shape of api/errors.py), or to
  `OAuthError` on the token endpoint (RFC 6749's fields plus our `message`);
- models that a route documents but reads itself (`body()`) land in `components`, so every
  `$ref` resolves;
- path parameters get a description and an example; the examples name the project, job,
  schedule and execution that the request body examples create, so the examples form one
  story a reader (or a fuzzer) can follow from top to bottom.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel

from jobport.api.auth import declared_scope
from jobport.domain.executions import Mode
from jobport.domain.jobs import NAME_PATTERN
from jobport.services import jobs as job_service

F = TypeVar("F", bound=Callable[..., Any])

REF = "#/components/schemas/"

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every HTTP error of the API has this shape.",
    "properties": {
        "error": {
            "type": "string",
            "description": "A stable code to branch on, e.g. `job_not_found`, `invalid_json`.",
        },
        "message": {"type": "string", "description": "What went wrong, for people."},
        "details": {
            "description": "More about it, or null; for bad input a list of "
            "`{field, reason}`, one per problem."
        },
    },
    "required": ["error", "message", "details"],
    "additionalProperties": False,
}

OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OAuthError",
    "type": "object",
    "description": "An error of the token endpoint: RFC 6749's `error` and "
    "`error_description`, and `message` as everywhere else.",
    "properties": {
        "error": {
            "type": "string",
            "description": "e.g. `invalid_client`, `unsupported_grant_type`, `invalid_scope`",
        },
        "error_description": {"type": "string"},
        "message": {"type": "string"},
        "reason": {"type": "string", "description": "why the client was refused, when it was"},
    },
    "required": ["error", "error_description", "message"],
    "additionalProperties": False,
}

# What each status means wherever the walk adds it; a route's own description wins.
STATUS_TEXT: dict[int, str] = {
    400: "The body is not valid JSON (`invalid_json`): not UTF-8, NaN or Infinity, or "
    "nested too deep.",
    401: "No credentials, or credentials that are not valid (`WWW-Authenticate` says why).",
    403: "The credentials do not hold the scope this needs here, or the key's firewall "
    "refuses the caller's address.",
    404: "Something the path names does not exist (or the caller may not see it).",
    413: "The body is larger than the server's limit (`payload_too_large`).",
    422: "Invalid input: `details` names each field and why. A NUL character or a lone "
    "surrogate in the path, the query or the body is refused the same way.",
    429: "Too many failed attempts from this address or for this client; `Retry-After` "
    "says when to try again.",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with (`Bearer`; `Basic` at the token "
            "endpoint), and why a credential that was given is refused.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the next attempt may succeed.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

# Path parameters, by name: what they are, and an example. The examples are what the body
# examples create (project `example`, its job `hello` with schedule `nightly`, run
# `example-run`, role `operators`), so the examples form one story from top to bottom.
PATH_PARAMETERS: dict[str, tuple[str, str | None]] = {
    "project": ("A project's id or name.", "example"),
    "job": ("A job's id or name, within the project.", "hello"),
    # No example job has a known id: this one names none (404), as a script's stale id would.
    "job_id": (
        "A job's id (its `id`), unique across projects.",
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
    ),
    "name": ("The schedule's name, unique within its job.", "nightly"),
    "execution_id": ("An execution's id: the server's, or the `executionId` given.", "example-run"),
    "role": ("A role's name.", "operators"),
    "member_type": ("What kind of member: `apiKey` or `user`.", "user"),
    "member_id": ("The member: an API key's client id, or a username.", "admin"),
    "client_id": ("An API key's client id (the part after `jpk_`).", None),
    "username": ("A console user's name.", "admin"),
    "connection": ("A connection's id or name, within the project.", "warehouse"),
}
TOKEN_PATHS = ("/connect/token", "/oauth/token")

# A DELETE example names something else, so that following the examples does not remove
# what the other examples use.
DELETED_EXAMPLE = "retired"

# services/executions.py's rule for a caller's executionId.
EXECUTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$"

# Constraints of models this module does not own (api/v1/wire.py, domain/), stated for the
# reader and the fuzzer; the services check them, with their own error codes.
OVERLAYS: dict[str, dict[str, dict[str, Any]]] = {
    "ProjectCreate": {"name": {"pattern": NAME_PATTERN}},
    "ProjectPatch": {"name": {"pattern": NAME_PATTERN}},
    "ExecuteRequest": {
        "mode": {"enum": [m.value for m in Mode]},
        "executionId": {"pattern": EXECUTION_ID_PATTERN},
    },
    "FirewallRule": {
        "startIp": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
        "endIp": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    },
    "Step": {
        "kind": {
            "enum": job_service.step_kinds_known(),
            "description": "`command`: config `{command: string or [argv...], env, cwd}`; "
            "`python`: config `{callable: 'module:function', kwargs}`.",
        }
    },
}

_documented_models: dict[str, type[BaseModel]] = {}
_BODY_ATTRIBUTE = "__jobport_openapi_body__"


def component(model: type[BaseModel]) -> dict[str, str]:
    """A `$ref` to `model`'s schema, which the document will carry in its components."""
    _documented_models[model.__name__] = model
    return {"$ref": REF + model.__name__}


def body(model: type[BaseModel], examples: dict[str, Any] | None = None) -> Callable[[F], F]:
    """Decorate a route that reads its body itself (to give its own error codes): the
    document shows `model` as the body, with `examples` ({name: {summary, value}})."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _BODY_ATTRIBUTE, (component(model), examples or {}))
        return endpoint

    return mark


def example(summary: str, value: Any) -> dict[str, Any]:
    """One named example of a body, as `Body(openapi_examples=...)` takes them."""
    return {"summary": summary, "value": value}


def install(app: FastAPI) -> None:
    """Complete `app`'s document on its first build (FastAPI caches it after that)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(build(), app.routes)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """Add error statuses, schemas and examples to a FastAPI-built document, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = copy.deepcopy(ERROR_SCHEMA)
    schemas["OAuthError"] = copy.deepcopy(OAUTH_ERROR_SCHEMA)
    for route, method, operation in _operations(document, routes):
        _document_body(route, operation)
        _document_path_parameters(method, operation)
        _document_responses(route, operation)
    for name, model in _documented_models.items():
        _add_model(schemas, name, model)
    for name, properties in OVERLAYS.items():
        _overlay(schemas, name, properties)
    _require_grant_type(document)
    # FastAPI's own 422 shape is gone from every operation: drop it if nothing uses it.
    for name in ("HTTPValidationError", "ValidationError"):  # in this order: one uses the other
        if REF + name not in set(references(document)):
            schemas.pop(name, None)
    return document


def _operations(
    document: dict[str, Any], routes: list[Any]
) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    paths = document.get("paths", {})
    for route in iter_route_contexts(routes):
        if not getattr(route, "dependant", None) or not getattr(route, "include_in_schema", True):
            continue
        for method in sorted(route.methods or ()):
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                yield route, method, operation


def _document_body(route: Any, operation: dict[str, Any]) -> None:
    declared = getattr(route.endpoint, _BODY_ATTRIBUTE, None)
    if declared is None:
        return
    schema, examples = declared
    media: dict[str, Any] = {"schema": dict(schema)}
    if examples:
        media["examples"] = copy.deepcopy(examples)
    operation["requestBody"] = {"content": {"application/json": media}, "required": True}


def _document_path_parameters(method: str, operation: dict[str, Any]) -> None:
    in_path = [p for p in operation.get("parameters", []) if p.get("in") == "path"]
    for index, parameter in enumerate(in_path):
        description, example_ = PATH_PARAMETERS.get(parameter["name"], (None, None))
        if description and "description" not in parameter:
            parameter["description"] = description
        if method == "DELETE" and index == len(in_path) - 1 and example_ is not None:
            example_ = DELETED_EXAMPLE
        if example_ is not None:
            parameter["example"] = example_
        if parameter["name"] == "member_type":
            parameter["schema"] = {**parameter["schema"], "enum": ["apiKey", "user"]}


def _document_responses(route: Any, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    oauth = _is_token_endpoint(route)
    for status in sorted(_statuses(route, operation, oauth=oauth)):
        shape = "OAuthError" if oauth and status in {400, 401, 403, 429} else "Error"
        response = responses.setdefault(str(status), {})
        if response.get("description", "Validation Error") == "Validation Error":
            response["description"] = STATUS_TEXT.get(status, "")  # FastAPI's says nothing
        response["content"] = {"application/json": {"schema": {"$ref": REF + shape}}}
    # Errors a route declared by hand (`responses=`, e.g. 409) have the shape too.
    for status, response in responses.items():
        if status[0] in "45" and not _schema_of(response):
            response["content"] = {"application/json": {"schema": {"$ref": REF + "Error"}}}
        if status.isdigit() and int(status) in _HEADERS:
            response.setdefault("headers", copy.deepcopy(_HEADERS[int(status)]))
    _share_success_content(responses)


def _statuses(route: Any, operation: dict[str, Any], *, oauth: bool) -> set[int]:
    statuses = {422}
    scope = declared_scope(route) or ""
    if scope and not scope.startswith("public"):
        statuses |= {401, 403, 429}
    if route.dependant.path_params:
        statuses.add(404)
    content = operation.get("requestBody", {}).get("content", {})
    if content:
        statuses.add(413)
    if any(_is_json(media) for media in content):
        statuses.add(400)
    if oauth:
        # The token endpoint (public) answers bad clients itself, RFC 6749's way (api/oauth.py).
        statuses |= {400, 401, 403, 429}
    return statuses


def _is_token_endpoint(route: Any) -> bool:
    return route.path_format in TOKEN_PATHS


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _share_success_content(responses: dict[str, Any]) -> None:
    """A second success a route declared by hand (200 besides 202) has the content of the
    first, which is the same rendering with another status."""
    successes = [s for s in responses if s.startswith("2") and s != "204"]
    content = next((responses[s]["content"] for s in successes if "content" in responses[s]), None)
    if content is None:
        return
    for status in successes:
        responses[status].setdefault("content", copy.deepcopy(content))


def _add_model(schemas: dict[str, Any], name: str, model: type[BaseModel]) -> None:
    schema = model.model_json_schema(by_alias=True, ref_template=REF + "{model}")
    for def_name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(def_name, definition)
    schemas.setdefault(name, schema)


def _overlay(schemas: dict[str, Any], name: str, properties: dict[str, dict[str, Any]]) -> None:
    if name not in schemas:
        raise LookupError(f"OpenAPI overlay names schema {name!r}, which the document lacks")
    for prop, extra in properties.items():
        target = schemas[name].get("properties", {}).get(prop)
        if target is None:
            raise LookupError(f"OpenAPI overlay names {name}.{prop}, which the schema lacks")
        # On a nullable property the constraint belongs to the non-null branch.
        branches = [b for b in target.get("anyOf", []) if b.get("type") != "null"]
        for branch in branches or [target]:
            branch.update(copy.deepcopy(extra))


def _require_grant_type(document: dict[str, Any]) -> None:
    """The token endpoint's form (api/oauth.py) takes its fields as optional, to answer a
    missing one RFC 6749's way (400); the protocol requires `grant_type`, and knows one."""
    for path in TOKEN_PATHS:
        operation = document["paths"].get(path, {}).get("post")
        if operation is None:
            continue
        ref = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        form = resolve(document, ref["$ref"])
        form["properties"]["grant_type"] = {
            "type": "string",
            "enum": ["client_credentials"],
            "title": "Grant Type",
        }
        form["required"] = sorted({*form.get("required", []), "grant_type"})
        operation["requestBody"]["required"] = True


def _schema_of(response: dict[str, Any]) -> dict[str, Any]:
    return response.get("content", {}).get("application/json", {}).get("schema") or {}


def references(document: dict[str, Any]) -> Iterator[str]:
    """Every `$ref` in the document (for tests: each must resolve)."""
    stack: list[Any] = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str):
                yield ref
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The value a local `$ref` points at; raises LookupError if it points nowhere."""
    if not ref.startswith("#/"):
        raise LookupError(f"not a local reference: {ref}")
    value: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(value, dict) or part not in value:
            raise LookupError(f"{ref} points nowhere")
        value = value[part]
    return value
