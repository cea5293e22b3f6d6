"""InfoLink's job API (executeJob.jsp, getJobStatus.jsp, stopJob.jsp, oauth2/token) on jobport.

An InfoLink app is a project and a scenario is a job, each named by id or name; an InfoLink
job is an execution, and a caller's `jobId` is its `executionId` (the same id is the same
run). The caller is an API key (`apiKey` in the body or the query), or the bearer of an
access token from `/api/v1/oauth2/token` (a key's, or a console user's by the password
grant), holding the same scopes as on the native API in the app's project. Every answer is
InfoLink's `{"status": "success" | "error", "result": ...}`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from jobport.api import errors
from jobport.api.auth import address_of, authenticate, public
from jobport.api.oauth import basic_credentials
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.domain.access import KEY_PREFIX, Principal
from jobport.domain.executions import Execution, StartRequest, Status, Trigger, infer_schema
from jobport.errors import BadRequest, Conflict, NotFound, Unauthenticated
from jobport.services import audit, starts
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services import projects as project_service
from jobport.services.access import authentication, authorization
from jobport.services.runtime import Runtime

EXECUTE, STATUS, STOP, TOKEN = (
    "/api/v1/executeJob.jsp",
    "/api/v1/getJobStatus.jsp",
    "/api/v1/stopJob.jsp",
    "/api/v1/oauth2/token",
)
router = APIRouter(tags=["infolink"], include_in_schema=False)

# getJobStatus's words. InfoLink documents completed, completedWithError and stopped; it
# names no word for a job still going, so jobport says `running` (queued or running) and
# `stopping` (a stop asked for, not yet done).
_STATUS_WORDS = {
    Status.QUEUED: "running",
    Status.RUNNING: "running",
    Status.CANCELLING: "stopping",
    Status.SUCCEEDED: "completed",
    Status.FAILED: "completedWithError",
    Status.TIMED_OUT: "completedWithError",
    Status.CANCELLED: "stopped",
}
# A standard type for each type name domain.executions.infer_schema gives.
_INFERRED_STANDARD = {"string": "text", "number": "float", "object": "json", "array": "json"}


def shape(refusal: errors.Refusal) -> tuple[int, Any]:
    """InfoLink's error answer; a request that does not validate (422) is InfoLink's 400."""
    status = 400 if refusal.status == 422 else refusal.status
    message = refusal.message or refusal.code.replace("_", " ")
    return status, {"status": "error", "result": {"message": message, "code": refusal.code}}


errors.face((EXECUTE, STATUS, STOP, TOKEN), shape)


def _success(result: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": "success", "result": result})


# --- who calls ----------------------------------------------------------------------------


async def _body_key(request: Request) -> str | None:
    """`apiKey` of a JSON body (FastAPI has read and kept the body before any dependency)."""
    if request.method != "POST":
        return None
    try:
        body = await request.json()
    except ValueError:
        return None  # the route's own validation says what is wrong with it
    key = body.get("apiKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


def _principal(rt: Runtime, request: Request, api_key: str | None) -> Principal:
    address = address_of(request)
    if api_key is not None:
        if api_key.startswith(KEY_PREFIX):  # the audit names the client id, never more
            request.state.attempted = api_key[len(KEY_PREFIX) :].split("_", 1)[0]
        return authentication.authenticate_key(rt, api_key, address)
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value and not value.startswith(KEY_PREFIX):
        # A key's token or a user's (password grant): the native API knows only the first.
        return authentication.authenticate_bearer(rt, value, address)
    if scheme:
        return authenticate(request)  # a key string as bearer
    # No console session: stopJob.jsp changes state on a GET, which a session's CSRF check
    # (for unsafe methods only) does not cover, and InfoLink's clients never have one.
    raise Unauthenticated(
        "send apiKey in the JSON body (POST) or the query (GET), or "
        "'Authorization: Bearer <access token>' from POST /api/v1/oauth2/token",
        code="missing_credentials",
    )


def _caller(scope: str) -> Any:
    """A route dependency: the authenticated caller, holding `scope` somewhere. The route
    checks it in the app's project once it knows it (as require(scope, deferred=True))."""

    async def caller(
        request: Request,
        api_key: Annotated[str | None, Query(alias="apiKey", max_length=500)] = None,
    ) -> Principal:
        rt: Runtime = request.app.state.runtime
        principal = _principal(rt, request, api_key or await _body_key(request))
        request.state.principal = principal
        if principal.project_ids(scope) == set():
            authorization.check(principal, scope, None)
        return principal

    caller.jobport_scope = scope  # type: ignore[attr-defined]
    return Depends(caller)


def _project_id(rt: Runtime, request: Request, caller: Principal, scope: str, app_id: str) -> str:
    """The app's project id, once the caller is known to hold `scope` in it."""
    authorization.authorize(rt, caller, scope, app_id)
    try:
        project_id = project_service.get(rt, app_id).id
    except NotFound as exc:
        raise NotFound(f"no app {app_id!r}", code=exc.code) from None
    request.state.project_id = project_id
    return project_id


def _execution(rt: Runtime, project_id: str, app_id: str, job_id: str) -> Execution:
    try:
        execution = execution_service.get(rt, job_id)
    except NotFound:
        execution = None
    if execution is None or execution.project_id != project_id:
        raise NotFound(f"no job {job_id!r} in app {app_id!r}", code="execution_not_found")
    return execution


# --- results --------------------------------------------------------------------------------


def _column(column: dict[str, Any]) -> dict[str, Any]:
    """A schema entry in InfoLink's shape: the database's own type (`type`) and the
    standard one (`typeStandard`). A sql step's column carries its driver type
    (`nativeType`); an inferred column only its standard type."""
    native = column.get("nativeType")
    standard = str(column.get("type") or "text")
    if native is None:
        standard = _INFERRED_STANDARD.get(standard, standard)
        native = standard
    native = str(native)
    precision, scale = column.get("precision"), column.get("scale")
    return {
        "name": column.get("name"),
        "updateable": False,
        "type": {
            "name": native.split("(", 1)[0].strip(),
            "typeStr": native,
            "precision": precision if isinstance(precision, int) else -1,
            "scale": scale if isinstance(scale, int) else 0,
        },
        "typeStandard": {"name": standard, "typeStr": standard},
    }


def _records(result: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(schema, records) of an execution's result: a result with records as it is (the sql
    step's typed schema, or the one inferred for a step's list of objects); any other value
    becomes records with an inferred schema."""
    if isinstance(result, dict) and isinstance(result.get("records"), list):
        records = [r if isinstance(r, dict) else {"value": r} for r in result["records"]]
        schema = result.get("schema")
        typed = isinstance(schema, list) and all(isinstance(c, dict) for c in schema)
        return (schema if typed else infer_schema(records)), records
    if result is None:
        records = []
    elif isinstance(result, dict):
        records = [result]
    elif isinstance(result, list):
        records = [r if isinstance(r, dict) else {"value": r} for r in result]
    else:
        records = [{"value": result}]
    return infer_schema(records), records


def _result_step(rt: Runtime, execution: Execution) -> str | None:
    """The step that gave the run its result: the one marked `result`, else the last."""
    names = [s.get("name") for s in execution.steps]
    try:
        definition = job_service.get(rt, execution.project_id, execution.job_id).definition
        marked = [s.get("name") for s in definition.get("steps", []) if s.get("result")]
    except NotFound:  # the job is gone; its run stays
        marked = []
    if marked and marked[0] in names:
        return str(marked[0])
    return str(names[-1]) if names else None


def _results(rt: Runtime, execution: Execution, with_schema: bool) -> list[dict[str, Any]]:
    schema, records = _records(execution.result)
    result: dict[str, Any] = {"schema": [_column(c) for c in schema]} if with_schema else {}
    result["records"] = records
    return [{"name": _result_step(rt, execution), "result": result}]


def _error_message(execution: Execution) -> str:
    error = execution.error
    return (error.message if error and error.message else None) or (
        f"the job ended {execution.status.value}"
    )


def _status(rt: Runtime, execution: Execution) -> dict[str, Any]:
    word = _STATUS_WORDS[execution.status]
    out: dict[str, Any] = {"status": word, "jobId": execution.id}
    if word == "completed":
        out["results"] = _results(rt, execution, True)
    elif word == "completedWithError":
        out["message"] = _error_message(execution)
    return out


# --- the calls ------------------------------------------------------------------------------


class _Body(BaseModel):
    """A request body in InfoLink's camelCase names; fields it may add are ignored."""

    model_config = ConfigDict(extra="ignore")


class RunScenario(_Body):
    scenario: str = Field(min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)


class Operation(_Body):
    opName: Literal["RunScenario"]
    opParams: RunScenario


class ExecuteJob(_Body):
    apiKey: str | None = Field(default=None, max_length=500)
    # Strict: a boolean or a float is no app id (lax mode made true the app named "1").
    appId: Annotated[StrictStr, Field(min_length=1, max_length=200)] | StrictInt = Field(
        union_mode="left_to_right"
    )
    operation: Operation
    isAsync: bool = True
    noResultSchema: bool = False
    jobId: str | None = Field(default=None, max_length=200)


async def execute_job(
    request: Request,
    body: ExecuteJob,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = _caller("jobs:execute"),
) -> JSONResponse:
    app_id = str(body.appId)
    _project_id(rt, request, caller, "jobs:execute", app_id)
    op = body.operation.opParams
    start_request = StartRequest(
        parameters=op.parameters,
        execution_id=body.jobId,
        trigger=Trigger.API,
        principal=caller.label,
    )
    try:
        execution, _created = await starts.start(rt, app_id, op.scenario, start_request)
    except NotFound as exc:
        if exc.code != "job_not_found":
            raise
        raise NotFound(f"no scenario {op.scenario!r} in app {app_id!r}", code=exc.code) from None
    if body.isAsync:
        return _success({"jobId": execution.id})
    execution = await execution_service.wait(rt, execution.id, rt.settings.max_wait_seconds)
    if not execution.status.is_final:
        still = {
            "message": f"job {execution.id} is still running after "
            f"{rt.settings.max_wait_seconds:g} s; poll "
            "/api/v1/getJobStatus.jsp with this jobId",
            "code": "still_running",
            "jobId": execution.id,
        }
        return JSONResponse({"status": "error", "result": still}, status_code=504)
    if execution.status != Status.SUCCEEDED:
        # The call worked and the job did not: InfoLink says so in its status, not in HTTP.
        outcome = _status(rt, execution)
        outcome.setdefault("message", f"job {execution.id} was stopped")
        return JSONResponse({"status": "error", "result": outcome})
    return _success({"results": _results(rt, execution, not body.noResultSchema)})


_AppId = Annotated[str, Query(alias="appId", min_length=1, max_length=200)]
_JobId = Annotated[str, Query(alias="jobId", min_length=1, max_length=200)]


async def get_job_status(
    request: Request,
    app_id: _AppId,
    job_id: _JobId,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = _caller("executions:read"),
) -> JSONResponse:
    project_id = _project_id(rt, request, caller, "executions:read", app_id)
    execution = _execution(rt, project_id, app_id, job_id)
    return _success(_status(rt, execution))


async def stop_job(
    request: Request,
    app_id: _AppId,
    job_id: _JobId,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = _caller("executions:cancel"),
) -> JSONResponse:
    project_id = _project_id(rt, request, caller, "executions:cancel", app_id)
    execution = _execution(rt, project_id, app_id, job_id)
    if execution.status.is_final:
        return _success({"status": "already completed"})
    if execution.status == Status.CANCELLING:
        return _success({"status": "already being stopped"})
    try:
        await asyncio.to_thread(execution_service.cancel, rt, execution.id)
    except Conflict:  # it ended between the read and the stop
        return _success({"status": "already completed"})
    # InfoLink stops with a GET, which the audit trail (writes by method) does not record.
    audit.record(
        rt,
        audit.entry(
            action="infolink_stop_job",
            outcome="ok",
            principal=caller.label,
            address=caller.address,
            target=f"GET {STOP}",
            project_id=project_id,
            status=200,
            details={"executionId": execution.id},
        ),
    )
    return _success({"status": "stop started"})


def _token_answer(pair: authentication.TokenPair) -> JSONResponse:
    return JSONResponse(
        {
            "access_token": pair.access.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "Bearer",
            "expires_in": pair.access.expires_in,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


_FormText = Annotated[str | None, Form(max_length=1000)]


async def token(
    request: Request,
    grant_type: _FormText = None,
    client_id: _FormText = None,
    client_secret: _FormText = None,
    username: _FormText = None,
    password: _FormText = None,
    refresh_token: Annotated[str | None, Form(max_length=4000)] = None,
    scope: _FormText = None,
    rt: Runtime = Depends(wire.runtime),
    _: None = public("the token endpoint is where a key or a user gets a token"),
) -> JSONResponse:
    address = address_of(request)
    basic = basic_credentials(request.headers.get("authorization"))
    if basic is not None:
        client_id, client_secret = basic
    if grant_type == "client_credentials":
        if not client_id or not client_secret:
            raise Unauthenticated(
                "the client_credentials grant needs client_id and client_secret (an API "
                "key's client id and secret)",
                code="missing_credentials",
            )
        request.state.attempted = client_id
        pair = authentication.issue_token_pair(rt, client_id, client_secret, scope, address)
    elif grant_type == "password":
        if not username or not password:
            raise BadRequest("the password grant needs username and password", code="invalid_grant")
        if client_id or client_secret:
            # InfoLink sends its client too: when it does, it must be a key that is valid.
            authentication.issue_token(rt, client_id or "", client_secret or "", None, address)
        request.state.attempted = f"user:{username[:200]}"
        pair = authentication.issue_user_tokens(rt, username, password, address)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise BadRequest("the refresh_token grant needs refresh_token", code="invalid_grant")
        pair = authentication.refresh_token_pair(rt, refresh_token, address)
    else:
        raise BadRequest(
            "grant_type must be client_credentials, password or refresh_token",
            code="unsupported_grant_type",
        )
    return _token_answer(pair)


router.add_api_route(EXECUTE, execute_job, methods=["POST"], name="infolink_execute_job")
router.add_api_route(STATUS, get_job_status, methods=["GET"], name="infolink_get_job_status")
router.add_api_route(STOP, stop_job, methods=["GET"], name="infolink_stop_job")
router.add_api_route(TOKEN, token, methods=["POST"], name="infolink_token")
