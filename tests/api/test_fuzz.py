"""Schemathesis, with every check, against the document a real server serves.

The server is `jobport serve` in a subprocess, with an Administrator key. The document's
own examples first make a project, a job with a harmless command step, a schedule, a run
and a role (tests/api/openapi_examples.py); their names are the examples of the path
parameters, so the fuzzer reaches the run paths (logs, result, cancel) and not only 404s.

`make test` runs a bounded run: a fixed seed, 20 cases per operation and phase, about a
minute on two cores. `make fuzz` sets JOBPORT_FUZZ_EXAMPLES (and may set JOBPORT_FUZZ_SEED)
for a longer one with the same checks. Settings: tests/api/schemathesis.toml; hooks, and
the one narrowed check with its reasons: tests/api/fuzz_hooks.py. A failure prints each
finding with a curl line to replay it, and the server's tracebacks.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from api.openapi_examples import follow_the_examples
from conftest import Server

HERE = Path(__file__).resolve().parent
SEED = int(os.environ.get("JOBPORT_FUZZ_SEED", "20261130"))
FUZZ_EXAMPLES = int(os.environ.get("JOBPORT_FUZZ_EXAMPLES", "20"))
# Generous, so a slow machine does not fail the test: the run is bounded by its examples.
TIMEOUT = int(os.environ.get("JOBPORT_FUZZ_TIMEOUT", "900"))
# Operations on a run, with the paths they answer: what "the run paths are fuzzed" means.
RUN_PATHS = {
    ("GET", "/api/v1/executions/{execution_id}"): r"^/api/v1/executions/[^/]+$",
    ("GET", "/api/v1/executions/{execution_id}/logs"): r"^/api/v1/executions/[^/]+/logs$",
    ("GET", "/api/v1/executions/{execution_id}/result"): r"^/api/v1/executions/[^/]+/result$",
    ("POST", "/api/v1/projects/{project}/jobs/{job}/execute"): (
        r"^/api/v1/projects/[^/]+/jobs/[^/]+/execute$"
    ),
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT + 120)]


def fuzz_server(make_server: Any) -> Server:
    return make_server(
        # Schemathesis checks that a call without (or with wrong) credentials gets 401 on
        # every operation, from one address, thousands of times a minute: the default
        # lockout would answer 429 after the 30th, which is right but hides the 401. The
        # lockout has its own tests (test_remote_access.py).
        auth_failures_per_address="1000000/minute",
        auth_failures_per_client="1000000/minute",
    )


def test_schemathesis_finds_nothing(make_server: Any, tmp_path: Path) -> None:
    server = fuzz_server(make_server).start()
    with server.client() as api:
        follow_the_examples(api, api.get("/openapi.json").json())
    # `make fuzz` keeps the reports (HAR with every request, JSON summary) in build/fuzz.
    reports = Path(os.environ.get("JOBPORT_FUZZ_REPORT_DIR") or tmp_path / "schemathesis").resolve()
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "dropped.jsonl").unlink(missing_ok=True)  # `make fuzz` reuses build/fuzz
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--workers",
        "2",
        "--no-color",
        "--report",
        "har,json",
        "--report-dir",
        str(reports),
    ]
    env = {
        **os.environ,
        "JOBPORT_FUZZ_KEY": server.key or "",
        "JOBPORT_FUZZ_DROPPED": str(reports / "dropped.jsonl"),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    started = time.monotonic()
    run = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    summary = _summary(reports)
    print(f"schemathesis: {took:.0f} s, {summary}\n{_dropped(reports)}\n{output[-3000:]}")
    server_errors = _tracebacks(server.log())
    assert run.returncode == 0, (
        f"schemathesis found something (exit {run.returncode}):\n{output[-20000:]}\n"
        f"--- server log, tracebacks ---\n{server_errors}"
    )
    assert "Traceback" not in server.log(), server_errors
    answered = _run_path_statuses(reports)
    for method, template in RUN_PATHS:
        ok = sum(n for (m, t, s), n in answered.items() if (m, t) == (method, template) and s < 300)
        assert ok > 0, f"{method} {template} never answered 2xx: the run paths were not fuzzed"


def _summary(reports: Path) -> str:
    """Operations, cases, phases and failures, from the JSON report."""
    found = sorted(reports.glob("json-*.json"))
    if not found:
        return "no report"
    data = json.loads(found[-1].read_text())
    phases = {name: phase["status"] for name, phase in data["phases"].items()}
    return (
        f"{data['operations']['tested']} operations, {data['test_cases']['generated']} cases, "
        f"phases {phases}, {len(data['failures'])} kinds of failure, "
        f"{data.get('filtered', 0)} refusals dropped by filter_failure"
    )


def _dropped(reports: Path) -> str:
    """What fuzz_hooks.filter_failure dropped, by error code: to see that it stays narrow."""
    found = reports / "dropped.jsonl"
    if not found.exists():
        return "dropped: none"
    counts = collections.Counter(
        json.loads(line)["error"] for line in found.read_text().splitlines() if line
    )
    return "dropped by error code: " + ", ".join(f"{c} {n}" for c, n in counts.most_common())


def _run_path_statuses(reports: Path) -> collections.Counter[tuple[str, str, int]]:
    """(method, path template, status) -> how many, for RUN_PATHS, from the HAR report."""
    counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
    for har in reports.glob("har-*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            method = entry["request"]["method"]
            path = re.sub(r"^[a-z]+://[^/]+", "", entry["request"]["url"]).split("?")[0]
            for (want, template), pattern in RUN_PATHS.items():
                if method == want and re.match(pattern, path):
                    counts[(method, template, entry["response"]["status"])] += 1
    return counts


def _tracebacks(log: str) -> str:
    """Each distinct traceback of the server log: its frames in jobport's own code, and the
    exception."""
    lines = log.splitlines()
    seen: dict[str, None] = {}
    for i, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        end = i + 1
        while end < len(lines) and lines[end].startswith(" "):
            end += 1
        ours = [
            f"{frame}\n{lines[n + 1]}"
            for n, frame in enumerate(lines[i:end], start=i)
            if "/jobport/" in frame and "site-packages" not in frame and n + 1 < end
        ]
        exception = lines[end] if end < len(lines) else ""
        seen.setdefault("\n".join([*ours, exception]))  # uvicorn logs each one twice
    return "\n\n".join(seen)[-20000:]
