"""The simulator and Chimera never import each other: llmsim runs without Chimera (its own
image, ``python -m llmsim``), and Chimera's production image does not carry llmsim."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Chimera's own top-level packages (the production image's code).
CHIMERA_PACKAGES = ("chimera", "tasks", "bridges", "web", "celeryconfig")


def imported_roots(package: str) -> dict[str, set[str]]:
    """Module file -> the top-level names it imports (relative imports stay inside)."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = roots
    return out


def test_llmsim_imports_nothing_of_chimera() -> None:
    found = {
        module: sorted(roots & set(CHIMERA_PACKAGES))
        for module, roots in imported_roots("llmsim").items()
        if roots & set(CHIMERA_PACKAGES)
    }
    assert found == {}


def test_chimera_never_imports_llmsim() -> None:
    for package in CHIMERA_PACKAGES[:-1]:
        found = [module for module, roots in imported_roots(package).items() if "llmsim" in roots]
        assert found == [], f"{package} imports llmsim"
