"""pyproject.toml: every package dualstream imports is a dependency, or an extra when only a part of it needs it."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions

from packaging.requirements import Requirement

from tests.support.paths import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def imported_packages() -> dict[str, set[str]]:
    """Top-level package -> the dualstream modules that import it (stdlib and dualstream itself left out)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "dualstream").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "dualstream":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def distribution_names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_every_imported_package_is_a_dependency_or_an_extra() -> None:
    required = distribution_names(PROJECT["dependencies"]) | {"asgiref"}  # asgiref comes with Django
    extras = {extra: distribution_names(reqs) for extra, reqs in PROJECT["optional-dependencies"].items()}
    optional = set().union(*extras.values())
    distributions = packages_distributions()
    missing = {}
    for package, modules in imported_packages().items():
        names = {d.lower() for d in distributions.get(package, [package])}
        if not names & (required | optional):
            missing[package] = sorted(modules)
    assert missing == {}, "imported by dualstream but neither a dependency nor an extra in pyproject.toml"
    assert extras["redis"] == {"redis"}
    assert extras["llm-proxy"] == {"httpx"}


def test_the_extras_are_in_the_development_requirements() -> None:
    """`make install` installs every extra, so the suite covers the parts that need them."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    development = distribution_names([line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()])
    for requirements in PROJECT["optional-dependencies"].values():
        assert distribution_names(requirements) <= development
