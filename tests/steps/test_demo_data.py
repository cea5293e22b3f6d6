"""The demo project's data jobs, as a `make run` user runs them: a full copy of the orders
into the warehouse, a new order, a delta run that moves only it, and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import ENCRYPTION_KEY, run_job

pytestmark = pytest.mark.timeout(120)


def test_the_demo_transfers_orders_full_then_delta(make_server: Any, tmp_path: Path) -> None:
    server = make_server(encryption_key=ENCRYPTION_KEY).start("--demo")
    assert (tmp_path / "demo-data" / "source.db").exists()
    with server.client() as api:
        names = {c["name"] for c in api.get("/api/v1/projects/demo/connections").json()["items"]}
        assert {"demo-source", "demo-warehouse"} <= names

        full = run_job(api, "demo", "orders-to-warehouse", mode="full")
        assert full["status"] == "succeeded", full
        assert full["result"]["rowsRead"] == full["result"]["rowsWritten"] == 1000

        added = run_job(
            api, "demo", "new-orders", parameters={"customer": "Tyrell'; --", "amount": 12.5}
        )
        assert added["status"] == "succeeded" and added["result"] == {"rowsAffected": 1}

        delta = run_job(api, "demo", "orders-to-warehouse", mode="delta")
        assert delta["status"] == "succeeded", delta
        assert (delta["result"]["mode"], delta["result"]["rowsRead"]) == ("delta", 1)

        report = run_job(api, "demo", "warehouse-report", parameters={"minimum": 0})
        assert report["status"] == "succeeded", report
        customers = {r["customer"]: r for r in report["result"]["records"]}
        assert customers["Tyrell'; --"]["orders"] == 1
        assert [c["name"] for c in report["result"]["schema"]] == ["customer", "orders", "revenue"]
    server.stop()

    # A second start keeps the data, the connections and the jobs as they are.
    server.start("--demo")
    with server.client() as api:
        again = run_job(api, "demo", "orders-to-warehouse", mode="delta")
        assert (again["result"]["mode"], again["result"]["rowsRead"]) == ("delta", 0)
