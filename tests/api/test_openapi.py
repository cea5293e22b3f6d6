"""The OpenAPI document does not lie: every reference resolves, every operation lists the
errors it can answer in the one error shape, every body is a model, and the examples work
when followed. (OPTIONS and 405 naming every method: test_allowed_methods.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from api.openapi_examples import follow_the_examples
from conftest import Server
from jobport.api import openapi
from jobport.api.app import create_app
from jobport.api.auth import route_table
from jobport.api.errors import shaper_for
from jobport.settings import Settings

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Routes that can raise Conflict (409): only the route knows, so each declares it.
CONFLICTS = {
    ("POST", "/api/v1/projects"),
    ("PATCH", "/api/v1/projects/{project}"),
    ("DELETE", "/api/v1/projects/{project}"),
    ("POST", "/api/v1/projects/{project}/jobs"),
    ("PATCH", "/api/v1/projects/{project}/jobs/{job}"),
    ("DELETE", "/api/v1/projects/{project}/jobs/{job}"),
    ("POST", "/api/v1/projects/{project}/jobs/{job}/execute"),
    ("POST", "/api/v1/executions/{execution_id}/cancel"),
    ("GET", "/api/v1/executions/{execution_id}/result"),
    ("PUT", "/api/v1/projects/{project}/jobs/{job}/schedules/{name}"),
    ("POST", "/api/v1/projects/{project}/jobs/{job}/schedules/{name}/trigger"),
    ("POST", "/api/v1/projects/{project}/jobs/{job}/schedules/{name}/backfill"),
    ("POST", "/api/v1/keys"),
    ("PATCH", "/api/v1/keys/{client_id}"),
    ("POST", "/api/v1/roles"),
    ("PATCH", "/api/v1/roles/{role}"),
    ("DELETE", "/api/v1/roles/{role}"),
    ("POST", "/api/v1/projects/{project}/roles"),
    ("PATCH", "/api/v1/projects/{project}/roles/{role}"),
    ("DELETE", "/api/v1/projects/{project}/roles/{role}"),
}
TOKEN_PATHS = {"/connect/token", "/oauth/token"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # The document needs no running server: the app is built, never started.
    database = tmp_path_factory.mktemp("openapi") / "jobport.db"
    return create_app(Settings(database_url=f"sqlite:///{database}"))


@pytest.fixture(scope="module")
def document(app: Any) -> dict[str, Any]:
    return app.openapi()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def schema_at(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi.resolve(document, schema["$ref"])
    return schema


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(openapi.references(document))
    assert refs, "the document has no references at all"
    dangling = []
    for ref in sorted(refs):
        try:
            openapi.resolve(document, ref)
        except LookupError as exc:
            dangling.append(str(exc))
    assert dangling == []
    assert not any("$defs" in ref for ref in refs)


def test_fastapis_own_error_shape_is_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error = schemas["Error"]
    assert set(error["required"]) == {"error", "message", "details"}
    assert error["additionalProperties"] is False


def test_every_error_status_has_the_error_schema(document: dict[str, Any]) -> None:
    wrong = []
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            oauth = path in TOKEN_PATHS and status in {"400", "401", "403", "429"}
            expected = openapi.REF + ("OAuthError" if oauth else "Error")
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": expected} or not response.get("description"):
                wrong.append((method, path, status, schema))
    assert wrong == []


def test_each_operation_lists_the_errors_it_can_answer(app: Any, document: dict[str, Any]) -> None:
    missing = []
    # Pages, not API: the console (and / and /login, which lead to it) is left out on purpose.
    pages = {
        c.path
        for c in iter_route_contexts(app.routes)
        if getattr(c, "include_in_schema", True) is False
    }
    for method, path, _name, scope in route_table(app):
        if shaper_for(path) is not None:
            continue  # another product's face: its contract is that vendor's documentation
        if path in pages and (path in ("/", "/login") or path.startswith("/console")):
            continue
        operation = document["paths"][path][method.lower()]
        statuses = {int(s) for s in operation["responses"]}
        expected = {422}
        if scope and not scope.startswith("public"):
            expected |= {401, 403, 429}
        if "{" in path:
            expected.add(404)
        content = operation.get("requestBody", {}).get("content", {})
        if content:
            expected.add(413)
        if "application/json" in content:
            expected.add(400)
        if (method, path) in CONFLICTS:
            expected.add(409)
        if path in TOKEN_PATHS:
            expected |= {400, 401, 403, 429}
        if expected - statuses:
            missing.append((method, path, sorted(expected - statuses)))
    assert missing == []
    login = document["paths"]["/api/v1/session"]["post"]["responses"]
    assert {"401", "429"} <= set(login)


def test_refusals_name_their_headers(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], (method, path)


def test_no_request_body_is_a_free_form_object(document: dict[str, Any]) -> None:
    free = []
    for method, path, operation in operations(document):
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            schema = schema_at(document, content["schema"])
            # An optional body is `anyOf: [model, null]`: the model is what counts.
            branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
            for branch in branches:
                model = schema_at(document, branch)
                # A form's fields are its properties; a JSON body must also refuse others.
                form = media == "application/x-www-form-urlencoded"
                closed = form or model.get("additionalProperties") is False
                if not (model.get("properties") and closed):
                    free.append((method, path, media, model))
    assert free == []


def test_stated_rules_are_the_services_rules() -> None:
    # openapi.py restates rules of modules it does not own; they must not drift apart.
    from jobport.services import executions

    assert executions._CALLER_ID.pattern == openapi.EXECUTION_ID_PATTERN


def test_every_path_parameter_is_described_with_an_example(document: dict[str, Any]) -> None:
    undescribed = [
        (method, path, parameter["name"])
        for method, path, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and not parameter.get("description")
    ]
    assert undescribed == []
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] != "client_id":
                assert "example" in parameter, (method, path, parameter["name"])


def test_every_json_body_has_an_example(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        media = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if media is not None:
            assert media.get("examples"), (method, path)


def test_following_the_examples_makes_a_job_and_runs_it(server: Server) -> None:
    with server.client() as api:
        document = api.get("/openapi.json").json()
        run = follow_the_examples(api, document)
        assert run["status"] == "succeeded", run
        assert api.get(f"/api/v1/executions/{run['id']}/result").status_code == 200
        schedule = api.get("/api/v1/projects/example/jobs/hello/schedules/nightly")
        assert schedule.status_code == 200
        role = api.get("/api/v1/roles/operators").json()
        assert {"type": "user", "id": "admin"} in role["members"]
