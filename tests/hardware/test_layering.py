"""Imports run one way: ``hardware`` imports none of the project's other packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The project's other packages and entry-point scripts (``search.py`` shares the package name).
FORBIDDEN = ("search", "lightning_modules", "datamodules", "train")


def project_imports(path: Path) -> list[tuple[int, str]]:
    """Every import of a forbidden top-level name in a file, at any depth (functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_hardware_imports_no_other_project_package():
    files = sorted((ROOT / "hardware").rglob("*.py"))
    assert len(files) > 10  # the scan sees the package, subpackages included
    bad = {str(f.relative_to(ROOT)): hits for f in files if (hits := project_imports(f))}
    assert bad == {}, f"hardware must not import search/lightning_modules/datamodules: {bad}"


def test_the_scan_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nfrom hardware.base import Device\n"
        "def f():\n    from search.ranking import spearman\n    import datamodules.cifar\n"
    )
    assert project_imports(probe) == [(4, "search.ranking"), (5, "datamodules.cifar")]
