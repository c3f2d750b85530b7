"""The dependency rule (DESIGN.md §1): core imports nothing of ours, components never import
machine, the ledger imports neither machine nor components. Every import counts, including those
under ``TYPE_CHECKING`` and inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("core", "machine", "components", "ledger", "conf")
FORBIDDEN = {
    "core": {"machine", "components", "ledger", "conf"},
    "components": {"machine", "ledger"},
    "ledger": {"machine", "components"},
}


def imported_packages(source: str) -> set[str]:
    """Top-level packages of ours that a module's source imports, wherever the import stands."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in OURS}
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path.read_text()) & FORBIDDEN[package]
        out += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(bad)]
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    assert violations(package) == []


def test_the_check_catches_a_forbidden_import_wherever_it_hides() -> None:
    planted = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from machine.agent import Agent
def late():
    import ledger.writer
"""
    assert imported_packages(planted) == {"machine", "ledger"}
