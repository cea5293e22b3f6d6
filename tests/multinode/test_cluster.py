"""Many machines, for real: two API nodes and two Celery workers (`jobport worker`) as separate
processes on one PostgreSQL database, once with Redis and once with RabbitMQ as the broker.

Every test shares the module's cluster (per broker) and checks one guarantee of the Celery
executor and of several nodes: each run exactly once, nothing lost when the broker restarts,
a cancel or a timeout reaching the worker that holds the run, a sync wait or a log follow on
any node, schedules fired once by two schedulers, access changes and failed-attempt counts
shared by the nodes, and a worker killed with SIGKILL.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet

from conftest import (
    Server,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    scrape,
    service_missing,
    value,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)

BROKERS = {
    "redis": ("redis://127.0.0.1:6379/{db}", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}
RATE_LIMITS = "redis://127.0.0.1:6379/{db}"


def _reachable(port: int) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return None
    except OSError as exc:
        return str(exc)


def _restart_broker(name: str) -> None:
    """Restart the broker as its operator would: Redis loses what it held (it keeps nothing
    on disk here), RabbitMQ keeps its durable queues."""
    if name == "redis":
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], timeout=30)
        wait_for(lambda: _reachable(6379) is not None, timeout=15)
        subprocess.run(
            [
                "redis-server",
                "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
                "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
                "--logfile", "/var/log/redis/ci.log",
            ],
            check=True,
            timeout=30,
        )  # fmt: skip
        wait_for(lambda: _reachable(6379) is None, timeout=30)
    else:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, timeout=60, capture_output=True)
        time.sleep(1)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, timeout=60, capture_output=True)
        wait_for(lambda: _reachable(5672) is None, timeout=30)


class Worker:
    """`jobport worker` in a subprocess (its own session), with the nodes' environment."""

    def __init__(
        self, env: dict[str, str], queue: str, workdir: Path, index: int, concurrency: int
    ) -> None:
        self.env, self.queue, self.workdir = env, queue, workdir
        self.concurrency = concurrency  # 1: the solo pool (runs in the worker's process)
        self.log_path = workdir / f"worker-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics = f"127.0.0.1:{free_port()}"

    def start(self) -> Worker:
        # A port picked free may be taken before the worker binds it (servers of other tests
        # start meanwhile): then pick another.
        for _ in range(5):
            self.metrics = f"127.0.0.1:{free_port()}"
            said = len(self.log())
            self._start()
            if self.proc is not None and self.proc.poll() is None:
                return self
            if "Address already in use" not in self.log()[said:]:
                break
        raise AssertionError(self.log()[-3000:])

    def _start(self) -> None:
        started = len(self.log())
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobport.cli", "worker", "--queues", self.queue,
             "--concurrency", str(self.concurrency), "--metrics-bind", self.metrics,
             "--log-level", "info"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        proc = self.proc
        wait_for(lambda: " ready." in self.log()[started:] or proc.poll() is not None, timeout=60)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> set[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return {int(p) for p in path.read_text().split()}
        return set()

    def run_pids(self) -> set[int]:
        """The processes that run its runs: its pool's (prefork), or itself (solo)."""
        return {self.pid} if self.concurrency == 1 else self.children()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Cluster:
    def __init__(self, broker: str, database_url: str, workdir: Path) -> None:
        self.broker = broker
        self.database_url = database_url
        self.queue = f"mn-{uuid.uuid4().hex[:8]}"
        url, _ = BROKERS[broker]
        settings = {
            "executor": "celery",
            "broker_url": url.format(db=7),
            "republish_seconds": "4",
            "rate_limit_storage_url": RATE_LIMITS.format(db=8),
            "auth_cache_seconds": "60",  # only a NOTIFY can make another node forget a key
            "wait_poll_seconds": "60",  # only a NOTIFY can wake a wait in time
            "encryption_key": Fernet.generate_key().decode(),
            "scheduler_poll_seconds": "0.5",
        }
        self.nodes = [Server(database_url, workdir, **settings) for _ in range(2)]
        self.nodes[0].prepare()
        self.nodes[1].key = self.nodes[0].key
        # Two schedulers: node A's, and one alone (node B runs none).
        self.nodes[1].env["JOBPORT_SCHEDULER_ENABLED"] = "false"
        self.scheduler_log = workdir / "scheduler.log"
        self.scheduler: subprocess.Popen[bytes] | None = None
        # One worker of each pool: prefork (2 pool processes) and solo (itself).
        self.workers = [
            Worker(self.nodes[0].env, self.queue, workdir, i, concurrency)
            for i, concurrency in enumerate((2, 1))
        ]
        self.clients: list[httpx2.Client] = []

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        for worker in self.workers:
            worker.start()
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "jobport.cli", "scheduler", "--log-level", "warning"],
            cwd=self.nodes[1].workdir,
            env=self.nodes[1].env,
            stdout=self.scheduler_log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.clients = [node.client() for node in self.nodes]
        self.project = f"p-{uuid.uuid4().hex[:8]}"
        made = self.clients[0].post("/api/v1/projects", json={"name": self.project})
        assert made.status_code == 201, made.text
        return self

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for worker in self.workers:
            worker.stop()
        if self.scheduler is not None:
            self.scheduler.terminate()
            self.scheduler.wait(15)
        for node in self.nodes:
            node.stop()

    def job(self, steps: list[dict[str, Any]], **fields: Any) -> str:
        name = f"j-{uuid.uuid4().hex[:8]}"
        body = {"name": name, "steps": steps, "queue": self.queue, **fields}
        made = self.clients[0].post(f"/api/v1/projects/{self.project}/jobs", json=body)
        assert made.status_code == 201, made.text
        return name

    def execute(self, node: int, job: str, query: str = "") -> dict[str, Any]:
        path = f"/api/v1/projects/{self.project}/jobs/{job}/execute{query}"
        response = self.clients[node].post(path, json={})
        assert response.status_code in (200, 202), response.text
        return response.json()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url.replace("+psycopg", "")) as conn:
            return conn.execute(query, args).fetchall()

    def statuses(self, ids: list[str]) -> Counter[str]:
        rows = self.sql("SELECT status FROM executions WHERE id = ANY(%s)", ids)
        return Counter(status for (status,) in rows)

    def logs(self) -> str:
        parts = [f"--- node {n.port}\n{n.log()[-4000:]}" for n in self.nodes]
        parts += [f"--- worker {w.pid}\n{w.log()[-4000:]}" for w in self.workers]
        return "\n".join(parts)


def py(name: str, function: str, **kwargs: Any) -> dict[str, Any]:
    config = {"callable": f"fixtures_steps:{function}", "kwargs": kwargs}
    return {"name": name, "kind": "python", "config": config}


def command(name: str, line: str) -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": line}}


@pytest.fixture(scope="module", params=sorted(BROKERS))
def cluster(request: Any, tmp_path_factory: Any) -> Iterator[Cluster]:
    broker = request.param
    for what, port in ((broker, BROKERS[broker][1]), ("redis (failed-attempt counts)", 6379)):
        why = _reachable(port)
        if why is not None:
            service_missing(what, why)
    # The failed-attempt counts of an earlier cluster (or run) must not count against this one.
    subprocess.run(["redis-cli", "-n", "8", "flushdb"], capture_output=True, timeout=30)
    database_url = create_postgres_database()
    workdir = tmp_path_factory.mktemp(f"cluster-{broker}")
    made = Cluster(broker, database_url, workdir)
    try:
        yield made.start()
    finally:
        made.stop()
        drop_postgres_database(database_url)


def _processes_of(execution_id: str) -> list[int]:
    from jobport.engine.processes import find_run_processes

    return find_run_processes(execution_id)


def test_a_thousand_runs_over_both_nodes_run_once_each_through_a_broker_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    job = cluster.job([py("record", "record", path=str(ran), value="{{ execution.id }}")])

    def start(i: int) -> str:
        return str(cluster.execute(i % 2, job)["id"])

    def ended(ids: list[str]) -> Any:
        return lambda: cluster.statuses(ids).get("succeeded", 0) == len(ids)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(start, range(500)))
        wait_for(ended(ids), timeout=120, interval=0.5)
        # With the workers paused, the next runs wait in the broker; it restarts while they
        # do and while more are accepted. Redis comes back empty: only the sweep's second
        # hand-out can run those.
        for worker in cluster.workers:
            os.killpg(worker.pid, signal.SIGSTOP)
        try:
            ids += list(pool.map(start, range(500, 750)))
            if cluster.broker == "redis":
                waiting = subprocess.run(
                    ["redis-cli", "-n", "7", "llen", cluster.queue], capture_output=True, text=True
                )
                assert int(waiting.stdout) > 0, "no message waited in the broker"
            restart = threading.Thread(target=_restart_broker, args=(cluster.broker,))
            restart.start()
            ids += list(pool.map(start, range(750, 1000)))
            restart.join(120)
        finally:
            for worker in cluster.workers:
                os.killpg(worker.pid, signal.SIGCONT)
    assert len(set(ids)) == 1000
    try:
        wait_for(ended(ids), timeout=180, interval=0.5)
    except AssertionError:
        pytest.fail(f"not all ended: {cluster.statuses(ids)}\n{cluster.logs()}")
    lines = ran.read_text().split()
    twice = [i for i, n in Counter(lines).items() if n > 1]
    assert not twice, f"ran more than once: {twice[:10]}"
    assert sorted(lines) == sorted(ids)
    # Both workers took part, and each counted what its pool processes ran.
    workers = cluster.sql("SELECT DISTINCT worker FROM executions WHERE id = ANY(%s)", ids)
    pids = {int(w.rsplit(":", 1)[1]) for (w,) in workers}
    counted = 0.0
    for worker in cluster.workers:
        assert pids & worker.run_pids(), f"worker {worker.pid} ran nothing"
        with httpx2.Client(base_url=f"http://{worker.metrics}") as client:
            samples = scrape(client)
        mine = value(samples, "jobport_runs_finished_total", job=job, status="succeeded")
        assert mine > 0
        assert value(samples, "jobport_runs_started_total", job=job) == mine
        counted += mine
    assert counted == 1000


def test_each_node_is_ready_with_the_database_and_the_broker(cluster: Cluster) -> None:
    for client in cluster.clients:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_a_cancel_sent_to_one_node_stops_the_run_a_worker_holds(cluster: Cluster) -> None:
    job = cluster.job([command("wait", "echo started; sleep 60")])
    execution_id = cluster.execute(1, job)["id"]
    b = cluster.clients[1]
    wait_for(lambda: b.get(f"/api/v1/executions/{execution_id}").json()["status"] == "running")
    wait_for(lambda: _processes_of(execution_id))
    # The log follows on the node that did not start it, from the worker that holds it.
    a = cluster.clients[0]
    with a.stream(
        "GET", f"/api/v1/executions/{execution_id}/logs", params={"follow": "true"}
    ) as stream:
        for line in stream.iter_lines():
            if "started" in line:
                break
    cancelled = a.post(f"/api/v1/executions/{execution_id}/cancel")
    assert cancelled.status_code in (200, 202), cancelled.text
    done = wait_for(
        lambda: (
            (e := b.get(f"/api/v1/executions/{execution_id}").json())["status"] == "cancelled" and e
        ),
        timeout=20,
    )
    assert done["status"] == "cancelled"
    assert _processes_of(execution_id) == []


def test_a_timeout_is_kept_by_the_worker_that_holds_the_run(cluster: Cluster) -> None:
    job = cluster.job([command("wait", "sleep 60")], timeoutSeconds=1)
    execution_id = cluster.execute(0, job)["id"]
    a = cluster.clients[0]
    wait_for(
        lambda: a.get(f"/api/v1/executions/{execution_id}").json()["status"] == "timed_out",
        timeout=20,
    )
    assert _processes_of(execution_id) == []


def test_a_sync_wait_on_either_node_is_woken_by_the_end_on_a_worker(cluster: Cluster) -> None:
    # wait_poll_seconds is 60 here: only PostgreSQL's NOTIFY can end these waits in time.
    job = cluster.job([py("talk", "chatty", lines=3)])
    for node in (0, 1):
        started = time.monotonic()
        done = cluster.execute(node, job, "?wait=30")
        assert done["status"] == "succeeded", done
        assert time.monotonic() - started < 10
        # What the Python step printed in a pool process is its log, read on the other node.
        logs = cluster.clients[1 - node].get(f"/api/v1/executions/{done['id']}/logs").json()
        printed = [x["text"] for x in logs["items"] if x["text"].startswith("line ")]
        assert printed == ["line 0", "line 1", "line 2"], logs


def test_schedules_fire_once_with_a_scheduler_on_each_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    ran = tmp_path / "fired"
    job = cluster.job([py("record", "record", path=str(ran), value="{{ execution.id }}")])
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    base = f"/api/v1/projects/{cluster.project}/jobs/{job}/schedules"
    for i in range(10):
        made = cluster.clients[i % 2].put(f"{base}/once-{i}", json={"runAt": at, "timeZone": "UTC"})
        assert made.status_code in (200, 201), made.text
    every = cluster.clients[0].put(f"{base}/every-second", json={"crons": ["* * * * * *"]})
    assert every.status_code in (200, 201), every.text
    time.sleep(6)
    cluster.clients[0].patch(f"{base}/every-second", json={"enabled": False})

    def per_schedule() -> dict[str, int]:
        rows = cluster.sql(
            "SELECT s.name, count(*) FROM executions e JOIN schedules s ON s.id = e.schedule_id"
            " WHERE e.job_id = (SELECT id FROM jobs WHERE name = %s) GROUP BY s.name",
            job,
        )
        return dict(rows)

    counts = wait_for(lambda: len(per_schedule()) == 11 and per_schedule(), timeout=20)
    assert cluster.scheduler is not None and cluster.scheduler.poll() is None
    # Whichever scheduler fired them, the runs went to the broker at once (not at the
    # sweep's second hand-out, republish_seconds later).
    late = cluster.sql(
        "SELECT id, extract(epoch FROM started_at - created_at) FROM executions"
        " WHERE job_id = (SELECT id FROM jobs WHERE name = %s)"
        " AND started_at - created_at > interval '3 seconds'",
        job,
    )
    assert not late, late
    assert all(counts[f"once-{i}"] == 1 for i in range(10)), counts

    def every_second() -> tuple[set[str], set[str]]:
        """The runs its fires started, and the runs that name it (a fire may also be
        recorded as skipped, with no run: an overlap on a busy machine)."""
        fired = cluster.sql(
            "SELECT f.execution_id FROM schedule_fires f JOIN schedules s"
            " ON s.id = f.schedule_id WHERE s.name = 'every-second' AND s.job_id ="
            " (SELECT id FROM jobs WHERE name = %s) AND f.execution_id IS NOT NULL",
            job,
        )
        runs = cluster.sql(
            "SELECT e.id FROM executions e JOIN schedules s ON s.id = e.schedule_id"
            " WHERE s.name = 'every-second' AND e.job_id = (SELECT id FROM jobs WHERE name = %s)",
            job,
        )
        return {e for (e,) in fired}, {e for (e,) in runs}

    fired, runs = wait_for(lambda: (both := every_second())[0] == both[1] and both, timeout=20)
    assert len(fired) >= 3, fired
    total = 10 + len(runs)
    wait_for(lambda: len(ran.read_text().split()) == total, timeout=20)
    assert len(set(ran.read_text().split())) == total


def test_access_changes_and_failed_attempts_are_shared_by_the_nodes(cluster: Cluster) -> None:
    a, b = cluster.clients
    admin = [{"role": "Administrator"}]
    made = a.post("/api/v1/keys", json={"description": "shared", "roles": admin})
    assert made.status_code == 201, made.text
    key = made.json()
    secret = key["key"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert b.get("/api/v1/projects", headers=headers).status_code == 200  # cached on B now
    disabled = a.patch(f"/api/v1/keys/{key['clientId']}", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    # auth_cache_seconds is 60 here: B forgets the key at once only because A told it.
    wait_for(lambda: b.get("/api/v1/projects", headers=headers).status_code == 401, timeout=3)

    # Failed attempts for one client id, split over both nodes, count together.
    other = a.post("/api/v1/keys", json={"description": "guessed", "roles": admin})
    from jobport.domain.access import key_string

    client_id, secret = other.json()["clientId"], other.json()["clientSecret"]
    guess = ("B" if secret[0] == "A" else "A") + secret[1:]
    wrong = {"Authorization": f"Bearer {key_string(client_id, guess)}"}
    answers = [cluster.clients[i % 2].get("/api/v1/projects", headers=wrong) for i in range(12)]
    codes = [r.status_code for r in answers]
    assert codes[:10] == [401] * 10, codes
    assert codes[10:] == [429, 429], codes


@pytest.mark.parametrize("victim_pool", ["prefork", "solo"])
def test_a_worker_killed_mid_run_loses_nothing_and_leaves_no_process(
    cluster: Cluster, tmp_path: Path, victim_pool: str
) -> None:
    started = tmp_path / "started"
    job = cluster.job([command("hold", f'echo "$JOBPORT_EXECUTION_ID" >> {started}; sleep 60')])
    slots = sum(w.concurrency for w in cluster.workers)
    ids = [cluster.execute(i % 2, job)["id"] for i in range(slots)]  # every slot: running
    wait_for(lambda: cluster.statuses(ids).get("running", 0) == slots, timeout=30)
    solo = next(w for w in cluster.workers if w.concurrency == 1)
    prefork = next(w for w in cluster.workers if w.concurrency > 1)
    victim, survivor = (solo, prefork) if victim_pool == "solo" else (prefork, solo)
    runners, children = victim.run_pids(), victim.children()
    held = [
        execution_id
        for execution_id, worker in cluster.sql(
            "SELECT id, worker FROM executions WHERE id = ANY(%s)", ids
        )
        if int(worker.rsplit(":", 1)[1]) in runners
    ]
    assert held, f"the {victim_pool} worker holds none of the runs"
    for execution_id in held:
        wait_for(lambda eid=execution_id: _processes_of(eid))
    os.kill(victim.pid, signal.SIGKILL)
    victim.proc.wait(10)  # type: ignore[union-attr]

    def lost() -> bool:
        rows = cluster.sql("SELECT status, error_code FROM executions WHERE id = ANY(%s)", held)
        return all(row == ("failed", "worker_lost") for row in rows)

    wait_for(lost, timeout=30)
    # Nothing of the dead worker is left: its pool processes (prefork), its reaper once it
    # has killed the runs' commands.
    for pid in children:
        wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), timeout=10)
    for execution_id in held:
        wait_for(lambda eid=execution_id: _processes_of(eid) == [], timeout=10)
    # The others go on on the survivor, and nothing started twice.
    others = [i for i in ids if i not in held]
    assert cluster.statuses(others) == Counter({"running": len(others)})
    assert sorted(started.read_text().split()) == sorted(ids)
    for execution_id in others:
        cluster.clients[0].post(f"/api/v1/executions/{execution_id}/cancel")
    wait_for(lambda: cluster.statuses(others).get("cancelled", 0) == len(others), timeout=20)
    # A new worker takes new runs.
    victim.start()
    assert cluster.execute(0, cluster.job([py("hi", "echo")]), "?wait=30")["status"] == "succeeded"
    assert survivor.proc is not None and survivor.proc.poll() is None


def test_a_solo_worker_whose_python_step_ignores_its_stop_starts_again_in_place(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A Python step blocked in sleep cannot be interrupted; with the solo pool the thread
    can only end with the worker's process, which execs itself again: same pid (its
    supervisor sees nothing), and it takes the next run."""
    queue = f"solo-{uuid.uuid4().hex[:8]}"
    alone = Worker(cluster.nodes[0].env, queue, tmp_path, 9, concurrency=1).start()
    try:
        stuck = cluster.job([py("nap", "sleep", seconds=300)], queue=queue)
        run = cluster.execute(0, stuck)
        wait_for(lambda: cluster.statuses([run["id"]]) == Counter({"running": 1}), timeout=30)
        cancelled = cluster.clients[1].post(f"/api/v1/executions/{run['id']}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        wait_for(lambda: "starts again in place" in alone.log(), timeout=30)
        assert cluster.statuses([run["id"]]) == Counter({"cancelled": 1})
        wait_for(lambda: alone.log().count(" ready.") == 2, timeout=60)
        assert alone.proc is not None and alone.proc.poll() is None
        quick = cluster.job([py("hi", "echo")], queue=queue)
        done = cluster.execute(1, quick, "?wait=30")
        assert done["status"] == "succeeded", done
        (worker,) = cluster.sql("SELECT worker FROM executions WHERE id = %s", done["id"])[0]
        assert int(worker.rsplit(":", 1)[1]) == alone.pid
    finally:
        alone.stop()


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    return False


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_worker_stopped_with_sigterm_finishes_its_runs_first(
    cluster: Cluster, tmp_path: Path, concurrency: int
) -> None:
    """Celery's warm shutdown, with either pool: the runs in progress end as they would
    have, then the worker exits 0."""
    queue = f"stop-{uuid.uuid4().hex[:8]}"
    alone = Worker(cluster.nodes[0].env, queue, tmp_path, 8, concurrency=concurrency).start()
    try:
        job = cluster.job([command("work", "sleep 3; echo done")], queue=queue)
        ids = [cluster.execute(0, job)["id"] for _ in range(concurrency)]
        wait_for(lambda: cluster.statuses(ids).get("running", 0) == concurrency, timeout=30)
        os.kill(alone.pid, signal.SIGTERM)
        assert alone.proc is not None and alone.proc.wait(30) == 0, alone.log()[-3000:]
        assert cluster.statuses(ids) == Counter({"succeeded": concurrency})
    finally:
        alone.stop()
