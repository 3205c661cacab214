"""The package layering, read from the source with ``ast`` (nothing is imported): the product
never imports ``bench`` or ``tests``; ``telemetry`` is the core; ``ingest``, ``alerts`` and
``simulators`` build on it alone; ``api`` on it and ``alerts``; nothing imports ``api``.

Every import statement counts, also those inside functions and ``TYPE_CHECKING`` blocks. The
packaging ships the product alone, while mypy and ruff check ``bench`` and ``tests`` too.
"""

from __future__ import annotations

import ast
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Each product package and the top-level packages of the repository it may import.
ALLOWED = {
    "telemetry": {"telemetry"},
    "ingest": {"telemetry", "ingest"},
    "alerts": {"telemetry", "alerts"},
    "simulators": {"telemetry", "simulators"},
    "api": {"telemetry", "alerts", "api"},
}
#: The repository's own top-level packages; anything else is the standard library or a
#: dependency.
LOCAL = {*ALLOWED, "bench", "tests", "deploy", "scripts"}


def module_name(path: Path) -> tuple[str, bool]:
    """The dotted name of a source file under ROOT, and whether it is a package's __init__."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[-1] == "__init__"
    if package:
        parts.pop()
    return ".".join(parts), package


def imported(source: str, module: str, *, package: bool = False) -> set[str]:
    """The absolute names of the modules ``source`` (the module ``module``) imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import counts from the module's package (a package: itself).
                parts = module.split(".")
                base = parts[: len(parts) - node.level + (1 if package else 0)]
                names.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                names.add(node.module)
    return names


def violations(source: str, module: str, *, package: bool = False) -> list[str]:
    """``module -> imported`` for each import outside what the module's package may use."""
    allowed = ALLOWED[module.split(".")[0]]
    return sorted(
        f"{module} -> {name}"
        for name in imported(source, module, package=package)
        if name.split(".")[0] in LOCAL and name.split(".")[0] not in allowed
    )


def product_modules() -> list[Path]:
    """Every Python source file of the product packages."""
    return sorted(
        path
        for top in ALLOWED
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    )


@pytest.mark.parametrize("top", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_it_builds_on(top: str) -> None:
    found = []
    for path in product_modules():
        module, package = module_name(path)
        if module.split(".")[0] == top:
            found += violations(path.read_text(encoding="utf-8"), module, package=package)
    assert found == []


def test_the_scan_reads_every_package_and_its_imports() -> None:
    modules = [module_name(path)[0] for path in product_modules()]
    assert {m.split(".")[0] for m in modules} == set(ALLOWED)
    assert "telemetry.storage.devices" in modules
    source = (ROOT / "api" / "__main__.py").read_text(encoding="utf-8")
    assert any(name.startswith("telemetry") for name in imported(source, "api.__main__"))


def test_bench_tests_and_upward_imports_are_reported_however_written() -> None:
    source = """
import bench.ingest
from tests.support import env
from . import sibling
from .. import catalog
from ..storage import devices

def later() -> None:
    from api.app import create_app
"""
    found = violations(source, "telemetry.storage.x")
    assert found == [
        "telemetry.storage.x -> api.app",
        "telemetry.storage.x -> bench.ingest",
        "telemetry.storage.x -> tests.support",
    ]
    assert imported(source, "telemetry.storage.x") >= {"telemetry.storage", "telemetry"}
    assert imported("from .rules import outage", "alerts", package=True) == {"alerts.rules"}
    assert violations("from alerts.engine import Engine", "api.app") == []
    assert violations("from api.auth import Role", "alerts.engine") == ["alerts.engine -> api.auth"]
    assert violations("import bench", "simulators.cli") == ["simulators.cli -> bench"]


def test_the_wheel_ships_the_product_and_the_checkers_see_bench_and_tests() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = config["tool"]["setuptools"]["packages"]["find"]
    # setuptools' find: packages (folders with an __init__.py) matching include, not exclude.
    shipped = {
        folder.name
        for folder in ROOT.iterdir()
        if (folder / "__init__.py").exists()
        and any(fnmatch(folder.name, pattern) for pattern in find["include"])
        and not any(fnmatch(folder.name, pattern) for pattern in find.get("exclude", ()))
    }
    assert shipped == set(ALLOWED)
    assert {"bench", "tests"} <= set(config["tool"]["mypy"]["packages"])
    skipped = config["tool"]["ruff"].get("exclude", []) + config["tool"]["ruff"]["extend-exclude"]
    assert not {"bench", "tests"} & {Path(p).parts[0] for p in skipped}
