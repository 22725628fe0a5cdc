"""One Kubernetes client in the operator process besides kopf's watches: the official client is
never imported (``curfew.k8s.kubeconfig`` reads the kubeconfig), and the kubeconfig is read once
per process, by whoever starts the operator (or ``curfew report``), never by the parts that make
requests."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "operator" / "curfew"


def _modules() -> dict[str, ast.Module]:
    return {str(path.relative_to(PACKAGE)): ast.parse(path.read_text())
            for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_imports_the_official_kubernetes_client() -> None:
    importers = set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                importers.add(name)
    assert importers == set()


def test_the_kubeconfig_is_loaded_only_where_the_operator_is_started() -> None:
    callers = set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "load_connection" \
                    and isinstance(node.ctx, ast.Load) and name != "k8s/kubeconfig.py":
                callers.add(name)
    # The command checks the credentials before it configures logging and hands the connection
    # to run_operator, which loads one itself only when started without one (tests, embedders).
    # curfew report reads the cluster once, through the same client.
    assert callers == {"cli/operator.py", "operator/runner.py", "cli/report.py"}
