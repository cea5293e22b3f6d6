"""The application's roles and a project's roles are one set of routes at two levels: the
same methods, paths below the level, scopes, and names (the audit action) as they always had."""

from __future__ import annotations

from typing import Any

import pytest

from jobport.api.app import create_app
from jobport.api.auth import route_table
from jobport.settings import Settings

APPLICATION = "/api/v1/roles"
PROJECT = "/api/v1/projects/{project}/roles"
NAMES = {
    # (method, path below the level): (application name, project name)
    ("GET", ""): ("list_roles", "list_project_roles"),
    ("POST", ""): ("create_role", "create_project_role"),
    ("GET", "/{role}"): ("get_role", "get_project_role"),
    ("PATCH", "/{role}"): ("patch_role", "patch_project_role"),
    ("DELETE", "/{role}"): ("delete_role", "delete_project_role"),
    ("POST", "/{role}/members"): ("add_role_member", "add_project_role_member"),
    ("DELETE", "/{role}/members/{member_type}/{member_id}"): (
        "remove_role_member",
        "remove_project_role_member",
    ),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = tmp_path_factory.mktemp("roles") / "jobport.db"
    return create_app(Settings(database_url=f"sqlite:///{database}"))


def routes_at(app: Any, prefix: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (method, path.removeprefix(prefix)): (name, scope)
        for method, path, name, scope in route_table(app)
        if path == prefix or path.startswith(prefix + "/")
    }


def test_both_levels_have_the_same_routes_with_their_names_and_scopes(app: Any) -> None:
    application, project = routes_at(app, APPLICATION), routes_at(app, PROJECT)
    assert set(application) == set(project) == set(NAMES)
    for where, (application_name, project_name) in NAMES.items():
        scope = "roles:read" if where[0] == "GET" else "roles:write"
        assert application[where] == (application_name, scope)
        assert project[where] == (project_name, scope)


def test_only_the_project_level_takes_a_project(app: Any) -> None:
    document = app.openapi()
    for level, has_project in ((APPLICATION, False), (PROJECT, True)):
        for path, item in document["paths"].items():
            if path != level and not path.startswith(level + "/"):
                continue
            for operation in item.values():
                names = [p["name"] for p in operation.get("parameters", [])]
                assert ("project" in names) is has_project, (path, names)
                if has_project:
                    assert names[0] == "project"  # first, as the path reads
