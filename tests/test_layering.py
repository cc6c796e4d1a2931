"""The boundaries between the three deployables, checked on the source (DESIGN.md, Layout).

- common/ (what the processes must agree on) may be imported by every package; it imports only
  the standard library and itself;
- gateway/ may import only `monitor.record` from monitor/ (the status record's one owner);
- monitor/ imports nothing from gateway/ or supervisor/;
- supervisor/ and supervisor_main.py import neither gateway/ nor monitor/ (they pass env and argv);
- no import cycle between modules of the product;
- no product module over MAX_MODULE_LINES lines;
- the environment is read only in config modules (and handed to them by the entry points).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import ROOT

PACKAGES = ("common", "gateway", "monitor", "supervisor")
MAX_MODULE_LINES = 480


def sources(package: str) -> Iterator[Path]:
    if package == "supervisor":
        yield ROOT / "supervisor_main.py"
    yield from sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


ALLOWED = {
    "common": {"common"},
    "gateway": {"common", "gateway", "monitor.record"},
    "monitor": {"common", "monitor"},
    "supervisor": {"common", "supervisor"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_respect_the_layers(package: str) -> None:
    bad = []
    for path in sources(package):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top not in PACKAGES:
                continue
            if not any(module == a or module.startswith(a + ".") for a in ALLOWED[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def environ_reads(path: Path) -> Iterator[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            yield node.lineno


@pytest.mark.parametrize("package", PACKAGES)
def test_environment_is_read_only_in_config_modules(package: str) -> None:
    bad = []
    for path in sources(package):
        if path.name == "config.py":
            continue
        for line in environ_reads(path):
            # The entry point may hand os.environ to from_env(); nothing else may read it.
            text = path.read_text().splitlines()[line - 1]
            if "from_env(os.environ)" in text:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert not bad, "\n".join(bad)


def test_common_is_stdlib_only() -> None:
    bad = []
    for path in sources("common"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top != "common" and top not in sys.stdlib_module_names:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> product modules it imports at module level (TYPE_CHECKING blocks excluded)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in sources(pkg)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        deps: set[str] = set()
        for node in tree.body:  # module level only: imports inside functions are deferred
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps.update(t for t in targets if t in modules and t != name)
        graph[name] = deps
    return graph


def test_no_import_cycle() -> None:
    graph = _import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            # A package's __init__ importing its own submodules is not a cycle of concepts.
            if node == dep.rsplit(".", 1)[0] or dep == node.rsplit(".", 1)[0]:
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*path[path.index(dep):], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_too_long(package: str) -> None:
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in sources(package)
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, "\n".join(long)
