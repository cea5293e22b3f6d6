"""The Postman collection: a v2.1 collection of every operation of the API, each request a
route the app serves, and usable as Postman uses it: its pre-request script (run in Node
with the parts of Postman's `pm` it calls) gets and keeps a token, and Loome's requests,
filled in from the collection's variables, run a job and manage its schedules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import Server
from jobport.api.app import create_app
from jobport.api.auth import route_table

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
METHODS = {"GET", "PUT", "POST", "DELETE", "PATCH"}


@pytest.fixture(scope="module")
def collection(server: Server) -> dict[str, Any]:
    with server.client(anonymous=True) as anyone:  # public, like /openapi.json
        response = anyone.get("/api/v1/postman.json")
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    return response.json()  # type: ignore[no-any-return]


def test_no_cache_keeps_a_collection_made_for_another_host(server: Server) -> None:
    # Its baseUrl is the Host the request named, and its script sends the key's secret
    # there: a shared cache that kept one made for a forged Host would hand that out.
    with server.client(anonymous=True) as anyone:
        forged = anyone.get("/api/v1/postman.json", headers={"Host": "attacker.example"})
    assert forged.status_code == 200, forged.text
    assert forged.json()["variable"][0]["value"] == "http://attacker.example"
    assert "no-store" in forged.headers["cache-control"]
    assert "host" in forged.headers["vary"].lower()


def requests_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every request item, folders walked."""
    found = []
    for item in items:
        if "item" in item:
            found += requests_of(item["item"])
        else:
            found.append(item)
    return found


def template(url: dict[str, Any]) -> str:
    """The route path a request's URL is made from: `:name` segments back to `{name}`."""
    return "/" + "/".join(re.sub(r"^:(.+)$", r"{\1}", part) for part in url["path"])


def test_it_is_a_v2_1_collection(collection: dict[str, Any]) -> None:
    info = collection["info"]
    assert info["schema"] == SCHEMA and info["name"] == "jobport"
    assert isinstance(collection["item"], list) and collection["item"]
    for folder in collection["item"]:
        assert folder["name"] and isinstance(folder["item"], list) and folder["item"]
    for item in requests_of(collection["item"]):
        request = item["request"]
        assert item["name"] and item["response"] == []
        assert request["method"] in METHODS, item
        url = request["url"]
        assert url["host"] == ["{{baseUrl}}"] and url["raw"].startswith("{{baseUrl}}/")
        assert url["raw"].split("?")[0] == "{{baseUrl}}" + "/" + "/".join(url["path"])
        named = {p[1:] for p in url["path"] if p.startswith(":")}
        assert {v["key"] for v in url.get("variable", [])} == named, item["name"]
        for query in url.get("query", []):
            assert set(query) >= {"key", "value", "disabled"}
        body = request.get("body")
        if body is not None:
            assert body["mode"] in {"raw", "urlencoded"}
            if body["mode"] == "raw":
                json.loads(body["raw"])
    (event,) = collection["event"]
    assert event["listen"] == "prerequest" and event["script"]["type"] == "text/javascript"
    assert collection["auth"]["type"] == "bearer"


def test_every_request_is_a_route_and_every_operation_a_request(
    server: Server, collection: dict[str, Any]
) -> None:
    served = {(m, p) for m, p, _, _ in route_table(create_app())}
    sent = {
        (i["request"]["method"], template(i["request"]["url"]))
        for i in requests_of(collection["item"])
    }
    assert sent - served == set(), "requests that no route answers"
    with server.client(anonymous=True) as anyone:
        document = anyone.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, entry in document["paths"].items()
        for method in entry
        if method.upper() in METHODS
    }
    assert documented - sent == set(), "operations the collection lacks"


def test_its_variables_are_loomes_and_fill_every_request(
    server: Server, collection: dict[str, Any]
) -> None:
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["baseUrl"] == server.url
    assert {"clientId", "clientSecret", "jobId", "projectId"} <= set(variables)
    used = set(re.findall(r"\{\{(\w+)\}\}", json.dumps(collection["item"])))
    assert used - set(variables) == set()
    integrate = collection["item"][0]
    assert integrate["name"] == "Integrate"
    assert [i["name"] for i in integrate["item"]] == [
        "Run Job",
        "Check Job Status",
        "Get Schedules",
        "Add or Update Schedule",
        "Delete Schedule",
    ]
    (token,) = [
        i
        for i in requests_of(collection["item"])
        if template(i["request"]["url"]) == "/connect/token"
    ]
    form = {p["key"]: p["value"] for p in token["request"]["body"]["urlencoded"]}
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "{{clientId}}",
        "client_secret": "{{clientSecret}}",
        "scope": "webApi",
    }
    assert token["request"]["auth"] == {"type": "noauth"}


# The parts of Postman's script sandbox that the collection's script uses, over Node's fetch.
# argv: the script, the request path, the variables (JSON). Prints the variables after the
# script and its requests have run, and how many requests it sent.
PM_SANDBOX = r"""
const [script, path, given] = process.argv.slice(2);
const variables = JSON.parse(given);
let sent = 0;
const pending = [];
const store = {
  get: (k) => variables[k],
  set: (k, v) => { variables[k] = String(v); },
};
const pm = {
  request: { url: { getPath: () => path } },
  variables: {
    get: store.get,
    replaceIn: (s) => s.replace(/{{(\w+)}}/g, (_, k) => variables[k] ?? ''),
  },
  collectionVariables: store,
  sendRequest: (req, callback) => {
    sent += 1;
    const body = new URLSearchParams(req.body.urlencoded.map((p) => [p.key, p.value]));
    pending.push(fetch(req.url, { method: req.method, headers: req.header, body })
      .then(async (res) => {
        const text = await res.text();
        callback(null, { code: res.status, text: () => text, json: () => JSON.parse(text) });
      }, (error) => callback(error, null)));
  },
};
new Function('pm', script)(pm);
Promise.all(pending).then(() => console.log(JSON.stringify({ variables, sent })));
"""


def run_pre_request(
    collection: dict[str, Any], path: str, variables: dict[str, str], tmp_path: Path
) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the pre-request script cannot run")
    sandbox = tmp_path / "pm.js"
    sandbox.write_text(PM_SANDBOX)
    script = "\n".join(collection["event"][0]["script"]["exec"])
    done = subprocess.run(
        [node, str(sandbox), script, path, json.dumps(variables)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def send(api: httpx2.Client, item: dict[str, Any], variables: dict[str, str]) -> httpx2.Response:
    """Send a request item as Postman does: variables filled in, the collection's bearer."""

    def fill(text: str) -> str:
        return re.sub(r"\{\{(\w+)\}\}", lambda m: variables[m.group(1)], text)

    request = item["request"]
    values = {v["key"]: fill(v["value"]) for v in request["url"].get("variable", [])}
    path = "/".join(values[p[1:]] if p.startswith(":") else p for p in request["url"]["path"])
    body = request.get("body")
    return api.request(
        request["method"],
        f"{variables['baseUrl']}/{path}",
        content=fill(body["raw"]) if body else None,
        headers={
            **{h["key"]: h["value"] for h in request["header"] if not h.get("disabled")},
            "Authorization": f"Bearer {variables['accessToken']}",
        },
    )


def test_loomes_requests_run_with_the_token_the_script_gets(
    server: Server, collection: dict[str, Any], tmp_path: Path
) -> None:
    with server.client() as admin:
        project = f"postman-{uuid.uuid4().hex[:6]}"
        assert admin.post("/api/v1/projects", json={"name": project}).status_code == 201
        job = {
            "name": "load",
            "steps": [{"name": "s", "kind": "command", "config": {"command": "true"}}],
        }
        job_id = admin.post(f"/api/v1/projects/{project}/jobs", json=job).json()["id"]
        roles = [{"role": "Operator", "project": project}]
        key = admin.post("/api/v1/keys", json={"description": "postman", "roles": roles}).json()
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    variables |= {"clientId": key["clientId"], "clientSecret": key["clientSecret"], "jobId": job_id}
    variables["scheduleName"] = "My Schedule"  # the name in the body example

    first = run_pre_request(collection, f"/api/v1/jobs/{job_id}", variables, tmp_path)
    assert first["sent"] == 1
    variables = first["variables"]
    assert variables["accessToken"] and int(variables["accessTokenExpiry"]) > 0
    # Kept: the next request sends no token request; the token request itself never does.
    assert run_pre_request(collection, "/api/v1/jobs/x", variables, tmp_path)["sent"] == 0
    assert (
        run_pre_request(collection, "/connect/token", {**variables, "accessToken": ""}, tmp_path)[
            "sent"
        ]
        == 0
    )
    # Expired (or about to): a new one.
    stale = {**variables, "accessTokenExpiry": "1"}
    assert run_pre_request(collection, "/api/v1/jobs/x", stale, tmp_path)["sent"] == 1

    integrate = {i["name"]: i for i in collection["item"][0]["item"]}
    with httpx2.Client(timeout=30) as postman:
        assert send(postman, integrate["Check Job Status"], variables).json()["lastExecution"] == {}
        run = send(postman, integrate["Run Job"], variables)
        assert run.status_code == 202, run.text
        assert run.json()["jobId"] == job_id
        assert send(postman, integrate["Get Schedules"], variables).json()["items"] == []
        added = send(postman, integrate["Add or Update Schedule"], variables)
        assert added.status_code == 201, added.text
        assert added.json()["timeZoneIana"] == "Australia/Sydney"
        assert send(postman, integrate["Delete Schedule"], variables).status_code == 204
    # With a wrong secret the script gets no token, says so, and sets none.
    wrong = {**variables, "clientSecret": "wrong", "accessToken": ""}
    assert (
        run_pre_request(collection, "/api/v1/jobs/x", wrong, tmp_path)["variables"]["accessToken"]
        == ""
    )


def test_jobport_postman_writes_the_collection(
    server: Server, collection: dict[str, Any], tmp_path: Path
) -> None:
    env = {**os.environ, "JOBPORT_URL": server.url, "JOBPORT_CONFIG_DIR": str(tmp_path / "cfg")}
    for name in ("JOBPORT_KEY", "JOBPORT_CLIENT_ID", "JOBPORT_CLIENT_SECRET"):
        env.pop(name, None)  # it needs no credentials
    command = [sys.executable, "-m", "jobport.cli", "postman"]
    printed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == collection
    target = tmp_path / "jobport.postman_collection.json"
    written = subprocess.run(
        [*command, "-o", str(target)], env=env, capture_output=True, text=True, timeout=60
    )
    assert written.returncode == 0, written.stderr
    assert json.loads(target.read_text()) == collection
    assert str(target) in written.stderr and written.stdout == ""
    unreachable = subprocess.run(
        [*command, "--url", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 2 and "could not reach" in unreachable.stderr
