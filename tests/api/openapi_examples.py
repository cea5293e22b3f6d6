"""Follow the served OpenAPI document's examples: they make a project, a job, its schedule,
a run and a role, in this order (what tests/api/test_fuzz.py then fuzzes around)."""

from __future__ import annotations

from typing import Any

import httpx2

from conftest import wait_for

# The operations whose examples create the world the other examples name, in order.
STORY = [
    ("post", "/api/v1/projects"),
    ("post", "/api/v1/projects/{project}/jobs"),
    ("put", "/api/v1/projects/{project}/jobs/{job}/schedules/{name}"),
    ("post", "/api/v1/projects/{project}/jobs/{job}/execute"),
    ("post", "/api/v1/roles"),
    ("post", "/api/v1/projects/{project}/roles"),
    ("post", "/api/v1/roles/{role}/members"),
]


def example_request(document: dict[str, Any], method: str, path: str) -> tuple[str, Any]:
    """The URL and JSON body that an operation's examples make."""
    operation = document["paths"][path][method]
    url = path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", str(parameter["example"]))
    media = operation["requestBody"]["content"]["application/json"]
    first = next(iter(media["examples"].values()))
    return url, first["value"]


def follow_the_examples(api: httpx2.Client, document: dict[str, Any]) -> dict[str, Any]:
    """Send STORY's examples; returns the finished run the execute example started."""
    for method, path in STORY:
        url, body = example_request(document, method, path)
        response = api.request(method.upper(), url, json=body)
        assert response.status_code < 300, (method, url, body, response.text)
    run = document["paths"]["/api/v1/executions/{execution_id}"]["get"]["parameters"][0]
    url = f"/api/v1/executions/{run['example']}"
    return wait_for(
        lambda: (r := api.get(url).json())["status"] in {"succeeded", "failed"} and r, timeout=30
    )
