"""The `http` step through the real server, against a local HTTP server that records what it
received: values encoded into the URL, headers and body; retries on 503 and 429 honouring
Retry-After; connect errors; expected statuses; timeouts and cancels that end a request in
flight; the connection's secrets in no log line and no result."""

from __future__ import annotations

import email.utils
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from api.test_execute import execute, final
from conftest import Server, free_port, wait_for

pytestmark = pytest.mark.timeout(120)

KEY = "Hk6sTqW1pA4yJb7Xn0cV3zR8mLd5gF2eUo9iYt6wQ0s="  # the server's JOBPORT_ENCRYPTION_KEY
API_KEY = "s3cret-api-key-4711"  # a connection's header value
PASSWORD = "pw-s3cret-0815"  # a connection URL's password


# --- a local HTTP service that records every request --------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo: bool = False  # answer with the request's headers


@dataclass
class Received:
    method: str
    target: str  # the request target exactly as it arrived: path and query, encoded
    headers: dict[str, str]
    body: bytes
    at: float


class Service:
    """A threading http.server on a free port; `script(path, *replies)` sets the answers of
    a path in order (the last one repeats), and `requests(path)` says what arrived."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, list[Reply]] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                service.received.append(
                    Received(self.command, self.path, headers, body, time.monotonic())
                )
                script = service.scripts.get(self.path.split("?")[0]) or [Reply()]
                reply = script.pop(0) if len(script) > 1 else script[0]
                time.sleep(reply.delay)
                content = reply.body if not reply.echo else headers
                raw = content.encode() if isinstance(content, str) else json.dumps(content).encode()
                kind = "text/plain" if isinstance(content, str) else "application/json"
                self.send_response(reply.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("ETag", '"v1"')
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path] = list(replies)

    def requests(self, prefix: str) -> list[Received]:
        return [r for r in self.received if r.target.startswith(prefix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- fixtures: a jobport server, a project, connections -----------------------------------


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def jobport(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("http-step")
    server = Server(f"sqlite:///{workdir / 'jobport.db'}", workdir, encryption_key=KEY).start()
    yield server
    server.stop()


@pytest.fixture
def client(jobport: Server) -> Iterator[httpx2.Client]:
    with jobport.client() as api:
        yield api


@pytest.fixture
def space(client: httpx2.Client) -> str:
    name = f"http-{uuid.uuid4().hex[:10]}"
    assert client.post("/api/v1/projects", json={"name": name}).status_code == 201
    return name


def add_connection(api: httpx2.Client, project: str, name: str, url: str, **headers: str) -> None:
    body = {"name": name, "url": url, "headers": headers}
    response = api.post(f"/api/v1/projects/{project}/connections", json=body)
    assert response.status_code == 201, response.text


def make_job(
    api: httpx2.Client, project: str, config: dict[str, Any], *params: str, **step: Any
) -> str:
    """A job of one http step `call` (declaring `params`); returns its name."""
    spec = {
        "name": f"job-{uuid.uuid4().hex[:8]}",
        "parameters": dict.fromkeys(params, ""),
        "steps": [{"name": "call", "kind": "http", "config": config, **step}],
    }
    created = api.post(f"/api/v1/projects/{project}/jobs", json=spec)
    assert created.status_code == 201, created.text
    return spec["name"]


def run(
    api: httpx2.Client, project: str, config: dict[str, Any], parameters: Any = None, **step: Any
) -> dict[str, Any]:
    """Execute a new job of one http step with ?wait= and return the finished run."""
    job = make_job(api, project, config, *(parameters or {}), **step)
    body = execute(api, project, job, wait=60, parameters=parameters or {}).json()
    return final(api, body["id"], timeout=60)


def logs(api: httpx2.Client, execution_id: str) -> str:
    lines = api.get(f"/api/v1/executions/{execution_id}/logs", params={"limit": 10000}).json()
    return "\n".join(line["text"] for line in lines["items"])


def unique(prefix: str = "/t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- the tests ----------------------------------------------------------------------------


def test_values_arrive_encoded_and_the_connections_headers_with_every_request(
    client: httpx2.Client, space: str, service: Service
) -> None:
    base = unique("/base")
    add_connection(client, space, "crm", service.url + base, **{"X-Api-Key": API_KEY})
    config = {
        "connection": "crm",
        "method": "POST",
        "path": "/customers/{{ params.id }}/refresh",
        "query": {"since": "{{ params.since }}"},
        "headers": {"X-Request": "{{ execution.id }}"},
        "json": {"who": "{{ params.who }}"},
        "expectedStatus": [200, 201],
        "timeoutSeconds": 30,
        "retries": 3,
        "resultHeaders": ["ETag"],
    }
    params = {"id": "a/b?x=1#y", "since": "2026-01-01 00:00&admin=1", "who": 'Ann "&" <Bob>'}
    done = run(client, space, config, params, result=True)
    assert done["status"] == "succeeded", done

    [got] = service.requests(base)
    assert got.method == "POST"
    assert got.target == (
        f"{base}/customers/a%2Fb%3Fx%3D1%23y/refresh?since=2026-01-01+00%3A00%26admin%3D1"
    )
    assert got.headers["x-api-key"] == API_KEY
    assert got.headers["x-request"] == done["id"]
    assert got.headers["host"] == service.url.removeprefix("http://")
    assert json.loads(got.body) == {"who": 'Ann "&" <Bob>'}
    assert done["result"] == {"status": 200, "headers": {"ETag": '"v1"'}, "body": {"ok": True}}
    text = logs(client, done["id"])
    assert f"POST {service.url}{got.target} -> 200" in text
    assert "attempt 1/4" in text and " ms" in text


@pytest.mark.parametrize("value", ["@evil.example", "//evil.example", "../../admin"])
def test_a_parameter_never_leaves_the_connections_host(
    client: httpx2.Client, space: str, service: Service, value: str
) -> None:
    base = unique("/host")
    add_connection(client, space, "api", service.url + base)
    config = {"connection": "api", "path": "/items/{{ params.p }}"}
    done = run(client, space, config, parameters={"p": value})
    assert done["status"] == "succeeded", done
    [got] = service.requests(base)  # it arrived here, at the connection's host
    assert got.headers["host"] == service.url.removeprefix("http://")
    assert got.target == f"{base}/items/" + value.replace("@", "%40").replace("/", "%2F")


def test_a_url_step_without_a_connection(client: httpx2.Client, space: str, service: Service):
    path = unique("/plain")
    config = {"url": service.url + path + "/{{ params.n }}?fixed=1", "query": {"q": "x y"}}
    done = run(client, space, config, parameters={"n": "7/8"})
    assert done["status"] == "succeeded", done
    [got] = service.requests(path)
    assert got.method == "GET" and got.target == f"{path}/7%2F8?fixed=1&q=x+y"


def test_a_line_break_in_a_header_value_is_refused_before_any_request(
    client: httpx2.Client, space: str, service: Service
) -> None:
    path = unique("/crlf")
    config = {"url": service.url + path, "headers": {"X-Who": "{{ params.who }}"}}
    done = run(client, space, config, parameters={"who": "me\r\nX-Admin: yes"})
    assert done["status"] == "failed" and done["error"]["code"] == "template_error", done
    assert "line break" in done["error"]["message"]
    assert service.requests(path) == []


def test_503_is_retried_after_retry_after_then_200(
    client: httpx2.Client, space: str, service: Service
) -> None:
    path = unique("/flaky")
    service.script(path, Reply(503, "busy", {"Retry-After": "1"}), Reply(200, {"n": 2}))
    config = {"url": service.url + path, "retries": 2, "retryDelaySeconds": 0}
    done = run(client, space, config)
    assert done["status"] == "succeeded", done
    first, second = service.requests(path)
    assert second.at - first.at >= 0.95  # the Retry-After, not the 0s backoff
    text = logs(client, done["id"])
    assert "-> 503" in text and "retrying in 1.0s (Retry-After)" in text
    assert "-> 200" in text and "attempt 2/3" in text


def test_429_with_an_http_date_is_honoured_and_a_long_one_is_capped(
    client: httpx2.Client, space: str, service: Service
) -> None:
    path = unique("/limited")
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    service.script(path, Reply(429, "slow down", {"Retry-After": when}), Reply(200))
    done = run(client, space, {"url": service.url + path, "retries": 1, "retryDelaySeconds": 0})
    assert done["status"] == "succeeded", done
    first, second = service.requests(path)
    assert 1.5 <= second.at - first.at <= 5

    path = unique("/capped")
    service.script(path, Reply(429, "later", {"Retry-After": "3600"}), Reply(200))
    config = {"url": service.url + path, "retries": 1, "maxRetryDelaySeconds": 0.5}
    done = run(client, space, config)
    assert done["status"] == "succeeded", done
    first, second = service.requests(path)
    assert 0.4 <= second.at - first.at <= 3


def test_retries_run_out_with_the_last_status_and_the_start_of_the_body(
    client: httpx2.Client, space: str, service: Service
) -> None:
    path = unique("/down")
    service.script(path, Reply(503, "maintenance until noon " + "x" * 2000))
    done = run(client, space, {"url": service.url + path, "retries": 2, "retryDelaySeconds": 0.1})
    assert done["status"] == "failed", done
    message = done["error"]["message"]
    assert "answered 503, expected 2xx: maintenance until noon" in message
    assert len(message) < 1000
    assert len(service.requests(path)) == 3


def test_a_connect_error_is_retried_then_fails_clearly(client: httpx2.Client, space: str) -> None:
    port = free_port()  # nothing listens there
    add_connection(client, space, "gone", f"http://127.0.0.1:{port}/v1")
    config = {"connection": "gone", "path": "/x", "retries": 2, "retryDelaySeconds": 0.2}
    done = run(client, space, config)
    assert done["status"] == "failed", done
    assert (
        f"could not connect to http://127.0.0.1:{port} after 3 attempt(s)"
        in (done["error"]["message"])
    )
    text = logs(client, done["id"])
    assert text.count("could not connect") >= 3
    assert "retrying in 0.2s" in text and "retrying in 0.4s" in text


def test_expected_status(client: httpx2.Client, space: str, service: Service) -> None:
    path = unique("/missing")
    service.script(path, Reply(404, {"error": "no such customer"}))
    done = run(client, space, {"url": service.url + path, "retries": 3})
    assert done["status"] == "failed", done  # a 404 is not retried
    assert 'answered 404, expected 2xx: {"error": "no such customer"}' in done["error"]["message"]
    assert len(service.requests(path)) == 1
    config = {"url": service.url + path, "expectedStatus": 404}
    done = run(client, space, config, result=True)
    assert done["status"] == "succeeded", done
    assert done["result"]["status"] == 404
    assert done["result"]["body"] == {"error": "no such customer"}


def test_the_attempt_timeout_fails_with_a_clear_message(
    client: httpx2.Client, space: str, service: Service
) -> None:
    path = unique("/slow")
    service.script(path, Reply(200, delay=5))
    started = time.monotonic()
    done = run(client, space, {"url": service.url + path, "timeoutSeconds": 0.5})
    assert time.monotonic() - started < 4
    assert done["status"] == "failed", done
    assert "no answer within 0.5s" in done["error"]["message"]


def test_the_step_timeout_and_a_cancel_end_the_request_in_flight(
    client: httpx2.Client, space: str, service: Service
) -> None:
    path = unique("/stuck")
    service.script(path, Reply(200, delay=60))
    started = time.monotonic()
    done = run(client, space, {"url": service.url + path, "timeoutSeconds": 120}, timeoutSeconds=1)
    assert done["status"] == "timed_out", done
    assert time.monotonic() - started < 8
    # the step itself stopped: not left to the grace period, after which its worker is replaced
    assert done["steps"][0]["status"] == "timed_out"
    assert done["steps"][0]["error"] == "timed out after 1.0s", done["steps"][0]

    # a cancel, once during the request and once during a retry's wait
    for reply in (Reply(200, delay=60), Reply(503, headers={"Retry-After": "60"})):
        path = unique("/cancel")
        service.script(path, reply)
        job = make_job(client, space, {"url": service.url + path, "retries": 1})
        running = execute(client, space, job).json()
        wait_for(lambda p=path: service.requests(p))
        time.sleep(0.3)
        started = time.monotonic()
        client.post(f"/api/v1/executions/{running['id']}/cancel")
        ended = final(client, running["id"])
        assert ended["status"] == "cancelled"
        assert time.monotonic() - started < 2  # below the servers' 2s grace period
        assert ended["steps"][0]["error"] == "cancelled", ended["steps"][0]
        assert len(service.requests(path)) == 1


def test_the_connections_secrets_appear_in_no_log_and_no_result(
    client: httpx2.Client, space: str, service: Service
) -> None:
    base = unique("/secret")
    url = f"http://bot:{PASSWORD}@{service.url.removeprefix('http://')}{base}"
    add_connection(client, space, "vault", url, **{"X-Api-Key": API_KEY})
    service.script(f"{base}/echo", Reply(200, echo=True))
    done = run(client, space, {"connection": "vault", "path": "/echo"}, result=True)
    assert done["status"] == "succeeded", done
    [got] = service.requests(base)
    assert got.headers["x-api-key"] == API_KEY  # it was sent
    assert got.headers["authorization"].startswith("Basic ")  # the URL's user and password
    assert done["result"]["body"]["x-api-key"] == "***"  # echoed back, and scrubbed

    service.script(f"{base}/fail", Reply(500, echo=True))
    failed = run(client, space, {"connection": "vault", "path": "/fail"})
    assert failed["status"] == "failed", failed
    for execution in (done, failed):
        text = logs(client, execution["id"]) + json.dumps(
            client.get(f"/api/v1/executions/{execution['id']}").json()
        )
        assert f"GET {service.url}{base}/" in text  # the URL is logged, without its password
        for secret in (API_KEY, PASSWORD, got.headers["authorization"].split()[1]):
            assert secret not in text


def test_bad_input_fails_with_a_clear_message(client: httpx2.Client, space: str) -> None:
    done = run(client, space, {"connection": "nowhere", "path": "/x"})
    assert done["status"] == "failed"
    assert "no connection 'nowhere'" in done["error"]["message"]

    add_connection(client, space, "db", "sqlite:///tmp/nothing.db")
    done = run(client, space, {"connection": "db", "path": "/x"})
    assert done["status"] == "failed"
    assert "'db' is a sql connection; an http step needs an http(s) one" in done["error"]["message"]

    spec = {"name": "bad", "steps": [{"name": "call", "kind": "http"}]}
    for config, reason in [
        ({"url": "https://{{ params.host }}/x"}, "scheme, host and port must be literal"),
        ({"url": "not a url"}, "absolute http(s) URL"),
        ({"url": "https://x.example", "connection": "crm"}, "exactly one of"),
    ]:
        spec["steps"][0]["config"] = config
        response = client.post(f"/api/v1/projects/{space}/jobs", json=spec)
        assert response.status_code == 422, response.text
        assert reason in response.json()["message"]
