"""Every public module, class, function and method of the package says what it does.

Read from the source (ast). Public: a name without a leading underscore, at a module's top level or
in a public class (a function nested in another is its implementation). Exempt: routes, whose
`summary=` says it, and Powertools' error handlers; `from_settings` classmethods; `client` properties.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "core" / "sagewatch"
ROUTES = frozenset({"get", "post", "put", "patch", "delete"})
HANDLERS = frozenset({"exception_handler", "not_found"})
EXEMPT_MEMBERS = frozenset({("classmethod", "from_settings"), ("property", "client")})


def decorator_name(decorator: ast.expr) -> str:
    """`@router.get(...)` -> "get", `@classmethod` -> "classmethod"."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def exempt(function: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> bool:
    """A route or error handler, or (in a class) a `from_settings` classmethod or `client` property."""
    for decorator in function.decorator_list:
        name = decorator_name(decorator)
        if (isinstance(decorator, ast.Call) and name in ROUTES) or name in HANDLERS:
            return True
        if in_class and (name, function.name) in EXEMPT_MEMBERS:
            return True
    return False


def undocumented(body: list[ast.stmt], prefix: str = "", in_class: bool = False) -> Iterator[str]:
    """The public classes and functions of a module or class body (classes recursively) lacking a docstring."""
    for node in body:
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_"):
            continue
        is_class = isinstance(node, ast.ClassDef)
        if ast.get_docstring(node) is None and (is_class or not exempt(node, in_class)):
            yield f"{prefix}{node.name} (line {node.lineno})"
        if is_class:
            yield from undocumented(node.body, f"{prefix}{node.name}.", in_class=True)


def test_every_public_module_class_and_function_has_a_docstring() -> None:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent)
        if any(part.startswith("_") and part != "__init__.py" for part in relative.parts):
            continue
        tree = ast.parse(path.read_text())
        if ast.get_docstring(tree) is None:
            missing.append(f"{relative}: the module")
        missing += [f"{relative}: {name}" for name in undocumented(tree.body)]
    assert not missing, f"{len(missing)} without a docstring:\n" + "\n".join(missing)
