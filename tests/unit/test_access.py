"""Access rules as pure data: scopes, key strings, firewall rules, client addresses, principals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobport.domain.access import (
    FirewallRule,
    Grant,
    Principal,
    address_allowed,
    check_scope,
    client_address,
    hash_secret,
    key_string,
    new_client_id,
    new_secret,
    parse_key_string,
    scope_covers,
    secret_matches,
)


@pytest.mark.parametrize(
    ("granted", "needed", "expected"),
    [
        ("*", "keys:write", True),
        ("jobs:*", "jobs:execute", True),
        ("jobs:*", "executions:read", False),
        ("jobs:read", "jobs:read", True),
        ("jobs:read", "jobs:write", False),
        ("jobs:read", "jobs:*", False),
    ],
)
def test_scope_wildcards(granted: str, needed: str, expected: bool) -> None:
    assert scope_covers(granted, needed) is expected


def test_unknown_scopes_are_refused_by_name() -> None:
    assert check_scope("jobs:*") == "jobs:*"
    with pytest.raises(ValueError, match="unknown scope 'jobs:fly'"):
        check_scope("jobs:fly")
    with pytest.raises(ValueError, match="unknown scope 'rockets:\\*'"):
        check_scope("rockets:*")


def test_a_key_string_round_trips_and_is_recognisable() -> None:
    client_id, secret = new_client_id(), new_secret()
    key = key_string(client_id, secret)
    assert key.startswith(f"jpk_{client_id}_{secret}")
    assert parse_key_string(key) == (client_id, secret)


@pytest.mark.parametrize("position", [5, 30, -3])
def test_a_typo_in_a_key_is_caught_by_its_checksum(position: int) -> None:
    key = key_string(new_client_id(), new_secret())
    wrong = "A" if key[position] != "A" else "B"
    typo = key[:position] + wrong + key[position + 1 :]
    with pytest.raises(ValueError):
        parse_key_string(typo)


@pytest.mark.parametrize(
    "value", ["", "jpk_", "abc", "jpk_short_secret", "Bearer jpk_x", "jpk_" + "a" * 80]
)
def test_malformed_keys_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_key_string(value)


def test_secret_hash_depends_on_the_pepper() -> None:
    secret = new_secret()
    stored = hash_secret(secret, "pepper")
    assert secret_matches(secret, stored, "pepper")
    assert not secret_matches(secret, stored, "other pepper")
    assert not secret_matches(secret + "x", stored, "pepper")
    assert not secret_matches(secret, None, "pepper")


def rule(start: str, end: str | None = None, enabled: bool = True) -> dict[str, object]:
    return {"name": "r", "startIp": start, "endIp": end or start, "enabled": enabled}


@pytest.mark.parametrize(
    ("rules", "address", "allowed"),
    [
        ([], "203.0.113.9", True),
        ([rule("10.0.0.1", "10.0.0.255")], "10.0.0.77", True),
        ([rule("10.0.0.1", "10.0.0.255")], "10.0.1.1", False),
        ([rule("10.0.0.1", "10.0.0.255")], "::ffff:10.0.0.77", True),
        ([rule("2001:db8::1", "2001:db8::ffff")], "2001:db8::abcd", True),
        ([rule("2001:db8::1", "2001:db8::ffff")], "2001:db8:1::1", False),
        ([rule("2001:db8::1", "2001:db8::ffff")], "10.0.0.1", False),
        ([rule("10.0.0.1", enabled=False)], "10.0.0.1", False),
        ([rule("10.0.0.1")], "not an address", False),
    ],
)
def test_firewall_rules(rules: list[dict[str, object]], address: str, allowed: bool) -> None:
    assert address_allowed(rules, address) is allowed


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("10.0.0.9", "10.0.0.1", "endIp must not be lower"),
        ("10.0.0.1", "2001:db8::1", "both be IPv4 or both IPv6"),
        ("10.0.0.300", "10.0.0.1", "not an IPv4 or IPv6 address"),
    ],
)
def test_bad_firewall_rules_say_why(start: str, end: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FirewallRule.model_validate({"name": "r", "startIp": start, "endIp": end})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("127.0.0.1", None, [], "127.0.0.1"),
        ("127.0.0.1", "203.0.113.5", [], "127.0.0.1"),  # untrusted peer: header ignored
        ("127.0.0.1", "203.0.113.5", ["127.0.0.1"], "203.0.113.5"),
        # A client can prepend anything; only the hop the proxy added counts.
        ("10.0.0.2", "6.6.6.6, 203.0.113.5", ["10.0.0.0/8"], "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5, 10.0.0.3", ["10.0.0.0/8"], "203.0.113.5"),
        ("::ffff:127.0.0.1", "2001:db8::7", ["127.0.0.1"], "2001:db8::7"),
    ],
)
def test_client_address(
    peer: str, forwarded: str | None, trusted: list[str], expected: str
) -> None:
    assert client_address(peer, forwarded, trusted) == expected


def principal(*grants: Grant, token: frozenset[str] | None = None) -> Principal:
    return Principal(kind="apiKey", id="k", name="k", grants=grants, token_scopes=token)


def test_application_grants_cover_every_project() -> None:
    p = principal(Grant("Operator", None, frozenset({"jobs:execute"})))
    assert p.allows("jobs:execute", "any-project")
    assert p.allows("jobs:execute", None)
    assert not p.allows("jobs:write", "any-project")
    assert p.project_ids("jobs:execute") is None


def test_project_grants_cover_only_their_project() -> None:
    p = principal(Grant("Administrator", "p1", frozenset({"*"})))
    assert p.allows("jobs:write", "p1")
    assert not p.allows("jobs:write", "p2")
    assert p.denial("jobs:write", "p2") == "project_forbidden"
    # Application-level calls never count project roles.
    assert not p.allows("keys:write", None)
    assert p.denial("keys:write", None) == "insufficient_scope"
    assert p.project_ids("jobs:read") == {"p1"}


def test_a_token_narrows_but_never_widens() -> None:
    p = principal(Grant("Operator", None, frozenset({"jobs:read", "jobs:execute"})))
    narrowed = principal(*p.grants, token=frozenset({"jobs:read"}))
    assert narrowed.allows("jobs:read", "x")
    assert not narrowed.allows("jobs:execute", "x")
    assert narrowed.denial("jobs:execute", "x") == "insufficient_scope"
    widened = principal(*p.grants, token=frozenset({"*"}))
    assert not widened.allows("keys:write", None)
    assert narrowed.effective_scopes() == {"application": ["jobs:read"]}


def test_no_membership_means_no_rights() -> None:
    p = principal()
    assert not p.allows("projects:read", None)
    assert p.project_ids("projects:read") == set()
