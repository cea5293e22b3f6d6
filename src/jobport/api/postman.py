"""The REST API as a Postman collection (v2.1), made from the app's own OpenAPI document:
GET /api/v1/postman.json, and `jobport postman`.

It is set up the way Loome's collection is: variables for the base URL, the key's client id
and secret, and a job id; a collection-level pre-request script that gets an access token
from /connect/token (client credentials, `scope=webApi`) and keeps it until shortly before
it expires; and a first folder, "Integrate", with the requests of Loome's documentation
(Run Job, Check Job Status, Get Schedules, Add or Update Schedule, Delete Schedule). The
other folders hold every operation of the document, one folder per tag.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request

from jobport.api.auth import public
from jobport.api.responses import JSONResponse

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
_METHODS = ("get", "put", "post", "delete", "patch")

# Path parameters -> the collection variable that fills them. A job is named by its id
# everywhere (the project routes take an id as well as a name), so one variable serves both.
PATH_VARIABLES = {
    "project": "projectId",
    "job": "jobId",
    "job_id": "jobId",
    "name": "scheduleName",
    "execution_id": "executionId",
    "connection": "connectionName",
    "role": "roleName",
    "member_type": "memberType",
    "member_id": "memberId",
    "client_id": "keyClientId",  # a key to manage; `clientId` is the caller's own
    "username": "username",
}
# Loome's requests, by the names its documentation gives them, in its order.
LOOME_FLOW = [
    ("POST", "/api/v1/jobs/{job_id}/execute", "Run Job"),
    ("GET", "/api/v1/jobs/{job_id}", "Check Job Status"),
    ("GET", "/api/v1/jobs/{job_id}/schedules", "Get Schedules"),
    ("POST", "/api/v1/jobs/{job_id}/schedules", "Add or Update Schedule"),
    ("DELETE", "/api/v1/jobs/{job_id}/schedules/{name}", "Delete Schedule"),
]

PRE_REQUEST = """\
// Gets an access token for {{clientId}} and {{clientSecret}} from {{baseUrl}}/connect/token
// (client credentials, scope webApi: the key's own rights) and keeps it in {{accessToken}}
// until a minute before {{accessTokenExpiry}}; every request sends it as a Bearer token.
const isTokenRequest = /\\/(connect|oauth)\\/token$/.test(pm.request.url.getPath());
const clientId = pm.variables.get('clientId');
const clientSecret = pm.variables.get('clientSecret');
const token = pm.collectionVariables.get('accessToken');
const expiry = Number(pm.collectionVariables.get('accessTokenExpiry') || 0);
if (!isTokenRequest && clientId && clientSecret && (!token || Date.now() > expiry - 60000)) {
  pm.sendRequest({
    url: pm.variables.replaceIn('{{baseUrl}}') + '/connect/token',
    method: 'POST',
    header: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: {
      mode: 'urlencoded',
      urlencoded: [
        { key: 'grant_type', value: 'client_credentials' },
        { key: 'client_id', value: clientId },
        { key: 'client_secret', value: clientSecret },
        { key: 'scope', value: 'webApi' }
      ]
    }
  }, (error, response) => {
    if (error || response.code !== 200) {
      console.error('jobport: no access token', error || response.text());
      return;
    }
    const answer = response.json();
    pm.collectionVariables.set('accessToken', answer.access_token);
    pm.collectionVariables.set('accessTokenExpiry', String(Date.now() + answer.expires_in * 1000));
  });
}
"""

_DESCRIPTION = """\
jobport's REST API, made from its OpenAPI document ({base}/openapi.json).

Set `clientId` and `clientSecret` to an API key's (`jpk_<clientId>_<secret>`: the part \
after the second `_` is the secret) and `jobId` to a job's `id`. Every request then gets \
its token by itself: the collection's pre-request script asks /connect/token for one \
(`scope=webApi`: the key's own rights) and keeps it until shortly before it expires. \
The key's roles decide what it may do: 403 means a missing right, 401 a key that is \
wrong, expired or deleted.

"Integrate" holds Loome's documented requests; the other folders every operation, by tag.
"""


def collection(document: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The Postman collection (v2.1) of every operation in `document`, aimed at `base_url`."""
    examples = _path_examples(document)
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for path, method, operation in _operations(document):
        tag = (operation.get("tags") or ["other"])[0]
        by_tag.setdefault(tag, []).append(_item(path, method, operation))
    loome = [
        _item(path, method.lower(), document["paths"][path][method.lower()], name=name)
        for method, path, name in LOOME_FLOW
        if method.lower() in document["paths"].get(path, {})
    ]
    title = str(document.get("info", {}).get("title", "jobport"))
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, base_url + "/api/v1/postman.json")),
            "name": title,
            "description": _DESCRIPTION.format(base=base_url),
            "version": str(document.get("info", {}).get("version", "")),
            "schema": SCHEMA,
        },
        "item": [
            {"name": "Integrate", "description": "Loome's requests, by job id.", "item": loome},
            *({"name": tag, "item": items} for tag, items in by_tag.items()),
        ],
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "{{accessToken}}", "type": "string"}],
        },
        "event": [
            {
                "listen": "prerequest",
                "script": {"type": "text/javascript", "exec": PRE_REQUEST.splitlines()},
            }
        ],
        "variable": _variables(base_url, examples),
    }


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, entry in document.get("paths", {}).items()
        for method, operation in entry.items()
        if method in _METHODS
    ]


def _path_examples(document: dict[str, Any]) -> dict[str, str]:
    """Each variable's starting value: the first example of a path parameter it fills."""
    found: dict[str, str] = {}
    for _, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            variable = PATH_VARIABLES.get(parameter["name"], parameter["name"])
            if parameter["in"] == "path" and "example" in parameter and method != "delete":
                found.setdefault(variable, str(parameter["example"]))
    return found


def _variables(base_url: str, examples: dict[str, str]) -> list[dict[str, Any]]:
    own = {
        "baseUrl": (base_url, "The server, without a trailing /."),
        "clientId": ("", "The API key's client id (jpk_<clientId>_<secret>)."),
        "clientSecret": ("", "The API key's secret."),
        "jobId": ("", "A job's id (the `id` of its JSON)."),
        "accessToken": ("", "Set by the pre-request script."),
        "accessTokenExpiry": ("0", "When accessToken expires (ms since 1970); set by the script."),
    }
    variables = [
        {"key": key, "value": value, "type": "string", "description": text}
        for key, (value, text) in own.items()
    ]
    for name in sorted(set(PATH_VARIABLES.values()) - own.keys()):
        variables.append({"key": name, "value": examples.get(name, ""), "type": "string"})
    return variables


def _item(
    path: str, method: str, operation: dict[str, Any], *, name: str | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": _headers(operation),
        "url": _url(path, operation),
        "description": operation.get("description") or operation.get("summary", ""),
    }
    body = _body(operation)
    if body is not None:
        request["body"] = body
    if not operation.get("security"):
        request["auth"] = {"type": "noauth"}  # a public route: no token to fetch or send
    return {
        "name": name or operation.get("summary") or f"{method.upper()} {path}",
        "request": request,
        "response": [],
    }


def _url(path: str, operation: dict[str, Any]) -> dict[str, Any]:
    segments = [re.sub(r"^\{(.+)\}$", r":\1", part) for part in path.strip("/").split("/")]
    parameters = operation.get("parameters", [])
    query = [
        {
            "key": p["name"],
            "value": _text(p.get("example", p.get("schema", {}).get("default", ""))),
            "disabled": not p.get("required", False),
            "description": p.get("description", ""),
        }
        for p in parameters
        if p["in"] == "query"
    ]
    variables = [
        {
            "key": p["name"],
            "value": "{{" + PATH_VARIABLES.get(p["name"], p["name"]) + "}}",
            "description": p.get("description", ""),
        }
        for p in parameters
        if p["in"] == "path"
    ]
    raw = "{{baseUrl}}/" + "/".join(segments)
    enabled = [q for q in query if not q["disabled"]]
    if enabled:
        raw += "?" + "&".join(f"{q['key']}={q['value']}" for q in enabled)
    url: dict[str, Any] = {"raw": raw, "host": ["{{baseUrl}}"], "path": segments}
    if query:
        url["query"] = query
    if variables:
        url["variable"] = variables
    return url


def _headers(operation: dict[str, Any]) -> list[dict[str, Any]]:
    headers = [
        {"key": p["name"], "value": "", "disabled": True, "description": p.get("description", "")}
        for p in operation.get("parameters", [])
        if p["in"] == "header"
    ]
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        headers.insert(0, {"key": "Content-Type", "value": "application/json"})
    return headers


def _body(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        examples = content["application/json"].get("examples") or {}
        value = next(iter(examples.values()), {}).get("value", {}) if examples else {}
        return {
            "mode": "raw",
            "raw": json.dumps(value, indent=2),
            "options": {"raw": {"language": "json"}},
        }
    if "application/x-www-form-urlencoded" in content:
        # The token endpoints are the only forms: Loome's request, with the variables.
        form = {
            "grant_type": "client_credentials",
            "client_id": "{{clientId}}",
            "client_secret": "{{clientSecret}}",
            "scope": "webApi",
        }
        return {
            "mode": "urlencoded",
            "urlencoded": [{"key": k, "value": v, "type": "text"} for k, v in form.items()],
        }
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


router = APIRouter(tags=["postman"])


@router.get("/api/v1/postman.json")
async def postman_collection(
    request: Request,
    _: None = public("the OpenAPI document, which is public, in Postman's form: no data"),
) -> JSONResponse:
    """The API as a Postman collection (v2.1), with Loome's variables and token script."""
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        collection(request.app.openapi(), base),
        headers={
            "Content-Disposition": 'attachment; filename="jobport.postman_collection.json"',
            # baseUrl comes from the request's Host, and the token script sends the key's
            # secret to {{baseUrl}}: no cache may keep a copy made for someone else's Host.
            "Cache-Control": "no-store",
            "Vary": "Host",
        },
    )
