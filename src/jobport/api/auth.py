"""Authentication and authorisation at the HTTP edge: who calls, and may they."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import HTTPBearer, OAuth2

from jobport import metrics
from jobport.domain.access import KEY_PREFIX, SCOPES, Principal, client_address
from jobport.errors import Unauthenticated
from jobport.services.access import authentication, authorization
from jobport.services.runtime import Runtime

SESSION_COOKIE = "jobport_session"
CSRF_COOKIE = "jobport_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = {"GET", "HEAD", "OPTIONS"}

# Declared for the OpenAPI document (and the "Authorize" button of /docs); the checking is
# ours, in authenticate(), so both schemes never refuse anything themselves.
_api_key = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key string `jpk_...`, or an access token from /connect/token.",
)
_client_credentials = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/connect/token", scopes={s: s for s in SCOPES}
        )
    ),
    scheme_name="clientCredentials",
    auto_error=False,
)


def address_of(request: Request) -> str:
    """The caller's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""
    cached = getattr(request.state, "address", None)
    if cached is not None:
        return str(cached)
    rt: Runtime = request.app.state.runtime
    peer = request.client.host if request.client else None
    address = client_address(
        peer, request.headers.get("x-forwarded-for"), rt.settings.trusted_proxies
    )
    request.state.address = address
    return address


def authenticate(request: Request) -> Principal:
    """The principal behind the request's credential; raises Unauthenticated or Forbidden."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal  # type: ignore[no-any-return]
    rt: Runtime = request.app.state.runtime
    address = address_of(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        # `AppKey <key>` is how Celonis's clients send a key; it means what Bearer does.
        if scheme.lower() not in ("bearer", "appkey") or not value:
            metrics.auth_failure("invalid_credentials")
            raise Unauthenticated(
                "use 'Authorization: Bearer <API key or access token>'",
                code="invalid_credentials",
            )
        if value.startswith(KEY_PREFIX):
            request.state.attempted = value[len(KEY_PREFIX) :].split("_", 1)[0]
            principal = authentication.authenticate_key(rt, value, address)
        else:
            principal = authentication.authenticate_token(rt, value, address)
    elif session := request.cookies.get(SESSION_COOKIE):
        principal = authentication.authenticate_session(
            rt,
            session,
            address,
            unsafe=request.method not in _SAFE,
            csrf=request.headers.get(CSRF_HEADER),
        )
    elif (local := getattr(request.app.state, "local_principal", None)) is not None:
        # Only an app built for --local has one (create_app(local_principal=...), which
        # boot.local_client gives to an in-process client, never to a server): whoever can
        # open the database holds every right already.
        principal = local
    else:
        metrics.auth_failure("missing_credentials")
        raise Unauthenticated(
            "this call needs credentials: 'Authorization: Bearer <API key or access token>' "
            "or a console session",
            code="missing_credentials",
        )
    request.state.principal = principal
    return principal


def allowed(request: Request, scope: str, *, deferred: bool = False) -> Principal:
    """The authenticated caller, holding `scope` (see require()); raises Unauthenticated or
    Forbidden. For routes served without FastAPI's dependencies (api/fastpath.py)."""
    principal = authenticate(request)
    rt: Runtime = request.app.state.runtime
    if deferred:
        if principal.project_ids(scope) == set():
            authorization.check(principal, scope, None)
    else:
        project = request.path_params.get("project")
        request.state.project_id = authorization.authorize(rt, principal, scope, project)
    return principal


def require(scope: str, *, deferred: bool = False) -> Any:
    """A route dependency: the authenticated caller, holding `scope`.

    On a route with a `{project}` path parameter the scope must be held in that project; on
    other routes at the application level. `deferred=True` is for routes whose project is
    only known after a lookup (an execution by id): the dependency checks that the scope is
    held somewhere, and the route calls `authorization.check()` with the project it found.
    Use as a parameter default: `caller: Principal = require("jobs:read")`.
    """

    async def caller(
        request: Request,
        _key: Any = Security(_api_key),
        _token: Any = Security(_client_credentials, scopes=[scope]),
    ) -> Principal:
        return allowed(request, scope, deferred=deferred)

    caller.jobport_scope = scope  # type: ignore[attr-defined]
    return Depends(caller)


def authenticated() -> Any:
    """A route dependency: any authenticated caller (for GET /me and logout)."""

    async def caller(
        request: Request,
        _key: Any = Security(_api_key),
        _token: Any = Security(_client_credentials),
    ) -> Principal:
        return authenticate(request)

    caller.jobport_scope = "authenticated"  # type: ignore[attr-defined]
    return Depends(caller)


def public(reason: str) -> Any:
    """Marks a route as open to anyone (health, login, token): the route table says why."""

    async def caller() -> None:
        return None

    caller.jobport_scope = f"public: {reason}"  # type: ignore[attr-defined]
    return Depends(caller)


def declared_scope(route: Any) -> str | None:
    """The scope a route declared through require/authenticated/public (for tests and docs)."""
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant else []
    while stack:
        dep = stack.pop()
        scope = getattr(dep.call, "jobport_scope", None)
        if scope is not None:
            return str(scope)
        stack.extend(dep.dependencies)
    return None


def route_table(app: Any) -> list[tuple[str, str, str, str | None]]:
    """(method, path, route name, declared scope) for every API route of the app."""
    from fastapi.routing import iter_route_contexts

    rows = []
    for ctx in iter_route_contexts(app.routes):
        if not getattr(ctx, "dependant", None):
            continue
        for method in sorted(ctx.methods or ()):
            if method != "HEAD":
                rows.append((method, ctx.path, ctx.name, declared_scope(ctx)))
    return rows
