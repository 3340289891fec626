"""The import contract: imports flow one way, client -> local -> handlers -> api -> container ->
services -> stores -> core, with no cycle and no import hidden in a function.

Read from the source (ast), so it holds for every module whether or not a test imports it.
`make lint` runs it too.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "core" / "sagewatch"
# Highest first: a module imports only from its own layer or the ones below it.
LAYERS = (
    ("client", ("sagewatch.client",)),
    ("local", ("sagewatch.local",)),
    ("handlers", ("sagewatch.handlers",)),
    ("api", ("sagewatch.api",)),
    ("container", ("sagewatch.container",)),
    ("services", ("sagewatch.services",)),
    ("stores", ("sagewatch.stores", "sagewatch.aws")),
    ("core", ("sagewatch",)),
)
# Routes reach data through services only.
FORBIDDEN = {"api": ("sagewatch.stores", "sagewatch.aws")}
AWS_PACKAGES = ("boto3", "botocore")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> int:
    return next(i for i, (_, prefixes) in enumerate(LAYERS) if any(within(module, p) for p in prefixes))


def resolve(name: str) -> str:
    """The sagewatch module an imported name lives in (`sagewatch.stores.lake.LakeStore` -> its module)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> Iterator[tuple[ast.stmt, list[str]]]:
    """Each import statement of a module with the names it imports (absolute, relative resolved)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield node, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node, [f"{base}.{alias.name}" for alias in node.names] or [base]


@functools.cache
def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {resolve(n) for _, names in imports(module) for n in names if within(n, "sagewatch")}
        edges[module] = targets - {module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_no_function_imports_a_sagewatch_module() -> None:
    """An import inside a function hides a dependency (and, here, used to close a cycle)."""
    hidden = []
    for module, path in MODULES.items():
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = (
                        [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    )
                    if (node.__class__ is ast.ImportFrom and node.level) or any(
                        within(n, "sagewatch") for n in names
                    ):
                        hidden.append(f"{module}:{node.lineno}")
    assert hidden == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_down_the_layers(module: str) -> None:
    own = layer_of(module)
    upward = sorted(t for t in graph()[module] if layer_of(t) < own)
    assert upward == [], f"{module} ({LAYERS[own][0]}) imports from a layer above it"
    banned = FORBIDDEN.get(LAYERS[own][0], ())
    assert [t for t in graph()[module] if any(within(t, b) for b in banned)] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if LAYERS[layer_of(m)][0] == "core"))
def test_the_core_calls_no_aws(module: str) -> None:
    names = [n for _, found in imports(module) for n in found]
    assert [n for n in names if any(within(n, p) for p in AWS_PACKAGES)] == []


def test_the_contract_sees_every_layer() -> None:
    """A renamed package would silently fall into `core`: each layer must hold modules."""
    assert {LAYERS[layer_of(m)][0] for m in MODULES} == {name for name, _ in LAYERS}
