"""The import rules of docs/design.md: what each top-level package may not import, anywhere
in its modules (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    # keras + numpy only: the models run on any Keras backend
    "segmodels": {"tensorflow", "mlflow", "kfp", "components", "pipelines", "serving"},
    # shipped alone inside the MLflow model
    "serving": {"components", "pipelines", "kfp"},
    # plain functions over local paths, tested without Kubeflow
    "components": {"pipelines", "kfp"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_it_may_not(package):
    modules = sorted((REPO_ROOT / package).rglob("*.py"))
    assert modules
    breaches = {str(m.relative_to(REPO_ROOT)): sorted(imported_packages(m) & FORBIDDEN[package])
                for m in modules}
    assert not {m: b for m, b in breaches.items() if b}
