"""OPTIONS answers with every method of a path, and a 405 names them all too (Starlette
alone named those of the first route that matched the path: `Allow: GET` on /api/v1/keys)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import httpx2
import pytest
from starlette.routing import compile_path

from conftest import Server
from jobport.api.app import create_app
from jobport.api.auth import route_table
from jobport.api.errors import shaper_for
from jobport.settings import Settings


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = tmp_path_factory.mktemp("methods") / "jobport.db"
    return create_app(Settings(database_url=f"sqlite:///{database}"))


def test_options_and_405_name_every_method_of_a_path(app: Any, server: Server) -> None:
    by_path: dict[str, set[str]] = defaultdict(set)
    for method, path, _name, _scope in route_table(app):
        by_path[path].add(method)
    patterns = {path: compile_path(path)[0] for path in by_path}
    with httpx2.Client(base_url=server.url, timeout=30) as http:  # no credentials: none needed
        for path in by_path:
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            # Every route whose path matches this URL contributes its methods.
            expected = {"OPTIONS"}.union(
                *(by_path[p] for p, pattern in patterns.items() if pattern.match(concrete))
            )
            options = http.options(concrete)
            assert options.status_code == 204, (path, options.text)
            assert set(options.headers["allow"].split(", ")) == expected, path
            unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in expected)
            refused = http.request(unused, concrete)
            assert refused.status_code == 405, (unused, path, refused.text)
            assert set(refused.headers["allow"].split(", ")) == expected, (unused, path)
            if shaper_for(path) is None:  # a vendor face says it in its vendor's shape
                assert refused.json()["error"] == "method_not_allowed"
    unknown = httpx2.options(server.url + "/api/v1/nothing-here", timeout=30)
    assert unknown.status_code == 404
