"""The shape of the system, checked: services never import each other; listener and gateway never
import torch (their images stay small); torch is installed only with the worker's extra."""

import ast
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SERVICES = ["listener", "worker", "gateway", "vectorhost", "launcher", "bench", "dicomize", "demo", "modeling", "reindex"]


def imported_modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    others = [f"services.{other}" for other in SERVICES if other != service]
    found = {m for m in imported_modules(REPO / "services" / service) if m.startswith(tuple(others))}
    assert not found, f"services/{service} imports another service: {sorted(found)}"


def test_shared_imports_no_service():
    found = {m for m in imported_modules(REPO / "shared") if m.startswith("services")}
    assert not found, f"shared/ imports services: {sorted(found)}"


@pytest.mark.parametrize("module", ["services.listener.main", "services.gateway.main", "services.launcher.cli",
                                    "services.launcher.run", "services.vectorhost.main",
                                    "services.reindex.main"])
def test_entry_module_does_not_import_torch(module):
    code = f"import sys, {module}; sys.exit(3 if 'torch' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"importing {module} imported torch (or failed): {result.stderr[-2000:]}"


def test_torch_is_required_by_the_worker_extra_only():
    torch_lines = [line for line in requires("tumorsearch") if line.startswith("torch")]
    assert torch_lines, "the worker extra must pin torch"
    for line in torch_lines:
        assert "==2.13.0" in line and 'extra == "worker"' in line, line


@pytest.mark.parametrize("extra", ["listener", "gateway"])
def test_listener_and_gateway_extras_do_not_pull_torch(extra):
    reqs = requires("tumorsearch")
    closure, todo = set(), [extra]
    while todo:  # follow tumorsearch[...] self-references
        current = todo.pop()
        closure.add(current)
        for line in reqs:
            if f'extra == "{current}"' in line and line.startswith("tumorsearch["):
                todo += [e for e in line.split("[", 1)[1].split("]", 1)[0].split(",") if e not in closure]
    pulled = [line for line in reqs if any(f'extra == "{e}"' in line for e in closure)]
    assert not [line for line in pulled if line.startswith("torch")], pulled
