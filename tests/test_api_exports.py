"""The documented Python API: every name the README's Python examples use is importable from
``animevid`` and every keyword they pass exists (the layers and cycles: tests/test_layout.py)."""

from __future__ import annotations

import ast
import inspect
import re

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
