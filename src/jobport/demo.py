"""The demo project `make run` seeds, and the Python callables its jobs use.

Its data jobs work on two SQLite files it makes in ./demo-data: `source.db` with an `orders`
table it fills, and `warehouse.db`, empty until `orders-to-warehouse` copies the orders
there (mode `full`, or `delta` for what changed since: execute with `{"mode": "delta"}`).
`new-orders` adds orders to the source; `warehouse-report` queries the warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobport.errors import Conflict

if TYPE_CHECKING:  # the services are imported by seed() alone: a worker running one of
    # the callables below needs none of them (nor their imports: croniter, the schedules)
    from jobport.domain.projects import Project
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

DATA_FOLDER = Path("demo-data")
DEMO_ORDERS = 1000

DATA_JOBS: list[dict[str, Any]] = [
    {
        "name": "orders-to-warehouse",
        "description": "A transfer step: the source's orders into the warehouse. Execute with "
        '{"mode": "full"} to replace them all, or {"mode": "delta"} for the orders changed '
        "since the last successful run (by updated_at, upserted by id).",
        "parametersSchema": NO_PARAMETERS,
        "steps": [
            {
                "name": "copy-orders",
                "kind": "transfer",
                "config": {
                    "source": {"connection": "demo-source", "table": "orders"},
                    "target": {"connection": "demo-warehouse", "table": "orders"},
                    "primaryKey": ["id"],
                    "watermark": "updated_at",
                    "batchSize": 500,
                },
            }
        ],
    },
    {
        "name": "new-orders",
        "description": "A sql step that changes data: adds an order for a customer (the "
        "values are bound parameters), so the next delta run has something to move.",
        "parameters": {"customer": "Acme Pty Ltd", "amount": 99.5},
        "parametersSchema": {
            "type": "object",
            "properties": {
                "customer": {"type": "string", "minLength": 1, "maxLength": 100},
                "amount": {"type": "number", "minimum": 0, "maximum": 1000000},
            },
            "additionalProperties": False,
        },
        "steps": [
            {
                "name": "insert",
                "kind": "sql",
                "config": {
                    "connection": "demo-source",
                    "query": "insert into orders (customer, amount, status, updated_at) "
                    "values (:customer, :amount, 'new', strftime('%Y-%m-%d %H:%M:%f', 'now'))",
                    "parameters": {
                        "customer": "{{ params.customer }}",
                        "amount": "{{ params.amount }}",
                    },
                },
            }
        ],
    },
    {
        "name": "warehouse-report",
        "description": "A sql step that returns records with a schema: revenue by customer "
        "in the warehouse (run orders-to-warehouse first).",
        "parameters": {"minimum": 0},
        "parametersSchema": {
            "type": "object",
            "properties": {"minimum": {"type": "number", "minimum": 0}},
            "additionalProperties": False,
        },
        "steps": [
            {
                "name": "revenue",
                "kind": "sql",
                "config": {
                    "connection": "demo-warehouse",
                    "query": "select customer, count(*) as orders, "
                    "round(sum(amount), 2) as revenue "
                    "from orders group by customer having sum(amount) >= :minimum "
                    "order by revenue desc",
                    "parameters": {"minimum": "{{ params.minimum }}"},
                    "maxRows": 100,
                },
            }
        ],
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


def make_data(folder: Path = DATA_FOLDER) -> tuple[Path, Path]:
    """The demo's source (with its orders, made once) and warehouse SQLite files."""
    folder.mkdir(parents=True, exist_ok=True)
    source, warehouse = folder.resolve() / "source.db", folder.resolve() / "warehouse.db"
    with contextlib.closing(sqlite3.connect(source)) as conn:
        conn.execute(
            "create table if not exists orders (id integer primary key, customer varchar(100) "
            "not null, amount numeric(12,2) not null, status varchar(20) not null, "
            "updated_at timestamp not null)"
        )
        if conn.execute("select count(*) from orders").fetchone()[0] == 0:
            start = dt.datetime(2026, 1, 1)
            conn.executemany(
                "insert into orders (customer, amount, status, updated_at) values (?, ?, ?, ?)",
                (
                    (
                        _CUSTOMERS[i % len(_CUSTOMERS)]["customer"],
                        round(10 + (i * 37) % 990 + (i % 100) / 100, 2),
                        ("new", "paid", "shipped")[i % 3],
                        (start + dt.timedelta(minutes=i)).isoformat(" "),
                    )
                    for i in range(DEMO_ORDERS)
                ),
            )
        conn.commit()
    sqlite3.connect(warehouse).close()
    return source, warehouse


def seed(rt: Runtime) -> Project:
    """Create the demo project, its connections and jobs, and the data its data jobs use;
    leaves existing ones as they are."""
    from jobport.services import connections as connection_service
    from jobport.services import jobs as job_service
    from jobport.services import projects as project_service

    project, _ = project_service.ensure(rt, "demo", "Demo jobs seeded by `make run`.")
    source, warehouse = make_data()
    for name, path, what in (
        ("demo-source", source, "the demo's orders (./demo-data/source.db)"),
        ("demo-warehouse", warehouse, "the demo's warehouse (./demo-data/warehouse.db)"),
    ):
        with contextlib.suppress(Conflict):
            connection_service.create(
                rt, project.id, {"name": name, "url": f"sqlite:///{path}", "description": what}
            )
    for job in [*DEMO_JOBS, *DATA_JOBS]:
        with contextlib.suppress(Conflict):
            job_service.create(rt, project.id, job)
    return project
