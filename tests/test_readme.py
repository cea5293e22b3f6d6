"""The README runs top to bottom as written: its shell examples, in order, on a real server.

Every ```sh block runs in one bash session (so a variable one block sets, the next one
uses), in a fresh directory holding a link to this checkout's `.venv` and `jobs.yaml`-style
files the README itself writes, with `.venv/bin` on PATH, as a reader who followed `make run`
would have it. The test plays `make run`: it starts `jobport serve --demo` on
`./jobport.db` of that directory, and the examples' `127.0.0.1:8080` becomes its address.
Lines that run `make` are the ones the test stands in for, and are skipped.

Each `curl` must answer 2xx, unless the command's own comment starts with the status the
README says it answers (`# 403 insufficient_scope: ...`, `# -> 201 {...}`, `# 204`): then it
must answer exactly that. Any other failing command fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.slow

_STATUS_COMMENT = re.compile(r"#\s*(?:->\s*)?([1-5]\d\d)\b")

# A curl that records the status of each answer and holds it to what the README says.
_PRELUDE = r"""
set -eo pipefail
jp_curl_status() {
  local expected="${JP_EXPECT:-2xx}" status="$1"
  if [[ "$expected" == 2xx ]]; then
    [[ "$status" == 2* ]] && return 0
  elif [[ "$status" == "$expected" ]]; then
    return 0
  fi
  echo "README check: curl answered $status, expected $expected" >&2
  return 1
}
curl() {
  local out status
  out=$(command curl -w $'\n%{http_code}' "$@") || return $?
  status="${out##*$'\n'}"
  printf '%s\n' "${out%$'\n'*}"
  jp_curl_status "$status"
}
"""


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```sh block, in order."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if current is None and line.strip() == "```sh":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def logical_lines(code: str) -> list[str]:
    """Lines with their backslash continuations and open quotes joined, comments kept."""
    out: list[str] = []
    pending = ""
    for line in code.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\") or _open_quote(pending):
            continue
        out.append(pending)
        pending = ""
    if pending:
        out.append(pending)
    return out


def _open_quote(text: str) -> bool:
    """Whether a single- or double-quoted string is still open at the end of `text`."""
    quote = None
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote is None and char == "#":
            break  # the rest is a comment (good enough for the README's commands)
        elif quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
    return quote is not None


def script_of(readme: str, address: str) -> str:
    lines = [_PRELUDE]
    for start, code in shell_blocks(readme):
        lines.append(f"echo '--- README.md line {start}' >&2")
        for command in logical_lines(code.replace("127.0.0.1:8080", address)):
            stripped = command.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if re.match(r"^make\b", stripped):
                continue  # this test is what `make run` would be
            last = command.splitlines()[-1]
            found = _STATUS_COMMENT.search(last[last.find("#") :] if "#" in last else "")
            if "curl" in command and found:
                lines.append(f"export JP_EXPECT={found.group(1)}")
                lines.append(command)
                lines.append("unset JP_EXPECT")
            else:
                lines.append(command)
    return "\n".join(lines) + "\n"


def test_readme_shell_examples_run_in_order_against_a_real_server(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JOBPORT_") or key == "JOBPORT_TEST_PG_URL"
    }
    env.update(
        PATH=f"{tmp_path / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        JOBPORT_ADMIN_PASSWORD="readme-admin-password",
        JOBPORT_WORKERS="2",
    )
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobport.cli",
            "serve",
            "--port",
            str(port),
            "--demo",
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import httpx2

        def up() -> bool:
            try:
                return httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
            except httpx2.HTTPError:
                return False

        wait_for(up, timeout=60, interval=0.2)
        script = script_of((ROOT / "README.md").read_text(), f"127.0.0.1:{port}")
        (tmp_path / "readme.sh").write_text(script)
        result = subprocess.run(
            ["bash", str(tmp_path / "readme.sh")],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"a README example failed (exit {result.returncode}); the end of what it said:\n"
            f"{result.stderr[-4000:]}\n--- stdout:\n{result.stdout[-3000:]}"
        )
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
