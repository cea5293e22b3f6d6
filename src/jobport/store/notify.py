"""News between the processes of one PostgreSQL database: NOTIFY in a transaction, LISTEN in
a thread.

Several API nodes, schedulers and workers share one database. What one of them changes,
the others learn at once through PostgreSQL's NOTIFY, delivered when (and only if) the
transaction that sent it commits: a run ended (`final`, its id), so a node wakes whoever
waits for it; access data changed (`access`), so every node forgets its cached keys. It
is a hint: a listener that was disconnected is told `reconnected` and re-checks, and every
waiter polls the database as well. On SQLite (one machine) nothing is sent: the processes
of one server tell each other directly.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

log = logging.getLogger("jobport.notify")

CHANNEL = "jobport"
RECONNECTED = "reconnected"  # told to every subscriber after a lost connection came back


def publish(conn: Connection, topic: str, payload: str = "") -> None:
    """Tell every listener `topic:payload` once this transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :message)"),
            {
                "channel": CHANNEL,
                "message": f"{topic}:{payload}",
            },
        )


class Listener:
    """LISTENs on its own connection in a daemon thread and calls the subscribers of each
    topic with the payload (in that thread: subscribers must be quick and thread-safe)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._subscribers: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def subscribe(self, topic: str, callback: Callable[[str], None]) -> None:
        self._subscribers[topic].append(callback)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jobport-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        delay, first = 0.5, True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if not first:  # what was sent while we were away is lost: look again
                        self._deliver(RECONNECTED, "")
                    first, delay = False, 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            topic, _, payload = note.payload.partition(":")
                            self._deliver(topic, payload)
            except Exception as exc:
                self.connected.clear()
                if self._stop.is_set():
                    return
                log.warning("listening for news lost its connection (%s); again in %gs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _deliver(self, topic: str, payload: str) -> None:
        for callback in self._subscribers.get(topic, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("a subscriber of %r failed", topic)
