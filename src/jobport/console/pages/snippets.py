"""Snippets of "call this from code" for a job and for a key (curl, the Python SDK, `requests`,
PowerShell), filled in with this server's URL and the job's or key's ids.

The job page and the key pages include `snippets/job.html` and `snippets/key.html`; those
templates call `job_snippets(request, project, job)` and `key_snippets(request, key,
secret)`, set here as globals of the console's Jinja environment. Every value is quoted for
the language it lands in (shell, Python, PowerShell), never spliced in raw: a name, a
parameter or a Host header can hold a quote. A key's secret appears only when the including
page passes it (right after the key was made or rotated); otherwise a placeholder does.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from jobport.console.web import PREFIX, Viewer, env, page, viewer
from jobport.services import jobs as job_service

router = APIRouter()

KEY_PLACEHOLDER = "<your API key>"
SECRET_PLACEHOLDER = "<your secret>"
POSTMAN_PATH = "/api/v1/postman.json"
TOKEN_PATH = "/connect/token"
WAIT_SECONDS = 60
# A Host header that is a host name or an address, with a port: anything else (a header
# made to break out of a quoted string) is not put into code a user may paste and run.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_SCHEMES = {"http", "https"}


@dataclass(frozen=True)
class Snippet:
    """One block of code with its language, and the id its Copy button names."""

    id: str
    title: str
    language: str
    text: str


def server_url(request: Request) -> str:
    """scheme://host of this server as the browser reached it."""
    scheme = request.url.scheme if request.url.scheme in _SCHEMES else "http"
    host = request.headers.get("host") or request.url.netloc
    if not _HOST.fullmatch(host):
        return "http://<your jobport server>"
    return f"{scheme}://{host}"


def name_of(thing: Any) -> str:
    """The name of a project or job, whether a record, the API's JSON or the name itself."""
    if isinstance(thing, str):
        return thing
    if isinstance(thing, dict):
        return str(thing.get("name", ""))
    return str(getattr(thing, "name", ""))


def _field(thing: Any, attr: str, key: str) -> Any:
    if isinstance(thing, dict):
        return thing.get(key)
    return getattr(thing, attr, None)


def _defaults(job: Any) -> dict[str, Any]:
    """The job's parameter defaults: what a run gets when it gives none, shown to change."""
    definition = job if isinstance(job, dict) else getattr(job, "definition", None)
    found = definition.get("parameters") if isinstance(definition, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _ps(text: str) -> str:
    """A PowerShell single-quoted string (no expansion; a quote is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _segment(name: str) -> str:
    return quote(name, safe="")


def job_snippets(request: Request, project: Any, job: Any) -> list[Snippet]:
    """Run the job from code, four ways: curl, the SDK, `requests`, PowerShell."""
    base = server_url(request)
    job_name = name_of(job)
    project_name = name_of(project) or str(_field(job, "project_id", "projectId") or "")
    url = f"{base}/api/v1/projects/{_segment(project_name)}/jobs/{_segment(job_name)}/execute"
    parameters = _defaults(job)
    body = {"parameters": parameters, "mode": "full"}
    body_json = json.dumps(body, ensure_ascii=False)
    waited = f"{url}?wait={WAIT_SECONDS}"
    curl = "\n".join(
        [
            f"export JOBPORT_KEY={shlex.quote(KEY_PLACEHOLDER)}  # an API key (Remote Access)",
            f"curl -sS --fail-with-body -X POST {shlex.quote(waited)} \\",
            '  -H "Authorization: Bearer $JOBPORT_KEY" \\',
            "  -H 'Content-Type: application/json' \\",
            f"  -d {shlex.quote(body_json)}",
        ]
    )
    sdk = "\n".join(
        [
            "import os",
            "",
            "from jobport.client import Client",
            "",
            "# JOBPORT_KEY: an API key (Remote Access)",
            f'with Client({base!r}, key=os.environ["JOBPORT_KEY"]) as jp:',
            f"    run = jp.execute({project_name!r}, {job_name!r}, "
            f"parameters={parameters!r}, wait={WAIT_SECONDS})",
            '    print(run["id"], run["status"], run["result"])',
        ]
    )
    requests_code = "\n".join(
        [
            "import os",
            "",
            "import requests",
            "",
            "# JOBPORT_KEY: an API key (Remote Access)",
            "response = requests.post(",
            f"    {url!r},",
            f'    params={{"wait": {WAIT_SECONDS}}},',
            '    headers={"Authorization": "Bearer " + os.environ["JOBPORT_KEY"]},',
            f'    json={{"parameters": {parameters!r}, "mode": "full"}},',
            f"    timeout={WAIT_SECONDS + 30},",
            ")",
            "response.raise_for_status()",
            "run = response.json()",
            'print(run["id"], run["status"])',
        ]
    )
    powershell = "\n".join(
        [
            "# $env:JOBPORT_KEY: an API key (Remote Access)",
            '$headers = @{ Authorization = "Bearer $env:JOBPORT_KEY" }',
            f"$body = {_ps(body_json)}",
            f"$run = Invoke-RestMethod -Method Post -Uri {_ps(waited)} `",
            "  -Headers $headers -ContentType 'application/json' -Body $body",
            "$run.id, $run.status",
        ]
    )
    return [
        Snippet("snippet-job-curl", "curl", "sh", curl),
        Snippet("snippet-job-sdk", "Python SDK (jobport.client)", "python", sdk),
        Snippet("snippet-job-requests", "Python requests", "python", requests_code),
        Snippet("snippet-job-powershell", "PowerShell", "powershell", powershell),
        postman_snippet(request, "snippet-job-postman"),
    ]


def postman_snippet(request: Request, snippet_id: str) -> Snippet:
    """`jobport postman` writes the collection the download link gives."""
    base = server_url(request)
    text = f"jobport postman --url {shlex.quote(base)} -o jobport.postman_collection.json"
    return Snippet(snippet_id, "Postman collection (CLI)", "sh", text)


def key_snippets(request: Request, key: Any, secret: str | None = None) -> list[Snippet]:
    """Get a token for the key (client credentials at /connect/token) and call the API with
    it. The secret is filled in only when given; a placeholder stands in otherwise."""
    base = server_url(request)
    client_id = str(_field(key, "client_id", "clientId") or "<client id>")
    if not secret and isinstance(key, dict) and isinstance(key.get("clientSecret"), str):
        secret = key["clientSecret"]
    shown = secret or SECRET_PLACEHOLDER
    token_url, me_url = base + TOKEN_PATH, base + "/api/v1/me"
    curl = "\n".join(
        [
            f"export JOBPORT_CLIENT_ID={shlex.quote(client_id)}",
            f"export JOBPORT_CLIENT_SECRET={shlex.quote(shown)}",
            f"TOKEN=$(curl -sS --fail-with-body -X POST {shlex.quote(token_url)} \\",
            "  -d grant_type=client_credentials \\",
            '  --data-urlencode "client_id=$JOBPORT_CLIENT_ID" \\',
            '  --data-urlencode "client_secret=$JOBPORT_CLIENT_SECRET" \\',
            "  | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"access_token\"])')",
            f'curl -sS --fail-with-body {shlex.quote(me_url)} -H "Authorization: Bearer $TOKEN"',
        ]
    )
    sdk = "\n".join(
        [
            "from jobport.client import Client",
            "",
            "# The client gets a token from /connect/token, and a new one before it expires.",
            f"with Client({base!r}, client_id={client_id!r}, client_secret={shown!r}) as jp:",
            "    print(jp.me())",
        ]
    )
    requests_code = "\n".join(
        [
            "import requests",
            "",
            "token = requests.post(",
            f"    {token_url!r},",
            "    data={",
            '        "grant_type": "client_credentials",',
            f'        "client_id": {client_id!r},',
            f'        "client_secret": {shown!r},',
            "    },",
            "    timeout=30,",
            ")",
            "token.raise_for_status()",
            'headers = {"Authorization": "Bearer " + token.json()["access_token"]}',
            f"me = requests.get({me_url!r}, headers=headers, timeout=30)",
            "me.raise_for_status()",
            "print(me.json())",
        ]
    )
    powershell = "\n".join(
        [
            "$form = @{",
            "  grant_type = 'client_credentials'",
            f"  client_id = {_ps(client_id)}",
            f"  client_secret = {_ps(shown)}",
            "}",
            f"$token = Invoke-RestMethod -Method Post -Uri {_ps(token_url)} -Body $form",
            '$headers = @{ Authorization = "Bearer $($token.access_token)" }',
            f"Invoke-RestMethod -Uri {_ps(me_url)} -Headers $headers",
        ]
    )
    tag = re.sub(r"[^A-Za-z0-9_-]", "-", client_id)
    return [
        Snippet(f"snippet-key-{tag}-curl", "curl", "sh", curl),
        Snippet(f"snippet-key-{tag}-sdk", "Python SDK (jobport.client)", "python", sdk),
        Snippet(f"snippet-key-{tag}-requests", "Python requests", "python", requests_code),
        Snippet(f"snippet-key-{tag}-powershell", "PowerShell", "powershell", powershell),
        postman_snippet(request, f"snippet-key-{tag}-postman"),
    ]


env.globals["job_snippets"] = job_snippets
env.globals["key_snippets"] = key_snippets
env.globals["postman_path"] = POSTMAN_PATH


@router.get(PREFIX + "/projects/{project}/jobs/{job}/snippets")
async def job_snippets_page(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    """The job's snippets on a page of their own (the job page shows them too)."""
    who.authorize("jobs:read", project)
    found = job_service.get(who.rt, project, job)
    return page(request, "snippets/page.html", who, project=project, job=found)
