"""The Celery executor's use of its broker, against the real Redis."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from conftest import service_missing
from jobport.engine.executors.celery import TASK, make_app
from jobport.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def redis_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        service_missing("Redis", str(exc))
    return REDIS_URL


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
