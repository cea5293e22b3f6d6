"""A secret in an http connection's query (api_key=, token=) is as secret as a password: no
log line, error, result or execution JSON holds it, as written, decoded or encoded."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import httpx2

from conftest import Server

from .conftest import add_connection, make_job, run_job
from .test_postgresql_store import echo_service  # noqa: F401 - a fixture used below

API_KEY = "s3cretvalue123"
TOKEN = "c2VjcmV0L3Rva2VuKz0="  # base64: '/', '+' and '=' come back encoded


def forms(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), quote_plus(secret)]


def test_query_secrets_of_a_connection_never_show(
    data_server: Server,
    api: httpx2.Client,
    project: str,
    echo_service: tuple[str, list[dict[str, object]]],  # noqa: F811
) -> None:
    base, seen = echo_service
    url = f"{base}/base?api_key={API_KEY}&token={quote(TOKEN, safe='')}&region=eu"
    add_connection(data_server, project, "api", url)
    listed = api.get(f"/api/v1/projects/{project}/connections/api").json()
    assert listed["url"] == f"{base}/base?api_key=***&token=***&region=eu"

    step = {"name": "get", "kind": "http", "config": {"connection": "api", "path": "/items/a"}}
    ok = run_job(api, project, make_job(api, project, [step]))
    assert ok["status"] == "succeeded", ok
    assert API_KEY in seen[-1]["path"]  # the service did get it
    failing = {**step, "config": {**step["config"], "expectedStatus": [201]}}
    failed = run_job(api, project, make_job(api, project, [failing]))
    assert failed["status"] == "failed", failed
    assert "***" in failed["error"]["message"]

    for done in (ok, failed):
        logs = api.get(f"/api/v1/executions/{done['id']}/logs", params={"limit": 1000}).text
        shown = json.dumps(done) + logs
        for secret in [*forms(API_KEY), *forms(TOKEN)]:
            assert secret not in shown, secret
