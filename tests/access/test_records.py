"""The access services hand out records, never store rows: keys without their secret or
hashes, users without their password hash, roles with their level and members."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from jobport.domain.access import ApiKey, Member, Role, RoleHeld, User
from jobport.services import access, projects
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store.db import Database


@pytest.fixture
def rt(tmp_path: object) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path}/jobport.db"
    db = Database(url, pool=False)
    db.upgrade()
    runtime = Runtime(Settings(database_url=url, admin_password="first-admin-pw"), db)
    access.bootstrap(runtime)
    try:
        yield runtime
    finally:
        db.dispose()


def test_a_key_comes_out_with_its_roles_and_without_its_secret(rt: Runtime) -> None:
    projects.create(rt, "alpha")
    key, secret = access.create_key(rt, description="ci", roles=[("Operator", "alpha")])
    assert isinstance(key, ApiKey)
    assert key.roles == (RoleHeld("Operator", "alpha"),)
    fields = {f.name for f in dataclasses.fields(ApiKey)}
    assert not {"secret_hash", "previous_secret_hash", "deleted_at"} & fields
    assert secret not in repr(key)
    assert access.get_key(rt, key.client_id) == key
    (listed,) = access.list_keys(rt, cursor=None, limit=10).items
    assert listed == key
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.enabled = False  # type: ignore[misc]


def test_a_role_knows_its_level_and_members(rt: Runtime) -> None:
    projects.create(rt, "beta")
    key, _ = access.create_key(rt)
    made = access.create_role(rt, "beta", {"name": "Runner", "scopes": ["jobs:execute"]})
    assert isinstance(made, Role) and made.level == "project" and made.members == ()
    role, created = access.add_member(rt, "beta", "Runner", "apiKey", key.client_id)
    assert created and role.members == (Member("apiKey", key.client_id),)
    levels = {r.name: r.level for r in access.list_roles(rt, None)}
    assert levels["Administrator"] == "builtin"
    app_role = access.create_role(rt, None, {"name": "Auditors", "scopes": ["audit:read"]})
    assert app_role.level == "application" and app_role.scopes == ("audit:read",)


def test_a_user_comes_out_with_roles_and_without_a_password_hash(rt: Runtime) -> None:
    user = access.create_user(rt, "ann", "a long passphrase", [("Viewer", None)])
    assert isinstance(user, User) and user.roles == (RoleHeld("Viewer", None),)
    assert "password_hash" not in {f.name for f in dataclasses.fields(User)}
    assert [u.username for u in access.list_users(rt)] == ["admin", "ann"]
