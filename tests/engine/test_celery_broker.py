"""The Celery executor's use of its broker, against the real Redis."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import service_missing
from jobport.engine.executors.celery import TASK, Publisher, make_app
from jobport.settings import Settings
from jobport.store.db import Database
from store.rows import add_execution, add_job, add_project, running

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def redis_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        service_missing("Redis", str(exc))
    return REDIS_URL


@pytest.fixture
def broker_queue(redis_url: str) -> Iterator[tuple[str, Any]]:
    """A queue of its own in the real Redis and a client, the queue deleted after."""
    import redis

    queue = f"test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    try:
        yield queue, client
    finally:
        client.delete(queue)
        client.close()


def queued_runs(db: Database, queue: str, count: int) -> list[str]:
    """`count` queued runs of a job on `queue`, and one running (not to be published)."""
    with db.write() as conn:
        job = add_job(conn, add_project(conn), queue=queue)
        ids = [add_execution(conn, job)["id"] for _ in range(count)]
        add_execution(conn, job, **running())
    return ids


def test_a_message_taken_from_redis_leaves_nothing_behind_to_restore(redis_url: str) -> None:
    """No acknowledgement emulation: a delivered message is gone from Redis at once. (The
    emulation keeps it in the `unacked` hash until the ack, two round trips per message; a
    message lost before its task starts is handed out again by the sweep instead.)"""
    import redis
    from kombu import Queue

    app = make_app(Settings(executor="celery", broker_url=redis_url))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    app.send_task(TASK, args=["an-execution-id"], queue=queue)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.llen(queue) == 1
        got: list[Any] = []
        with app.connection_for_read() as conn:
            consumer = conn.Consumer(
                Queue(queue), callbacks=[lambda _body, message: got.append(message)]
            )
            with consumer:
                conn.drain_events(timeout=10)
            assert len(got) == 1 and got[0].payload[0] == ["an-execution-id"]
            tag = got[0].delivery_tag
            # Delivered and not acknowledged: nothing of it is left in Redis.
            assert client.llen(queue) == 0
            assert not client.hexists("unacked", tag)
            assert client.zscore("unacked_index", tag) is None
    finally:
        client.delete(queue)
        client.close()


def test_a_batch_of_runs_goes_to_redis_in_one_round_trip(
    redis_url: str,
    broker_queue: tuple[str, Any],
    sqlite: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The publisher sends a batch's messages in one pipeline, not an LPUSH per run."""
    import redis

    queue, client = broker_queue
    ids = queued_runs(sqlite, queue, 50)
    pipelines: list[list[str]] = []
    alone: list[str] = []
    real_pipeline, real_command = redis.client.Pipeline.execute, redis.Redis.execute_command

    def pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        pipelines.append([str(c[0][0]) for c in self.command_stack])
        return real_pipeline(self, *args, **kwargs)

    def command(self: Any, *args: Any, **kwargs: Any) -> Any:
        alone.append(str(args[0]))
        return real_command(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    app = make_app(Settings(executor="celery", broker_url=redis_url))
    assert Publisher(app, sqlite).publish(ids) == 50
    assert client.llen(queue) == 50
    assert [p for p in pipelines if "LPUSH" in p] == [["LPUSH"] * 50]
    assert "LPUSH" not in alone
    messages = [json.loads(m) for m in client.lrange(queue, 0, -1)]
    bodies = [json.loads(base64.b64decode(m["body"])) for m in messages]
    assert sorted(args[0] for args, _kwargs, _embed in bodies) == sorted(ids)


def test_a_batch_that_fails_is_sent_again_whole(
    redis_url: str,
    broker_queue: tuple[str, Any],
    sqlite: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redis

    queue, client = broker_queue
    ids = queued_runs(sqlite, queue, 5)
    failures = [redis.ConnectionError("the broker went away")]
    real = redis.client.Pipeline.execute

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failures:
            self.reset()
            raise failures.pop()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", flaky)
    app = make_app(Settings(executor="celery", broker_url=redis_url))
    assert Publisher(app, sqlite).publish(ids) == 5
    assert not failures and client.llen(queue) == 5
