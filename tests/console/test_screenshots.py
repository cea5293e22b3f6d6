"""docs/console/screenshots.py keeps working: it starts its own demo server, signs in and
writes real PNGs (here two pages, into a temporary folder: the committed ones are not
rewritten by the tests). The README's console images are among the committed ones."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, service_missing
from console.conftest import CHROMIUM

SCRIPT = ROOT / "docs" / "console" / "screenshots.py"
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk comes first)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_script_shoots_pages_of_a_demo_server_it_starts(tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        service_missing("Chromium", f"{CHROMIUM} does not exist")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPORT_")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--pages", "home,remote-access"],
        env={**env, "JOBPORT_TEST_CHROMIUM": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shots = sorted(p.name for p in tmp_path.iterdir())
    assert shots == ["home.png", "remote-access.png"], done.stdout
    for shot in tmp_path.iterdir():
        assert png_size(shot) == (1280, 800)
        assert shot.stat().st_size > 5_000  # a page, not a blank viewport


def test_the_readmes_console_images_are_committed_and_small() -> None:
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\((docs/console/[^)\s]+\.png)\)", readme)
    assert len(images) >= 2, "the README shows two of the console's screenshots"
    for image in images:
        path = ROOT / image
        assert path.exists(), image
        assert png_size(path) == (1280, 800)
        assert path.stat().st_size < 300_000, image
