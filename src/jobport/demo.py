"""The demo project `make run` seeds, and the Python callables its jobs use."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from jobport.domain.projects import Project
from jobport.errors import Conflict
from jobport.services import jobs as job_service
from jobport.services import projects as project_service
from jobport.services.runtime import Runtime

# Every demo job says exactly what a caller may pass: anything else is refused with 422.
NO_PARAMETERS: dict[str, Any] = {"type": "object", "additionalProperties": False}

DEMO_JOBS: list[dict[str, Any]] = [
    {
        "name": "hello",
        "description": "A command step that greets someone.",
        "parameters": {"who": "world"},
        "parametersSchema": {
            "type": "object",
            "properties": {"who": {"type": "string", "minLength": 1, "maxLength": 100}},
            "additionalProperties": False,
        },
        "steps": [
            {
                "name": "greet",
                "kind": "command",
                "config": {"command": "echo hello {{ params.who }}"},
            },
        ],
    },
    {
        "name": "top-customers",
        "description": "A Python step that returns records (with an inferred schema).",
        "parameters": {"limit": 3},
        "parametersSchema": {
            "type": "object",
            "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 5}},
            "additionalProperties": False,
        },
        "steps": [
            {
                "name": "rows",
                "kind": "python",
                "config": {
                    "callable": "jobport.demo:top_customers",
                    "kwargs": {"limit": "{{ params.limit }}"},
                },
            },
        ],
    },
    {
        "name": "extract-transform",
        "description": "Two steps in parallel, then a third that needs both.",
        "parametersSchema": NO_PARAMETERS,
        "steps": [
            {
                "name": "extract-orders",
                "kind": "command",
                "config": {"command": "echo extracting orders; sleep 1; echo 120 orders"},
            },
            {
                "name": "extract-customers",
                "kind": "command",
                "config": {"command": "echo extracting customers; sleep 1; echo 40 customers"},
            },
            {
                "name": "merge",
                "kind": "python",
                "needs": ["extract-orders", "extract-customers"],
                "config": {"callable": "jobport.demo:merge"},
            },
        ],
    },
    {
        "name": "sleepy",
        "description": "Sleeps for a while: try cancelling it.",
        "parameters": {"seconds": 300},
        "parametersSchema": {
            "type": "object",
            "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 3600}},
            "additionalProperties": False,
        },
        "steps": [
            {
                "name": "sleep",
                "kind": "command",
                "config": {
                    "command": "echo sleeping {{ params.seconds }}s; sleep {{ params.seconds }}"
                },
            },
        ],
    },
    {
        "name": "noop",
        "description": "A Python step that does nothing (used by the benchmark).",
        "parametersSchema": NO_PARAMETERS,
        "steps": [{"name": "noop", "kind": "python", "config": {"callable": "jobport.demo:noop"}}],
    },
]

_CUSTOMERS = [
    {"customer": "Acme Pty Ltd", "country": "AU", "revenue": 182000.5, "orders": 41},
    {"customer": "Globex", "country": "US", "revenue": 150250.0, "orders": 33},
    {"customer": "Initech", "country": "US", "revenue": 98000.0, "orders": 27},
    {"customer": "Umbrella", "country": "GB", "revenue": 76000.25, "orders": 12},
    {"customer": "Hooli", "country": "US", "revenue": 51000.0, "orders": 9},
]


def top_customers(limit: int | str = 3) -> list[dict[str, Any]]:
    return _CUSTOMERS[: int(limit)]


def merge() -> dict[str, Any]:
    print("merging orders and customers")
    return {"orders": 120, "customers": 40}


def noop() -> None:
    return None


def sleep(seconds: float = 60) -> str:
    time.sleep(float(seconds))
    return "slept"


def seed(rt: Runtime) -> Project:
    """Create the demo project and its jobs; leaves existing ones as they are."""
    project, _ = project_service.ensure(rt, "demo", "Demo jobs seeded by `make run`.")
    for job in DEMO_JOBS:
        with contextlib.suppress(Conflict):
            job_service.create(rt, project.id, job)
    return project
