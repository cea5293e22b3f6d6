"""Losant's resource-job API, driven by Losant's own Python client (`losant-rest`) against the
real server: create, list, get, patch, execute, logs, cancel, delete, and every error path
in Losant's shape. A resource job made here is a jobport job the native API sees and runs."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from losant_rest import Client, LosantError

from conftest import Server, admin_key, create_postgres_database, drop_postgres_database, wait_for
from jobport.domain.access import parse_key_string
from jobport.domain.ids import object_id

HEX24 = r"^[0-9a-f]{24}$"
# Every key of Losant's list envelope, in its order (filter and filterField when filtering).
ENVELOPE = ["items", "count", "totalCount", "perPage", "page", "sortField", "sortDirection"]
# A JSON object nested far deeper than Python's parser recurses, and one just past jobport's
# limit of 32 levels (domain.values.MAX_DEPTH) for any JSON it keeps.
DEEP = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
NESTED_33 = '{"a": ' + "[" * 32 + "]" * 32 + "}"


@pytest.fixture
def losant(server: Server) -> Client:
    return Client(auth_token=server.prepare().key, url=server.url)


@pytest.fixture
def app_id(api: httpx2.Client, project: str) -> str:
    """The project as Losant's applicationId: the 24-hex object id of its id."""
    return object_id(api.get(f"/api/v1/projects/{project}").json()["id"])


def _refused(call: Any, status: int, kind: str) -> str:
    """Run a client call that must fail; returns Losant's error message."""
    with pytest.raises(LosantError) as caught:
        call()
    assert caught.value.status == status, caught.value.data
    assert set(caught.value.data) == {"type", "message"}, caught.value.data
    assert caught.value.data["type"] == kind, caught.value.data
    return str(caught.value.data["message"])


def _native_job(api: httpx2.Client, project: str, name: str, **foreach: Any) -> dict[str, Any]:
    """A foreach job made through the native API, with one per-item command step."""
    command = foreach.pop("command", 'echo "ctx={{ context.myData }} item={{ item }}"')
    body = {
        "name": name,
        "steps": [{"name": "each", "kind": "command", "config": {"command": command}}],
        "foreach": {"source": {"items": foreach.pop("items", [1, 2, 3])}, **foreach},
    }
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _logs(losant: Client, app_id: str, job_id: str, **query: Any) -> list[dict[str, Any]]:
    return losant.resource_job.logs(applicationId=app_id, resourceJobId=job_id, **query)


# --- resource jobs ---------------------------------------------------------------------------


def test_a_resource_job_made_through_the_face_is_a_native_job(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    made = losant.resource_jobs.post(
        applicationId=app_id,
        resourceJob={
            "name": "Example Resource Job",
            "description": "polls each device",
            "resourceType": "device",
            "queryJson": '{ "name": "my device"}',
            "maxIterationConcurrency": 3,
            "iterationDelay": 1500,
            "iterationTimeout": 120000,
            "retryOnFailure": True,
            "maxIterationRetries": 2,
            "retryDelay": 500,
            "defaultContext": '{"myData": 1}',
        },
    )
    assert made["id"] == made["resourceJobId"]
    assert made["applicationId"] == app_id
    assert made["resourceType"] == "device"
    assert json.loads(made["queryJson"]) == {"name": "my device"}
    assert (made["maxIterationConcurrency"], made["iterationDelay"]) == (3, 1500)
    assert (made["iterationTimeout"], made["retryDelay"]) == (120000, 500)
    assert (made["retryOnFailure"], made["retryOnTimeout"], made["maxIterationRetries"]) == (
        True,
        False,
        2,
    )
    assert json.loads(made["defaultContext"]) == {"myData": 1}
    assert made["creationDate"].endswith("Z") and "lastExecutionRequested" not in made
    assert losant.resource_job.get(applicationId=app_id, resourceJobId=made["id"]) == made

    # The same job natively, by its object id, in seconds; the project by its object id too.
    native = api.get(f"/api/v1/projects/{app_id}/jobs/{made['id']}")
    assert native.status_code == 200, native.text
    job = native.json()
    assert job["name"] == "Example Resource Job" and job["description"] == "polls each device"
    assert job["context"] == {"myData": 1}
    foreach = job["foreach"]
    assert foreach["source"]["items"] == []  # the items are the job's own, set natively
    assert foreach["query"] == {"name": "my device"}
    assert (foreach["concurrency"], foreach["delaySeconds"], foreach["timeoutSeconds"]) == (
        3,
        1.5,
        120,
    )
    assert (foreach["retries"], foreach["retryDelaySeconds"], foreach["retryOnFailure"]) == (
        2,
        0.5,
        True,
    )
    assert foreach["resourceType"] == "device"
    run = api.post(f"/api/v1/projects/{project}/jobs/{job['id']}/execute?wait=20")
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "succeeded"  # no items: nothing to do, and done


def test_losant_defaults_and_a_native_job_as_a_resource_job(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    made = losant.resource_jobs.post(
        applicationId=app_id, resourceJob={"name": "defaults", "resourceType": "experienceUser"}
    )
    assert {k: made[k] for k in ("maxIterationConcurrency", "iterationDelay")} == {
        "maxIterationConcurrency": 1,
        "iterationDelay": 0,
    }
    assert (made["iterationTimeout"], made["maxIterationRetries"], made["retryDelay"]) == (
        60000,
        1,
        0,
    )
    assert made["queryJson"] == "{}" and made["defaultContext"] == "{}"
    native = _native_job(api, project, "made-natively", delaySeconds=0.25)
    shown = losant.resource_job.get(applicationId=app_id, resourceJobId=native["id"])
    assert shown["id"] == object_id(native["id"]) and shown["iterationDelay"] == 250
    assert shown["resourceType"] == "device"  # a native source without a resource type
    assert "iterationTimeout" not in shown  # none set natively


def test_list_filters_sorts_and_pages_with_losants_envelope(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    for name, kind in (("alpha-1", "device"), ("alpha-2", "experienceUser"), ("beta", "device")):
        losant.resource_jobs.post(
            applicationId=app_id, resourceJob={"name": name, "resourceType": kind}
        )
    plain = {"name": "plain", "steps": [{"name": "s", "kind": "command", "config": {}}]}
    plain["steps"][0]["config"] = {"command": "true"}
    assert api.post(f"/api/v1/projects/{project}/jobs", json=plain).status_code == 201

    listed = losant.resource_jobs.get(applicationId=app_id)
    assert list(listed) == [*ENVELOPE, "applicationId"]
    assert [j["name"] for j in listed["items"]] == ["alpha-1", "alpha-2", "beta"]  # no `plain`
    assert (listed["count"], listed["totalCount"], listed["perPage"], listed["page"]) == (
        3,
        3,
        100,
        0,
    )
    assert (listed["sortField"], listed["sortDirection"]) == ("name", "asc")
    assert listed["applicationId"] == app_id

    by_name = losant.resource_jobs.get(applicationId=app_id, filterField="name", filter="ALPHA*")
    assert [j["name"] for j in by_name["items"]] == ["alpha-1", "alpha-2"]
    assert (by_name["filter"], by_name["filterField"], by_name["totalCount"]) == (
        "ALPHA*",
        "name",
        2,
    )
    devices = losant.resource_jobs.get(
        applicationId=app_id, filterField="resourceType", filter="device", sortDirection="desc"
    )
    assert [j["name"] for j in devices["items"]] == ["beta", "alpha-1"]
    by_type = losant.resource_jobs.get(applicationId=app_id, sortField="resourceType")
    assert [j["resourceType"] for j in by_type["items"]] == ["device", "device", "experienceUser"]

    second = losant.resource_jobs.get(applicationId=app_id, perPage=1, page=1)
    assert [j["name"] for j in second["items"]] == ["alpha-2"]
    assert (second["count"], second["totalCount"], second["perPage"]) == (1, 3, 1)
    past = losant.resource_jobs.get(applicationId=app_id, perPage=2, page=5)
    assert (past["items"], past["totalCount"]) == ([], 3)

    beta = by_type["items"][1] if by_type["items"][1]["name"] == "beta" else by_type["items"][0]
    losant.resource_job.execute(applicationId=app_id, resourceJobId=beta["id"])
    newest = losant.resource_jobs.get(
        applicationId=app_id, sortField="lastExecutionRequested", sortDirection="desc"
    )
    assert newest["items"][0]["name"] == "beta" and "lastExecutionRequested" in newest["items"][0]
    by_id = losant.resource_jobs.get(applicationId=app_id, sortField="id")
    assert [j["id"] for j in by_id["items"]] == sorted(j["id"] for j in listed["items"])


def test_a_filter_of_many_stars_answers_at_once(
    losant: Client, server: Server, app_id: str
) -> None:
    """A glob of many `*` against a long name: as one regex of `.*`s it backtracks
    exponentially (that request never ended, holding a thread); matched part by part it
    answers at once, with the same matches."""
    long = "a" * 40
    for name in ("a", long):
        losant.resource_jobs.post(
            applicationId=app_id, resourceJob={"name": name, "resourceType": "device"}
        )
    for pattern, names in (
        ("*a" * 20 + "*b", []),
        ("*a" * 40, [long]),
        ("*a" * 41, []),
        ("a*a", [long]),  # the two a's are two characters: "a" has one
        ("*", ["a", long]),
        ("A", ["a"]),
        ("**A**", ["a", long]),
    ):
        answer = httpx2.get(
            f"{server.url}/applications/{app_id}/resource-jobs",
            params={"filterField": "name", "filter": pattern},
            headers=server.auth,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert [j["name"] for j in answer.json()["items"]] == names, pattern


def test_patch_changes_fields_answers_201_and_refuses_resource_type(
    losant: Client, server: Server, api: httpx2.Client, project: str, app_id: str
) -> None:
    made = losant.resource_jobs.post(
        applicationId=app_id,
        resourceJob={"name": "to-patch", "resourceType": "device", "maxIterationRetries": 3},
    )
    patched = losant.resource_job.patch(
        applicationId=app_id,
        resourceJobId=made["id"],
        resourceJob={"name": "patched", "iterationDelay": 2000, "queryJson": '{"on": true}'},
    )
    assert (patched["id"], patched["name"], patched["iterationDelay"]) == (
        made["id"],
        "patched",
        2000,
    )
    assert patched["maxIterationRetries"] == 3  # what the patch does not name stays
    assert json.loads(patched["queryJson"]) == {"on": True}
    native = api.get(f"/api/v1/projects/{project}/jobs/patched").json()
    assert native["foreach"]["delaySeconds"] == 2 and native["foreach"]["query"] == {"on": True}

    raw = httpx2.patch(
        f"{server.url}/applications/{app_id}/resource-jobs/{made['id']}",
        json={"description": "now described"},
        headers=server.auth,
    )
    assert raw.status_code == 201 and raw.json()["description"] == "now described"

    message = _refused(
        lambda: losant.resource_job.patch(
            applicationId=app_id,
            resourceJobId=made["id"],
            resourceJob={"resourceType": "dataTableRow"},
        ),
        400,
        "Validation",
    )
    assert "resourceType" in message
    assert losant.resource_job.get(applicationId=app_id, resourceJobId=made["id"])[
        "resourceType"
    ] == ("device")


def test_delete_answers_success_and_the_job_is_gone_everywhere(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    made = losant.resource_jobs.post(
        applicationId=app_id, resourceJob={"name": "doomed", "resourceType": "device"}
    )
    assert losant.resource_job.delete(
        applicationId=app_id, resourceJobId=made["id"], includeWorkflows="true"
    ) == {"success": True}
    _refused(
        lambda: losant.resource_job.get(applicationId=app_id, resourceJobId=made["id"]),
        404,
        "NotFound",
    )
    assert api.get(f"/api/v1/projects/{project}/jobs/doomed").status_code == 404


# --- executions ------------------------------------------------------------------------------


def _finished(losant: Client, app_id: str, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        logs = _logs(losant, app_id, job_id)
        return (
            logs[0] if logs and logs[0]["status"] in ("completed", "errored", "canceled") else None
        )

    return wait_for(done, timeout=30, interval=0.2)


# A value that, spliced into the step's double-quoted command as text, would end the quotes
# and run commands (`pwned` lines); as data it is echoed back whole.
SHELLISH = 'hi"; echo pwned; echo "$(echo pwned)`echo pwned` \\'


def test_execute_passes_the_template_context_to_each_item(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    job = _native_job(api, project, "greets", items=["a", "b", "c"])
    rj = object_id(job["id"])
    started = losant.resource_job.execute(
        applicationId=app_id,
        resourceJobId=rj,
        executionOptions={"templateContext": json.dumps({"myData": SHELLISH})},
    )
    assert started["success"] is True and len(started["executionId"]) == 24
    log = _finished(losant, app_id, rj)
    assert log["id"] == log["resourceJobExecutionId"] == started["executionId"]
    assert (log["resourceJobId"], log["applicationId"]) == (rj, app_id)
    assert log["status"] == "completed", log
    assert json.loads(log["templateContext"]) == {"myData": SHELLISH}
    assert log["sourceType"] == "apiToken" and log["runCompletedAt"] >= log["runStartedAt"]
    assert log["executionSummary"] == {
        "succeeded": 3,
        "failed": 0,
        "timedOut": 0,
        "inProgress": 0,
        "remaining": 0,
    }
    native = api.get(log["executionReportUrl"]).json()
    lines = api.get(f"/api/v1/executions/{native['id']}/logs").json()["items"]
    said = {line["text"] for line in lines}
    for item in ("a", "b", "c"):  # the context is data: it never reached a shell as syntax
        assert f"ctx={SHELLISH} item={item}" in said, said
    assert not [text for text in said if text.startswith("pwned")], said


def test_execute_with_a_query_runs_only_the_matching_items(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    job = _native_job(
        api, project, "filtered", items=[{"n": 1}, {"n": 5}, {"n": 9}], command="echo {{ item.n }}"
    )
    rj = object_id(job["id"])
    losant.resource_job.execute(
        applicationId=app_id,
        resourceJobId=rj,
        executionOptions={"queryJson": '{"n": {"$gt": 2}}'},
    )
    log = _finished(losant, app_id, rj)
    assert json.loads(log["queryJson"]) == {"n": {"$gt": 2}}
    assert log["executionSummary"]["succeeded"] == 2, log


def test_logs_while_running_and_after_a_cancel(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    job = _native_job(api, project, "sleepy", items=[1], command="sleep 30")
    rj = object_id(job["id"])
    before_ms = int(time.time() * 1000) - 1000
    first = losant.resource_job.execute(applicationId=app_id, resourceJobId=rj)["executionId"]

    def running() -> dict[str, Any] | None:
        logs = _logs(losant, app_id, rj)
        return logs[0] if logs and logs[0]["status"] == "inProgress" else None

    log = wait_for(running, timeout=20)
    assert log["id"] == first and "runCompletedAt" not in log
    assert set(log["executionSummary"]) == {
        "succeeded",
        "failed",
        "timedOut",
        "inProgress",
        "remaining",
    }
    second = losant.resource_job.execute(applicationId=app_id, resourceJobId=rj)["executionId"]
    newest_first = _logs(losant, app_id, rj, limit=5)
    assert [entry["id"] for entry in newest_first] == [second, first]
    assert len(_logs(losant, app_id, rj)) == 1  # limit defaults to 1
    # Runs move on between two reads (an item starts): compare which runs, in which order.
    since = _logs(losant, app_id, rj, limit=5, since=before_ms)
    assert [entry["id"] for entry in since] == [second, first]
    assert _logs(losant, app_id, rj, since=int(time.time() * 1000) + 60_000) == []

    for execution_id in (first, second):
        assert losant.resource_job.cancel_execution(
            applicationId=app_id, resourceJobId=rj, executionId=execution_id
        ) == {"success": True}

    def all_canceled() -> list[dict[str, Any]] | None:
        logs = _logs(losant, app_id, rj, limit=5)
        return logs if all(entry["status"] == "canceled" for entry in logs) else None

    # The running item is stopped, not waited for (its `sleep 30` would end within the wait
    # below): it did not succeed, and stays to do (remaining).
    for entry in wait_for(all_canceled, timeout=15):
        assert entry["runCompletedAt"] and entry["cancelSourceType"] == "apiToken"
        assert entry["executionSummary"]["succeeded"] == 0, entry
    assert _logs(losant, app_id, rj, limit=5)[1]["executionSummary"]["remaining"] == 1


def test_failed_items_make_a_run_erroring_then_errored(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    slow = _native_job(
        api,
        project,
        "fails-then-naps",
        items=["bad", "slow"],
        command="test {{ item }} != bad && sleep 30",
    )
    rj = object_id(slow["id"])
    started = losant.resource_job.execute(applicationId=app_id, resourceJobId=rj)["executionId"]

    def erroring() -> dict[str, Any] | None:
        log = _logs(losant, app_id, rj)[0]
        return log if log["status"] == "erroring" else None

    log = wait_for(erroring, timeout=20)
    assert log["executionSummary"]["failed"] == 1 and log["executionSummary"]["inProgress"] == 1
    losant.resource_job.cancel_execution(
        applicationId=app_id, resourceJobId=rj, executionId=started
    )
    assert _finished(losant, app_id, rj)["status"] == "canceled"

    quick = _native_job(
        api, project, "fails", items=["bad", "ok"], command="test {{ item }} != bad"
    )
    losant.resource_job.execute(applicationId=app_id, resourceJobId=object_id(quick["id"]))
    log = _finished(losant, app_id, object_id(quick["id"]))
    assert log["status"] == "errored", log
    summary = log["executionSummary"]
    assert (summary["succeeded"], summary["failed"], summary["remaining"]) == (1, 1, 0)


def test_the_accumulator_a_step_returns_is_in_the_log(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    body = {
        "name": "sums",
        "steps": [
            {
                "name": "add",
                "kind": "python",
                "config": {
                    "callable": "fixtures_steps:echo",
                    "kwargs": {"accumulator": "{{ (accumulator or 0) | int + item }}"},
                },
            }
        ],
        "foreach": {"source": {"items": [1, 2, 3]}},
    }
    made = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert made.status_code == 201, made.text
    rj = object_id(made.json()["id"])
    losant.resource_job.execute(applicationId=app_id, resourceJobId=rj)
    log = _finished(losant, app_id, rj)
    assert (log["status"], log["accumulator"]) == ("completed", "6"), log


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resourceType": "device"}, "name"),
        ({"name": "x"}, "resourceType"),
        ({"name": "", "resourceType": "device"}, "name"),
        ({"name": "x", "resourceType": "sensor"}, "resourceType"),
        ({"name": "x", "resourceType": "device", "colour": "red"}, "colour"),
        ({"name": "x", "resourceType": "device", "maxIterationConcurrency": 11}, "maxIteration"),
        ({"name": "x", "resourceType": "device", "maxIterationConcurrency": 0}, "maxIteration"),
        ({"name": "x", "resourceType": "device", "iterationDelay": 60001}, "iterationDelay"),
        ({"name": "x", "resourceType": "device", "iterationTimeout": 59999}, "iterationTimeout"),
        ({"name": "x", "resourceType": "device", "iterationTimeout": 900001}, "iterationTimeout"),
        ({"name": "x", "resourceType": "device", "maxIterationRetries": 6}, "maxIterationRetries"),
        ({"name": "x", "resourceType": "device", "retryDelay": 30001}, "retryDelay"),
        ({"name": "x", "resourceType": "device", "retryDelay": "5"}, "retryDelay"),
        ({"name": "x", "resourceType": "device", "retryOnFailure": "yes"}, "retryOnFailure"),
        ({"name": "x", "resourceType": "device", "queryJson": "{nope"}, "queryJson"),
        ({"name": "x", "resourceType": "device", "queryJson": "[1]"}, "queryJson"),
        ({"name": "x", "resourceType": "device", "queryJson": '{"$where": "1"}'}, "queryJson"),
        ({"name": "x", "resourceType": "device", "queryJson": "{" * 8193}, "queryJson"),
        ({"name": "x", "resourceType": "device", "defaultContext": "[]"}, "defaultContext"),
        # Losant's JSON strings are JSON: no NaN or Infinity (never turned into null), no
        # nesting deeper than any jobport body may have, no NUL that PostgreSQL cannot keep.
        ({"name": "x", "resourceType": "device", "defaultContext": '{"a": NaN}'}, "defaultC"),
        ({"name": "x", "resourceType": "device", "queryJson": '{"a": -Infinity}'}, "queryJson"),
        ({"name": "x", "resourceType": "device", "defaultContext": DEEP}, "defaultContext"),
        ({"name": "x", "resourceType": "device", "queryJson": DEEP[:8000]}, "queryJson"),
        ({"name": "x", "resourceType": "device", "defaultContext": NESTED_33}, "defaultC"),
        ({"name": "x", "resourceType": "device", "defaultContext": '{"a": "\\u0000"}'}, "defaultC"),
        ({"name": "x", "resourceType": "device", "description": None}, "description"),
        ({"name": "x", "resourceType": "dataTableRow"}, "dataTableId"),
        ({"name": "x", "resourceType": "device", "dataTableId": "a" * 24}, "dataTableId"),
        ({"name": "x", "resourceType": "dataTableRow", "dataTableId": "b" * 24}, "dataTableId"),
        ({"name": "x", "resourceType": "dataTableRow", "dataTableId": "{{ t }}"}, "dataTableId"),
        ({"name": "x" * 256, "resourceType": "device"}, "name"),
    ],
)
def test_a_malformed_resource_job_is_a_400_naming_the_field(
    losant: Client, app_id: str, body: dict[str, Any], field: str
) -> None:
    message = _refused(
        lambda: losant.resource_jobs.post(applicationId=app_id, resourceJob=body),
        400,
        "Validation",
    )
    assert field in message
    assert losant.resource_jobs.get(applicationId=app_id)["totalCount"] == 0


def test_malformed_execute_list_logs_and_cancel_requests_are_400s(
    losant: Client, server: Server, api: httpx2.Client, project: str, app_id: str
) -> None:
    job = _native_job(api, project, "target")
    rj = object_id(job["id"])
    for options, field in (
        ({"templateContext": "not json"}, "templateContext"),
        ({"templateContext": "[1, 2]"}, "templateContext"),
        ({"queryJson": "{"}, "queryJson"),
        ({"context": "{}"}, "context"),
        ({"dataTableId": "c" * 24}, "dataTableId"),
        ({"templateContext": 5}, "templateContext"),
        ({"templateContext": '{"a": NaN}'}, "templateContext"),
        ({"templateContext": DEEP}, "templateContext"),
        ({"queryJson": '{"n": Infinity}'}, "queryJson"),
    ):
        message = _refused(
            lambda o=options: losant.resource_job.execute(
                applicationId=app_id, resourceJobId=rj, executionOptions=o
            ),
            400,
            "Validation",
        )
        assert field in message, (options, message)
    for query, field in (
        ({"sortField": "colour"}, "sortField"),
        ({"sortDirection": "up"}, "sortDirection"),
        ({"page": "-1"}, "page"),
        ({"perPage": "0"}, "perPage"),
        ({"perPage": "1001"}, "perPage"),
        ({"filterField": "description", "filter": "x"}, "filterField"),
    ):
        message = _refused(
            lambda q=query: losant.resource_jobs.get(applicationId=app_id, **q), 400, "Validation"
        )
        assert field in message
    for query in ({"limit": "0"}, {"limit": "many"}, {"since": "yesterday"}):
        _refused(lambda q=query: _logs(losant, app_id, rj, **q), 400, "Validation")
    _refused(
        lambda: losant.resource_job.cancel_execution(applicationId=app_id, resourceJobId=rj),
        400,
        "Validation",
    )
    _refused(
        lambda: losant.resource_job.delete(
            applicationId=app_id, resourceJobId=rj, includeWorkflows="maybe"
        ),
        400,
        "Validation",
    )
    not_json = httpx2.post(
        f"{server.url}/applications/{app_id}/resource-jobs",
        content=b"{not json",
        headers={**server.auth, "content-type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json()["type"] == "Validation"
    listed = httpx2.post(
        f"{server.url}/applications/{app_id}/resource-jobs", json=[1], headers=server.auth
    )
    assert listed.status_code == 400 and set(listed.json()) == {"type", "message"}


def test_unknown_application_job_and_execution_are_404s(
    losant: Client, api: httpx2.Client, project: str, app_id: str
) -> None:
    nowhere = uuid.uuid4().hex[:24]
    assert "Application" in _refused(
        lambda: losant.resource_jobs.get(applicationId=nowhere), 404, "NotFound"
    )
    _refused(
        lambda: losant.resource_jobs.post(
            applicationId=nowhere, resourceJob={"name": "x", "resourceType": "device"}
        ),
        404,
        "NotFound",
    )
    assert "Resource job" in _refused(
        lambda: losant.resource_job.get(applicationId=app_id, resourceJobId=nowhere),
        404,
        "NotFound",
    )
    # A job without foreach is no resource job.
    plain = {"name": "plain", "steps": [{"name": "s", "kind": "command", "config": {}}]}
    plain["steps"][0]["config"] = {"command": "true"}
    made = api.post(f"/api/v1/projects/{project}/jobs", json=plain).json()
    _refused(
        lambda: losant.resource_job.execute(
            applicationId=app_id, resourceJobId=object_id(made["id"])
        ),
        404,
        "NotFound",
    )
    job = _native_job(api, project, "one")
    other = _native_job(api, project, "two", items=[])
    started = losant.resource_job.execute(
        applicationId=app_id, resourceJobId=object_id(other["id"])
    )["executionId"]
    for execution_id in (nowhere, started):  # unknown, and a run of another job
        assert "Execution" in _refused(
            lambda e=execution_id: losant.resource_job.cancel_execution(
                applicationId=app_id, resourceJobId=object_id(job["id"]), executionId=e
            ),
            404,
            "NotFound",
        )
    _refused(lambda: _logs(losant, app_id, nowhere), 404, "NotFound")


def test_a_wrong_or_missing_token_is_a_401(server: Server, app_id: str) -> None:
    for token in ("jpk_nosuchclient_" + "x" * 40, "not-a-token", None):
        client = Client(auth_token=token, url=server.url)
        _refused(lambda c=client: c.resource_jobs.get(applicationId=app_id), 401, "Unauthorized")


def test_an_access_token_from_connect_token_is_a_bearer_too(
    server: Server, api: httpx2.Client, project: str, app_id: str
) -> None:
    key = admin_key(server.database_url, role="Operator", project=project)
    client_id, secret = parse_key_string(key)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    answer = httpx2.post(f"{server.url}/connect/token", data=form, timeout=30)
    assert answer.status_code == 200, answer.text
    operator = Client(auth_token=answer.json()["access_token"], url=server.url)
    job = _native_job(api, project, "by-token", items=[])
    started = operator.resource_job.execute(applicationId=app_id, resourceJobId=job["id"])
    assert started["success"] is True
    assert [j["name"] for j in operator.resource_jobs.get(applicationId=app_id)["items"]] == [
        "by-token"
    ]
    # An Operator runs and reads jobs but does not write them.
    _refused(
        lambda: operator.resource_job.delete(applicationId=app_id, resourceJobId=job["id"]),
        403,
        "Forbidden",
    )


def test_a_key_without_the_scope_is_a_403(
    server: Server, api: httpx2.Client, project: str, app_id: str
) -> None:
    viewer = Client(auth_token=admin_key(server.database_url, role="Viewer"), url=server.url)
    job = _native_job(api, project, "guarded")
    rj = object_id(job["id"])
    assert viewer.resource_jobs.get(applicationId=app_id)["totalCount"] == 1  # it may read
    assert viewer.resource_job.logs(applicationId=app_id, resourceJobId=rj) == []
    for call in (
        lambda: viewer.resource_jobs.post(
            applicationId=app_id, resourceJob={"name": "x", "resourceType": "device"}
        ),
        lambda: viewer.resource_job.patch(
            applicationId=app_id, resourceJobId=rj, resourceJob={"name": "y"}
        ),
        lambda: viewer.resource_job.delete(applicationId=app_id, resourceJobId=rj),
        lambda: viewer.resource_job.execute(applicationId=app_id, resourceJobId=rj),
        lambda: viewer.resource_job.cancel_execution(
            applicationId=app_id, resourceJobId=rj, executionId="a" * 24
        ),
    ):
        _refused(call, 403, "Forbidden")
    assert api.get(f"/api/v1/projects/{project}/jobs/guarded").json()["name"] == "guarded"
    # Another project's administrator is refused here too, whatever the call.
    elsewhere = api.post("/api/v1/projects", json={"name": f"p-{uuid.uuid4().hex[:10]}"})
    stranger = Client(
        auth_token=admin_key(
            server.database_url, role="Administrator", project=elsewhere.json()["id"]
        ),
        url=server.url,
    )
    _refused(lambda: stranger.resource_jobs.get(applicationId=app_id), 403, "Forbidden")


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = create_postgres_database()
    srv = Server(url, tmp_path_factory.mktemp("pg-server")).start()
    yield srv
    srv.stop()
    drop_postgres_database(url)


def test_the_face_on_postgresql(pg_server: Server) -> None:
    with pg_server.client() as api:
        name = f"p-{uuid.uuid4().hex[:10]}"
        project = api.post("/api/v1/projects", json={"name": name}).json()
        app_id = object_id(project["id"])
        losant = Client(auth_token=pg_server.key, url=pg_server.url)
        made = losant.resource_jobs.post(
            applicationId=app_id,
            resourceJob={"name": "on-pg", "resourceType": "device", "iterationDelay": 10},
        )
        api.patch(
            f"/api/v1/projects/{name}/jobs/on-pg",
            json={
                "foreach": {
                    **api.get(f"/api/v1/projects/{name}/jobs/on-pg").json()["foreach"],
                    "source": {"items": [1, 2]},
                }
            },
        ).raise_for_status()
        started = losant.resource_job.execute(
            applicationId=app_id,
            resourceJobId=made["id"],
            executionOptions={"templateContext": '{"myData": 1}'},
        )
        log = _finished(losant, app_id, made["id"])
        assert log["id"] == started["executionId"] and log["status"] == "completed", log
        assert log["executionSummary"]["succeeded"] == 2
        listed = losant.resource_jobs.get(applicationId=app_id, filterField="name", filter="on-*")
        assert [j["id"] for j in listed["items"]] == [made["id"]]


def test_a_data_table_is_a_table_on_a_connection(
    losant: Client, api: httpx2.Client, project: str, app_id: str, tmp_path: Path
) -> None:
    path = tmp_path / "tables.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE devices (name TEXT, kind TEXT)")
        db.executemany(
            "INSERT INTO devices VALUES (?, ?)",
            [("d1", "sensor"), ("d2", "sensor"), ("d3", "gateway")],
        )
        db.execute("CREATE TABLE gateways (name TEXT)")
        db.executemany("INSERT INTO gateways VALUES (?)", [("g1",), ("g2",), ("g3",), ("g4",)])
    connection = {"name": "tables", "url": f"sqlite:///{path}"}
    made_connection = api.post(f"/api/v1/projects/{project}/connections", json=connection)
    assert made_connection.status_code == 201, made_connection.text
    project_id = api.get(f"/api/v1/projects/{project}").json()["id"]
    ids = {t: object_id(f"{project_id}/tables/{t}") for t in ("devices", "gateways")}
    for table in ("devices", "gateways"):  # the tables jobs of the project iterate over
        body = {
            "name": f"native-{table}",
            "steps": [{"name": "each", "kind": "command", "config": {"command": "true"}}],
            "foreach": {"source": {"table": {"connection": "tables", "table": table}}},
        }
        assert api.post(f"/api/v1/projects/{project}/jobs", json=body).status_code == 201
    shown = losant.resource_jobs.get(applicationId=app_id, filter="native-d*", filterField="name")
    assert shown["items"][0]["dataTableId"] == ids["devices"]
    assert shown["items"][0]["resourceType"] == "dataTableRow"

    made = losant.resource_jobs.post(
        applicationId=app_id,
        resourceJob={
            "name": "rows",
            "resourceType": "dataTableRow",
            "dataTableId": ids["devices"].upper(),  # Losant's pattern allows either case
            "queryJson": '{"kind": "sensor"}',
        },
    )
    assert made["dataTableId"] == ids["devices"]
    native = api.get(f"/api/v1/projects/{project}/jobs/rows").json()
    assert native["foreach"]["source"]["table"] == {"connection": "tables", "table": "devices"}
    losant.resource_job.execute(applicationId=app_id, resourceJobId=made["id"])
    log = _finished(losant, app_id, made["id"])
    assert (log["status"], log["executionSummary"]["succeeded"]) == ("completed", 2), log

    # One run over another table, with no query: every row of it.
    losant.resource_job.execute(
        applicationId=app_id,
        resourceJobId=made["id"],
        executionOptions={"dataTableId": ids["gateways"], "queryJson": "{}"},
    )
    wait_for(lambda: len(_logs(losant, app_id, made["id"], limit=2)) == 2)
    log = _finished(losant, app_id, made["id"])
    assert log["executionSummary"]["succeeded"] == 4, log
    assert (
        losant.resource_job.get(applicationId=app_id, resourceJobId=made["id"])["dataTableId"]
        == ids["devices"]
    )  # the job keeps its own table

    # A table no job iterates over yet, found on the project's SQL connection.
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE meters (name TEXT)")
        db.execute("INSERT INTO meters VALUES ('m1')")
    fresh = losant.resource_jobs.post(
        applicationId=app_id,
        resourceJob={
            "name": "meters",
            "resourceType": "dataTableRow",
            "dataTableId": object_id(f"{project_id}/tables/meters"),
        },
    )
    losant.resource_job.execute(applicationId=app_id, resourceJobId=fresh["id"])
    assert _finished(losant, app_id, fresh["id"])["executionSummary"]["succeeded"] == 1

    patched = losant.resource_job.patch(
        applicationId=app_id, resourceJobId=made["id"], resourceJob={"dataTableId": ids["gateways"]}
    )
    assert patched["dataTableId"] == ids["gateways"]
