"""API keys: making them (with their roles), reading, editing, rotating and deleting them.

How a key proves itself on a call is authentication's (authentication.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from jobport.domain import access as rules
from jobport.domain.access import ApiKey, FirewallRule, Principal
from jobport.domain.clock import utcnow
from jobport.domain.pages import Page
from jobport.errors import Conflict, Invalid, error_details, invalid
from jobport.services.access.roles import add_memberships, roles_of
from jobport.services.access.state import write
from jobport.services.runtime import Runtime
from jobport.store import access as access_store

_DEFAULT = object()


def _rules(value: Any) -> list[dict[str, Any]]:
    try:
        return [FirewallRule.model_validate(r).wire() for r in value or []]
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False), prefix="firewallRules")
        raise invalid(details, what="invalid firewall rule", code="invalid_firewall_rule") from None


def _check_expiry(expires_at: dt.datetime | None, now: dt.datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise Invalid(
            "expiresAt must be in the future",
            code="invalid_expiry",
            details=[{"field": "expiresAt", "reason": "in the past"}],
        )


def create_key(
    rt: Runtime,
    *,
    description: str = "",
    expires_at: Any = _DEFAULT,
    firewall_rules: list[Any] | None = None,
    created_by: str | None = None,
    roles: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
) -> tuple[ApiKey, str]:
    """A new key; returns (key, secret). The secret is never stored or shown again."""
    now = utcnow()
    if expires_at is _DEFAULT:
        expires_at = now + dt.timedelta(days=rt.settings.key_default_days)
    _check_expiry(expires_at, now)
    rules_ = _rules(firewall_rules)
    secret = rules.new_secret()
    row = {
        "client_id": rules.new_client_id(),
        "secret_hash": rules.hash_secret(secret, rt.settings.key_pepper),
        "previous_secret_hash": None,
        "previous_valid_until": None,
        "description": description,
        "expires_at": expires_at,
        "enabled": True,
        "firewall_rules": rules_,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
        "rotated_at": None,
        "last_used_at": None,
        "last_used_ip": None,
        "deleted_at": None,
    }
    with write(rt) as conn:
        access_store.insert_key(conn, row)
        add_memberships(conn, roles, "apiKey", row["client_id"], now)
        return _key(conn, access_store.get_key(conn, row["client_id"])), secret


def _key(conn: Any, row: dict[str, Any]) -> ApiKey:
    return ApiKey.from_row(row, roles_of(conn, "apiKey", row["client_id"]))


def get_key(rt: Runtime, client_id: str) -> ApiKey:
    with rt.db.read() as conn:
        return _key(conn, access_store.get_key(conn, client_id))


def list_keys(rt: Runtime, *, cursor: str | None, limit: int) -> Page:
    """A page of keys (ApiKey items), the newest first."""
    with rt.db.read() as conn:
        page = access_store.list_keys(conn, cursor=cursor, limit=limit)
        return Page([_key(conn, row) for row in page.items], page.next_cursor)


def patch_key(
    rt: Runtime,
    client_id: str,
    changes: dict[str, Any],
    *,
    caller: Principal | None = None,
    force: bool = False,
) -> ApiKey:
    """Edit description, expiry, firewall rules or enabled; refuse to lock the caller out."""
    now = utcnow()
    values: dict[str, Any] = {}
    if "description" in changes:
        values["description"] = changes["description"] or ""
    if "expires_at" in changes:
        _check_expiry(changes["expires_at"], now)
        values["expires_at"] = changes["expires_at"]
    if "firewall_rules" in changes:
        values["firewall_rules"] = _rules(changes["firewall_rules"])
    if "enabled" in changes:
        values["enabled"] = bool(changes["enabled"])
    with write(rt) as conn:
        row = access_store.get_key(conn, client_id)
        after = {**row, **values}
        if caller is not None and caller.kind == "apiKey" and caller.id == client_id and not force:
            guard_lock_out(after, caller.address)
        if values:
            access_store.update_key(conn, client_id, {**values, "updated_at": now})
    return get_key(rt, client_id)


def guard_lock_out(after: dict[str, Any], address: str) -> None:
    """Conflict `would_lock_out` if a key as it would be after an edit (`firewall_rules`,
    `enabled`) would refuse calls from `address`: the API applies it to a key editing
    itself, the console to the browser's address."""
    reason = None
    if not rules.address_allowed(after["firewall_rules"], address):
        reason = f"the firewall rules would not allow your address {address}"
    elif not after["enabled"]:
        reason = "it would disable the key you are calling with"
    if reason:
        raise Conflict(
            f"this edit would lock you out: {reason}; send force=true to do it anyway",
            code="would_lock_out",
            details={"address": address},
        )


def add_current_address(
    rt: Runtime, client_id: str, address: str, name: str | None = None
) -> ApiKey:
    """Append a single-address rule for the caller's address (the 'add my address' helper)."""
    with rt.db.read() as conn:
        row = access_store.get_key(conn, client_id)
    rules_ = list(row["firewall_rules"])
    if not any(r["startIp"] == address == r["endIp"] and r["enabled"] for r in rules_):
        rules_.append(
            {"name": name or f"added from {address}", "startIp": address, "endIp": address}
        )
    return patch_key(rt, client_id, {"firewall_rules": rules_})


def rotate_key(
    rt: Runtime, client_id: str, *, old_valid_until: dt.datetime | None = None
) -> tuple[ApiKey, str]:
    """A new secret; the old one keeps working until `old_valid_until` (default 24 h)."""
    now = utcnow()
    if old_valid_until is None:
        old_valid_until = now + dt.timedelta(hours=rt.settings.key_rotation_overlap_hours)
    if old_valid_until < now:
        raise Invalid(
            "oldSecretValidUntil must not be in the past",
            code="invalid_rotation",
            details=[{"field": "oldSecretValidUntil", "reason": "in the past"}],
        )
    secret = rules.new_secret()
    with write(rt) as conn:
        row = access_store.get_key(conn, client_id)
        access_store.update_key(
            conn,
            client_id,
            {
                "secret_hash": rules.hash_secret(secret, rt.settings.key_pepper),
                "previous_secret_hash": row["secret_hash"],
                "previous_valid_until": old_valid_until,
                "rotated_at": now,
                "updated_at": now,
            },
        )
    return get_key(rt, client_id), secret


def delete_key(rt: Runtime, client_id: str) -> None:
    """Delete a key; its client id stays as a tombstone and is never issued again.

    The tombstone keeps the secret hashes (peppered HMACs, useless without the pepper and
    the secret), so whoever proves the secret is told the key was deleted (`key_revoked`),
    while a wrong secret gets the same answer as for any key. Tombstones made before this
    kept no hashes: every secret for them is simply wrong.
    """
    now = utcnow()
    with write(rt) as conn:
        access_store.get_key(conn, client_id)
        access_store.update_key(
            conn, client_id, {"deleted_at": now, "updated_at": now, "enabled": False}
        )
        access_store.remove_memberships_of(conn, "apiKey", client_id)
