"""The foreach tests whose behaviour lives in the store, on a server whose store is
PostgreSQL: items stored and resumed, their states, the summary, cancel, retries, queries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Server, create_postgres_database, drop_postgres_database
from engine.test_foreach import (  # noqa: F401 - collected here again, on PostgreSQL
    test_a_killed_worker_loses_no_item_and_reruns_no_ended_one,
    test_a_query_filters_the_items_and_a_run_may_give_its_own,
    test_cancel_stops_new_items_and_the_running_ones,
    test_each_item_runs_the_steps_with_the_item_and_context_in_templates,
    test_failures_are_counted_and_retried_when_asked,
    test_object_ids_are_found_in_either_case,
    test_the_records_of_an_earlier_step_are_the_items,
    test_the_summary_shows_only_durable_ends_and_items_show_running,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = create_postgres_database()
    workdir = tmp_path_factory.mktemp("server")
    srv = Server(store, workdir).start()
    try:
        yield srv
    finally:
        srv.stop()
        drop_postgres_database(store)
