"""Connections' URLs (kinds, masking) and the Fernet key that keeps their secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from jobport.domain.connections import (
    ConnectionSpec,
    Resolved,
    keep_masked_query,
    kind_of,
    masked,
    secret_query_values,
)
from jobport.errors import JobportError
from jobport.store.secrets import Cipher, load_cipher


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///data/warehouse.db", "sql"),
        ("postgresql+psycopg://etl:s3cret@db.example.com:5432/dw", "sql"),
        ("mysql+pymysql://root@127.0.0.1:3306/test", "sql"),
        ("mariadb+pymysql://root@127.0.0.1/test", "sql"),
        ("https://api.example.com/v2", "http"),
        ("http://user:pw@127.0.0.1:8080", "http"),
    ],
)
def test_the_kind_follows_the_url(url: str, kind: str) -> None:
    assert kind_of(url) == kind


@pytest.mark.parametrize("url", ["oracle://u:p@h/db", "not a url", "ftp://host/x", "https://"])
def test_other_urls_are_refused_with_what_is_accepted(url: str) -> None:
    with pytest.raises(ValueError):
        kind_of(url)
    with pytest.raises(ValueError):
        ConnectionSpec(name="c", url=url)


def test_passwords_are_masked_and_nothing_else_changes() -> None:
    assert masked("postgresql://etl:s3cret@db/dw") == "postgresql://etl:***@db/dw"
    assert masked("https://u:pa%2Fss@api.example.com:8443/v1?x=1") == (
        "https://u:***@api.example.com:8443/v1?x=1"
    )
    assert masked("sqlite:///x.db") == "sqlite:///x.db"
    resolved = Resolved("dw", "sql", "postgresql://etl:s3cret@db/dw", {"X-Token": "t0ken"})
    assert "s3cret" not in repr(resolved) and "t0ken" not in repr(resolved)


def test_header_names_and_values_are_checked() -> None:
    with pytest.raises(ValueError):
        ConnectionSpec(name="c", url="https://x.example", headers={"Bad Name": "v"})
    with pytest.raises(ValueError):
        ConnectionSpec(name="c", url="https://x.example", headers={"X": "a\r\nInjected: 1"})


def test_a_secret_round_trips_and_another_key_cannot_read_it(tmp_path: Path) -> None:
    cipher = load_cipher("", tmp_path / "keys" / "encryption.key")
    # Long enough that a random token cannot hold it by chance (2 letters could: 'pw' did).
    secret = "correct-horse-battery-staple"
    token = cipher.encrypt({"url": f"postgresql://u:{secret}@h/db", "headers": {}})
    assert secret not in token
    assert cipher.decrypt(token) == {"url": f"postgresql://u:{secret}@h/db", "headers": {}}
    with pytest.raises(JobportError) as refused:
        Cipher(Fernet.generate_key()).decrypt(token)
    assert refused.value.code == "bad_encryption_key"


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    first = load_cipher("", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_cipher("", path)
    assert again.decrypt(first.encrypt("x")) == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["encryption.key"]  # no draft left


def test_a_key_from_settings_wins_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    cipher = load_cipher(key, tmp_path / "unused.key")
    assert Cipher(key).decrypt(cipher.encrypt(1)) == 1
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(JobportError):
        load_cipher("too short", tmp_path / "unused.key")


def test_ipv6_hosts_ports_and_query_secrets_are_masked_as_written() -> None:
    assert masked("https://u:p4ss@[::1]:8443/x?token=abc&q=1") == (
        "https://u:***@[::1]:8443/x?token=***&q=1"
    )
    # A database URL is shown as SQLAlchemy renders it (its query sorted by name).
    assert masked("mysql+pymysql://u:pw@h/db?password=zz&charset=utf8mb4") == (
        "mysql+pymysql://u:***@h/db?charset=utf8mb4&password=***"
    )
    # SQLAlchemy reads any character but @ as part of a password; so does the mask.
    for odd in "/#?":
        assert masked(f"postgresql://u:se{odd}cr3t@db.example.com/db") == (
            "postgresql://u:***@db.example.com/db"
        )
    assert masked("postgresql://u@h/db?pass%77ord=s3cret") == "postgresql://u@h/db?pass%77ord=***"
    assert masked("sqlite:////var/data/x.db?mode=ro") == "sqlite:////var/data/x.db?mode=ro"
    assert secret_query_values("https://h/x?api_key=k3y&q=1") == ["k3y"]
    with pytest.raises(ValueError, match="port"):
        kind_of("http://h:99999/")


def test_a_masked_query_secret_keeps_the_stored_one() -> None:
    stored = "https://api.example.com/v1?token=s3cret&region=eu"
    assert keep_masked_query("https://api.example.com/v2?token=***&region=us", stored) == (
        "https://api.example.com/v2?token=s3cret&region=us"
    )
    assert keep_masked_query("https://api.example.com/v2?token=new", stored) == (
        "https://api.example.com/v2?token=new"
    )
