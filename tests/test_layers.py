"""The architecture, checked: services know nothing of HTTP, and SQL lives only in storage."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
# The edges: the only modules allowed to import aiohttp.
EDGE_NAMES = {"routes.py", "gateway.py", "app.py", "runner.py", "keys.py", "openapi.py"}
EDGE_DIRS = {SERVER / "web"}
SQL = re.compile(r"\b(SELECT\s+.+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b",
                 re.IGNORECASE | re.DOTALL)


def _python_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _is_edge(path: Path) -> bool:
    return (path.name in EDGE_NAMES or path.name.endswith("_routes.py")
            or any(d in path.parents for d in EDGE_DIRS))


@pytest.mark.parametrize("path", [p for p in _python_files(SERVER) if not _is_edge(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_services_and_ports_do_not_import_aiohttp(path: Path) -> None:
    assert "aiohttp" not in _imports(path), f"{path.relative_to(ROOT)} is not an edge but imports aiohttp"


def _imports_web_package(path: Path) -> bool:
    """`from ..web...` / `from .web import ...` (relative), or `lucky_server.web`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level > 0 and (module == "web" or module.startswith("web.")):
                return True
            if node.level > 0 and not module and any(alias.name == "web" for alias in node.names):
                return True
            if module.startswith("lucky_server.web"):
                return True
    return False


@pytest.mark.parametrize("path", [p for p in _python_files(SERVER) if not _is_edge(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_services_and_ports_do_not_import_the_web_edge(path: Path) -> None:
    # The web package imports aiohttp: a service reaching into it would bring HTTP along.
    assert not _imports_web_package(path), f"{path.relative_to(ROOT)} is not an edge but imports server/web"


@pytest.mark.parametrize("path", [p for p in _python_files(SERVER) + _python_files(ROOT / "lucky_cli")
                                  + _python_files(ROOT / "console")
                                  if SERVER / "storage" not in p.parents],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_sql_lives_only_in_storage(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} holds SQL; move it to a store in server/storage")


def test_storage_does_not_reach_up_into_services() -> None:
    for path in _python_files(SERVER / "storage"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
                top = node.module.split(".")[0]
                assert top not in {"auth", "chat", "users", "web", "ops", "app", "core"}, (
                    f"{path.relative_to(ROOT)} imports ..{node.module}: storage must not depend on services")


@pytest.mark.parametrize("path", _python_files(SERVER) + _python_files(ROOT / "lucky_cli")
                         + _python_files(ROOT / "console"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    # A leading underscore says "this module's own": a name another module needs is made
    # public (and documented) instead, so renaming a private helper never breaks a caller.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            assert not private, (f"{path.relative_to(ROOT)}:{node.lineno} imports {private} from "
                                 f"{'.' * node.level}{node.module or ''}; make the name public there")


# One composition root, wired through constructors (issue 9): a rule a service needs is a
# required constructor argument, so forgetting it is a type error, not a silent pass.
COMPOSITION_ROOT = [SERVER / "core.py", SERVER / "app.py"]


@functools.cache
def _protocol_names() -> frozenset[str]:
    names: set[str] = set()
    for path in _python_files(SERVER):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases):
                names.add(node.name)
    return frozenset(names)


@pytest.mark.parametrize("path", [p for p in _python_files(SERVER) if not _is_edge(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_service_holds_an_optional_collaborator(path: Path) -> None:
    # `self.groups: GroupPolicy | None = None`, installed later (or never), was how a chat
    # service built without the friends service skipped block checks.
    protocols = _protocol_names()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute)
                and isinstance(node.annotation, ast.BinOp)):
            parts = {n.id for n in ast.walk(node.annotation) if isinstance(n, ast.Name)}
            optional = any(isinstance(n, ast.Constant) and n.value is None for n in ast.walk(node.annotation))
            assert not (optional and parts & protocols), (
                f"{path.relative_to(ROOT)}:{node.lineno}: an optional {sorted(parts & protocols)}; "
                "make it a required constructor argument")


@pytest.mark.parametrize("path", COMPOSITION_ROOT, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_composition_root_sets_no_attribute_after_construction(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            assert not isinstance(target, ast.Attribute), (
                f"{path.relative_to(ROOT)}:{node.lineno} sets {ast.unparse(target)} after construction; "
                "pass it to the constructor")
