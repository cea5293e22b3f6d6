"""bench/run.py's memory figures (RSS after each phase, `--soak`), `--profile` and the
calibration line: one short run of the real bench against a real server, and the profile
summariser on a small raw file written here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import profiles
import run

ROOT = Path(__file__).resolve().parent.parent

STDLIB = "/usr/lib/python3.11"
SITE = "/venv/lib/python3.11/site-packages"
SRC = "/repo/src/jobport"


def frame(name: str, path: str, line: int = 10) -> str:
    return f"{name} ({path}:{line})"


def test_summarise_splits_server_and_workers_and_ranks_project_and_library_frames(
    tmp_path: Path,
) -> None:
    server = 'process 100:"python -m jobport.cli serve"'
    worker = 'process 101:"python -c forkserver"'
    boot = [
        frame("<module>", f"{STDLIB}/runpy.py"),
        frame("main", f"{SITE}/typer/main.py"),
        frame("serve", f"{SRC}/cli/serve.py"),
        frame("run_server", f"{SRC}/boot.py"),
    ]
    asgi = [
        frame("ServerErrorMiddleware.__call__", f"{SITE}/starlette/middleware/errors.py"),
        frame("ExceptionMiddleware.__call__", f"{SITE}/starlette/middleware/exceptions.py"),
        frame("Router.__call__", f"{SITE}/starlette/routing.py"),
    ]
    handler = frame("execute_job", f"{SRC}/api/v1/jobs.py")
    start = frame("start", f"{SRC}/services/executions.py")
    run_one = frame("Worker.run_one", f"{SRC}/engine/worker.py")
    lines = [
        # The server: 6 samples of the handler (4 of them in `start`), 2 of another thread
        ";".join([server, *boot, *asgi, handler, start, frame("x", f"{SITE}/sqlalchemy/a.py")])
        + " 4",
        ";".join([server, *boot, *asgi, handler, frame("dumps", f"{STDLIB}/json/__init__.py")])
        + " 2",
        ";".join([server, frame("_bootstrap", f"{STDLIB}/threading.py"), start]) + " 2",
        # and 2 on the event loop outside a request.
        ";".join([server, *boot, frame("Dispatcher.wait", f"{SRC}/engine/dispatcher.py")]) + " 2",
        # A worker, one process below the server: every sample in run_one.
        ";".join([server, worker, run_one, frame("claim", f"{SRC}/engine/worker.py", 20)]) + " 3",
        ";".join([server, worker, run_one, frame("claim", f"{SRC}/engine/worker.py", 30)]) + " 1",
        "garbage without a count",
    ]
    raw = tmp_path / "s.txt"
    raw.write_text("\n".join(lines) + "\n")
    out = profiles.summarise([(raw, True)])

    s = out["server"]
    assert s["samples"] == 10 and s["seconds"] == pytest.approx(10 / profiles.RATE)
    top = {name: (share, folded) for name, share, folded, _ in s["top"]}
    # The standard library (runpy, threading, json) and the generic frames (typer, the CLI)
    # are not ranked.
    assert not any(
        k.startswith(("<module>", "main ", "serve ", "_bootstrap", "dumps")) for k in top
    )
    # `start` is in 6 of 10 samples (under the handler and in the other thread).
    assert top["start (jobport/services/executions.py)"] == (0.6, 0)
    # The three middlewares and the handler are in the same 6 samples: one entry, the
    # innermost (ranked last among equals), with the other three folded in.
    chain = [k for k in top if k.startswith(("execute_job", "Router", "Exception", "Server"))]
    assert chain == ["execute_job (jobport/api/v1/jobs.py)"] and top[chain[0]] == (0.6, 3)
    assert next(outer for name, _, _, outer in s["top"] if name == chain[0]) == 0.6
    assert top["run_server (jobport/boot.py)"] == (0.8, 0)
    assert top["x (sqlalchemy/a.py)"] == (0.4, 0)
    assert top["Dispatcher.wait (jobport/engine/dispatcher.py)"] == (0.2, 0)
    assert [share for _, share, _, _ in s["top"]] == sorted(
        (share for _, share, _, _ in s["top"]), reverse=True
    )

    w = out["workers"]
    assert w["samples"] == 4 and w["processes"] == 1
    # run_one and claim (both lines together) are in every worker sample: nothing to say.
    assert w["top"] == []

    # Without the split (a celery worker's own file), every stack is a worker's.
    assert profiles.summarise([(raw, False)])["workers"]["samples"] == 14
    assert profiles.summarise([(tmp_path / "absent.txt", True)])["server"]["samples"] == 0


def test_short_path_keeps_the_project_and_libraries_only() -> None:
    assert profiles.short_path(f"{SITE}/sqlalchemy/engine/base.py") == "sqlalchemy/engine/base.py"
    assert profiles.short_path(f"{SRC}/store/db.py") == "jobport/store/db.py"
    assert profiles.short_path("jobport/store/db.py") == "jobport/store/db.py"
    assert profiles.short_path(f"{STDLIB}/threading.py") is None
    assert profiles.short_path("<frozen runpy>") is None
    assert profiles.parse_frame('process 1:"python x"') is None
    assert profiles.parse_frame("f (a/b.py:12)") == ("f", "a/b.py")


def test_profile_says_why_without_py_spy(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(profiles, "py_spy", lambda: None)
    args = run.parse_args(["--setups", "sqlite+local", "--profile", "/nonexistent"])
    server = run.Server(0, 1)
    try:
        res: dict[str, Any] = {}
        run.Profiler(args, server, res)
    finally:
        server.tmp.cleanup()
    assert res["profile"] == {"skipped": "py-spy not installed (pip install py-spy)"}
    run.print_profile(res["profile"])
    assert "profile: skipped: py-spy not installed (pip install py-spy)" in capsys.readouterr().out


def test_arguments() -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "none"])  # nothing to measure
    with pytest.raises(SystemExit):
        run.parse_args(["--soak", "100", "--url", "http://127.0.0.1:8080"])
    with pytest.raises(SystemExit):
        run.parse_args(["--profile", "/tmp/x", "--url", "http://127.0.0.1:8080"])
    args = run.parse_args(["--only", "none", "--soak", "100000"])
    assert args.only == ""
    # The soak's budget scales with N and is within the setup's limit.
    assert run.soak_budget(100_000) > 100_000 / 130
    assert args.timeout > run.soak_budget(100_000)
    assert run.parse_args([]).timeout == 180.0  # unchanged without --soak
    assert run.calibrate(n=20_000, rounds=2) > 0


def test_memory_soak_and_profile_against_a_real_server(tmp_path: Path, capsys: Any) -> None:
    prof = tmp_path / "prof"
    started = time.monotonic()
    # fmt: off
    cmd = [
        sys.executable, str(ROOT / "bench" / "run.py"), "--setups", "sqlite+local",
        "--workers", "2", "--only", "a", "--requests", "30", "--warmup", "5",
        "--soak", "300", "--soak-sample", "100", "--profile", str(prof), "--json",
    ]
    # fmt: on
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=55)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 55
    report = json.loads(done.stdout)
    assert report["environment"]["calibration_ms"] > 0
    (res,) = report["setups"]

    # RSS at start and after a: the server's and the workers' (fork server, 2 workers,
    # resource tracker).
    assert set(res["memory"]) == {"start", "a"}
    for mem in res["memory"].values():
        assert 10 < mem["server_mb"] < 2048
        assert 10 < mem["workers_mb"] < 4 * 2048 and mem["workers"] >= 3

    s = res["soak"]
    assert s["sent"] == s["accepted"] == 300 and s["errors"] == 0 and s["not_succeeded"] == 0
    assert s["drained"]
    assert [p["runs"] for p in s["samples"]] == [0, 100, 200, 300]
    for p in s["samples"]:
        assert 10 < p["server_mb"] < 2048 and 10 < p["workers_mb"] < 4 * 2048
    assert s["server_mb"] == s["samples"][-1]["server_mb"]
    assert s["growth_from"] == 100
    assert s["growth_mb"] == pytest.approx(
        s["samples"][-1]["server_mb"] - s["samples"][1]["server_mb"]
    )

    if profiles.py_spy() is None:
        assert res["profile"] == {"skipped": "py-spy not installed (pip install py-spy)"}
    else:
        a = res["profile"]["a"]
        assert a["files"] == [str(prof / "sqlite+local-a-server.txt")] and not a["errors"]
        assert a["requests"] == a["runs"] == 35
        assert a["server"]["samples"] > 0 and a["workers"]["samples"] > 0
        assert a["workers"]["processes"] >= 2
        assert any(
            name.startswith("execute_job ") or "jobport/" in name for name, *_ in a["server"]["top"]
        )
        assert any("jobport/engine/" in name for name, *_ in a["workers"]["top"])

    # The same report as text: the calibration line, the rows, the curve.
    run.print_report(report)
    text = capsys.readouterr().out
    assert "calibration: " in text
    assert "m  server resident memory at start" in text
    assert "m  server resident memory after a" in text
    assert "soak  server resident memory after 300 runs" in text
    rss_row = next(ln for ln in text.splitlines() if "soak  server resident memory" in ln)
    assert ("PASS" in rss_row) == (s["server_mb"] < 150) and "< 150 MB" in rss_row
    assert "soak  server memory growth, after 100 runs -> end" in text
    assert "     runs done   server MB   workers MB   seconds" in text
    assert any(ln.split()[:1] == ["300"] for ln in text.splitlines())
