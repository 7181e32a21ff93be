"""Ray Serve LLM's private code is reached through one module only, so a Ray upgrade that
moves it changes one file."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aim_ray"
PRIVATE = "ray.llm._internal"


def _imports_private(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == PRIVATE or name.startswith(f"{PRIVATE}.") for name in names):
            return True
    return False


def test_one_module_imports_ray_llm_internals():
    importers = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if _imports_private(path)
    )
    assert importers == ["aim_ray/serving/ray_internals.py"]
