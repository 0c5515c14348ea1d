"""The documented Python API: every name the README's Python examples use is importable from
``animevid`` and every keyword they pass exists; and the package's modules import no cycle."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import animevid
from tests import CHECKOUT

README = CHECKOUT / "README.md"


def python_examples() -> list[ast.Module]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no Python examples"
    return [ast.parse(block) for block in blocks]


def names_used(tree: ast.Module) -> set[str]:
    """``animevid.X`` attributes and ``from animevid import X`` names."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "animevid":
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module == "animevid":
            names.update(alias.name for alias in node.names)
    return names


def test_every_name_in_the_readme_examples_is_exported():
    used = set().union(*(names_used(tree) for tree in python_examples()))
    assert {"stylize", "VideoOptions", "InferenceOptions", "Stylizer"} <= used
    for name in used:
        assert name in animevid.__all__, name
        assert getattr(animevid, name) is not None


def test_every_keyword_in_the_readme_examples_exists():
    for tree in python_examples():
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and call.func.value.id == "animevid":
                target = getattr(animevid, call.func.attr)
            elif isinstance(call.func, ast.Name) and call.func.id in imported:
                target = getattr(animevid, call.func.id)
            else:
                continue
            parameters = inspect.signature(target).parameters
            for keyword in call.keywords:
                assert keyword.arg in parameters, (ast.unparse(call.func), keyword.arg)


def test_every_export_resolves():
    for name in animevid.__all__:
        assert getattr(animevid, name) is not None, name


def module_files() -> dict[str, Path]:
    """Module name -> file, for the library and the training code (installed as animevid.train)."""
    files = {}
    for folder, package in ((CHECKOUT / "animevid", "animevid"), (CHECKOUT / "train", "animevid.train")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere: top level, functions, TYPE_CHECKING blocks."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.update(m for m in (module, *(f"{module}.{alias.name}" for alias in node.names)) if m in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
    return found - {name}


def test_no_two_modules_import_each_other_even_lazily():
    files = module_files()
    graph = {name: imports_of(name, path, set(files)) for name, path in files.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return False

    cycles = [(a, b) for a in graph for b in graph[a] if reaches(b, a)]
    assert not cycles, cycles
