"""Settings of many machines that cannot work are refused at start, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"executor": "celery"}, "JOBPORT_EXECUTOR=celery needs JOBPORT_BROKER_URL"),
        ({"rate_limit_storage_url": "bogus://x"}, "JOBPORT_RATE_LIMIT_STORAGE_URL: unknown"),
    ],
)
def test_the_server_refuses_to_start_without_what_the_settings_need(
    make_server: Any, settings: dict[str, str], said: str
) -> None:
    server = make_server(**settings)
    with pytest.raises(RuntimeError, match="server exited"):
        server.start()
    log = server.log_path.read_text()
    assert said in log
    assert "Traceback" not in log


def _worker(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBPORT_")}
    return subprocess.run(
        [sys.executable, "-m", "jobport.cli", "worker", *args],
        cwd=tmp_path,
        env={**clean, "JOBPORT_DATABASE_URL": f"sqlite:///{tmp_path}/j.db", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_needs_a_broker_and_queue_names(tmp_path: Path) -> None:
    no_broker = _worker(tmp_path)
    assert no_broker.returncode != 0
    assert "JOBPORT_BROKER_URL is not set" in no_broker.stderr
    broker = {"JOBPORT_BROKER_URL": "redis://127.0.0.1:6379/0"}
    for queues in ("a b", "", ",", "-starts-with-a-dash"):
        bad = _worker(tmp_path, "--queues", queues, **broker)
        assert bad.returncode != 0, queues
        assert "is not a list of queue names" in bad.stderr, bad.stderr
    assert "Traceback" not in no_broker.stderr + bad.stderr


def test_a_worker_refuses_a_pool_it_cannot_run(tmp_path: Path) -> None:
    broker = {"JOBPORT_BROKER_URL": "redis://127.0.0.1:6379/0"}
    unknown = _worker(tmp_path, "--pool", "threads", **broker)
    assert unknown.returncode == 2, unknown.stderr
    assert "--pool: pool 'threads' is none of auto, prefork, solo" in unknown.stderr
    solo = _worker(tmp_path, "--pool", "solo", "--concurrency", "2", **broker)
    assert solo.returncode == 2, solo.stderr
    assert "the solo pool runs one run at a time: use --concurrency 1" in solo.stderr
    assert "Traceback" not in unknown.stderr + solo.stderr
