"""The layers of ARCHITECTURE.md, held: what each part of src/jobport may import of the rest."""

from __future__ import annotations

import ast
from collections import defaultdict

from conftest import ROOT

PACKAGE = ROOT / "src" / "jobport"

# Each part (a top-level package or module of jobport) and the parts it may import. boot.py,
# the composition root, may import anything; nothing else may import store or engine except
# where the map says so (services validate steps with the step kinds that run them).
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "errors": set(),
    "settings": set(),
    # Prometheus metrics (metrics.py): imports nothing of jobport; whoever counts may call it.
    "metrics": set(),
    "store": {"domain", "errors"},
    "engine": {"domain", "errors", "settings", "metrics", "store"},
    "services": {"domain", "errors", "settings", "metrics", "store", "engine"},
    "scheduler": {"domain", "errors", "settings", "metrics", "services"},
    "demo": {"domain", "errors", "services"},
    "api": {
        "domain",
        "errors",
        "settings",
        "metrics",
        "services",
        "boot",
        "__version__",
        "console",
    },
    # The console is a face beside the API: the same services, the API's auth and renders.
    "console": {"domain", "errors", "settings", "metrics", "services", "api", "__version__"},
    "client": {"domain", "errors", "__version__"},
    "cli": {"client", "domain", "errors", "settings", "metrics", "boot"},
}


def imports_by_part() -> dict[str, dict[str, set[str]]]:
    """{part: {imported part: {file that imports it}}} for every file of the package."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in {"__init__.py", "boot.py"} or "migrations" in relative.parts:
            continue
        part = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "jobport":
                    names = [f"jobport.{alias.name}" for alias in node.names]
            for name in names:
                if name.startswith("jobport."):
                    imported = name.split(".")[1]
                    if imported != part:
                        found[part][imported].add(str(relative))
    return found


def test_every_part_imports_only_the_layers_below_it() -> None:
    found = imports_by_part()
    assert set(found) <= set(ALLOWED), f"a part the map does not name: {set(found) - set(ALLOWED)}"
    wrong = {
        f"{part} imports {imported} ({', '.join(sorted(files))})"
        for part, imports in found.items()
        for imported, files in imports.items()
        if imported not in ALLOWED[part]
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_imports() -> None:
    # The walk finds what it must, so the test above cannot pass by seeing nothing.
    found = imports_by_part()
    assert "store" in found["services"]
    assert "services" in found["api"]
    assert "client" in found["cli"]
