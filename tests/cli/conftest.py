"""CLI and SDK tests never see the developer's own credentials or `jobport login` profile."""

from __future__ import annotations

from pathlib import Path

import pytest

CREDENTIAL_VARIABLES = ("JOBPORT_KEY", "JOBPORT_CLIENT_ID", "JOBPORT_CLIENT_SECRET")


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Clear the credential variables and point the profile folder at an empty one."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    monkeypatch.setenv("JOBPORT_CONFIG_DIR", str(config))
    return config
